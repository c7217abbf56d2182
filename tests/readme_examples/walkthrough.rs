//! The README's example operations, read as a walkthrough: every
//! ```` ```graphql ```` block in document order, split into operations,
//! each with the comments written above it.

/// One operation of the README and the comment lines just above it.
#[derive(Debug, Clone)]
pub struct Example {
    pub comments: Vec<String>,
    pub text: String,
    /// The line of the README where the operation starts, for messages.
    pub line: usize,
}

impl Example {
    pub fn kind(&self) -> &str {
        let head = self.text.trim_start();
        ["mutation", "subscription", "query"]
            .into_iter()
            .find(|kind| head.starts_with(kind))
            .unwrap_or("query")
    }

    /// The first field of the operation's selection set.
    pub fn root_field(&self) -> String {
        let after_brace =
            &self.text[self.text.find('{').expect("an operation has a selection") + 1..];
        after_brace
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    }

    /// The header this operation sets for itself and those after it:
    /// `Some(Some(value))` sets one, `Some(None)` drops it.
    pub fn authorization_change(&self) -> Option<Option<String>> {
        let mut change = None;
        for comment in &self.comments {
            if let Some(value) = comment.strip_prefix("with Authorization: ") {
                change = Some(Some(value.trim().to_owned()));
            } else if comment.trim() == "without Authorization" {
                change = Some(None);
            }
        }
        change
    }

    /// A subscription whose comment says the next operation triggers it;
    /// any other subscription is followed until the server completes it.
    pub fn is_triggered_by_next(&self) -> bool {
        self.comments
            .iter()
            .any(|comment| comment.contains("next operation"))
    }
}

pub fn examples(readme: &str) -> Vec<Example> {
    let mut examples = Vec::new();
    let mut in_block = false;
    let mut comments: Vec<String> = Vec::new();
    let mut current: Option<Example> = None;
    for (index, line) in readme.lines().enumerate() {
        if !in_block {
            in_block = line.trim_end() == "```graphql";
            continue;
        }
        if line.trim_end() == "```" {
            examples.extend(current.take());
            comments.clear();
            in_block = false;
            continue;
        }
        let starts_operation = ["query", "mutation", "subscription", "{"]
            .iter()
            .any(|keyword| line.starts_with(keyword));
        if let Some(comment) = line.strip_prefix('#') {
            examples.extend(current.take());
            comments.push(comment.trim().to_owned());
        } else if starts_operation {
            examples.extend(current.take());
            current = Some(Example {
                comments: std::mem::take(&mut comments),
                text: line.to_owned(),
                line: index + 1,
            });
        } else if line.trim().is_empty() {
            // A blank line ends comments that introduced nothing.
            if current.is_none() {
                comments.clear();
            }
        } else {
            let example = current
                .as_mut()
                .unwrap_or_else(|| panic!("README line {}: text outside an operation", index + 1));
            example.text.push('\n');
            example.text.push_str(line);
        }
    }
    assert!(!in_block, "the README ends inside a graphql block");
    examples
}

/// Every `"<…>"` in a text: the placeholder without its brackets, and its
/// byte range including the quotes.
pub fn placeholders(text: &str) -> Vec<(String, std::ops::Range<usize>)> {
    let mut found = Vec::new();
    let mut rest = 0;
    while let Some(offset) = text[rest..].find("\"<") {
        let start = rest + offset;
        let Some(length) = text[start..].find(">\"") else {
            break;
        };
        let end = start + length + 2;
        found.push((text[start + 2..end - 2].to_owned(), start..end));
        rest = end;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_blocks_into_operations_with_their_comments() {
        let readme = "text\n```graphql\n# as the owner\nquery { me { id } }\n\nmutation { a(x: 1) {\n  b } }\n```\n```sh\nquery { no }\n```\n";
        let found = examples(readme);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].comments, ["as the owner"]);
        assert_eq!(found[0].root_field(), "me");
        assert_eq!(found[1].kind(), "mutation");
        assert_eq!(found[1].text, "mutation { a(x: 1) {\n  b } }");
        assert_eq!(found[1].line, 6);
    }

    #[test]
    fn finds_placeholders_with_their_quotes() {
        let text = r#"{ a(id: "<id from b>", n: "plain", m: "<x.0.y from c of d>") }"#;
        let found = placeholders(text);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].0, "id from b");
        assert_eq!(&text[found[1].1.clone()], "\"<x.0.y from c of d>\"");
    }
}
