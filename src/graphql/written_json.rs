//! Parts of a response that their resolver wrote as JSON text.
//!
//! async-graphql's results are trees of `Value`s, which the response then
//! serialises: for a contacts page, building that tree (a map and a string
//! per field of every contact) and walking it again to write it were a
//! quarter of the request's CPU time. A resolver that can write its JSON
//! from its rows directly returns it as `written(json)`, a `Value` that
//! carries the text; `write_response` copies such text into the body as it
//! is, and `expand` turns it back into `Value`s where the whole tree is
//! needed (the websocket transports serialise their messages with serde).
//!
//! The text travels as a `Value::Binary` that starts with a tag drawn when
//! the process starts: no type of this schema outputs binary values, and
//! none could make up the tag.

use std::sync::LazyLock;

use async_graphql::{Response, Value};
use bytes::Bytes;

static TAG: LazyLock<[u8; 16]> = LazyLock::new(rand::random);

/// A value whose JSON `write` writes into the buffer it is given.
pub fn written(capacity: usize, write: impl FnOnce(&mut Vec<u8>)) -> Value {
    let mut bytes = Vec::with_capacity(TAG.len() + capacity);
    bytes.extend_from_slice(&*TAG);
    write(&mut bytes);
    Value::Binary(Bytes::from(bytes))
}

fn text_of(value: &Value) -> Option<&[u8]> {
    match value {
        Value::Binary(bytes) => bytes.strip_prefix(&*TAG),
        _ => None,
    }
}

/// The response as JSON, field for field as async-graphql serialises it.
pub fn write_response(response: &Response) -> Bytes {
    let mut body = Vec::with_capacity(4096);
    body.extend_from_slice(b"{\"data\":");
    write_value(&response.data, &mut body);
    if !response.extensions.is_empty() {
        body.extend_from_slice(b",\"extensions\":");
        write_serialised(&response.extensions, &mut body);
    }
    if !response.errors.is_empty() {
        body.extend_from_slice(b",\"errors\":");
        write_serialised(&response.errors, &mut body);
    }
    body.push(b'}');
    Bytes::from(body)
}

fn write_value(value: &Value, body: &mut Vec<u8>) {
    match value {
        Value::List(items) => {
            body.push(b'[');
            for (at, item) in items.iter().enumerate() {
                if at > 0 {
                    body.push(b',');
                }
                write_value(item, body);
            }
            body.push(b']');
        }
        Value::Object(fields) => {
            body.push(b'{');
            for (at, (key, item)) in fields.iter().enumerate() {
                if at > 0 {
                    body.push(b',');
                }
                write_serialised(key.as_str(), body);
                body.push(b':');
                write_value(item, body);
            }
            body.push(b'}');
        }
        other => match text_of(other) {
            Some(text) => body.extend_from_slice(text),
            None => write_serialised(other, body),
        },
    }
}

/// `value` as serde_json writes it.
pub fn write_serialised(value: &(impl serde::Serialize + ?Sized), body: &mut Vec<u8>) {
    // Writing to memory fails only for a map with keys that are not
    // strings, which no response holds.
    let _ = serde_json::to_writer(body, value);
}

/// Every written part of `value` turned back into `Value`s.
pub fn expand(value: &mut Value) {
    match value {
        Value::List(items) => items.iter_mut().for_each(expand),
        Value::Object(fields) => fields.values_mut().for_each(expand),
        other => {
            if let Some(text) = text_of(other) {
                // The text was written from values of this schema's types,
                // so it parses; a bug that broke it shows in the log.
                *other = serde_json::from_slice(text).unwrap_or_else(|error| {
                    tracing::error!(%error, "a written part of a response does not parse");
                    Value::Null
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::indexmap::IndexMap;
    use async_graphql::{Name, ServerError};

    fn page() -> Value {
        let mut fields = IndexMap::new();
        fields.insert(
            Name::new("edges"),
            written(64, |out| {
                out.extend_from_slice(br#"[{"name":"Ana \"\u00d1\"","n":1.5},{"name":null}]"#)
            }),
        );
        fields.insert(Name::new("total"), Value::from(2));
        Value::Object(fields)
    }

    #[test]
    fn written_text_is_copied_into_the_response_as_it_is() {
        let mut response = Response::new(page());
        response
            .errors
            .push(ServerError::new("total is late", None));
        let body = write_response(&response);
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"data":{"edges":[{"name":"Ana \"\u00d1\"","n":1.5},{"name":null}],"total":2},"errors":[{"message":"total is late"}]}"#
        );
    }

    #[test]
    fn a_response_without_written_parts_is_what_serde_writes() {
        let mut response = Response::new(
            Value::from_json(serde_json::json!({"a": [1, "x\n", null, {"b": true}]})).unwrap(),
        );
        response.extensions.insert("cost".into(), Value::from(3));
        response.errors.push(ServerError::new("no", None));
        assert_eq!(
            write_response(&response),
            serde_json::to_vec(&response).unwrap()
        );
    }

    #[test]
    fn expanded_parts_are_the_values_they_were_written_from() {
        let mut value = page();
        expand(&mut value);
        assert_eq!(
            serde_json::to_string(&value).unwrap(),
            r#"{"edges":[{"name":"Ana \"Ñ\"","n":1.5},{"name":null}],"total":2}"#
        );
    }

    #[test]
    fn binary_values_without_the_tag_are_serialised_as_before() {
        let value = Value::Binary(Bytes::from_static(b"{}"));
        let response = Response::new(value.clone());
        assert_eq!(
            write_response(&response),
            serde_json::to_vec(&response).unwrap()
        );
        let mut expanded = value.clone();
        expand(&mut expanded);
        assert_eq!(expanded, value);
    }
}
