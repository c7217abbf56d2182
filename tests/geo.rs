//! IP geolocation against real `.mmdb` files built by the fixture writer:
//! every stored field, name languages, addresses with no location, and
//! swapping the database file while the service runs.

#[allow(dead_code)]
#[path = "support/geo_fixture.rs"]
mod geo_fixture;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use contacts::geo::{GeoDbError, GeoLocator, Location, MaxMindGeo, NoGeo, ReloadOutcome};
use geo_fixture::{
    FixtureVariant, GERMANY_BAVARIA_IPV6, ITALY_ROME_IP, NOT_IN_FIXTURE_IP, SPAIN_MALAGA_IP,
    SWITZERLAND_COUNTRY_ONLY_IP, US_CALIFORNIA_IP,
};
use tempfile::TempDir;

fn ip(address: &str) -> IpAddr {
    address.parse().expect("test address parses")
}

fn owned(value: &str) -> Option<String> {
    Some(value.to_owned())
}

fn languages(tags: &[&str]) -> Vec<String> {
    tags.iter().map(|tag| (*tag).to_owned()).collect()
}

/// A fixture database in its own temporary directory (kept alive with it).
struct FixtureFile {
    _dir: TempDir,
    path: PathBuf,
}

impl FixtureFile {
    fn new(variant: FixtureVariant) -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("GeoIP2-City.mmdb");
        geo_fixture::write_city_fixture(&path, variant);
        Self { _dir: dir, path }
    }

    fn open(&self, name_languages: &[&str]) -> MaxMindGeo {
        MaxMindGeo::open(&self.path, languages(name_languages)).expect("fixture opens")
    }
}

fn california() -> Location {
    Location {
        country_code: owned("US"),
        country_name: owned("United States"),
        state_name: owned("California"),
        state_code: owned("CA"),
        province_name: None,
        province_code: None,
        city: owned("Mountain View"),
        postal_code: owned("94043"),
        time_zone: owned("America/Los_Angeles"),
        latitude: Some(37.4056),
        longitude: Some(-122.0775),
        accuracy_radius_km: Some(1000),
    }
}

fn texas() -> Location {
    Location {
        country_code: owned("US"),
        country_name: owned("United States"),
        state_name: owned("Texas"),
        state_code: owned("TX"),
        province_name: None,
        province_code: None,
        city: owned("Austin"),
        postal_code: owned("78701"),
        time_zone: owned("America/Chicago"),
        latitude: Some(30.2672),
        longitude: Some(-97.7431),
        accuracy_radius_km: Some(20),
    }
}

fn malaga() -> Location {
    Location {
        country_code: owned("ES"),
        country_name: owned("Spain"),
        state_name: owned("Andalusia"),
        state_code: owned("AN"),
        province_name: owned("Málaga"),
        province_code: owned("MA"),
        city: owned("Málaga"),
        postal_code: owned("29001"),
        time_zone: owned("Europe/Madrid"),
        latitude: Some(36.7202),
        longitude: Some(-4.4203),
        accuracy_radius_km: Some(20),
    }
}

fn rome() -> Location {
    Location {
        country_code: owned("IT"),
        country_name: owned("Italy"),
        state_name: owned("Lazio"),
        state_code: owned("62"),
        province_name: owned("Rome"),
        province_code: owned("RM"),
        city: owned("Rome"),
        postal_code: owned("00118"),
        time_zone: owned("Europe/Rome"),
        latitude: Some(41.8919),
        longitude: Some(12.5113),
        accuracy_radius_km: Some(50),
    }
}

fn bavaria() -> Location {
    Location {
        country_code: owned("DE"),
        country_name: owned("Germany"),
        state_name: owned("Bavaria"),
        state_code: owned("BY"),
        province_name: None,
        province_code: None,
        // The fixture names Munich only in German: English falls back to it.
        city: owned("München"),
        postal_code: owned("80331"),
        time_zone: owned("Europe/Berlin"),
        latitude: Some(48.1374),
        longitude: Some(11.5755),
        accuracy_radius_km: Some(100),
    }
}

fn switzerland_country_only() -> Location {
    Location {
        country_code: owned("CH"),
        country_name: owned("Switzerland"),
        ..Location::default()
    }
}

