//! Which address a request really comes from, and how much of it we keep.
//!
//! The socket peer is the client unless it is one of our own trusted proxies;
//! only then are `X-Forwarded-For` or `Forwarded` (RFC 7239) believed, because
//! anyone else can write whatever they like into those headers.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use axum::http::HeaderMap;
use axum::http::header::FORWARDED;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The networks of the reverse proxies and load balancers in front of the
/// server (`TRUSTED_PROXIES`). Empty by default: no forwarding header is trusted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
}

/// A `TRUSTED_PROXIES` entry that is neither an IP address nor a CIDR network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trusted proxy entry {entry:?} is neither an IP address nor a CIDR network")]
pub struct InvalidTrustedProxy {
    pub entry: String,
}

impl FromStr for TrustedProxies {
    type Err = InvalidTrustedProxy;

    /// Parses a comma-separated list of CIDR networks and single addresses,
    /// e.g. `10.0.0.0/8, 192.168.1.10, fd00::/8`. A typo is an error rather
    /// than silently trusting less (or more) than intended.
    fn from_str(list: &str) -> Result<Self, Self::Err> {
        let networks = list
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(parse_trusted_network)
            .collect::<Result<_, _>>()?;
        Ok(Self { networks })
    }
}

fn parse_trusted_network(entry: &str) -> Result<IpNet, InvalidTrustedProxy> {
    let network = entry
        .parse::<IpNet>()
        .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| InvalidTrustedProxy {
            entry: entry.to_owned(),
        })?;
    Ok(canonical_network(network.trunc()))
}

/// Peers are compared in their canonical form (an IPv4-mapped IPv6 peer as
/// IPv4), so an entry written as `::ffff:10.0.0.0/104` must become `10.0.0.0/8`
/// to still match.
fn canonical_network(network: IpNet) -> IpNet {
    const MAPPED_PREFIX_LEN: u8 = 96;
    if let IpNet::V6(v6) = network
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && v6.prefix_len() >= MAPPED_PREFIX_LEN
        && let Ok(v4_network) = Ipv4Net::new(v4, v6.prefix_len() - MAPPED_PREFIX_LEN)
    {
        return IpNet::V4(v4_network);
    }
    network
}

impl TrustedProxies {
    /// Whether `ip` is one of the trusted proxies.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.networks.iter().any(|network| network.contains(&ip))
    }

    /// The client address of a request whose socket peer is `peer`.
    ///
    /// When the peer is trusted, the forwarding chain is walked from the
    /// right (nearest hop first), skipping trusted proxies; the first untrusted
    /// address is the client. If every hop is trusted, the leftmost one is. A
    /// malformed hop ends the walk: whatever stands left of it was written by
    /// a host nobody vouches for. `X-Forwarded-For` is used when present, as
    /// the header nearly every proxy writes, and `Forwarded` otherwise; the
    /// proxies must overwrite or strip the header they do not write.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.is_trusted(peer) {
            return peer;
        }
        let hops = if headers.contains_key(X_FORWARDED_FOR) {
            x_forwarded_for_hops(headers)
        } else {
            forwarded_hops(headers)
        };
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            let Some(hop) = hop else {
                break;
            };
            client = hop;
            if !self.is_trusted(hop) {
                break;
            }
        }
        client
    }
}

/// One entry per hop, left to right; `None` marks a malformed entry. Repeated
/// header lines form one list, in order (RFC 9110, section 5.3).
fn x_forwarded_for_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for line in headers.get_all(X_FORWARDED_FOR) {
        let Ok(line) = line.to_str() else {
            hops.push(None);
            continue;
        };
        hops.extend(
            line.split(',')
                .map(str::trim)
                // Empty list elements are allowed by HTTP and mean nothing.
                .filter(|entry| !entry.is_empty())
                .map(parse_node),
        );
    }
    hops
}

/// The `for=` node of each `Forwarded` element, left to right; `None` marks an
/// element without a usable address (`unknown`, obfuscated, missing, garbage).
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for line in headers.get_all(FORWARDED) {
        let Ok(line) = line.to_str() else {
            hops.push(None);
            continue;
        };
        hops.extend(
            split_outside_quotes(line, ',')
                .map(str::trim)
                .filter(|element| !element.is_empty())
                .map(forwarded_for_node),
        );
    }
    hops
}

fn forwarded_for_node(element: &str) -> Option<IpAddr> {
    split_outside_quotes(element, ';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        parse_node(&unquote(value.trim())?)
    })
}

