//! Export workers inside the server: each claims a job, keeps its lease
//! alive while it runs, and records how it ended.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use entity::export_job;
use sea_orm::TransactionTrait as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::domain::events::{Event, NotificationCreated};
use crate::domain::exports::ExportStatus;
use crate::domain::notifications::{self, NewNotification};
use crate::jobs::export_run::{Control, ExportRunner, RunError, backoff, temp_path};
use crate::jobs::queue::{self, Heartbeat};
use crate::jobs::temp_files;

pub struct WorkerPool {
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    pub fn spawn(runner: Arc<ExportRunner>, instance: &str) -> WorkerPool {
        let (stop, stopped) = watch::channel(false);
        let handles = (0..runner.settings.workers)
            .map(|n| {
                let runner = runner.clone();
                let worker = format!("{instance}-{n}");
                let stopped = stopped.clone();
                tokio::spawn(async move { work(runner, worker, stopped).await })
            })
            .collect();
        WorkerPool { stop, handles }
    }

    /// Stops taking jobs, gives running ones back to the queue, and waits.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for handle in self.handles {
            let _ = handle.await;
        }
    }
}

async fn work(runner: Arc<ExportRunner>, worker: String, mut stopped: watch::Receiver<bool>) {
    let poll = runner.settings.poll_interval;
    while !*stopped.borrow() {
        match queue::claim(&runner.db, &worker, runner.settings.lease).await {
            Ok(Some(job)) => {
                // Every line of the job, in this task and those it spawns,
                // names the job and the attempt.
                let span = tracing::info_span!(
                    "export",
                    job = %job.id,
                    project = %job.project_id,
                    attempt = job.attempts
                );
                process(&runner, &worker, job, &mut stopped)
                    .instrument(span)
                    .await
            }
            Ok(None) => {
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = stopped.changed() => {}
                }
            }
            Err(error) => {
                tracing::warn!(?error, "cannot claim export jobs");
                tokio::time::sleep(poll).await;
            }
        }
    }
}

async fn process(
    runner: &Arc<ExportRunner>,
    worker: &str,
    job: export_job::Model,
    stopped: &mut watch::Receiver<bool>,
) {
    tracing::info!(
        format = %job.format,
        max_attempts = job.max_attempts,
        "export attempt started"
    );
    let control = Arc::new(Control::default());
    let heartbeat = {
        let runner = runner.clone();
        let control = control.clone();
        let worker = worker.to_owned();
        let job_id = job.id;
        let temp_file = temp_path(&runner.tmp_dir, &job);
        let beating = async move {
            let every = runner.settings.lease / 3;
            loop {
                tokio::time::sleep(every).await;
                temp_files::keep_fresh(&temp_file);
                match queue::heartbeat(&runner.db, job_id, &worker, runner.settings.lease).await {
                    Ok(Heartbeat::Held { cancel_requested }) => {
                        control
                            .cancel_requested
                            .store(cancel_requested, Ordering::Relaxed);
                    }
                    Ok(Heartbeat::Lost) => {
                        control.lease_lost.store(true, Ordering::Relaxed);
                        break;
                    }
                    Err(error) => tracing::warn!(?error, "export heartbeat failed"),
                }
            }
        };
        tokio::spawn(beating.in_current_span())
    };
    let outcome = tokio::select! {
        outcome = runner.run(&job, worker, &control) => Some(outcome),
        _ = stopped.changed() => None,
    };
    heartbeat.abort();

    let db = &runner.db;
    // A cancel accepted before the run failed is what the agent was told
    // would happen: the job ends CANCELLED, not FAILED or retried.
    let outcome = match outcome {
        Some(Err(RunError::Transient(_) | RunError::Permanent(_)))
            if queue::cancel_requested(db, job.id).await.unwrap_or(false) =>
        {
            Some(Err(RunError::Cancelled))
        }
        other => other,
    };
    let recorded = match outcome {
        None => queue::release(db, job.id, worker).await.map(|_| ()),
        Some(Ok(())) => Ok(()),
        Some(Err(RunError::LeaseLost)) => {
            tracing::warn!("another worker took the export over");
            Ok(())
        }
        Some(Err(RunError::Cancelled)) => {
            runner.remove_undelivered(job.id).await;
            tracing::info!("export cancelled; nothing was delivered");
            queue::finish(db, job.id, worker, ExportStatus::Cancelled, None)
                .await
                .map(|_| ())
        }
        Some(Err(RunError::Transient(reason))) if job.attempts < job.max_attempts => {
            let retry_in = backoff(runner.settings.retry_base, job.attempts as u32);
            let (rows, bytes) = written_so_far(db, &job).await;
            tracing::warn!(reason, ?retry_in, rows, bytes, "export failed; will retry");
            queue::retry_later(db, job.id, worker, &reason, retry_in)
                .await
                .map(|_| ())
        }
        Some(Err(RunError::Transient(reason) | RunError::Permanent(reason))) => {
            let (rows, bytes) = written_so_far(db, &job).await;
            tracing::error!(reason, rows, bytes, "export failed");
            fail(runner, &job, worker, &reason).await
        }
    };
    if let Err(error) = recorded {
        tracing::error!(?error, "cannot record how an export ended");
    }
    runner.announce(&job);
}

/// The rows and bytes the attempt got to, for the line that says it failed.
async fn written_so_far(db: &sea_orm::DatabaseConnection, job: &export_job::Model) -> (i64, i64) {
    match crate::domain::exports::reload(db, job.id).await {
        Ok(now) => (now.rows_written, now.file_bytes.unwrap_or(0)),
        Err(_) => (job.rows_written, job.file_bytes.unwrap_or(0)),
    }
}

async fn fail(
    runner: &ExportRunner,
    job: &export_job::Model,
    worker: &str,
    reason: &str,
) -> crate::error::AppResult<()> {
    // The status and the agent's notification land together: whoever sees
    // FAILED also finds the notification.
    let txn = runner.db.begin().await?;
    if !queue::finish(&txn, job.id, worker, ExportStatus::Failed, Some(reason)).await? {
        return Ok(());
    }
    let note = notifications::create(
        &txn,
        NewNotification {
            agent_id: job.requested_by,
            project_id: job.project_id,
            kind: notifications::NotificationKind::ExportFailed,
            title: "Your contacts export failed",
            body: reason,
            export_job_id: Some(job.id),
        },
    )
    .await?;
    txn.commit().await?;
    runner
        .bus
        .publish(Event::NotificationCreated(NotificationCreated {
            project_id: job.project_id,
            agent_id: job.requested_by,
            notification_id: note.id,
        }));
    Ok(())
}
