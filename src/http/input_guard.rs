//! Bounds on a request's text and JSON, checked before async-graphql parses them, so that no input can exhaust the stack or stall the server.
//!
//! async-graphql's parser bounds the nesting of selection sets but not of
//! values (`[[[...]]]`, `{a: {a: ...}}`), and the validation passes, value
//! conversion and drop that follow recurse over whatever it built: one deep
//! value overflows a worker's stack and aborts the process. The scans here
//! loop over the input with explicit state, so they cannot recurse.

use serde_json::Value;

/// `[`, `{` and `(` open together at most this many levels. The standard
/// introspection query of GraphQL tools needs about 15.
pub const MAX_NESTING: usize = 64;

/// Names, punctuators, numbers and strings in one document. The standard
/// introspection query has about 150, the largest example of the README
/// about 120; a 64 KiB body of short names holds about 30,000. Parsing stays
/// cheap at this bound, and the row cost limit speaks for documents that
/// ask for too much.
pub const MAX_TOKENS: usize = 15_000;

/// Arrays and objects in variables (and extensions) nest at most this deep,
/// counting the variables object itself.
pub const MAX_JSON_DEPTH: usize = 32;

/// Values (scalars, arrays and objects each count one) in variables and
/// extensions together. Their total length is bounded by the body or
/// websocket message size.
pub const MAX_JSON_VALUES: usize = 10_000;

/// Why a request is refused before parsing; every case is the client's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InputRefusal {
    #[error(
        "the query nests lists, objects, arguments and selections deeper than {MAX_NESTING} levels"
    )]
    NestedTooDeep,
    #[error("the query has more than {MAX_TOKENS} tokens")]
    TooManyTokens,
    #[error("variables nest deeper than {MAX_JSON_DEPTH} levels")]
    VariablesTooDeep,
    #[error("variables hold more than {MAX_JSON_VALUES} values")]
    TooManyVariableValues,
    #[error("text must not contain the NUL character (U+0000)")]
    Nul,
    #[error(
        "the query holds more than {} selections once its fragments are spread",
        super::fragment_expansion::MAX_EXPANDED_FIELDS
    )]
    FragmentsExpandTooFar,
    #[error(
        "the query spreads a fragment it does not define, or fragments spread each other in a cycle"
    )]
    UndefinedOrCyclicFragments,
}

/// Checks GraphQL source text: nesting, token count, and U+0000, written
/// as itself or as an escape in a string. PostgreSQL text cannot hold NUL
/// and no field needs it, so such requests are refused whole.
pub fn check_document(query: &str) -> Result<(), InputRefusal> {
    measure(query).map(|_| ())
}

/// How much of each bound a document uses.
#[derive(Debug, PartialEq, Eq)]
struct Measure {
    tokens: usize,
    deepest: usize,
}

fn measure(query: &str) -> Result<Measure, InputRefusal> {
    if query.contains('\0') {
        return Err(InputRefusal::Nul);
    }
    let bytes = query.as_bytes();
    let mut at = 0;
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut tokens = 0usize;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                at += 1;
                continue;
            }
            b'#' => {
                at = end_of_comment(bytes, at);
                continue;
            }
            _ => {}
        }
        tokens += 1;
        if tokens > MAX_TOKENS {
            return Err(InputRefusal::TooManyTokens);
        }
        at = match byte {
            b'[' | b'{' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(InputRefusal::NestedTooDeep);
                }
                deepest = deepest.max(depth);
                at + 1
            }
            // Unbalanced closers are the parser's to report.
            b']' | b'}' | b')' => {
                depth = depth.saturating_sub(1);
                at + 1
            }
            b'"' if bytes[at..].starts_with(b"\"\"\"") => end_of_block_string(bytes, at + 3),
            b'"' => end_of_string(bytes, at + 1)?,
            b'.' if bytes[at..].starts_with(b"...") => at + 3,
            byte if is_word_byte(byte) || byte == b'-' => end_of_word(bytes, at + 1),
            _ => next_char_boundary(query, at),
        };
    }
    Ok(Measure { tokens, deepest })
}

