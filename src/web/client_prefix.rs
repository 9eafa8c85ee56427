//! The unit a console client is counted in (login attempts, open connections): its IPv4
//! address, or the /64 of its IPv6 address — one IPv6 host is routinely given a whole /64
//! (SLAAC, privacy addresses), so counting full addresses would give it 2^64 tries.

use std::net::{IpAddr, Ipv6Addr};

/// The address `ip` is counted under: an IPv4 address as it is (IPv4-mapped IPv6 included),
/// an IPv6 address with its last 64 bits cleared.
pub fn client_prefix(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !u128::from(u64::MAX);
                IpAddr::V6(Ipv6Addr::from(network))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let a = client_prefix(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd"));
        let b = client_prefix(ip("2001:db8:1:2::1"));
        let other = client_prefix(ip("2001:db8:1:3::1"));
        assert_eq!(a, ip("2001:db8:1:2::"));
        assert_eq!(a, b, "same /64");
        assert_ne!(a, other, "next /64");
    }

    #[test]
    fn ipv4_clients_are_counted_per_address_also_when_mapped() {
        assert_eq!(client_prefix(ip("10.0.0.7")), ip("10.0.0.7"));
        assert_ne!(client_prefix(ip("10.0.0.7")), client_prefix(ip("10.0.0.8")));
        assert_eq!(client_prefix(ip("::ffff:10.0.0.7")), ip("10.0.0.7"));
    }
}
