use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use super::Error;
use crate::secret::Secret;

/// Lifetime of a signed App JWT. GitHub rejects an `exp` more than 10 minutes ahead, so
/// this leaves one minute for clock skew.
pub(super) const JWT_LIFETIME: Duration = Duration::from_secs(9 * 60);
/// How far `iat` is set in the past, for clocks behind GitHub's.
pub(super) const JWT_BACKDATE: Duration = Duration::from_secs(60);

/// Claims of a GitHub App JWT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppJwtClaims {
    /// Issued-at time, in seconds since the Unix epoch.
    pub iat: u64,
    /// Expiry time, in seconds since the Unix epoch.
    pub exp: u64,
    /// The App id, as a decimal string.
    pub iss: String,
}

/// A GitHub App's identity: its id and the private key that signs its JWTs.
///
/// `Debug` shows the App id only.
#[derive(Clone)]
pub struct GitHubApp {
    app_id: u64,
    key: EncodingKey,
}

impl GitHubApp {
    /// Creates the App identity from its id and private key.
    ///
    /// `private_key` is the PEM file GitHub generates for the App (`-----BEGIN RSA PRIVATE
    /// KEY-----`, PKCS#1 or PKCS#8), or the base64 of that file as in an environment
    /// variable such as `GITHUB_PRIVATE_KEY_BASE64`. The key's components are parsed and
    /// checked as signing checks them, so an unusable key fails here and not on the first
    /// request, without the cost of a signature.
    pub fn new(app_id: u64, private_key: &Secret) -> Result<Self, Error> {
        if app_id == 0 {
            return Err(Error::InvalidConfig {
                field: "app_id",
                reason: "must be the App's numeric id, not 0".to_owned(),
            });
        }
        let pem = decode_pem(private_key.expose())?;
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|error| {
            Error::InvalidPrivateKey {
                reason: format!("not an RSA private key in PEM form ({error})"),
            }
        })?;
        check_rsa_key(&key)?;
        Ok(Self { app_id, key })
    }

    /// Returns the App id.
    pub fn app_id(&self) -> u64 {
        self.app_id
    }

    /// Returns the claims of a JWT issued at `now`: `iat` one minute back, `exp` nine
    /// minutes ahead, `iss` the App id.
    pub fn claims_at(&self, now: SystemTime) -> AppJwtClaims {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        AppJwtClaims {
            iat: now.saturating_sub(JWT_BACKDATE).as_secs(),
            exp: (now + JWT_LIFETIME).as_secs(),
            iss: self.app_id.to_string(),
        }
    }

    /// Signs an RS256 App JWT issued at `now`.
    pub fn sign_jwt(&self, now: SystemTime) -> Result<Secret, Error> {
        let claims = self.claims_at(now);
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map(Secret::new)
            .map_err(|source| Error::Jwt {
                app_id: self.app_id,
                source,
            })
    }
}

impl fmt::Debug for GitHubApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubApp")
            .field("app_id", &self.app_id)
            .field("private_key", &"[REDACTED]")
            .finish()
    }
}

/// Smallest RSA modulus accepted, in bytes. GitHub generates 2048-bit App keys, and RS256
/// cannot sign with a modulus under 62 bytes at all.
const MIN_KEY_BYTES: usize = 2048 / 8;

/// Parses the PKCS#1 key that `key` holds, as the signer does before every signature,
/// which checks that the components fit together, and checks the key's size.
fn check_rsa_key(key: &EncodingKey) -> Result<(), Error> {
    use rsa::pkcs1::DecodeRsaPrivateKey as _;
    use rsa::traits::PublicKeyParts as _;

    let parsed =
        rsa::PrivateKey::from_pkcs1_der(key.as_bytes()).map_err(|_| Error::InvalidPrivateKey {
            reason: "the RSA key's components are malformed or do not fit together".to_owned(),
        })?;
    if parsed.size() < MIN_KEY_BYTES {
        return Err(Error::InvalidPrivateKey {
            reason: format!(
                "the RSA key has {} bits; GitHub App keys have at least 2048",
                parsed.size() * 8
            ),
        });
    }
    Ok(())
}

/// Returns the PEM text of `value`, which is PEM itself or base64 of PEM.
fn decode_pem(value: &str) -> Result<String, Error> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Error::InvalidPrivateKey {
            reason: "the key is empty".to_owned(),
        });
    }
    if trimmed.starts_with("-----BEGIN") {
        return Ok(trimmed.to_owned());
    }
    let compact: String = trimmed.split_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| Error::InvalidPrivateKey {
            reason: "the key is neither PEM (no -----BEGIN line) nor valid base64".to_owned(),
        })?;
    let text = String::from_utf8(bytes).map_err(|_| Error::InvalidPrivateKey {
        reason: "the base64 value does not decode to PEM text".to_owned(),
    })?;
    if !text.trim_start().starts_with("-----BEGIN") {
        return Err(Error::InvalidPrivateKey {
            reason: "the base64 value decodes to text without a -----BEGIN line".to_owned(),
        });
    }
    Ok(text)
}

/// Kind of credential runners get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CredentialKind {
    /// A just-in-time config per runner from `generate-jitconfig`, with a registration
    /// token as fallback on GitHub Enterprise Server versions that lack the endpoint.
    #[default]
    JitConfig,
    /// A registration token per scope, shared by runners while it stays valid long enough.
    RegistrationToken,
}

