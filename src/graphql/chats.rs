//! Starting a chat from the widget, and chats as agents see them.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::chat;

use crate::domain::chats::{self, ChatPolicy, ChatStart, ServerForwardedIp};
use crate::domain::fields::ContactField;
use crate::domain::identity::IdentityClaim;
use crate::domain::visitors::OwnAnswers;
use crate::error::AppError;
use crate::graphql::context::{request_origin, services};
use crate::graphql::guards;
use crate::graphql::location::LocationView;

/// What the chat widget (or a site's server) knows when a visitor starts a
/// chat.
#[derive(InputObject)]
pub struct StartChatInput {
    /// The project's public widget key.
    pub project_key: String,
    /// The `visitorId` an earlier `startChat` returned to this browser. An
    /// id the server did not issue for this project starts a new visitor.
    pub visitor_id: Option<String>,
    /// For a site's server starting a chat on a visitor's behalf: the
    /// visitor's address, with `secretKey` proving the caller.
    pub visitor_ip: Option<String>,
    /// The project's secret key, required with `visitorIp`; never sent from a
    /// browser.
    pub secret_key: Option<String>,
    /// The site's signed-in user; ignored unless signed.
    pub identity: Option<VisitorIdentityInput>,
}

/// A site's signed-in user. `signature` is the hex HMAC-SHA256 of
/// `identifier` keyed by the project's secret key, computed by the site's
/// server; with it the same contact is found from any device.
#[derive(InputObject)]
pub struct VisitorIdentityInput {
    /// The site's stable id of its user (`user-42`).
    pub identifier: String,
    /// The user's email as the site knows it; fills the contact's email when it
    /// has none.
    pub email: Option<String>,
    /// The user's name as the site knows it; fills the contact's name when it
    /// has none.
    pub name: Option<String>,
    /// Hex HMAC-SHA256 of `identifier` keyed by the project's secret key;
    /// without it the identity is ignored.
    pub signature: Option<String>,
}

/// What the visitor itself gave (from this browser, or under the site's
/// verified identity), never what an agent or another visitor stored.
#[derive(SimpleObject)]
pub struct VisitorContact {
    /// The name this visitor gave.
    pub name: Option<String>,
    /// The email this visitor gave.
    pub email: Option<String>,
    /// The phone this visitor gave, in E.164 form.
    pub phone: Option<String>,
    /// The company this visitor gave.
    pub company: Option<String>,
}

impl From<&OwnAnswers> for VisitorContact {
    fn from(own: &OwnAnswers) -> Self {
        VisitorContact {
            name: own.field(ContactField::Name),
            email: own.field(ContactField::Email),
            phone: own.field(ContactField::Phone),
            company: own.field(ContactField::Company),
        }
    }
}

/// The chat just started, as the widget sees it.
#[derive(SimpleObject)]
pub struct VisitorChat {
    /// The chat's id.
    pub id: ID,
    /// When the chat started.
    pub started_at: DateTime<Utc>,
}

/// What the widget keeps from `startChat`.
#[derive(SimpleObject)]
pub struct StartChatPayload {
    /// The chat just started.
    pub chat: VisitorChat,
    /// This browser's credential: keep it and pass it to the next
    /// `startChat`. Issued by the server; a secret like a token.
    pub visitor_id: String,
    /// What this visitor has given so far, to greet them with.
    pub contact: VisitorContact,
    /// Grants access to this visitor's own contact form and nothing else.
    /// Shown once.
    pub visitor_token: String,
}

pub struct Chat(pub chat::Model);

/// A chat as the project's agents see it.
#[Object]
impl Chat {
    /// The chat's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// When the chat started.
    async fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }

    /// As kept by the deployment's IP retention: full, truncated or none.
    async fn ip(&self) -> Option<&str> {
        self.0.ip.as_deref()
    }

    /// The browser's User-Agent header when the chat started.
    async fn user_agent(&self) -> Option<&str> {
        self.0.user_agent.as_deref()
    }

    /// Where the chat came from when it started.
    async fn location(&self) -> Option<LocationView> {
        let location = self.0.location.clone()?;
        serde_json::from_value::<crate::geo::Location>(location)
            .ok()
            .map(LocationView::from)
    }
}

#[derive(Default)]
pub struct ChatMutation;

#[Object]
impl ChatMutation {
    /// Called by the chat widget when a visitor starts a chat: finds or
    /// creates the visitor's contact, locates it, and opens the chat.
    async fn start_chat(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project's key and what the widget knows of the visitor.")]
        input: StartChatInput,
    ) -> Result<StartChatPayload> {
        guards::admit_start_chat(
            ctx,
            &input.project_key,
            input.visitor_ip.as_deref(),
            input.secret_key.as_deref(),
        )
        .await?;
        let services = services(ctx);
        let origin = request_origin(ctx);
        let forwarded_for = match (input.visitor_ip, input.secret_key) {
            (Some(visitor_ip), Some(secret_key)) => Some(ServerForwardedIp {
                visitor_ip,
                secret_key,
            }),
            (Some(_), None) => {
                return Err(AppError::bad_input("secretKey", "is required with visitorIp").into());
            }
            _ => None,
        };
        let policy = ChatPolicy {
            geo: services.geo.as_ref(),
            ip_retention: services.settings.ip_retention,
        };
        let started = chats::start_chat(
            &services.db,
            &policy,
            ChatStart {
                project_key: input.project_key,
                visitor_id: input.visitor_id,
                user_agent: origin.user_agent.clone(),
                client_ip: origin.ip,
                forwarded_for,
                identity: input.identity.map(|identity| IdentityClaim {
                    identifier: identity.identifier,
                    email: identity.email,
                    name: identity.name,
                    signature: identity.signature,
                }),
            },
        )
        .await?;
        services.bus.publish_contact_changes(started.changes);
        Ok(StartChatPayload {
            chat: VisitorChat {
                id: ID(started.chat.id.to_string()),
                started_at: started.chat.started_at,
            },
            visitor_id: started.visitor_id,
            contact: VisitorContact::from(&started.own_answers),
            visitor_token: started.visitor_token,
        })
    }
}
