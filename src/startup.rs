//! Building the application from settings, and running it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::bootstrap::{self, OwnerLogin};
use crate::config::{GeoSettings, Settings};
use crate::db;
use crate::geo::{GeoLocator, MaxMindGeo, NoGeo};
use crate::graphql::build_schema;
use crate::http::{HttpState, router};
use crate::pubsub::InProcessBus;
use crate::services::Services;

pub struct App {
    listener: TcpListener,
    router: axum::Router,
    services: Services,
    owner_login: Option<OwnerLogin>,
}

impl App {
    /// Connects and migrates the database, wires the services and binds the
    /// listener (port 0 picks a free port, as tests do).
    pub async fn build(settings: Settings) -> anyhow::Result<App> {
        let db = db::connect(&settings.database_url).await?;
        db::migrate(&db).await?;
        let owner_login = if settings.bootstrap_owner {
            bootstrap::ensure_owner(&db)
                .await
                .map_err(|error| anyhow::anyhow!("cannot create the first owner: {error:?}"))?
        } else {
            None
        };
        let services = Services {
            db,
            bus: Arc::new(InProcessBus::default()),
            settings: Arc::new(settings.clone()),
            geo: open_geo(&settings.geo)?,
        };
        let schema = build_schema(services.clone(), &settings.limits);
        let router = router(HttpState {
            schema,
            services: services.clone(),
            max_body_bytes: settings.limits.max_body_bytes,
        });
        let listener = TcpListener::bind(settings.listen_addr)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen_addr))?;
        Ok(App {
            listener,
            router,
            services,
            owner_login,
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

    /// Serves until `shutdown` completes, then finishes requests in flight.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .context("the HTTP server stopped with an error")
    }
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
