//! Browser origins allowed to call the API: the widget origins each project
//! lists, and the agents' app origins of the deployment, cached for the
//! per-request checks.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::Utc;
use entity::{project, project_allowed_origin};
use futures_util::StreamExt;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::access::{ProjectAccess, Role};
use crate::domain::events::{Event, ProjectOriginsChanged};
use crate::error::{AppError, AppResult};
use crate::pubsub::EventBus;

/// Origins a project may list.
pub const MAX_ORIGINS_PER_PROJECT: usize = 50;
const MAX_ORIGIN_LEN: usize = 255;
const ORIGIN_SHAPE: &str = "must be an origin like https://www.example.com: http or https, a host and an optional port, no path";

/// The `Origin` of a cross-origin browser request, as request data: `None`
/// for calls without an `Origin` header (servers, scripts) and for pages
/// served by this server itself.
#[derive(Clone, Debug, Default)]
pub struct BrowserOrigin(pub Option<String>);

/// One origin, `scheme://host[:port]`, in the form browsers send it:
/// lower-case, the default port left out, IDN hosts in punycode.
pub fn parse_origin(raw: &str) -> Result<String, &'static str> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > MAX_ORIGIN_LEN {
        return Err(ORIGIN_SHAPE);
    }
    let Some((scheme, rest)) = raw.split_once("://") else {
        return Err(ORIGIN_SHAPE);
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(ORIGIN_SHAPE);
    }
    // A path, query, fragment, credentials or wildcard make it a URL or a
    // pattern, not an origin; one trailing slash is forgiven.
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let forbidden = |c: char| c.is_whitespace() || c.is_control() || "/?#@\\*%".contains(c);
    if authority.is_empty() || authority.contains(forbidden) {
        return Err(ORIGIN_SHAPE);
    }
    let url = url::Url::parse(raw).map_err(|_| ORIGIN_SHAPE)?;
    match url.host() {
        Some(url::Host::Domain(domain)) if !domain.is_empty() && !domain.starts_with('.') => {}
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {}
        _ => return Err(ORIGIN_SHAPE),
    }
    let origin = url.origin();
    if !origin.is_tuple() {
        return Err(ORIGIN_SHAPE);
    }
    Ok(origin.ascii_serialization())
}

/// A project's list as an admin gives it: each one parsed, duplicates
/// dropped, sorted.
pub fn parse_origins(raw: &[String]) -> AppResult<Vec<String>> {
    if raw.len() > MAX_ORIGINS_PER_PROJECT {
        return Err(AppError::bad_input(
            "origins",
            format!("at most {MAX_ORIGINS_PER_PROJECT} origins"),
        ));
    }
    let mut origins = raw
        .iter()
        .enumerate()
        .map(|(index, origin)| {
            parse_origin(origin).map_err(|message| {
                AppError::bad_input(format!("origins[{index}]"), message.to_owned())
            })
        })
        .collect::<AppResult<Vec<_>>>()?;
    origins.sort();
    origins.dedup();
    Ok(origins)
}

/// The origins each project of the accesses lists, sorted, by project, in one
/// statement.
pub async fn allowed_origins_of_many(
    db: &impl ConnectionTrait,
    accesses: &[ProjectAccess],
) -> AppResult<HashMap<Uuid, Vec<String>>> {
    let mut by_project: HashMap<Uuid, Vec<String>> = accesses
        .iter()
        .map(|access| (access.project_id(), Vec::new()))
        .collect();
    let rows = project_allowed_origin::Entity::find()
        .filter(
            project_allowed_origin::Column::ProjectId
                .is_in(accesses.iter().map(ProjectAccess::project_id)),
        )
        .order_by_asc(project_allowed_origin::Column::Origin)
        .all(db)
        .await?;
    for row in rows {
        by_project
            .entry(row.project_id)
            .or_default()
            .push(row.origin);
    }
    Ok(by_project)
}

/// Replaces a project's list. Admins only; all or nothing.
pub async fn set_allowed_origins(
    db: &DatabaseConnection,
    access: &ProjectAccess,
    raw: &[String],
) -> AppResult<Vec<String>> {
    if access.role() != Role::Admin {
        return Err(AppError::Forbidden("only project admins may do this"));
    }
    let origins = parse_origins(raw)?;
    let project_id = access.project_id();
    let now = Utc::now();
    let txn = db.begin().await?;
    project_allowed_origin::Entity::delete_many()
        .filter(project_allowed_origin::Column::ProjectId.eq(project_id))
        .exec(&txn)
        .await?;
    if !origins.is_empty() {
        project_allowed_origin::Entity::insert_many(origins.iter().map(|origin| {
            project_allowed_origin::ActiveModel {
                project_id: Set(project_id),
                origin: Set(origin.clone()),
                created_at: Set(now),
            }
        }))
        .exec(&txn)
        .await?;
    }
    txn.commit().await?;
    Ok(origins)
}

