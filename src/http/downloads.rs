//! `/exports/...`: export files of the embedded store, at signed, expiring
//! links.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::HttpState;
use crate::domain::exports;
use crate::storage::DownloadRefused;

#[derive(Deserialize)]
pub struct SignedLink {
    expires: u64,
    signature: String,
}

pub async fn download(
    State(state): State<Arc<HttpState>>,
    Path(key): Path<String>,
    Query(link): Query<SignedLink>,
) -> Response {
    let Some(store) = &state.services.local_store else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let path = match store.verify_download(&key, link.expires, &link.signature, SystemTime::now()) {
        Ok(path) => path,
        // A link this server signed, to a file that is gone or a link that
        // ran out: if retention deleted the file, no new link will help,
        // and the answer says so.
        Err(DownloadRefused::NotFound | DownloadRefused::Expired)
            if let Some(expired_at) = file_expiry(&state, &key).await =>
        {
            return gone(expired_at);
        }
        Err(refused) => {
            let status =
                StatusCode::from_u16(refused.status_code()).unwrap_or(StatusCode::FORBIDDEN);
            return (status, refused.to_string()).into_response();
        }
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(_) => return StatusCode::NOT_FOUND.into_response(),
    };
    let name = key.rsplit('/').next().unwrap_or("export.csv").to_owned();
    (
        [
            (
                header::CONTENT_TYPE,
                crate::domain::export_choices::ExportFormat::of_key(&key)
                    .content_type()
                    .to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        Body::from_stream(tokio_util::io::ReaderStream::new(file)),
    )
        .into_response()
}

async fn file_expiry(state: &HttpState, key: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    match exports::file_expiry_of_key(&state.services.db, key).await {
        Ok(expired_at) => expired_at,
        Err(error) => {
            tracing::warn!(?error, "cannot tell whether an export file expired");
            None
        }
    }
}

fn gone(expired_at: chrono::DateTime<chrono::Utc>) -> Response {
    (
        StatusCode::GONE,
        [(header::CACHE_CONTROL, "no-store")],
        format!(
            "This export file has expired: it was deleted on {} after the retention period. Ask for a new export.\n",
            expired_at.format("%Y-%m-%d %H:%M UTC")
        ),
    )
        .into_response()
}
