//! `/exports/...`: export files of the embedded store, at signed, expiring
//! links; `/export-downloads/<job>`: the mailed links, checked at each click.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::HttpState;
use crate::domain::export_links::{self, LinkRefused};
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
    stream_file(&path, &key).await
}

/// How long the S3 link a mailed link redirects to works: long enough to
/// start the download, too short to be worth passing on.
const REDIRECT_LINK_TTL: Duration = Duration::from_secs(5 * 60);

/// A mailed export link. The signature and expiry come first; then the job
/// must still be completed and its requester still a member of the project.
/// The file is streamed from the embedded store, or the browser is sent to
/// a fresh, short pre-signed S3 link.
pub async fn export_link(
    State(state): State<Arc<HttpState>>,
    Path(job_id): Path<String>,
    Query(link): Query<SignedLink>,
) -> Response {
    let services = &state.services;
    let Ok(job_id) = uuid::Uuid::parse_str(&job_id) else {
        return refused(LinkRefused::BadSignature);
    };
    if let Err(why) =
        services
            .export_links
            .verify(job_id, link.expires, &link.signature, SystemTime::now())
    {
        return refused(why);
    }
    let key = match export_links::downloadable(&services.db, job_id).await {
        Ok(Ok((_, key))) => key,
        Ok(Err(why)) => return refused(why),
        Err(error) => {
            tracing::error!(?error, "cannot check an export link");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    if let Some(expired_at) = file_expiry(&state, &key).await {
        return gone(expired_at);
    }
    if let Some(local) = &services.local_store {
        return match local.stored_file(&key) {
            Ok(path) => stream_file(&path, &key).await,
            Err(_) => refused(LinkRefused::Unavailable),
        };
    }
    match services.store.download_url(&key, REDIRECT_LINK_TTL).await {
        Ok(presigned) => (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, presigned.url),
                (header::CACHE_CONTROL, "private, no-store".to_owned()),
            ],
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot sign a download link");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
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

fn refused(why: LinkRefused) -> Response {
    let status = StatusCode::from_u16(why.status_code()).unwrap_or(StatusCode::FORBIDDEN);
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        format!("{why}\n"),
    )
        .into_response()
}

async fn stream_file(path: &std::path::Path, key: &str) -> Response {
    let file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(_) => return StatusCode::NOT_FOUND.into_response(),
    };
    let name = key.rsplit('/').next().unwrap_or("export.csv").to_owned();
    (
        [
            (
                header::CONTENT_TYPE,
                crate::domain::export_choices::ExportFormat::of_key(key)
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