/// Splits on `separator` where it is not inside a quoted string.
fn split_outside_quotes(text: &str, separator: char) -> impl Iterator<Item = &str> {
    let mut in_quotes = false;
    let mut escaped = false;
    text.split(move |character| {
        if escaped {
            escaped = false;
        } else if in_quotes && character == '\\' {
            escaped = true;
        } else if character == '"' {
            in_quotes = !in_quotes;
        } else if character == separator && !in_quotes {
            return true;
        }
        false
    })
}

/// The value of a token or quoted-string; `None` for an unterminated quote.
fn unquote(value: &str) -> Option<Cow<'_, str>> {
    let Some(quoted) = value.strip_prefix('"') else {
        return Some(Cow::Borrowed(value));
    };
    let inner = quoted.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    let mut unescaped = String::with_capacity(inner.len());
    let mut characters = inner.chars();
    while let Some(character) = characters.next() {
        unescaped.push(if character == '\\' {
            characters.next()?
        } else {
            character
        });
    }
    Some(Cow::Owned(unescaped))
}

/// Parses a node as proxies write it: `192.0.2.1`, `192.0.2.1:8080`,
/// `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:4711`. Ports are checked
/// for form and dropped; IPv4-mapped IPv6 addresses become IPv4.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Some(bracketed) = node.strip_prefix('[') {
        let (address, after) = bracketed.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return address
            .parse::<Ipv6Addr>()
            .ok()
            .map(|ip| IpAddr::V6(ip).to_canonical());
    }
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    // With a single colon it can only be IPv4 with a port.
    let (address, port) = node.split_once(':')?;
    if !is_port(port) {
        return None;
    }
    address.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// A port number, or an RFC 7239 obfuscated port such as `_abc`.
fn is_port(port: &str) -> bool {
    if let Some(obfuscated) = port.strip_prefix('_') {
        return !obfuscated.is_empty()
            && obfuscated
                .chars()
                .all(|character| character.is_ascii_alphanumeric() || "._-".contains(character));
    }
    port.parse::<u16>().is_ok()
}

/// How much of a contact's IP address is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpRetention {
    /// The whole address.
    Full,
    /// Only the network: /24 for IPv4, /48 for IPv6, enough to tell a region
    /// or provider but not a household.
    Truncated,
    /// Nothing.
    None,
}

/// An IP retention setting other than `full`, `truncated` or `none`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("IP retention {value:?} is not one of: full, truncated, none")]
pub struct UnknownIpRetention {
    pub value: String,
}

impl FromStr for IpRetention {
    type Err = UnknownIpRetention;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(Self::Full),
            "truncated" => Ok(Self::Truncated),
            "none" => Ok(Self::None),
            _ => Err(UnknownIpRetention {
                value: value.to_owned(),
            }),
        }
    }
}

impl IpRetention {
    const TRUNCATED_V4_PREFIX_LEN: u8 = 24;
    const TRUNCATED_V6_PREFIX_LEN: u8 = 48;

    /// What to store of `ip`: the address, its network address, or nothing.
    pub fn retain(&self, ip: IpAddr) -> Option<String> {
        let ip = ip.to_canonical();
        match self {
            Self::Full => Some(ip.to_string()),
            Self::Truncated => Some(Self::network_address(ip).to_string()),
            Self::None => None,
        }
    }

