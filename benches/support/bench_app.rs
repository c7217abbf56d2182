//! The server a benchmark drives: started in process on a random port, on
//! SQLite in a temporary folder, or on a fresh PostgreSQL database when
//! `BENCH_DATABASE_URL` names a server (dropped again by `finish`), with a
//! GeoIP fixture, an owner and one project.

use contacts::config::Settings;
use contacts::domain::{agents, projects};
use contacts::startup::App;
use entity::project;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

use crate::geo_fixture;

pub struct BenchApp {
    pub url: String,
    pub db: DatabaseConnection,
    pub project: project::Model,
    /// Which database the figures come from, for the report.
    pub engine: &'static str,
    /// The PostgreSQL server and the database made for this run.
    postgres: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

pub struct Owner<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password: &'a str,
}

/// Starts the server; `configure` adjusts the settings (rate limits, poll
/// intervals) after the bench defaults are applied.
pub async fn start(
    database_prefix: &str,
    owner: Owner<'_>,
    configure: impl FnOnce(&mut Settings),
) -> BenchApp {
    let dir = tempfile::tempdir().expect("temporary folder");
    let geo_path = dir.path().join("city.mmdb");
    geo_fixture::write_city_fixture(&geo_path, geo_fixture::FixtureVariant::Initial);

    let admin_url = std::env::var("BENCH_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty());
    let database_name = format!("{database_prefix}_{}", uuid::Uuid::now_v7().simple());
    let database_url = match &admin_url {
        Some(admin_url) => {
            let admin = Database::connect(admin_url).await.expect("PostgreSQL");
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{database_name}\""))
                .await
                .expect("create the bench database");
            let base = admin_url
                .rsplit_once('/')
                .map_or(admin_url.as_str(), |(base, _)| base);
            format!("{base}/{database_name}")
        }
        None => contacts::config::sqlite_url_in(dir.path()),
    };

    let mut settings = Settings::from_lookup(|_| None).expect("settings");
    settings.listen_addr = "127.0.0.1:0".parse().expect("address");
    settings.data_dir = dir.path().to_path_buf();
    settings.database_url = database_url;
    settings.bootstrap_owner = false;
    settings.geo.database = Some(geo_path);
    settings.trusted_proxies = "127.0.0.1".parse().expect("proxy");
    configure(&mut settings);
    let app = App::build(settings).await.expect("app");
    let db = app.services().db.clone();
    let agent = agents::create_agent(&db, owner.email, owner.name, owner.password)
        .await
        .expect("agent");
    let project = projects::create_project(&db, agent.id, owner.name)
        .await
        .expect("project");
    let url = format!("http://{}/graphql", app.local_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    BenchApp {
        url,
        db,
        project,
        engine: if admin_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        postgres: admin_url.map(|url| (url, database_name)),
        _dir: dir,
    }
}

impl BenchApp {
    /// Drops the PostgreSQL database of the run, if there is one.
    pub async fn finish(self) {
        let BenchApp { db, postgres, .. } = self;
        drop(db);
        if let Some((admin_url, database_name)) = postgres {
            let admin = Database::connect(&admin_url).await.expect("PostgreSQL");
            let _ = admin
                .execute_unprepared(&format!(
                    "DROP DATABASE IF EXISTS \"{database_name}\" WITH (FORCE)"
                ))
                .await;
        }
    }
}
