//! The contact fields a form or an agent may fill, and the rules for their
//! values.

use entity::contact;
use sea_orm::Set;
use serde_json::Value;

use crate::error::{AppError, AppResult};

const MAX_TEXT_LEN: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContactField {
    Name,
    Email,
    Phone,
    Company,
}

impl ContactField {
    pub const ALL: [ContactField; 4] = [
        ContactField::Name,
        ContactField::Email,
        ContactField::Phone,
        ContactField::Company,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ContactField::Name => "name",
            ContactField::Email => "email",
            ContactField::Phone => "phone",
            ContactField::Company => "company",
        }
    }

    pub fn parse(name: &str) -> Option<ContactField> {
        ContactField::ALL
            .into_iter()
            .find(|field| field.as_str() == name)
    }

    /// The contact's value of this field: the one place that maps fields
    /// to columns.
    pub fn value_of(self, contact: &contact::Model) -> Option<&str> {
        match self {
            ContactField::Name => contact.name.as_deref(),
            ContactField::Email => contact.email.as_deref(),
            ContactField::Phone => contact.phone.as_deref(),
            ContactField::Company => contact.company.as_deref(),
        }
    }

    /// Sets this field's column in a change to a contact.
    pub fn set(self, active: &mut contact::ActiveModel, value: Option<String>) {
        match self {
            ContactField::Name => active.name = Set(value),
            ContactField::Email => active.email = Set(value),
            ContactField::Phone => active.phone = Set(value),
            ContactField::Company => active.company = Set(value),
        }
    }

    /// Checks and normalises a value for this field. `input` names the input
    /// in errors; `country` (ISO code) reads national phone numbers.
    pub fn parse_value(self, raw: &str, input: &str, country: Option<&str>) -> AppResult<String> {
        match self {
            ContactField::Name | ContactField::Company => parse_text(raw, input),
            ContactField::Email => {
                crate::domain::email::EmailAddress::parse(raw, input).map(|e| e.into_string())
            }
            ContactField::Phone => parse_phone(raw, input, country),
        }
    }
}

/// A single line of text: trimmed, not empty, bounded, no control characters.
pub fn parse_text(raw: &str, input: &str) -> AppResult<String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(AppError::bad_input(input, "must not be empty"));
    }
    if text.chars().count() > MAX_TEXT_LEN {
        return Err(AppError::bad_input(
            input,
            format!("must have at most {MAX_TEXT_LEN} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(AppError::bad_input(
            input,
            "must not contain control characters",
        ));
    }
    Ok(text.to_owned())
}

/// A phone number in E.164 (`+34612345678`). A national number is read in
/// `country` (the contact's country), when known.
pub fn parse_phone(raw: &str, input: &str, country: Option<&str>) -> AppResult<String> {
    let invalid = || AppError::bad_input(input, "is not a valid phone number");
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 40 {
        return Err(invalid());
    }
    let region = country.and_then(|code| {
        code.to_ascii_uppercase()
            .parse::<phonenumber::country::Id>()
            .ok()
    });
    let region = if raw.starts_with('+') { None } else { region };
    let number = phonenumber::parse(region, raw).map_err(|_| invalid())?;
    if !phonenumber::is_valid(&number) {
        return Err(invalid());
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// Where a contact field's value came from. The form fills gaps and may
/// correct its own earlier answers, but never what an agent or the site's
/// verified identity set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldSource {
    Form,
    Agent,
    Identity,
}

impl FieldSource {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldSource::Form => "FORM",
            FieldSource::Agent => "AGENT",
            FieldSource::Identity => "IDENTITY",
        }
    }

    pub fn of(sources: &Value, field: &str) -> Option<FieldSource> {
        match sources.get(field)?.as_str()? {
            "FORM" => Some(FieldSource::Form),
            "AGENT" => Some(FieldSource::Agent),
            "IDENTITY" => Some(FieldSource::Identity),
            _ => None,
        }
    }

    pub fn set(self, sources: &mut Value, field: &str) {
        if !sources.is_object() {
            *sources = Value::Object(Default::default());
        }
        if let Some(map) = sources.as_object_mut() {
            map.insert(field.to_owned(), Value::String(self.as_str().to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_become_e164() {
        assert_eq!(
            parse_phone("+34 612 34 56 78", "phone", None).unwrap(),
            "+34612345678"
        );
        assert_eq!(
            parse_phone("612 345 678", "phone", Some("es")).unwrap(),
            "+34612345678"
        );
        assert_eq!(
            parse_phone("(415) 555-2671", "phone", Some("US")).unwrap(),
            "+14155552671"
        );
        for bad in ["", "12", "not a phone", "612 345 678", "+999 1234"] {
            assert_eq!(
                parse_phone(bad, "phone", None).unwrap_err().code(),
                "BAD_USER_INPUT",
                "{bad}"
            );
        }
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(parse_text("  Ana  ", "name").unwrap(), "Ana");
        assert!(parse_text("", "name").is_err());
        assert!(parse_text(&"x".repeat(201), "name").is_err());
        assert!(parse_text("a\u{0}b", "name").is_err());
    }

    #[test]
    fn sources_round_trip() {
        let mut sources = serde_json::json!({});
        FieldSource::Agent.set(&mut sources, "email");
        assert_eq!(FieldSource::of(&sources, "email"), Some(FieldSource::Agent));
        assert_eq!(FieldSource::of(&sources, "name"), None);
        assert_eq!(ContactField::parse("phone"), Some(ContactField::Phone));
        assert_eq!(ContactField::parse("age"), None);
    }
}
