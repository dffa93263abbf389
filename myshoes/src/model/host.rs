use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

/// Error returned when a GitHub host is not a valid web address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid GitHub host {value:?}: {reason}")]
pub struct ParseHostError {
    value: String,
    reason: &'static str,
}

/// Which GitHub product a host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostKind {
    /// `github.com`.
    GitHubCom,
    /// GitHub Enterprise Cloud with data residency, `<subdomain>.ghe.com`.
    GheCom,
    /// GitHub Enterprise Server on any other host name.
    Server,
}

/// The web address of a GitHub instance: `https://github.com`, `https://<sub>.ghe.com` or a
/// GitHub Enterprise Server such as `https://ghes.example.com`.
///
/// Parsed from a bare host name (`github.com`) or a URL (`https://ghes.example.com/`). The
/// stored form is normalized: lower-case host, no trailing slash, default port omitted. A
/// path prefix (`https://example.com/github`) is kept for servers behind a reverse proxy.
/// `http` is accepted for loopback test servers; every other scheme is rejected.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct GitHubHost {
    web_url: String,
    kind: HostKind,
}

impl GitHubHost {
    /// Returns the host for `https://github.com`.
    pub fn github_com() -> Self {
        Self {
            web_url: "https://github.com".to_owned(),
            kind: HostKind::GitHubCom,
        }
    }

    /// Returns the normalized web URL without a trailing slash, such as `https://github.com`.
    /// Runner registration uses this URL.
    pub fn web_url(&self) -> &str {
        &self.web_url
    }

    /// Returns which GitHub product this host runs.
    pub fn kind(&self) -> HostKind {
        self.kind
    }

    /// Returns the REST API base URL without a trailing slash: `https://api.github.com`,
    /// `https://api.<sub>.ghe.com`, or `<web URL>/api/v3` for GitHub Enterprise Server.
    pub fn api_url(&self) -> String {
        match self.kind {
            HostKind::GitHubCom => "https://api.github.com".to_owned(),
            HostKind::GheCom => self.web_url.replacen("://", "://api.", 1),
            HostKind::Server => format!("{}/api/v3", self.web_url),
        }
    }

    /// Returns the web URL of a scope on this host, such as `https://github.com/octo-org`.
    pub fn scope_url(&self, scope: &super::Scope) -> String {
        format!("{}/{}", self.web_url, scope)
    }
}

impl Default for GitHubHost {
    fn default() -> Self {
        Self::github_com()
    }
}

/// Longest host name or base URL accepted, in bytes, so that every field a webhook copies
/// into a [`Job`](super::Job) stays small.
pub const MAX_HOST_LEN: usize = 512;

impl FromStr for GitHubHost {
    type Err = ParseHostError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_HOST_LEN {
            // Keep an oversized value out of the error, which ends up in logs.
            let shown: String = s.chars().take(64).collect();
            return Err(ParseHostError {
                value: format!("{shown}…"),
                reason: "longer than 512 bytes",
            });
        }
        let error = |reason| ParseHostError {
            value: s.to_owned(),
            reason,
        };
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(error("the host is empty"));
        }
        let with_scheme = if trimmed.contains("://") {
            trimmed.to_owned()
        } else {
            format!("https://{trimmed}")
        };
        let url = Url::parse(&with_scheme).map_err(|_| error("not a host name or URL"))?;
        if url.scheme() != "https" && url.scheme() != "http" {
            return Err(error(
                "the scheme must be https (or http for a test server)",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(error("credentials in the URL are not allowed"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(error("a query or fragment is not allowed"));
        }
        let Some(host) = url.host_str() else {
            return Err(error("the URL has no host"));
        };
        let host = host.to_ascii_lowercase();
        let path = url.path().trim_end_matches('/');

        let kind = if host == "github.com" || host == "www.github.com" {
            HostKind::GitHubCom
        } else if host.ends_with(".ghe.com") && !host.trim_end_matches(".ghe.com").contains('.') {
            HostKind::GheCom
        } else {
            HostKind::Server
        };
        if kind != HostKind::Server && (!path.is_empty() || url.port().is_some()) {
            return Err(error(
                "github.com and ghe.com hosts take no port or path; give the bare host",
            ));
        }

        let web_url = match (kind, url.port()) {
            (HostKind::GitHubCom, _) => "https://github.com".to_owned(),
            (_, Some(port)) => format!("{}://{host}:{port}{path}", url.scheme()),
            (_, None) => format!("{}://{host}{path}", url.scheme()),
        };
        Ok(Self { web_url, kind })
    }
}

impl fmt::Display for GitHubHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.web_url)
    }
}

