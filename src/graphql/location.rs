//! Where a contact or chat is, as GraphQL shows and takes it.

use async_graphql::{InputObject, SimpleObject};

use crate::geo;

/// A place resolved from an IP address, or corrected by an agent. State is
/// the first subdivision of the country, province the second.
#[derive(SimpleObject, Clone)]
#[graphql(name = "Location")]
pub struct LocationView {
    /// ISO 3166-1 alpha-2, e.g. ES.
    pub country_code: Option<String>,
    /// The country's name in English, e.g. Spain.
    pub country_name: Option<String>,
    /// The first subdivision's name, e.g. Andalusia.
    pub state_name: Option<String>,
    /// ISO 3166-2 subdivision code without the country, e.g. AN.
    pub state_code: Option<String>,
    /// The second subdivision's name where the country has one, e.g. Málaga.
    pub province_name: Option<String>,
    /// The second subdivision's code, e.g. MA.
    pub province_code: Option<String>,
    /// The city's name, e.g. Málaga.
    pub city: Option<String>,
    /// The postal code, where the database has one.
    pub postal_code: Option<String>,
    /// IANA time zone, e.g. Europe/Madrid.
    pub time_zone: Option<String>,
    /// Latitude in degrees, -90 to 90.
    pub latitude: Option<f64>,
    /// Longitude in degrees, -180 to 180.
    pub longitude: Option<f64>,
    /// How far from the coordinates the address may be, in km.
    pub accuracy_radius_km: Option<u16>,
}

impl From<geo::Location> for LocationView {
    fn from(location: geo::Location) -> Self {
        LocationView {
            country_code: location.country_code,
            country_name: location.country_name,
            state_name: location.state_name,
            state_code: location.state_code,
            province_name: location.province_name,
            province_code: location.province_code,
            city: location.city,
            postal_code: location.postal_code,
            time_zone: location.time_zone,
            latitude: location.latitude,
            longitude: location.longitude,
            accuracy_radius_km: location.accuracy_radius_km,
        }
    }
}

/// A location an agent enters; missing fields are stored empty.
#[derive(InputObject)]
pub struct LocationInput {
    /// ISO 3166-1 alpha-2, e.g. ES.
    pub country_code: Option<String>,
    /// The country's name in English, e.g. Spain.
    pub country_name: Option<String>,
    /// The first subdivision's name, e.g. Andalusia.
    pub state_name: Option<String>,
    /// ISO 3166-2 subdivision code without the country, e.g. AN.
    pub state_code: Option<String>,
    /// The second subdivision's name where the country has one, e.g. Málaga.
    pub province_name: Option<String>,
    /// The second subdivision's code, e.g. MA.
    pub province_code: Option<String>,
    /// The city's name, e.g. Málaga.
    pub city: Option<String>,
    /// The postal code, where the database has one.
    pub postal_code: Option<String>,
    /// IANA time zone, e.g. Europe/Madrid.
    pub time_zone: Option<String>,
    /// Latitude in degrees, -90 to 90.
    pub latitude: Option<f64>,
    /// Longitude in degrees, -180 to 180.
    pub longitude: Option<f64>,
    /// How far from the coordinates the address may be, in km.
    pub accuracy_radius_km: Option<u16>,
}

impl From<LocationInput> for geo::Location {
    fn from(input: LocationInput) -> Self {
        geo::Location {
            country_code: input.country_code,
            country_name: input.country_name,
            state_name: input.state_name,
            state_code: input.state_code,
            province_name: input.province_name,
            province_code: input.province_code,
            city: input.city,
            postal_code: input.postal_code,
            time_zone: input.time_zone,
            latitude: input.latitude,
            longitude: input.longitude,
            accuracy_radius_km: input.accuracy_radius_km,
        }
    }
}
