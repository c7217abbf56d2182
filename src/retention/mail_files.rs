//! `.eml` files of the file mailer past their retention, judged by their
//! modification time (when the message was written).

use std::path::Path;
use std::time::SystemTime;

use chrono::{DateTime, Utc};

/// Deletes the messages in `dir` written before `cutoff`, and partial
/// files left by an interrupted write as old; gives how many went. A
/// missing folder (no mail written yet, or SMTP in use) is nothing to do.
pub async fn delete_mail_files_before(dir: &Path, cutoff: DateTime<Utc>) -> u64 {
    let cutoff = SystemTime::from(cutoff);
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return 0,
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "cannot list the mail folder for retention");
            return 0;
        }
    };
    let mut deleted = 0;
    loop {
        let entry = match entries.next_entry().await {
            Ok(Some(entry)) => entry,
            Ok(None) => return deleted,
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "cannot list the mail folder for retention");
                return deleted;
            }
        };
        if !is_mail_file(&entry.file_name().to_string_lossy()) {
            continue;
        }
        // Not followed: a symbolic link is not a message of ours.
        let Ok(metadata) = tokio::fs::symlink_metadata(entry.path()).await else {
            continue;
        };
        let written = metadata.modified().unwrap_or(SystemTime::now());
        if !metadata.is_file() || written >= cutoff {
            continue;
        }
        match tokio::fs::remove_file(entry.path()).await {
            Ok(()) => deleted += 1,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(path = %entry.path().display(), %error, "cannot delete an old mail file");
            }
        }
    }
}

/// A message (`<id>.eml`) or one being written (`.<id>.eml.part`).
fn is_mail_file(name: &str) -> bool {
    name.ends_with(".eml") || (name.starts_with('.') && name.ends_with(".eml.part"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_messages_and_their_partial_files_count() {
        assert!(is_mail_file("0192-abc.eml"));
        assert!(is_mail_file(".0192-abc.eml.part"));
        assert!(!is_mail_file("notes.txt"));
        assert!(!is_mail_file("0192.eml.bak"));
    }

    #[tokio::test]
    async fn old_messages_go_and_new_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.eml");
        let new = dir.path().join("new.eml");
        let other = dir.path().join("old.txt");
        for path in [&old, &new, &other] {
            std::fs::write(path, b"x").unwrap();
        }
        let long_ago = SystemTime::now() - std::time::Duration::from_secs(40 * 24 * 3600);
        for path in [&old, &other] {
            std::fs::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        let cutoff = Utc::now() - chrono::Duration::days(30);
        assert_eq!(delete_mail_files_before(dir.path(), cutoff).await, 1);
        assert!(!old.exists() && new.exists() && other.exists());
        let missing = dir.path().join("nothing here");
        assert_eq!(delete_mail_files_before(&missing, cutoff).await, 0);
    }
}
