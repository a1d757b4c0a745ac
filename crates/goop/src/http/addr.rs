//! Which IP addresses `goop.http` may connect to, and how URL hosts that are numbers become IPs.
//!
//! The classifier is the SSRF wall: every address the client would connect to (IP-literal
//! hosts, each DNS answer, each redirect hop) passes through [`classify`] first. IPv6 forms that
//! carry an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by the address they carry.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is unreachable for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Loopback,
    Private,
    LinkLocal,
    SharedCgnat,
    Multicast,
    Broadcast,
    Unspecified,
    Documentation,
    Benchmarking,
    Reserved,
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Range::Loopback => "loopback",
            Range::Private => "private network",
            Range::LinkLocal => "link-local",
            Range::SharedCgnat => "shared address space (CGNAT)",
            Range::Multicast => "multicast",
            Range::Broadcast => "broadcast",
            Range::Unspecified => "unspecified",
            Range::Documentation => "documentation range",
            Range::Benchmarking => "benchmarking range",
            Range::Reserved => "reserved range",
        })
    }
}

/// The special range `ip` falls in, or `None` for a public unicast address.
pub fn classify(ip: IpAddr) -> Option<Range> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// IPv4 special-purpose ranges (IANA registry), minus the few that are globally reachable.
pub fn classify_v4(ip: Ipv4Addr) -> Option<Range> {
    let [a, b, c, _] = ip.octets();
    let range = match (a, b, c) {
        _ if ip.is_broadcast() => Range::Broadcast,
        _ if ip.is_unspecified() => Range::Unspecified,
        // 0.0.0.0/8 "this network": Linux connects 0.x to the local host.
        (0, _, _) => Range::Unspecified,
        (127, _, _) => Range::Loopback,
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => Range::Private,
        (100, 64..=127, _) => Range::SharedCgnat,
        (169, 254, _) => Range::LinkLocal,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Range::Documentation,
        (198, 18..=19, _) => Range::Benchmarking,
        // IETF protocol assignments and the deprecated 6to4 relay anycast.
        (192, 0, 0) | (192, 88, 99) => Range::Reserved,
        (224..=239, _, _) => Range::Multicast,
        (240..=255, _, _) => Range::Reserved,
        _ => return None,
    };
    Some(range)
}

/// IPv6: only global unicast (2000::/3) outside its special blocks is public; forms that
/// embed an IPv4 address are judged by that address.
pub fn classify_v6(ip: Ipv6Addr) -> Option<Range> {
    if ip.is_unspecified() {
        return Some(Range::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Range::Loopback);
    }
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    // IPv4-compatible ::a.b.c.d (deprecated, ::/96): never routable, but name the inner reason.
    if s[..6] == [0; 6] {
        return Some(classify_v4(embedded(s[6], s[7])).unwrap_or(Range::Reserved));
    }
    // NAT64 well-known prefix 64:ff9b::/96 reaches the embedded IPv4 address.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded(s[6], s[7]));
    }
    // Local-use NAT64 64:ff9b:1::/48 (RFC 8215) translates into the operator's own networks.
    if s[..3] == [0x64, 0xff9b, 1] {
        return Some(Range::Private);
    }
    // 6to4 2002:AABB:CCDD::/48 tunnels to the IPv4 address AA.BB.CC.DD.
    if s[0] == 0x2002 {
        return classify_v4(embedded(s[1], s[2]));
    }
    if s[0] & 0xe000 != 0x2000 {
        let range = match s[0] {
            0xff00..=0xffff => Range::Multicast,
            0xfe80..=0xfebf => Range::LinkLocal,
            // Unique local fc00::/7 and deprecated site-local fec0::/10.
            0xfc00..=0xfdff | 0xfec0..=0xfeff => Range::Private,
            _ => Range::Reserved,
        };
        return Some(range);
    }
    match (s[0], s[1]) {
        (0x2001, 0x0db8) => Some(Range::Documentation),
        (0x3fff, 0x0000..=0x0fff) => Some(Range::Documentation),
        // 2001::/23 IETF protocol assignments: Teredo, benchmarking, ORCHID and the like.
        (0x2001, 0x0000..=0x01ff) => Some(Range::Reserved),
        _ => None,
    }
}

fn embedded(hi: u16, lo: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))
}

/// The IP a URL host stands for without DNS, as a browser or `inet_aton` would read it:
/// `[v6]`, dotted quads, and the numeric IPv4 shorthands (`2130706433`, `0177.0.0.1`,
/// `0x7f.1`, `127.1`, a trailing dot). `None` means the host is a name to look up.
pub fn literal_ip(host: &str) -> Option<IpAddr> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip);
    }
    loose_ipv4(host).map(IpAddr::V4)
}

/// `inet_aton` rules: 1 to 4 parts, each decimal, octal (leading 0) or hex (0x); the last
/// part fills the remaining bytes.
fn loose_ipv4(host: &str) -> Option<Ipv4Addr> {
    let host = host.strip_suffix('.').unwrap_or(host);
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut numbers = Vec::with_capacity(parts.len());
    for part in &parts {
        numbers.push(number(part)?);
    }
    let (last, head) = numbers.split_last()?;
    let mut value: u64 = 0;
    for (i, n) in head.iter().enumerate() {
        if *n > 255 {
            return None;
        }
        value |= n << (8 * (3 - i));
    }
    let last_bits = 8 * (4 - head.len() as u32);
    if *last >= 1u64 << last_bits {
        return None;
    }
    u32::try_from(value | last).ok().map(Ipv4Addr::from)
}

