//! Rate limits on the public operations and a growing delay after failed
//! logins: token buckets and failure counters held in memory, per instance.
//!
//! Each server instance counts on its own, so N instances behind a load
//! balancer allow up to N times the configured rates; the limits are there
//! to stop floods and password guessing, not to meter usage exactly.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use entity::project;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use crate::config::RateLimitSettings;
use crate::domain::ids::secret_hash;
use crate::error::{AppError, AppResult};

/// Entries kept before idle ones are swept out.
const SWEEP_ABOVE: usize = 10_000;
/// Longest key kept: keys are client input.
const MAX_KEY_LEN: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Scope {
    PublicIp,
    PublicProject,
    LoginIp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum FailureScope {
    Email,
    Ip,
}

/// A bucket holding up to a minute's worth of tokens, refilled continuously.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(per_minute: u32, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(per_minute),
            updated: now,
        }
    }

    fn refill(&mut self, per_minute: u32, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        let capacity = f64::from(per_minute);
        self.tokens = (self.tokens + elapsed * capacity / 60.0).min(capacity);
        self.updated = now;
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self, per_minute: u32, now: Instant) -> Result<(), Duration> {
        self.refill(per_minute, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - self.tokens;
            Err(Duration::from_secs_f64(
                missing * 60.0 / f64::from(per_minute),
            ))
        }
    }

    fn is_full(&self, per_minute: u32, now: Instant) -> bool {
        let mut probe = *self;
        probe.refill(per_minute, now);
        probe.tokens >= f64::from(per_minute)
    }
}

/// Recent failed logins of one email or one client IP.
#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

pub struct RateLimiter {
    settings: RateLimitSettings,
    buckets: Mutex<HashMap<(Scope, String), Bucket>>,
    failures: Mutex<HashMap<(FailureScope, String), Failures>>,
}

