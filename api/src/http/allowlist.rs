//! The IP allowlist per role: a role with a list is admitted only from a listed network (its
//! tokens are refused with 403 `ip_not_allowed` from anywhere else); a role without one, from
//! anywhere. The address checked is the TCP peer's: the API trusts no `X-Forwarded-For`, so
//! behind a proxy the list names the proxy (docs/api.md).

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;

use super::auth::Role;

/// An IPv4 or IPv6 network in CIDR form (`10.0.0.0/8`, `2001:db8::/32`); a bare address is a
/// network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 peer may arrive as an IPv4-mapped IPv6 address on a dual-stack socket.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length is 0 to {max}"))?,
        };
        Ok(IpNet { addr, prefix })
    }
}

/// Parses a comma-separated list of networks.
pub fn parse_list(text: &str) -> Result<Vec<IpNet>, String> {
    text.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(IpNet::from_str)
        .collect()
}

/// The networks each role is admitted from.
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    per_role: HashMap<Role, Vec<IpNet>>,
}

impl Allowlist {
    /// The lists the settings give (`TRX_ALLOW_IPS_BOT`, …); an error names the variable.
    pub fn from_settings(
        settings: &crate::settings::AllowIpsSettings,
    ) -> Result<Allowlist, crate::settings::SettingsError> {
        let mut list = Allowlist::default();
        for (key, role, value) in [
            ("http.allow_ips.bot", Role::Bot, &settings.bot),
            ("http.allow_ips.finance", Role::Finance, &settings.finance),
            ("http.allow_ips.auditor", Role::Auditor, &settings.auditor),
            ("http.allow_ips.admin", Role::Admin, &settings.admin),
        ] {
            if let Some(text) = value {
                let networks =
                    parse_list(text).map_err(|message| crate::settings::SettingsError::Env {
                        name: crate::settings::Settings::name_of(key),
                        message,
                    })?;
                list = list.with(role, networks);
            }
        }
        Ok(list)
    }

    pub fn with(mut self, role: Role, networks: Vec<IpNet>) -> Self {
        self.per_role.insert(role, networks);
        self
    }

    /// Whether `role` may call from `peer` (`None`: the peer is not known, admitted only when
    /// the role has no list).
    pub fn admits(&self, role: Role, peer: Option<IpAddr>) -> bool {
        match self.per_role.get(&role) {
            None => true,
            Some(networks) => peer.is_some_and(|ip| networks.iter().any(|n| n.contains(ip))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_network_contains_exactly_the_addresses_under_its_prefix() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.255.7")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped IPv6");
        let one: IpNet = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")));
        assert!(!one.contains(ip("127.0.0.2")));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        assert!(!all.contains(ip("2001:db8::1")), "families never match");
        let v6: IpNet = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
    }

    #[test]
    fn bad_networks_are_refused_with_the_text() {
        for bad in ["10.0.0.0/33", "300.1.1.1", "::/129", "10.0.0.0/x", "host"] {
            let e = bad.parse::<IpNet>().unwrap_err();
            assert!(e.contains(bad.split('/').next().unwrap()), "{e}");
        }
        assert_eq!(parse_list(" 10.0.0.0/8, ,127.0.0.1 ").unwrap().len(), 2);
    }

    #[test]
    fn a_role_with_a_list_is_admitted_only_from_it_and_others_from_anywhere() {
        let list = Allowlist::default().with(Role::Admin, parse_list("10.0.0.0/8").unwrap());
        assert!(list.admits(Role::Admin, Some(ip("10.9.9.9"))));
        assert!(!list.admits(Role::Admin, Some(ip("192.0.2.1"))));
        assert!(!list.admits(Role::Admin, None));
        assert!(list.admits(Role::Bot, Some(ip("192.0.2.1"))));
        assert!(list.admits(Role::Bot, None));
    }

    #[test]
    fn the_settings_lists_apply_to_their_roles_and_a_bad_one_names_its_variable() {
        let settings = crate::settings::AllowIpsSettings {
            admin: Some("10.0.0.0/8,192.0.2.1".into()),
            ..Default::default()
        };
        let list = Allowlist::from_settings(&settings).unwrap();
        assert!(list.admits(Role::Admin, Some(ip("192.0.2.1"))));
        assert!(!list.admits(Role::Admin, Some(ip("192.0.2.2"))));
        assert!(list.admits(Role::Finance, Some(ip("192.0.2.2"))));
        for (settings, name) in [
            (
                crate::settings::AllowIpsSettings {
                    admin: Some("10.0.0.0/40".into()),
                    ..Default::default()
                },
                "TRX_ALLOW_IPS_ADMIN",
            ),
            (
                crate::settings::AllowIpsSettings {
                    bot: Some("localhost".into()),
                    ..Default::default()
                },
                "TRX_ALLOW_IPS_BOT",
            ),
        ] {
            let err = Allowlist::from_settings(&settings).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
