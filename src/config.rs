//! Settings of the server, read once from the environment at start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::client_ip::{IpRetention, TrustedProxies};
use crate::storage::S3Settings;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub listen_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    /// Base of the links the server hands out; without it, `http://` and the
    /// address the server is bound to.
    pub public_url: Option<String>,
    pub log_format: LogFormat,
    pub limits: Limits,
    pub token_ttl: Duration,
    /// Whether the first start on an empty database creates an owner and a project.
    pub bootstrap_owner: bool,
    pub geo: GeoSettings,
    pub trusted_proxies: TrustedProxies,
    pub ip_retention: IpRetention,
    pub exports: ExportSettings,
    /// Where export files go; none: a folder under `DATA_DIR`, served by
    /// this server at signed links.
    pub s3: Option<S3Settings>,
    /// `smtp://user:pass@host:port`; none: mail is written to `DATA_DIR/mail`.
    pub smtp_url: Option<String>,
    pub mail_from: String,
    /// Limits on the public operations and on failed logins.
    pub rate_limits: RateLimitSettings,
    /// Origins of the agents' web app, allowed to call the API from a
    /// browser (widget origins are listed per project).
    pub agent_app_origins: Vec<String>,
    /// How often the cached list of allowed origins is reloaded, besides
    /// the reload that every change triggers.
    pub origins_refresh: Duration,
    /// How long a token's agent and a membership, once read, are taken
    /// from memory; every change clears them sooner. Zero reads them on
    /// every request.
    pub access_cache: Duration,
    /// How long requests in flight may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// How long a request waits for a PostgreSQL connection before it
    /// fails as "service unavailable".
    pub database_acquire_timeout: Duration,
    pub accounts: AccountSettings,
    /// Whether GET `/graphql` serves the GraphiQL page (and its files) to browsers.
    pub playground: bool,
    /// Whether `__schema` and `__type` are answered; off, they are refused.
    pub introspection: bool,
    /// Requests taking this long or longer are logged at `warn`.
    pub slow_request: Duration,
    /// Where `/metrics` is served on its own; none: beside the API.
    pub metrics_addr: Option<SocketAddr>,
    pub retention: RetentionSettings,
}

/// What the service deletes once it has served its purpose, and when. A
/// `None` period keeps that kind for ever.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionSettings {
    /// How often a retention run starts; none: never.
    pub interval: Option<Duration>,
    /// How long expired or revoked access tokens, expired or used password
    /// resets, and accepted, revoked or expired invitations are kept.
    pub finished_tokens: Option<Duration>,
    /// How long notifications are kept after they were created.
    pub notifications: Option<Duration>,
    /// How long an export's file is kept after the export finished.
    pub export_files: Option<Duration>,
    /// How long `.eml` files of the file mailer are kept.
    pub mail_files: Option<Duration>,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            interval: Some(Duration::from_secs(3600)),
            finished_tokens: Some(days(7)),
            notifications: Some(days(90)),
            export_files: Some(days(7)),
            mail_files: Some(days(30)),
        }
    }
}

const fn days(n: u64) -> Duration {
    Duration::from_secs(n * 24 * 3600)
}

/// Invitations, password resets and key rotation.
#[derive(Clone, Debug)]
pub struct AccountSettings {
    /// Base of the links mailed to agents (`/invitations/<token>`,
    /// `/reset/<token>`); none: the first of `AGENT_APP_ORIGINS`, else
    /// `PUBLIC_URL`.
    pub agent_app_url: Option<String>,
    pub invitation_ttl: Duration,
    pub password_reset_ttl: Duration,
    /// How long a project's previous public key still works after a rotation.
    pub public_key_grace: Duration,
}

