//! Documents already parsed, by their text.
//!
//! Clients send the same few queries over and over (the contacts page with
//! other variables, a chat's messages), and parsing a page's query again
//! cost about a tenth of the page's CPU time. A document is kept once it
//! has parsed and passed the checks that read its text alone (the input
//! guard, the fragment bounds), so a request with the same text skips them
//! and the parse. The checks that read variables run on every request.
//!
//! A hostile client sending ever new texts only replaces entries: the map
//! is bounded in entries and in the length of a text it keeps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::ExecutableDocument;

/// Entries kept at most; a new text past it replaces an old one.
const MAX_DOCUMENTS: usize = 256;
/// Longer texts are parsed every time (an introspection query is ~2 KB).
const MAX_KEPT_TEXT: usize = 8 * 1024;

#[derive(Default)]
pub struct ParsedDocuments {
    by_text: Mutex<HashMap<Box<str>, Arc<ExecutableDocument>>>,
}

impl ParsedDocuments {
    pub fn get(&self, text: &str) -> Option<Arc<ExecutableDocument>> {
        self.documents().get(text).cloned()
    }

    /// Keeps `document` as the parse of `text`, which passed the text's
    /// checks.
    pub fn keep(&self, text: &str, document: Arc<ExecutableDocument>) {
        if text.len() > MAX_KEPT_TEXT {
            return;
        }
        let mut documents = self.documents();
        if documents.len() >= MAX_DOCUMENTS && !documents.contains_key(text) {
            // Any entry: the map's order is a hash order, so which text
            // goes cannot be steered by the texts a client sends.
            if let Some(old) = documents.keys().next().cloned() {
                documents.remove(&old);
            }
        }
        documents.insert(text.into(), document);
    }

    fn documents(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Arc<ExecutableDocument>>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.by_text
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.documents().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    #[test]
    fn keeps_what_it_was_given_within_its_bounds() {
        let documents = ParsedDocuments::default();
        let text = "{ a }";
        documents.keep(text, Arc::new(parse_query(text).unwrap()));
        assert!(documents.get(text).is_some());
        assert!(documents.get("{ b }").is_none());

        let long = format!("{{ {} }}", "a ".repeat(MAX_KEPT_TEXT));
        documents.keep(&long, Arc::new(parse_query(&long).unwrap()));
        assert!(documents.get(&long).is_none());

        for n in 0..MAX_DOCUMENTS * 2 {
            let text = format!("{{ f{n} }}");
            documents.keep(&text, Arc::new(parse_query(&text).unwrap()));
            assert!(documents.get(&text).is_some());
        }
        assert_eq!(documents.len(), MAX_DOCUMENTS);
    }
}
