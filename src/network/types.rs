//! The values the network code shares with the engine: port mappings,
//! endpoints, the network mode, and the few container fields it needs.

use serde::{Deserialize, Serialize};

/// One published port, parsed (`engine::opts::parse_port` makes them from `-p`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PortMap {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: String,
}

impl std::fmt::Display for PortMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}->{}/{}",
            self.host_ip, self.host_port, self.container_port, self.proto
        )
    }
}

/// A container's interface on one network.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Endpoint {
    pub ip: String,
    pub prefix: u8,
    pub gateway: String,
    pub mac: String,
    pub host_veth: String,
}

/// docker's `--network`: stored in config.json as docker spells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(from = "String", into = "String")]
pub enum NetworkMode {
    /// The default bridge network ("bridge" or "default").
    #[default]
    Bridge,
    Host,
    None,
    /// Share another container's namespace (its name or id as given).
    Container(String),
    /// A user-defined network.
    User(String),
}

impl NetworkMode {
    pub fn parse(s: &str) -> NetworkMode {
        match s {
            "" | "bridge" | "default" => NetworkMode::Bridge,
            "host" => NetworkMode::Host,
            "none" => NetworkMode::None,
            m => match m.strip_prefix("container:") {
                Some(c) => NetworkMode::Container(c.to_string()),
                None => NetworkMode::User(m.to_string()),
            },
        }
    }

    /// The network (by name) this mode attaches to, if any.
    pub fn network(&self) -> Option<&str> {
        match self {
            NetworkMode::Bridge => Some(super::DEFAULT),
            NetworkMode::User(n) => Some(n),
            _ => None,
        }
    }

    pub fn is_user_defined(&self) -> bool {
        matches!(self, NetworkMode::User(_))
    }
}

impl From<String> for NetworkMode {
    fn from(s: String) -> NetworkMode {
        NetworkMode::parse(&s)
    }
}

impl From<NetworkMode> for String {
    fn from(m: NetworkMode) -> String {
        m.to_string()
    }
}

impl std::fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetworkMode::Bridge => f.write_str("bridge"),
            NetworkMode::Host => f.write_str("host"),
            NetworkMode::None => f.write_str("none"),
            NetworkMode::Container(c) => write!(f, "container:{c}"),
            NetworkMode::User(n) => f.write_str(n),
        }
    }
}

/// What the network code needs to know about a container (not the whole record).
pub struct Member<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub mode: &'a NetworkMode,
    /// Networks joined later with `network connect`.
    pub networks: &'a [String],
    pub aliases: &'a [String],
    pub ports: &'a [PortMap],
    /// `--ip` / `--mac-address`, on the primary network.
    pub ip: Option<std::net::Ipv4Addr>,
    pub mac: Option<[u8; 6]>,
    /// Fixed addresses on other networks (`network connect --ip`, compose's `ipv4_address`).
    pub ips: &'a std::collections::BTreeMap<String, std::net::Ipv4Addr>,
    /// `--dns`: where the network's resolver forwards this member's other queries.
    pub dns: &'a [std::net::IpAddr],
}

impl Member<'_> {
    /// The primary network first, then the connected ones.
    pub fn networks(&self) -> Vec<String> {
        let mut v: Vec<String> = self.mode.network().into_iter().map(String::from).collect();
        for n in self.networks {
            if !v.contains(n) {
                v.push(n.clone());
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip() {
        for s in ["bridge", "host", "none", "container:web", "mynet"] {
            assert_eq!(NetworkMode::parse(s).to_string(), s);
        }
        assert_eq!(NetworkMode::parse("default"), NetworkMode::Bridge);
        assert_eq!(NetworkMode::parse("bridge").network(), Some("bridge"));
        assert_eq!(NetworkMode::parse("host").network(), None);
        let j = serde_json::to_string(&NetworkMode::User("n1".into())).unwrap();
        assert_eq!(j, "\"n1\"");
    }
}
