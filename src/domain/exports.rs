//! Contact exports as agents ask for them: the date range, the job record,
//! listing and cancelling. The work itself is done by `jobs`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::{export_job, membership};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::domain::access::{self, ProjectAccess, Role};
use crate::domain::contact_list::{ContactFilter, FilterInput};
use crate::domain::dates::{self, Side};
use crate::domain::export_choices::{ColumnChoice, ExportFormat, zone_from_stored};
use crate::domain::ids::new_id;
use crate::domain::locks;
use crate::error::{AppError, AppResult};

pub use entity::export_job::ExportStatus;

/// A half-open range of creation times, [from, to).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl DateRange {
    /// Reads `from` and `to` by the one date rule (`domain::dates`) in
    /// `time_zone` (IANA, default UTC).
    pub fn parse(from: &str, to: &str, time_zone: Option<&str>) -> AppResult<DateRange> {
        let zone = dates::parse_zone(time_zone, "timeZone")?;
        let from = dates::parse_bound(from, "from", zone, Side::Start)?;
        let to = dates::parse_bound(to, "to", zone, Side::End)?;
        if from >= to {
            return Err(AppError::bad_input("to", "must be after from"));
        }
        Ok(DateRange { from, to })
    }
}

/// What an export writes, besides its range: stored on the job when it is
/// asked for, read back by the worker that runs it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExportChoices {
    pub format: ExportFormat,
    /// The contacts list's filter; rows match it and the range.
    pub filter: ContactFilter,
    pub columns: ColumnChoice,
    /// Times are written in this zone.
    pub time_zone: chrono_tz::Tz,
}

impl ExportChoices {
    /// The choices a job was stored with.
    pub fn of_job(job: &export_job::Model) -> AppResult<ExportChoices> {
        let filter = match &job.filter {
            Some(stored) => {
                let input: FilterInput =
                    serde_json::from_value(stored.clone()).map_err(|error| {
                        AppError::internal(anyhow::anyhow!("stored filter: {error}"))
                    })?;
                ContactFilter::parse(input)?
            }
            None => ContactFilter::default(),
        };
        Ok(ExportChoices {
            format: ExportFormat::from_stored(&job.format),
            filter,
            columns: ColumnChoice::from_stored(job.columns.as_ref()),
            time_zone: zone_from_stored(job.time_zone.as_deref()),
        })
    }

    fn stored_filter(&self) -> Option<serde_json::Value> {
        let input = self.filter.input();
        (input != FilterInput::default()).then(|| serde_json::to_value(input).unwrap_or_default())
    }

    fn stored_zone(&self) -> Option<String> {
        (self.time_zone != chrono_tz::Tz::UTC).then(|| self.time_zone.name().to_owned())
    }
}

/// Exports one agent may have queued or running in one project at a time:
/// a document of aliased `exportContacts` must not queue hours of work.
pub const MAX_ACTIVE_EXPORTS_PER_AGENT: u64 = 5;

/// Stores a new export job, queued for a worker, unless the agent already
/// has `MAX_ACTIVE_EXPORTS_PER_AGENT` of them waiting or running here.
pub async fn request_export(
    db: &DatabaseConnection,
    access: &ProjectAccess,
    range: DateRange,
    choices: &ExportChoices,
    max_attempts: i32,
) -> AppResult<export_job::Model> {
    let txn = db.begin().await?;
    // Two requests of one agent at once count one after the other.
    locks::lock_values(
        &txn,
        vec![format!(
            "exports:{}:{}",
            access.project_id(),
            access.agent_id()
        )],
    )
    .await?;
    let active = export_job::Entity::find()
        .filter(export_job::Column::ProjectId.eq(access.project_id()))
        .filter(export_job::Column::RequestedBy.eq(access.agent_id()))
        .filter(export_job::Column::Status.is_in([ExportStatus::Queued, ExportStatus::Running]))
        .count(&txn)
        .await?;
    if active >= MAX_ACTIVE_EXPORTS_PER_AGENT {
        return Err(AppError::RateLimited {
            retry_after_secs: 60,
        });
    }
    let job = new_job(access, range, choices, max_attempts)
        .insert(&txn)
        .await?;
    txn.commit().await?;
    Ok(job)
}

