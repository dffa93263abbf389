use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Maximum length of a GitHub user or organization login.
pub const MAX_OWNER_LEN: usize = 39;
/// Maximum length of a GitHub repository name.
pub const MAX_REPO_LEN: usize = 100;

/// Error returned when a scope, owner or repository name is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid GitHub scope {value:?}: {reason}")]
pub struct ParseScopeError {
    value: String,
    reason: &'static str,
}

impl ParseScopeError {
    fn new(value: &str, reason: &'static str) -> Self {
        Self {
            value: value.to_owned(),
            reason,
        }
    }
}

fn validate_owner(whole: &str, owner: &str) -> Result<(), ParseScopeError> {
    if owner.is_empty() {
        return Err(ParseScopeError::new(whole, "the owner is empty"));
    }
    if owner.len() > MAX_OWNER_LEN {
        return Err(ParseScopeError::new(
            whole,
            "the owner is longer than 39 characters",
        ));
    }
    if owner.starts_with('-') {
        return Err(ParseScopeError::new(
            whole,
            "the owner must not start with a hyphen",
        ));
    }
    // Logins are ASCII letters, digits and hyphens; Enterprise Managed Users add an
    // underscore and a short code (`octocat_acme`).
    if !owner
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ParseScopeError::new(
            whole,
            "the owner may contain only ASCII letters, digits, '-' and '_' (use owner or owner/repo, not a URL)",
        ));
    }
    Ok(())
}

fn validate_repo(whole: &str, repo: &str) -> Result<(), ParseScopeError> {
    if repo.is_empty() {
        return Err(ParseScopeError::new(whole, "the repository name is empty"));
    }
    if repo.len() > MAX_REPO_LEN {
        return Err(ParseScopeError::new(
            whole,
            "the repository name is longer than 100 characters",
        ));
    }
    if repo == "." || repo == ".." {
        return Err(ParseScopeError::new(
            whole,
            "the repository name must not be '.' or '..'",
        ));
    }
    if !repo
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(ParseScopeError::new(
            whole,
            "the repository name may contain only ASCII letters, digits, '-', '_' and '.'",
        ));
    }
    Ok(())
}

/// A repository's full name, `owner/repo`, validated against GitHub's character rules.
///
/// Comparison is case-insensitive, like GitHub's own lookups, while the original spelling
/// is kept for display.
#[derive(Clone)]
pub struct RepositoryName {
    full_name: String,
    slash: usize,
}

impl RepositoryName {
    /// Builds a name from its owner and repository parts, validating both.
    pub fn new(owner: &str, repo: &str) -> Result<Self, ParseScopeError> {
        format!("{owner}/{repo}").parse()
    }

    /// Returns the owner (user or organization login).
    pub fn owner(&self) -> &str {
        &self.full_name[..self.slash]
    }

    /// Returns the repository name without the owner.
    pub fn repo(&self) -> &str {
        &self.full_name[self.slash + 1..]
    }

    /// Returns `owner/repo`.
    pub fn as_str(&self) -> &str {
        &self.full_name
    }
}

impl FromStr for RepositoryName {
    type Err = ParseScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((owner, repo)) = s.split_once('/') else {
            return Err(ParseScopeError::new(s, "expected owner/repo"));
        };
        if repo.contains('/') {
            return Err(ParseScopeError::new(
                s,
                "expected owner/repo with exactly one '/' (use owner or owner/repo, not a URL)",
            ));
        }
        validate_owner(s, owner)?;
        validate_repo(s, repo)?;
        Ok(Self {
            full_name: s.to_owned(),
            slash: owner.len(),
        })
    }
}

impl PartialEq for RepositoryName {
    fn eq(&self, other: &Self) -> bool {
        self.full_name.eq_ignore_ascii_case(&other.full_name)
    }
}

impl Eq for RepositoryName {}

impl std::hash::Hash for RepositoryName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for b in self.full_name.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full_name)
    }
}

impl fmt::Debug for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.full_name, f)
    }
}

impl Serialize for RepositoryName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.full_name)
    }
}

impl<'de> Deserialize<'de> for RepositoryName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        value.parse().map_err(serde::de::Error::custom)
    }
}

