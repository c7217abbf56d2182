//! CORS: a browser page may call the API only from the agents' app origins
//! of the deployment or from a widget origin that some project lists.
//!
//! The HTTP layer cannot know which project a request is for (that is in
//! the body or the visitor token), so it allows an origin that ANY project
//! lists; `startChat` and `submitContactForm` then refuse a browser request
//! whose origin their own project does not list (see `protection::origins`).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header, request::Parts};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::protection::origins::{BrowserOrigin, OriginPolicy, parse_origin};

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

pub fn layer(origins: Arc<OriginPolicy>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(
            move |origin: &HeaderValue, _: &Parts| {
                origin
                    .to_str()
                    .is_ok_and(|origin| origins.allows_browser(origin))
            },
        ))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([header::RETRY_AFTER, HeaderName::from_static("x-request-id")])
        .max_age(PREFLIGHT_MAX_AGE)
}

/// The origin of a cross-origin browser request. Requests without an
/// `Origin` header (servers, scripts, curl) and those from pages this server
/// serves itself (GraphiQL: the origin names the `Host` the request went
/// to, or `PUBLIC_URL`) give `None`; they are not widget calls from a site.
pub fn browser_origin(headers: &HeaderMap, public_url: Option<&str>) -> BrowserOrigin {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return BrowserOrigin(None);
    };
    // An Origin that is not text is nobody's origin: refused as such.
    let origin = origin.to_str().unwrap_or("invalid").trim().to_owned();
    let authority = origin.split_once("://").map(|(_, authority)| authority);
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok());
    let same_host = matches!((authority, host), (Some(authority), Some(host)) if authority.eq_ignore_ascii_case(host));
    let own_origin = public_url
        .and_then(|url| {
            parse_origin(
                url.split('/')
                    .take(3)
                    .collect::<Vec<_>>()
                    .join("/")
                    .as_str(),
            )
            .ok()
        })
        .is_some_and(|own| own == origin);
    if same_host || own_origin {
        BrowserOrigin(None)
    } else {
        BrowserOrigin(Some(origin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn only_cross_origin_browser_requests_have_an_origin() {
        let none = browser_origin(&headers(&[("host", "api.example")]), None);
        assert_eq!(none.0, None);
        let same = browser_origin(
            &headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080"),
            ]),
            None,
        );
        assert_eq!(same.0, None);
        let own = browser_origin(
            &headers(&[
                ("host", "10.0.0.5:8080"),
                ("origin", "https://contacts.example"),
            ]),
            Some("https://contacts.example/base"),
        );
        assert_eq!(own.0, None);
        let cross = browser_origin(
            &headers(&[("host", "api.example"), ("origin", "https://shop.example")]),
            Some("https://api.example"),
        );
        assert_eq!(cross.0.as_deref(), Some("https://shop.example"));
        let null = browser_origin(
            &headers(&[("host", "api.example"), ("origin", "null")]),
            None,
        );
        assert_eq!(null.0.as_deref(), Some("null"));
    }
}