    fn network_address(ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => Ipv4Net::new(v4, Self::TRUNCATED_V4_PREFIX_LEN)
                .map_or(ip, |network| IpAddr::V4(network.network())),
            IpAddr::V6(v6) => Ipv6Net::new(v6, Self::TRUNCATED_V6_PREFIX_LEN)
                .map_or(ip, |network| IpAddr::V6(network.network())),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(address: &str) -> IpAddr {
        address.parse().expect("test address parses")
    }

    fn proxies(list: &str) -> TrustedProxies {
        list.parse().expect("test proxy list parses")
    }

    fn headers(entries: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in entries {
            headers.append(
                *name,
                HeaderValue::from_str(value).expect("valid header value"),
            );
        }
        headers
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_the_headers_say() {
        let trusted = proxies("10.0.0.0/8");
        let forged = headers(&[("x-forwarded-for", "8.8.8.8"), ("forwarded", "for=8.8.4.4")]);
        assert_eq!(trusted.client_ip(ip("81.45.1.2"), &forged), ip("81.45.1.2"));
        assert_eq!(
            TrustedProxies::default().client_ip(ip("10.0.0.1"), &forged),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn trusted_peer_forwards_the_client_from_x_forwarded_for() {
        let trusted = proxies("10.0.0.0/8");
        let request = headers(&[("x-forwarded-for", "81.45.1.2")]);
        assert_eq!(trusted.client_ip(ip("10.1.1.1"), &request), ip("81.45.1.2"));
    }

    #[test]
    fn trusted_peer_without_forwarding_headers_is_the_client() {
        let trusted = proxies("10.0.0.0/8");
        assert_eq!(
            trusted.client_ip(ip("10.1.1.1"), &HeaderMap::new()),
            ip("10.1.1.1")
        );
    }

    #[test]
    fn walk_from_the_right_stops_at_the_first_untrusted_hop() {
        let trusted = proxies("10.0.0.0/8, 192.168.0.5");
        // The leftmost entry was written by the client itself and is not believed.
        let request = headers(&[(
            "x-forwarded-for",
            "1.2.3.4, 81.45.1.2, 192.168.0.5, 10.0.0.7",
        )]);
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &request), ip("81.45.1.2"));
    }

    #[test]
    fn repeated_header_lines_form_one_chain() {
        let trusted = proxies("10.0.0.0/8");
        let request = headers(&[
            ("x-forwarded-for", "1.2.3.4, 81.45.1.2"),
            ("x-forwarded-for", "10.0.0.9"),
        ]);
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &request), ip("81.45.1.2"));
    }

