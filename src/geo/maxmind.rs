//! [`GeoLocator`] over a memory-mapped MaxMind DB file that is swapped for a new
//! one, without a restart, when the file on disk is replaced.
//!
//! Lookups read the current database through an [`ArcSwap`], so a reload never
//! blocks or fails a lookup in flight: the old map stays alive until its last
//! reader lets go of it.
//!
//! Operators must replace the file by writing a new one and renaming it over the
//! old path (as `geoipupdate` does). Rewriting the mapped file in place would
//! change memory that lookups are reading; a rename leaves the old inode, and
//! with it the old mapping, intact.

use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use maxminddb::{MaxMindDbError, Mmap, Reader};
use tokio::task::JoinHandle;

use super::record::{CityRecord, LanguageOrder};
use super::{GeoLocator, Location, default_languages, is_locatable};

/// Why a database file could not be opened or reloaded.
#[derive(Debug, thiserror::Error)]
pub enum GeoDbError {
    #[error("cannot read GeoIP database {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a usable MaxMind DB file: {source}")]
    Invalid {
        path: PathBuf,
        #[source]
        source: MaxMindDbError,
    },
}

/// What [`MaxMindGeo::reload_if_changed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The file is the one already loaded (or one that already failed to load).
    Unchanged,
    /// A new file was loaded; lookups from now on use it.
    Reloaded,
}

/// Locates addresses with a GeoIP2/GeoLite2 City or DB-IP City Lite database.
#[derive(Debug)]
pub struct MaxMindGeo {
    path: PathBuf,
    languages: Vec<String>,
    current: ArcSwap<LoadedDatabase>,
    /// The file version last tried, loaded or not, so that a broken file is
    /// reported once rather than on every poll. The lock also keeps two
    /// reloads from racing each other.
    last_attempt: Mutex<FileVersion>,
}

#[derive(Debug)]
struct LoadedDatabase {
    reader: Reader<Mmap>,
    /// Languages listed in the file's metadata, tried after the configured ones.
    languages: Vec<String>,
}

/// What identifies one version of the file on disk. The inode changes with
/// every rename-over, which catches replacements that keep size and mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileVersion {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl FileVersion {
    fn of(metadata: &std::fs::Metadata) -> Self {
        Self {
            modified: metadata.modified().ok(),
            len: metadata.len(),
            inode: inode(metadata),
        }
    }
}

#[cfg(unix)]
fn inode(metadata: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(metadata)
}

#[cfg(not(unix))]
fn inode(_metadata: &std::fs::Metadata) -> u64 {
    0
}

impl MaxMindGeo {
    /// Opens the database at `path`. Place names are taken in the order of
    /// `languages` (an empty list means [`default_languages`]), then in any
    /// language the database has.
    pub fn open(path: impl Into<PathBuf>, languages: Vec<String>) -> Result<Self, GeoDbError> {
        let path = path.into();
        let (database, version) = load_database(&path)?;
        let languages = if languages.is_empty() {
            default_languages()
        } else {
            languages
        };
        Ok(Self {
            path,
            languages,
            current: ArcSwap::from_pointee(database),
            last_attempt: Mutex::new(version),
        })
    }

    /// The database file this locator reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the file again if it changed on disk since the last attempt.
    ///
    /// On error the previous database stays in use, and the same broken file is
    /// not tried again until it changes.
    pub fn reload_if_changed(&self) -> Result<ReloadOutcome, GeoDbError> {
        let mut last_attempt = self
            .last_attempt
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let on_disk = std::fs::metadata(&self.path)
            .map(|metadata| FileVersion::of(&metadata))
            .map_err(|source| GeoDbError::Io {
                path: self.path.clone(),
                source,
            })?;
        if on_disk == *last_attempt {
            return Ok(ReloadOutcome::Unchanged);
        }
        match load_database(&self.path) {
            Ok((database, version)) => {
                self.current.store(Arc::new(database));
                *last_attempt = version;
                Ok(ReloadOutcome::Reloaded)
            }
            Err(error) => {
                *last_attempt = on_disk;
                Err(error)
            }
        }
    }

    /// Polls the file every `interval` and reloads it when it changes, logging
    /// the outcome. The task ends once the locator is dropped.
    pub fn spawn_reload_watcher(self: &Arc<Self>, interval: Duration) -> JoinHandle<()> {
        let locator = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick fires at once, and the file was just loaded.
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(locator) = locator.upgrade() else {
                    break;
                };
                let path = locator.path.clone();
                // Opening and mapping a file is blocking I/O.
                let outcome =
                    tokio::task::spawn_blocking(move || locator.reload_if_changed()).await;
                match outcome {
                    Ok(Ok(ReloadOutcome::Reloaded)) => {
                        tracing::info!(path = %path.display(), "reloaded GeoIP database");
                    }
                    Ok(Ok(ReloadOutcome::Unchanged)) => {}
                    Ok(Err(error)) => {
                        tracing::warn!(
                            error = %error,
                            "GeoIP database changed on disk but could not be loaded; keeping the previous one"
                        );
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "GeoIP database reload task failed");
                    }
                }
            }
        })
    }
}

impl GeoLocator for MaxMindGeo {
    fn build_epoch(&self) -> Option<u64> {
        Some(self.current.load().reader.metadata().build_epoch)
    }

    fn locate(&self, ip: IpAddr) -> Option<Location> {
        // A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d.
        let ip = ip.to_canonical();
        if !is_locatable(ip) {
            return None;
        }
        let database = self.current.load();
        let record = database
            .reader
            .lookup(ip)
            .and_then(|lookup| lookup.decode::<CityRecord<'_>>());
        match record {
            Ok(record) => record?.into_location(LanguageOrder {
                preferred: &self.languages,
                database: &database.languages,
            }),
            Err(error) => {
                // A record of an unexpected shape is a database problem, not
                // the caller's: no location, and a trace for whoever digs.
                tracing::debug!(%ip, error = %error, "GeoIP lookup failed");
                None
            }
        }
    }
}

/// Maps the file and reads its metadata. The version is taken from the opened
/// file itself, so it describes exactly what was mapped even if the path is
/// replaced meanwhile.
fn load_database(path: &Path) -> Result<(LoadedDatabase, FileVersion), GeoDbError> {
    let io_error = |source| GeoDbError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    let version = FileVersion::of(&file.metadata().map_err(io_error)?);
    // SAFETY: the mapping is only sound while nobody rewrites the file in
    // place. Updates replace it by rename (see the module documentation),
    // which leaves this inode and so this mapping untouched.
    let map = unsafe { Mmap::map(&file) }.map_err(io_error)?;
    let reader = Reader::from_source(map).map_err(|source| GeoDbError::Invalid {
        path: path.to_owned(),
        source,
    })?;
    let languages = reader.metadata().languages.clone();
    Ok((LoadedDatabase { reader, languages }, version))
}