impl fmt::Debug for GitHubHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GitHubHost({})", self.web_url)
    }
}

impl Serialize for GitHubHost {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.web_url)
    }
}

impl<'de> Deserialize<'de> for GitHubHost {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        value.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn oversized_host_is_rejected_with_a_short_error() {
        let long = format!("ghes.example.com/{}", "a".repeat(MAX_HOST_LEN));
        let error = long.parse::<GitHubHost>().unwrap_err().to_string();
        assert!(error.contains("longer than 512 bytes"), "{error}");
        assert!(
            error.len() < 200,
            "the error must not carry the whole value: {error}"
        );
        let fits = format!("ghes.example.com/{}", "a".repeat(100));
        assert!(fits.parse::<GitHubHost>().is_ok());
    }

    use super::*;

    #[test]
    fn host_normalizes_github_com_forms() {
        for input in [
            "github.com",
            "https://github.com",
            "https://github.com/",
            "GitHub.com",
        ] {
            let host: GitHubHost = input.parse().unwrap();
            assert_eq!(host, GitHubHost::github_com(), "{input}");
            assert_eq!(host.kind(), HostKind::GitHubCom);
            assert_eq!(host.api_url(), "https://api.github.com");
        }
    }

    #[test]
    fn host_recognizes_ghe_com() {
        let host: GitHubHost = "octocorp.ghe.com".parse().unwrap();
        assert_eq!(host.kind(), HostKind::GheCom);
        assert_eq!(host.web_url(), "https://octocorp.ghe.com");
        assert_eq!(host.api_url(), "https://api.octocorp.ghe.com");
    }

    #[test]
    fn host_treats_others_as_server() {
        let host: GitHubHost = "https://GHES.example.com/".parse().unwrap();
        assert_eq!(host.kind(), HostKind::Server);
        assert_eq!(host.web_url(), "https://ghes.example.com");
        assert_eq!(host.api_url(), "https://ghes.example.com/api/v3");

        let prefixed: GitHubHost = "https://example.com/github/".parse().unwrap();
        assert_eq!(prefixed.web_url(), "https://example.com/github");
        assert_eq!(prefixed.api_url(), "https://example.com/github/api/v3");

        let loopback: GitHubHost = "http://127.0.0.1:8080".parse().unwrap();
        assert_eq!(loopback.web_url(), "http://127.0.0.1:8080");
        assert_eq!(loopback.api_url(), "http://127.0.0.1:8080/api/v3");

        let nested_ghe: GitHubHost = "a.b.ghe.com".parse().unwrap();
        assert_eq!(nested_ghe.kind(), HostKind::Server);
    }

    #[test]
    fn host_rejects_invalid_forms() {
        for input in [
            "",
            "ftp://github.com",
            "https://user:pw@github.com",
            "https://github.com/octo-org",
            "https://ghes.example.com/?a=b",
            "https://",
            "acme.ghe.com:444",
        ] {
            assert!(
                input.parse::<GitHubHost>().is_err(),
                "{input:?} was accepted"
            );
        }
    }

    #[test]
    fn host_builds_scope_url() {
        let host = GitHubHost::github_com();
        let scope = "octo-org/octo-repo".parse().unwrap();
        assert_eq!(
            host.scope_url(&scope),
            "https://github.com/octo-org/octo-repo"
        );
    }
}
