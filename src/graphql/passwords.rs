//! Changing a password, and resetting a forgotten one through a mailed link.

use async_graphql::{Context, Object, Result};

use crate::domain::passwords::{self, ResetMail};
use crate::graphql::context::{require_agent, services, viewer};
use crate::graphql::guards;

#[derive(Default)]
pub struct PasswordMutation;

#[Object]
impl PasswordMutation {
    /// Sets a new password; the current one is asked again. Ends the
    /// caller's other sessions.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The password in use now.")] current_password: String,
        #[graphql(desc = "The new password, at least 8 characters.")] new_password: String,
    ) -> Result<bool> {
        let agent = require_agent(ctx)?;
        let keep = viewer(ctx).token.as_deref();
        let change = passwords::change_password(
            &services(ctx).db,
            agent,
            keep,
            &current_password,
            &new_password,
        );
        let revoked = guards::guarded_password_change(ctx, &agent.email, change).await?;
        services(ctx).bus.publish_sessions_revoked(revoked);
        Ok(true)
    }

    /// Mails a link to set a new password (`AGENT_APP_URL/reset/<token>`,
    /// for one hour) if an agent has this email. The answer is the same
    /// whether or not one has.
    async fn request_password_reset(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The agent's email.")] email: String,
    ) -> Result<bool> {
        guards::admit_account_request(ctx, "requestPasswordReset").await?;
        let services = services(ctx);
        let app_url = services.settings.agent_app_url();
        let mail = ResetMail {
            mailer: services.mailer.as_ref(),
            app_url: &app_url,
            ttl: services.settings.accounts.password_reset_ttl,
        };
        passwords::request_reset(&services.db, &mail, &email).await?;
        Ok(true)
    }

    /// Sets a new password with the token of a reset link; every session
    /// of the agent ends.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The token of the mailed link.")] token: String,
        #[graphql(desc = "The new password, at least 8 characters.")] password: String,
    ) -> Result<bool> {
        guards::admit_account_request(ctx, "resetPassword").await?;
        let revoked = passwords::reset_password(&services(ctx).db, &token, &password).await?;
        services(ctx).bus.publish_sessions_revoked(revoked);
        Ok(true)
    }
}