#[test]
fn every_fixture_network_resolves_with_all_its_fields() {
    let fixture = FixtureFile::new(FixtureVariant::Initial);
    let geo = fixture.open(&["en"]);

    for (address, expected) in [
        (US_CALIFORNIA_IP, california()),
        ("8.8.8.255", california()),
        (SPAIN_MALAGA_IP, malaga()),
        ("81.45.255.1", malaga()),
        (ITALY_ROME_IP, rome()),
        (GERMANY_BAVARIA_IPV6, bavaria()),
        ("2a02:8100:ffff::2", bavaria()),
        (SWITZERLAND_COUNTRY_ONLY_IP, switzerland_country_only()),
    ] {
        assert_eq!(geo.locate(ip(address)), Some(expected), "{address}");
    }
}

#[test]
fn ipv4_mapped_addresses_resolve_like_ipv4() {
    let fixture = FixtureFile::new(FixtureVariant::Initial);
    let geo = fixture.open(&["en"]);
    assert_eq!(geo.locate(ip("::ffff:81.45.12.34")), Some(malaga()));
}

#[test]
fn names_follow_the_configured_language_order() {
    let fixture = FixtureFile::new(FixtureVariant::Initial);

    let german_first = fixture.open(&["de", "en"]);
    let us = german_first
        .locate(ip(US_CALIFORNIA_IP))
        .expect("US located");
    assert_eq!(us.country_name.as_deref(), Some("Vereinigte Staaten"));
    assert_eq!(us.state_name.as_deref(), Some("Kalifornien"));
    // No German city name: the next configured language answers.
    assert_eq!(us.city.as_deref(), Some("Mountain View"));
    let germany = german_first
        .locate(ip(GERMANY_BAVARIA_IPV6))
        .expect("DE located");
    assert_eq!(germany.country_name.as_deref(), Some("Deutschland"));
    assert_eq!(germany.state_name.as_deref(), Some("Bayern"));
    assert_eq!(germany.city.as_deref(), Some("München"));

    let spanish = fixture.open(&["es"]);
    let spain = spanish.locate(ip(SPAIN_MALAGA_IP)).expect("ES located");
    assert_eq!(spain.country_name.as_deref(), Some("España"));
    assert_eq!(spain.state_name.as_deref(), Some("Andalucía"));
    let italy = spanish.locate(ip(ITALY_ROME_IP)).expect("IT located");
    assert_eq!(italy.country_name.as_deref(), Some("Italia"));
    assert_eq!(italy.state_name.as_deref(), Some("Lazio"));
    assert_eq!(italy.province_name.as_deref(), Some("Roma"));
    // Codes never depend on the language.
    assert_eq!(italy.province_code.as_deref(), Some("RM"));
}

#[test]
fn names_fall_back_to_the_database_languages() {
    let fixture = FixtureFile::new(FixtureVariant::Initial);

    // Nothing in French: the database's own order (en, de, es) decides.
    let french = fixture.open(&["fr"]);
    assert_eq!(french.locate(ip(SPAIN_MALAGA_IP)), Some(malaga()));
    assert_eq!(french.locate(ip(GERMANY_BAVARIA_IPV6)), Some(bavaria()));

    // An empty configuration means English.
    let unconfigured = fixture.open(&[]);
    assert_eq!(
        unconfigured.locate(ip(US_CALIFORNIA_IP)),
        Some(california())
    );
}

#[test]
fn non_locatable_addresses_give_no_location_even_when_the_database_has_them() {
    let fixture = FixtureFile::new(FixtureVariant::Initial);
    let geo = fixture.open(&["en"]);

    // The fixture maps several of these to a "trap" country on purpose.
    for address in [
        "10.1.2.3",
        "127.0.0.1",
        "100.64.3.4",
        "192.0.2.10",
        "192.168.0.1",
        "169.254.1.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "0.0.0.0",
        "::",
        "::1",
        "::ffff:10.0.0.1",
        "2001:db8::1",
        "fc00::1",
        "fe80::1",
        "ff02::1",
    ] {
        assert_eq!(geo.locate(ip(address)), None, "{address}");
    }
}

#[test]
fn addresses_outside_every_network_give_no_location() {
    let fixture = FixtureFile::new(FixtureVariant::Initial);
    let geo = fixture.open(&["en"]);
    for address in [NOT_IN_FIXTURE_IP, "8.8.9.1", "81.46.0.1", "2600::1"] {
        assert_eq!(geo.locate(ip(address)), None, "{address}");
    }
}