/// Where runners register: one repository or a whole organization.
///
/// Parsed from `owner/repo` (repository) or `owner` (organization). Comparison ignores ASCII
/// case, as GitHub does.
#[derive(Clone)]
pub enum Scope {
    /// Runners registered on one repository.
    Repository(RepositoryName),
    /// Runners registered on an organization, shared by its repositories.
    Organization(String),
}

impl Scope {
    /// Returns the owner: the organization, or the repository's owner.
    pub fn owner(&self) -> &str {
        match self {
            Scope::Repository(name) => name.owner(),
            Scope::Organization(owner) => owner,
        }
    }

    /// Returns whether this is a repository scope.
    pub fn is_repository(&self) -> bool {
        matches!(self, Scope::Repository(_))
    }
}

impl PartialEq for Scope {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Scope::Repository(a), Scope::Repository(b)) => a == b,
            (Scope::Organization(a), Scope::Organization(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
    }
}

impl Eq for Scope {}

impl std::hash::Hash for Scope {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u8(u8::from(self.is_repository()));
        for b in self.to_string().bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
    }
}

impl FromStr for Scope {
    type Err = ParseScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains('/') {
            return s.parse().map(Scope::Repository);
        }
        validate_owner(s, s)?;
        Ok(Scope::Organization(s.to_owned()))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Repository(name) => fmt::Display::fmt(name, f),
            Scope::Organization(owner) => f.write_str(owner),
        }
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Repository(name) => write!(f, "Repository({name})"),
            Scope::Organization(owner) => write!(f, "Organization({owner})"),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        value.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_parses_repository_and_organization() {
        let repo: Scope = "octo-org/octo-repo".parse().unwrap();
        assert!(repo.is_repository());
        assert_eq!(repo.owner(), "octo-org");
        assert_eq!(repo.to_string(), "octo-org/octo-repo");

        let org: Scope = "octo-org".parse().unwrap();
        assert!(!org.is_repository());
        assert_eq!(org.to_string(), "octo-org");

        let dotted: RepositoryName = "octo_acme/my.repo-1".parse().unwrap();
        assert_eq!(dotted.owner(), "octo_acme");
        assert_eq!(dotted.repo(), "my.repo-1");
    }

    #[test]
    fn scope_rejects_invalid_forms() {
        let invalid = [
            "",
            "/",
            "owner/",
            "/repo",
            "a/b/c",
            "https://github.com/octo-org/octo-repo",
            "github.com/octo-org",
            "-leading",
            "octo org",
            "octo-org/..",
            "octo-org/.",
            "octo-org/repo name",
            "o\u{e9}/repo",
            "octo-org/re;po",
        ];
        for value in invalid {
            assert!(value.parse::<Scope>().is_err(), "{value:?} was accepted");
        }
        let too_long_owner = "a".repeat(40);
        assert!(too_long_owner.parse::<Scope>().is_err());
        let too_long_repo = format!("o/{}", "r".repeat(101));
        assert!(too_long_repo.parse::<Scope>().is_err());
        assert!(format!("o/{}", "r".repeat(100)).parse::<Scope>().is_ok());
    }

    #[test]
    fn scope_error_names_value_and_reason() {
        let error = "octo-org/".parse::<Scope>().unwrap_err().to_string();
        assert!(error.contains("\"octo-org/\""), "{error}");
        assert!(error.contains("repository name is empty"), "{error}");
    }

    #[test]
    fn scope_comparison_ignores_case() {
        let a: Scope = "Octo-Org/Octo-Repo".parse().unwrap();
        let b: Scope = "octo-org/octo-repo".parse().unwrap();
        assert_eq!(a, b);
        let org_a: Scope = "Octo-Org".parse().unwrap();
        let org_b: Scope = "octo-org".parse().unwrap();
        assert_eq!(org_a, org_b);
        assert_ne!(org_a, a);
        let set: std::collections::HashSet<Scope> = [a, b, org_a, org_b].into_iter().collect();
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn scope_serde_round_trip() {
        let scope: Scope = "octo-org/octo-repo".parse().unwrap();
        let json = serde_json::to_string(&scope).unwrap();
        assert_eq!(json, "\"octo-org/octo-repo\"");
        assert_eq!(serde_json::from_str::<Scope>(&json).unwrap(), scope);
        assert!(serde_json::from_str::<Scope>("\"a/b/c\"").is_err());
    }
}
