//! Which addresses the service refuses to push to, and a DNS resolver that enforces it.
//!
//! A push URL comes from a user, so without a guard any user could make the service POST to
//! its own network: the database, an admin port, the cloud metadata service. The check is made
//! on the address actually connected to, after resolving: checking the name at registration
//! and connecting to whatever it resolves to later would let a name that re-resolves to an
//! internal address (DNS rebinding) through. reqwest connects only to the addresses this
//! resolver returns; URLs with an IP literal skip resolution and are checked by the transport.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A push refused because its target resolves only to forbidden addresses.
#[derive(Debug, thiserror::Error)]
#[error("{0} address")]
pub struct ForbiddenTarget(pub &'static str);

/// What kind of address `ip` is, if the service does not push there.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, ..) => "unspecified",
        (127, ..) => "loopback",
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => "private",
        // 169.254.169.254 is the metadata service of most clouds.
        (169, 254, _) => "link-local",
        // Carrier-grade NAT; 100.100.100.200 is Alibaba Cloud's metadata service.
        (100, 64..=127, _) => "shared",
        (192, 0, 0) | (198, 18..=19, _) => "reserved",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (224..=255, ..) => "multicast or reserved",
        _ => return None,
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    // Addresses that carry an IPv4 address are judged by it: ::ffff:127.0.0.1 is loopback.
    if let Some(v4) = embedded_v4(&ip) {
        return forbidden_v4(v4);
    }
    Some(match segments[0] {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        // Unique local (fc00::/7), which holds AWS's IPv6 metadata address fd00:ec2::254.
        s if s & 0xfe00 == 0xfc00 => "private",
        s if s & 0xffc0 == 0xfe80 => "link-local",
        // Deprecated site-local.
        s if s & 0xffc0 == 0xfec0 => "private",
        s if s & 0xff00 == 0xff00 => "multicast",
        // Teredo tunnels hide the real (possibly internal) endpoint.
        0x2001 if segments[1] == 0 => "tunnelled",
        0x2001 if segments[1] == 0x0db8 => "documentation",
        _ => return None,
    })
}

/// The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d),
/// NAT64 (64:ff9b::a.b.c.d) or 6to4 (2002:aabb:ccdd::) address.
fn embedded_v4(ip: &Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, ..] => Some(tail()),
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => Some(tail()),
        [0x64, 0xff9b, 0, 0, 0, 0, ..] => Some(tail()),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)),
        _ => None,
    }
}

/// Resolves with the system resolver and keeps only the addresses pushes may go to; when none
/// is left, fails with `ForbiddenTarget` (which the transport reports as a refusal).
pub(super) struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if allow_private {
                return Ok(Box::new(resolved.into_iter()) as Addrs);
            }
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match forbidden(addr.ip()) {
                    Some(kind) => {
                        refused.get_or_insert(kind);
                        false
                    }
                    None => true,
                })
                .collect();
            match (allowed.is_empty(), refused) {
                (true, Some(kind)) => Err(Box::new(ForbiddenTarget(kind)) as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(ip: &str) -> Option<&'static str> {
        forbidden(ip.parse().expect("an IP address"))
    }

    #[test]
    fn internal_addresses_are_forbidden() {
        for (ip, expected) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.10", "private"),
            ("169.254.169.254", "link-local"),
            ("100.100.100.200", "shared"),
            ("0.0.0.0", "unspecified"),
            ("255.255.255.255", "multicast or reserved"),
            ("224.0.0.1", "multicast or reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00:ec2::254", "private"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::10.0.0.1", "private"),
            ("64:ff9b::a00:1", "private"),
            ("2002:a00:1::", "private"),
            ("2001:0:4136:e378::1", "tunnelled"),
        ] {
            assert_eq!(kind(ip), Some(expected), "{ip}");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in ["1.1.1.1", "172.32.0.1", "100.128.0.1", "93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert_eq!(kind(ip), None, "{ip}");
        }
    }
}
