//! Export files past their retention: removed from the store (S3 or the
//! local folder), and their jobs marked with when, so that the job and
//! its links say the file has expired.

use chrono::{DateTime, Utc};
use entity::export_job;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::error::AppResult;
use crate::storage::ExportStore;

/// Jobs looked at per query, so that a large backlog is not read at once.
const BATCH: u64 = 200;

/// How a pass over the export files went.
#[derive(Debug, Default)]
pub struct ExpiredFiles {
    pub deleted: u64,
    /// The store refused or could not be reached; the job is left as it
    /// was, for the next pass.
    pub failed: u64,
}

/// Removes the files of jobs that finished before `cutoff` and marks the
/// jobs expired at `now`. The object goes first and the mark after: a pass
/// cut short leaves a job that the next pass deletes again (removing a
/// missing object succeeds) and marks.
pub async fn expire_files_finished_before(
    db: &impl ConnectionTrait,
    store: &dyn ExportStore,
    cutoff: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AppResult<ExpiredFiles> {
    let mut outcome = ExpiredFiles::default();
    let mut after: Option<Uuid> = None;
    loop {
        let mut query = export_job::Entity::find()
            .filter(export_job::Column::ObjectKey.is_not_null())
            .filter(export_job::Column::FileExpiredAt.is_null())
            .filter(export_job::Column::FinishedAt.lt(cutoff))
            .order_by_asc(export_job::Column::Id)
            .limit(BATCH);
        if let Some(after) = after {
            query = query.filter(export_job::Column::Id.gt(after));
        }
        let jobs = query.all(db).await?;
        let Some(last) = jobs.last() else {
            return Ok(outcome);
        };
        after = Some(last.id);
        for job in jobs {
            let Some(key) = job.object_key.as_deref() else {
                continue;
            };
            if let Err(error) = store.delete(key).await {
                tracing::warn!(job = %job.id, key, %error, "cannot delete an expired export file; next retention run tries again");
                outcome.failed += 1;
                continue;
            }
            // Another instance may have marked it meanwhile: one mark wins.
            let marked = export_job::Entity::update_many()
                .col_expr(export_job::Column::FileExpiredAt, Expr::value(now))
                .col_expr(export_job::Column::UpdatedAt, Expr::value(now))
                .filter(export_job::Column::Id.eq(job.id))
                .filter(export_job::Column::FileExpiredAt.is_null())
                .exec(db)
                .await?;
            outcome.deleted += marked.rows_affected;
        }
    }
}
