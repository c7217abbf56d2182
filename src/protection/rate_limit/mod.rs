//! Rate limits on the public operations and a growing lock after failed
//! logins, in Redis when `REDIS_URL` is set (shared by every instance) or
//! in each instance's memory otherwise.

mod lockout;
mod memory;
mod redis;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::config::RateLimitSettings;
use crate::error::{AppError, AppResult};

pub use self::memory::MemoryLimiter;
pub use self::redis::RedisLimiter;

/// Longest key kept: keys are client input.
const MAX_KEY_LEN: usize = 256;
/// How often the in-memory buckets drop the keys that are full again.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);

/// The token buckets, each holding a minute's worth of requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// `startChat` and `submitContactForm` per client address.
    PublicIp,
    /// `startChat` per project key, `submitContactForm` per project.
    PublicProject,
    /// `login` per client address.
    LoginIp,
}

impl Bucket {
    pub fn per_minute(self, settings: &RateLimitSettings) -> u32 {
        match self {
            Bucket::PublicIp => settings.public_per_ip,
            Bucket::PublicProject => settings.public_per_project,
            Bucket::LoginIp => settings.login_per_ip,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Bucket::PublicIp => "public-ip",
            Bucket::PublicProject => "public-project",
            Bucket::LoginIp => "login-ip",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// Refused; the client may retry after this long.
    Wait(Duration),
}

/// How a reserved login attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    Succeeded,
    /// The password was wrong: the reservation stays as a failure.
    Failed,
    /// The check itself failed (the database), not the caller.
    NotChecked,
}

/// Where the counts live. Every check is one atomic step of the store, so
/// parallel requests cannot pass a limit together.
#[async_trait]
pub trait Limiter: Send + Sync {
    /// Takes one request from the bucket of `key`.
    async fn take(&self, bucket: Bucket, key: &str) -> Admission;
    /// Refuses while the email or the address is locked; otherwise counts
    /// the attempt as a failure of both until it is settled.
    async fn reserve_login(&self, email: &str, ip: &str) -> Admission;
    async fn settle_login(&self, email: &str, ip: &str, outcome: LoginOutcome);
    /// Periodic cleanup of what the store cannot expire by itself.
    fn housekeeping(&self) {}
    /// Whether a shared store (Redis) answers, for the readiness probe;
    /// `None` when the counts are in this instance's memory.
    async fn check_remote(&self) -> Option<Result<(), String>> {
        None
    }
}

pub struct RateLimiter {
    settings: RateLimitSettings,
    store: Arc<dyn Limiter>,
}

/// A login attempt that passed the lock and must be settled.
pub struct LoginReservation {
    email: String,
    ip: String,
}

impl RateLimiter {
    /// In Redis when the settings name it, in memory otherwise.
    pub fn open(settings: RateLimitSettings) -> anyhow::Result<RateLimiter> {
        let store: Arc<dyn Limiter> = match &settings.redis_url {
            Some(url) => Arc::new(RedisLimiter::open(url, &settings)?),
            None => Arc::new(MemoryLimiter::new(&settings)),
        };
        Ok(RateLimiter { settings, store })
    }

    /// Whether the shared store answers; `None` without one (see
    /// [`Limiter::check_remote`]).
    pub async fn check_remote(&self) -> Option<Result<(), String>> {
        self.store.check_remote().await
    }

    /// A `startChat` for the project with `project_key`, counted before the
    /// project is looked up.
    pub async fn start_chat_for_key(&self, project_key: &str) -> AppResult<()> {
        let key = format!("key:{}", bounded(project_key));
        self.take(Bucket::PublicProject, &key).await
    }

    /// A public call (`startChat`, `submitContactForm`) by the client at `ip`.
    pub async fn public_call_from(&self, ip: Option<IpAddr>) -> AppResult<()> {
        self.take(Bucket::PublicIp, &client_key(ip)).await
    }

