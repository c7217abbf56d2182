//! `spawn_app()`: the real server on a random port over a fresh database.

use std::sync::atomic::{AtomicUsize, Ordering};

use contacts::config::Settings;
use contacts::domain::agents;
use std::sync::Arc;

use contacts::startup::{Adapters, App};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tempfile::TempDir;

pub const PASSWORD: &str = "correct horse battery";

/// A database that exists for one test and is dropped after it.
enum TestDatabase {
    Sqlite,
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    async fn create(data_dir: &std::path::Path) -> (TestDatabase, String) {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(admin_url) if !admin_url.is_empty() => {
                let name = format!("contacts_test_{}", uuid::Uuid::now_v7().simple());
                let admin = Database::connect(&admin_url)
                    .await
                    .expect("TEST_DATABASE_URL must reach a PostgreSQL server");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create the test database");
                let url = with_database_name(&admin_url, &name);
                (TestDatabase::Postgres { admin_url, name }, url)
            }
            _ => (
                TestDatabase::Sqlite,
                contacts::config::sqlite_url_in(data_dir),
            ),
        }
    }
}

fn with_database_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    format!("{host_part}/{name}{query}")
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let TestDatabase::Postgres { admin_url, name } = self {
            let admin_url = admin_url.clone();
            let name = name.clone();
            // Drop runs outside async code; a small runtime of its own does the work.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async {
                    if let Ok(admin) = Database::connect(&admin_url).await {
                        let _ = admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub app_services: contacts::services::Services,
    pub owner_login: Option<contacts::bootstrap::OwnerLogin>,
    /// The settings the app runs with, for a second instance or a restart.
    pub settings: Settings,
    /// Shared with other instances on the same database; dropped with the last.
    _database: Arc<TestDatabase>,
    _data_dir: Arc<TempDir>,
    /// Folders of fixtures the app reads, removed with the app.
    pub fixture_dirs: Vec<TempDir>,
    /// The visitor credentials the server issued, by the test's name for
    /// each browser, with the project key they were issued for.
    visitors: std::sync::Mutex<std::collections::HashMap<String, (String, String)>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    stopped: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// An agent with a live token.
pub struct TestAgent {
    pub id: String,
    pub email: String,
    pub token: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

static AGENT_COUNTER: AtomicUsize = AtomicUsize::new(0);

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_full(configure, Adapters::default()).await
}

/// Settings for a test app on a fresh database in a fresh data folder.
async fn fresh_settings() -> (Settings, TestDatabase, TempDir) {
    let data_dir = TempDir::new().expect("temp dir");
    let (database, database_url) = TestDatabase::create(data_dir.path()).await;
    let mut settings = Settings::from_lookup(|_| None).expect("default settings");
    settings.listen_addr = "127.0.0.1:0".parse().expect("address");
    settings.data_dir = data_dir.path().to_path_buf();
    settings.database_url = database_url;
    settings.bootstrap_owner = false;
    // Tests that age rows on purpose opt in (tests/api/retention.rs); a pass
    // at start would race the others' fixtures.
    settings.retention.interval = None;
    settings.exports.poll_interval = std::time::Duration::from_millis(100);
    settings.exports.retry_base = std::time::Duration::from_millis(100);
    (settings, database, data_dir)
}

/// Settings for an app on a fresh database that nothing has started on
/// yet; the database and data folder live as long as this.
pub struct UnstartedApp {
    pub settings: Settings,
    _database: TestDatabase,
    _data_dir: TempDir,
}

pub async fn unstarted_app() -> UnstartedApp {
    let (settings, database, data_dir) = fresh_settings().await;
    UnstartedApp {
        settings,
        _database: database,
        _data_dir: data_dir,
    }
}

pub async fn spawn_app_full(configure: impl FnOnce(&mut Settings), adapters: Adapters) -> TestApp {
    let (mut settings, database, data_dir) = fresh_settings().await;
    configure(&mut settings);
    start(settings, adapters, Arc::new(database), Arc::new(data_dir)).await
}

async fn start(
    settings: Settings,
    adapters: Adapters,
    database: Arc<TestDatabase>,
    data_dir: Arc<TempDir>,
) -> TestApp {
    let app = App::build_with(settings.clone(), adapters)
        .await
        .expect("the app builds");
    let address = format!("http://{}", app.local_addr());
    let app_services = app.services().clone();
    let owner_login = app.owner_login().cloned();
    let (stop, stop_signal) = tokio::sync::oneshot::channel::<()>();
    let stopped = tokio::spawn(app.run_until(async move {
        let _ = stop_signal.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::new(),
        app_services,
        owner_login,
        settings,
        _database: database,
        _data_dir: data_dir,
        fixture_dirs: Vec::new(),
        visitors: Default::default(),
        stop: Some(stop),
        stopped: Some(stopped),
    }
}

impl TestApp {
    /// Another server instance on the same database and data folder.
    pub async fn another_instance(&self, adapters: Adapters) -> TestApp {
        self.another_instance_with(|_| {}, adapters).await
    }

    pub async fn another_instance_with(
        &self,
        configure: impl FnOnce(&mut Settings),
        adapters: Adapters,
    ) -> TestApp {
        let mut settings = self.settings.clone();
        configure(&mut settings);
        start(
            settings,
            adapters,
            self._database.clone(),
            self._data_dir.clone(),
        )
        .await
    }

    /// Stops the server as SIGTERM would, and waits until it has stopped.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(stopped) = self.stopped.take() {
            stopped.await.expect("server task").expect("clean stop");
        }
    }
}

/// A server in a runtime of its own, which `kill` drops at once: nothing
/// runs after it, no lease is released, as when the process dies.
pub struct KillableApp {
    pub address: String,
    runtime: Option<tokio::runtime::Runtime>,
}

impl KillableApp {
    /// `adapters` is called inside the server's runtime, where its clients live.
    pub fn spawn(
        settings: Settings,
        adapters: impl FnOnce() -> Adapters + Send + 'static,
    ) -> KillableApp {
        // A runtime cannot be blocked on from inside the test's runtime.
        let (runtime, address) = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            let address = runtime.block_on(async {
                let app = App::build_with(settings, adapters())
                    .await
                    .expect("the app builds");
                let address = format!("http://{}", app.local_addr());
                tokio::spawn(app.run_until(std::future::pending()));
                address
            });
            (runtime, address)
        })
        .join()
        .expect("server thread");
        KillableApp {
            address,
            runtime: Some(runtime),
        }
    }

    pub fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for KillableApp {
    fn drop(&mut self) {
        self.kill();
    }
}

impl TestApp {
    pub fn ws_url(&self) -> String {
        format!("{}/graphql", self.address.replacen("http://", "ws://", 1))
    }

    /// Runs one GraphQL operation and returns the whole response body.
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.graphql_with_headers(token, &[], query, variables)
            .await
    }

    pub async fn graphql_with_headers(
        &self,
        token: Option<&str>,
        headers: &[(&str, &str)],
        query: &str,
        variables: Value,
    ) -> Value {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request sent");
        response.json().await.expect("a JSON body")
    }

    /// Starts a chat as the browser the test calls `browser`, the way a
    /// widget does: the first time without an id, later with the
    /// `visitorId` the server issued. `query` takes the input as `$i` and
    /// must select `startChat { visitorId }`; `input` names the project.
    pub async fn start_chat_as(
        &self,
        browser: &str,
        headers: &[(&str, &str)],
        query: &str,
        mut input: Value,
    ) -> Value {
        let project_key = input["projectKey"].as_str().unwrap_or_default().to_owned();
        if let Some(credential) = self.visitor_credential(browser) {
            input["visitorId"] = json!(credential);
        }
        let body = self
            .graphql_with_headers(None, headers, query, json!({ "i": input }))
            .await;
        if let Some(issued) = body["data"]["startChat"]["visitorId"].as_str() {
            self.visitors
                .lock()
                .expect("visitor book")
                .insert(browser.to_owned(), (issued.to_owned(), project_key));
        }
        body
    }

    /// The credential the server issued to the browser `browser`.
    pub fn visitor_credential(&self, browser: &str) -> Option<String> {
        self.visitors
            .lock()
            .expect("visitor book")
            .get(browser)
            .map(|(credential, _)| credential.clone())
    }

    /// The contact the browser `browser` belongs to now.
    pub async fn contact_of_browser(&self, browser: &str) -> entity::contact::Model {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let (credential, project_key) = self
            .visitors
            .lock()
            .expect("visitor book")
            .get(browser)
            .cloned()
            .unwrap_or_else(|| panic!("no chat started as {browser}"));
        let db = &self.app_services.db;
        let project = entity::project::Entity::find()
            .filter(entity::project::Column::PublicKey.eq(project_key))
            .one(db)
            .await
            .unwrap()
            .expect("the project");
        let visitor =
            entity::visitor::Entity::find()
                .filter(entity::visitor::Column::KeyHash.eq(
                    contacts::domain::visitors::browser_key(project.id, &credential),
                ))
                .one(db)
                .await
                .unwrap()
                .expect("the browser's visitor");
        entity::contact::Entity::find_by_id(visitor.contact_id)
            .one(db)
            .await
            .unwrap()
            .expect("the browser's contact")
    }

    /// Creates an agent directly and logs it in over HTTP.
    pub async fn agent(&self, label: &str) -> TestAgent {
        let n = AGENT_COUNTER.fetch_add(1, Ordering::Relaxed);
        let email = format!("{label}{n}@example.com");
        let agent = agents::create_agent(&self.app_services.db, &email, label, PASSWORD)
            .await
            .expect("agent created");
        let token = self.login(&email, PASSWORD).await;
        TestAgent {
            id: agent.id.to_string(),
            email,
            token,
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let body = self
            .graphql(
                None,
                "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
                json!({"e": email, "p": password}),
            )
            .await;
        body["data"]["login"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("login failed: {body}"))
            .to_owned()
    }

    /// A project owned (as ADMIN) by `owner`; returns its id.
    pub async fn project(&self, owner: &TestAgent, name: &str) -> String {
        let body = self
            .graphql(
                Some(&owner.token),
                "mutation($n: String!) { createProject(name: $n) { id } }",
                json!({"n": name}),
            )
            .await;
        body["data"]["createProject"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("createProject failed: {body}"))
            .to_owned()
    }

    /// Makes `member` a member the way the API does: the admin invites
    /// its email, and the agent accepts the invitation it sees.
    pub async fn add_member(
        &self,
        admin: &TestAgent,
        project_id: &str,
        member: &TestAgent,
        role: &str,
    ) {
        let invited = self
            .graphql(
                Some(&admin.token),
                "mutation($p: ID!, $e: String!, $r: Role!) { addMember(projectId: $p, email: $e, role: $r) { id } }",
                json!({"p": project_id, "e": member.email, "r": role}),
            )
            .await;
        let invitation = invited["data"]["addMember"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("addMember failed: {invited}"));
        let accepted = self
            .graphql(
                Some(&member.token),
                "mutation($i: ID!) { acceptInvitation(id: $i) { kind } }",
                json!({"i": invitation}),
            )
            .await;
        assert_eq!(
            accepted["data"]["acceptInvitation"]["kind"], "ADDED",
            "{accepted}"
        );
    }

    /// The `.eml` files the embedded mailer wrote, oldest first, as text.
    pub fn mail_files(&self) -> Vec<String> {
        let dir = self.settings.data_dir.join("mail");
        let mut paths: Vec<_> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
                .collect(),
            Err(_) => Vec::new(),
        };
        paths.sort();
        paths
            .iter()
            .map(|path| std::fs::read_to_string(path).expect("a mail file"))
            .collect()
    }
}

/// A project's public widget key, read as its admin.
pub async fn public_key(app: &TestApp, admin: &TestAgent, project_id: &str) -> String {
    let body = app
        .graphql(
            Some(&admin.token),
            "query($id: ID!) { project(id: $id) { publicKey } }",
            json!({"id": project_id}),
        )
        .await;
    body["data"]["project"]["publicKey"]
        .as_str()
        .expect("a key")
        .to_owned()
}

/// The `extensions.code` of the first error, or a panic naming the body.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error with a code: {body}"))
}
