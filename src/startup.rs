//! Building the application from settings, and running it.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::access_cache::{AccessCache, InvalidatingBus};
use crate::bootstrap::{self, OwnerLogin};
use crate::config::{GeoSettings, Settings};
use crate::db;
use crate::domain::export_links::ExportLinks;
use crate::domain::ids::random_secret;
use crate::geo::{GeoLocator, MaxMindGeo, NoGeo};
use crate::graphql::build_schema;
use crate::graphql::document_checks::DocumentChecks;
use crate::http::{HttpState, Pipeline, metrics_router, router};
use crate::jobs::export_run::ExportRunner;
use crate::jobs::temp_files;
use crate::jobs::worker::WorkerPool;
use crate::mail::{FileMailer, Mailer, SmtpMailer};
use crate::metrics::Metrics;
use crate::protection::origins::OriginPolicy;
use crate::protection::rate_limit::RateLimiter;
use crate::public_url::link_base;
use crate::pubsub::{EventBus, InProcessBus, PgNotifyBus};
use crate::read_connections::{READ_CONNECTIONS, ReadConnections};
use crate::retention::{self, Retention};
use crate::services::Services;
use crate::storage::{ExportStore, LocalStore, S3Store};

pub struct App {
    listener: TcpListener,
    /// `METRICS_ADDR`'s listener, when `/metrics` is served apart.
    metrics_listener: Option<(TcpListener, axum::Router)>,
    metrics: Arc<Metrics>,
    router: axum::Router,
    services: Services,
    owner_login: Option<OwnerLogin>,
    export_runner: Arc<ExportRunner>,
    /// Cancelled when shutdown begins: websockets close, caches stop refreshing.
    shutdown: CancellationToken,
}

/// Adapters built elsewhere, replacing the ones the settings would build
/// (tests hand in a store and a mailer with explicit credentials).
#[derive(Default)]
pub struct Adapters {
    pub store: Option<Arc<dyn ExportStore>>,
    pub mailer: Option<Arc<dyn Mailer>>,
}

impl App {
    /// Connects and migrates the database, wires the services and binds the
    /// listener (port 0 picks a free port, as tests do).
    pub async fn build(settings: Settings) -> anyhow::Result<App> {
        App::build_with(settings, Adapters::default()).await
    }