/// Checks JSON values (variables, extensions) with one budget: depth, the
/// number of values, and U+0000 in strings and keys.
pub fn check_json<'a>(roots: impl IntoIterator<Item = &'a Value>) -> Result<(), InputRefusal> {
    let mut pending: Vec<(&Value, usize)> = roots.into_iter().map(|root| (root, 1)).collect();
    let mut values = 0usize;
    while let Some((value, depth)) = pending.pop() {
        values += 1;
        if values > MAX_JSON_VALUES {
            return Err(InputRefusal::TooManyVariableValues);
        }
        if depth > MAX_JSON_DEPTH {
            return Err(InputRefusal::VariablesTooDeep);
        }
        match value {
            Value::String(text) if text.contains('\0') => return Err(InputRefusal::Nul),
            Value::Array(items) => pending.extend(items.iter().map(|item| (item, depth + 1))),
            Value::Object(map) => {
                for (key, item) in map {
                    if key.contains('\0') {
                        return Err(InputRefusal::Nul);
                    }
                    pending.push((item, depth + 1));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Names, keywords and numbers (`-1.5e+3`) are runs of these bytes.
fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

fn end_of_word(bytes: &[u8], mut at: usize) -> usize {
    while let Some(&byte) = bytes.get(at) {
        let in_number = byte == b'.' || byte == b'+' || byte == b'-';
        if !(is_word_byte(byte) || in_number) {
            break;
        }
        at += 1;
    }
    at
}

fn end_of_comment(bytes: &[u8], at: usize) -> usize {
    bytes[at..]
        .iter()
        .position(|byte| *byte == b'\n' || *byte == b'\r')
        .map_or(bytes.len(), |offset| at + offset)
}

/// Block strings have no escapes but `\"""`, so `\u0000` in one is text.
fn end_of_block_string(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() {
        if bytes[at..].starts_with(b"\\\"\"\"") {
            at += 4;
        } else if bytes[at..].starts_with(b"\"\"\"") {
            return at + 3;
        } else {
            at += 1;
        }
    }
    at
}

/// From after the opening quote to after the closing one (or the end of
/// the line, for an unterminated string the parser will refuse). Refuses
/// `\u0000` and `\u{0}` (any number of zeros); `\\u0000` is text.
fn end_of_string(bytes: &[u8], mut at: usize) -> Result<usize, InputRefusal> {
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'"' => return Ok(at + 1),
            b'\n' | b'\r' => return Ok(at),
            b'\\' => {
                if bytes.get(at + 1) == Some(&b'u') {
                    let (escaped, end) = unicode_escape(bytes, at + 2);
                    if escaped == Some(0) {
                        return Err(InputRefusal::Nul);
                    }
                    at = end;
                } else {
                    at += 2;
                }
            }
            _ => at += 1,
        }
    }
    Ok(at)
}

/// The code point of `XXXX` or `{X...}` starting at `at`, if it is one,
/// and where the scan goes on. Leading zeros of a braced escape are
/// skipped without limit, so a long escape costs its length, once.
fn unicode_escape(bytes: &[u8], at: usize) -> (Option<u32>, usize) {
    if bytes.get(at) == Some(&b'{') {
        let digits = &bytes[at + 1..];
        let Some(length) = digits.iter().position(|byte| !byte.is_ascii_hexdigit()) else {
            return (None, bytes.len());
        };
        if length == 0 || digits[length] != b'}' {
            return (None, at + 1 + length);
        }
        let significant = digits[..length]
            .iter()
            .skip_while(|digit| **digit == b'0')
            .take(9)
            .try_fold(0u32, |code, digit| {
                code.checked_mul(16)?
                    .checked_add(char::from(*digit).to_digit(16)?)
            });
        return (significant, at + 2 + length);
    }
    let Some(digits) = bytes.get(at..at + 4) else {
        return (None, bytes.len());
    };
    let code = std::str::from_utf8(digits)
        .ok()
        .and_then(|digits| u32::from_str_radix(digits, 16).ok());
    (code, at + 4)
}

fn next_char_boundary(text: &str, at: usize) -> usize {
    (at + 1..=text.len())
        .find(|index| text.is_char_boundary(*index))
        .unwrap_or(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The query graphql-js `getIntrospectionQuery()` writes, which GraphiQL,
    /// Apollo and codegen send.
    const INTROSPECTION: &str = include_str!("../../tests/support/introspection_query.graphql");

    fn nested(open: &str, inner: &str, close: &str, depth: usize) -> String {
        format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
    }

    #[test]
    fn the_introspection_query_passes_with_a_margin() {
        let used = measure(INTROSPECTION).unwrap();
        assert!(used.tokens < MAX_TOKENS / 4, "{used:?}");
        assert!(used.deepest < MAX_NESTING / 4, "{used:?}");
        // Tools that inline the fragments nest `ofType` nine levels inside
        // `__schema { types { fields { type {`.
        let type_ref = INTROSPECTION
            .split_once("fragment TypeRef on __Type {")
            .unwrap()
            .1;
        let inlined = format!("{{ __schema {{ types {{ fields {{ type {{ {type_ref} }} }} }} }}");
        let used = measure(&inlined).unwrap();
        assert!(used.deepest < MAX_NESTING / 4, "{used:?}");
        assert!(used.deepest > 10, "{used:?}");
    }

    #[test]
    fn nesting_is_counted_across_brackets_braces_and_parentheses() {
        let at_limit = format!(
            "{{ f{} }}",
            nested("(a: ", &nested("[", "1", "]", MAX_NESTING - 2), ")", 1)
        );
        assert_eq!(check_document(&at_limit), Ok(()));
        let over = format!(
            "{{ f{} }}",
            nested("(a: ", &nested("[{a: ", "1", "}]", 32), ")", 1)
        );
        assert_eq!(check_document(&over), Err(InputRefusal::NestedTooDeep));
        let mixed = format!("{{ __typename(a: {}) }}", nested("{a: ", "1", "}", 2_000));
        assert_eq!(check_document(&mixed), Err(InputRefusal::NestedTooDeep));
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let text = "[".repeat(500);
        for query in [
            format!("{{ f(a: \"{text}\") }}"),
            format!("{{ f(a: \"\"\"{text} \\\"\"\" {text}\"\"\") }}"),
            format!("{{ f # {text}\n }}"),
            format!("{{ f(a: \"\\\"{text}\") }}"),
        ] {
            assert_eq!(check_document(&query), Ok(()), "{query}");
        }
    }

    #[test]
    fn tokens_are_bounded() {
        let many = format!("{{ {} }}", "__typename ".repeat(MAX_TOKENS));
        assert_eq!(check_document(&many), Err(InputRefusal::TooManyTokens));
        let few = format!("{{ {} }}", "__typename ".repeat(MAX_TOKENS - 2));
        assert_eq!(check_document(&few), Ok(()));
        let used = measure("{ a(b: -1.5e+3, c: \"x y\") ...F } # a comment").unwrap();
        assert_eq!(
            used,
            Measure {
                tokens: 13,
                deepest: 2
            }
        );
    }

    #[test]
    fn nul_is_refused_raw_or_escaped_but_an_escaped_backslash_is_text() {
        for query in [
            "{ f(a: \"\0\") }",
            r#"{ f(a: "pk\u0000") }"#,
            r#"{ f(a: "pk\u{0}") }"#,
            r#"{ f(a: "pk\u{00000000000000000000}") }"#,
            r#"{ f(a: "\\\u0000") }"#,
        ] {
            assert_eq!(check_document(query), Err(InputRefusal::Nul), "{query}");
        }
        for query in [
            r#"{ f(a: "\\u0000") }"#,
            r#"{ f(a: """\u0000""") }"#,
            r#"{ f(a: "\u0041\u{1F600}\u{00000041}") }"#,
            r#"{ f(a: "\u{") }"#,
            r#"{ f(a: "\u00") }"#,
        ] {
            assert_eq!(check_document(query), Ok(()), "{query}");
        }
    }

    #[test]
    fn json_is_bounded_in_depth_count_and_nul() {
        let deep = serde_json::from_str::<Value>(&nested("[", "1", "]", MAX_JSON_DEPTH)).unwrap();
        assert_eq!(
            check_json([&json!({ "v": deep })]),
            Err(InputRefusal::VariablesTooDeep)
        );
        let fits =
            serde_json::from_str::<Value>(&nested("[", "1", "]", MAX_JSON_DEPTH - 2)).unwrap();
        assert_eq!(check_json([&json!({ "v": fits })]), Ok(()));
        let wide = json!({ "v": vec![1; MAX_JSON_VALUES] });
        assert_eq!(
            check_json([&wide]),
            Err(InputRefusal::TooManyVariableValues)
        );
        assert_eq!(check_json([&json!({"a": ["x\0"]})]), Err(InputRefusal::Nul));
        assert_eq!(check_json([&json!({"a\0": 1})]), Err(InputRefusal::Nul));
        assert_eq!(check_json([&json!({}), &json!({"a": 1})]), Ok(()));
    }
}
