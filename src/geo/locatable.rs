//! Which IP addresses can have a place on the map at all.
//!
//! Private, loopback, link-local, CGNAT, documentation, benchmarking, multicast
//! and reserved addresses belong to no one place: a database lookup for them is
//! wasted work at best and a wrong answer at worst (some databases map reserved
//! ranges to the registrant's country), so they are filtered before the lookup.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// IPv4 special-purpose ranges (IANA IPv4 Special-Purpose Address Registry).
const NOT_LOCATABLE_V4: [Ipv4Net; 15] = [
    // "This network", including the unspecified address 0.0.0.0.
    Ipv4Net::new_assert(Ipv4Addr::new(0, 0, 0, 0), 8),
    Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 0, 0), 8),
    // Carrier-grade NAT: shared by a provider's customers, not one place.
    Ipv4Net::new_assert(Ipv4Addr::new(100, 64, 0, 0), 10),
    Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8),
    Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 0, 0), 16),
    Ipv4Net::new_assert(Ipv4Addr::new(172, 16, 0, 0), 12),
    // IETF protocol assignments.
    Ipv4Net::new_assert(Ipv4Addr::new(192, 0, 0, 0), 24),
    Ipv4Net::new_assert(Ipv4Addr::new(192, 0, 2, 0), 24),
    // Deprecated 6to4 relay anycast.
    Ipv4Net::new_assert(Ipv4Addr::new(192, 88, 99, 0), 24),
    Ipv4Net::new_assert(Ipv4Addr::new(192, 168, 0, 0), 16),
    // Benchmarking.
    Ipv4Net::new_assert(Ipv4Addr::new(198, 18, 0, 0), 15),
    Ipv4Net::new_assert(Ipv4Addr::new(198, 51, 100, 0), 24),
    Ipv4Net::new_assert(Ipv4Addr::new(203, 0, 113, 0), 24),
    Ipv4Net::new_assert(Ipv4Addr::new(224, 0, 0, 0), 4),
    // Reserved for future use, including the broadcast address.
    Ipv4Net::new_assert(Ipv4Addr::new(240, 0, 0, 0), 4),
];

/// Only global unicast IPv6 space is allocated to networks that have a place;
/// everything outside it (unspecified, loopback, unique-local, link-local,
/// multicast, NAT64, discard) is excluded by this one range.
const GLOBAL_UNICAST_V6: Ipv6Net =
    Ipv6Net::new_assert(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

/// Special-purpose ranges inside global unicast IPv6 space.
const NOT_LOCATABLE_V6: [Ipv6Net; 3] = [
    // Documentation (RFC 3849 and RFC 9637).
    Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32),
    Ipv6Net::new_assert(Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),
    // Benchmarking.
    Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0x2, 0, 0, 0, 0, 0, 0), 48),
];

/// Whether `ip` can be located at all. IPv4-mapped IPv6 addresses are judged
/// by the IPv4 address they carry.
pub fn is_locatable(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => !NOT_LOCATABLE_V4.iter().any(|net| net.contains(&v4)),
        IpAddr::V6(v6) => {
            GLOBAL_UNICAST_V6.contains(&v6) && !NOT_LOCATABLE_V6.iter().any(|net| net.contains(&v6))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locatable(address: &str) -> bool {
        is_locatable(address.parse().expect("test address parses"))
    }

    #[test]
    fn public_unicast_addresses_are_locatable() {
        for address in [
            "8.8.8.8",
            "81.45.12.1",
            "1.1.1.1",
            "2a02:8100::1",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
        ] {
            assert!(locatable(address), "{address} should be locatable");
        }
    }

    #[test]
    fn special_purpose_addresses_are_not_locatable() {
        for address in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "169.254.10.10",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.251",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "3fff::1",
            "2001:2::1",
            "64:ff9b::808:808",
        ] {
            assert!(!locatable(address), "{address} should not be locatable");
        }
    }

    #[test]
    fn range_edges_are_exact() {
        assert!(locatable("100.63.255.255"));
        assert!(locatable("100.128.0.0"));
        assert!(locatable("172.15.255.255"));
        assert!(locatable("172.32.0.0"));
        assert!(locatable("223.255.255.255"));
    }
}
