//! What earlier operations answered, and the placeholders filled from it.

use std::path::PathBuf;

use serde_json::Value;

use crate::walkthrough::{Example, placeholders};

pub struct Answers {
    first_start_password: String,
    mail_dir: PathBuf,
    /// Root field, the operation's README text, and its answer; in order.
    recorded: Vec<(String, String, Value)>,
}

impl Answers {
    pub fn new(first_start_password: String, mail_dir: PathBuf) -> Answers {
        Answers {
            first_start_password,
            mail_dir,
            recorded: Vec::new(),
        }
    }

    pub fn record(&mut self, example: &Example, answer: Value) {
        self.recorded
            .push((example.root_field(), example.text.clone(), answer));
    }

    /// The latest answer of an operation with this root field.
    pub fn latest(&self, root: &str) -> &Value {
        self.recorded
            .iter()
            .rev()
            .find(|(field, _, _)| field == root)
            .map(|(_, _, answer)| answer)
            .unwrap_or_else(|| panic!("no {root} ran"))
    }

    /// The operation's text with each `"<…>"` replaced by the JSON string
    /// it stands for.
    pub fn fill_operation(&self, example: &Example) -> String {
        let mut text = example.text.clone();
        for (placeholder, range) in placeholders(&example.text).into_iter().rev() {
            let value = self.resolve(&placeholder, example);
            text.replace_range(range, &Value::String(value).to_string());
        }
        text
    }

    /// A comment's text with each `<…>` replaced by its value.
    pub fn fill_text(&self, text: &str, example: &Example) -> String {
        let mut filled = String::new();
        let mut rest = text;
        while let Some(start) = rest.find('<') {
            let end = start + rest[start..].find('>').expect("an unclosed placeholder");
            filled.push_str(&rest[..start]);
            filled.push_str(&self.resolve(&rest[start + 1..end], example));
            rest = &rest[end + 1..];
        }
        filled.push_str(rest);
        filled
    }

    fn resolve(&self, placeholder: &str, example: &Example) -> String {
        if placeholder == "password printed at first start" {
            return self.first_start_password.clone();
        }
        if let Some((prefix, address)) = placeholder.split_once(" token from the mail to ") {
            return self.token_from_mail(prefix, address, example);
        }
        let Some((path, source)) = placeholder.split_once(" from ") else {
            panic!(
                "README line {}: cannot read the placeholder <{placeholder}>",
                example.line
            );
        };
        let (root, text) = match source.split_once(" of ") {
            Some((root, text)) => (root, Some(text)),
            None => (source, None),
        };
        let (_, _, answer) = self
            .recorded
            .iter()
            .rev()
            .find(|(field, operation, _)| {
                field == root && text.is_none_or(|text| operation.contains(text))
            })
            .unwrap_or_else(|| {
                panic!(
                    "README line {}: <{placeholder}>: no earlier {source}",
                    example.line
                )
            });
        let value = path
            .split('.')
            .fold(answer, |value, step| match step.parse::<usize>() {
                Ok(index) => &value[index],
                Err(_) => &value[step],
            });
        value
            .as_str()
            .unwrap_or_else(|| {
                panic!(
                    "README line {}: <{placeholder}> is {value} in {answer:#}",
                    example.line
                )
            })
            .to_owned()
    }

    /// The token starting with `prefix` in the newest mail to `address`
    /// that holds one, read as a person reads the mail.
    fn token_from_mail(&self, prefix: &str, address: &str, example: &Example) -> String {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.mail_dir)
            .unwrap_or_else(|e| panic!("{}: {e}", self.mail_dir.display()))
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            .collect();
        // Names are time-ordered.
        files.sort();
        files
            .iter()
            .rev()
            .map(|path| decoded_mail(&std::fs::read_to_string(path).unwrap()))
            .filter(|mail| addressed_to(mail, address))
            .find_map(|mail| token_in(&mail, prefix))
            .unwrap_or_else(|| {
                panic!(
                    "README line {}: no mail to {address} holds a {prefix} token",
                    example.line
                )
            })
    }
}

fn addressed_to(mail: &str, address: &str) -> bool {
    mail.lines()
        .take_while(|line| !line.is_empty())
        .any(|line| line.to_ascii_lowercase().starts_with("to:") && line.contains(address))
}

/// Undoes quoted-printable soft line breaks and `=3D`, which is all a link
/// in our mail needs.
fn decoded_mail(raw: &str) -> String {
    raw.replace("\r\n", "\n")
        .replace("=\n", "")
        .replace("=3D", "=")
}

fn token_in(mail: &str, prefix: &str) -> Option<String> {
    let start = mail.find(prefix)?;
    Some(
        mail[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect(),
    )
}
