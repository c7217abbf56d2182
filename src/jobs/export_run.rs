//! One run of a contact export: stream the rows to a temporary CSV file,
//! upload it, and deliver the link in the app and by mail.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entity::{agent, contact, export_job, form_question};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter, QuerySelect, QueryTrait, Statement, TransactionTrait as _,
};
use tracing::Instrument as _;

use crate::config::ExportSettings;
use crate::domain::access::{self, Role};
use crate::domain::events::{Event, ExportUpdated, NotificationCreated};
use crate::domain::export_choices::ExportFormat;
use crate::domain::export_links::ExportLinks;
use crate::domain::exports::{ExportChoices, ExportStatus};
use crate::domain::notifications::{self, NewNotification};
use crate::error::AppError;
use crate::jobs::export_format::{WriteError, create_writer};
use crate::jobs::export_layout::ExportLayout;
use crate::jobs::export_source::{ExportSource, read_ahead};
use crate::jobs::queue;
use crate::jobs::temp_files::TempFile;
use crate::mail::{Mailer, OutgoingMail};
use crate::pubsub::EventBus;
use crate::storage::{ExportStore, StorageError, UploadJournal};

/// How often progress is pushed to subscribers at most.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// Why a run ended without finishing.
#[derive(Debug)]
pub enum RunError {
    /// Worth another attempt: the database, S3 or SMTP may come back.
    Transient(String),
    /// Will not get better by trying again; the reason is shown to the agent.
    Permanent(String),
    /// The agent cancelled the export.
    Cancelled,
    /// Another worker took the job over (this one was presumed dead).
    LeaseLost,
}

impl From<AppError> for RunError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Internal(cause) => {
                tracing::warn!(error = format!("{cause:#}"), "export step failed");
                RunError::Transient("the database could not be reached".into())
            }
            other => RunError::Permanent(other.public_message()),
        }
    }
}

impl From<sea_orm::DbErr> for RunError {
    fn from(error: sea_orm::DbErr) -> Self {
        AppError::from(error).into()
    }
}

fn storage_error(error: StorageError) -> RunError {
    tracing::warn!(%error, "export storage step failed");
    if error.is_transient() {
        RunError::Transient("the file store could not be reached".into())
    } else {
        RunError::Permanent("the file store refused the export file".into())
    }
}

/// Signals from the heartbeat to the running export.
#[derive(Default)]
pub struct Control {
    pub cancel_requested: AtomicBool,
    pub lease_lost: AtomicBool,
}

impl Control {
    fn check(&self) -> Result<(), RunError> {
        if self.lease_lost.load(Ordering::Relaxed) {
            return Err(RunError::LeaseLost);
        }
        if self.cancel_requested.load(Ordering::Relaxed) {
            return Err(RunError::Cancelled);
        }
        Ok(())
    }
}

pub struct ExportRunner {
    pub db: DatabaseConnection,
    pub store: Arc<dyn ExportStore>,
    pub mailer: Arc<dyn Mailer>,
    pub bus: Arc<dyn EventBus>,
    pub settings: ExportSettings,
    pub tmp_dir: PathBuf,
    /// Signs the links that are mailed; they point at this server.
    pub links: Arc<ExportLinks>,
}

pub fn object_key(job: &export_job::Model) -> String {
    let format = ExportFormat::from_stored(&job.format);
    format!("{}/{}.{}", job.project_id, job.id, format.extension())
}

/// The temporary file of the job's current attempt.
pub fn temp_path(tmp_dir: &Path, job: &export_job::Model) -> PathBuf {
    let format = ExportFormat::from_stored(&job.format);
    tmp_dir.join(format!(
        "export-{}-{}.{}",
        job.id,
        job.attempts,
        format.extension()
    ))
}

/// Writes the multipart upload an attempt starts into its job's row.
struct JobUploadJournal<'a> {
    db: &'a DatabaseConnection,
    job_id: uuid::Uuid,
    worker: &'a str,
    key: &'a str,
}

#[async_trait::async_trait]
impl UploadJournal for JobUploadJournal<'_> {
    async fn multipart_started(&self, upload_id: &str) -> Result<(), StorageError> {
        let unrecorded = |detail: String| StorageError::Unavailable {
            operation: "record the multipart upload",
            key: self.key.to_owned(),
            detail,
            source: None,
        };
        match queue::record_upload_in_flight(self.db, self.job_id, self.worker, Some(upload_id))
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(unrecorded("the job was taken over".into())),
            Err(error) => Err(unrecorded(format!("{error:?}"))),
        }
    }
}

impl ExportRunner {
    pub fn announce(&self, job: &export_job::Model) {
        self.bus.publish(Event::ExportUpdated(ExportUpdated {
            project_id: job.project_id,
            job_id: job.id,
        }));
    }