/// What the cache holds: every listed origin, by project and by key.
#[derive(Default)]
struct Snapshot {
    /// The reload that read it: a reload that started earlier and ends
    /// later read older rows, and must not replace it.
    reload: u64,
    listed_anywhere: HashSet<String>,
    by_project: HashMap<Uuid, HashSet<String>>,
    project_by_key: HashMap<String, Uuid>,
}

/// The allowed origins, cached in memory: the HTTP layer asks on every
/// request, so the answer must not cost a query. Reloaded when a project's
/// list changes (on this instance at once, on others through the event
/// bus) and every `refresh` interval besides.
pub struct OriginPolicy {
    agent_app: HashSet<String>,
    snapshot: ArcSwap<Snapshot>,
    reloads_started: AtomicU64,
    /// Makes comparing and replacing the snapshot one step.
    replacing: Mutex<()>,
}

impl OriginPolicy {
    pub fn new(agent_app_origins: &[String]) -> OriginPolicy {
        OriginPolicy {
            agent_app: agent_app_origins.iter().cloned().collect(),
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            reloads_started: AtomicU64::new(0),
            replacing: Mutex::new(()),
        }
    }

    /// Whether a browser page at `origin` may call the API at all: the
    /// agents' app, or a widget origin that some project lists. Which
    /// project a widget call is for is checked later, by the operation.
    pub fn allows_browser(&self, origin: &str) -> bool {
        self.agent_app.contains(origin) || self.snapshot.load().listed_anywhere.contains(origin)
    }

    /// A widget call naming the project by its public key.
    pub fn check_widget_key(&self, project_key: &str, origin: &BrowserOrigin) -> AppResult<()> {
        let Some(origin) = &origin.0 else {
            return Ok(());
        };
        let snapshot = self.snapshot.load();
        let allowed = snapshot
            .project_by_key
            .get(project_key.trim())
            .and_then(|project_id| snapshot.by_project.get(project_id))
            .is_some_and(|origins| origins.contains(origin));
        refuse_unless(allowed)
    }

    /// A widget call for a project known from the visitor token.
    pub fn check_widget_project(&self, project_id: Uuid, origin: &BrowserOrigin) -> AppResult<()> {
        let Some(origin) = &origin.0 else {
            return Ok(());
        };
        let allowed = self
            .snapshot
            .load()
            .by_project
            .get(&project_id)
            .is_some_and(|origins| origins.contains(origin));
        refuse_unless(allowed)
    }

    /// Reads every listed origin again.
    pub async fn reload(&self, db: &impl ConnectionTrait) -> AppResult<()> {
        let reload = self.reloads_started.fetch_add(1, Ordering::SeqCst) + 1;
        let rows = project_allowed_origin::Entity::find().all(db).await?;
        let mut by_project: HashMap<Uuid, HashSet<String>> = HashMap::new();
        for row in rows {
            by_project
                .entry(row.project_id)
                .or_default()
                .insert(row.origin);
        }
        // A rotated-out key stays mapped: `startChat` decides whether its
        // grace still lasts.
        let keys: Vec<(Uuid, String, Option<String>)> = project::Entity::find()
            .select_only()
            .column(project::Column::Id)
            .column(project::Column::PublicKey)
            .column(project::Column::PreviousPublicKey)
            .filter(project::Column::Id.is_in(by_project.keys().copied()))
            .into_tuple()
            .all(db)
            .await?;
        let snapshot = Snapshot {
            reload,
            listed_anywhere: by_project.values().flatten().cloned().collect(),
            project_by_key: keys
                .into_iter()
                .flat_map(|(id, key, previous)| {
                    std::iter::once(key)
                        .chain(previous)
                        .map(move |key| (key, id))
                })
                .collect(),
            by_project,
        };
        let _replacing = self
            .replacing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.snapshot.load().reload < reload {
            self.snapshot.store(Arc::new(snapshot));
        }
        Ok(())
    }

    /// Replaces a project's list, reloads this cache and tells the other
    /// instances to reload theirs.
    pub async fn set_for_project(
        &self,
        db: &DatabaseConnection,
        bus: &dyn EventBus,
        access: &ProjectAccess,
        raw: &[String],
    ) -> AppResult<Vec<String>> {
        let origins = set_allowed_origins(db, access, raw).await?;
        self.reload(db).await?;
        bus.publish(Event::ProjectOriginsChanged(ProjectOriginsChanged {
            project_id: access.project_id(),
        }));
        Ok(origins)
    }

    /// A project's keys changed: the cache maps keys to projects, so it is
    /// reloaded here and on the other instances.
    pub async fn keys_changed(
        &self,
        db: &DatabaseConnection,
        bus: &dyn EventBus,
        project_id: Uuid,
    ) -> AppResult<()> {
        self.reload(db).await?;
        bus.publish(Event::ProjectOriginsChanged(ProjectOriginsChanged {
            project_id,
        }));
        Ok(())
    }

