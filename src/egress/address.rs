//! Which IP addresses the egress policy blocks by default, and why.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(segments: [u16; 8], len: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), len)
}

const PRIVATE: &str = "a private address";
const METADATA: &str = "the cloud metadata address";

/// IPv4 ranges nobody outside this machine's network should be able to make us reach.
/// The first match wins, so the single addresses come before the ranges that hold them.
const V4_BLOCKED: &[(Ipv4Net, &str)] = &[
    (v4(169, 254, 169, 254, 32), METADATA),
    (v4(255, 255, 255, 255, 32), "the broadcast address"),
    (v4(0, 0, 0, 0, 8), "a \"this network\" address"),
    (v4(10, 0, 0, 0, 8), PRIVATE),
    (
        v4(100, 64, 0, 0, 10),
        "a shared (carrier-grade NAT) address",
    ),
    (v4(127, 0, 0, 0, 8), "a loopback address"),
    (v4(169, 254, 0, 0, 16), "a link-local address"),
    (v4(172, 16, 0, 0, 12), PRIVATE),
    (v4(192, 0, 0, 0, 24), "an IETF protocol assignment address"),
    (v4(192, 0, 2, 0, 24), "a documentation address"),
    (v4(192, 168, 0, 0, 16), PRIVATE),
    (v4(198, 18, 0, 0, 15), "a benchmarking address"),
    (v4(198, 51, 100, 0, 24), "a documentation address"),
    (v4(203, 0, 113, 0, 24), "a documentation address"),
    (v4(224, 0, 0, 0, 4), "a multicast address"),
    (v4(240, 0, 0, 0, 4), "a reserved address"),
];

/// IPv6 ranges blocked outright; the ones that embed an IPv4 address are judged in
/// [`embedded_v4`] instead.
const V6_BLOCKED: &[(Ipv6Net, &str)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "the unspecified address"),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "a loopback address"),
    // AWS's IPv6 instance metadata endpoint; it lies inside fc00::/7 as well.
    (v6([0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254], 128), METADATA),
    (
        v6([0x0064, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        "a local-use NAT64 address",
    ),
    (
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        "a unique-local address",
    ),
    (
        v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        "a link-local address",
    ),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "a site-local address",
    ),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "a multicast address"),
];

/// Says why `ip` is blocked by default (for example "a private address"), or `None` when it is
/// an ordinary public address.
pub(super) fn blocked_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => v4_reason(ip),
        IpAddr::V6(ip) => v6_reason(ip),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    V4_BLOCKED
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, reason)| *reason)
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(reason) = V6_BLOCKED
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, reason)| *reason)
    {
        return Some(reason);
    }
    // An address that carries an IPv4 address reaches that address, so it is judged by it.
    embedded_v4(ip).and_then(v4_reason)
}

/// The IPv4 address inside an IPv4-mapped (::ffff:0:0/96), IPv4-compatible (::/96), NAT64
/// (64:ff9b::/96) or 6to4 (2002::/16) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let [.., a, b, c, d] = ip.octets();
    let low = Ipv4Addr::new(a, b, c, d);
    match ip.segments() {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] => Some(low),
        [0x0064, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, high, low16, ..] => {
            Some(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low16)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::blocked_reason;
    use std::net::IpAddr;

    fn reason(ip: &str) -> Option<&'static str> {
        blocked_reason(ip.parse::<IpAddr>().expect("test addresses parse"))
    }

    #[test]
    fn loopback_addresses_are_blocked() {
        assert_eq!(reason("127.0.0.1"), Some("a loopback address"));
        assert_eq!(reason("127.255.0.7"), Some("a loopback address"));
        assert_eq!(reason("::1"), Some("a loopback address"));
    }

    #[test]
    fn private_ranges_are_blocked() {
        for ip in ["10.0.0.5", "172.16.0.1", "172.31.255.255", "192.168.1.1"] {
            assert_eq!(reason(ip), Some("a private address"), "{ip}");
        }
    }

    #[test]
    fn addresses_next_to_private_ranges_are_public() {
        for ip in [
            "172.15.255.255",
            "172.32.0.0",
            "192.169.0.1",
            "100.63.255.255",
            "11.0.0.1",
        ] {
            assert_eq!(reason(ip), None, "{ip}");
        }
    }

    #[test]
    fn link_local_and_the_metadata_address_are_blocked() {
        assert_eq!(reason("169.254.1.1"), Some("a link-local address"));
        assert_eq!(
            reason("169.254.169.254"),
            Some("the cloud metadata address")
        );
        assert_eq!(reason("fe80::1"), Some("a link-local address"));
        assert_eq!(reason("fd00:ec2::254"), Some("the cloud metadata address"));
    }

    #[test]
    fn cgnat_this_network_and_benchmarking_ranges_are_blocked() {
        assert_eq!(
            reason("100.64.0.1"),
            Some("a shared (carrier-grade NAT) address")
        );
        assert_eq!(
            reason("100.100.100.200"),
            Some("a shared (carrier-grade NAT) address")
        );
        assert_eq!(reason("0.0.0.0"), Some("a \"this network\" address"));
        assert_eq!(reason("0.1.2.3"), Some("a \"this network\" address"));
        assert_eq!(reason("198.18.0.1"), Some("a benchmarking address"));
        assert_eq!(reason("198.19.255.255"), Some("a benchmarking address"));
    }

    #[test]
    fn multicast_broadcast_and_reserved_addresses_are_blocked() {
        assert_eq!(reason("224.0.0.1"), Some("a multicast address"));
        assert_eq!(reason("239.255.255.250"), Some("a multicast address"));
        assert_eq!(reason("255.255.255.255"), Some("the broadcast address"));
        assert_eq!(reason("240.0.0.1"), Some("a reserved address"));
        assert_eq!(reason("ff02::1"), Some("a multicast address"));
    }

    #[test]
    fn special_ipv6_ranges_are_blocked() {
        assert_eq!(reason("::"), Some("the unspecified address"));
        assert_eq!(reason("fc00::1"), Some("a unique-local address"));
        assert_eq!(reason("fd12:3456::1"), Some("a unique-local address"));
        assert_eq!(reason("fec0::1"), Some("a site-local address"));
        assert_eq!(
            reason("64:ff9b:1::a00:1"),
            Some("a local-use NAT64 address")
        );
    }

    #[test]
    fn ipv6_addresses_that_embed_ipv4_are_judged_by_the_ipv4_address() {
        assert_eq!(reason("::ffff:127.0.0.1"), Some("a loopback address"));
        assert_eq!(
            reason("::ffff:169.254.169.254"),
            Some("the cloud metadata address")
        );
        assert_eq!(reason("::ffff:10.1.2.3"), Some("a private address"));
        assert_eq!(reason("::10.1.2.3"), Some("a private address"));
        assert_eq!(reason("64:ff9b::192.168.0.1"), Some("a private address"));
        assert_eq!(reason("2002:7f00:1::"), Some("a loopback address"));
        assert_eq!(
            reason("2002:a9fe:a9fe::1"),
            Some("the cloud metadata address")
        );
        assert_eq!(reason("::ffff:93.184.216.34"), None);
        assert_eq!(reason("64:ff9b::93.184.216.34"), None);
        assert_eq!(reason("2002:5db8:d822::1"), None);
    }

    #[test]
    fn public_addresses_are_not_blocked() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "2a00:1450::1",
        ] {
            assert_eq!(reason(ip), None, "{ip}");
        }
    }
}