/// Requests per minute; each limit is a token bucket holding a minute's
/// worth, so a burst up to the limit passes at once. 0 turns a limit off.
/// In Redis when `redis_url` is set, in each instance's memory otherwise.
#[derive(Clone, Debug)]
pub struct RateLimitSettings {
    /// `startChat` and `submitContactForm` per client IP (IPv6: per /64).
    pub public_per_ip: u32,
    /// `startChat` per project key, and `submitContactForm` per project.
    pub public_per_project: u32,
    /// `login` attempts per client IP.
    pub login_per_ip: u32,
    /// Failed logins for one email before each further failure locks it.
    pub login_email_free_failures: u32,
    /// Failed logins from one client IP before each further failure locks it.
    pub login_ip_free_failures: u32,
    /// The first lock; each further failure doubles it.
    pub login_lock_base: Duration,
    pub login_lock_max: Duration,
    /// Failures are forgotten this long after the last one.
    pub login_failure_window: Duration,
    /// Where every instance counts together; none: each counts in memory.
    pub redis_url: Option<String>,
    /// Put before every key in Redis, so deployments can share a server.
    pub redis_key_prefix: String,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            public_per_ip: 600,
            public_per_project: 6_000,
            login_per_ip: 60,
            login_email_free_failures: 5,
            login_ip_free_failures: 20,
            login_lock_base: Duration::from_secs(1),
            login_lock_max: Duration::from_secs(15 * 60),
            login_failure_window: Duration::from_secs(15 * 60),
            redis_url: None,
            redis_key_prefix: "contacts:limits:".to_owned(),
        }
    }
}

/// How export jobs run.
#[derive(Clone, Debug)]
pub struct ExportSettings {
    /// Workers per server instance.
    pub workers: usize,
    /// Rows read from the database per query.
    pub chunk_size: u64,
    /// Attempts before a job fails for good.
    pub max_attempts: i32,
    /// How long a worker holds a job without a heartbeat before another
    /// instance may take it over.
    pub lease: Duration,
    /// How often idle workers look for jobs.
    pub poll_interval: Duration,
    /// The first retry delay; it doubles with each attempt.
    pub retry_base: Duration,
    /// How long emailed and notified links work.
    pub link_ttl: Duration,
    /// How long the on-demand `downloadUrl` links work.
    pub download_link_ttl: Duration,
    /// Rows written per second at most; 0 for no limit.
    pub max_rows_per_second: u64,
}
/// Where IP locations come from.
#[derive(Clone, Debug)]
pub struct GeoSettings {
    /// A GeoIP2/GeoLite2 City or DB-IP City Lite `.mmdb` file; none: no locations.
    pub database: Option<PathBuf>,
    /// Languages for place names, most wanted first.
    pub languages: Vec<String>,
    /// How often the file is checked for a replacement.
    pub reload_interval: Duration,
}

/// Bounds on what one request may cost.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_query_depth: usize,
    pub max_query_complexity: usize,
    /// The most rows one document may ask for, as `graphql::cost` counts
    /// them: page sizes multiplied through the nesting.
    pub max_query_cost: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 * 1024,
            max_query_depth: 12,
            max_query_complexity: 2_000,
            max_query_cost: 50_000,
        }
    }
}

impl Settings {
    /// Where the agents' web app is, for the links mailed to agents.
    pub fn agent_app_url(&self) -> String {
        self.accounts
            .agent_app_url
            .clone()
            .or_else(|| self.agent_app_origins.first().cloned())
            .or_else(|| self.public_url.clone())
            .unwrap_or_else(|| crate::public_url::link_base(None, self.listen_addr).url)
    }

