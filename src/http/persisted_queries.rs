//! Automatic persisted queries, as Apollo Client's persisted-query link
//! sends them: `extensions.persistedQuery = {version: 1, sha256Hash}`.
//!
//! A request with only the hash gets its query text from here, or the
//! `PersistedQueryNotFound` error that makes the client send the text with
//! the hash; the text is checked against the hash and kept. Only text is
//! kept: a query found here goes through the whole request pipeline (input
//! guard, parse, limits) every time, like one sent in full.

use std::sync::{Arc, Mutex};

use async_graphql::ServerError;
use lru::LruCache;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::request_pipeline::RawRequest;
use crate::graphql::errors::client_request_error;

/// Queries kept at most, and their bytes at most: whichever comes first
/// evicts the least recently used.
pub const MAX_ENTRIES: usize = 1_000;
pub const MAX_BYTES: usize = 10 * 1024 * 1024;

/// A GraphQL request as it arrives over HTTP, whose query may be missing
/// when a persisted query's hash stands in for it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncomingRequest {
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default)]
    pub operation_name: Option<String>,
    #[serde(default)]
    pub variables: Option<Map<String, Value>>,
    #[serde(default)]
    pub extensions: Option<Map<String, Value>>,
}

/// Why a request has no query to run.
#[derive(Debug, PartialEq, Eq)]
pub enum Unresolved {
    /// A hash alone, for a query this instance does not know (yet).
    NotFound,
    /// The query's SHA-256 is not the hash sent with it.
    HashMismatch,
    /// `persistedQuery` that is not `{version: 1, sha256Hash: "<64 hex digits>"}`.
    Malformed,
    /// Neither a query nor a persisted query.
    NoQuery,
}

impl Unresolved {
    /// The error as Apollo's link expects it (for `NotFound`: this exact
    /// message and code), the others coded like every client mistake.
    pub fn error(&self) -> ServerError {
        match self {
            Unresolved::NotFound => {
                let mut error = ServerError::new("PersistedQueryNotFound", None);
                let mut extensions = async_graphql::ErrorExtensionValues::default();
                extensions.set("code", "PERSISTED_QUERY_NOT_FOUND");
                error.extensions = Some(extensions);
                error
            }
            Unresolved::HashMismatch => client_request_error(
                "the persisted query's sha256Hash is not the SHA-256 of its query",
            ),
            Unresolved::Malformed => client_request_error(
                "extensions.persistedQuery must be {\"version\": 1, \"sha256Hash\": \"<64 hex digits>\"}",
            ),
            Unresolved::NoQuery => client_request_error("the request has no query"),
        }
    }
}

/// A request with its query text, and the hash to keep that text under
/// once the pipeline has accepted it.
#[derive(Debug)]
pub struct Resolved {
    pub request: RawRequest,
    pub register: Option<String>,
}

struct Cache {
    queries: LruCache<String, Arc<str>>,
    bytes: usize,
}

/// The queries this instance knows by hash. Each instance keeps its own: a
/// client sent to another one hears `PersistedQueryNotFound` once and sends
/// the text again.
pub struct PersistedQueries {
    cache: Mutex<Cache>,
    max_entries: usize,
    max_bytes: usize,
}

impl Default for PersistedQueries {
    fn default() -> Self {
        PersistedQueries::with_bounds(MAX_ENTRIES, MAX_BYTES)
    }
}

impl PersistedQueries {
    pub fn with_bounds(max_entries: usize, max_bytes: usize) -> PersistedQueries {
        PersistedQueries {
            cache: Mutex::new(Cache {
                queries: LruCache::unbounded(),
                bytes: 0,
            }),
            max_entries,
            max_bytes,
        }
    }

    /// The request with its query: as sent, or found by its hash.
    pub fn resolve(&self, incoming: IncomingRequest) -> Result<Resolved, Unresolved> {
        let persisted = match incoming
            .extensions
            .as_ref()
            .and_then(|extensions| extensions.get("persistedQuery"))
        {
            None => None,
            Some(value) => Some(persisted_hash(value).ok_or(Unresolved::Malformed)?),
        };
        let (query, register) = match (incoming.query, persisted) {
            (Some(query), None) => (query, None),
            (None, None) => return Err(Unresolved::NoQuery),
            (Some(query), Some(hash)) => {
                if hex::encode(Sha256::digest(query.as_bytes())) != hash {
                    return Err(Unresolved::HashMismatch);
                }
                (query, Some(hash))
            }
            (None, Some(hash)) => (
                self.get(&hash).ok_or(Unresolved::NotFound)?.to_string(),
                None,
            ),
        };
        Ok(Resolved {
            request: RawRequest {
                query,
                operation_name: incoming.operation_name,
                variables: incoming.variables,
                extensions: incoming.extensions,
            },
            register,
        })
    }

