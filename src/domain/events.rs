//! Events that subscribers are told about, whichever instance caused them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::access::Role;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChangeKind {
    Added,
    RoleChanged,
    Removed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipChanged {
    pub project_id: Uuid,
    pub agent_id: Uuid,
    /// The role after the change; `None` once removed.
    pub role: Option<RoleName>,
    pub kind: MembershipChangeKind,
}

/// A role in a form that travels between instances as JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoleName {
    Admin,
    Agent,
}

impl From<Role> for RoleName {
    fn from(role: Role) -> Self {
        match role {
            Role::Admin => RoleName::Admin,
            Role::Agent => RoleName::Agent,
        }
    }
}

impl From<RoleName> for Role {
    fn from(role: RoleName) -> Self {
        match role {
            RoleName::Admin => Role::Admin,
            RoleName::Agent => Role::Agent,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContactChangeKind {
    Created,
    Updated,
    Merged,
    Deleted,
}

/// A contact was created or changed; subscribers load its current state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactChanged {
    pub project_id: Uuid,
    pub contact_id: Uuid,
    pub kind: ContactChangeKind,
}

/// Every contact change one operation made, each contact once with the
/// change that says most: removed over created over merged over updated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContactChanges(Vec<ContactChanged>);

impl ContactChanges {
    pub fn record(&mut self, project_id: Uuid, contact_id: Uuid, kind: ContactChangeKind) {
        let weight = |kind: ContactChangeKind| match kind {
            ContactChangeKind::Updated => 0,
            ContactChangeKind::Merged => 1,
            ContactChangeKind::Created => 2,
            ContactChangeKind::Deleted => 3,
        };
        match self.0.iter_mut().find(|c| c.contact_id == contact_id) {
            Some(known) if weight(kind) > weight(known.kind) => known.kind = kind,
            Some(_) => {}
            None => self.0.push(ContactChanged {
                project_id,
                contact_id,
                kind,
            }),
        }
    }

    pub fn extend(&mut self, other: ContactChanges) {
        for change in other.0 {
            self.record(change.project_id, change.contact_id, change.kind);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &ContactChanged> {
        self.0.iter()
    }

    pub fn kind_of(&self, contact_id: Uuid) -> Option<ContactChangeKind> {
        self.0
            .iter()
            .find(|c| c.contact_id == contact_id)
            .map(|c| c.kind)
    }
}

impl IntoIterator for ContactChanges {
    type Item = ContactChanged;
    type IntoIter = std::vec::IntoIter<ContactChanged>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// An export's status or progress changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportUpdated {
    pub project_id: Uuid,
    pub job_id: Uuid,
}

/// An agent has a new in-app notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationCreated {
    pub project_id: Uuid,
    pub agent_id: Uuid,
    pub notification_id: Uuid,
}

/// A project's allowed widget origins changed; every instance reloads its
/// cached list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectOriginsChanged {
    pub project_id: Uuid,
}

/// An agent's bearer token stopped being valid before its expiry (logout,
/// revocation): every connection authenticated with it must end. Carries
/// the token's id, never the token or its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRevoked {
    pub agent_id: Uuid,
    pub token_id: Uuid,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    MembershipChanged(MembershipChanged),
    ContactChanged(ContactChanged),
    ExportUpdated(ExportUpdated),
    NotificationCreated(NotificationCreated),
    ProjectOriginsChanged(ProjectOriginsChanged),
    SessionRevoked(SessionRevoked),
    /// Told by the bus to its own subscribers, never sent between
    /// instances: events may have been lost (the PostgreSQL listener
    /// reconnected, or a subscriber fell behind), so whoever relies on them
    /// to stay correct (sessions, memberships, caches) reads the database
    /// again.
    EventsMissed,
}

impl Event {
    /// The project whose members may see this event, if it belongs to one.
    pub fn project_id(&self) -> Option<Uuid> {
        match self {
            Event::MembershipChanged(change) => Some(change.project_id),
            Event::ContactChanged(change) => Some(change.project_id),
            Event::ExportUpdated(update) => Some(update.project_id),
            Event::NotificationCreated(created) => Some(created.project_id),
            Event::ProjectOriginsChanged(changed) => Some(changed.project_id),
            Event::SessionRevoked(_) | Event::EventsMissed => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_contact_is_announced_once_with_its_strongest_change() {
        let (project, a, b) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let mut changes = ContactChanges::default();
        changes.record(project, a, ContactChangeKind::Created);
        changes.record(project, a, ContactChangeKind::Updated);
        changes.record(project, b, ContactChangeKind::Updated);
        changes.record(project, b, ContactChangeKind::Deleted);
        assert_eq!(changes.kind_of(a), Some(ContactChangeKind::Created));
        assert_eq!(changes.kind_of(b), Some(ContactChangeKind::Deleted));
        assert_eq!(changes.iter().count(), 2);
    }
}
