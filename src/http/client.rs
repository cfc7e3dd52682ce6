//! Who sent a request: the socket's peer, or, behind proxies named in
//! `SHOPBRIDGE_TRUSTED_PROXIES`, the rightmost `X-Forwarded-For` hop that is not one of them.
//!
//! Only hops a trusted proxy wrote are believed: a client can put anything at the left of the
//! header, but every proxy appends the address it saw, so reading from the right and stopping
//! at the first address that is not a trusted proxy gives the client as the outermost trusted
//! proxy saw it. Without trusted proxies the header is ignored altogether.

use std::convert::Infallible;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use super::AppState;

/// The proxies whose `X-Forwarded-For` hops are believed: addresses and networks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// True when `ip` is one of the proxies.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// True when no proxy is trusted (the header is ignored).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// A comma-separated list of IP addresses and CIDR networks (`10.0.0.0/8`, `::1`); empty
    /// for none.
    fn from_str(s: &str) -> Result<Self, String> {
        s.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| format!("{item:?} is neither an IP address nor a CIDR network"))
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&list.join(","))
    }
}

/// The client of a request: the socket's peer, or the rightmost untrusted `X-Forwarded-For`
/// hop when the peer is a trusted proxy. `None` when the server was not given peer addresses
/// (a router driven without a socket).
#[must_use]
pub fn client_ip(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    proxies: &TrustedProxies,
) -> Option<IpAddr> {
    let mut client = peer?.to_canonical();
    if !proxies.contains(client) {
        return Some(client);
    }
    // Several headers are one list, in order (RFC 9110 §5.3).
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.into_iter().rev() {
        // A hop that is not an address was not written by a proxy we trust: stop at the last
        // one that was.
        let Some(ip) = parse_hop(hop) else { break };
        client = ip;
        if !proxies.contains(ip) {
            break;
        }
    }
    Some(client)
}

/// An address as proxies write it: bare, or with a port (`203.0.113.7:4711`, `[2001:db8::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// The client of a request, as an extractor: see [`client_ip`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client(pub Option<IpAddr>);

impl FromRequestParts<AppState> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(Client(client_ip(
            peer,
            &parts.headers,
            &app.settings.trusted_proxies,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        headers
    }

    #[test]
    fn the_header_is_ignored_unless_proxies_are_trusted() {
        let headers = forwarded(&["198.51.100.9"]);
        let none = TrustedProxies::default();
        assert_eq!(
            client_ip(Some(ip("10.0.0.2")), &headers, &none),
            Some(ip("10.0.0.2"))
        );
        let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        assert_eq!(
            client_ip(Some(ip("192.0.2.1")), &headers, &proxies),
            Some(ip("192.0.2.1")),
            "a peer that is not a trusted proxy is the client, whatever it says"
        );
    }

    #[test]
    fn the_rightmost_hop_that_is_not_a_trusted_proxy_is_the_client() {
        let proxies: TrustedProxies = "10.0.0.0/8, 192.0.2.5".parse().unwrap();
        // The client wrote the first hop itself; the proxies appended the rest.
        let headers = forwarded(&["1.2.3.4, 198.51.100.9", "192.0.2.5"]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.2")), &headers, &proxies),
            Some(ip("198.51.100.9"))
        );
        let with_port = forwarded(&["[2001:db8::7]:4711"]);
        assert_eq!(
            client_ip(Some(ip("::ffff:10.0.0.2")), &with_port, &proxies),
            Some(ip("2001:db8::7"))
        );
        // Garbage where an address should be: the last trusted hop stands.
        let garbage = forwarded(&["198.51.100.9, unknown"]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.2")), &garbage, &proxies),
            Some(ip("10.0.0.2"))
        );
        // No header at all: the proxy itself.
        assert_eq!(
            client_ip(Some(ip("10.0.0.2")), &HeaderMap::new(), &proxies),
            Some(ip("10.0.0.2"))
        );
    }

    #[test]
    fn proxies_are_addresses_or_networks() {
        let proxies: TrustedProxies = " 10.1.2.3 ,fd00::/8,".parse().unwrap();
        assert!(proxies.contains(ip("10.1.2.3")));
        assert!(proxies.contains(ip("::ffff:10.1.2.3")));
        assert!(!proxies.contains(ip("10.1.2.4")));
        assert!(proxies.contains(ip("fd12::1")));
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("proxy.example".parse::<TrustedProxies>().is_err());
    }
}