    /// Runs a claimed job to its end: a delivered export, or an error.
    pub async fn run(
        &self,
        job: &export_job::Model,
        worker: &str,
        control: &Control,
    ) -> Result<(), RunError> {
        if job.status == ExportStatus::Completed {
            return self
                .send_mail(job, worker)
                .instrument(tracing::info_span!("export mail"))
                .await;
        }
        control.check()?;
        // Published at the claim: a new attempt is an event of its own,
        // with its number and its progress back at zero.
        self.announce(job);
        let key = object_key(job);
        if let Some(upload_id) = &job.upload_id {
            // The attempt before this one died with an upload in flight.
            self.abort_dead_upload(job, &key, upload_id).await;
        }
        // A cancel accepted while an earlier attempt ran (or waited for a
        // retry) holds for this one too.
        self.check_not_cancelled(job).await?;
        let already_uploaded = match &job.object_key {
            Some(stored) => self.store.exists(stored).await.map_err(storage_error)?,
            None => false,
        };
        if !already_uploaded {
            self.write_and_upload(job, worker, control, &key)
                .instrument(tracing::info_span!("export file"))
                .await?;
        }
        control.check()?;

        // The link goes only to someone who may still see the project.
        if access::require_role(&self.db, job.requested_by, job.project_id, Role::Agent)
            .await
            .is_err()
        {
            if let Err(error) = self.store.delete(&key).await {
                tracing::warn!(%error, "cannot remove an undelivered export");
            }
            return Err(RunError::Permanent(
                "the agent who asked is no longer a member of the project".into(),
            ));
        }
        // The status and the agent's notification land together: whoever
        // sees COMPLETED also finds the notification. The completion itself
        // reads the cancel flag, so a cancel accepted until this statement
        // still wins, and nothing is delivered.
        let txn = self.db.begin().await?;
        if !queue::mark_completed(&txn, job.id, worker).await? {
            txn.rollback().await?;
            return Err(self.why_not_completed(job).await);
        }
        let done = crate::domain::exports::reload(&txn, job.id).await?;
        let note = notifications::create(
            &txn,
            NewNotification {
                agent_id: job.requested_by,
                project_id: job.project_id,
                kind: notifications::NotificationKind::ExportCompleted,
                title: "Your contacts export is ready",
                body: &format!("{} contacts exported.", done.rows_written),
                export_job_id: Some(job.id),
            },
        )
        .await?;
        txn.commit().await?;
        tracing::info!(
            rows = done.rows_written,
            bytes = done.file_bytes,
            "export completed"
        );
        self.announce(&done);
        self.bus
            .publish(Event::NotificationCreated(NotificationCreated {
                project_id: job.project_id,
                agent_id: job.requested_by,
                notification_id: note.id,
            }));
        self.send_mail(&done, worker)
            .instrument(tracing::info_span!("export mail"))
            .await
    }

    /// A completion refused by the row: cancelled, or no longer this
    /// worker's job.
    async fn why_not_completed(&self, job: &export_job::Model) -> RunError {
        match queue::cancel_requested(&self.db, job.id).await {
            Ok(true) => RunError::Cancelled,
            Ok(false) => RunError::LeaseLost,
            Err(error) => error.into(),
        }
    }

    /// Stops a cancelled run from going further, by the row rather than the
    /// heartbeat's last reading.
    async fn check_not_cancelled(&self, job: &export_job::Model) -> Result<(), RunError> {
        if queue::cancel_requested(&self.db, job.id).await? {
            return Err(RunError::Cancelled);
        }
        Ok(())
    }

    /// Aborts the multipart upload a dead attempt left unfinished, whose
    /// parts would otherwise stay in the bucket (and be paid for).
    async fn abort_dead_upload(&self, job: &export_job::Model, key: &str, upload_id: &str) {
        match self.store.abort_upload(key, upload_id).await {
            Ok(()) => {
                tracing::info!(upload_id, "aborted the unfinished upload of a dead attempt");
                if let Err(error) = queue::forget_upload(&self.db, job.id, upload_id).await {
                    tracing::warn!(?error, "cannot record the aborted upload");
                }
            }
            Err(error) => {
                tracing::warn!(%error, upload_id, "cannot abort the unfinished upload of a dead attempt");
            }
        }
    }

    /// Removes what a cancelled or refused run may have stored: the object
    /// and an upload still in flight.
    pub async fn remove_undelivered(&self, job_id: uuid::Uuid) {
        let Ok(current) = crate::domain::exports::reload(&self.db, job_id).await else {
            return;
        };
        let key = current
            .object_key
            .clone()
            .unwrap_or_else(|| object_key(&current));
        if let Some(upload_id) = &current.upload_id
            && let Err(error) = self.store.abort_upload(&key, upload_id).await
        {
            tracing::warn!(%error, upload_id, "cannot abort the upload of a cancelled export");
        }
        if let Err(error) = self.store.delete(&key).await {
            tracing::warn!(%error, "cannot remove an undelivered export");
        }
    }

