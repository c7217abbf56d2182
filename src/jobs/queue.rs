//! The durable queue of export jobs: claiming with a lease that a crashed
//! worker loses, heartbeats, and the guarded state changes of a run.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::export_job;
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, ExprTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use crate::domain::exports::ExportStatus;
use crate::error::{AppError, AppResult};

fn lease_end(lease: Duration) -> AppResult<DateTime<Utc>> {
    Ok(Utc::now() + chrono::Duration::from_std(lease).map_err(AppError::internal)?)
}

/// Jobs a worker may take now: queued and due; running under a lease that
/// expired (its worker died); or completed with the mail still to send.
fn runnable(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(
            Condition::all()
                .add(export_job::Column::Status.eq(ExportStatus::Queued))
                .add(export_job::Column::RunAfter.lte(now)),
        )
        .add(
            Condition::all()
                .add(export_job::Column::Status.eq(ExportStatus::Running))
                .add(export_job::Column::LeaseExpiresAt.lt(now)),
        )
        .add(
            Condition::all()
                .add(export_job::Column::Status.eq(ExportStatus::Completed))
                .add(export_job::Column::MailSentAt.is_null())
                .add(export_job::Column::RunAfter.lte(now))
                .add(
                    Expr::col(export_job::Column::MailAttempts)
                        .lt(Expr::col(export_job::Column::MaxAttempts)),
                )
                .add(
                    Condition::any()
                        .add(export_job::Column::LeaseExpiresAt.is_null())
                        .add(export_job::Column::LeaseExpiresAt.lt(now)),
                ),
        )
}

/// Takes the next runnable job for `worker`. On PostgreSQL the candidate row
/// is locked with SKIP LOCKED, so two instances never take the same job;
/// SQLite has one writer at a time.
pub async fn claim(
    db: &DatabaseConnection,
    worker: &str,
    lease: Duration,
) -> AppResult<Option<export_job::Model>> {
    claim_matching(db, worker, lease, None).await
}

/// Takes one particular job, if it is runnable (the command line runs a
/// job it just created this way).
pub async fn claim_job(
    db: &DatabaseConnection,
    job_id: Uuid,
    worker: &str,
    lease: Duration,
) -> AppResult<Option<export_job::Model>> {
    claim_matching(db, worker, lease, Some(job_id)).await
}

async fn claim_matching(
    db: &DatabaseConnection,
    worker: &str,
    lease: Duration,
    only: Option<Uuid>,
) -> AppResult<Option<export_job::Model>> {
    let now = Utc::now();
    let txn = db.begin().await?;
    let mut candidates = export_job::Entity::find().filter(runnable(now));
    if let Some(job_id) = only {
        candidates = candidates.filter(export_job::Column::Id.eq(job_id));
    }
    let candidate = candidates
        .order_by_asc(export_job::Column::RunAfter)
        .order_by_asc(export_job::Column::Id)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .one(&txn)
        .await?;
    let Some(job) = candidate else {
        txn.commit().await?;
        return Ok(None);
    };
    let mut update = export_job::Entity::update_many()
        .col_expr(export_job::Column::LeaseOwner, Expr::value(worker))
        .col_expr(
            export_job::Column::LeaseExpiresAt,
            Expr::value(lease_end(lease)?),
        )
        .col_expr(export_job::Column::UpdatedAt, Expr::value(now));
    if job.status != ExportStatus::Completed {
        update = update
            .col_expr(
                export_job::Column::Status,
                Expr::value(ExportStatus::Running),
            )
            .col_expr(
                export_job::Column::Attempts,
                Expr::col(export_job::Column::Attempts).add(1),
            )
            .col_expr(
                export_job::Column::StartedAt,
                Expr::value(job.started_at.unwrap_or(now)),
            );
        if job.object_key.is_none() {
            // A new attempt writes the file from the start: its progress
            // starts at zero with it, instead of seeming to go backwards
            // within the attempt.
            update = update
                .col_expr(export_job::Column::RowsWritten, Expr::value(0i64))
                .col_expr(
                    export_job::Column::RowsTotal,
                    Expr::value(Option::<i64>::None),
                );
        }
    }
    let claimed = update
        .filter(export_job::Column::Id.eq(job.id))
        .filter(runnable(now))
        .exec(&txn)
        .await?;
    if claimed.rows_affected == 0 {
        txn.commit().await?;
        return Ok(None);
    }
    let job = export_job::Entity::find_by_id(job.id).one(&txn).await?;
    txn.commit().await?;
    Ok(job)
}

/// What a heartbeat learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heartbeat {
    Held {
        cancel_requested: bool,
    },
    /// Another worker has the job now; stop without touching it.
    Lost,
}

