//! The instance's temporary export files (`DATA_DIR/tmp`): removed by the
//! run that writes them, kept fresh while it lives, and swept when their
//! run died with its process.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

/// Removes the temporary file however the run ends (error, cancel, panic,
/// a dropped future); only a dead process leaves it, for [`sweep`].
pub struct TempFile(PathBuf);

impl TempFile {
    pub fn new(path: PathBuf) -> TempFile {
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(&self.0)
            && error.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(%error, path = %self.0.display(), "cannot remove a temporary export file");
        }
    }
}

/// Marks a live attempt's file as in use. The heartbeat calls it at least
/// every third of a lease, so a file left untouched for a whole lease
/// belongs to no live attempt, even while it is only being read (uploaded).
pub fn keep_fresh(path: &Path) {
    let touched = std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(SystemTime::now()));
    if let Err(error) = touched
        && error.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(%error, path = %path.display(), "cannot mark a temporary export file as in use");
    }
}

/// Removes the files of `dir` last modified more than `older_than` before
/// `now`, and returns how many went. Folders and files it cannot read are
/// left alone.
pub fn sweep(dir: &Path, older_than: Duration, now: SystemTime) -> io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        if !metadata.is_file() {
            continue;
        }
        let stale = metadata
            .modified()
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
            .is_some_and(|age| age > older_than);
        if !stale {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(%error, path = %entry.path().display(), "cannot remove a stale export file");
            }
        }
    }
    Ok(removed)
}

/// Sweeps `dir` now and then every `lease` until `stop`: files of attempts
/// that died with a crashed process go within two leases.
pub fn spawn_sweeper(dir: PathBuf, lease: Duration, stop: CancellationToken) {
    tokio::spawn(async move {
        loop {
            let (dir_now, now) = (dir.clone(), SystemTime::now());
            match tokio::task::spawn_blocking(move || sweep(&dir_now, lease, now)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(removed)) => {
                    tracing::info!(removed, dir = %dir.display(), "removed stale temporary export files");
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, dir = %dir.display(), "cannot sweep the temporary export files");
                }
                Err(error) => tracing::warn!(%error, "the temporary file sweep stopped"),
            }
            tokio::select! {
                _ = tokio::time::sleep(lease) => {}
                _ = stop.cancelled() => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_files_go_and_fresh_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join("export-old.csv");
        let fresh = dir.path().join("export-new.csv");
        std::fs::write(&stale, b"old").unwrap();
        std::fs::write(&fresh, b"new").unwrap();
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        std::fs::create_dir(dir.path().join("folder")).unwrap();

        let removed = sweep(dir.path(), Duration::from_secs(30), SystemTime::now()).unwrap();
        assert_eq!(removed, 1);
        assert!(!stale.exists());
        assert!(fresh.exists());
        assert!(dir.path().join("folder").exists());
    }

    #[test]
    fn a_kept_fresh_file_survives_the_sweep() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("export-live.csv");
        std::fs::write(&live, b"rows").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&live)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        keep_fresh(&live);
        assert_eq!(
            sweep(dir.path(), Duration::from_secs(30), SystemTime::now()).unwrap(),
            0
        );
        assert!(live.exists());
    }
}
