//! The files this server keeps are its own: no group or other access, for
//! what it creates from now on (the process umask) and for what is already
//! in DATA_DIR (the link-signing key, the database, exports, mail).

use std::fs::{self, Metadata, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rustix::fs::Mode;

/// Bits that grant the group or others anything.
const GROUP_AND_OTHER: u32 = 0o077;

/// Files and folders created by this process from now on are owner-only.
pub fn create_owner_only() {
    rustix::process::umask(Mode::from_raw_mode(GROUP_AND_OTHER));
}

/// Takes group and other access from `root` and everything under it.
/// Symbolic links are left alone, and not followed: what they point at
/// need not be ours. A path that cannot be changed is logged and skipped,
/// so a folder shared with something else does not stop the server.
pub fn tighten(root: &Path) {
    match fs::symlink_metadata(root) {
        Ok(metadata) => tighten_entry(root, &metadata),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => warn(root, &error),
    }
}

fn tighten_entry(path: &Path, metadata: &Metadata) {
    if metadata.file_type().is_symlink() {
        return;
    }
    let mode = metadata.permissions().mode();
    if mode & GROUP_AND_OTHER != 0
        && let Err(error) = fs::set_permissions(path, Permissions::from_mode(mode & 0o700))
    {
        warn(path, &error);
    }
    if !metadata.is_dir() {
        return;
    }
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        Err(error) => return warn(path, &error),
    };
    for entry in entries {
        // An entry's own metadata: a link is seen as a link.
        match entry.and_then(|entry| Ok((entry.path(), entry.metadata()?))) {
            Ok((path, metadata)) => tighten_entry(&path, &metadata),
            Err(error) => warn(path, &error),
        }
    }
}

fn warn(path: &Path, error: &io::Error) {
    tracing::warn!(path = %path.display(), %error, "cannot make this owner-only");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn group_and_other_access_is_taken_from_everything_but_what_links_point_at() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let shared = outside.path().join("shared.txt");
        fs::write(&shared, "x").unwrap();
        fs::set_permissions(&shared, Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(outside.path(), Permissions::from_mode(0o755)).unwrap();

        let folder = root.path().join("exports");
        fs::create_dir(&folder).unwrap();
        let file = folder.join("a.csv");
        fs::write(&file, "x").unwrap();
        let script = root.path().join("run.sh");
        fs::write(&script, "x").unwrap();
        for (path, mode) in [(&folder, 0o755), (&file, 0o644), (&script, 0o750)] {
            fs::set_permissions(path, Permissions::from_mode(mode)).unwrap();
        }
        std::os::unix::fs::symlink(&shared, root.path().join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("linked-folder")).unwrap();

        tighten(root.path());

        assert_eq!(mode(&folder), 0o700);
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&script), 0o700);
        assert_eq!(mode(&shared), 0o644, "a link's target is left alone");
        assert_eq!(
            mode(outside.path()),
            0o755,
            "a linked folder is not followed"
        );
    }
}
