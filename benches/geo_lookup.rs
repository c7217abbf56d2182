//! Throughput of IP geolocation lookups over a small fixture database.
//!
//! Run with `cargo bench --bench geo_lookup`. One thread does all lookups, so
//! the figure is per core. The fixture has a handful of networks; a full
//! GeoLite2 City file has a deeper search tree and names in eight languages,
//! so expect real lookups to be somewhat slower.

#[allow(dead_code)]
#[path = "../tests/support/geo_fixture.rs"]
mod geo_fixture;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use contacts::geo::{GeoLocator, MaxMindGeo};
use geo_fixture::FixtureVariant;

const LOOKUPS: usize = 2_000_000;
const WARM_UP_LOOKUPS: usize = 100_000;

fn main() {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("GeoIP2-City.mmdb");
    geo_fixture::write_city_fixture(&path, FixtureVariant::Initial);
    let geo = MaxMindGeo::open(&path, vec!["en".to_owned()]).expect("fixture opens");

    let mix = address_mix();
    let located: Vec<IpAddr> = mix
        .iter()
        .copied()
        .filter(|ip| geo.locate(*ip).is_some())
        .collect();

    println!(
        "geo lookups, {LOOKUPS} per run, one thread, fixture of {} bytes",
        std::fs::metadata(&path).map_or(0, |metadata| metadata.len())
    );
    report(
        &format!("mix ({} addresses, {} located)", mix.len(), located.len()),
        &geo,
        &mix,
    );
    report("located addresses only", &geo, &located);
}

/// Addresses in every fixture network, outside all networks, and filtered
/// out before the lookup (private, loopback), spread over each range.
fn address_mix() -> Vec<IpAddr> {
    let mut addresses = Vec::new();
    for host in 0..=255_u8 {
        addresses.extend([
            IpAddr::V4(Ipv4Addr::new(8, 8, 8, host)),
            IpAddr::V4(Ipv4Addr::new(81, 45, host, host.wrapping_mul(7))),
            IpAddr::V4(Ipv4Addr::new(151, 38, host, 1)),
            IpAddr::V6(Ipv6Addr::new(
                0x2a02,
                0x8100,
                u16::from(host),
                0,
                0,
                0,
                0,
                1,
            )),
            IpAddr::V4(Ipv4Addr::new(62, 2, host, 9)),
            IpAddr::V4(Ipv4Addr::new(9, 9, host, 9)),
            IpAddr::V4(Ipv4Addr::new(192, 168, host, 1)),
        ]);
    }
    addresses.push(IpAddr::V6(Ipv6Addr::LOCALHOST));
    addresses
}

fn report(label: &str, geo: &MaxMindGeo, addresses: &[IpAddr]) {
    run(geo, addresses, WARM_UP_LOOKUPS);
    let started = Instant::now();
    let found = run(geo, addresses, LOOKUPS);
    let elapsed = started.elapsed();
    let per_second = LOOKUPS as f64 / elapsed.as_secs_f64();
    let nanos_each = elapsed.as_nanos() as f64 / LOOKUPS as f64;
    println!(
        "{label}: {per_second:.0} lookups/s ({nanos_each:.0} ns each, {found} located, {elapsed:.2?} total)"
    );
}

fn run(geo: &MaxMindGeo, addresses: &[IpAddr], lookups: usize) -> usize {
    addresses
        .iter()
        .cycle()
        .take(lookups)
        .filter(|ip| black_box(geo.locate(black_box(**ip))).is_some())
        .count()
}
