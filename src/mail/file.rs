//! [`Mailer`] that writes each message as an RFC 5322 `.eml` file under
//! `DATA_DIR/mail/` and logs it: the embedded default when no SMTP server is
//! configured, so a local install still shows what would have been sent.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use lettre::message::Mailbox;

use super::{MailError, Mailer, OutgoingMail, build_message, parse_mailbox};

/// Writes mail to files instead of sending it.
#[derive(Clone, Debug)]
pub struct FileMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl FileMailer {
    /// A mailer writing to `data_dir/mail/` (created when the first message
    /// is written) as `mail_from`.
    pub fn new(data_dir: &Path, mail_from: &str) -> Result<FileMailer, MailError> {
        Ok(FileMailer {
            dir: data_dir.join("mail"),
            from: parse_mailbox(mail_from)?,
        })
    }

    /// The folder the `.eml` files go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the message and gives the file's path.
    pub async fn write(&self, mail: &OutgoingMail) -> Result<PathBuf, MailError> {
        let message = build_message(&self.from, mail)?;
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| MailError::io(format!("creating {}", self.dir.display()), e))?;
        // Time-ordered names sort in the order the mail was written.
        let name = uuid::Uuid::now_v7();
        let path = self.dir.join(format!("{name}.eml"));
        // Written under another name first, so that whoever watches the
        // folder never picks up half a message.
        let partial = self.dir.join(format!(".{name}.eml.part"));
        let written = async {
            tokio::fs::write(&partial, message.formatted()).await?;
            tokio::fs::rename(&partial, &path).await
        }
        .await;
        if let Err(error) = written {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(MailError::io(format!("writing {}", path.display()), error));
        }
        tracing::info!(
            to = %mail.to,
            subject = %mail.subject,
            path = %path.display(),
            "mail written to a file (no SMTP_URL configured)"
        );
        Ok(path)
    }
}

#[async_trait]
impl Mailer for FileMailer {
    async fn send(&self, mail: OutgoingMail) -> Result<(), MailError> {
        self.write(&mail).await.map(|_| ())
    }
}
