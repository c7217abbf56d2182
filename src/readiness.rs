//! Readiness: whether this instance can do its work, checked against each
//! service it depends on (the database always; Redis, S3 and SMTP when
//! configured), all at once and each within a few seconds. A failing
//! check says which service is down with a short reason, never the
//! underlying error text (which may name hosts, users or keys).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use crate::mail::MailError;
use crate::services::Services;
use crate::storage::StorageError;

/// How long one check may take before it counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The outcome of every check, by service name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// `"ok"`, or `"down: <short reason>"`.
    pub checks: BTreeMap<&'static str, String>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.checks.values().all(|outcome| outcome == OK)
    }
}

const OK: &str = "ok";

/// Runs the checks that apply to this instance's configuration.
pub async fn check(services: &Services) -> Readiness {
    let database = timed(async {
        if crate::db::is_ready(&services.db).await {
            Ok(())
        } else {
            Err("unreachable".to_owned())
        }
    });
    let redis = services.rate_limiter.check_remote();
    let s3 = services.store.check_remote();
    let smtp = services.mailer.check_remote();
    let (database, redis, s3, smtp) = tokio::join!(
        database,
        optional(redis),
        optional(async {
            s3.await
                .map(|outcome| outcome.map_err(|e| storage_reason(&e)))
        }),
        optional(async {
            smtp.await
                .map(|outcome| outcome.map_err(|e| mail_reason(&e)))
        }),
    );
    let mut checks = BTreeMap::new();
    checks.insert("database", describe(database));
    for (name, outcome) in [("redis", redis), ("s3", s3), ("smtp", smtp)] {
        if let Some(outcome) = outcome {
            checks.insert(name, describe(outcome));
        }
    }
    Readiness { checks }
}

/// A check that applies only when its service is configured.
async fn optional(
    check: impl Future<Output = Option<Result<(), String>>>,
) -> Option<Result<(), String>> {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(outcome) => outcome,
        // Only a configured service gets this far slowly.
        Err(_) => Some(Err("timed out".to_owned())),
    }
}

async fn timed(check: impl Future<Output = Result<(), String>>) -> Result<(), String> {
    tokio::time::timeout(CHECK_TIMEOUT, check)
        .await
        .unwrap_or_else(|_| Err("timed out".to_owned()))
}

fn describe(outcome: Result<(), String>) -> String {
    match outcome {
        Ok(()) => OK.to_owned(),
        Err(reason) => format!("down: {reason}"),
    }
}

fn storage_reason(error: &StorageError) -> String {
    match error {
        StorageError::Refused {
            code: Some(code), ..
        } => format!("refused ({code})"),
        StorageError::Refused {
            status: Some(status),
            ..
        } => format!("refused (HTTP {status})"),
        StorageError::Refused { .. } => "refused".to_owned(),
        StorageError::Unavailable { .. } | StorageError::Io { .. } => "unreachable".to_owned(),
        _ => "misconfigured".to_owned(),
    }
}

fn mail_reason(error: &MailError) -> String {
    match error {
        MailError::Smtp(error) if error.is_permanent() || error.is_transient() => {
            "refused".to_owned()
        }
        MailError::Smtp(error) if error.is_timeout() => "timed out".to_owned(),
        MailError::Smtp(_) | MailError::Io { .. } => "unreachable".to_owned(),
        MailError::Config(_) => "no answer".to_owned(),
        _ => "misconfigured".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_is_ok() {
        let mut checks = BTreeMap::new();
        checks.insert("database", describe(Ok(())));
        assert!(
            Readiness {
                checks: checks.clone()
            }
            .is_ready()
        );
        checks.insert("smtp", describe(Err("unreachable".into())));
        let readiness = Readiness { checks };
        assert!(!readiness.is_ready());
        assert_eq!(readiness.checks["smtp"], "down: unreachable");
    }

    #[test]
    fn storage_reasons_are_short() {
        let refused = StorageError::Refused {
            operation: "check the bucket",
            key: "secret-bucket".into(),
            status: Some(404),
            code: Some("NoSuchBucket".into()),
            detail: "long text from the store".into(),
            source: None,
        };
        assert_eq!(storage_reason(&refused), "refused (NoSuchBucket)");
        let unavailable = StorageError::Unavailable {
            operation: "check the bucket",
            key: "b".into(),
            detail: "connection refused to 10.0.0.5".into(),
            source: None,
        };
        assert_eq!(storage_reason(&unavailable), "unreachable");
    }
}