    /// Settings from the process environment.
    pub fn from_env() -> anyhow::Result<Settings> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Settings from any source of variables; `from_env` in production,
    /// a map in tests.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Settings> {
        let var = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());

        let listen_addr: SocketAddr = var("LISTEN_ADDR")
            .unwrap_or_else(|| "127.0.0.1:8080".into())
            .parse()
            .context("LISTEN_ADDR must be an address like 127.0.0.1:8080")?;
        let data_dir = PathBuf::from(var("DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database_url = var("DATABASE_URL").unwrap_or_else(|| sqlite_url_in(&data_dir));
        let public_url = var("PUBLIC_URL").map(|url| url.trim_end_matches('/').to_owned());
        let log_format = match var("LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => bail!("LOG_FORMAT must be pretty or json, not {other:?}"),
        };
        let defaults = Limits::default();
        let limits = Limits {
            max_body_bytes: parse_or(&var, "MAX_BODY_BYTES", defaults.max_body_bytes)?,
            max_query_depth: parse_or(&var, "MAX_QUERY_DEPTH", defaults.max_query_depth)?,
            max_query_complexity: parse_or(
                &var,
                "MAX_QUERY_COMPLEXITY",
                defaults.max_query_complexity,
            )?,
            max_query_cost: parse_or(&var, "MAX_QUERY_COST", defaults.max_query_cost)?,
        };
        let token_ttl_hours: u64 = parse_or(&var, "TOKEN_TTL_HOURS", 24 * 30)?;
        let geo = GeoSettings {
            database: var("GEOIP_DB").map(PathBuf::from),
            languages: var("GEOIP_LANGUAGES")
                .map(|list| {
                    list.split(',')
                        .map(|language| language.trim().to_owned())
                        .filter(|language| !language.is_empty())
                        .collect()
                })
                .unwrap_or_else(crate::geo::default_languages),
            reload_interval: Duration::from_secs(parse_or(&var, "GEOIP_RELOAD_SECS", 60)?),
        };
        let trusted_proxies: TrustedProxies = var("TRUSTED_PROXIES")
            .unwrap_or_default()
            .parse()
            .context("TRUSTED_PROXIES must be a comma-separated list of IPs and CIDR networks")?;
        let ip_retention: IpRetention = var("IP_RETENTION")
            .unwrap_or_else(|| "full".into())
            .parse()
            .context("IP_RETENTION must be full, truncated or none")?;

        let exports = ExportSettings {
            workers: parse_or(&var, "EXPORT_WORKERS", 2)?,
            chunk_size: parse_or(&var, "EXPORT_CHUNK_ROWS", 50_000)?,
            max_attempts: parse_or(&var, "EXPORT_MAX_ATTEMPTS", 5)?,
            lease: Duration::from_secs(parse_or(&var, "EXPORT_LEASE_SECS", 30)?),
            poll_interval: Duration::from_millis(parse_or(&var, "EXPORT_POLL_MS", 1_000)?),
            retry_base: Duration::from_millis(parse_or(&var, "EXPORT_RETRY_BASE_MS", 2_000)?),
            link_ttl: Duration::from_secs(3600 * parse_or(&var, "EXPORT_LINK_TTL_HOURS", 72)?),
            download_link_ttl: Duration::from_secs(
                60 * parse_or(&var, "DOWNLOAD_LINK_TTL_MINUTES", 15)?,
            ),
            max_rows_per_second: parse_or(&var, "EXPORT_MAX_ROWS_PER_SECOND", 0)?,
        };
        if exports.chunk_size == 0 || exports.max_attempts < 1 || exports.lease.as_secs() < 3 {
            bail!(
                "EXPORT_CHUNK_ROWS and EXPORT_MAX_ATTEMPTS must be above 0, EXPORT_LEASE_SECS at least 3"
            );
        }
        let s3 = match var("S3_BUCKET") {
            None => None,
            Some(bucket) => {
                let mut s3 = S3Settings::new(bucket);
                s3.prefix = var("S3_PREFIX").unwrap_or_default();
                s3.endpoint = var("S3_ENDPOINT");
                s3.region = var("S3_REGION");
                s3.force_path_style = matches!(
                    var("S3_FORCE_PATH_STYLE")
                        .as_deref()
                        .map(str::to_ascii_lowercase)
                        .as_deref(),
                    Some("true" | "1" | "yes")
                );
                s3.presign_expiry = exports.link_ttl.min(Duration::from_secs(7 * 24 * 3600));
                Some(s3)
            }
        };

        let rate_defaults = RateLimitSettings::default();
        let rate_limits = RateLimitSettings {
            public_per_ip: parse_or(
                &var,
                "RATE_LIMIT_PUBLIC_PER_IP",
                rate_defaults.public_per_ip,
            )?,
            public_per_project: parse_or(
                &var,
                "RATE_LIMIT_PUBLIC_PER_PROJECT",
                rate_defaults.public_per_project,
            )?,
            login_per_ip: parse_or(&var, "RATE_LIMIT_LOGIN_PER_IP", rate_defaults.login_per_ip)?,
            login_email_free_failures: parse_or(
                &var,
                "LOGIN_FAILURES_PER_EMAIL",
                rate_defaults.login_email_free_failures,
            )?,
            login_ip_free_failures: parse_or(
                &var,
                "LOGIN_FAILURES_PER_IP",
                rate_defaults.login_ip_free_failures,
            )?,
            login_lock_base: Duration::from_millis(parse_or(&var, "LOGIN_LOCK_BASE_MS", 1_000)?),
            login_lock_max: Duration::from_secs(parse_or(&var, "LOGIN_LOCK_MAX_SECS", 900)?),
            login_failure_window: Duration::from_secs(parse_or(
                &var,
                "LOGIN_FAILURE_WINDOW_SECS",
                900,
            )?),
            redis_url: var("REDIS_URL").filter(|url| !url.trim().is_empty()),
            redis_key_prefix: var("REDIS_KEY_PREFIX").unwrap_or(rate_defaults.redis_key_prefix),
        };
        let agent_app_origins = match var("AGENT_APP_ORIGINS") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|origin| !origin.is_empty())
                .map(|origin| {
                    crate::protection::origins::parse_origin(origin).map_err(|_| {
                        anyhow::anyhow!(
                            "AGENT_APP_ORIGINS must list origins like https://app.example.com, not {origin:?}"
                        )
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
        };

        let agent_app_url = match var("AGENT_APP_URL") {
            None => None,
            Some(raw) => {
                let url = raw.trim().trim_end_matches('/').to_owned();
                match url::Url::parse(&url) {
                    Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Some(url),
                    _ => bail!(
                        "AGENT_APP_URL must be an http(s) URL like https://app.example.com, not {raw:?}"
                    ),
                }
            }
        };
        let accounts = AccountSettings {
            agent_app_url,
            invitation_ttl: Duration::from_secs(
                3600 * parse_or(&var, "INVITATION_TTL_HOURS", 168)?,
            ),
            password_reset_ttl: Duration::from_secs(
                60 * parse_or(&var, "PASSWORD_RESET_TTL_MINUTES", 60)?,
            ),
            public_key_grace: Duration::from_secs(
                3600 * parse_or(&var, "PUBLIC_KEY_GRACE_HOURS", 24)?,
            ),
        };

        Ok(Settings {
            listen_addr,
            data_dir,
            database_url,
            public_url,
            log_format,
            limits,
            token_ttl: Duration::from_secs(token_ttl_hours * 3600),
            bootstrap_owner: switch_or(&var, "BOOTSTRAP_OWNER", true)?,
            geo,
            trusted_proxies,
            ip_retention,
            exports,
            s3,
            smtp_url: var("SMTP_URL"),
            mail_from: var("MAIL_FROM").unwrap_or_else(|| "Contacts <contacts@localhost>".into()),
            rate_limits,
            agent_app_origins,
            origins_refresh: Duration::from_secs(parse_or(&var, "ORIGINS_REFRESH_SECS", 60)?),
            access_cache: Duration::from_millis(parse_or(&var, "ACCESS_CACHE_MS", 1_000)?),
            shutdown_grace: Duration::from_secs(parse_or(&var, "SHUTDOWN_GRACE_SECS", 30)?),
            database_acquire_timeout: Duration::from_millis(parse_or(
                &var,
                "DATABASE_ACQUIRE_TIMEOUT_MS",
                2_000,
            )?),
            accounts,
            playground: switch_or(&var, "PLAYGROUND", true)?,
            introspection: switch_or(&var, "INTROSPECTION", true)?,
            slow_request: Duration::from_millis(parse_or(&var, "SLOW_REQUEST_MS", 1_000)?),
            metrics_addr: var("METRICS_ADDR")
                .map(|address| address.parse())
                .transpose()
                .context("METRICS_ADDR must be an address like 127.0.0.1:9090")?,
            retention: retention_from(&var)?,
        })
    }
}

/// The retention periods; each `0` keeps that kind for ever.
fn retention_from(var: &impl Fn(&str) -> Option<String>) -> anyhow::Result<RetentionSettings> {
    let defaults = RetentionSettings::default();
    let period = |name: &str, unit: Duration, default: Option<Duration>| -> anyhow::Result<_> {
        let units_default = default.map_or(0, |period| period.as_secs() / unit.as_secs());
        let units: u64 = parse_or(var, name, units_default)?;
        Ok((units > 0).then(|| unit * u32::try_from(units).unwrap_or(u32::MAX)))
    };
    Ok(RetentionSettings {
        interval: period(
            "RETENTION_INTERVAL_MINUTES",
            Duration::from_secs(60),
            defaults.interval,
        )?,
        finished_tokens: period("TOKEN_RETENTION_DAYS", days(1), defaults.finished_tokens)?,
        notifications: period(
            "NOTIFICATION_RETENTION_DAYS",
            days(1),
            defaults.notifications,
        )?,
        export_files: period("EXPORT_FILE_RETENTION_DAYS", days(1), defaults.export_files)?,
        mail_files: period("MAIL_FILE_RETENTION_DAYS", days(1), defaults.mail_files)?,
    })
}

/// The embedded default database: a SQLite file inside the data folder.
pub fn sqlite_url_in(data_dir: &std::path::Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("contacts.db").display()
    )
}

fn parse_or<T: std::str::FromStr>(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: T,
) -> anyhow::Result<T> {
    match var(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name} must be a number, not {raw:?}")),
    }
}

