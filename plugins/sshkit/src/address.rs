//! `HOST[:PORT]`, as `address` in a .compute file.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub host: String,
    pub port: u16,
}

impl Address {
    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port`; the port defaults to 22.
    pub fn parse(text: &str) -> Result<Address, String> {
        let text = text.trim();
        let bad = || format!("address '{text}' is not HOST or HOST:PORT");
        if text.is_empty() {
            return Err(bad());
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(bad)?;
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return Err(bad()),
            }
        } else {
            match text.rsplit_once(':') {
                Some((host, port)) if !host.contains(':') => (host, Some(port)),
                Some(_) => (text, None),
                None => (text, None),
            }
        };
        let port = match port {
            Some(port) => port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad)?,
            None => 22,
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(bad());
        }
        Ok(Address {
            host: host.to_owned(),
            port,
        })
    }

    /// The host as known_hosts names it: `host`, or `[host]:port` off port 22.
    pub fn known_hosts_name(&self) -> String {
        if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_v6() {
        assert_eq!(
            Address::parse("example.org").unwrap(),
            Address {
                host: "example.org".into(),
                port: 22
            }
        );
        assert_eq!(Address::parse("127.0.0.1:2222").unwrap().port, 2222);
        assert_eq!(
            Address::parse("[::1]:2200").unwrap(),
            Address {
                host: "::1".into(),
                port: 2200
            }
        );
        assert_eq!(Address::parse("::1").unwrap().host, "::1");
        assert!(Address::parse("host:0").is_err());
        assert!(Address::parse("host:http").is_err());
        assert!(Address::parse("").is_err());
        assert_eq!(Address::parse("h:2222").unwrap().known_hosts_name(), "[h]:2222");
    }
}
