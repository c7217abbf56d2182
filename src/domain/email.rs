//! An email address that has been checked once at the boundary.

use std::fmt;

use crate::error::AppError;

const MAX_LEN: usize = 254;

/// A syntactically valid email address, lower-cased so that comparisons and
/// uniqueness ignore case.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses `raw`; `field` names the input in the error a client gets.
    pub fn parse(raw: &str, field: &str) -> Result<EmailAddress, AppError> {
        let candidate = raw.trim().to_lowercase();
        let invalid = || AppError::bad_input(field, "is not a valid email address");
        if candidate.is_empty() || candidate.len() > MAX_LEN {
            return Err(invalid());
        }
        let (local, domain) = candidate.rsplit_once('@').ok_or_else(invalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if local_ok && domain_ok {
            Ok(EmailAddress(candidate))
        } else {
            Err(invalid())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_lowercases_them() {
        for (raw, expected) in [
            ("Ana@Example.com", "ana@example.com"),
            (
                "  first.last+tag@mail.example.co.uk ",
                "first.last+tag@mail.example.co.uk",
            ),
            ("josé@correo.es", "josé@correo.es"),
        ] {
            assert_eq!(
                EmailAddress::parse(raw, "email").unwrap().as_str(),
                expected
            );
        }
    }

    #[test]
    fn refuses_what_cannot_be_delivered() {
        for raw in [
            "",
            "plain",
            "@example.com",
            "ana@",
            "ana@localhost",
            "ana@@example.com",
            "ana@exa mple.com",
            ".ana@example.com",
            "ana..b@example.com",
            "ana@-x.com",
            "ana@example..com",
            "a<b>@example.com",
        ] {
            let error = EmailAddress::parse(raw, "email").unwrap_err();
            assert_eq!(error.code(), "BAD_USER_INPUT", "{raw:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(EmailAddress::parse(&long, "email").is_err());
    }
}
