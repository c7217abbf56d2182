//! Who a bearer token is and which role an agent holds in a project, kept
//! in memory for a moment so that a busy client costs no statement per
//! request for them.
//!
//! Exactness comes from events, not from the time limit: every change
//! published on this instance drops its entries before the publish returns
//! (the bus is wrapped by [`InvalidatingBus`]), changes on other instances
//! drop them when the event arrives, and a bus that missed events (a
//! reconnect, a lagging subscriber) drops everything. The time limit only
//! bounds what no event announces, such as a row changed by hand.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use entity::{access_token, agent};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::access::ProjectAccess;
use crate::domain::events::Event;
use crate::pubsub::EventBus;

/// Beyond this many entries a map starts afresh, so that many tokens or
/// projects cannot grow the process.
const MAX_ENTRIES: usize = 10_000;

struct Cached<T> {
    value: T,
    fetched: Instant,
}

/// Taken before reading what will be cached: a change applied while the
/// read was under way makes the read too old to keep.
#[derive(Clone, Copy)]
pub struct Ticket(u64);

pub struct AccessCache {
    keep_for: Duration,
    /// Counts the changes applied.
    changes: AtomicU64,
    /// Live sessions by the hash of their token.
    sessions: Mutex<HashMap<String, Cached<(agent::Model, access_token::Model)>>>,
    /// Memberships found, by (project, agent). A non-member is never
    /// cached, so that an agent who just joined is let in at once.
    memberships: Mutex<HashMap<(Uuid, Uuid), Cached<ProjectAccess>>>,
}

impl AccessCache {
    /// A cache whose entries live `keep_for` at most; zero turns it off.
    pub fn new(keep_for: Duration) -> AccessCache {
        AccessCache {
            keep_for,
            changes: AtomicU64::new(0),
            sessions: Mutex::default(),
            memberships: Mutex::default(),
        }
    }

    fn enabled(&self) -> bool {
        !self.keep_for.is_zero()
    }

    pub fn ticket(&self) -> Ticket {
        Ticket(self.changes.load(Ordering::SeqCst))
    }

    fn still_current(&self, ticket: Ticket) -> bool {
        self.enabled() && self.changes.load(Ordering::SeqCst) == ticket.0
    }

    /// The agent and session of a token hash, while fresh and unexpired.
    pub fn session(&self, token_hash: &str) -> Option<(agent::Model, access_token::Model)> {
        if !self.enabled() {
            return None;
        }
        let sessions = self.sessions.lock().ok()?;
        let cached = sessions.get(token_hash)?;
        let (agent, session) = &cached.value;
        let live = session.revoked_at.is_none() && session.expires_at > chrono::Utc::now();
        (live && cached.fetched.elapsed() < self.keep_for).then(|| (agent.clone(), session.clone()))
    }

    pub fn keep_session(
        &self,
        ticket: Ticket,
        token_hash: String,
        agent: agent::Model,
        session: access_token::Model,
    ) {
        // Checked under the lock that `apply` takes after counting.
        if let Ok(mut sessions) = self.sessions.lock()
            && self.still_current(ticket)
        {
            insert_bounded(&mut sessions, token_hash, (agent, session));
        }
    }

    /// The agent's access to the project, while fresh.
    pub fn membership(&self, project_id: Uuid, agent_id: Uuid) -> Option<ProjectAccess> {
        if !self.enabled() {
            return None;
        }
        let memberships = self.memberships.lock().ok()?;
        let cached = memberships.get(&(project_id, agent_id))?;
        (cached.fetched.elapsed() < self.keep_for).then(|| cached.value.clone())
    }

    pub fn keep_membership(&self, ticket: Ticket, access: &ProjectAccess) {
        if let Ok(mut memberships) = self.memberships.lock()
            && self.still_current(ticket)
        {
            let key = (access.project_id(), access.agent_id());
            insert_bounded(&mut memberships, key, access.clone());
        }
    }

