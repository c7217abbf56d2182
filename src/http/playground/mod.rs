//! The GraphQL playground: our own small page around GraphiQL, served with
//! its files from this server's own paths under a Content-Security-Policy
//! that allows nothing else, so it works offline and behind strict proxies.
//! The files are embedded at build time (see `build.rs`).

mod assets;
mod page;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use base64::Engine;

use super::HttpState;
use assets::Bundle;

/// Where the page's files are served; each name carries a digest of its
/// bytes, so a file may be cached for good.
pub const ASSETS_PATH: &str = "/playground/assets";

const ENDPOINT: &str = "/graphql";

/// Sources are this server only. GraphiQL's style sheet holds its fonts and
/// icons as `data:` URLs; `connect-src 'self'` covers the websocket to the
/// same host and port (CSP Level 3). The page's answer adds a nonce for
/// the `<style>` elements GraphiQL's dialogs create (their scroll lock),
/// instead of allowing inline styles.
pub fn content_security_policy(style_nonce: Option<&str>) -> String {
    let style_src = match style_nonce {
        Some(nonce) => format!("'self' 'nonce-{nonce}'"),
        None => "'self'".to_owned(),
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src {style_src}; img-src 'self' data:; \
         font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    )
}

/// The page, or a short note when `PLAYGROUND` is off.
pub fn page(enabled: bool) -> Response {
    if !enabled {
        return playground_off();
    }
    let style_nonce = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page::render(&Bundle::built(), ENDPOINT, &style_nonce),
    )
        .into_response();
    secure(&mut response, Some(&style_nonce));
    response
}

/// `GET /playground/assets/{name}`.
pub async fn asset(State(state): State<Arc<HttpState>>, Path(name): Path<String>) -> Response {
    if !state.services.settings.playground {
        return playground_off();
    }
    let Some(asset) = Bundle::built().find(&name) else {
        return (StatusCode::NOT_FOUND, "no such playground file").into_response();
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        asset.bytes,
    )
        .into_response();
    secure(&mut response, None);
    response
}

fn playground_off() -> Response {
    (
        StatusCode::NOT_FOUND,
        "the GraphQL playground is off on this server (PLAYGROUND=false)",
    )
        .into_response()
}

fn secure(response: &mut Response, style_nonce: Option<&str>) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&content_security_policy(style_nonce))
            .expect("a policy is header text"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // For browsers that predate frame-ancestors.
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}
