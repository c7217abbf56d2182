//! IP geolocation: where a visitor's address is, from a MaxMind-format database.
//!
//! Callers hold an `Arc<dyn GeoLocator>`: [`MaxMindGeo`] when `GEOIP_DB` names a
//! GeoIP2/GeoLite2 City or DB-IP City Lite file, [`NoGeo`] otherwise. Both answer
//! `None` for addresses that have no place on the map (private, loopback,
//! documentation ranges, ...) and for addresses the database does not know, so a
//! missing location is never an error for the caller.

mod locatable;
mod maxmind;
mod record;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use locatable::is_locatable;
pub use maxmind::{GeoDbError, MaxMindGeo, ReloadOutcome};

/// Language used for place names when none is configured.
pub const DEFAULT_LANGUAGE: &str = "en";

/// Where an IP address is, as far as the database knows.
///
/// Every field is optional because databases differ in detail: a country-level
/// entry has only the country, many countries have no second subdivision, and
/// some networks have no postal code or time zone.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Location {
    /// ISO 3166-1 alpha-2 code, e.g. `ES`.
    pub country_code: Option<String>,
    pub country_name: Option<String>,
    /// First (largest) subdivision, e.g. Andalusia in Spain or California in the US.
    pub state_name: Option<String>,
    /// ISO 3166-2 code of the state without the country prefix, e.g. `AN` or `CA`.
    pub state_code: Option<String>,
    /// Second subdivision where the country has one, e.g. Málaga in Andalusia.
    pub province_name: Option<String>,
    pub province_code: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    /// IANA time zone name, e.g. `Europe/Madrid`.
    pub time_zone: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// Radius in kilometres around the coordinates within which the address
    /// most likely is; large values mean the coordinates are only a centroid.
    pub accuracy_radius_km: Option<u16>,
}

/// Resolves an IP address to a [`Location`].
pub trait GeoLocator: Send + Sync {
    /// The location of `ip`, or `None` when the address is not locatable or not
    /// in the database.
    fn locate(&self, ip: IpAddr) -> Option<Location>;

    /// When the database in use was built (Unix seconds), if there is one.
    fn build_epoch(&self) -> Option<u64> {
        None
    }
}

/// The locator used when no database is configured: it never knows a location.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoGeo;

impl GeoLocator for NoGeo {
    fn locate(&self, _ip: IpAddr) -> Option<Location> {
        None
    }
}

/// The default name language order, `["en"]`.
pub fn default_languages() -> Vec<String> {
    vec![DEFAULT_LANGUAGE.to_owned()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_geo_never_knows_a_location() {
        let public: IpAddr = "8.8.8.8".parse().expect("valid address");
        assert_eq!(NoGeo.locate(public), None);
    }
}