    /// A `submitContactForm` by a visitor of `project_id` at `ip`.
    pub async fn submit_form(&self, ip: Option<IpAddr>, project_id: uuid::Uuid) -> AppResult<()> {
        self.public_call_from(ip).await?;
        self.take(Bucket::PublicProject, &format!("project:{project_id}"))
            .await
    }

    /// Asked before a login is checked: refuses while the client IP sends
    /// too many attempts, or while the email or the IP is locked after
    /// failures, without looking at the password. An admitted attempt
    /// counts as a failure until [`RateLimiter::login_finished`] says
    /// otherwise, so parallel attempts cannot pass the free count together.
    pub async fn login_attempt(
        &self,
        ip: Option<IpAddr>,
        email: &str,
    ) -> AppResult<LoginReservation> {
        let ip = client_key(ip);
        self.take(Bucket::LoginIp, &ip).await?;
        let email = email_key(email);
        match self.store.reserve_login(&email, &ip).await {
            Admission::Admitted => Ok(LoginReservation { email, ip }),
            Admission::Wait(wait) => Err(limited(wait)),
        }
    }

    /// A success clears the email's count and gives the address its
    /// attempt back (its earlier failures stay, so one good account does
    /// not reset guessing at others).
    pub async fn login_finished(&self, reservation: LoginReservation, outcome: LoginOutcome) {
        self.store
            .settle_login(&reservation.email, &reservation.ip, outcome)
            .await;
    }

    async fn take(&self, bucket: Bucket, key: &str) -> AppResult<()> {
        if bucket.per_minute(&self.settings) == 0 {
            return Ok(());
        }
        match self.store.take(bucket, key).await {
            Admission::Admitted => Ok(()),
            Admission::Wait(wait) => Err(limited(wait)),
        }
    }

    /// Lets the store drop what it no longer needs, until `shutdown`.
    pub fn spawn_housekeeping(self: Arc<Self>, shutdown: CancellationToken) {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(HOUSEKEEPING_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = every.tick() => self.store.housekeeping(),
                }
            }
        });
    }
}

/// What the limits key a client by: its address, or its /64 network for
/// IPv6, where one client easily holds a whole /64.
pub fn client_key(ip: Option<IpAddr>) -> String {
    match ip {
        Some(IpAddr::V4(ip)) => ip.to_string(),
        Some(IpAddr::V6(ip)) => match ip.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let segments = ip.segments();
                format!(
                    "{:x}:{:x}:{:x}:{:x}::/64",
                    segments[0], segments[1], segments[2], segments[3]
                )
            }
        },
        None => "unknown".to_owned(),
    }
}

fn bounded(key: &str) -> String {
    let key = key.trim();
    match key.char_indices().nth(MAX_KEY_LEN) {
        Some((end, _)) => key[..end].to_owned(),
        None => key.to_owned(),
    }
}

fn email_key(email: &str) -> String {
    bounded(&email.trim().to_lowercase())
}

fn limited(wait: Duration) -> AppError {
    AppError::RateLimited {
        retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_slash_64() {
        assert_eq!(
            client_key(ip("2001:db8:1:2:aaaa::1")),
            client_key(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(ip("::ffff:192.0.2.7")), "192.0.2.7");
    }

    #[test]
    fn long_keys_are_bounded_and_emails_ignore_case() {
        assert_eq!(bounded(&"é".repeat(1000)).chars().count(), MAX_KEY_LEN);
        assert_eq!(bounded(" pk_x "), "pk_x");
        assert_eq!(email_key(" Ana@Example.COM"), "ana@example.com");
    }

    #[test]
    fn a_wait_becomes_whole_seconds_to_retry_after() {
        let secs = |wait| match limited(wait) {
            AppError::RateLimited { retry_after_secs } => retry_after_secs,
            other => panic!("{other:?}"),
        };
        assert_eq!(secs(Duration::from_millis(1)), 1);
        assert_eq!(secs(Duration::from_millis(1001)), 2);
        assert_eq!(secs(Duration::from_secs(20)), 20);
    }
}