    #[test]
    fn all_trusted_hops_give_the_leftmost() {
        let trusted = proxies("10.0.0.0/8");
        let request = headers(&[("x-forwarded-for", "10.0.0.3, 10.0.0.2")]);
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &request), ip("10.0.0.3"));
    }

    #[test]
    fn malformed_entries_are_never_the_client() {
        let trusted = proxies("10.0.0.0/8");
        for (value, expected) in [
            ("not-an-ip", "10.0.0.1"),
            ("999.1.1.1", "10.0.0.1"),
            ("81.45.1.2 8.8.8.8", "10.0.0.1"),
            ("unknown", "10.0.0.1"),
            // Nothing left of a malformed hop is believed.
            ("8.8.8.8, garbage, 10.0.0.2", "10.0.0.2"),
            // Garbage the client wrote left of the real client does not matter.
            ("garbage, 81.45.1.2", "81.45.1.2"),
            // Empty list elements are not malformed.
            ("81.45.1.2, , ", "81.45.1.2"),
            ("", "10.0.0.1"),
        ] {
            let request = headers(&[("x-forwarded-for", value)]);
            assert_eq!(
                trusted.client_ip(ip("10.0.0.1"), &request),
                ip(expected),
                "X-Forwarded-For: {value:?}"
            );
        }
    }

    #[test]
    fn non_ascii_header_value_is_malformed() {
        let trusted = proxies("10.0.0.0/8");
        let mut request = HeaderMap::new();
        request.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"81.45.1.2\xff").expect("opaque bytes are a valid value"),
        );
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &request), ip("10.0.0.1"));
    }

    #[test]
    fn ports_are_dropped_from_x_forwarded_for_entries() {
        let trusted = proxies("10.0.0.0/8");
        for (value, expected) in [
            ("81.45.1.2:51234", "81.45.1.2"),
            ("[2a02:8100::7]:443", "2a02:8100::7"),
            ("[2a02:8100::7]", "2a02:8100::7"),
        ] {
            let request = headers(&[("x-forwarded-for", value)]);
            assert_eq!(trusted.client_ip(ip("10.0.0.1"), &request), ip(expected));
        }
    }

    #[test]
    fn ipv6_proxies_and_clients() {
        let trusted = proxies("fd00::/8, 2001:db8:1::1");
        let request = headers(&[("x-forwarded-for", "2a02:8100::7, fd00::2")]);
        assert_eq!(
            trusted.client_ip(ip("2001:db8:1::1"), &request),
            ip("2a02:8100::7")
        );
        assert_eq!(
            trusted.client_ip(ip("2001:db8:1::2"), &request),
            ip("2001:db8:1::2")
        );
    }

    #[test]
    fn ipv4_mapped_peers_and_hops_count_as_ipv4() {
        let trusted = proxies("10.0.0.0/8");
        let request = headers(&[("x-forwarded-for", "::ffff:81.45.1.2")]);
        assert_eq!(
            trusted.client_ip(ip("::ffff:10.0.0.1"), &request),
            ip("81.45.1.2")
        );
        assert_eq!(
            trusted.client_ip(ip("::ffff:81.45.1.9"), &request),
            ip("81.45.1.9")
        );
        assert!(proxies("::ffff:10.0.0.0/104").is_trusted(ip("10.200.0.1")));
    }

    #[test]
    fn forwarded_header_is_used_without_x_forwarded_for() {
        let trusted = proxies("10.0.0.0/8");
        for (value, expected) in [
            ("for=81.45.1.2", "81.45.1.2"),
            ("For=\"81.45.1.2:4711\";proto=https", "81.45.1.2"),
            ("for=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
            ("for=\"[2a02:8100::7]\";by=10.0.0.1", "2a02:8100::7"),
            (
                "for=8.8.8.8, for=81.45.1.2;proto=http;by=10.0.0.1, for=10.0.0.5",
                "81.45.1.2",
            ),
            ("for=\"[2a02:8100::7]:_hidden\"", "2a02:8100::7"),
            ("proto=https;for=81.45.1.2", "81.45.1.2"),
            // Unknown, obfuscated, missing or broken nodes are malformed hops.
            ("for=unknown", "10.0.0.1"),
            ("for=_gazonk", "10.0.0.1"),
            ("proto=https", "10.0.0.1"),
            ("for=\"[2001:db8:cafe::17]:4711", "10.0.0.1"),
            ("for=[2001:db8:cafe::17]x", "10.0.0.1"),
            ("for=8.8.8.8, for=unknown", "10.0.0.1"),
        ] {
            let request = headers(&[("forwarded", value)]);
            assert_eq!(
                trusted.client_ip(ip("10.0.0.1"), &request),
                ip(expected),
                "Forwarded: {value}"
            );
        }
    }

    #[test]
    fn x_forwarded_for_takes_precedence_over_forwarded() {
        let trusted = proxies("10.0.0.0/8");
        let request = headers(&[
            ("x-forwarded-for", "81.45.1.2"),
            ("forwarded", "for=8.8.8.8"),
        ]);
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &request), ip("81.45.1.2"));
    }

    #[test]
    fn quoted_strings_may_hold_separators() {
        let trusted = proxies("10.0.0.0/8");
        let request = headers(&[(
            "forwarded",
            "for=81.45.1.2;ext=\"a,b;c\\\"d\", for=10.0.0.3",
        )]);
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &request), ip("81.45.1.2"));
    }

    #[test]
    fn trusted_proxy_list_parsing() {
        let parsed = proxies(" 10.0.0.0/8 ,192.168.1.10,, fd00::/8 ");
        assert!(parsed.is_trusted(ip("10.255.0.1")));
        assert!(parsed.is_trusted(ip("192.168.1.10")));
        assert!(!parsed.is_trusted(ip("192.168.1.11")));
        assert!(parsed.is_trusted(ip("fd00::1")));
        assert_eq!(proxies(""), TrustedProxies::default());
        // Host bits in a CIDR are tolerated: the network is what counts.
        assert!(proxies("10.1.2.3/8").is_trusted(ip("10.9.9.9")));

        for bad in [
            "10.0.0.0/33",
            "proxy.internal",
            "10.0.0.0/8; 10.1.0.0/16",
            "::1/129",
        ] {
            assert_eq!(
                bad.parse::<TrustedProxies>(),
                Err(InvalidTrustedProxy {
                    entry: bad.split(',').next().unwrap_or(bad).trim().to_owned()
                }),
                "{bad}"
            );
        }
    }

    #[test]
    fn ip_retention_parses_known_settings_only() {
        assert_eq!("full".parse(), Ok(IpRetention::Full));
        assert_eq!(" Truncated ".parse(), Ok(IpRetention::Truncated));
        assert_eq!("NONE".parse(), Ok(IpRetention::None));
        assert_eq!(
            "partial".parse::<IpRetention>(),
            Err(UnknownIpRetention {
                value: "partial".to_owned()
            })
        );
    }

    #[test]
    fn ip_retention_keeps_what_it_says() {
        assert_eq!(
            IpRetention::Full.retain(ip("81.45.1.2")).as_deref(),
            Some("81.45.1.2")
        );
        assert_eq!(
            IpRetention::Full.retain(ip("::ffff:81.45.1.2")).as_deref(),
            Some("81.45.1.2")
        );
        assert_eq!(
            IpRetention::Truncated.retain(ip("81.45.1.2")).as_deref(),
            Some("81.45.1.0")
        );
        assert_eq!(
            IpRetention::Truncated
                .retain(ip("2a02:8100:1234:5678::9"))
                .as_deref(),
            Some("2a02:8100:1234::")
        );
        assert_eq!(IpRetention::None.retain(ip("81.45.1.2")), None);
    }
}