    /// Drops whatever `event` makes stale.
    pub fn apply(&self, event: &Event) {
        if matches!(
            event,
            Event::SessionRevoked(_) | Event::MembershipChanged(_) | Event::EventsMissed
        ) {
            self.changes.fetch_add(1, Ordering::SeqCst);
        }
        match event {
            Event::SessionRevoked(revoked) => {
                if let Ok(mut sessions) = self.sessions.lock() {
                    sessions.retain(|_, cached| cached.value.1.id != revoked.token_id);
                }
            }
            Event::MembershipChanged(change) => {
                if let Ok(mut memberships) = self.memberships.lock() {
                    memberships.remove(&(change.project_id, change.agent_id));
                }
            }
            Event::EventsMissed => self.clear(),
            _ => {}
        }
    }

    pub fn clear(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.clear();
        }
        if let Ok(mut memberships) = self.memberships.lock() {
            memberships.clear();
        }
    }

    /// Applies the events of other instances until `stop`.
    pub fn spawn_invalidator(self: Arc<Self>, bus: &dyn EventBus, stop: CancellationToken) {
        let mut events = bus.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    event = events.next() => match event {
                        Some(event) => self.apply(&event),
                        None => {
                            // Without events nothing cached can be trusted.
                            self.clear();
                            break;
                        }
                    },
                }
            }
        });
    }
}

fn insert_bounded<K: Eq + std::hash::Hash, V>(map: &mut HashMap<K, Cached<V>>, key: K, value: V) {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(
        key,
        Cached {
            value,
            fetched: Instant::now(),
        },
    );
}

/// The bus as the rest of the server sees it: what this instance
/// publishes first drops the cache entries it makes stale.
pub struct InvalidatingBus {
    inner: Arc<dyn EventBus>,
    cache: Arc<AccessCache>,
}

impl InvalidatingBus {
    pub fn new(inner: Arc<dyn EventBus>, cache: Arc<AccessCache>) -> InvalidatingBus {
        InvalidatingBus { inner, cache }
    }
}

impl EventBus for InvalidatingBus {
    fn publish(&self, event: Event) {
        self.cache.apply(&event);
        self.inner.publish(event);
    }

    fn subscribe(&self) -> BoxStream<'static, Event> {
        self.inner.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::access::Role;
    use crate::domain::events::{
        MembershipChangeKind, MembershipChanged, ProjectOriginsChanged, SessionRevoked,
    };
    use chrono::Utc;
    use entity::membership;

    fn session(expires_in: chrono::Duration) -> (agent::Model, access_token::Model) {
        let agent = agent::Model {
            id: Uuid::now_v7(),
            email: "ana@example.com".into(),
            name: "Ana".into(),
            password_hash: String::new(),
            created_at: Utc::now(),
        };
        let session = access_token::Model {
            id: Uuid::now_v7(),
            agent_id: agent.id,
            token_hash: "hash".into(),
            created_at: Utc::now(),
            expires_at: Utc::now() + expires_in,
            revoked_at: None,
            last_used_at: None,
            user_agent: None,
            ip: None,
        };
        (agent, session)
    }

    fn access(role: Role) -> ProjectAccess {
        ProjectAccess::from(&membership::Model {
            project_id: Uuid::now_v7(),
            agent_id: Uuid::now_v7(),
            role,
            created_at: Utc::now(),
        })
    }

    fn cache() -> AccessCache {
        AccessCache::new(Duration::from_secs(60))
    }

    #[test]
    fn a_revocation_drops_its_session_and_no_other() {
        let cache = cache();
        let (agent, revoked) = session(chrono::Duration::hours(1));
        let (other_agent, kept) = session(chrono::Duration::hours(1));
        cache.keep_session(cache.ticket(), "a".into(), agent.clone(), revoked.clone());
        cache.keep_session(cache.ticket(), "b".into(), other_agent, kept);
        assert!(cache.session("a").is_some());
        cache.apply(&Event::SessionRevoked(SessionRevoked {
            agent_id: agent.id,
            token_id: revoked.id,
        }));
        assert!(cache.session("a").is_none());
        assert!(cache.session("b").is_some());
    }

