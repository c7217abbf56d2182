//! Export workers inside the server: each claims a job, keeps its lease
//! alive while it runs, and records how it ended.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use entity::export_job;
use sea_orm::TransactionTrait as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::domain::events::{Event, NotificationCreated};
use crate::domain::exports::{self, CANCELLED, FAILED};
use crate::domain::notifications::{self, NewNotification};
use crate::jobs::export_run::{Control, ExportRunner, RunError, backoff};
use crate::jobs::queue::{self, Heartbeat};

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
            Ok(Some(job)) => process(&runner, &worker, job, &mut stopped).await,
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
    let span = tracing::info_span!("export", job = %job.id, attempt = job.attempts);
    let _entered = span.enter();
    let control = Arc::new(Control::default());
    let heartbeat = {
        let runner = runner.clone();
        let control = control.clone();
        let worker = worker.to_owned();
        let job_id = job.id;
        tokio::spawn(async move {
            let every = runner.settings.lease / 3;
            loop {
                tokio::time::sleep(every).await;
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
        })
    };
    let outcome = tokio::select! {
        outcome = runner.run(&job, worker, &control) => Some(outcome),
        _ = stopped.changed() => None,
    };
    heartbeat.abort();

    let db = &runner.db;
    let recorded = match outcome {
        None => queue::release(db, job.id, worker).await.map(|_| ()),
        Some(Ok(())) => Ok(()),
        Some(Err(RunError::LeaseLost)) => {
            tracing::warn!("another worker took the export over");
            Ok(())
        }
        Some(Err(RunError::Cancelled)) => {
            if let Ok(current) = exports::reload(db, job.id).await
                && let Some(key) = current.object_key
                && let Err(error) = runner.store.delete(&key).await
            {
                tracing::warn!(%error, "cannot remove a cancelled export");
            }
            queue::finish(db, job.id, worker, CANCELLED, None)
                .await
                .map(|_| ())
        }
        Some(Err(RunError::Transient(reason))) if job.attempts < job.max_attempts => {
            let retry_in = backoff(runner.settings.retry_base, job.attempts as u32);
            tracing::warn!(reason, ?retry_in, "export failed; will retry");
            queue::retry_later(db, job.id, worker, &reason, retry_in)
                .await
                .map(|_| ())
        }
        Some(Err(RunError::Transient(reason) | RunError::Permanent(reason))) => {
            tracing::error!(reason, "export failed");
            fail(runner, &job, worker, &reason).await
        }
    };
    if let Err(error) = recorded {
        tracing::error!(?error, "cannot record how an export ended");
    }
    runner.announce(&job);
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
    if !queue::finish(&txn, job.id, worker, FAILED, Some(reason)).await? {
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