fn new_job(
    access: &ProjectAccess,
    range: DateRange,
    choices: &ExportChoices,
    max_attempts: i32,
) -> export_job::ActiveModel {
    let now = Utc::now();
    export_job::ActiveModel {
        id: Set(new_id()),
        project_id: Set(access.project_id()),
        requested_by: Set(access.agent_id()),
        range_from: Set(range.from),
        range_to: Set(range.to),
        status: Set(ExportStatus::Queued),
        attempts: Set(0),
        max_attempts: Set(max_attempts),
        run_after: Set(now),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        rows_written: Set(0),
        rows_total: Set(None),
        object_key: Set(None),
        file_bytes: Set(None),
        error: Set(None),
        cancel_requested: Set(false),
        delivered_at: Set(None),
        mail_sent_at: Set(None),
        mail_attempts: Set(0),
        mail_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        started_at: Set(None),
        finished_at: Set(None),
        format: Set(choices.format.as_str().to_owned()),
        filter: Set(choices.stored_filter()),
        columns: Set(choices.columns.to_stored()),
        time_zone: Set(choices.stored_zone()),
        upload_id: Set(None),
        file_expired_at: Set(None),
    }
}

/// An export of a project the agent belongs to; another project's export
/// answers as a missing one.
pub async fn find_for_agent(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
    job_id: Uuid,
) -> AppResult<(export_job::Model, ProjectAccess)> {
    let job = export_job::Entity::find_by_id(job_id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound("export"))?;
    let access = access::require_role(db, agent_id, job.project_id, Role::Agent)
        .await
        .map_err(|error| match error {
            AppError::NotFound(_) => AppError::NotFound("export"),
            other => other,
        })?;
    Ok((job, access))
}

