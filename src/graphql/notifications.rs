//! The caller's in-app notifications.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Enum, ID, Object, Result, Subscription};
use chrono::{DateTime, Utc};
use entity::notification;
use futures_util::{Stream, StreamExt};

use crate::domain::events::Event;
use crate::domain::ids::parse_id;
use crate::domain::notifications;
use crate::error::AppError;
use crate::graphql::context::{require_agent, services};
use crate::graphql::exports::ExportJob;
use crate::graphql::loaders::{JobForAgent, Loaders};

const MAX_PAGE: u64 = 100;

/// What a notification is about.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "notifications::NotificationKind")]
pub enum NotificationKind {
    /// An export finished: `exportJob.downloadUrl` is the link.
    ExportCompleted,
    /// An export failed for good: `body` says why.
    ExportFailed,
}

pub struct Notification(pub notification::Model);

/// A notification of the agent who reads it.
#[Object]
impl Notification {
    /// The notification's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// What the notification is about.
    async fn kind(&self) -> Result<NotificationKind> {
        Ok(notifications::NotificationKind::of(&self.0)?.into())
    }

    /// A short line to show, e.g. in a list.
    async fn title(&self) -> &str {
        &self.0.title
    }

    /// The text in full.
    async fn body(&self) -> &str {
        &self.0.body
    }

    /// The project it is about.
    async fn project_id(&self) -> ID {
        ID(self.0.project_id.to_string())
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the agent marked it read; null while unread.
    async fn read_at(&self) -> Option<DateTime<Utc>> {
        self.0.read_at
    }

    /// The export it is about, with its download link; null once the agent
    /// left the project.
    async fn export_job(&self, ctx: &Context<'_>) -> Result<Option<ExportJob>> {
        let Some(job_id) = self.0.export_job_id else {
            return Ok(None);
        };
        let agent = require_agent(ctx)?;
        let job = ctx
            .data::<Loaders>()?
            .export_jobs
            .load_one(JobForAgent {
                agent_id: agent.id,
                job_id,
            })
            .await?;
        Ok(job.map(ExportJob))
    }
}

/// A page of Notifications, newest first (a Relay connection).
pub type NotificationConnection = Connection<String, Notification, EmptyFields, EmptyFields>;

#[derive(Default)]
pub struct NotificationQuery;

#[Object]
impl NotificationQuery {
    /// The caller's notifications, newest first.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many notifications, from 1 to 100; 20 without it.")] first: Option<
            i32,
        >,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        #[graphql(desc = "Only those not marked read.", default)] unread_only: bool,
    ) -> Result<NotificationConnection> {
        let agent = require_agent(ctx)?;
        let first = first.unwrap_or(20);
        if first < 1 || first as u64 > MAX_PAGE {
            return Err(
                AppError::bad_input("first", format!("must be between 1 and {MAX_PAGE}")).into(),
            );
        }
        let after = after.map(|cursor| parse_id(&cursor, "after")).transpose()?;
        let (found, has_next) = notifications::list(
            &services(ctx).db,
            agent.id,
            unread_only,
            first as u64,
            after,
        )
        .await?;
        let mut connection = Connection::new(false, has_next);
        connection.edges.extend(
            found
                .into_iter()
                .map(|n| Edge::new(n.id.to_string(), Notification(n))),
        );
        Ok(connection)
    }
}

#[derive(Default)]
pub struct NotificationMutation;

#[Object]
impl NotificationMutation {
    /// Marks one of the caller's notifications read.
    async fn mark_notification_read(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The notification.")] id: ID,
    ) -> Result<Notification> {
        let agent = require_agent(ctx)?;
        let id = parse_id(&id, "id")?;
        Ok(Notification(
            notifications::mark_read(&services(ctx).db, agent.id, id).await?,
        ))
    }
}

#[derive(Default)]
pub struct NotificationSubscription;

#[Subscription]
impl NotificationSubscription {
    /// The caller's new notifications as they are created.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Notification> + use<>> {
        let agent_id = require_agent(ctx)?.id;
        let db = services(ctx).db.clone();
        Ok(services(ctx).bus.subscribe().filter_map(move |event| {
            let db = db.clone();
            async move {
                match event {
                    Event::NotificationCreated(created) if created.agent_id == agent_id => {
                        notifications::find_own(&db, agent_id, created.notification_id)
                            .await
                            .ok()
                            .map(Notification)
                    }
                    _ => None,
                }
            }
        }))
    }
}
