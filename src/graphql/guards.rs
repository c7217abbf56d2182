//! What the public operations check before their domain code runs: the
//! rate limits of the client and the project, the project's allowed widget
//! origins, and the lock after failed logins. Limits come first, before
//! anything is looked up in the database.

use std::future::Future;

use async_graphql::Context;
use axum::http::header;

use crate::domain::passwords::WRONG_CURRENT_PASSWORD;
use crate::error::{AppError, AppResult};
use crate::graphql::context::{VisitorSession, request_origin, services};
use crate::protection::origins::BrowserOrigin;
use crate::protection::rate_limit::LoginOutcome;
use crate::protection::site_server;

fn browser_origin<'a>(ctx: &Context<'a>) -> &'a BrowserOrigin {
    static NONE: BrowserOrigin = BrowserOrigin(None);
    ctx.data_opt::<BrowserOrigin>().unwrap_or(&NONE)
}

/// A refusal for too many requests also tells HTTP clients when to retry.
fn with_retry_hint<T>(ctx: &Context<'_>, result: AppResult<T>) -> AppResult<T> {
    if let Err(AppError::RateLimited { retry_after_secs }) = &result {
        ctx.insert_http_header(header::RETRY_AFTER, retry_after_secs.to_string());
    }
    result
}

/// `startChat` for the project with `project_key`. The call counts against
/// the key first; then against the client: the visitor whose address a
/// site's server passes with the project's `secret_key`, or else the caller.
pub async fn admit_start_chat(
    ctx: &Context<'_>,
    project_key: &str,
    visitor_ip: Option<&str>,
    secret_key: Option<&str>,
) -> AppResult<()> {
    let services = services(ctx);
    let limiter = &services.rate_limiter;
    with_retry_hint(ctx, limiter.start_chat_for_key(project_key).await)?;
    let vouched =
        site_server::vouched_visitor(&services.db, project_key, visitor_ip, secret_key).await?;
    let client = vouched.or(request_origin(ctx).ip);
    with_retry_hint(ctx, limiter.public_call_from(client).await)?;
    services
        .origins
        .check_widget_key(project_key, browser_origin(ctx))
}

/// `submitContactForm` by the visitor of a chat.
pub async fn admit_form_submission(ctx: &Context<'_>, visitor: VisitorSession) -> AppResult<()> {
    let services = services(ctx);
    let counted = services
        .rate_limiter
        .submit_form(request_origin(ctx).ip, visitor.project_id)
        .await;
    with_retry_hint(ctx, counted)?;
    services
        .origins
        .check_widget_project(visitor.project_id, browser_origin(ctx))
}

/// Runs `login` unless the client or the email is locked out. The attempt
/// is reserved before the password is checked, so parallel attempts
/// cannot pass the free failures together.
pub async fn guarded_login<T>(
    ctx: &Context<'_>,
    email: &str,
    login: impl Future<Output = AppResult<T>>,
) -> AppResult<T> {
    let limiter = &services(ctx).rate_limiter;
    let ip = request_origin(ctx).ip;
    let admitted = limiter.login_attempt(ip, email).await;
    if let Err(AppError::RateLimited { retry_after_secs }) = &admitted {
        tracing::warn!(
            email = masked_email(email),
            client_ip = ip.map(|ip| ip.to_string()).unwrap_or_default(),
            retry_after_secs,
            "login refused: locked after failures or too many attempts"
        );
    }
    let reservation = with_retry_hint(ctx, admitted)?;
    let outcome = login.await;
    let settled = match &outcome {
        Ok(_) => LoginOutcome::Succeeded,
        Err(AppError::Unauthenticated(_)) => {
            tracing::warn!(
                email = masked_email(email),
                client_ip = ip.map(|ip| ip.to_string()).unwrap_or_default(),
                "login failed: wrong email or password"
            );
            LoginOutcome::Failed
        }
        // The database failed, not the caller.
        Err(_) => LoginOutcome::NotChecked,
    };
    limiter.login_finished(reservation, settled).await;
    outcome
}

/// An email as a log may show it: the first character of the local part
/// and the domain, enough to tell accounts apart, not to read the address.
pub fn masked_email(email: &str) -> String {
    let email = email.trim();
    match email.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() => {
            let first: String = local.chars().take(1).collect();
            let domain: String = domain.chars().take(64).collect();
            format!("{first}***@{domain}")
        }
        _ => "***".to_owned(),
    }
}

/// `requestPasswordReset`, `resetPassword` and `acceptInvitation` with a
/// token: public operations that mail, hash or create an account. They
/// share the per-IP budget of login attempts and obey an IP's lock; the
/// operation's name keys no lock of its own, and nothing was guessed, so
/// the attempt is not kept as a failure.
pub async fn admit_account_request(ctx: &Context<'_>, operation: &str) -> AppResult<()> {
    let limiter = &services(ctx).rate_limiter;
    let reservation = with_retry_hint(
        ctx,
        limiter
            .login_attempt(request_origin(ctx).ip, operation)
            .await,
    )?;
    limiter
        .login_finished(reservation, LoginOutcome::NotChecked)
        .await;
    Ok(())
}

/// Runs `changePassword` unless the agent's email or the client is locked
/// out, and counts a wrong current password as a failed login: a stolen
/// token must not let anyone guess the password at leisure.
pub async fn guarded_password_change<T>(
    ctx: &Context<'_>,
    email: &str,
    change: impl Future<Output = AppResult<T>>,
) -> AppResult<T> {
    let limiter = &services(ctx).rate_limiter;
    let reservation = with_retry_hint(
        ctx,
        limiter.login_attempt(request_origin(ctx).ip, email).await,
    )?;
    let outcome = change.await;
    let settled = match &outcome {
        Ok(_) => LoginOutcome::Succeeded,
        Err(AppError::BadInput { message, .. }) if message == WRONG_CURRENT_PASSWORD => {
            LoginOutcome::Failed
        }
        Err(_) => LoginOutcome::NotChecked,
    };
    limiter.login_finished(reservation, settled).await;
    outcome
}

#[cfg(test)]
mod tests {
    use super::masked_email;

    #[test]
    fn a_masked_email_keeps_one_letter_and_the_domain() {
        assert_eq!(masked_email(" alice@example.com "), "a***@example.com");
        assert_eq!(masked_email("ünïcode@example.org"), "ü***@example.org");
        assert_eq!(masked_email("no-at-sign"), "***");
        assert_eq!(masked_email("@example.com"), "***");
    }
}