/// A page of a project's exports, newest first, after the job `after`.
/// Of the jobs `job_ids`, those of projects `agent_id` is a member of,
/// by id, in two statements; the others are left out, as missing ones are.
pub async fn find_many_for_agent(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
    job_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, export_job::Model>> {
    let jobs = export_job::Entity::find()
        .filter(export_job::Column::Id.is_in(job_ids.iter().copied()))
        .all(db)
        .await?;
    let member_of: HashSet<Uuid> = membership::Entity::find()
        .filter(membership::Column::AgentId.eq(agent_id))
        .filter(membership::Column::ProjectId.is_in(jobs.iter().map(|job| job.project_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|membership| membership.project_id)
        .collect();
    Ok(jobs
        .into_iter()
        .filter(|job| member_of.contains(&job.project_id))
        .map(|job| (job.id, job))
        .collect())
}

pub async fn list(
    db: &impl ConnectionTrait,
    access: &ProjectAccess,
    first: u64,
    after: Option<Uuid>,
) -> AppResult<(Vec<export_job::Model>, bool)> {
    let mut query = export_job::Entity::find()
        .filter(export_job::Column::ProjectId.eq(access.project_id()))
        .order_by_desc(export_job::Column::Id)
        .limit(first + 1);
    if let Some(after) = after {
        query = query.filter(export_job::Column::Id.lt(after));
    }
    let mut jobs = query.all(db).await?;
    let has_next = jobs.len() as u64 > first;
    jobs.truncate(first as usize);
    Ok((jobs, has_next))
}

/// Who may stop an export: the agent who asked for it, or an admin of its
/// project.
pub fn may_cancel(access: &ProjectAccess, job: &export_job::Model) -> bool {
    access.project_id() == job.project_id
        && (access.agent_id() == job.requested_by || access.role() == Role::Admin)
}

/// Cancels an export that has not been delivered. A queued one is cancelled
/// at once. A running one is flagged: its worker checks the flag before the
/// upload and, in the statement that would mark it completed, before the
/// delivery, so a cancel accepted here always ends CANCELLED with nothing
/// delivered. The answer shows the job as it will end.
pub async fn cancel(
    db: &impl ConnectionTrait,
    access: &ProjectAccess,
    job: export_job::Model,
) -> AppResult<export_job::Model> {
    if !may_cancel(access, &job) {
        return Err(AppError::Forbidden(
            "only the agent who asked for an export or a project admin may cancel it",
        ));
    }
    let now = Utc::now();
    let queued_cancelled = export_job::Entity::update_many()
        .col_expr(
            export_job::Column::Status,
            Expr::value(ExportStatus::Cancelled),
        )
        .col_expr(export_job::Column::FinishedAt, Expr::value(now))
        .col_expr(export_job::Column::UpdatedAt, Expr::value(now))
        .filter(export_job::Column::Id.eq(job.id))
        .filter(export_job::Column::Status.eq(ExportStatus::Queued))
        .exec(db)
        .await?;
    if queued_cancelled.rows_affected == 0 {
        // Running (or claimed since it was read): only the flag, and only
        // while it is still running, so that a job completed meanwhile is
        // refused below instead of reported as cancelled.
        let flagged = export_job::Entity::update_many()
            .col_expr(export_job::Column::CancelRequested, Expr::value(true))
            .col_expr(export_job::Column::UpdatedAt, Expr::value(now))
            .filter(export_job::Column::Id.eq(job.id))
            .filter(export_job::Column::Status.eq(ExportStatus::Running))
            .exec(db)
            .await?;
        if flagged.rows_affected == 0 {
            let current = reload(db, job.id).await?;
            return match current.status {
                ExportStatus::Cancelled => {
                    Err(AppError::bad_input("id", "the export is already cancelled"))
                }
                ExportStatus::Completed => Err(AppError::bad_input(
                    "id",
                    "the export is already completed and its link delivered; it can no longer be cancelled",
                )),
                _ => Err(AppError::bad_input(
                    "id",
                    "the export has already failed; there is nothing to cancel",
                )),
            };
        }
    }
    let mut answer = reload(db, job.id).await?;
    if answer.cancel_requested && answer.status == ExportStatus::Running {
        // Its worker has yet to notice, but will end it so.
        answer.status = ExportStatus::Cancelled;
    }
    Ok(answer)
}

pub async fn reload(db: &impl ConnectionTrait, job_id: Uuid) -> AppResult<export_job::Model> {
    export_job::Entity::find_by_id(job_id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound("export"))
}

/// When retention deleted the file stored under `key`, if it did: keys
/// are `<project>/<job>.<extension>`, so the job is found by its id, and
/// only a job whose file that was answers.
pub async fn file_expiry_of_key(
    db: &impl ConnectionTrait,
    key: &str,
) -> AppResult<Option<DateTime<Utc>>> {
    let Some(job_id) = job_id_of_key(key) else {
        return Ok(None);
    };
    let job = export_job::Entity::find_by_id(job_id).one(db).await?;
    Ok(job
        .filter(|job| job.object_key.as_deref() == Some(key))
        .and_then(|job| job.file_expired_at))
}

fn job_id_of_key(key: &str) -> Option<Uuid> {
    let file = key.rsplit('/').next()?;
    let stem = file.split('.').next()?;
    Uuid::parse_str(stem).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_id_is_read_from_the_key() {
        let id = Uuid::now_v7();
        assert_eq!(
            job_id_of_key(&format!("{}/{id}.csv", Uuid::now_v7())),
            Some(id)
        );
        assert_eq!(job_id_of_key(&format!("{id}.xlsx")), Some(id));
        assert_eq!(job_id_of_key("project/not-an-id.csv"), None);
    }

    #[test]
    fn instants_and_calendar_dates() {
        let range =
            DateRange::parse("2026-01-01T00:00:00Z", "2026-02-01T00:00:00+01:00", None).unwrap();
        assert_eq!(range.from.to_rfc3339(), "2026-01-01T00:00:00+00:00");
        assert_eq!(range.to.to_rfc3339(), "2026-01-31T23:00:00+00:00");

        let range = DateRange::parse("2026-03-01", "2026-03-31", Some("Europe/Madrid")).unwrap();
        assert_eq!(range.from.to_rfc3339(), "2026-02-28T23:00:00+00:00");
        // The whole of 31 March, which is in summer time.
        assert_eq!(range.to.to_rfc3339(), "2026-03-31T22:00:00+00:00");
    }

    #[test]
    fn bad_ranges_name_the_input() {
        let cases = [
            (("2026-02-01", "2026-01-01", None), "to"),
            (("2026-01-01", "2026-01-01T00:00:00Z", None), "to"),
            (("yesterday", "2026-01-01", None), "from"),
            (("2026-01-01", "2026-02-30", None), "to"),
            (
                ("2026-01-01", "2026-02-01", Some("Mars/Olympus")),
                "timeZone",
            ),
        ];
        for ((from, to, zone), field) in cases {
            match DateRange::parse(from, to, zone) {
                Err(AppError::BadInput { field: got, .. }) => assert_eq!(got, field, "{from} {to}"),
                other => panic!("{from} {to}: {:?}", other.map(|_| ())),
            }
        }
    }
}
