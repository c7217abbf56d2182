//! The part of a GeoIP2 City record we read, and how it becomes a [`Location`].
//!
//! Our own borrowed structs rather than `maxminddb::geoip2::City`: names are
//! kept as a map so any language tag the database carries can be chosen (the
//! crate's `Names` knows a fixed set), and fields we never show (traits,
//! registered country, continent) are skipped instead of decoded.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Location;

/// Localized names keyed by language tag (`en`, `de`, `pt-BR`, ...).
type Names<'a> = BTreeMap<&'a str, &'a str>;

#[derive(Debug, Deserialize)]
pub(super) struct CityRecord<'a> {
    #[serde(borrow, default)]
    country: Option<Place<'a>>,
    /// Ordered from largest to smallest: state first, then province.
    #[serde(borrow, default)]
    subdivisions: Vec<Place<'a>>,
    #[serde(borrow, default)]
    city: Option<Place<'a>>,
    #[serde(borrow, default)]
    postal: Option<Postal<'a>>,
    #[serde(borrow, default)]
    location: Option<Coordinates<'a>>,
}

/// A country, subdivision or city: the schema gives them the same shape
/// (cities simply have no ISO code).
#[derive(Debug, Deserialize)]
struct Place<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
    #[serde(borrow, default)]
    names: Names<'a>,
}

#[derive(Debug, Deserialize)]
struct Postal<'a> {
    #[serde(borrow, default)]
    code: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
struct Coordinates<'a> {
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
    #[serde(default)]
    accuracy_radius: Option<u16>,
    #[serde(borrow, default)]
    time_zone: Option<&'a str>,
}

/// The order in which name languages are tried: the configured ones first,
/// then the database's own languages, so a place named only in another
/// language still gets a name.
#[derive(Debug, Clone, Copy)]
pub(super) struct LanguageOrder<'a> {
    pub(super) preferred: &'a [String],
    pub(super) database: &'a [String],
}

impl LanguageOrder<'_> {
    fn pick_name(&self, names: &Names<'_>) -> Option<String> {
        self.preferred
            .iter()
            .chain(self.database)
            .find_map(|language| names.get(language.as_str()))
            // A name in a language the metadata does not list is still better
            // than no name.
            .or_else(|| names.values().next())
            .map(|name| (*name).to_owned())
    }
}

impl CityRecord<'_> {
    /// The location this record describes, or `None` when it holds nothing we
    /// show (an empty record would otherwise look like a known location).
    pub(super) fn into_location(self, languages: LanguageOrder<'_>) -> Option<Location> {
        let mut subdivisions = self.subdivisions.into_iter();
        let state = subdivisions.next();
        let province = subdivisions.next();
        let coordinates = self.location;
        let location = Location {
            country_code: self
                .country
                .as_ref()
                .and_then(|country| country.iso_code)
                .map(str::to_owned),
            country_name: self
                .country
                .as_ref()
                .and_then(|country| languages.pick_name(&country.names)),
            state_name: state
                .as_ref()
                .and_then(|state| languages.pick_name(&state.names)),
            state_code: state
                .as_ref()
                .and_then(|state| state.iso_code)
                .map(str::to_owned),
            province_name: province
                .as_ref()
                .and_then(|province| languages.pick_name(&province.names)),
            province_code: province
                .as_ref()
                .and_then(|province| province.iso_code)
                .map(str::to_owned),
            city: self
                .city
                .as_ref()
                .and_then(|city| languages.pick_name(&city.names)),
            postal_code: self
                .postal
                .and_then(|postal| postal.code)
                .map(str::to_owned),
            time_zone: coordinates
                .as_ref()
                .and_then(|coordinates| coordinates.time_zone)
                .map(str::to_owned),
            latitude: coordinates
                .as_ref()
                .and_then(|coordinates| coordinates.latitude),
            longitude: coordinates
                .as_ref()
                .and_then(|coordinates| coordinates.longitude),
            accuracy_radius_km: coordinates.and_then(|coordinates| coordinates.accuracy_radius),
        };
        (location != Location::default()).then_some(location)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn languages(tags: &[&str]) -> Vec<String> {
        tags.iter().map(|tag| (*tag).to_owned()).collect()
    }

    #[test]
    fn configured_language_wins_then_database_order_then_any() {
        let names: Names<'_> = [("de", "Spanien"), ("en", "Spain"), ("xx", "Other")].into();
        let database = languages(&["en", "de"]);

        let german_first = languages(&["de", "en"]);
        let order = LanguageOrder {
            preferred: &german_first,
            database: &database,
        };
        assert_eq!(order.pick_name(&names).as_deref(), Some("Spanien"));

        let french = languages(&["fr"]);
        let order = LanguageOrder {
            preferred: &french,
            database: &database,
        };
        assert_eq!(order.pick_name(&names).as_deref(), Some("Spain"));

        let only_unlisted: Names<'_> = [("xx", "Other")].into();
        assert_eq!(order.pick_name(&only_unlisted).as_deref(), Some("Other"));
        assert_eq!(order.pick_name(&Names::new()), None);
    }
}