    #[test]
    fn a_read_that_overlapped_a_change_is_not_kept() {
        let cache = cache();
        let (agent, session) = session(chrono::Duration::hours(1));
        let ticket = cache.ticket();
        cache.apply(&Event::SessionRevoked(SessionRevoked {
            agent_id: agent.id,
            token_id: session.id,
        }));
        cache.keep_session(ticket, "a".into(), agent, session);
        assert!(cache.session("a").is_none());
        let access = access(Role::Agent);
        let ticket = cache.ticket();
        cache.apply(&Event::EventsMissed);
        cache.keep_membership(ticket, &access);
        assert!(
            cache
                .membership(access.project_id(), access.agent_id())
                .is_none()
        );
    }

    #[test]
    fn an_expired_session_is_not_answered() {
        let cache = cache();
        let (agent, session) = session(chrono::Duration::seconds(-1));
        cache.keep_session(cache.ticket(), "a".into(), agent, session);
        assert!(cache.session("a").is_none());
    }

    #[test]
    fn entries_last_their_time_only_and_zero_turns_the_cache_off() {
        let short = AccessCache::new(Duration::from_millis(20));
        let access = access(Role::Admin);
        short.keep_membership(short.ticket(), &access);
        assert!(
            short
                .membership(access.project_id(), access.agent_id())
                .is_some()
        );
        std::thread::sleep(Duration::from_millis(30));
        assert!(
            short
                .membership(access.project_id(), access.agent_id())
                .is_none()
        );

        let off = AccessCache::new(Duration::ZERO);
        off.keep_membership(off.ticket(), &access);
        assert!(
            off.membership(access.project_id(), access.agent_id())
                .is_none()
        );
    }

    #[test]
    fn a_membership_change_drops_that_membership_and_missed_events_drop_all() {
        let cache = cache();
        let changed = access(Role::Admin);
        let kept = access(Role::Agent);
        cache.keep_membership(cache.ticket(), &changed);
        cache.keep_membership(cache.ticket(), &kept);
        cache.apply(&Event::ProjectOriginsChanged(ProjectOriginsChanged {
            project_id: changed.project_id(),
        }));
        assert!(
            cache
                .membership(changed.project_id(), changed.agent_id())
                .is_some()
        );
        cache.apply(&Event::MembershipChanged(MembershipChanged {
            project_id: changed.project_id(),
            agent_id: changed.agent_id(),
            role: None,
            kind: MembershipChangeKind::Removed,
        }));
        assert!(
            cache
                .membership(changed.project_id(), changed.agent_id())
                .is_none()
        );
        assert!(
            cache
                .membership(kept.project_id(), kept.agent_id())
                .is_some()
        );
        cache.apply(&Event::EventsMissed);
        assert!(
            cache
                .membership(kept.project_id(), kept.agent_id())
                .is_none()
        );
    }

    #[tokio::test]
    async fn what_this_instance_publishes_is_dropped_before_publish_returns() {
        let cache = Arc::new(cache());
        let bus = InvalidatingBus::new(
            Arc::new(crate::pubsub::InProcessBus::default()),
            cache.clone(),
        );
        let access = access(Role::Agent);
        cache.keep_membership(cache.ticket(), &access);
        bus.publish(Event::MembershipChanged(MembershipChanged {
            project_id: access.project_id(),
            agent_id: access.agent_id(),
            role: Some(crate::domain::events::RoleName::Admin),
            kind: MembershipChangeKind::RoleChanged,
        }));
        assert!(
            cache
                .membership(access.project_id(), access.agent_id())
                .is_none()
        );
    }
}
