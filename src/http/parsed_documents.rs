//! Documents already parsed, by their text.
//!
//! Clients send the same few queries over and over (the contacts page with
//! other variables, a chat's messages), and parsing a page's query again
//! cost about a tenth of the page's CPU time. A document is kept once it
//! has parsed and passed the checks that read its text alone (the input
//! guard, the fragment bounds), so a request with the same text skips them
//! and the parse. The checks that read variables run on every request.
//!
//! A hostile client sending ever new texts only replaces entries: what is
//! kept is bounded in entries, in the length of one text and in the
//! length of all texts together (a document's syntax tree takes up to about
//! a hundred times its text: two bytes per field in `{ a a a ... }`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_graphql::parser::types::ExecutableDocument;

/// Entries kept at most.
const MAX_DOCUMENTS: usize = 256;
/// Longer texts are parsed every time (an introspection query is ~2 KB).
const MAX_KEPT_TEXT: usize = 8 * 1024;
/// All kept texts together.
const MAX_KEPT_BYTES: usize = 128 * 1024;

#[derive(Default)]
pub struct ParsedDocuments {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    by_text: HashMap<Box<str>, Arc<ExecutableDocument>>,
    text_bytes: usize,
}

impl ParsedDocuments {
    pub fn get(&self, text: &str) -> Option<Arc<ExecutableDocument>> {
        self.kept().by_text.get(text).cloned()
    }

    /// Keeps `document` as the parse of `text`, which passed the text's
    /// checks.
    pub fn keep(&self, text: &str, document: Arc<ExecutableDocument>) {
        if text.len() > MAX_KEPT_TEXT {
            return;
        }
        let mut kept = self.kept();
        if kept.by_text.contains_key(text) {
            return;
        }
        while kept.by_text.len() >= MAX_DOCUMENTS || kept.text_bytes + text.len() > MAX_KEPT_BYTES {
            // Any entry: the map's order is a hash order with a random
            // key, so which text goes cannot be steered by a client.
            let Some(old) = kept.by_text.keys().next().cloned() else {
                break;
            };
            kept.by_text.remove(&old);
            kept.text_bytes -= old.len();
        }
        kept.text_bytes += text.len();
        kept.by_text.insert(text.into(), document);
    }

    fn kept(&self) -> MutexGuard<'_, Kept> {
        // A panic while holding the lock leaves a map that is still whole.
        self.kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[cfg(test)]
    fn totals(&self) -> (usize, usize) {
        let kept = self.kept();
        (kept.by_text.len(), kept.text_bytes)
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
        assert_eq!(documents.totals().0, MAX_DOCUMENTS);

        let big = |n: usize| format!("{{ f{n:04} {} }}", "a ".repeat(MAX_KEPT_TEXT / 2 - 10));
        for n in 0..MAX_KEPT_BYTES / MAX_KEPT_TEXT * 2 {
            let text = big(n);
            assert!(text.len() <= MAX_KEPT_TEXT);
            documents.keep(&text, Arc::new(parse_query(&text).unwrap()));
            assert!(documents.get(&text).is_some());
            let (_, bytes) = documents.totals();
            assert!(bytes <= MAX_KEPT_BYTES, "{bytes}");
        }
        let (_, bytes) = documents.totals();
        let big_ones = documents
            .kept()
            .by_text
            .keys()
            .filter(|text| text.len() > MAX_KEPT_TEXT / 2)
            .count();
        assert!(
            big_ones <= MAX_KEPT_BYTES / (MAX_KEPT_TEXT / 2),
            "{big_ones}"
        );
        let recount: usize = documents.kept().by_text.keys().map(|text| text.len()).sum();
        assert_eq!(recount, bytes);
    }
}
