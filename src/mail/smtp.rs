//! [`Mailer`] over SMTP with lettre, configured from `SMTP_URL` and `MAIL_FROM`.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{MailError, Mailer, OutgoingMail, build_message, parse_mailbox};

/// How long one SMTP command may take before the attempt counts as failed
/// (and transient).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends mail through an SMTP server, keeping a small pool of connections.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The server, for logs; the URL itself may hold a password.
    server: String,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for `smtp_url` sending as `mail_from`. URLs as lettre reads
    /// them:
    /// - `smtp://host:25`: plain SMTP (port 25 by default),
    /// - `smtp://host:587?tls=required` (or `tls=opportunistic`): STARTTLS,
    /// - `smtps://host:465`: TLS from the start,
    ///
    /// with `user:password@` before the host to log in (percent-encode
    /// special characters) and an optional `/name` path for the EHLO name.
    ///
    /// Must be called inside a Tokio runtime: the connection pool starts a
    /// task that closes idle connections.
    pub fn from_url(smtp_url: &str, mail_from: &str) -> Result<SmtpMailer, MailError> {
        let from = parse_mailbox(mail_from)?;
        // lettre would panic while spawning that task; an error says more.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(MailError::Config(
                "the SMTP mailer must be created inside a Tokio runtime".into(),
            ));
        }
        // lettre's errors for a bad URL do not echo it, so a password in it
        // does not reach the logs.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(|e| MailError::Config(format!("SMTP_URL: {e}")))?
            .timeout(Some(COMMAND_TIMEOUT))
            .build();
        Ok(SmtpMailer {
            transport,
            from,
            server: server_of(smtp_url),
        })
    }

    /// Whether the server can be reached and answers a NOOP; for readiness
    /// checks.
    pub async fn test_connection(&self) -> Result<bool, MailError> {
        Ok(self.transport.test_connection().await?)
    }
}

/// `scheme://host:port` of the URL, without credentials.
fn server_of(smtp_url: &str) -> String {
    let (scheme, rest) = smtp_url.split_once("://").unwrap_or(("smtp", smtp_url));
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    format!("{scheme}://{host}")
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: OutgoingMail) -> Result<(), MailError> {
        let message = build_message(&self.from, &mail)?;
        self.transport.send(message).await?;
        tracing::info!(
            to = %mail.to,
            subject = %mail.subject,
            server = %self.server,
            "mail sent"
        );
        Ok(())
    }

    async fn check_remote(&self) -> Option<Result<(), MailError>> {
        Some(match self.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(MailError::Config(
                "the SMTP server did not answer NOOP".into(),
            )),
            Err(error) => Err(error),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_lettre_reads() {
        for url in [
            "smtp://localhost:2525",
            "smtp://user:pa%40ss@mail.example.test:587?tls=required",
            "smtp://mail.example.test?tls=opportunistic",
            "smtps://user:pass@mail.example.test",
        ] {
            assert!(
                SmtpMailer::from_url(url, "contacts@example.test").is_ok(),
                "{url}"
            );
        }
    }

    #[tokio::test]
    async fn bad_settings_are_refused_without_echoing_secrets() {
        let error = SmtpMailer::from_url("ftp://user:hunter2@host", "contacts@example.test")
            .expect_err("bad scheme");
        assert!(matches!(error, MailError::Config(_)));
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(!error.is_transient());
        assert!(matches!(
            SmtpMailer::from_url("smtp://localhost", "not an address"),
            Err(MailError::InvalidAddress { .. })
        ));
    }

    #[test]
    fn outside_a_runtime_is_an_error_not_a_panic() {
        assert!(matches!(
            SmtpMailer::from_url("smtp://localhost", "contacts@example.test"),
            Err(MailError::Config(_))
        ));
    }

    #[tokio::test]
    async fn debug_and_logs_hide_the_password() {
        let mailer = SmtpMailer::from_url(
            "smtp://user:hunter2@mail.example.test:587?tls=required",
            "contacts@example.test",
        )
        .expect("mailer");
        let shown = format!("{mailer:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("smtp://mail.example.test:587"), "{shown}");
    }
}
