//! Builds small GeoIP2 City `.mmdb` files for tests and benchmarks.
//!
//! Include it with `#[allow(dead_code)] #[path = "../support/geo_fixture.rs"]
//! mod geo_fixture;` (adjust the path; each including crate uses a different
//! part of it). The networks are public unicast ranges, because the
//! locator refuses to locate private, reserved and documentation addresses.
//!
//! | address                         | network        | resolves to                                |
//! |---------------------------------|----------------|--------------------------------------------|
//! | [`US_CALIFORNIA_IP`]            | 8.8.8.0/24     | US, California/CA, Mountain View 94043     |
//! | (the same, `Updated` variant)   | 8.8.8.0/24     | US, Texas/TX, Austin 78701                 |
//! | [`SPAIN_MALAGA_IP`]             | 81.45.0.0/16   | ES, Andalusia/AN, Málaga/MA, Málaga 29001  |
//! | [`ITALY_ROME_IP`]               | 151.38.0.0/16  | IT, Lazio/62, Rome/RM, Rome 00118          |
//! | [`GERMANY_BAVARIA_IPV6`]        | 2a02:8100::/32 | DE, Bavaria/BY, city named only in German  |
//! | [`SWITZERLAND_COUNTRY_ONLY_IP`] | 62.2.0.0/16    | CH and nothing else                        |
//! | [`NOT_IN_FIXTURE_IP`]           | none           | no entry                                   |
//! | private, loopback, CGNAT and documentation addresses | [`TRAP_NETWORKS`] | a "trap" country `XX` |
//!
//! The trap entries exist only to prove that the locator filters
//! non-locatable addresses itself instead of relying on the database to lack
//! them: a locator that returned `XX` would be wrong.
//!
//! Names are in English, with German and Spanish for some places, so tests
//! can check the language order and the fallback to another language.

use std::collections::BTreeMap;
use std::path::Path;

use mmdb_writer::Writer;
use mmdb_writer::ipnet::IpNet;
use serde::Serialize;

pub const US_CALIFORNIA_IP: &str = "8.8.8.8";
pub const SPAIN_MALAGA_IP: &str = "81.45.12.34";
pub const ITALY_ROME_IP: &str = "151.38.7.1";
pub const GERMANY_BAVARIA_IPV6: &str = "2a02:8100:1234::1";
pub const SWITZERLAND_COUNTRY_ONLY_IP: &str = "62.2.10.1";
/// Public, but in no fixture network.
pub const NOT_IN_FIXTURE_IP: &str = "9.9.9.9";

/// Languages the fixture declares in its metadata, in this order.
pub const FIXTURE_LANGUAGES: [&str; 3] = ["en", "de", "es"];

/// Which contents to write. `Updated` differs from `Initial` only in the US
/// network (California becomes Texas), so a test can replace the file and see
/// the new answer while everything else stays put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixtureVariant {
    Initial,
    Updated,
}

/// Writes the fixture database to `path`, overwriting whatever is there.
pub fn write_city_fixture(path: &Path, variant: FixtureVariant) {
    std::fs::write(path, city_fixture_bytes(variant)).expect("write the GeoIP fixture");
}

/// Replaces the database at `path` the way `geoipupdate` does: write a new
/// file beside it, then rename it over the old one.
pub fn replace_city_fixture(path: &Path, variant: FixtureVariant) {
    replace_file(path, &city_fixture_bytes(variant));
}

/// Replaces the file at `path` with `contents` by rename, e.g. to install a
/// corrupt database.
pub fn replace_file(path: &Path, contents: &[u8]) {
    let staging = path.with_extension("mmdb.partial");
    std::fs::write(&staging, contents).expect("write the replacement file");
    std::fs::rename(&staging, path).expect("rename the replacement over the database");
}

/// The fixture database as bytes.
pub fn city_fixture_bytes(variant: FixtureVariant) -> Vec<u8> {
    let mut writer = Writer::builder("GeoIP2-City")
        .languages(FIXTURE_LANGUAGES)
        .description(&[("en", "contacts service test fixture")])
        .build();
    let us = match variant {
        FixtureVariant::Initial => california(),
        FixtureVariant::Updated => texas(),
    };
    for (network, record) in [
        ("8.8.8.0/24", us),
        ("81.45.0.0/16", malaga()),
        ("151.38.0.0/16", rome()),
        ("2a02:8100::/32", bavaria()),
        ("62.2.0.0/16", switzerland()),
    ]
    .into_iter()
    .chain(TRAP_NETWORKS.iter().map(|network| (*network, trap())))
    {
        let network: IpNet = network.parse().expect("fixture network parses");
        writer
            .insert(network, &record)
            .expect("insert fixture record");
    }
    writer.to_bytes().expect("serialize the fixture database")
}

/// Non-locatable ranges that nevertheless carry data in the fixture.
pub const TRAP_NETWORKS: [&str; 6] = [
    "10.0.0.0/8",
    "127.0.0.0/8",
    "100.64.0.0/10",
    "192.0.2.0/24",
    "2001:db8::/32",
    "fc00::/7",
];

/// A GeoIP2 City record as MaxMind lays it out (only the fields we use, plus
/// a few we ignore so the reader must skip them).
#[derive(Debug, Default, Serialize)]
struct CityRecord {
    continent: Option<Place>,
    country: Option<Place>,
    registered_country: Option<Place>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subdivisions: Vec<Place>,
    city: Option<Place>,
    postal: Option<Postal>,
    location: Option<Coordinates>,
}