    /// Keeps the cache fresh until `stop`: a reload on every change event
    /// and every `every`.
    pub fn spawn_refresher(
        self: Arc<Self>,
        db: DatabaseConnection,
        bus: Arc<dyn EventBus>,
        every: Duration,
        stop: CancellationToken,
    ) {
        let mut events = bus.subscribe();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {}
                    event = events.next() => match event {
                        Some(Event::ProjectOriginsChanged(_) | Event::EventsMissed) => {}
                        Some(_) => continue,
                        None => break,
                    },
                }
                if let Err(error) = self.reload(&db).await {
                    tracing::warn!(
                        ?error,
                        "cannot reload the allowed origins; keeping the last list"
                    );
                }
            }
        });
    }
}

fn refuse_unless(allowed: bool) -> AppResult<()> {
    if allowed {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "this origin is not among the project's allowed widget origins",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_as_browsers_send_them() {
        for (raw, expected) in [
            ("https://www.example.com", "https://www.example.com"),
            ("HTTPS://WWW.Example.COM/", "https://www.example.com"),
            ("https://example.com:443", "https://example.com"),
            ("http://example.com:80", "http://example.com"),
            ("http://localhost:3000", "http://localhost:3000"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://[::1]:8080", "http://[::1]:8080"),
            ("https://bücher.example", "https://xn--bcher-kva.example"),
            ("  https://example.com  ", "https://example.com"),
        ] {
            assert_eq!(parse_origin(raw).as_deref(), Ok(expected), "{raw}");
        }
    }

    #[test]
    fn urls_patterns_and_other_schemes_are_not_origins() {
        for raw in [
            "",
            "example.com",
            "//example.com",
            "https://",
            "https:///",
            "https://example.com/path",
            "https://example.com/?q=1",
            "https://example.com#top",
            "https://user:pass@example.com",
            "https://*.example.com",
            "ftp://example.com",
            "javascript://example.com",
            "file:///etc/passwd",
            "null",
            "https://exa mple.com",
            "https://exa\nmple.com",
            "https://exa\u{0}mple.com",
            "https://example.com:99999",
            "https://example.com:port",
            "https://%65xample.com",
            "https://example.com//",
        ] {
            assert!(parse_origin(raw).is_err(), "{raw:?} was accepted");
        }
        assert!(parse_origin(&format!("https://{}.com", "a".repeat(300))).is_err());
    }

    #[test]
    fn a_list_is_deduplicated_and_bounded() {
        let list = parse_origins(&[
            "https://b.example".into(),
            "https://a.example".into(),
            "HTTPS://A.example/".into(),
        ])
        .unwrap();
        assert_eq!(list, ["https://a.example", "https://b.example"]);
        let error = parse_origins(&["https://ok.example".into(), "nope".into()]).unwrap_err();
        assert_eq!(error.code(), "BAD_USER_INPUT");
        assert!(error.public_message().starts_with("origins[1]"));
        let many: Vec<String> = (0..=MAX_ORIGINS_PER_PROJECT)
            .map(|n| format!("https://s{n}.example"))
            .collect();
        assert!(parse_origins(&many).is_err());
    }

    #[test]
    fn calls_without_an_origin_pass_and_unlisted_origins_are_refused() {
        let policy = OriginPolicy::new(&["https://agents.example".into()]);
        let project = Uuid::now_v7();
        let mut snapshot = Snapshot::default();
        snapshot
            .by_project
            .insert(project, HashSet::from(["https://shop.example".to_owned()]));
        snapshot
            .listed_anywhere
            .insert("https://shop.example".into());
        snapshot.project_by_key.insert("pk_shop".into(), project);
        policy.snapshot.store(Arc::new(snapshot));

        assert!(policy.allows_browser("https://agents.example"));
        assert!(policy.allows_browser("https://shop.example"));
        assert!(!policy.allows_browser("https://evil.example"));

        let from = |origin: &str| BrowserOrigin(Some(origin.to_owned()));
        assert!(
            policy
                .check_widget_key("pk_shop", &BrowserOrigin(None))
                .is_ok()
        );
        assert!(
            policy
                .check_widget_key("pk_shop", &from("https://shop.example"))
                .is_ok()
        );
        assert!(
            policy
                .check_widget_key(" pk_shop ", &from("https://shop.example"))
                .is_ok()
        );
        for (key, origin) in [
            ("pk_shop", "https://evil.example"),
            ("pk_shop", "https://agents.example"),
            ("pk_other", "https://shop.example"),
        ] {
            let error = policy.check_widget_key(key, &from(origin)).unwrap_err();
            assert_eq!(error.code(), "FORBIDDEN", "{key} {origin}");
        }
        assert!(
            policy
                .check_widget_project(project, &from("https://shop.example"))
                .is_ok()
        );
        assert!(
            policy
                .check_widget_project(Uuid::now_v7(), &from("https://shop.example"))
                .is_err()
        );
    }
}