/// An on/off setting: `true`/`false`, `1`/`0` or `on`/`off`, in any case.
fn switch_or(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: bool,
) -> anyhow::Result<bool> {
    match var(name) {
        None => Ok(default),
        Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "on" => Ok(true),
            "false" | "0" | "off" => Ok(false),
            _ => bail!("{name} must be true, false, 1, 0, on or off, not {raw:?}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_work_on_a_fresh_machine() {
        let settings = settings(&[]).unwrap();
        assert_eq!(settings.listen_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(
            settings.database_url,
            "sqlite://./data/contacts.db?mode=rwc"
        );
        assert_eq!(settings.public_url, None);
        assert_eq!(settings.log_format, LogFormat::Pretty);
    }

    #[test]
    fn hardening_settings_come_from_the_environment() {
        let settings = settings(&[
            ("RATE_LIMIT_PUBLIC_PER_IP", "5"),
            ("LOGIN_LOCK_BASE_MS", "250"),
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            (
                "AGENT_APP_ORIGINS",
                "https://App.example.com/, http://localhost:3000",
            ),
        ])
        .unwrap();
        assert_eq!(settings.rate_limits.public_per_ip, 5);
        assert_eq!(
            settings.rate_limits.login_lock_base,
            Duration::from_millis(250)
        );
        assert_eq!(
            settings.agent_app_origins,
            ["https://app.example.com", "http://localhost:3000"]
        );
        assert_eq!(
            settings.rate_limits.redis_url.as_deref(),
            Some("redis://127.0.0.1:6379")
        );
        let defaults = settings_pg();
        assert!(defaults.agent_app_origins.is_empty());
        assert_eq!(defaults.rate_limits.redis_url, None);
        assert_eq!(defaults.shutdown_grace, Duration::from_secs(30));
        assert_eq!(defaults.database_acquire_timeout, Duration::from_secs(2));
    }

    #[test]
    fn mailed_links_go_to_the_agents_app() {
        let given = settings(&[
            ("AGENT_APP_URL", "https://app.example.com/"),
            ("INVITATION_TTL_HOURS", "2"),
        ])
        .unwrap();
        assert_eq!(given.agent_app_url(), "https://app.example.com");
        assert_eq!(given.accounts.invitation_ttl, Duration::from_secs(7200));
        let from_origins =
            settings(&[("AGENT_APP_ORIGINS", "https://agents.example.com")]).unwrap();
        assert_eq!(from_origins.agent_app_url(), "https://agents.example.com");
        let defaults = settings(&[]).unwrap();
        assert_eq!(defaults.agent_app_url(), "http://127.0.0.1:8080");
        assert_eq!(
            defaults.accounts.invitation_ttl,
            Duration::from_secs(7 * 24 * 3600)
        );
        assert_eq!(
            defaults.accounts.password_reset_ttl,
            Duration::from_secs(3600)
        );
        assert_eq!(
            defaults.accounts.public_key_grace,
            Duration::from_secs(24 * 3600)
        );
        let error = settings(&[("AGENT_APP_URL", "app.example.com")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("AGENT_APP_URL"), "{error}");
    }

    #[test]
    fn database_follows_data_dir_unless_given() {
        let settings = settings(&[("DATA_DIR", "/var/lib/contacts")]).unwrap();
        assert_eq!(
            settings.database_url,
            "sqlite:///var/lib/contacts/contacts.db?mode=rwc"
        );
        let settings = settings_pg();
        assert_eq!(settings.database_url, "postgres://db/contacts");
    }

    fn settings_pg() -> Settings {
        settings(&[("DATABASE_URL", "postgres://db/contacts")]).unwrap()
    }

    #[test]
    fn playground_and_introspection_are_switches_on_by_default() {
        let defaults = settings(&[]).unwrap();
        assert!(defaults.playground && defaults.introspection);
        for (raw, expected) in [
            ("false", false),
            ("0", false),
            ("OFF", false),
            ("true", true),
            ("1", true),
            ("On", true),
        ] {
            let given = settings(&[("PLAYGROUND", raw), ("INTROSPECTION", raw)]).unwrap();
            assert_eq!(given.playground, expected, "PLAYGROUND={raw}");
            assert_eq!(given.introspection, expected, "INTROSPECTION={raw}");
        }
        for name in ["PLAYGROUND", "INTROSPECTION"] {
            let error = settings(&[(name, "yes please")]).unwrap_err().to_string();
            assert!(
                error.contains(name) && error.contains("yes please"),
                "{error}"
            );
        }
    }

    #[test]
    fn retention_has_defaults_and_zero_keeps_for_ever() {
        let defaults = settings(&[]).unwrap();
        assert_eq!(defaults.retention, RetentionSettings::default());
        assert_eq!(defaults.retention.export_files, Some(days(7)));
        assert!(defaults.bootstrap_owner);
        let given = settings(&[
            ("RETENTION_INTERVAL_MINUTES", "5"),
            ("TOKEN_RETENTION_DAYS", "0"),
            ("NOTIFICATION_RETENTION_DAYS", "30"),
            ("EXPORT_FILE_RETENTION_DAYS", "2"),
            ("MAIL_FILE_RETENTION_DAYS", "0"),
            ("BOOTSTRAP_OWNER", "false"),
        ])
        .unwrap();
        assert_eq!(given.retention.interval, Some(Duration::from_secs(300)));
        assert_eq!(given.retention.finished_tokens, None);
        assert_eq!(given.retention.notifications, Some(days(30)));
        assert_eq!(given.retention.export_files, Some(days(2)));
        assert_eq!(given.retention.mail_files, None);
        assert!(!given.bootstrap_owner);
        let error = settings(&[("EXPORT_FILE_RETENTION_DAYS", "a week")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("EXPORT_FILE_RETENTION_DAYS"), "{error}");
    }

    #[test]
    fn bad_values_are_refused_with_the_variable_name() {
        let error = settings(&[("LOG_FORMAT", "xml")]).unwrap_err().to_string();
        assert!(error.contains("LOG_FORMAT"), "{error}");
        let error = settings(&[("MAX_BODY_BYTES", "lots")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("MAX_BODY_BYTES"), "{error}");
        let error = settings(&[(
            "AGENT_APP_ORIGINS",
            "https://app.example.com,app.example.com",
        )])
        .unwrap_err()
        .to_string();
        assert!(error.contains("AGENT_APP_ORIGINS"), "{error}");
        let error = settings(&[("LISTEN_ADDR", "nowhere")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("LISTEN_ADDR"), "{error}");
    }
}
