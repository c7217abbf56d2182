//! The base of the links the server hands out (export downloads, mailed
//! invitation and reset links): `PUBLIC_URL`, or else one made from the
//! address the server listens on.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Where links point, and whether that had to be guessed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkBase {
    pub url: String,
    /// The listen address is unspecified (`0.0.0.0`, `::`), which no client
    /// can connect to, and `PUBLIC_URL` is not set: `url` names the loopback
    /// address instead, which works on this machine only.
    pub guessed: bool,
}

/// `public_url` when given; otherwise `http://` and `listen`, with an
/// unspecified address replaced by the loopback address of its family.
pub fn link_base(public_url: Option<&str>, listen: SocketAddr) -> LinkBase {
    if let Some(url) = public_url {
        return LinkBase {
            url: url.trim_end_matches('/').to_owned(),
            guessed: false,
        };
    }
    if !listen.ip().is_unspecified() {
        return LinkBase {
            url: format!("http://{listen}"),
            guessed: false,
        };
    }
    let loopback = match listen.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    LinkBase {
        url: format!("http://{}", SocketAddr::new(loopback, listen.port())),
        guessed: true,
    }
}

impl LinkBase {
    /// Says, at warn level, when the links had to be guessed: mailed links
    /// would otherwise be found broken only by the agents who click them.
    pub fn warn_if_guessed(&self, listen: SocketAddr) {
        if self.guessed {
            tracing::warn!(
                listen_addr = %listen,
                links = %self.url,
                "PUBLIC_URL is not set and LISTEN_ADDR is {listen}, an address no client can open: \
                 links in mail and in answers use {url}, which works on this machine only. \
                 Set PUBLIC_URL to the address clients reach this server at (e.g. https://contacts.example.com)",
                url = self.url,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn public_url_wins() {
        let base = link_base(Some("https://contacts.example.com/"), addr("0.0.0.0:8080"));
        assert_eq!(base.url, "https://contacts.example.com");
        assert!(!base.guessed);
    }

    #[test]
    fn a_specific_listen_address_is_used_as_it_is() {
        let base = link_base(None, addr("192.0.2.7:9000"));
        assert_eq!(base.url, "http://192.0.2.7:9000");
        assert!(!base.guessed);
    }

    #[test]
    fn unspecified_addresses_become_loopback_and_say_so() {
        let v4 = link_base(None, addr("0.0.0.0:8080"));
        assert_eq!(v4.url, "http://127.0.0.1:8080");
        assert!(v4.guessed);
        let v6 = link_base(None, addr("[::]:8080"));
        assert_eq!(v6.url, "http://[::1]:8080");
        assert!(v6.guessed);
    }
}
