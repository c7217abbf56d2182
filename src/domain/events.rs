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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    MembershipChanged(MembershipChanged),
    ContactChanged(ContactChanged),
    ExportUpdated(ExportUpdated),
    NotificationCreated(NotificationCreated),
    ProjectOriginsChanged(ProjectOriginsChanged),
}

impl Event {
    /// The project whose members may see this event.
    pub fn project_id(&self) -> Uuid {
        match self {
            Event::MembershipChanged(change) => change.project_id,
            Event::ContactChanged(change) => change.project_id,
            Event::ExportUpdated(update) => update.project_id,
            Event::NotificationCreated(created) => created.project_id,
            Event::ProjectOriginsChanged(changed) => changed.project_id,
        }
    }
}
