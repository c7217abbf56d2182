//! Outgoing mail (export links to agents) behind one small trait, sent over
//! SMTP with lettre or, as the embedded default, written as `.eml` files.
//!
//! Callers see only [`Mailer`]; [`MailError::is_transient`] tells a job
//! whether sending again later may work.

mod file;
mod smtp;

use std::io;

use async_trait::async_trait;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};

use crate::storage::io_error_is_transient;

pub use file::FileMailer;
pub use smtp::SmtpMailer;

/// One message to one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingMail {
    /// A single address, `agent@example.com` or `Ann Agent <agent@example.com>`.
    pub to: String,
    pub subject: String,
    pub text_body: String,
    /// Sent as the alternative to `text_body` for mail clients that show HTML.
    pub html_body: Option<String>,
}

/// Something that delivers mail.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, message: OutgoingMail) -> Result<(), MailError>;

    /// Whether the mail server answers, for the readiness probe; `None` for
    /// a mailer with no server (files).
    async fn check_remote(&self) -> Option<Result<(), MailError>> {
        None
    }
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    #[error("invalid mail address {address:?}: {source}")]
    InvalidAddress {
        address: String,
        #[source]
        source: lettre::address::AddressError,
    },
    #[error("could not build the message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("mail configuration: {0}")]
    Config(String),
}

impl MailError {
    /// Whether sending the same message later may succeed: the server could
    /// not be reached or timed out, or answered with a 4xx reply (greylisting,
    /// full mailbox, rate limits). 5xx replies, bad addresses and bad settings
    /// stay as they are.
    pub fn is_transient(&self) -> bool {
        match self {
            MailError::Smtp(error) => smtp_error_is_transient(error),
            MailError::Io { source, .. } => io_error_is_transient(source),
            MailError::InvalidAddress { .. } | MailError::Build(_) | MailError::Config(_) => false,
        }
    }

    fn io(context: impl Into<String>, source: io::Error) -> MailError {
        MailError::Io {
            context: context.into(),
            source,
        }
    }
}

fn smtp_error_is_transient(error: &lettre::transport::smtp::Error) -> bool {
    if error.is_transient() || error.is_timeout() {
        return true;
    }
    // What lettre does not sort is a failure to connect, a broken connection
    // or an unreadable reply: all worth another try. A 5xx reply, our own
    // misuse, a TLS failure (certificates, versions) or a shut transport is not.
    !(error.is_permanent() || error.is_client() || error.is_tls() || error.is_transport_shutdown())
}

/// Parses a single mailbox, refusing lists: an export link goes to exactly
/// the agent who asked.
fn parse_mailbox(address: &str) -> Result<Mailbox, MailError> {
    address
        .trim()
        .parse::<Mailbox>()
        .map_err(|source| MailError::InvalidAddress {
            address: address.to_owned(),
            source,
        })
}

/// The RFC 5322 message for `mail` from `from`: plain text, or
/// multipart/alternative with the HTML version. Date and Message-ID are set,
/// so that files and SMTP deliveries look alike.
fn build_message(from: &Mailbox, mail: &OutgoingMail) -> Result<Message, MailError> {
    let to = parse_mailbox(&mail.to)?;
    let builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .message_id(None);
    let message = match &mail.html_body {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            mail.text_body.clone(),
            html.clone(),
        ))?,
        None => builder.singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(mail.text_body.clone()),
        )?,
    };
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(to: &str) -> OutgoingMail {
        OutgoingMail {
            to: to.into(),
            subject: "Your export".into(),
            text_body: "Download: http://example.test/x.csv".into(),
            html_body: None,
        }
    }

    fn from() -> Mailbox {
        parse_mailbox("Contacts <contacts@example.test>").expect("from")
    }

    #[test]
    fn one_recipient_only() {
        let message = build_message(&from(), &mail("Ann <ann@example.test>")).expect("message");
        let to: Vec<String> = message
            .envelope()
            .to()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(to, vec!["ann@example.test".to_owned()]);
        for bad in ["ann@example.test, bob@example.test", "not an address", ""] {
            assert!(
                matches!(
                    build_message(&from(), &mail(bad)),
                    Err(MailError::InvalidAddress { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn headers_cannot_be_injected_through_the_subject() {
        let mut outgoing = mail("ann@example.test");
        outgoing.subject = "hi\r\nBcc: eve@example.test".into();
        let message = build_message(&from(), &outgoing).expect("message");
        let text = String::from_utf8(message.formatted()).expect("utf-8");
        assert!(!text.contains("\r\nBcc:"), "{text}");
        assert_eq!(message.envelope().to().len(), 1);
    }

    #[test]
    fn html_goes_as_alternative() {
        let mut outgoing = mail("ann@example.test");
        outgoing.html_body = Some("<a href=\"http://example.test/x.csv\">Download</a>".into());
        let message = build_message(&from(), &outgoing).expect("message");
        let text = String::from_utf8(message.formatted()).expect("utf-8");
        assert!(text.contains("multipart/alternative"), "{text}");
        assert!(text.contains("text/html"), "{text}");
        assert!(text.contains("Message-ID:"), "{text}");
    }

    #[test]
    fn bad_settings_are_not_transient() {
        assert!(!MailError::Config("x".into()).is_transient());
        let full = MailError::io("write", io::Error::from(io::ErrorKind::StorageFull));
        assert!(full.is_transient());
    }
}