    pub async fn build_with(mut settings: Settings, adapters: Adapters) -> anyhow::Result<App> {
        let listener = TcpListener::bind(settings.listen_addr)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen_addr))?;
        let bound = listener
            .local_addr()
            .context("the listener has no address")?;
        let links = link_base(settings.public_url.as_deref(), bound);
        links.warn_if_guessed(bound);
        settings.public_url = Some(links.url);
        let db =
            db::connect_with(&settings.database_url, settings.database_acquire_timeout).await?;
        db::migrate(&db).await?;
        let owner_login = if settings.bootstrap_owner {
            bootstrap::ensure_owner(&db)
                .await
                .map_err(|error| anyhow::anyhow!("cannot create the first owner: {error:?}"))?
        } else {
            if crate::domain::agents::count(&db).await.unwrap_or(1) == 0 {
                tracing::warn!(
                    "BOOTSTRAP_OWNER is off and no agent exists: create one with `contacts create-agent`"
                );
            }
            None
        };
        let access_cache = Arc::new(AccessCache::new(settings.access_cache));
        let bus: Arc<dyn EventBus> = Arc::new(InvalidatingBus::new(
            open_bus(&db).await?,
            access_cache.clone(),
        ));
        let exporting = ExportAdapters::open(&settings, adapters).await?;
        let origins = Arc::new(OriginPolicy::new(&settings.agent_app_origins));
        origins
            .reload(&db)
            .await
            .map_err(|error| anyhow::anyhow!("cannot load the allowed origins: {error:?}"))?;
        let export_links = Arc::new(
            ExportLinks::load(&db, &public_url_of(&settings))
                .await
                .map_err(|error| anyhow::anyhow!("cannot load the link key: {error:?}"))?,
        );
        let services = Services {
            reads: ReadConnections::new(
                db.clone(),
                READ_CONNECTIONS,
                settings.database_acquire_timeout,
            ),
            db,
            bus,
            access_cache,
            settings: Arc::new(settings.clone()),
            geo: open_geo(&settings.geo)?,
            store: exporting.store.clone(),
            local_store: exporting.local_store.clone(),
            rate_limiter: Arc::new(RateLimiter::open(settings.rate_limits.clone())?),
            origins,
            mailer: exporting.mailer.clone(),
            export_links: export_links.clone(),
        };
        let export_runner = Arc::new(exporting.runner_with(
            &settings,
            &services.db,
            &services.bus,
            export_links,
        )?);
        let schema = build_schema(services.clone(), &settings.limits);
        let shutdown = CancellationToken::new();
        let metrics = Arc::new(Metrics::new());
        let state = HttpState {
            schema,
            services: services.clone(),
            max_body_bytes: settings.limits.max_body_bytes,
            persisted_queries: Default::default(),
            shutdown: shutdown.clone(),
            metrics: metrics.clone(),
            pipeline: Arc::new(Pipeline::new(DocumentChecks::new(&settings.limits))),
        };
        let metrics_listener = match settings.metrics_addr {
            None => None,
            Some(address) => Some((
                TcpListener::bind(address)
                    .await
                    .with_context(|| format!("cannot listen on METRICS_ADDR {address}"))?,
                metrics_router(state.clone()),
            )),
        };
        let router = router(state);
        Ok(App {
            listener,
            metrics_listener,
            metrics,
            router,
            services,
            owner_login,
            export_runner,
            shutdown,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The owner login created by this start, if the database was empty.
    pub fn owner_login(&self) -> Option<&OwnerLogin> {
        self.owner_login.as_ref()
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Serves until `shutdown` completes. Then it stops accepting
    /// connections, closes websockets with "going away", lets requests in
    /// flight finish (for `SHUTDOWN_GRACE_SECS` at most) and gives running
    /// exports back to the queue.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let instance = format!("{}-{}", std::process::id(), &random_secret("w")[2..10]);
        // Files of attempts that died with an earlier process go first.
        temp_files::spawn_sweeper(
            self.export_runner.tmp_dir.clone(),
            self.export_runner.settings.lease,
            self.shutdown.clone(),
        );
        let workers = WorkerPool::spawn(self.export_runner.clone(), &instance);
        let services = &self.services;
        services
            .rate_limiter
            .clone()
            .spawn_housekeeping(self.shutdown.clone());
        services
            .access_cache
            .clone()
            .spawn_invalidator(services.bus.as_ref(), self.shutdown.clone());
        services.origins.clone().spawn_refresher(
            services.db.clone(),
            services.bus.clone(),
            services.settings.origins_refresh,
            self.shutdown.clone(),
        );
        self.metrics
            .clone()
            .spawn_pool_sampler(services.db.clone(), self.shutdown.clone());
        if let Some((listener, metrics_router)) = self.metrics_listener {
            if let Ok(address) = listener.local_addr() {
                tracing::info!(%address, "metrics served apart");
            }
            let stopped = self.shutdown.clone();
            tokio::spawn(async move {
                let served = axum::serve(listener, metrics_router)
                    .with_graceful_shutdown(async move { stopped.cancelled().await })
                    .await;
                if let Err(error) = served {
                    tracing::error!(%error, "the metrics listener stopped");
                }
            });
        }
        if let Some(interval) = services.settings.retention.interval {
            let retention = Arc::new(Retention {
                db: services.db.clone(),
                store: services.store.clone(),
                mail_dir: services.settings.data_dir.join("mail"),
                settings: services.settings.retention.clone(),
            });
            retention::schedule::spawn(retention, interval, self.shutdown.clone());
        }
        let stopping = self.shutdown.clone();
        let signal = async move {
            shutdown.await;
            stopping.cancel();
        };
        let server = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(signal)
        .into_future();
        let grace = services.settings.shutdown_grace;
        let grace_over = async {
            self.shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        let served = tokio::select! {
            served = server => served.context("the HTTP server stopped with an error"),
            _ = grace_over => {
                tracing::warn!(?grace, "requests still in flight after the grace period were dropped");
                Ok(())
            }
        };
        // Running exports go back to the queue for the next instance.
        workers.shutdown().await;
        served
    }
}

/// Where exports go and how their links are mailed, as configured.
pub struct ExportAdapters {
    pub store: Arc<dyn ExportStore>,
    pub local_store: Option<Arc<LocalStore>>,
    pub mailer: Arc<dyn Mailer>,
}

impl ExportAdapters {
    /// S3 when `S3_BUCKET` is set, else a folder under DATA_DIR; SMTP when
    /// `SMTP_URL` is set, else `.eml` files. `given` adapters win.
    pub async fn open(settings: &Settings, given: Adapters) -> anyhow::Result<ExportAdapters> {
        // The embedded store only when it is the one exports go to: a
        // given store, like S3, serves its own files.
        let local_store = match (&given.store, &settings.s3) {
            (None, None) => Some(Arc::new(open_local_store(settings)?)),
            _ => None,
        };
        let store: Arc<dyn ExportStore> = match (given.store, &settings.s3, &local_store) {
            (Some(store), _, _) => store,
            (None, Some(s3), _) => Arc::new(
                S3Store::from_env(s3.clone())
                    .await
                    .context("cannot configure S3")?,
            ),
            (None, None, Some(local)) => local.clone(),
            (None, None, None) => anyhow::bail!("no export store configured"),
        };
        let mailer: Arc<dyn Mailer> = match (given.mailer, &settings.smtp_url) {
            (Some(mailer), _) => mailer,
            (None, Some(url)) => Arc::new(
                SmtpMailer::from_url(url, &settings.mail_from).context("SMTP_URL is not usable")?,
            ),
            (None, None) => {
                tracing::warn!("SMTP_URL is not set: mail is written to DATA_DIR/mail");
                Arc::new(FileMailer::new(&settings.data_dir, &settings.mail_from)?)
            }
        };
        Ok(ExportAdapters {
            store,
            local_store,
            mailer,
        })
    }

    /// A runner whose mailed links are signed with the database's key.
    pub async fn runner(
        &self,
        settings: &Settings,
        db: &sea_orm::DatabaseConnection,
        bus: &Arc<dyn EventBus>,
    ) -> anyhow::Result<ExportRunner> {
        let links = ExportLinks::load(db, &public_url_of(settings))
            .await
            .map_err(|error| anyhow::anyhow!("cannot load the link key: {error:?}"))?;
        self.runner_with(settings, db, bus, Arc::new(links))
    }

    pub fn runner_with(
        &self,
        settings: &Settings,
        db: &sea_orm::DatabaseConnection,
        bus: &Arc<dyn EventBus>,
        links: Arc<ExportLinks>,
    ) -> anyhow::Result<ExportRunner> {
        let tmp_dir = settings.data_dir.join("tmp");
        std::fs::create_dir_all(&tmp_dir)
            .with_context(|| format!("cannot create {}", tmp_dir.display()))?;
        Ok(ExportRunner {
            db: db.clone(),
            store: self.store.clone(),
            mailer: self.mailer.clone(),
            bus: bus.clone(),
            settings: settings.exports.clone(),
            tmp_dir,
            links,
        })
    }
}

/// The base of links to this server: PUBLIC_URL, else the listen address.
fn public_url_of(settings: &Settings) -> String {
    settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", settings.listen_addr))
}

/// The embedded store: a folder under DATA_DIR whose files this server
/// hands out at signed links. The signing key is kept beside them so that
/// links survive a restart.
fn open_local_store(settings: &Settings) -> anyhow::Result<LocalStore> {
    // Without PUBLIC_URL, links point at the address this server listens on.
    let public_url = link_base(settings.public_url.as_deref(), settings.listen_addr).url;
    let key_path = settings.data_dir.join("link-signing.key");
    let secret = match std::fs::read_to_string(&key_path) {
        Ok(secret) if secret.trim().len() >= 32 => secret.trim().to_owned(),
        _ => {
            std::fs::create_dir_all(&settings.data_dir)?;
            let secret = random_secret("lk");
            std::fs::write(&key_path, &secret)
                .with_context(|| format!("cannot write {}", key_path.display()))?;
            secret
        }
    };
    Ok(LocalStore::new(
        &settings.data_dir,
        &public_url,
        secret.into_bytes(),
        settings.exports.link_ttl,
    )?)
}

/// Events shared through PostgreSQL LISTEN/NOTIFY when several instances can
/// share the database; in process otherwise.
async fn open_bus(db: &sea_orm::DatabaseConnection) -> anyhow::Result<Arc<dyn EventBus>> {
    Ok(match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => Arc::new(
            PgNotifyBus::connect(db.get_postgres_connection_pool())
                .await
                .context("cannot listen for events on PostgreSQL")?,
        ),
        _ => Arc::new(InProcessBus::default()),
    })
}

/// The configured GeoIP database, watched for replacement; without one,
/// contacts get no location.
fn open_geo(settings: &GeoSettings) -> anyhow::Result<Arc<dyn GeoLocator>> {
    let Some(path) = &settings.database else {
        tracing::warn!("GEOIP_DB is not set: contacts will have no location");
        return Ok(Arc::new(NoGeo));
    };
    let geo = Arc::new(
        MaxMindGeo::open(path, settings.languages.clone())
            .with_context(|| format!("cannot open the GeoIP database {}", path.display()))?,
    );
    geo.spawn_reload_watcher(settings.reload_interval);
    Ok(geo)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
