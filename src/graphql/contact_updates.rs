//! `contactUpdated`: contacts of a project created, changed, merged or
//! deleted, pushed to the project's members.

use async_graphql::{Context, Enum, ID, Result, SimpleObject, Subscription};
use futures_util::{Stream, StreamExt};

use crate::domain::access::Role;
use crate::domain::contact_updates;
use crate::domain::events::{ContactChangeKind, Event};
use crate::graphql::contacts::Contact;
use crate::graphql::context::{services, subscription_access};

/// How a contact changed.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ContactUpdateKind {
    /// A new contact: a visitor's first chat.
    Created,
    /// Its values, chats or possible duplicates changed.
    Updated,
    /// Another contact was merged into this one.
    Merged,
    /// Deleted, or merged into another contact.
    Deleted,
}

/// A change to one contact of a project.
#[derive(SimpleObject)]
pub struct ContactUpdate {
    /// What happened.
    pub kind: ContactUpdateKind,
    /// The contact it happened to.
    pub contact_id: ID,
    /// The contact as it is now; null once it is gone.
    pub contact: Option<Contact>,
}

#[derive(Default)]
pub struct ContactSubscription;

#[Subscription]
impl ContactSubscription {
    /// Changes to the contacts of a project. Members only; the stream ends
    /// when the subscriber leaves the project.
    async fn contact_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project to follow; the caller must be a member.")] project_id: ID,
    ) -> Result<impl Stream<Item = ContactUpdate> + use<>> {
        let access = subscription_access(ctx, &project_id, Role::Agent).await?;
        let project_id = access.project_id();
        let subscriber = access.agent_id();
        let db = services(ctx).db.clone();
        let changes = services(ctx)
            .bus
            .subscribe()
            .filter_map(move |event| async move {
                match event {
                    Event::ContactChanged(change) if change.project_id == project_id => {
                        Some(change)
                    }
                    _ => None,
                }
            });
        Ok(changes
            .then(move |change| {
                let db = db.clone();
                async move {
                    let state = contact_updates::current_state(&db, subscriber, &change).await;
                    (change, state)
                }
            })
            .take_while(|(_, state)| std::future::ready(state.is_ok()))
            .filter_map(|(change, state)| async move {
                let contact = state.ok()?;
                Some(ContactUpdate {
                    kind: match change.kind {
                        ContactChangeKind::Created => ContactUpdateKind::Created,
                        ContactChangeKind::Updated => ContactUpdateKind::Updated,
                        ContactChangeKind::Merged => ContactUpdateKind::Merged,
                        ContactChangeKind::Deleted => ContactUpdateKind::Deleted,
                    },
                    contact_id: ID(change.contact_id.to_string()),
                    contact: contact.map(Contact),
                })
            }))
    }
}