    async fn write_and_upload(
        &self,
        job: &export_job::Model,
        worker: &str,
        control: &Control,
        key: &str,
    ) -> Result<(), RunError> {
        let choices = ExportChoices::of_job(job)?;
        let mut source = ExportSource {
            project_id: job.project_id,
            from: job.range_from,
            to: job.range_to,
            filter: choices.filter.clone(),
            with_attributes: false,
        };
        let found_keys = match choices.columns.chosen() {
            Some(_) => Vec::new(),
            None => attribute_keys(&self.db, &source).await?,
        };
        let layout = ExportLayout::new(choices.columns.resolve(found_keys), choices.time_zone);
        source.with_attributes = layout.needs_attributes();
        // Counted beside the reading, on a connection of its own, instead of
        // before it: the count is a scan of the same rows, which the export
        // used to wait for. Progress is recorded once the total is known
        // (well within the first interval), so it never runs ahead of it.
        let mut counting = Some(tokio::spawn(
            count_rows(
                self.db.clone(),
                source.condition(self.db.get_database_backend()),
            )
            .in_current_span(),
        ));
        let mut total: Option<i64> = None;

        let path = temp_path(&self.tmp_dir, job);
        let _cleanup = TempFile::new(path.clone());
        let mut writer = {
            let (path, scratch) = (path.clone(), self.tmp_dir.clone());
            blocking(&path.clone(), move || {
                create_writer(choices.format, layout, &path, &scratch)
            })
            .await?
        };

        let started = Instant::now();
        let mut last_progress = Instant::now();
        let mut written: i64 = 0;
        let mut batches = read_ahead(source, self.db.clone(), self.settings.chunk_size);
        loop {
            control.check()?;
            let Some(rows) = batches.recv().await else {
                break;
            };
            let rows = rows?;
            written += rows.len() as i64;
            writer = blocking(&path, move || {
                writer.write_rows(&rows)?;
                Ok(writer)
            })
            .await?;

            if total.is_none() && counting.as_ref().is_some_and(|count| count.is_finished()) {
                total = Some(counted(counting.take()).await?);
            }
            if let Some(total) = total
                && last_progress.elapsed() >= PROGRESS_INTERVAL
            {
                last_progress = Instant::now();
                if !queue::record_progress(
                    &self.db,
                    job.id,
                    worker,
                    written,
                    Ord::max(total, written),
                )
                .await?
                {
                    return Err(RunError::LeaseLost);
                }
                self.announce(job);
            }
            self.throttle(started, written).await;
        }
        blocking(&path, move || writer.finish()).await?;
        if let Some(count) = counting {
            // Rows were all read before the count came back: its answer no
            // longer matters, the rows written are the total.
            count.abort();
        }
        control.check()?;
        self.check_not_cancelled(job).await?;

        let journal = JobUploadJournal {
            db: &self.db,
            job_id: job.id,
            worker,
            key,
        };
        let stored = self
            .store
            .put_file_journaled(key, &path, choices.format.content_type(), &journal)
            .instrument(tracing::info_span!("export upload"))
            .await
            .map_err(storage_error)?;
        if !queue::record_upload(&self.db, job.id, worker, key, stored.size as i64, written).await?
        {
            return Err(RunError::LeaseLost);
        }
        tracing::info!(rows = written, bytes = stored.size, key, "export uploaded");
        Ok(())
    }

