//! The shared limiter: buckets and login-failure counters in Redis, so every
//! instance counts against the same limits. Each check is one Lua script,
//! atomic on the server and timed by the server's clock.
//!
//! While Redis cannot be reached, the instance counts in its own memory
//! (as without Redis) and says so in the log: the limits keep holding per
//! instance instead of turning off, and the public operations and logins
//! keep working.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::memory::MemoryLimiter;
use super::{Admission, Bucket, Limiter, LoginOutcome};
use crate::config::RateLimitSettings;

/// How long a check may wait for Redis before the instance counts alone.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);
/// After a failure, how long checks skip Redis before trying it again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// A GCRA token bucket: the key holds the time at which the bucket would be
/// full again; a minute's worth of requests may be ahead of now.
const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = 60000 / tonumber(ARGV[1])
local full_at = tonumber(redis.call('GET', KEYS[1])) or now
if full_at < now then full_at = now end
local next_full_at = full_at + interval
local wait = next_full_at - 60000 - now
if wait > 0 then return math.ceil(wait) end
redis.call('SET', KEYS[1], string.format('%.3f', next_full_at), 'PX', math.ceil(next_full_at - now))
return 0
";

/// `lockout::LockRule` in Lua: refuses while the email (KEYS[1]) or the
/// address (KEYS[2]) is locked, otherwise reserves one attempt on both.
const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local base, max, window = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local function lock_for(count, free)
  if count == 0 or count < free then return 0 end
  local lock = base * 2 ^ math.min(count - free, 30)
  if lock > max then return max end
  return lock
end
local counts = {}
local wait = 0
for i = 1, 2 do
  local free = tonumber(ARGV[i])
  local state = redis.call('HMGET', KEYS[i], 'count', 'last')
  local count = tonumber(state[1]) or 0
  local last = tonumber(state[2]) or 0
  local lock = lock_for(count, free)
  if now - last > math.max(window, lock) then
    count = 0
    lock = 0
  end
  if lock > 0 and last + lock - now > wait then wait = last + lock - now end
  counts[i] = count
end
if wait > 0 then return wait end
for i = 1, 2 do
  local count = counts[i] + 1
  redis.call('HSET', KEYS[i], 'count', count, 'last', now)
  redis.call('PEXPIRE', KEYS[i], math.max(window, lock_for(count, tonumber(ARGV[i]))) + 1000)
end
return 0
";

/// Settles a reserved attempt that did not fail: a success clears the
/// email, an attempt that was never checked gives its reservation back;
/// the address gets its attempt back either way.
const SETTLE: &str = r"
local function give_back(key)
  local count = tonumber(redis.call('HGET', key, 'count'))
  if count and count > 0 then redis.call('HSET', key, 'count', count - 1) end
end
if ARGV[1] == 'succeeded' then redis.call('DEL', KEYS[1]) else give_back(KEYS[1]) end
give_back(KEYS[2])
return 0
";

pub struct RedisLimiter {
    connection: ConnectionManager,
    prefix: String,
    settings: RateLimitSettings,
    take: Script,
    reserve: Script,
    settle: Script,
    /// Counts while Redis is out of reach.
    fallback: MemoryLimiter,
    /// Until when checks skip Redis after a failure.
    skip_until: Mutex<Option<Instant>>,
}

impl RedisLimiter {
    /// Connects lazily: an instance starts while Redis is down, and counts
    /// alone until it is back.
    pub fn open(url: &str, settings: &RateLimitSettings) -> anyhow::Result<RedisLimiter> {
        // No TLS client is built in: the rustls of the tree carries two
        // crypto providers, which leaves a TLS client without a default.
        let client = redis::Client::open(url).map_err(|_| {
            anyhow::anyhow!(
                "REDIS_URL must be a redis://host:port URL (rediss://, TLS, is not supported: use a private network or a TLS tunnel)"
            )
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|error| anyhow::anyhow!("cannot set up the Redis connection: {error}"))?;
        Ok(RedisLimiter {
            connection,
            prefix: settings.redis_key_prefix.clone(),
            settings: settings.clone(),
            take: Script::new(TAKE),
            reserve: Script::new(RESERVE),
            settle: Script::new(SETTLE),
            fallback: MemoryLimiter::new(settings),
            skip_until: Mutex::new(None),
        })
    }

    fn bucket_key(&self, bucket: Bucket, key: &str) -> String {
        format!("{}bucket:{}:{key}", self.prefix, bucket.name())
    }

    fn email_key(&self, email: &str) -> String {
        format!("{}login:email:{email}", self.prefix)
    }

    fn ip_key(&self, ip: &str) -> String {
        format!("{}login:ip:{ip}", self.prefix)
    }

    fn skipping(&self) -> bool {
        let skip_until = self
            .skip_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        skip_until.is_some_and(|until| Instant::now() < until)
    }

    /// Runs one script; on failure, notes the outage and returns `None`.
    async fn run(&self, invocation: redis::ScriptInvocation<'_>) -> Option<u64> {
        if self.skipping() {
            return None;
        }
        let mut connection = self.connection.clone();
        let outcome: redis::RedisResult<u64> = invocation.invoke_async(&mut connection).await;
        let mut skip_until = self
            .skip_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match outcome {
            Ok(value) => {
                if skip_until.take().is_some() {
                    tracing::info!("Redis answers again: rate limits are shared across instances");
                }
                Some(value)
            }
            Err(error) => {
                if skip_until.is_none() {
                    tracing::warn!(
                        error = %error,
                        "Redis cannot be reached: rate limits and login locks count on this instance alone until it is back"
                    );
                }
                *skip_until = Some(Instant::now() + RETRY_AFTER_FAILURE);
                None
            }
        }
    }
}

fn admission(wait_ms: u64) -> Admission {
    if wait_ms == 0 {
        Admission::Admitted
    } else {
        Admission::Wait(Duration::from_millis(wait_ms))
    }
}

#[async_trait]
impl Limiter for RedisLimiter {
    async fn take(&self, bucket: Bucket, key: &str) -> Admission {
        let per_minute = bucket.per_minute(&self.settings);
        if per_minute == 0 {
            return Admission::Admitted;
        }
        let mut invocation = self.take.prepare_invoke();
        invocation.key(self.bucket_key(bucket, key)).arg(per_minute);
        match self.run(invocation).await {
            Some(wait_ms) => admission(wait_ms),
            None => self.fallback.take_now(bucket, key),
        }
    }

