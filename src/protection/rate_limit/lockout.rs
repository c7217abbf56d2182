//! The rule of the lock after failed logins, shared by the stores: how long
//! a count of failures locks an email or an address, and when it is forgotten.
//!
//! Attempts are counted when they start, not when they fail: an attempt
//! reserves its failure before the password is checked, so attempts that
//! run at the same time cannot all slip through under one count. A
//! success gives the reservation back. The Redis store runs the same rule
//! in Lua (see `redis.rs`); times are offsets from a clock's origin.

use std::time::Duration;

use crate::config::RateLimitSettings;

/// Failed (or still running) login attempts of one email or one address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Failures {
    pub count: u32,
    /// When the latest attempt started.
    pub last: Duration,
}

/// The lock of one kind of counter (per email or per address).
#[derive(Clone, Copy, Debug)]
pub struct LockRule {
    /// Attempts that may fail before a lock.
    pub free: u32,
    pub base: Duration,
    pub max: Duration,
    /// Failures are forgotten this long after the latest one.
    pub window: Duration,
}

impl LockRule {
    pub fn for_email(settings: &RateLimitSettings) -> LockRule {
        LockRule::with_free(settings, settings.login_email_free_failures)
    }

    pub fn for_ip(settings: &RateLimitSettings) -> LockRule {
        LockRule::with_free(settings, settings.login_ip_free_failures)
    }

    fn with_free(settings: &RateLimitSettings, free: u32) -> LockRule {
        LockRule {
            free,
            base: settings.login_lock_base,
            max: settings.login_lock_max,
            window: settings.login_failure_window,
        }
    }

    /// The lock that `count` failures impose: none below the free count,
    /// then the base lock after the last free failure, doubling with each
    /// failure after it.
    pub fn lock_for(&self, count: u32) -> Option<Duration> {
        if count == 0 || count < self.free {
            return None;
        }
        let doublings = (count - self.free).min(30);
        Some(self.base.saturating_mul(1 << doublings).min(self.max))
    }

    /// When the lock of `failures` ends, if they impose one.
    pub fn locked_until(&self, failures: &Failures) -> Option<Duration> {
        self.lock_for(failures.count)
            .map(|lock| failures.last.saturating_add(lock))
    }

    /// How long the counter must be kept after its latest attempt.
    pub fn keep_for(&self, count: u32) -> Duration {
        self.window.max(self.lock_for(count).unwrap_or_default())
    }

    /// The failures as they count at `now`: forgotten once kept long enough.
    pub fn current(&self, failures: Failures, now: Duration) -> Failures {
        if now.saturating_sub(failures.last) > self.keep_for(failures.count) {
            Failures::default()
        } else {
            failures
        }
    }

    /// How long an attempt at `now` must still wait, if it must.
    pub fn wait(&self, failures: &Failures, now: Duration) -> Option<Duration> {
        self.locked_until(failures)
            .filter(|until| *until > now)
            .map(|until| until - now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> LockRule {
        LockRule {
            free: 3,
            base: Duration::from_secs(1),
            max: Duration::from_secs(10),
            window: Duration::from_secs(60),
        }
    }

    #[test]
    fn the_last_free_failure_locks_and_each_one_after_doubles_the_lock() {
        let locks: Vec<_> = (0..8).map(|count| rule().lock_for(count)).collect();
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(
            locks,
            [
                None,
                None,
                None,
                secs(1),
                secs(2),
                secs(4),
                secs(8),
                secs(10)
            ]
        );
    }

    #[test]
    fn failures_are_forgotten_after_the_window_or_the_lock_whichever_is_longer() {
        let failures = Failures {
            count: 2,
            last: Duration::from_secs(100),
        };
        assert_eq!(rule().current(failures, Duration::from_secs(160)), failures);
        assert_eq!(
            rule().current(failures, Duration::from_secs(161)),
            Failures::default()
        );
        let mut long_lock = rule();
        long_lock.max = Duration::from_secs(600);
        let many = Failures {
            count: 40,
            last: Duration::from_secs(100),
        };
        assert_eq!(long_lock.current(many, Duration::from_secs(500)), many);
        assert_eq!(
            long_lock.wait(&many, Duration::from_secs(500)),
            Some(Duration::from_secs(200))
        );
    }
}
