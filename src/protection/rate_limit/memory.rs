//! The embedded limiter: token buckets (governor's keyed GCRA limiters) and
//! login-failure counters in this process's memory, so each instance counts
//! on its own.

use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::lockout::{Failures, LockRule};
use super::{Admission, Bucket, Limiter, LoginOutcome};
use crate::config::RateLimitSettings;

/// Counters kept at most; past it the one closest to being forgotten goes.
const MAX_LOCKOUT_ENTRIES: usize = 100_000;

type KeyedBuckets<C> =
    RateLimiter<String, DefaultKeyedStateStore<String>, C, NoOpMiddleware<<C as Clock>::Instant>>;

pub struct MemoryLimiter<C: Clock = DefaultClock> {
    clock: C,
    origin: C::Instant,
    public_ip: Option<KeyedBuckets<C>>,
    public_project: Option<KeyedBuckets<C>>,
    login_ip: Option<KeyedBuckets<C>>,
    email_rule: LockRule,
    ip_rule: LockRule,
    lockout: Mutex<LockoutTable>,
}

impl MemoryLimiter {
    pub fn new(settings: &RateLimitSettings) -> MemoryLimiter {
        MemoryLimiter::with_clock(settings, DefaultClock::default())
    }
}

impl<C: Clock + Clone> MemoryLimiter<C> {
    pub fn with_clock(settings: &RateLimitSettings, clock: C) -> MemoryLimiter<C> {
        let buckets = |per_minute: u32| {
            NonZeroU32::new(per_minute).map(|per_minute| {
                RateLimiter::dashmap_with_clock(Quota::per_minute(per_minute), clock.clone())
            })
        };
        MemoryLimiter {
            origin: clock.now(),
            public_ip: buckets(settings.public_per_ip),
            public_project: buckets(settings.public_per_project),
            login_ip: buckets(settings.login_per_ip),
            clock,
            email_rule: LockRule::for_email(settings),
            ip_rule: LockRule::for_ip(settings),
            lockout: Mutex::new(LockoutTable::new(MAX_LOCKOUT_ENTRIES)),
        }
    }

    fn buckets(&self, bucket: Bucket) -> Option<&KeyedBuckets<C>> {
        match bucket {
            Bucket::PublicIp => self.public_ip.as_ref(),
            Bucket::PublicProject => self.public_project.as_ref(),
            Bucket::LoginIp => self.login_ip.as_ref(),
        }
    }

