//! Publish/subscribe of events for GraphQL subscriptions, behind one small
//! interface so that another transport can replace the in-process one.

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use crate::domain::events::{ContactChanges, Event, SessionRevoked};

mod postgres;
pub use postgres::PgNotifyBus;

pub trait EventBus: Send + Sync {
    /// Hands the event to every current subscriber; never blocks on slow ones.
    fn publish(&self, event: Event);
    /// Every event published from now on, and [`Event::EventsMissed`]
    /// where some may not have arrived.
    fn subscribe(&self) -> BoxStream<'static, Event>;

    /// Tells every connection holding one of these sessions that it ended.
    fn publish_sessions_revoked(&self, revoked: Vec<SessionRevoked>) {
        for session in revoked {
            self.publish(Event::SessionRevoked(session));
        }
    }

    /// Announces every contact change an operation made.
    fn publish_contact_changes(&self, changes: ContactChanges) {
        for change in changes {
            self.publish(Event::ContactChanged(change));
        }
    }
}

/// Delivers events to subscribers of this process only.
pub struct InProcessBus {
    sender: broadcast::Sender<Event>,
}

impl InProcessBus {
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        InProcessBus { sender }
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        InProcessBus::new(1024)
    }
}

impl EventBus for InProcessBus {
    fn publish(&self, event: Event) {
        // No subscriber at all is not an error.
        let _ = self.sender.send(event);
    }

    fn subscribe(&self) -> BoxStream<'static, Event> {
        BroadcastStream::new(self.sender.subscribe())
            .filter_map(|received| async move {
                match received {
                    Ok(event) => Some(event),
                    // The subscriber hears that it missed some, so that it
                    // can catch up from the database.
                    Err(lagged) => {
                        tracing::warn!(%lagged, "a slow subscriber missed events");
                        Some(Event::EventsMissed)
                    }
                }
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::{MembershipChangeKind, MembershipChanged};
    use uuid::Uuid;

    fn event() -> Event {
        Event::MembershipChanged(MembershipChanged {
            project_id: Uuid::now_v7(),
            agent_id: Uuid::now_v7(),
            role: None,
            kind: MembershipChangeKind::Removed,
        })
    }

    #[tokio::test]
    async fn every_subscriber_gets_events_published_after_it_subscribed() {
        let bus = InProcessBus::default();
        bus.publish(event());
        let mut first = bus.subscribe();
        let mut second = bus.subscribe();
        let sent = event();
        bus.publish(sent.clone());
        assert_eq!(first.next().await, Some(sent.clone()));
        assert_eq!(second.next().await, Some(sent));
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_hears_that_it_missed_events() {
        let bus = InProcessBus::new(2);
        let mut subscriber = bus.subscribe();
        let sent: Vec<Event> = (0..3).map(|_| event()).collect();
        for event in &sent {
            bus.publish(event.clone());
        }
        assert_eq!(subscriber.next().await, Some(Event::EventsMissed));
        assert_eq!(subscriber.next().await, Some(sent[1].clone()));
        assert_eq!(subscriber.next().await, Some(sent[2].clone()));
    }
}