/// Retry policy for 5xx responses, transport errors and rate limits.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Requests sent at most per call, the first included. At least 1.
    pub max_attempts: u32,
    /// Wait before the second attempt after a 5xx or transport error; doubled each time.
    pub initial_backoff: Duration,
    /// Upper bound of the doubled wait.
    pub max_backoff: Duration,
    /// Maximum rate-limit wait (from `retry-after` or `x-ratelimit-reset`) the client
    /// sleeps through. A longer wait returns [`Error::RateLimited`] at once, so the caller
    /// can requeue the work.
    pub max_rate_limit_wait: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_rate_limit_wait: Duration::from_secs(60),
        }
    }
}

impl RetryConfig {
    /// Returns the backoff before attempt `attempt + 1`, where `attempt` counts from 1.
    pub(super) fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Settings of a [`GitHubAppClient`](super::GitHubAppClient).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Kind of credential runners get.
    pub credential_kind: CredentialKind,
    /// Time from handing out a registration token to the runner registering with it. A
    /// cached token is reused only while it stays valid for this plus
    /// [`registration_token_margin`](Self::registration_token_margin).
    pub boot_budget: Duration,
    /// Safety margin added to the boot budget.
    pub registration_token_margin: Duration,
    /// `work_folder` sent with JIT requests, relative to the runner's directory.
    pub work_folder: String,
    /// Runner group ids by name, used before any lookup. Repository scopes can only use
    /// the default group (id 1) or a group listed here, because runner groups belong to
    /// organizations.
    pub runner_group_ids: HashMap<String, u64>,
    /// Attempts at `generate-jitconfig` when the runner name already exists (HTTP 409);
    /// between attempts the existing runner is deleted.
    pub jit_conflict_attempts: u32,
    /// Retry policy.
    pub retry: RetryConfig,
    /// Timeout of one HTTP request, from sending it to reading the whole body.
    pub request_timeout: Duration,
    /// `User-Agent` header, `myshoes-rs/<crate version>` by default.
    pub user_agent: String,
    /// Root certificates that authenticate the GitHub host.
    pub tls_roots: TlsRoots,
}

/// Root certificates the GitHub client trusts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsRoots {
    /// The operating system's certificate store, through the platform verifier. On Linux
    /// the store is read and parsed from disk when the client is built. This is the choice
    /// for a GitHub Enterprise Server whose certificate comes from a private CA.
    #[default]
    Platform,
    /// Mozilla's root program, compiled into the binary: no file access and no parsing
    /// when the client is built, which shortens a cold start. Certificates from a private
    /// CA are not trusted.
    Mozilla,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            credential_kind: CredentialKind::JitConfig,
            boot_budget: Duration::from_secs(15 * 60),
            registration_token_margin: Duration::from_secs(60),
            work_folder: "_work".to_owned(),
            runner_group_ids: HashMap::new(),
            jit_conflict_attempts: 3,
            retry: RetryConfig::default(),
            request_timeout: Duration::from_secs(30),
            user_agent: format!("myshoes-rs/{}", env!("CARGO_PKG_VERSION")),
            tls_roots: TlsRoots::Platform,
        }
    }
}

impl ClientConfig {
    /// Checks that every value is in range.
    pub(super) fn validate(&self) -> Result<(), Error> {
        let invalid = |field, reason: &str| {
            Err(Error::InvalidConfig {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.retry.max_attempts == 0 {
            return invalid("retry.max_attempts", "must be at least 1");
        }
        if self.jit_conflict_attempts == 0 {
            return invalid("jit_conflict_attempts", "must be at least 1");
        }
        if self.request_timeout.is_zero() {
            return invalid("request_timeout", "must be more than zero");
        }
        if self.work_folder.trim().is_empty() {
            return invalid("work_folder", "must not be empty");
        }
        if self.user_agent.trim().is_empty() {
            return invalid("user_agent", "must not be empty");
        }
        // Registration tokens live one hour, so a longer budget would never reuse one and
        // could hand out tokens that expire before the runner registers.
        if self.boot_budget + self.registration_token_margin >= Duration::from_secs(3600) {
            return invalid(
                "boot_budget",
                "plus registration_token_margin must be under one hour, the lifetime of a registration token",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_cap() {
        let retry = RetryConfig {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            max_rate_limit_wait: Duration::from_secs(1),
        };
        let waits: Vec<u128> = (1..=5).map(|n| retry.backoff(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        assert_eq!(retry.backoff(u32::MAX), Duration::from_millis(500));
    }

    #[test]
    fn config_validate_rejects_out_of_range_values() {
        assert!(ClientConfig::default().validate().is_ok());

        let mut zero_attempts = ClientConfig::default();
        zero_attempts.retry.max_attempts = 0;
        let long_budget = ClientConfig {
            boot_budget: Duration::from_secs(3600),
            ..ClientConfig::default()
        };
        let empty_folder = ClientConfig {
            work_folder: " ".to_owned(),
            ..ClientConfig::default()
        };
        let no_conflict_attempts = ClientConfig {
            jit_conflict_attempts: 0,
            ..ClientConfig::default()
        };

        for (config, field) in [
            (zero_attempts, "retry.max_attempts"),
            (long_budget, "boot_budget"),
            (empty_folder, "work_folder"),
            (no_conflict_attempts, "jit_conflict_attempts"),
        ] {
            match config.validate() {
                Err(Error::InvalidConfig { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{field}: expected InvalidConfig, got {other:?}"),
            }
        }
    }

    #[test]
    fn default_user_agent_names_crate_version() {
        let config = ClientConfig::default();
        assert_eq!(
            config.user_agent,
            format!("myshoes-rs/{}", env!("CARGO_PKG_VERSION"))
        );
    }
}