    fn now(&self) -> Duration {
        self.clock.now().duration_since(self.origin).into()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, LockoutTable> {
        self.lockout
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The checks themselves, synchronous: the Redis store falls back on them.
    pub(super) fn take_now(&self, bucket: Bucket, key: &str) -> Admission {
        let Some(buckets) = self.buckets(bucket) else {
            return Admission::Admitted;
        };
        match buckets.check_key(&key.to_owned()) {
            Ok(()) => Admission::Admitted,
            Err(not_until) => Admission::Wait(not_until.wait_time_from(self.clock.now())),
        }
    }

    pub(super) fn reserve_now(&self, email: &str, ip: &str) -> Admission {
        let now = self.now();
        let mut table = self.table();
        table.expire(now);
        let email_key = (Counter::Email, email.to_owned());
        let ip_key = (Counter::Ip, ip.to_owned());
        let email_failures = table.current(&email_key, &self.email_rule, now);
        let ip_failures = table.current(&ip_key, &self.ip_rule, now);
        let wait = [
            self.email_rule.wait(&email_failures, now),
            self.ip_rule.wait(&ip_failures, now),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(wait) = wait {
            return Admission::Wait(wait);
        }
        for (key, failures, rule) in [
            (email_key, email_failures, &self.email_rule),
            (ip_key, ip_failures, &self.ip_rule),
        ] {
            let reserved = Failures {
                count: failures.count.saturating_add(1),
                last: now,
            };
            table.put(key, reserved, rule);
        }
        Admission::Admitted
    }

    pub(super) fn settle_now(&self, email: &str, ip: &str, outcome: LoginOutcome) {
        let mut table = self.table();
        let email_key = (Counter::Email, email.to_owned());
        match outcome {
            LoginOutcome::Failed => return,
            LoginOutcome::Succeeded => table.remove(&email_key),
            LoginOutcome::NotChecked => table.give_back(email_key, &self.email_rule),
        }
        table.give_back((Counter::Ip, ip.to_owned()), &self.ip_rule);
    }
}

#[async_trait]
impl<C: Clock + Clone + Send + Sync> Limiter for MemoryLimiter<C>
where
    C::Instant: Send + Sync,
{
    async fn take(&self, bucket: Bucket, key: &str) -> Admission {
        self.take_now(bucket, key)
    }

    async fn reserve_login(&self, email: &str, ip: &str) -> Admission {
        self.reserve_now(email, ip)
    }

    async fn settle_login(&self, email: &str, ip: &str, outcome: LoginOutcome) {
        self.settle_now(email, ip, outcome);
    }

    fn housekeeping(&self) {
        // A bucket back to full is the same as no bucket.
        for buckets in [&self.public_ip, &self.public_project, &self.login_ip]
            .into_iter()
            .flatten()
        {
            buckets.retain_recent();
            buckets.shrink_to_fit();
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Counter {
    Email,
    Ip,
}

type CounterKey = (Counter, String);

/// Failure counters with the time each may be forgotten, ordered by that
/// time, so that expiring and evicting never scan the whole table.
struct LockoutTable {
    entries: HashMap<CounterKey, (Failures, Duration)>,
    by_expiry: BTreeSet<(Duration, CounterKey)>,
    capacity: usize,
}

impl LockoutTable {
    fn new(capacity: usize) -> LockoutTable {
        LockoutTable {
            entries: HashMap::new(),
            by_expiry: BTreeSet::new(),
            capacity,
        }
    }

    fn current(&self, key: &CounterKey, rule: &LockRule, now: Duration) -> Failures {
        self.entries
            .get(key)
            .map(|(failures, _)| rule.current(*failures, now))
            .unwrap_or_default()
    }

    fn put(&mut self, key: CounterKey, failures: Failures, rule: &LockRule) {
        let expires = failures.last.saturating_add(rule.keep_for(failures.count));
        if let Some((_, old_expiry)) = self.entries.get(&key) {
            self.by_expiry.remove(&(*old_expiry, key.clone()));
        } else if self.entries.len() >= self.capacity
            && let Some((_, oldest)) = self.by_expiry.pop_first()
        {
            self.entries.remove(&oldest);
        }
        self.by_expiry.insert((expires, key.clone()));
        self.entries.insert(key, (failures, expires));
    }

    fn remove(&mut self, key: &CounterKey) {
        if let Some((_, expires)) = self.entries.remove(key) {
            self.by_expiry.remove(&(expires, key.clone()));
        }
    }

    /// Takes back one reserved attempt; its time stays, so a lock that
    /// earlier failures impose still runs.
    fn give_back(&mut self, key: CounterKey, rule: &LockRule) {
        let Some((failures, _)) = self.entries.get(&key).copied() else {
            return;
        };
        match failures.count {
            0 | 1 => self.remove(&key),
            count => self.put(
                key,
                Failures {
                    count: count - 1,
                    last: failures.last,
                },
                rule,
            ),
        }
    }

    fn expire(&mut self, now: Duration) {
        while let Some((expires, _)) = self.by_expiry.first()
            && *expires < now
        {
            if let Some((_, key)) = self.by_expiry.pop_first() {
                self.entries.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

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
            ..RateLimitSettings::default()
        }
    }

    fn limiter() -> (MemoryLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (MemoryLimiter::with_clock(&settings(), clock.clone()), clock)
    }

    fn waits(admission: Admission) -> Duration {
        match admission {
            Admission::Wait(wait) => wait,
            Admission::Admitted => panic!("expected a wait"),
        }
    }

    #[test]
    fn a_burst_passes_then_the_client_waits_for_the_refill() {
        let (limiter, clock) = limiter();
        for _ in 0..3 {
            assert_eq!(limiter.take_now(Bucket::PublicIp, "a"), Admission::Admitted);
        }
        // 3 per minute: a token every 20 s.
        assert_eq!(
            waits(limiter.take_now(Bucket::PublicIp, "a")),
            Duration::from_secs(20)
        );
        clock.advance(Duration::from_secs(15));
        assert_eq!(
            waits(limiter.take_now(Bucket::PublicIp, "a")),
            Duration::from_secs(5)
        );
        clock.advance(Duration::from_secs(5));
        assert_eq!(limiter.take_now(Bucket::PublicIp, "a"), Admission::Admitted);
        assert_eq!(limiter.take_now(Bucket::PublicIp, "b"), Admission::Admitted);
        assert_eq!(
            limiter.take_now(Bucket::PublicProject, "a"),
            Admission::Admitted,
            "each bucket counts on its own"
        );
    }

    #[test]
    fn a_zero_limit_is_no_limit() {
        let mut settings = settings();
        settings.public_per_ip = 0;
        let limiter = MemoryLimiter::new(&settings);
        for _ in 0..1000 {
            assert_eq!(limiter.take_now(Bucket::PublicIp, "a"), Admission::Admitted);
        }
    }

    #[test]
    fn reserved_attempts_lock_before_their_passwords_are_checked() {
        let (limiter, clock) = limiter();
        // Two free failures: the second attempt, still running, locks.
        let admitted: Vec<_> = (0..12)
            .map(|_| limiter.reserve_now("ana@example.com", "192.0.2.1"))
            .filter(|admission| *admission == Admission::Admitted)
            .collect();
        assert_eq!(admitted.len(), 2);
        assert_eq!(
            waits(limiter.reserve_now("ana@example.com", "192.0.2.9")),
            Duration::from_secs(1)
        );
        // Both fail; the lock doubles with each attempt after it.
        let mut locks = Vec::new();
        for _ in 0..5 {
            let wait = waits(limiter.reserve_now("ana@example.com", "192.0.2.1"));
            locks.push(wait.as_secs());
            clock.advance(wait);
            assert_eq!(
                limiter.reserve_now("ana@example.com", "192.0.2.1"),
                Admission::Admitted
            );
        }
        assert_eq!(locks, [1, 2, 4, 8, 10]);
    }

    #[test]
    fn a_success_clears_the_email_and_gives_back_the_address_attempt() {
        let (limiter, _) = limiter();
        limiter.reserve_now("ana@example.com", "192.0.2.1");
        limiter.settle_now("ana@example.com", "192.0.2.1", LoginOutcome::Failed);
        limiter.reserve_now("ana@example.com", "192.0.2.1");
        limiter.settle_now("ana@example.com", "192.0.2.1", LoginOutcome::Succeeded);
        assert_eq!(
            limiter.reserve_now("ana@example.com", "192.0.2.1"),
            Admission::Admitted
        );
        let table = limiter.table();
        let ip = (Counter::Ip, "192.0.2.1".to_owned());
        assert_eq!(table.entries[&ip].0.count, 2, "one failure, one running");
    }

    #[test]
    fn an_address_guessing_many_emails_is_locked() {
        let (limiter, _) = limiter();
        for n in 0..4 {
            let email = format!("user{n}@example.com");
            assert_eq!(
                limiter.reserve_now(&email, "192.0.2.1"),
                Admission::Admitted
            );
        }
        waits(limiter.reserve_now("fresh@example.com", "192.0.2.1"));
        assert_eq!(
            limiter.reserve_now("fresh@example.com", "192.0.2.2"),
            Admission::Admitted
        );
    }

    #[test]
    fn old_failures_are_forgotten_and_the_table_stays_bounded() {
        let (limiter, clock) = limiter();
        limiter.reserve_now("ana@example.com", "192.0.2.1");
        limiter.reserve_now("ana@example.com", "192.0.2.1");
        clock.advance(Duration::from_secs(61));
        assert_eq!(
            limiter.reserve_now("ana@example.com", "192.0.2.1"),
            Admission::Admitted
        );

        let rule = LockRule::for_email(&settings());
        let mut table = LockoutTable::new(3);
        for n in 0..5u64 {
            let failures = Failures {
                count: 1,
                last: Duration::from_secs(n),
            };
            table.put((Counter::Email, n.to_string()), failures, &rule);
        }
        assert_eq!(table.entries.len(), 3);
        assert_eq!(table.by_expiry.len(), 3);
        // The oldest went first.
        assert!(
            !table
                .entries
                .contains_key(&(Counter::Email, "0".to_owned()))
        );
        assert!(
            table
                .entries
                .contains_key(&(Counter::Email, "4".to_owned()))
        );
        table.expire(Duration::from_millis(63_500));
        assert_eq!(table.entries.len(), 1);
    }
}