    /// Keeps a large export from taking the database away from agents, when
    /// a row rate is configured.
    async fn throttle(&self, started: Instant, written: i64) {
        let limit = self.settings.max_rows_per_second;
        if limit == 0 {
            return;
        }
        let due = Duration::from_secs_f64(written as f64 / limit as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }

    async fn send_mail(&self, job: &export_job::Model, worker: &str) -> Result<(), RunError> {
        if job.mail_sent_at.is_some() {
            return Ok(());
        }
        let outcome = self.mail_link(job).await;
        match outcome {
            Ok(()) => {
                tracing::info!("export link mailed");
                queue::mark_mail_sent(&self.db, job.id, worker).await?;
            }
            Err(reason) => {
                let attempt = job.mail_attempts as u32 + 1;
                tracing::warn!(
                    mail_attempt = attempt,
                    reason,
                    "export mail not sent; will retry"
                );
                let retry_in = backoff(self.settings.retry_base, attempt);
                queue::mail_failed(&self.db, job.id, worker, &reason, retry_in).await?;
            }
        }
        Ok(())
    }

    async fn mail_link(&self, job: &export_job::Model) -> Result<(), String> {
        let agent = agent::Entity::find_by_id(job.requested_by)
            .one(&self.db)
            .await
            .map_err(|error| format!("database: {error}"))?
            .ok_or("the agent no longer exists")?;
        // The mailed link points at this server, which checks at each click
        // that the agent may still have the file (see `export_links`).
        let link = self.links.link(job.id, self.settings.link_ttl);
        let expires: DateTime<Utc> = link.expires_at.into();
        let text_body = format!(
            "Hello {},\n\nyour export of {} contacts (created from {} to {}) is ready:\n\n{}\n\nThe link works until {}.\n",
            agent.name,
            job.rows_written,
            job.range_from.to_rfc3339(),
            job.range_to.to_rfc3339(),
            link.url,
            expires.to_rfc3339(),
        );
        self.mailer
            .send(OutgoingMail {
                to: agent.email,
                subject: "Your contacts export is ready".into(),
                text_body,
                html_body: None,
            })
            .await
            .map_err(|error| error.to_string())
    }
}

fn io_failure(path: &Path, error: std::io::Error) -> RunError {
    tracing::error!(%error, path = %path.display(), "cannot write an export file");
    RunError::Transient("the server could not write the export file".into())
}

/// Runs file work for the export at `path` on a blocking thread.
async fn blocking<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> Result<T, WriteError> + Send + 'static,
) -> Result<T, RunError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(WriteError::Io(error))) => Err(io_failure(path, error)),
        Ok(Err(error @ WriteError::Format(_))) => {
            tracing::error!(%error, path = %path.display(), "cannot write an export file");
            Err(RunError::Permanent(error.to_string()))
        }
        Err(join) => {
            tracing::error!(error = %join, path = %path.display(), "the export writer stopped");
            Err(RunError::Permanent(
                "the server could not write the export file".into(),
            ))
        }
    }
}

/// Exponential backoff: base, 2×base, 4×base… capped at an hour.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(Ord::min(attempt.saturating_sub(1), 16));
    (base * factor).min(Duration::from_secs(3600))
}

async fn count_rows(db: DatabaseConnection, condition: Condition) -> Result<i64, RunError> {
    Ok(contact::Entity::find().filter(condition).count(&db).await? as i64)
}

/// The answer of the count beside the reading.
async fn counted(
    counting: Option<tokio::task::JoinHandle<Result<i64, RunError>>>,
) -> Result<i64, RunError> {
    match counting {
        Some(count) => count.await.unwrap_or_else(|join| {
            tracing::error!(error = %join, "the export's row count stopped");
            Err(RunError::Transient("the rows could not be counted".into()))
        }),
        None => Err(RunError::Transient("the rows could not be counted".into())),
    }
}

/// The custom attributes used in the project: those its form asks for, and
/// any that the exported contacts carry.
async fn attribute_keys(
    db: &DatabaseConnection,
    source: &ExportSource,
) -> Result<Vec<String>, RunError> {
    let mut keys: Vec<String> = form_question::Entity::find()
        .filter(form_question::Column::ProjectId.eq(source.project_id))
        .filter(form_question::Column::TargetKind.eq("ATTRIBUTE"))
        .all(db)
        .await?
        .into_iter()
        .map(|question| question.target_name)
        .collect();
    let backend = db.get_database_backend();
    // Only contacts that carry attributes have keys; the condition is the
    // one of `idx_contacts_with_attributes`, which holds just those, so a
    // project whose contacts carry none costs an empty index range.
    let rows = contact::Entity::find()
        .select_only()
        .column(contact::Column::CustomAttributes)
        .filter(source.condition(backend))
        .filter(Expr::cust("contacts.custom_attributes <> '{}'"))
        .build(backend);
    let rows_sql = rows.sql;
    let sql = match backend {
        DbBackend::Postgres => format!(
            "SELECT DISTINCT jsonb_object_keys(c.custom_attributes) AS key FROM ({rows_sql}) AS c"
        ),
        _ => format!(
            "SELECT DISTINCT j.key AS key FROM ({rows_sql}) AS c, json_each(c.custom_attributes) AS j"
        ),
    };
    let rows = db
        .query_all_raw(Statement {
            sql,
            values: rows.values,
            db_backend: backend,
        })
        .await?;
    for row in rows {
        if let Ok(key) = row.try_get::<String>("", "key") {
            keys.push(key);
        }
    }
    keys.sort();
    keys.dedup();
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_secs(2);
        assert_eq!(backoff(base, 1), Duration::from_secs(2));
        assert_eq!(backoff(base, 2), Duration::from_secs(4));
        assert_eq!(backoff(base, 4), Duration::from_secs(16));
        assert_eq!(backoff(base, 40), Duration::from_secs(3600));
    }
}
