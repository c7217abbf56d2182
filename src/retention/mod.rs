//! Retention: deleting what has served its purpose (finished tokens and
//! invitations, old notifications, old export files and mail files), so
//! that the database, the bucket and the disk do not grow for ever.
//!
//! [`Retention::run_once`] is one pass, callable without a server;
//! [`schedule`] runs it periodically inside the server, one instance at a
//! time.

mod export_files;
mod mail_files;
mod records;
pub mod schedule;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use crate::config::RetentionSettings;
use crate::error::AppResult;
use crate::storage::ExportStore;

/// What one pass deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub access_tokens: u64,
    pub password_resets: u64,
    pub invitations: u64,
    pub notifications: u64,
    /// Export files removed from the store (their jobs now say so).
    pub export_files: u64,
    /// Export files the store could not remove this time; tried again next pass.
    pub export_files_failed: u64,
    pub mail_files: u64,
}

impl RetentionReport {
    pub fn deleted_anything(&self) -> bool {
        let deleted = [
            self.access_tokens,
            self.password_resets,
            self.invitations,
            self.notifications,
            self.export_files,
            self.mail_files,
        ];
        deleted.iter().any(|&count| count > 0)
    }
}

/// Everything a retention pass deletes from.
pub struct Retention {
    pub db: DatabaseConnection,
    pub store: Arc<dyn ExportStore>,
    /// Where the file mailer writes `.eml` files.
    pub mail_dir: PathBuf,
    pub settings: RetentionSettings,
}

impl Retention {
    /// One pass with `now` as the time; each kind whose period is set loses
    /// what is older than `now` minus that period.
    pub async fn run_once(&self, now: DateTime<Utc>) -> AppResult<RetentionReport> {
        let mut report = RetentionReport::default();
        let settings = &self.settings;
        if let Some(cutoff) = cutoff(now, settings.finished_tokens) {
            report.access_tokens = records::delete_finished_access_tokens(&self.db, cutoff).await?;
            report.password_resets =
                records::delete_finished_password_resets(&self.db, cutoff).await?;
            report.invitations = records::delete_finished_invitations(&self.db, cutoff).await?;
        }
        if let Some(cutoff) = cutoff(now, settings.notifications) {
            report.notifications = records::delete_notifications_before(&self.db, cutoff).await?;
        }
        if let Some(cutoff) = cutoff(now, settings.export_files) {
            let expired =
                export_files::expire_files_finished_before(&self.db, &*self.store, cutoff, now)
                    .await?;
            report.export_files = expired.deleted;
            report.export_files_failed = expired.failed;
        }
        if let Some(cutoff) = cutoff(now, settings.mail_files) {
            report.mail_files = mail_files::delete_mail_files_before(&self.mail_dir, cutoff).await;
        }
        Ok(report)
    }
}

/// `now` minus `period`; none for a period that keeps things for ever.
fn cutoff(now: DateTime<Utc>, period: Option<Duration>) -> Option<DateTime<Utc>> {
    let period = chrono::Duration::from_std(period?).ok()?;
    now.checked_sub_signed(period)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_period_no_cutoff() {
        let now = Utc::now();
        assert_eq!(cutoff(now, None), None);
        assert_eq!(
            cutoff(now, Some(Duration::from_secs(3600))),
            Some(now - chrono::Duration::hours(1))
        );
    }

    #[test]
    fn a_report_of_failures_only_deleted_nothing() {
        let failed_only = RetentionReport {
            export_files_failed: 2,
            ..Default::default()
        };
        assert!(!failed_only.deleted_anything());
        let some = RetentionReport {
            mail_files: 1,
            ..Default::default()
        };
        assert!(some.deleted_anything());
    }
}