    async fn reserve_login(&self, email: &str, ip: &str) -> Admission {
        let settings = &self.settings;
        let millis = |duration: Duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        let mut invocation = self.reserve.prepare_invoke();
        invocation
            .key(self.email_key(email))
            .key(self.ip_key(ip))
            .arg(settings.login_email_free_failures)
            .arg(settings.login_ip_free_failures)
            .arg(millis(settings.login_lock_base))
            .arg(millis(settings.login_lock_max))
            .arg(millis(settings.login_failure_window));
        match self.run(invocation).await {
            Some(wait_ms) => admission(wait_ms),
            None => self.fallback.reserve_now(email, ip),
        }
    }

    async fn settle_login(&self, email: &str, ip: &str, outcome: LoginOutcome) {
        let how = match outcome {
            // The reservation already counted the failure.
            LoginOutcome::Failed => return,
            LoginOutcome::Succeeded => "succeeded",
            LoginOutcome::NotChecked => "not checked",
        };
        let mut invocation = self.settle.prepare_invoke();
        invocation
            .key(self.email_key(email))
            .key(self.ip_key(ip))
            .arg(how);
        if self.run(invocation).await.is_none() {
            self.fallback.settle_now(email, ip, outcome);
        }
    }

    fn housekeeping(&self) {
        self.fallback.housekeeping();
    }

