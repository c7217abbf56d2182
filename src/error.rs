//! The error every domain operation returns, with the machine-readable code
//! that clients see.
//!
//! `AppError` deliberately does not implement `Display`: async-graphql turns
//! anything displayable into a client error with its text, and internal
//! errors must never reach a client that way. The one conversion to a GraphQL
//! error lives in `graphql::errors`.

use std::fmt;

pub enum AppError {
    /// No valid credentials came with the request.
    Unauthenticated(&'static str),
    /// The caller is known but its role does not allow the operation.
    Forbidden(&'static str),
    /// The thing does not exist, or the caller may not know that it does.
    NotFound(&'static str),
    /// The input is invalid; `field` names the offending input.
    BadInput { field: String, message: String },
    /// Too many attempts; the client may retry after the given seconds.
    RateLimited { retry_after_secs: u64 },
    /// Anything unexpected; logged in full, shown to nobody.
    Internal(anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::BadInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(error.into())
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated(_) => "UNAUTHENTICATED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::BadInput { .. } => "BAD_USER_INPUT",
            AppError::RateLimited { .. } => "RATE_LIMITED",
            AppError::Internal(_) => "INTERNAL",
        }
    }

    /// The text a client may read.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Unauthenticated(message) | AppError::Forbidden(message) => {
                (*message).to_owned()
            }
            AppError::NotFound(what) => format!("{what} not found"),
            AppError::BadInput { field, message } => format!("{field}: {message}"),
            AppError::RateLimited { retry_after_secs } => {
                format!("too many requests, retry after {retry_after_secs} s")
            }
            AppError::Internal(cause) if is_unavailable(cause) => {
                "service unavailable: the database cannot be reached, retry shortly".to_owned()
            }
            AppError::Internal(_) => "internal error".to_owned(),
        }
    }

    /// Whether this is an internal error because the database is down:
    /// worth retrying, and logged as a warning rather than an error.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AppError::Internal(cause) if is_unavailable(cause))
    }
}

fn is_unavailable(cause: &anyhow::Error) -> bool {
    cause
        .downcast_ref::<sea_orm::DbErr>()
        .is_some_and(crate::db::is_unavailable)
}

impl fmt::Debug for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Internal(error) => write!(f, "Internal({error:#})"),
            other => write!(f, "{}({})", other.code(), other.public_message()),
        }
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(error: sea_orm::DbErr) -> Self {
        AppError::Internal(error.into())
    }
}

impl From<anyhow::Error> for AppError {
    fn from(error: anyhow::Error) -> Self {
        AppError::Internal(error)
    }
}
