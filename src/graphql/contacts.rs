//! Contacts as the agents of their project see and correct them.

use async_graphql::{Context, ID, InputObject, Json, Object, Result};
use chrono::{DateTime, Utc};
use entity::contact;

use crate::domain::access::Role;
use crate::domain::contacts::{self, location_of};
use crate::domain::ids::parse_id;
use crate::graphql::chats::Chat;
use crate::graphql::context::{require_agent, services};
use crate::graphql::location::{LocationInput, LocationView};

pub struct Contact(pub contact::Model);

#[Object]
impl Contact {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn project_id(&self) -> ID {
        ID(self.0.project_id.to_string())
    }

    async fn visitor_id(&self) -> &str {
        &self.0.visitor_id
    }

    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }

    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }

    async fn company(&self) -> Option<&str> {
        self.0.company.as_deref()
    }

    /// Answers to the project's custom form questions, by question key.
    async fn custom_attributes(&self) -> Json<serde_json::Value> {
        Json(self.0.custom_attributes.clone())
    }

    /// The address of the latest chat, as kept by the IP retention setting.
    async fn last_ip(&self) -> Option<&str> {
        self.0.last_ip.as_deref()
    }

    async fn location(&self) -> Option<LocationView> {
        location_of(&self.0).map(LocationView::from)
    }

    /// Whether an agent corrected the location; lookups then leave it alone.
    async fn location_corrected(&self) -> bool {
        self.0.location_corrected
    }

    async fn first_seen_at(&self) -> DateTime<Utc> {
        self.0.first_seen_at
    }

    async fn last_seen_at(&self) -> DateTime<Utc> {
        self.0.last_seen_at
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The contact's chats, newest first.
    async fn chats(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, validator(minimum = 1, maximum = 100))] first: u64,
    ) -> Result<Vec<Chat>> {
        let chats = contacts::recent_chats(&services(ctx).db, self.0.id, first).await?;
        Ok(chats.into_iter().map(Chat).collect())
    }
}

#[derive(InputObject)]
pub struct UpdateContactInput {
    /// A corrected location; later IP lookups will not overwrite it.
    pub location: Option<LocationInput>,
}

#[derive(Default)]
pub struct ContactQuery;

#[Object]
impl ContactQuery {
    /// One contact of a project the caller is a member of.
    async fn contact(&self, ctx: &Context<'_>, id: ID) -> Result<Contact> {
        let agent = require_agent(ctx)?;
        let contact_id = parse_id(&id, "id")?;
        let (contact, _) =
            contacts::find_for_agent(&services(ctx).db, agent.id, contact_id, Role::Agent).await?;
        Ok(Contact(contact))
    }
}

#[derive(Default)]
pub struct ContactMutation;

#[Object]
impl ContactMutation {
    async fn update_contact(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateContactInput,
    ) -> Result<Contact> {
        let agent = require_agent(ctx)?;
        let db = &services(ctx).db;
        let contact_id = parse_id(&id, "id")?;
        let (mut contact, _) =
            contacts::find_for_agent(db, agent.id, contact_id, Role::Agent).await?;
        if let Some(location) = input.location {
            contact = contacts::correct_location(db, agent.id, contact, location.into()).await?;
        }
        Ok(Contact(contact))
    }
}
