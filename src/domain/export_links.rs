//! The links mailed for finished exports: they point at this server and are
//! signed, and each click is checked against the job and the requester's
//! membership now, not only when the link was made.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::Utc;
use entity::{export_job, server_secret};
use hmac::{Hmac, Mac};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use sha2::Sha256;
use uuid::Uuid;

use crate::domain::access::{self, Role};
use crate::domain::exports::ExportStatus;
use crate::domain::ids::random_secret;
use crate::error::{AppError, AppResult};
use crate::storage::DownloadLink;

type HmacSha256 = Hmac<Sha256>;

/// The row of `server_secrets` holding the key; every instance on the
/// database signs and checks with the same one.
const KEY_NAME: &str = "export_link_key";

/// Signs and checks export links. The key never leaves this value: its
/// `Debug` leaves it out.
#[derive(Clone)]
pub struct ExportLinks {
    public_url: String,
    signer: HmacSha256,
}

impl fmt::Debug for ExportLinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportLinks")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// Why a click on an export link gets no file; `status_code` is the HTTP
/// answer and the message its body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefused {
    #[error("this download link is not valid")]
    BadSignature,
    #[error("this download link has expired; ask for a new export")]
    Expired,
    #[error("this export is no longer available (it was not completed, or was removed)")]
    Unavailable,
    #[error(
        "the agent this export was made for is no longer a member of its project; the file is not available"
    )]
    AccessRevoked,
}

impl LinkRefused {
    pub fn status_code(&self) -> u16 {
        match self {
            LinkRefused::BadSignature | LinkRefused::AccessRevoked => 403,
            LinkRefused::Expired | LinkRefused::Unavailable => 410,
        }
    }
}

impl ExportLinks {
    /// Links under `public_url`, signed with `key`.
    pub fn new(public_url: &str, key: &[u8]) -> AppResult<ExportLinks> {
        let signer = <HmacSha256 as Mac>::new_from_slice(key).map_err(AppError::internal)?;
        Ok(ExportLinks {
            public_url: public_url.trim_end_matches('/').to_owned(),
            signer,
        })
    }

    /// The shared key from the database, created by the first instance
    /// that starts (a second one starting at once keeps the first's).
    pub async fn load(db: &impl ConnectionTrait, public_url: &str) -> AppResult<ExportLinks> {
        server_secret::Entity::insert(server_secret::ActiveModel {
            name: Set(KEY_NAME.to_owned()),
            secret: Set(random_secret("xl")),
            created_at: Set(Utc::now()),
        })
        .on_conflict_do_nothing_on([server_secret::Column::Name])
        .exec_without_returning(db)
        .await?;
        let stored = server_secret::Entity::find_by_id(KEY_NAME.to_owned())
            .one(db)
            .await?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("the link key vanished")))?;
        ExportLinks::new(public_url, stored.secret.as_bytes())
    }

    /// A link to the file of `job_id` that works for `ttl`, while the job
    /// stays completed and its requester a member.
    pub fn link(&self, job_id: Uuid, ttl: Duration) -> DownloadLink {
        let expires_at = SystemTime::now() + ttl;
        let expires = unix_seconds(expires_at);
        let signature = hex::encode(self.mac(job_id, expires).finalize().into_bytes());
        DownloadLink {
            url: format!(
                "{}/export-downloads/{job_id}?expires={expires}&signature={signature}",
                self.public_url
            ),
            expires_at,
        }
    }

    /// Checks the signature (in constant time, before the expiry, so that a
    /// forged link learns nothing) and the expiry.
    pub fn verify(
        &self,
        job_id: Uuid,
        expires: u64,
        signature: &str,
        now: SystemTime,
    ) -> Result<(), LinkRefused> {
        let signature = hex::decode(signature).map_err(|_| LinkRefused::BadSignature)?;
        self.mac(job_id, expires)
            .verify_slice(&signature)
            .map_err(|_| LinkRefused::BadSignature)?;
        if unix_seconds(now) >= expires {
            return Err(LinkRefused::Expired);
        }
        Ok(())
    }

    fn mac(&self, job_id: Uuid, expires: u64) -> HmacSha256 {
        let mut mac = self.signer.clone();
        mac.update(b"export-link\n");
        mac.update(job_id.as_bytes());
        mac.update(&expires.to_be_bytes());
        mac
    }
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or(0)
}

/// What a verified link may download now: the object of a job that is
/// still completed, for a requester who is still a member of its project.
pub async fn downloadable(
    db: &impl ConnectionTrait,
    job_id: Uuid,
) -> AppResult<Result<(export_job::Model, String), LinkRefused>> {
    let Some(job) = export_job::Entity::find_by_id(job_id).one(db).await? else {
        return Ok(Err(LinkRefused::Unavailable));
    };
    let (ExportStatus::Completed, Some(key)) = (job.status, job.object_key.clone()) else {
        return Ok(Err(LinkRefused::Unavailable));
    };
    match access::require_role(db, job.requested_by, job.project_id, Role::Agent).await {
        Ok(_) => Ok(Ok((job, key))),
        Err(AppError::NotFound(_) | AppError::Forbidden(_)) => Ok(Err(LinkRefused::AccessRevoked)),
        Err(other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> ExportLinks {
        ExportLinks::new("http://contacts.test/", b"a key of at least some length").unwrap()
    }

    fn query_of(url: &str) -> (u64, String) {
        let query = url.split_once('?').unwrap().1;
        let mut expires = 0;
        let mut signature = String::new();
        for pair in query.split('&') {
            match pair.split_once('=').unwrap() {
                ("expires", value) => expires = value.parse().unwrap(),
                ("signature", value) => signature = value.to_owned(),
                _ => {}
            }
        }
        (expires, signature)
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let links = links();
        let job = Uuid::now_v7();
        let link = links.link(job, Duration::from_secs(60));
        assert!(
            link.url
                .starts_with(&format!("http://contacts.test/export-downloads/{job}?"))
        );
        let (expires, signature) = query_of(&link.url);
        assert_eq!(
            links.verify(job, expires, &signature, SystemTime::now()),
            Ok(())
        );
        let later = SystemTime::now() + Duration::from_secs(61);
        assert_eq!(
            links.verify(job, expires, &signature, later),
            Err(LinkRefused::Expired)
        );
    }

    #[test]
    fn tampered_links_are_refused() {
        let links = links();
        let job = Uuid::now_v7();
        let (expires, signature) = query_of(&links.link(job, Duration::from_secs(60)).url);
        let now = SystemTime::now();
        for (job, expires, signature) in [
            (Uuid::now_v7(), expires, signature.clone()),
            (job, expires + 3600, signature.clone()),
            (job, expires, format!("00{}", &signature[2..])),
            (job, expires, "not hex".to_owned()),
        ] {
            assert_eq!(
                links.verify(job, expires, &signature, now),
                Err(LinkRefused::BadSignature)
            );
        }
        let other = ExportLinks::new("http://contacts.test", b"another key entirely").unwrap();
        assert_eq!(
            other.verify(job, expires, &signature, now),
            Err(LinkRefused::BadSignature)
        );
    }
}