#[test]
fn no_database_means_no_location() {
    let locator: Arc<dyn GeoLocator> = Arc::new(NoGeo);
    assert_eq!(locator.locate(ip(US_CALIFORNIA_IP)), None);
}

#[test]
fn opening_a_missing_or_broken_file_is_an_error() {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let missing = dir.path().join("missing.mmdb");
    assert!(matches!(
        MaxMindGeo::open(&missing, languages(&["en"])),
        Err(GeoDbError::Io { .. })
    ));

    let broken = dir.path().join("broken.mmdb");
    std::fs::write(&broken, b"not a MaxMind database").expect("write the broken file");
    assert!(matches!(
        MaxMindGeo::open(&broken, languages(&["en"])),
        Err(GeoDbError::Invalid { .. })
    ));
}

#[test]
fn a_replaced_file_is_used_after_reload() {
    let fixture = FixtureFile::new(FixtureVariant::Initial);
    let geo = fixture.open(&["en"]);
    assert_eq!(
        geo.reload_if_changed().expect("stat works"),
        ReloadOutcome::Unchanged
    );
    assert_eq!(geo.locate(ip(US_CALIFORNIA_IP)), Some(california()));

    geo_fixture::replace_city_fixture(&fixture.path, FixtureVariant::Updated);
    assert_eq!(
        geo.reload_if_changed().expect("reload works"),
        ReloadOutcome::Reloaded
    );
    assert_eq!(geo.locate(ip(US_CALIFORNIA_IP)), Some(texas()));
    assert_eq!(geo.locate(ip(SPAIN_MALAGA_IP)), Some(malaga()));
    assert_eq!(
        geo.reload_if_changed().expect("stat works"),
        ReloadOutcome::Unchanged
    );

    geo_fixture::replace_city_fixture(&fixture.path, FixtureVariant::Initial);
    assert_eq!(
        geo.reload_if_changed().expect("reload works"),
        ReloadOutcome::Reloaded
    );
    assert_eq!(geo.locate(ip(US_CALIFORNIA_IP)), Some(california()));
}

#[test]
fn a_corrupt_replacement_keeps_the_old_database() {
    let fixture = FixtureFile::new(FixtureVariant::Initial);
    let geo = fixture.open(&["en"]);

    let valid = geo_fixture::city_fixture_bytes(FixtureVariant::Updated);
    let corruptions: [&[u8]; 3] = [
        b"",
        b"definitely not a MaxMind database",
        // A download cut short loses the metadata at the end of the file.
        &valid[..valid.len() / 2],
    ];
    for corrupt in corruptions {
        geo_fixture::replace_file(&fixture.path, corrupt);
        assert!(geo.reload_if_changed().is_err(), "{} bytes", corrupt.len());
        assert_eq!(geo.locate(ip(US_CALIFORNIA_IP)), Some(california()));
        assert_eq!(geo.locate(ip(GERMANY_BAVARIA_IPV6)), Some(bavaria()));
        // The same broken file is reported once, not on every poll.
        assert_eq!(
            geo.reload_if_changed().expect("stat works"),
            ReloadOutcome::Unchanged
        );
    }

    // A good file after a bad one is picked up.
    geo_fixture::replace_city_fixture(&fixture.path, FixtureVariant::Updated);
    assert_eq!(
        geo.reload_if_changed().expect("reload works"),
        ReloadOutcome::Reloaded
    );
    assert_eq!(geo.locate(ip(US_CALIFORNIA_IP)), Some(texas()));
}

#[test]
fn a_deleted_file_keeps_the_old_database() {
    let fixture = FixtureFile::new(FixtureVariant::Initial);
    let geo = fixture.open(&["en"]);
    std::fs::remove_file(&fixture.path).expect("remove the database file");
    assert!(matches!(
        geo.reload_if_changed(),
        Err(GeoDbError::Io { .. })
    ));
    assert_eq!(geo.locate(ip(SPAIN_MALAGA_IP)), Some(malaga()));
}

