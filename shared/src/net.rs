//! The policy for URLs the product calls on someone's behalf (alert webhooks, their tests): only
//! http(s), never link-local or cloud metadata addresses, and loopback or private ranges only
//! when the operator allows them (`OUTBOUND_ALLOW_PRIVATE`). Every address a host name resolves
//! to is checked, and the request is then pinned to the checked addresses, so a name cannot
//! answer differently between the check and the call.

use std::net::{IpAddr, SocketAddr};

use url::Url;

/// Why a URL may not be called.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("only http and https URLs can be called")]
    Scheme,
    #[error("the URL has no host")]
    NoHost,
    #[error("the URL carries credentials in its authority; put secrets in the path or headers")]
    Credentials,
    #[error("{0} could not be resolved")]
    Unresolvable(String),
    #[error("{host} resolves to {addr}, a link-local or metadata address, which is never called")]
    LinkLocal { host: String, addr: IpAddr },
    #[error(
        "{host} resolves to {addr}, a loopback or private address; set OUTBOUND_ALLOW_PRIVATE=true to allow it"
    )]
    Private { host: String, addr: IpAddr },
    #[error(
        "{host} is not a loopback or private address, and OUTBOUND_ALLOW_PUBLIC=false allows only those (given as addresses or localhost)"
    )]
    Public { host: String },
}

/// Which addresses outbound calls may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Loopback and private ranges (`OUTBOUND_ALLOW_PRIVATE`).
    pub allow_private: bool,
    /// Public addresses (`OUTBOUND_ALLOW_PUBLIC`, on by default). Off, host names other than
    /// `localhost` are refused without being resolved, so nothing leaves the machine's networks,
    /// not even a DNS query: for isolated installations and for the test suite.
    pub allow_public: bool,
}

/// A URL that passed the policy, with the addresses it may be called at.
#[derive(Debug, Clone)]
pub struct Checked {
    pub url: Url,
    pub host: String,
    pub addrs: Vec<SocketAddr>,
}

/// Parses and checks `raw` without resolving it (for validating input quickly).
pub fn parse(raw: &str) -> Result<Url, Refused> {
    let url = Url::parse(raw.trim()).map_err(|_| Refused::Scheme)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused::Scheme);
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Refused::NoHost);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refused::Credentials);
    }
    Ok(url)
}

/// Resolves `raw` and checks every address it resolves to.
pub async fn check(raw: &str, policy: Policy) -> Result<Checked, Refused> {
    let allow_private = policy.allow_private;
    let url = parse(raw)?;
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']).to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) if !policy.allow_public && !host.eq_ignore_ascii_case("localhost") => {
            return Err(Refused::Public { host });
        }
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|_| Refused::Unresolvable(host.clone()))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(Refused::Unresolvable(host));
    }
    for addr in &addrs {
        match classify(addr.ip()) {
            Class::LinkLocal => return Err(Refused::LinkLocal { host, addr: addr.ip() }),
            Class::Private if !allow_private => {
                return Err(Refused::Private { host, addr: addr.ip() });
            }
            Class::Public if !policy.allow_public => return Err(Refused::Public { host }),
            _ => {}
        }
    }
    Ok(Checked { url, host, addrs })
}

#[derive(Debug, PartialEq, Eq)]
enum Class {
    Public,
    Private,
    LinkLocal,
}

fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_link_local() || v4.is_broadcast() || v4.is_unspecified() || o[0] == 0 {
                Class::LinkLocal
            } else if v4.is_loopback()
                || v4.is_private()
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // carrier-grade NAT, 100.64/10
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking, 198.18/15
                || v4.is_multicast()
            {
                Class::Private
            } else {
                Class::Public
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return classify(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            if v6.is_unspecified() || (first & 0xffc0) == 0xfe80 {
                Class::LinkLocal
            } else if v6.is_loopback() || (first & 0xfe00) == 0xfc00 || v6.is_multicast() {
                Class::Private
            } else {
                Class::Public
            }
        }
    }
}

/// An HTTP client for one checked URL: pinned to the checked addresses, no redirects (a
/// redirect could lead past the policy), bounded by `timeout`.
pub fn client_for(
    checked: &Checked,
    timeout: std::time::Duration,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .resolve_to_addrs(&checked.host, &checked.addrs)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(std::time::Duration::from_secs(5)))
        .user_agent(concat!("CertifyClouds/", env!("CARGO_PKG_VERSION")))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn metadata_and_link_local_addresses_are_refused_even_when_private_is_allowed() {
        for url in
            ["http://169.254.169.254/latest/meta-data", "http://[fe80::1]/", "http://0.0.0.0/"]
        {
            let refused = check(url, OPEN).await.unwrap_err();
            assert!(matches!(refused, Refused::LinkLocal { .. }), "{url}: {refused:?}");
        }
    }

    #[tokio::test]
    async fn private_ranges_need_the_operator_to_allow_them() {
        for url in
            ["http://127.0.0.1:9/", "http://10.1.2.3/", "http://[::1]:80/", "http://localhost/"]
        {
            let public_only = Policy { allow_private: false, allow_public: true };
            assert!(matches!(check(url, public_only).await, Err(Refused::Private { .. })), "{url}");
            assert!(check(url, OPEN).await.is_ok(), "{url}");
        }
    }

    const OPEN: Policy = Policy { allow_private: true, allow_public: true };

    #[tokio::test]
    async fn without_public_targets_names_are_not_even_resolved() {
        let local = Policy { allow_private: true, allow_public: false };
        for url in ["https://hooks.example.test/x", "http://8.8.8.8/", "http://[2001:db8::1]/"] {
            assert!(matches!(check(url, local).await, Err(Refused::Public { .. })), "{url}");
        }
        assert!(check("http://localhost:9/", local).await.is_ok());
        assert!(check("http://127.0.0.1:9/", local).await.is_ok());
    }

    #[test]
    fn only_plain_http_urls_without_credentials_pass_the_parse() {
        assert_eq!(parse("ftp://example.test/").unwrap_err(), Refused::Scheme);
        assert_eq!(parse("not a url").unwrap_err(), Refused::Scheme);
        assert_eq!(parse("https://user:pw@example.test/").unwrap_err(), Refused::Credentials);
        assert!(parse("https://hooks.example.test/services/T/B/X").is_ok());
        assert_eq!(classify("8.8.8.8".parse().unwrap()), Class::Public);
        assert_eq!(classify("100.64.0.1".parse().unwrap()), Class::Private);
        assert_eq!(classify("::ffff:169.254.169.254".parse().unwrap()), Class::LinkLocal);
    }
}
