//! In-app notifications of one agent.

use chrono::Utc;
use entity::notification;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use crate::domain::ids::new_id;
use crate::error::{AppError, AppResult};

/// What a notification is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotificationKind {
    /// An export finished; its link is ready.
    ExportCompleted,
    /// An export failed for good; the notification says why.
    ExportFailed,
}

/// Each kind with its stored name: the one mapping both ways.
const KINDS: [(NotificationKind, &str); 2] = [
    (NotificationKind::ExportCompleted, "EXPORT_COMPLETED"),
    (NotificationKind::ExportFailed, "EXPORT_FAILED"),
];

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        KINDS
            .iter()
            .find(|(kind, _)| *kind == self)
            .map_or("", |(_, name)| name)
    }

    /// The kind of a stored notification; a name that no version wrote is
    /// a corrupted row.
    pub fn of(notification: &notification::Model) -> AppResult<NotificationKind> {
        KINDS
            .iter()
            .find(|(_, name)| *name == notification.kind)
            .map(|(kind, _)| *kind)
            .ok_or_else(|| {
                AppError::internal(anyhow::anyhow!(
                    "stored notification kind {:?}",
                    notification.kind
                ))
            })
    }
}

pub struct NewNotification<'a> {
    pub agent_id: Uuid,
    pub project_id: Uuid,
    pub kind: NotificationKind,
    pub title: &'a str,
    pub body: &'a str,
    pub export_job_id: Option<Uuid>,
}

pub async fn create(
    db: &impl ConnectionTrait,
    new: NewNotification<'_>,
) -> AppResult<notification::Model> {
    Ok(notification::ActiveModel {
        id: Set(new_id()),
        agent_id: Set(new.agent_id),
        project_id: Set(new.project_id),
        kind: Set(new.kind.as_str().to_owned()),
        title: Set(new.title.chars().take(200).collect()),
        body: Set(new.body.chars().take(2000).collect()),
        export_job_id: Set(new.export_job_id),
        read_at: Set(None),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?)
}

/// The agent's notifications, newest first, after `after`.
pub async fn list(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
    unread_only: bool,
    first: u64,
    after: Option<Uuid>,
) -> AppResult<(Vec<notification::Model>, bool)> {
    let mut query = notification::Entity::find()
        .filter(notification::Column::AgentId.eq(agent_id))
        .order_by_desc(notification::Column::Id)
        .limit(first + 1);
    if unread_only {
        query = query.filter(notification::Column::ReadAt.is_null());
    }
    if let Some(after) = after {
        query = query.filter(notification::Column::Id.lt(after));
    }
    let mut found = query.all(db).await?;
    let has_next = found.len() as u64 > first;
    found.truncate(first as usize);
    Ok((found, has_next))
}

/// One of the agent's own notifications; anyone else's is not found.
pub async fn find_own(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
    id: Uuid,
) -> AppResult<notification::Model> {
    notification::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|n| n.agent_id == agent_id)
        .ok_or(AppError::NotFound("notification"))
}

pub async fn mark_read(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
    id: Uuid,
) -> AppResult<notification::Model> {
    let found = find_own(db, agent_id, id).await?;
    if found.read_at.is_none() {
        notification::Entity::update_many()
            .col_expr(notification::Column::ReadAt, Expr::value(Utc::now()))
            .filter(notification::Column::Id.eq(id))
            .exec(db)
            .await?;
    }
    find_own(db, agent_id, id).await
}