#[test]
fn lookups_in_flight_never_fail_while_the_file_is_swapped() {
    let fixture = FixtureFile::new(FixtureVariant::Initial);
    let geo = Arc::new(fixture.open(&["en"]));
    let stop = Arc::new(AtomicBool::new(false));

    let lookers: Vec<_> = (0..2)
        .map(|_| {
            let geo = Arc::clone(&geo);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut lookups = 0_u64;
                while !stop.load(Ordering::Relaxed) {
                    assert_eq!(geo.locate(ip(SPAIN_MALAGA_IP)), Some(malaga()));
                    let us = geo.locate(ip(US_CALIFORNIA_IP)).expect("US always located");
                    assert!(us == california() || us == texas(), "{us:?}");
                    lookups += 1;
                }
                lookups
            })
        })
        .collect();

    for round in 0..20 {
        let variant = if round % 2 == 0 {
            FixtureVariant::Updated
        } else {
            FixtureVariant::Initial
        };
        geo_fixture::replace_city_fixture(&fixture.path, variant);
        assert_eq!(
            geo.reload_if_changed().expect("reload works"),
            ReloadOutcome::Reloaded
        );
    }
    stop.store(true, Ordering::Relaxed);
    for looker in lookers {
        let lookups = looker.join().expect("lookup thread did not panic");
        assert!(lookups > 0);
    }
    assert_eq!(geo.locate(ip(US_CALIFORNIA_IP)), Some(california()));
}

async fn wait_for_location(geo: &MaxMindGeo, address: &str, expected: &Location) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while geo.locate(ip(address)).as_ref() != Some(expected) {
        assert!(Instant::now() < deadline, "watcher did not reload in time");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_watcher_reloads_a_replaced_file_and_stops_with_the_locator() {
    let fixture = FixtureFile::new(FixtureVariant::Initial);
    let geo = Arc::new(fixture.open(&["en"]));
    let watcher = geo.spawn_reload_watcher(Duration::from_millis(20));

    geo_fixture::replace_city_fixture(&fixture.path, FixtureVariant::Updated);
    wait_for_location(&geo, US_CALIFORNIA_IP, &texas()).await;

    // A corrupt file is skipped, and a later good one still gets through.
    geo_fixture::replace_file(&fixture.path, b"corrupt");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(geo.locate(ip(US_CALIFORNIA_IP)), Some(texas()));
    geo_fixture::replace_city_fixture(&fixture.path, FixtureVariant::Initial);
    wait_for_location(&geo, US_CALIFORNIA_IP, &california()).await;

    drop(geo);
    tokio::time::timeout(Duration::from_secs(5), watcher)
        .await
        .expect("watcher ends once the locator is gone")
        .expect("watcher did not panic");
}

/// The fixture must be a real GeoIP2 City database, readable with the
/// reader crate's own City schema, or the tests above prove nothing.
#[test]
fn fixture_follows_the_geoip2_city_schema() {
    let fixture = FixtureFile::new(FixtureVariant::Initial);
    let reader = maxminddb::Reader::open_readfile(&fixture.path).expect("fixture opens");
    assert_eq!(reader.metadata().database_type, "GeoIP2-City");
    assert_eq!(
        reader.metadata().languages,
        languages(&geo_fixture::FIXTURE_LANGUAGES)
    );

    let lookup = reader.lookup(ip(SPAIN_MALAGA_IP)).expect("lookup works");
    let city: maxminddb::geoip2::City<'_> = lookup.decode().expect("decodes").expect("has data");
    assert_eq!(city.country.iso_code, Some("ES"));
    assert_eq!(city.country.names.spanish, Some("España"));
    assert_eq!(city.subdivisions.len(), 2);
    assert_eq!(city.subdivisions[0].iso_code, Some("AN"));
    assert_eq!(city.subdivisions[1].names.english, Some("Málaga"));
    assert_eq!(city.city.names.english, Some("Málaga"));
    assert_eq!(city.postal.code, Some("29001"));
    assert_eq!(city.location.time_zone, Some("Europe/Madrid"));
    assert_eq!(city.location.latitude, Some(36.7202));
    assert_eq!(city.location.longitude, Some(-4.4203));
    assert_eq!(city.location.accuracy_radius, Some(20));
    assert_eq!(city.continent.code, Some("EU"));

    // The trap entries are really there, so the filter test is not vacuous.
    let trap = reader.lookup(ip("10.1.2.3")).expect("lookup works");
    let trap: maxminddb::geoip2::City<'_> = trap.decode().expect("decodes").expect("has data");
    assert_eq!(trap.country.iso_code, Some("XX"));
}