fn number(part: &str) -> Option<u64> {
    let (digits, radix) = if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        (hex, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    // "0x" alone is 0 for inet_aton; an empty part ("1..2") is not a number.
    if digits.is_empty() {
        return if radix == 16 { Some(0) } else { None };
    }
    if !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    // Any number of leading zeros is legal; past 12 significant digits it is out of range.
    let significant = digits.trim_start_matches('0');
    if significant.len() > 12 {
        return None;
    }
    if significant.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(significant, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        literal_ip(s).unwrap_or_else(|| panic!("{s} should be an IP literal"))
    }

    #[test]
    fn blocks_special_ipv4_ranges() {
        let cases = [
            ("127.0.0.1", Range::Loopback),
            ("127.255.255.254", Range::Loopback),
            ("10.0.0.1", Range::Private),
            ("172.16.0.1", Range::Private),
            ("172.31.255.255", Range::Private),
            ("192.168.1.1", Range::Private),
            ("169.254.169.254", Range::LinkLocal),
            ("100.64.0.1", Range::SharedCgnat),
            ("100.127.255.255", Range::SharedCgnat),
            ("224.0.0.1", Range::Multicast),
            ("239.255.255.250", Range::Multicast),
            ("255.255.255.255", Range::Broadcast),
            ("0.0.0.0", Range::Unspecified),
            ("0.1.2.3", Range::Unspecified),
            ("192.0.2.1", Range::Documentation),
            ("198.51.100.7", Range::Documentation),
            ("203.0.113.9", Range::Documentation),
            ("198.18.0.1", Range::Benchmarking),
            ("198.19.255.255", Range::Benchmarking),
            ("192.0.0.8", Range::Reserved),
            ("192.88.99.1", Range::Reserved),
            ("240.0.0.1", Range::Reserved),
        ];
        for (addr, want) in cases {
            assert_eq!(classify(ip(addr)), Some(want), "{addr}");
        }
    }

    #[test]
    fn blocks_special_ipv6_ranges() {
        let cases = [
            ("[::1]", Range::Loopback),
            ("[::]", Range::Unspecified),
            ("[fc00::1]", Range::Private),
            ("[fd12:3456::1]", Range::Private),
            ("[fec0::1]", Range::Private),
            ("[fe80::1]", Range::LinkLocal),
            ("[ff02::1]", Range::Multicast),
            ("[ff0e::1]", Range::Multicast),
            ("[2001:db8::1]", Range::Documentation),
            ("[3fff::1]", Range::Documentation),
            ("[2001::1]", Range::Reserved),
            ("[2001:2::1]", Range::Reserved),
            ("[100::1]", Range::Reserved),
            ("[64:ff9b:1::a00:1]", Range::Private),
        ];
        for (addr, want) in cases {
            assert_eq!(classify(ip(addr)), Some(want), "{addr}");
        }
    }

    #[test]
    fn judges_ipv6_forms_by_the_ipv4_address_they_carry() {
        let cases = [
            ("[::ffff:127.0.0.1]", Range::Loopback),
            ("[::ffff:7f00:1]", Range::Loopback),
            ("[::ffff:10.0.0.1]", Range::Private),
            ("[::ffff:169.254.169.254]", Range::LinkLocal),
            ("[::ffff:0.0.0.0]", Range::Unspecified),
            ("[::127.0.0.1]", Range::Loopback),
            ("[::7f00:1]", Range::Loopback),
            ("[::a00:1]", Range::Private),
            ("[::8.8.8.8]", Range::Reserved),
            ("[64:ff9b::7f00:1]", Range::Loopback),
            ("[64:ff9b::10.0.0.1]", Range::Private),
            ("[64:ff9b::a9fe:a9fe]", Range::LinkLocal),
            ("[2002:7f00:1::1]", Range::Loopback),
            ("[2002:a00:1::]", Range::Private),
            ("[2002:c0a8:101::1]", Range::Private),
        ];
        for (addr, want) in cases {
            assert_eq!(classify(ip(addr)), Some(want), "{addr}");
        }
    }

    #[test]
    fn reads_numeric_ipv4_shorthands_like_inet_aton() {
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        for host in [
            "2130706433",
            "0177.0.0.1",
            "0x7f.1",
            "0X7F.0.0.1",
            "127.1",
            "127.0.1",
            "0x7f000001",
            "017700000001",
            "0177.0.0.01",
            "127.0.0.1.",
            "127.0.0.0x1",
            "0x00000000007f000001",
        ] {
            assert_eq!(literal_ip(host), Some(loopback), "{host}");
            assert_eq!(classify(loopback), Some(Range::Loopback));
        }
        assert_eq!(literal_ip("0xa.0xa9fe"), Some(IpAddr::V4(Ipv4Addr::new(10, 0, 169, 254))));
        assert_eq!(literal_ip("0"), Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        assert_eq!(literal_ip("[::ffff:7f00:1]").map(classify), Some(Some(Range::Loopback)));
    }

    #[test]
    fn names_are_not_literals() {
        for host in ["example.com", "localhost", "1.2.3.4.5", "256.0.0.1", "08.1", "0x1g", "1..2", "", "[zz]"] {
            assert_eq!(literal_ip(host), None, "{host}");
        }
    }

    #[test]
    fn allows_public_addresses() {
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.215.14",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "[2606:4700:4700::1111]",
            "[2001:4860:4860::8888]",
            "[::ffff:8.8.8.8]",
            "[64:ff9b::808:808]",
            "[2002:808:808::1]",
        ] {
            assert_eq!(classify(ip(addr)), None, "{addr}");
        }
    }
}