    fn get(&self, hash: &str) -> Option<Arc<str>> {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.queries.get(hash).cloned()
    }

    /// Keeps `query` under `hash`, evicting the least recently used
    /// queries beyond the bounds. A query larger than all of them is not kept.
    pub fn register(&self, hash: String, query: &str) {
        let size = entry_size(&hash, query);
        if size > self.max_bytes || self.max_entries == 0 {
            return;
        }
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(previous) = cache.queries.pop(&hash) {
            cache.bytes -= entry_size(&hash, &previous);
        }
        while cache.queries.len() >= self.max_entries || cache.bytes + size > self.max_bytes {
            let Some((evicted_hash, evicted)) = cache.queries.pop_lru() else {
                break;
            };
            cache.bytes -= entry_size(&evicted_hash, &evicted);
        }
        cache.bytes += size;
        cache.queries.put(hash, Arc::from(query));
    }

    #[cfg(test)]
    fn stored(&self) -> (usize, usize) {
        let cache = self.cache.lock().unwrap();
        (cache.queries.len(), cache.bytes)
    }
}

fn entry_size(hash: &str, query: &str) -> usize {
    hash.len() + query.len()
}

/// The hash of a well-formed `persistedQuery`, in lower case.
fn persisted_hash(value: &Value) -> Option<String> {
    let version = value.get("version")?.as_i64()?;
    let hash = value.get("sha256Hash")?.as_str()?;
    (version == 1 && hash.len() == 64 && hash.bytes().all(|byte| byte.is_ascii_hexdigit()))
        .then(|| hash.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sha256(text: &str) -> String {
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    fn incoming(query: Option<&str>, hash: &str) -> IncomingRequest {
        IncomingRequest {
            query: query.map(str::to_owned),
            extensions: json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
                .as_object()
                .cloned(),
            ..IncomingRequest::default()
        }
    }

    #[test]
    fn a_hash_finds_the_query_registered_under_it() {
        let queries = PersistedQueries::default();
        let query = "{ me { id } }";
        let hash = sha256(query);
        assert_eq!(
            queries.resolve(incoming(None, &hash)).unwrap_err(),
            Unresolved::NotFound
        );
        let resolved = queries.resolve(incoming(Some(query), &hash)).unwrap();
        assert_eq!(resolved.register.as_deref(), Some(hash.as_str()));
        queries.register(resolved.register.unwrap(), &resolved.request.query);
        let found = queries
            .resolve(incoming(None, &hash.to_ascii_uppercase()))
            .unwrap();
        assert_eq!(found.request.query, query);
        assert_eq!(found.register, None);
    }

    #[test]
    fn a_query_must_match_its_hash_and_the_extension_its_shape() {
        let queries = PersistedQueries::default();
        let wrong = sha256("{ something { else } }");
        assert_eq!(
            queries
                .resolve(incoming(Some("{ me { id } }"), &wrong))
                .unwrap_err(),
            Unresolved::HashMismatch
        );
        assert_eq!(
            queries.resolve(incoming(None, "abc")).unwrap_err(),
            Unresolved::Malformed
        );
        let mut version_two = incoming(None, &wrong);
        version_two.extensions = json!({"persistedQuery": {"version": 2, "sha256Hash": wrong}})
            .as_object()
            .cloned();
        assert_eq!(
            queries.resolve(version_two).unwrap_err(),
            Unresolved::Malformed
        );
        assert_eq!(
            queries.resolve(IncomingRequest::default()).unwrap_err(),
            Unresolved::NoQuery
        );
        assert_eq!(
            Unresolved::NotFound.error().message,
            "PersistedQueryNotFound"
        );
    }

    #[test]
    fn the_least_recently_used_queries_go_beyond_either_bound() {
        let queries = PersistedQueries::with_bounds(3, 1_000);
        for n in 0..3 {
            queries.register(format!("h{n}"), &format!("q{n}"));
        }
        // Using h0 makes h1 the oldest.
        assert!(queries.get("h0").is_some());
        queries.register("h3".into(), "q3");
        assert!(queries.get("h1").is_none());
        assert!(queries.get("h0").is_some() && queries.get("h3").is_some());
        assert_eq!(queries.stored(), (3, 12));

        let queries = PersistedQueries::with_bounds(100, 250);
        for n in 0..5 {
            queries.register(format!("h{n}"), &"x".repeat(98));
        }
        let (entries, bytes) = queries.stored();
        assert_eq!(entries, 2);
        assert!(bytes <= 250, "{bytes}");
        queries.register("huge".into(), &"x".repeat(300));
        assert!(queries.get("huge").is_none());

        // The same hash registered again is counted once.
        queries.register("h4".into(), &"x".repeat(98));
        assert_eq!(queries.stored(), (2, 200));
    }
}
