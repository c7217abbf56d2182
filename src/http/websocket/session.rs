//! What ends an acknowledged connection or its subscriptions: the token's expiry or revocation, the agent's removal from a project or a role change, told by the event bus.

use std::time::Duration;

use async_graphql::ServerError;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::auth::LiveSession;
use crate::domain::events::{Event, MembershipChangeKind};
use crate::error::AppError;

/// The token a connection was acknowledged with.
pub struct Session {
    agent_id: Uuid,
    token_id: Uuid,
    expires_at: DateTime<Utc>,
}

impl From<&LiveSession> for Session {
    fn from(live: &LiveSession) -> Self {
        Session {
            agent_id: live.agent.id,
            token_id: live.token_id,
            expires_at: live.expires_at,
        }
    }
}

impl Session {
    /// How long the token has left; zero once it has expired.
    pub fn remaining(&self) -> Duration {
        (self.expires_at - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
    }

    pub fn agent_id(&self) -> Uuid {
        self.agent_id
    }

    /// What `event` means for a connection holding this session, if anything.
    pub fn consequence_of(&self, event: &Event) -> Option<Consequence> {
        match event {
            Event::SessionRevoked(revoked) if revoked.token_id == self.token_id => {
                Some(Consequence::SessionEnded)
            }
            Event::MembershipChanged(change) if change.agent_id == self.agent_id => {
                let end = match change.kind {
                    MembershipChangeKind::Added => return None,
                    MembershipChangeKind::Removed => AccessEnd::Removed,
                    MembershipChangeKind::RoleChanged => AccessEnd::RoleChanged,
                };
                Some(Consequence::AccessEnded {
                    project_id: change.project_id,
                    end,
                })
            }
            Event::EventsMissed => Some(Consequence::CheckAgain),
            _ => None,
        }
    }
}

/// What the connection does about an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Consequence {
    /// The token was revoked: the connection closes with 4401.
    SessionEnded,
    /// The agent's access to a project ended: so do the subscriptions that
    /// hold it.
    AccessEnded { project_id: Uuid, end: AccessEnd },
    /// Events may have been lost: the token and every held access are read
    /// again from the database.
    CheckAgain,
}

/// How an access to a project ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessEnd {
    Removed,
    RoleChanged,
}

impl AccessEnd {
    /// The `error` an ended subscription gets: a removed member hears what
    /// any non-member hears of the project; after a role change the
    /// subscription may be started again under the new role.
    pub fn error(self) -> ServerError {
        let error = async_graphql::Error::from(match self {
            AccessEnd::Removed => AppError::NotFound("project"),
            AccessEnd::RoleChanged => {
                AppError::Forbidden("your role in this project changed: subscribe again")
            }
        });
        let mut server_error = ServerError::new(error.message, None);
        server_error.extensions = error.extensions;
        server_error
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::{MembershipChanged, RoleName, SessionRevoked};

    fn session() -> Session {
        Session {
            agent_id: Uuid::now_v7(),
            token_id: Uuid::now_v7(),
            expires_at: Utc::now() + chrono::Duration::hours(1),
        }
    }

    fn membership(agent_id: Uuid, kind: MembershipChangeKind) -> Event {
        Event::MembershipChanged(MembershipChanged {
            project_id: Uuid::now_v7(),
            agent_id,
            role: Some(RoleName::Agent),
            kind,
        })
    }

    #[test]
    fn only_this_token_and_this_agent_concern_the_connection() {
        let session = session();
        let revoked = |token_id| {
            Event::SessionRevoked(SessionRevoked {
                agent_id: session.agent_id,
                token_id,
            })
        };
        assert_eq!(
            session.consequence_of(&revoked(session.token_id)),
            Some(Consequence::SessionEnded)
        );
        // Another login of the same agent.
        assert_eq!(session.consequence_of(&revoked(Uuid::now_v7())), None);
        assert_eq!(
            session.consequence_of(&membership(Uuid::now_v7(), MembershipChangeKind::Removed)),
            None
        );
        assert_eq!(
            session.consequence_of(&membership(session.agent_id, MembershipChangeKind::Added)),
            None
        );
        for (kind, end) in [
            (MembershipChangeKind::Removed, AccessEnd::Removed),
            (MembershipChangeKind::RoleChanged, AccessEnd::RoleChanged),
        ] {
            assert!(matches!(
                session.consequence_of(&membership(session.agent_id, kind)),
                Some(Consequence::AccessEnded { end: found, .. }) if found == end
            ));
        }
        assert_eq!(
            session.consequence_of(&Event::EventsMissed),
            Some(Consequence::CheckAgain)
        );
    }

    #[test]
    fn ended_subscriptions_get_a_client_code() {
        let code = |end: AccessEnd| {
            end.error()
                .extensions
                .and_then(|extensions| extensions.get("code").cloned())
        };
        assert_eq!(code(AccessEnd::Removed), Some("NOT_FOUND".into()));
        assert_eq!(code(AccessEnd::RoleChanged), Some("FORBIDDEN".into()));
    }

    #[test]
    fn an_expired_session_has_no_time_left() {
        let mut session = session();
        assert!(session.remaining() > Duration::from_secs(3500));
        session.expires_at = Utc::now() - chrono::Duration::seconds(1);
        assert_eq!(session.remaining(), Duration::ZERO);
    }
}