#[derive(Debug, Default, Serialize)]
struct Place {
    geoname_id: Option<u32>,
    code: Option<&'static str>,
    iso_code: Option<&'static str>,
    names: BTreeMap<&'static str, &'static str>,
}

#[derive(Debug, Serialize)]
struct Postal {
    code: &'static str,
}

#[derive(Debug, Serialize)]
struct Coordinates {
    latitude: f64,
    longitude: f64,
    accuracy_radius: u16,
    time_zone: &'static str,
}

fn names(pairs: &[(&'static str, &'static str)]) -> BTreeMap<&'static str, &'static str> {
    pairs.iter().copied().collect()
}

fn place(
    geoname_id: u32,
    iso_code: Option<&'static str>,
    localized: &[(&'static str, &'static str)],
) -> Place {
    Place {
        geoname_id: Some(geoname_id),
        code: None,
        iso_code,
        names: names(localized),
    }
}

fn continent(code: &'static str, english_name: &'static str) -> Option<Place> {
    Some(Place {
        code: Some(code),
        names: names(&[("en", english_name)]),
        ..Place::default()
    })
}

fn united_states() -> Place {
    place(
        6_252_001,
        Some("US"),
        &[
            ("en", "United States"),
            ("de", "Vereinigte Staaten"),
            ("es", "Estados Unidos"),
        ],
    )
}

fn california() -> CityRecord {
    CityRecord {
        continent: continent("NA", "North America"),
        country: Some(united_states()),
        registered_country: Some(united_states()),
        subdivisions: vec![place(
            5_332_921,
            Some("CA"),
            &[("en", "California"), ("de", "Kalifornien")],
        )],
        city: Some(place(5_375_480, None, &[("en", "Mountain View")])),
        postal: Some(Postal { code: "94043" }),
        location: Some(Coordinates {
            latitude: 37.4056,
            longitude: -122.0775,
            accuracy_radius: 1000,
            time_zone: "America/Los_Angeles",
        }),
    }
}

fn texas() -> CityRecord {
    CityRecord {
        continent: continent("NA", "North America"),
        country: Some(united_states()),
        registered_country: Some(united_states()),
        subdivisions: vec![place(4_736_286, Some("TX"), &[("en", "Texas")])],
        city: Some(place(4_671_654, None, &[("en", "Austin")])),
        postal: Some(Postal { code: "78701" }),
        location: Some(Coordinates {
            latitude: 30.2672,
            longitude: -97.7431,
            accuracy_radius: 20,
            time_zone: "America/Chicago",
        }),
    }
}

fn malaga() -> CityRecord {
    let spain = place(
        2_510_769,
        Some("ES"),
        &[("en", "Spain"), ("de", "Spanien"), ("es", "España")],
    );
    CityRecord {
        continent: continent("EU", "Europe"),
        registered_country: Some(place(2_510_769, Some("ES"), &[("en", "Spain")])),
        country: Some(spain),
        subdivisions: vec![
            place(
                2_593_109,
                Some("AN"),
                &[
                    ("en", "Andalusia"),
                    ("de", "Andalusien"),
                    ("es", "Andalucía"),
                ],
            ),
            place(2_514_254, Some("MA"), &[("en", "Málaga"), ("es", "Málaga")]),
        ],
        city: Some(place(
            2_514_256,
            None,
            &[("en", "Málaga"), ("es", "Málaga")],
        )),
        postal: Some(Postal { code: "29001" }),
        location: Some(Coordinates {
            latitude: 36.7202,
            longitude: -4.4203,
            accuracy_radius: 20,
            time_zone: "Europe/Madrid",
        }),
    }
}

fn rome() -> CityRecord {
    CityRecord {
        continent: continent("EU", "Europe"),
        country: Some(place(
            3_175_395,
            Some("IT"),
            &[("en", "Italy"), ("es", "Italia")],
        )),
        registered_country: None,
        subdivisions: vec![
            place(3_174_976, Some("62"), &[("en", "Lazio")]),
            place(3_169_069, Some("RM"), &[("en", "Rome"), ("es", "Roma")]),
        ],
        city: Some(place(3_169_070, None, &[("en", "Rome"), ("es", "Roma")])),
        postal: Some(Postal { code: "00118" }),
        location: Some(Coordinates {
            latitude: 41.8919,
            longitude: 12.5113,
            accuracy_radius: 50,
            time_zone: "Europe/Rome",
        }),
    }
}

fn bavaria() -> CityRecord {
    CityRecord {
        continent: continent("EU", "Europe"),
        country: Some(place(
            2_921_044,
            Some("DE"),
            &[("en", "Germany"), ("de", "Deutschland")],
        )),
        registered_country: None,
        subdivisions: vec![place(
            2_951_839,
            Some("BY"),
            &[("en", "Bavaria"), ("de", "Bayern")],
        )],
        // Named only in German, to test the fallback from English.
        city: Some(place(2_867_714, None, &[("de", "München")])),
        postal: Some(Postal { code: "80331" }),
        location: Some(Coordinates {
            latitude: 48.1374,
            longitude: 11.5755,
            accuracy_radius: 100,
            time_zone: "Europe/Berlin",
        }),
    }
}

fn switzerland() -> CityRecord {
    CityRecord {
        continent: continent("EU", "Europe"),
        country: Some(place(
            2_658_434,
            Some("CH"),
            &[("en", "Switzerland"), ("de", "Schweiz")],
        )),
        ..CityRecord::default()
    }
}

fn trap() -> CityRecord {
    CityRecord {
        country: Some(place(1, Some("XX"), &[("en", "Reserved address trap")])),
        ..CityRecord::default()
    }
}