    async fn check_remote(&self) -> Option<Result<(), String>> {
        let mut connection = self.connection.clone();
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut connection);
        Some(match tokio::time::timeout(REDIS_TIMEOUT * 4, ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) if error.is_timeout() => Err("timed out".to_owned()),
            Ok(Err(error))
                if error.is_io_error()
                    || error.is_connection_refusal()
                    || error.is_connection_dropped() =>
            {
                Err("unreachable".to_owned())
            }
            Ok(Err(_)) => Err("refused the PING".to_owned()),
            Err(_) => Err("timed out".to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::lockout::LockRule;
    use super::*;

    /// A limiter on the Redis of TEST_REDIS_URL under keys of its own, or
    /// `None` (said loudly) when it is not set.
    fn limiter(test: &str, settings: RateLimitSettings) -> Option<RedisLimiter> {
        let url = std::env::var("TEST_REDIS_URL")
            .ok()
            .filter(|url| !url.is_empty());
        let Some(url) = url else {
            eprintln!("SKIPPED {test}: set TEST_REDIS_URL=redis://127.0.0.1:6379 to run it");
            return None;
        };
        let settings = RateLimitSettings {
            redis_key_prefix: format!("contacts-test:{}:", uuid::Uuid::now_v7()),
            ..settings
        };
        Some(RedisLimiter::open(&url, &settings).expect("a Redis URL"))
    }

    fn waits(admission: Admission) -> Duration {
        match admission {
            Admission::Wait(wait) => wait,
            Admission::Admitted => panic!("expected a wait"),
        }
    }

    #[tokio::test]
    async fn only_plain_redis_urls_are_accepted() {
        let settings = RateLimitSettings::default();
        for url in ["rediss://127.0.0.1:6379", "not a url", "http://127.0.0.1"] {
            assert!(RedisLimiter::open(url, &settings).is_err(), "{url}");
        }
        assert!(RedisLimiter::open("redis://127.0.0.1:6379/2", &settings).is_ok());
    }

    #[tokio::test]
    async fn a_bucket_lets_a_minute_of_requests_through_then_asks_to_wait() {
        let settings = RateLimitSettings {
            public_per_ip: 3,
            ..RateLimitSettings::default()
        };
        let Some(limiter) = limiter("redis bucket", settings) else {
            return;
        };
        for _ in 0..3 {
            assert_eq!(
                limiter.take(Bucket::PublicIp, "a").await,
                Admission::Admitted
            );
        }
        // 3 per minute: the next token comes in 20 s.
        let wait = waits(limiter.take(Bucket::PublicIp, "a").await);
        assert!(
            (Duration::from_secs(19)..=Duration::from_secs(20)).contains(&wait),
            "{wait:?}"
        );
        assert_eq!(
            limiter.take(Bucket::PublicIp, "b").await,
            Admission::Admitted
        );
        assert!(
            limiter.skip_until.lock().unwrap().is_none(),
            "Redis answered"
        );
    }

    #[tokio::test]
    async fn the_lock_follows_the_shared_rule_and_a_success_clears_the_email() {
        let settings = RateLimitSettings {
            login_email_free_failures: 1,
            login_ip_free_failures: 100,
            login_lock_base: Duration::from_millis(200),
            ..RateLimitSettings::default()
        };
        let Some(limiter) = limiter("redis lock", settings.clone()) else {
            return;
        };
        let rule = LockRule::for_email(&settings);
        for count in 1..=3 {
            assert_eq!(
                limiter.reserve_login("ana", "192.0.2.1").await,
                Admission::Admitted
            );
            let lock = rule.lock_for(count).expect("a lock");
            let wait = waits(limiter.reserve_login("ana", "192.0.2.1").await);
            assert!(
                wait <= lock && wait + Duration::from_millis(100) > lock,
                "{wait:?}"
            );
            // The lock is the point: the next attempt is admitted when it ends.
            tokio::time::sleep(wait).await;
        }
        // An attempt the database could not check is given back: the lock
        // is the one of the failures before it ...
        assert_eq!(
            limiter.reserve_login("ana", "192.0.2.1").await,
            Admission::Admitted
        );
        limiter
            .settle_login("ana", "192.0.2.1", LoginOutcome::NotChecked)
            .await;
        let wait = waits(limiter.reserve_login("ana", "192.0.2.1").await);
        assert!(wait <= rule.lock_for(3).expect("a lock"), "{wait:?}");
        // ... and a success clears the email.
        limiter
            .settle_login("ana", "192.0.2.1", LoginOutcome::Succeeded)
            .await;
        assert_eq!(
            limiter.reserve_login("ana", "192.0.2.1").await,
            Admission::Admitted
        );
        assert!(
            limiter.skip_until.lock().unwrap().is_none(),
            "Redis answered"
        );
    }

    /// A Redis server of one test alone, which the test stops and starts.
    struct PrivateRedis {
        server: std::process::Child,
    }

    impl PrivateRedis {
        async fn start(port: u16) -> PrivateRedis {
            let server = std::process::Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("redis-server runs (TEST_REDIS_URL is set, so Redis is installed)");
            let ready = async {
                while tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_err()
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            tokio::time::timeout(Duration::from_secs(10), ready)
                .await
                .expect("the private Redis listens");
            PrivateRedis { server }
        }

        fn stop(mut self) {
            let _ = self.server.kill();
            let _ = self.server.wait();
        }
    }

    impl Drop for PrivateRedis {
        fn drop(&mut self) {
            let _ = self.server.kill();
            let _ = self.server.wait();
        }
    }

    #[tokio::test]
    async fn while_redis_is_down_the_instance_counts_alone_and_shares_again_after() {
        if limiter("redis outage", RateLimitSettings::default()).is_none() {
            return;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let redis = PrivateRedis::start(port).await;
        let settings = RateLimitSettings {
            public_per_ip: 2,
            ..RateLimitSettings::default()
        };
        let url = format!("redis://127.0.0.1:{port}");
        let limiter = RedisLimiter::open(&url, &settings).expect("a Redis URL");
        let outage = || limiter.skip_until.lock().unwrap().is_some();
        assert_eq!(
            limiter.take(Bucket::PublicIp, "a").await,
            Admission::Admitted
        );
        assert!(!outage());

        redis.stop();
        // Redis's count is out of reach; this instance's own one holds.
        assert_eq!(
            limiter.take(Bucket::PublicIp, "a").await,
            Admission::Admitted
        );
        assert!(outage(), "the outage is noticed");
        assert_eq!(
            limiter.take(Bucket::PublicIp, "a").await,
            Admission::Admitted
        );
        waits(limiter.take(Bucket::PublicIp, "a").await);

        let _redis = PrivateRedis::start(port).await;
        let back = async {
            loop {
                limiter.take(Bucket::PublicProject, "probe").await;
                if !outage() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(15), back)
            .await
            .expect("Redis is used again once it answers");
        // The count is Redis's again: a fresh server, a fresh bucket.
        assert_eq!(
            limiter.take(Bucket::PublicIp, "a").await,
            Admission::Admitted
        );
        assert!(!outage());
    }
}
