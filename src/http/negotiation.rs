//! Which media type a GraphQL answer over HTTP is written in, from the
//! request's `Accept` (GraphQL over HTTP, "Accept" and "Body").
//!
//! `application/graphql-response+json` is chosen only when the client names
//! it (and likes it at least as much as `application/json`): with it, request
//! errors get a 4xx status. Clients that name `application/json`, a wildcard
//! or nothing get `application/json` and the statuses they always had.

use axum::http::{HeaderMap, header};

pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseFormat {
    /// `application/json`: request errors the server finds itself during
    /// parsing and validation still answer 200, as before.
    Json,
    /// `application/graphql-response+json`: request errors answer 400.
    GraphqlResponseJson,
}

impl ResponseFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ResponseFormat::Json => "application/json",
            ResponseFormat::GraphqlResponseJson => {
                "application/graphql-response+json; charset=utf-8"
            }
        }
    }
}

/// The client accepts neither media type.
#[derive(Debug, PartialEq, Eq)]
pub struct NotAcceptable;

/// One media range of an `Accept` header, with its weight.
struct MediaRange<'a> {
    essence: &'a str,
    quality: f32,
}

fn media_ranges(headers: &HeaderMap) -> impl Iterator<Item = MediaRange<'_>> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|range| {
            let mut parts = range.split(';');
            let essence = parts.next()?.trim();
            if essence.is_empty() {
                return None;
            }
            let quality = parts
                .filter_map(|parameter| parameter.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
                .map_or(Some(1.0), |(_, value)| value.trim().parse::<f32>().ok())?;
            Some(MediaRange { essence, quality })
        })
}

/// The answer's format; no `Accept` at all means `application/json`.
pub fn response_format(headers: &HeaderMap) -> Result<ResponseFormat, NotAcceptable> {
    if media_ranges(headers).next().is_none() {
        return Ok(ResponseFormat::Json);
    }
    let mut graphql_response = 0.0_f32;
    let mut json = 0.0_f32;
    for range in media_ranges(headers) {
        let essence = range.essence.to_ascii_lowercase();
        match essence.as_str() {
            GRAPHQL_RESPONSE_JSON => graphql_response = graphql_response.max(range.quality),
            "application/json" | "application/*" | "*/*" => json = json.max(range.quality),
            _ => {}
        }
    }
    if graphql_response > 0.0 && graphql_response >= json {
        Ok(ResponseFormat::GraphqlResponseJson)
    } else if json > 0.0 {
        Ok(ResponseFormat::Json)
    } else {
        Err(NotAcceptable)
    }
}

/// Whether a browser is asking for a page: it names `text/html`.
pub fn wants_html(headers: &HeaderMap) -> bool {
    media_ranges(headers)
        .any(|range| range.essence.eq_ignore_ascii_case("text/html") && range.quality > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::ACCEPT, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn json_unless_the_client_names_graphql_response_json() {
        use ResponseFormat::*;
        for (values, expected) in [
            (&[][..], Ok(Json)),
            (&["application/json"][..], Ok(Json)),
            (&["*/*"][..], Ok(Json)),
            (&["application/*"][..], Ok(Json)),
            (&["application/json; charset=utf-8"][..], Ok(Json)),
            (&[GRAPHQL_RESPONSE_JSON][..], Ok(GraphqlResponseJson)),
            (
                &["application/graphql-response+json, application/json;q=0.9"][..],
                Ok(GraphqlResponseJson),
            ),
            (
                &["application/json", "application/graphql-response+json"][..],
                Ok(GraphqlResponseJson),
            ),
            (
                &["application/graphql-response+json;q=0.5, application/json"][..],
                Ok(Json),
            ),
            (
                &["application/graphql-response+json;q=0, */*"][..],
                Ok(Json),
            ),
            (
                &["text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"][..],
                Ok(Json),
            ),
            (&["text/plain"][..], Err(NotAcceptable)),
            (&["application/json;q=0"][..], Err(NotAcceptable)),
            (&["text/html, image/png"][..], Err(NotAcceptable)),
        ] {
            assert_eq!(response_format(&accept(values)), expected, "{values:?}");
        }
    }

    #[test]
    fn browsers_asking_for_pages_name_html() {
        assert!(wants_html(&accept(&[
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ])));
        assert!(!wants_html(&accept(&["*/*"])));
        assert!(!wants_html(&accept(&["text/html;q=0"])));
        assert!(!wants_html(&HeaderMap::new()));
    }
}