/// What the limits key a client by: its address, or its /64 network for
/// IPv6, where one client easily holds a whole /64.
fn client_key(ip: Option<IpAddr>) -> String {
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

fn limited(wait: Duration) -> AppError {
    AppError::RateLimited {
        retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
    }
}

impl RateLimiter {
    pub fn new(settings: RateLimitSettings) -> RateLimiter {
        RateLimiter {
            settings,
            buckets: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// A call of `startChat` for the project with `project_key`, counted
    /// against `ip` (see [`client_of_start`]).
    pub fn start_chat(&self, ip: Option<IpAddr>, project_key: &str) -> AppResult<()> {
        self.public_call(ip, &format!("key:{}", bounded(project_key)), Instant::now())
    }

    /// A call of `submitContactForm` by a visitor of `project_id`.
    pub fn submit_form(&self, ip: Option<IpAddr>, project_id: uuid::Uuid) -> AppResult<()> {
        self.public_call(ip, &format!("project:{project_id}"), Instant::now())
    }

    fn public_call(&self, ip: Option<IpAddr>, project: &str, now: Instant) -> AppResult<()> {
        let per_ip = self.settings.public_per_ip;
        let per_project = self.settings.public_per_project;
        let mut buckets = self.lock_buckets();
        take(&mut buckets, (Scope::PublicIp, client_key(ip)), per_ip, now)?;
        take(
            &mut buckets,
            (Scope::PublicProject, project.to_owned()),
            per_project,
            now,
        )
    }

    /// Asked before a login is checked: refuses while the client IP sends
    /// too many attempts, or while the email or the IP is locked after
    /// failures. A locked attempt is refused without looking at the
    /// password, so guessing gains nothing while the lock lasts.
    pub fn login_attempt(&self, ip: Option<IpAddr>, email: &str) -> AppResult<()> {
        self.login_attempt_at(ip, email, Instant::now())
    }

    fn login_attempt_at(&self, ip: Option<IpAddr>, email: &str, now: Instant) -> AppResult<()> {
        {
            let mut buckets = self.lock_buckets();
            take(
                &mut buckets,
                (Scope::LoginIp, client_key(ip)),
                self.settings.login_per_ip,
                now,
            )?;
        }
        let failures = self.lock_failures();
        let locked = [
            (FailureScope::Email, email_key(email)),
            (FailureScope::Ip, client_key(ip)),
        ]
        .into_iter()
        .filter_map(|key| failures.get(&key)?.locked_until)
        .filter(|until| *until > now)
        .max();
        match locked {
            Some(until) => Err(limited(until - now)),
            None => Ok(()),
        }
    }

    /// Told how a login ended. A failure counts against the email and the
    /// IP; past the free failures each one locks them for twice as long as
    /// the one before. A success clears the email's count (the IP's is left
    /// to expire, so one good account does not reset guessing at others).
    pub fn login_finished(&self, ip: Option<IpAddr>, email: &str, succeeded: bool) {
        self.login_finished_at(ip, email, succeeded, Instant::now());
    }

    fn login_finished_at(&self, ip: Option<IpAddr>, email: &str, succeeded: bool, now: Instant) {
        let settings = &self.settings;
        let mut failures = self.lock_failures();
        if succeeded {
            failures.remove(&(FailureScope::Email, email_key(email)));
            return;
        }
        for (key, free) in [
            (
                (FailureScope::Email, email_key(email)),
                settings.login_email_free_failures,
            ),
            (
                (FailureScope::Ip, client_key(ip)),
                settings.login_ip_free_failures,
            ),
        ] {
            let entry = failures.entry(key).or_insert(Failures {
                count: 0,
                last: now,
                locked_until: None,
            });
            if now.saturating_duration_since(entry.last) > settings.login_failure_window {
                entry.count = 0;
            }
            entry.count = entry.count.saturating_add(1);
            entry.last = now;
            if entry.count > free {
                let doublings = (entry.count - free - 1).min(30);
                let lock = settings
                    .login_lock_base
                    .saturating_mul(1 << doublings)
                    .min(settings.login_lock_max);
                entry.locked_until = Some(now + lock);
            }
        }
        if failures.len() > SWEEP_ABOVE {
            let window = settings.login_failure_window;
            failures.retain(|_, entry| {
                now.saturating_duration_since(entry.last) <= window
                    || entry.locked_until.is_some_and(|until| until > now)
            });
        }
    }

    fn lock_buckets(&self) -> std::sync::MutexGuard<'_, HashMap<(Scope, String), Bucket>> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() > SWEEP_ABOVE {
            // A full bucket is the same as no bucket.
            let now = Instant::now();
            let settings = &self.settings;
            buckets.retain(|(scope, _), bucket| !bucket.is_full(limit_of(settings, *scope), now));
        }
        buckets
    }

    fn lock_failures(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(FailureScope, String), Failures>> {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The client a `startChat` counts against: the caller, or, when a site's
/// server starts the chat on a visitor's behalf and proves it with the
/// project's secret key, the visitor whose address it passes. A wrong key
/// counts against the caller (and the start is refused later anyway).
pub async fn client_of_start(
    db: &impl ConnectionTrait,
    caller: Option<IpAddr>,
    project_key: &str,
    visitor_ip: Option<&str>,
    secret_key: Option<&str>,
) -> AppResult<Option<IpAddr>> {
    let (Some(visitor_ip), Some(secret_key)) = (visitor_ip, secret_key) else {
        return Ok(caller);
    };
    let Ok(visitor_ip) = visitor_ip.trim().parse::<IpAddr>() else {
        return Ok(caller);
    };
    if project_key.len() > MAX_KEY_LEN {
        return Ok(caller);
    }
    let secret: Option<String> = project::Entity::find()
        .select_only()
        .column(project::Column::SecretKey)
        .filter(project::Column::PublicKey.eq(project_key.trim()))
        .into_tuple()
        .one(db)
        .await?;
    // Hashes compare in a time that does not depend on the key.
    let proven = secret.is_some_and(|secret| secret_hash(&secret) == secret_hash(secret_key));
    Ok(if proven { Some(visitor_ip) } else { caller })
}

fn limit_of(settings: &RateLimitSettings, scope: Scope) -> u32 {
    match scope {
        Scope::PublicIp => settings.public_per_ip,
        Scope::PublicProject => settings.public_per_project,
        Scope::LoginIp => settings.login_per_ip,
    }
}

fn email_key(email: &str) -> String {
    bounded(&email.trim().to_lowercase())
}

/// Takes a token from the bucket of `key`; a limit of 0 is no limit.
fn take(
    buckets: &mut HashMap<(Scope, String), Bucket>,
    key: (Scope, String),
    per_minute: u32,
    now: Instant,
) -> AppResult<()> {
    if per_minute == 0 {
        return Ok(());
    }
    buckets
        .entry(key)
        .or_insert_with(|| Bucket::full(per_minute, now))
        .take(per_minute, now)
        .map_err(limited)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> RateLimitSettings {
        RateLimitSettings {
            public_per_ip: 3,
            public_per_project: 5,
            login_per_ip: 100,
            login_email_free_failures: 2,
            login_ip_free_failures: 4,
            login_lock_base: Duration::from_secs(1),
            login_lock_max: Duration::from_secs(10),
            login_failure_window: Duration::from_secs(60),
        }
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    fn retry_after(result: AppResult<()>) -> u64 {
        match result {
            Err(AppError::RateLimited { retry_after_secs }) => retry_after_secs,
            other => panic!("expected RATE_LIMITED, got {other:?}"),
        }
    }

    #[test]
    fn a_burst_passes_then_the_client_waits_for_the_refill() {
        let limiter = RateLimiter::new(settings());
        let start = Instant::now();
        for _ in 0..3 {
            limiter
                .public_call(ip("203.0.113.1"), "key:a", start)
                .unwrap();
        }
        // 3 per minute: a token every 20 s.
        assert_eq!(
            retry_after(limiter.public_call(ip("203.0.113.1"), "key:a", start)),
            20
        );
        let later = start + Duration::from_secs(15);
        assert_eq!(
            retry_after(limiter.public_call(ip("203.0.113.1"), "key:a", later)),
            5
        );
        let refilled = start + Duration::from_secs(20);
        limiter
            .public_call(ip("203.0.113.1"), "key:a", refilled)
            .unwrap();
        // Another client is not affected.
        limiter
            .public_call(ip("203.0.113.2"), "key:a", start)
            .unwrap();
    }

    #[test]
    fn a_project_is_limited_across_client_addresses() {
        let limiter = RateLimiter::new(settings());
        let now = Instant::now();
        // key:a got one call above the per-IP bucket of each address.
        for n in 0..5 {
            limiter
                .public_call(ip(&format!("198.51.100.{n}")), "key:a", now)
                .unwrap();
        }
        retry_after(limiter.public_call(ip("198.51.100.9"), "key:a", now));
        limiter
            .public_call(ip("198.51.100.9"), "key:b", now)
            .unwrap();
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
    fn a_zero_limit_is_no_limit() {
        let mut settings = settings();
        settings.public_per_ip = 0;
        settings.public_per_project = 0;
        let limiter = RateLimiter::new(settings);
        let now = Instant::now();
        for _ in 0..1000 {
            limiter.public_call(None, "key:a", now).unwrap();
        }
    }

    #[test]
    fn failed_logins_lock_the_email_for_longer_each_time() {
        let limiter = RateLimiter::new(settings());
        let client = ip("192.0.2.1");
        let mut now = Instant::now();
        for _ in 0..2 {
            limiter
                .login_attempt_at(client, "ana@example.com", now)
                .unwrap();
            limiter.login_finished_at(client, "ana@example.com", false, now);
        }
        // Two free failures; the third locks for 1 s, the fourth for 2 s...
        let mut locks = Vec::new();
        for _ in 0..5 {
            limiter
                .login_attempt_at(client, "Ana@Example.com", now)
                .unwrap();
            limiter.login_finished_at(client, "ana@example.com", false, now);
            let wait = retry_after(limiter.login_attempt_at(client, "ana@example.com", now));
            locks.push(wait);
            now += Duration::from_secs(wait);
        }
        assert_eq!(locks, [1, 2, 4, 8, 10]);
        // Another email from another address is not locked.
        limiter
            .login_attempt_at(ip("192.0.2.2"), "bob@example.com", now)
            .unwrap();
    }

    #[test]
    fn an_address_guessing_many_emails_is_locked() {
        let limiter = RateLimiter::new(settings());
        let client = ip("192.0.2.1");
        let now = Instant::now();
        for n in 0..5 {
            let email = format!("user{n}@example.com");
            limiter.login_attempt_at(client, &email, now).unwrap();
            limiter.login_finished_at(client, &email, false, now);
        }
        retry_after(limiter.login_attempt_at(client, "fresh@example.com", now));
        limiter
            .login_attempt_at(ip("192.0.2.9"), "fresh@example.com", now)
            .unwrap();
    }

    #[test]
    fn a_success_clears_the_email_and_old_failures_are_forgotten() {
        let limiter = RateLimiter::new(settings());
        let client = ip("192.0.2.1");
        let now = Instant::now();
        for _ in 0..2 {
            limiter.login_finished_at(client, "ana@example.com", false, now);
        }
        limiter.login_finished_at(client, "ana@example.com", true, now);
        limiter.login_finished_at(client, "ana@example.com", false, now);
        limiter
            .login_attempt_at(client, "ana@example.com", now)
            .unwrap();

        let later = now + Duration::from_secs(61);
        limiter.login_finished_at(client, "ana@example.com", false, later);
        limiter.login_finished_at(client, "ana@example.com", false, later);
        limiter
            .login_attempt_at(client, "ana@example.com", later)
            .unwrap();
    }

    #[test]
    fn too_many_attempts_from_one_address_are_limited() {
        let mut settings = settings();
        settings.login_per_ip = 2;
        let limiter = RateLimiter::new(settings);
        let now = Instant::now();
        limiter
            .login_attempt_at(None, "a@example.com", now)
            .unwrap();
        limiter
            .login_attempt_at(None, "b@example.com", now)
            .unwrap();
        assert_eq!(
            retry_after(limiter.login_attempt_at(None, "c@example.com", now)),
            30
        );
    }

    #[test]
    fn long_keys_are_bounded() {
        assert_eq!(bounded(&"é".repeat(1000)).chars().count(), MAX_KEY_LEN);
        assert_eq!(bounded(" pk_x "), "pk_x");
    }
}
