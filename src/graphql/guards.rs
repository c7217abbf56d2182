//! What the public operations check before their domain code runs: the
//! rate limits of the client and the project, the project's allowed widget
//! origins, and the lock after failed logins.

use std::future::Future;

use async_graphql::Context;
use axum::http::header;

use crate::domain::origins::BrowserOrigin;
use crate::domain::passwords::WRONG_CURRENT_PASSWORD;
use crate::domain::rate_limit;
use crate::error::{AppError, AppResult};
use crate::graphql::context::{VisitorSession, request_origin, services};

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

/// `startChat` for the project with `project_key`; `forwarded` is the
/// visitor address and secret key a site's server may pass.
pub async fn admit_start_chat(
    ctx: &Context<'_>,
    project_key: &str,
    visitor_ip: Option<&str>,
    secret_key: Option<&str>,
) -> AppResult<()> {
    let services = services(ctx);
    let client = rate_limit::client_of_start(
        &services.db,
        request_origin(ctx).ip,
        project_key,
        visitor_ip,
        secret_key,
    )
    .await?;
    let checked = services
        .rate_limiter
        .start_chat(client, project_key)
        .and_then(|()| {
            services
                .origins
                .check_widget_key(project_key, browser_origin(ctx))
        });
    with_retry_hint(ctx, checked)
}

/// `submitContactForm` by the visitor of a chat.
pub fn admit_form_submission(ctx: &Context<'_>, visitor: VisitorSession) -> AppResult<()> {
    let services = services(ctx);
    let checked = services
        .rate_limiter
        .submit_form(request_origin(ctx).ip, visitor.project_id)
        .and_then(|()| {
            services
                .origins
                .check_widget_project(visitor.project_id, browser_origin(ctx))
        });
    with_retry_hint(ctx, checked)
}

/// Runs `login` unless the client or the email is locked out, and counts
/// a refused password towards the next lock.
pub async fn guarded_login<T>(
    ctx: &Context<'_>,
    email: &str,
    login: impl Future<Output = AppResult<T>>,
) -> AppResult<T> {
    let limiter = &services(ctx).rate_limiter;
    let ip = request_origin(ctx).ip;
    with_retry_hint(ctx, limiter.login_attempt(ip, email))?;
    let outcome = login.await;
    match &outcome {
        Ok(_) => limiter.login_finished(ip, email, true),
        Err(AppError::Unauthenticated(_)) => limiter.login_finished(ip, email, false),
        // The database failed, not the caller.
        Err(_) => {}
    }
    outcome
}

/// `requestPasswordReset`, `resetPassword` and `acceptInvitation` with a
/// token: public operations that mail, hash or create an account. They
/// share the per-IP budget of login attempts and obey an IP's lock; the
/// operation's name keys no lock of its own.
pub fn admit_account_request(ctx: &Context<'_>, operation: &str) -> AppResult<()> {
    let limiter = &services(ctx).rate_limiter;
    with_retry_hint(
        ctx,
        limiter.login_attempt(request_origin(ctx).ip, operation),
    )
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
    let ip = request_origin(ctx).ip;
    with_retry_hint(ctx, limiter.login_attempt(ip, email))?;
    let outcome = change.await;
    match &outcome {
        Ok(_) => limiter.login_finished(ip, email, true),
        Err(AppError::BadInput { message, .. }) if message == WRONG_CURRENT_PASSWORD => {
            limiter.login_finished(ip, email, false)
        }
        Err(_) => {}
    }
    outcome
}