/// Extends the lease while the job runs, and reports a cancellation.
pub async fn heartbeat(
    db: &impl ConnectionTrait,
    job_id: Uuid,
    worker: &str,
    lease: Duration,
) -> AppResult<Heartbeat> {
    let extended = export_job::Entity::update_many()
        .col_expr(
            export_job::Column::LeaseExpiresAt,
            Expr::value(lease_end(lease)?),
        )
        .filter(export_job::Column::Id.eq(job_id))
        .filter(export_job::Column::LeaseOwner.eq(worker))
        .filter(export_job::Column::Status.is_in([ExportStatus::Running, ExportStatus::Completed]))
        .exec(db)
        .await?;
    if extended.rows_affected == 0 {
        return Ok(Heartbeat::Lost);
    }
    let job = export_job::Entity::find_by_id(job_id).one(db).await?;
    Ok(Heartbeat::Held {
        cancel_requested: job.is_some_and(|job| job.cancel_requested),
    })
}

/// An update that applies only while `worker` holds the job.
fn guarded(job_id: Uuid, worker: &str) -> sea_orm::UpdateMany<export_job::Entity> {
    export_job::Entity::update_many()
        .col_expr(export_job::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(export_job::Column::Id.eq(job_id))
        .filter(export_job::Column::LeaseOwner.eq(worker))
}

/// A guarded update that also gives the lease up: the job leaves this
/// worker's hands, for the queue, a later mail attempt, or for good.
fn handing_back(job_id: Uuid, worker: &str) -> sea_orm::UpdateMany<export_job::Entity> {
    guarded(job_id, worker)
        .col_expr(
            export_job::Column::LeaseOwner,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            export_job::Column::LeaseExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
}

async fn apply(
    db: &impl ConnectionTrait,
    update: sea_orm::UpdateMany<export_job::Entity>,
) -> AppResult<bool> {
    Ok(update.exec(db).await?.rows_affected == 1)
}

pub async fn record_progress(
    db: &impl ConnectionTrait,
    job_id: Uuid,
    worker: &str,
    rows_written: i64,
    rows_total: i64,
) -> AppResult<bool> {
    // Never backwards within an attempt: a late, smaller count is dropped.
    let moved = guarded(job_id, worker)
        .filter(export_job::Column::RowsWritten.lte(rows_written))
        .col_expr(export_job::Column::RowsWritten, Expr::value(rows_written))
        .col_expr(export_job::Column::RowsTotal, Expr::value(rows_total))
        .exec(db)
        .await?;
    if moved.rows_affected == 1 {
        return Ok(true);
    }
    still_held(db, job_id, worker).await
}

/// Whether `worker` still holds the job.
async fn still_held(db: &impl ConnectionTrait, job_id: Uuid, worker: &str) -> AppResult<bool> {
    Ok(export_job::Entity::find_by_id(job_id)
        .filter(export_job::Column::LeaseOwner.eq(worker))
        .one(db)
        .await?
        .is_some())
}

/// Whether a cancel of the job was accepted, read from the row itself: the
/// run asks right before it uploads, not only at heartbeats.
pub async fn cancel_requested(db: &impl ConnectionTrait, job_id: Uuid) -> AppResult<bool> {
    Ok(export_job::Entity::find_by_id(job_id)
        .one(db)
        .await?
        .is_some_and(|job| job.cancel_requested))
}

/// Remembers the multipart upload the attempt has started (or, with none,
/// that it finished or was aborted), so that a worker taking the job over
/// after a crash can abort it.
pub async fn record_upload_in_flight(
    db: &impl ConnectionTrait,
    job_id: Uuid,
    worker: &str,
    upload_id: Option<&str>,
) -> AppResult<bool> {
    apply(
        db,
        guarded(job_id, worker).col_expr(export_job::Column::UploadId, Expr::value(upload_id)),
    )
    .await
}

/// Forgets an unfinished upload that was aborted; not guarded by the lease,
/// since the worker that started it is gone.
pub async fn forget_upload(
    db: &impl ConnectionTrait,
    job_id: Uuid,
    upload_id: &str,
) -> AppResult<()> {
    export_job::Entity::update_many()
        .col_expr(
            export_job::Column::UploadId,
            Expr::value(Option::<String>::None),
        )
        .filter(export_job::Column::Id.eq(job_id))
        .filter(export_job::Column::UploadId.eq(upload_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Remembers the uploaded object, so that a rerun after a crash delivers it
/// instead of uploading again.
pub async fn record_upload(
    db: &impl ConnectionTrait,
    job_id: Uuid,
    worker: &str,
    object_key: &str,
    file_bytes: i64,
    rows: i64,
) -> AppResult<bool> {
    apply(
        db,
        guarded(job_id, worker)
            .col_expr(export_job::Column::ObjectKey, Expr::value(object_key))
            .col_expr(
                export_job::Column::UploadId,
                Expr::value(Option::<String>::None),
            )
            .col_expr(export_job::Column::FileBytes, Expr::value(file_bytes))
            .col_expr(export_job::Column::RowsWritten, Expr::value(rows))
            .col_expr(export_job::Column::RowsTotal, Expr::value(rows)),
    )
    .await
}

/// The file is delivered; the lease stays so that the same run sends the
/// mail. Not once a cancel was accepted: the flag is read in this very
/// statement, so a cancel and a completion cannot both succeed.
pub async fn mark_completed(
    db: &impl ConnectionTrait,
    job_id: Uuid,
    worker: &str,
) -> AppResult<bool> {
    let now = Utc::now();
    apply(
        db,
        guarded(job_id, worker)
            .filter(export_job::Column::Status.eq(ExportStatus::Running))
            .filter(export_job::Column::CancelRequested.eq(false))
            .col_expr(
                export_job::Column::Status,
                Expr::value(ExportStatus::Completed),
            )
            .col_expr(export_job::Column::DeliveredAt, Expr::value(now))
            .col_expr(export_job::Column::FinishedAt, Expr::value(now))
            .col_expr(
                export_job::Column::Error,
                Expr::value(Option::<String>::None),
            ),
    )
    .await
}

pub async fn mark_mail_sent(
    db: &impl ConnectionTrait,
    job_id: Uuid,
    worker: &str,
) -> AppResult<bool> {
    apply(
        db,
        handing_back(job_id, worker)
            .col_expr(export_job::Column::MailSentAt, Expr::value(Utc::now()))
            .col_expr(
                export_job::Column::MailAttempts,
                Expr::col(export_job::Column::MailAttempts).add(1),
            )
            .col_expr(
                export_job::Column::MailError,
                Expr::value(Option::<String>::None),
            ),
    )
    .await
}

/// A failed mail is recorded and tried again later; the export stays done.
pub async fn mail_failed(
    db: &impl ConnectionTrait,
    job_id: Uuid,
    worker: &str,
    error: &str,
    retry_in: Duration,
) -> AppResult<bool> {
    apply(
        db,
        handing_back(job_id, worker)
            .col_expr(
                export_job::Column::MailAttempts,
                Expr::col(export_job::Column::MailAttempts).add(1),
            )
            .col_expr(export_job::Column::MailError, Expr::value(truncate(error)))
            .col_expr(
                export_job::Column::RunAfter,
                Expr::value(lease_end(retry_in)?),
            ),
    )
    .await
}

/// Back to the queue after a transient failure, not before `retry_in`.
pub async fn retry_later(
    db: &impl ConnectionTrait,
    job_id: Uuid,
    worker: &str,
    error: &str,
    retry_in: Duration,
) -> AppResult<bool> {
    apply(
        db,
        handing_back(job_id, worker)
            .col_expr(
                export_job::Column::Status,
                Expr::value(ExportStatus::Queued),
            )
            .col_expr(export_job::Column::Error, Expr::value(truncate(error)))
            .col_expr(
                export_job::Column::RunAfter,
                Expr::value(lease_end(retry_in)?),
            ),
    )
    .await
}

/// A final state: FAILED with a reason, or CANCELLED.
pub async fn finish(
    db: &impl ConnectionTrait,
    job_id: Uuid,
    worker: &str,
    status: ExportStatus,
    error: Option<&str>,
) -> AppResult<bool> {
    debug_assert!(matches!(
        status,
        ExportStatus::Failed | ExportStatus::Cancelled
    ));
    apply(
        db,
        handing_back(job_id, worker)
            .col_expr(export_job::Column::Status, Expr::value(status))
            .col_expr(export_job::Column::Error, Expr::value(error.map(truncate)))
            .col_expr(export_job::Column::FinishedAt, Expr::value(Utc::now())),
    )
    .await
}

/// Gives the job back at shutdown so that another instance takes it at once.
/// The interrupted attempt keeps its number (the next one is a new attempt,
/// its progress from zero), but does not count against the retries.
pub async fn release(db: &impl ConnectionTrait, job_id: Uuid, worker: &str) -> AppResult<bool> {
    apply(
        db,
        handing_back(job_id, worker)
            .filter(export_job::Column::Status.eq(ExportStatus::Running))
            .col_expr(
                export_job::Column::Status,
                Expr::value(ExportStatus::Queued),
            )
            .col_expr(
                export_job::Column::MaxAttempts,
                Expr::col(export_job::Column::MaxAttempts).add(1),
            ),
    )
    .await
}

fn truncate(text: &str) -> String {
    text.chars().take(1000).collect()
}
