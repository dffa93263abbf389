use std::time::Duration;

use crate::credentials::{BoxError, CredentialError};

/// Error returned by the GitHub App client.
///
/// Messages name the operation, the scope or installation it ran on, and what to do. No
/// variant carries a token, JWT, JIT config or key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The App's private key is not an RSA private key in PEM form or base64 of PEM.
    #[error("invalid GitHub App private key: {reason}; give the PEM file GitHub generated for the App, as text or base64")]
    InvalidPrivateKey {
        /// Reason the key was rejected.
        reason: String,
    },
    /// A configuration value is out of range.
    #[error("invalid GitHub client configuration: {field} {reason}")]
    InvalidConfig {
        /// Name of the configuration field.
        field: &'static str,
        /// Problem with its value.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("failed to build the HTTP client for the GitHub API")]
    HttpClient {
        /// The underlying TLS or HTTP client error.
        #[source]
        source: BoxError,
    },
    /// Signing the App JWT failed.
    #[error("failed to sign the GitHub App JWT for App {app_id}")]
    Jwt {
        /// App id the JWT was signed for.
        app_id: u64,
        /// The underlying error.
        #[source]
        source: jsonwebtoken::errors::Error,
    },
    /// The job carries no App installation id, so no installation token can be minted.
    #[error("no GitHub App installation id for {scope}: the job did not come from a GitHub App webhook; install the App on the repository or organization")]
    MissingInstallation {
        /// Scope the request was for.
        scope: String,
    },
    /// The request is invalid before it is sent, for example a label count out of range.
    #[error("invalid request for {scope}: {reason}")]
    InvalidRequest {
        /// Scope the request was for.
        scope: String,
        /// Problem and the change that fixes it.
        reason: String,
    },
    /// GitHub responded with a client error (401, 403, 404, 409, 422 or another 4xx) that a
    /// retry does not fix.
    #[error("GitHub rejected {operation} for {scope} with HTTP {status}: {message}")]
    Rejected {
        /// Operation the client attempted.
        operation: &'static str,
        /// Scope or installation the request was for.
        scope: String,
        /// HTTP status code.
        status: u16,
        /// GitHub's `message` field and a hint at the fix.
        message: String,
    },
    /// GitHub responded with 5xx on every attempt.
    #[error("GitHub failed {operation} for {scope} with HTTP {status} after {attempts} attempts; retry later")]
    Server {
        /// Operation the client attempted.
        operation: &'static str,
        /// Scope or installation the request was for.
        scope: String,
        /// HTTP status code of the last response.
        status: u16,
        /// Number of requests sent.
        attempts: u32,
    },
    /// GitHub rate-limited the request, and waiting was over the configured limit or the
    /// attempts ran out.
    #[error("GitHub rate-limited {operation} for {scope} after {attempts} attempts (HTTP {status}, retry after {retry_after:?}); retry later")]
    RateLimited {
        /// Operation the client attempted.
        operation: &'static str,
        /// Scope or installation the request was for.
        scope: String,
        /// HTTP status code of the last response (403 or 429).
        status: u16,
        /// Wait GitHub requested, when the response named one.
        retry_after: Option<Duration>,
        /// Number of requests sent.
        attempts: u32,
    },
    /// The request failed before a response arrived: connection error or timeout.
    #[error("request to {operation} for {scope} failed after {attempts} attempts; check the network path to the GitHub API")]
    Transport {
        /// Operation the client attempted.
        operation: &'static str,
        /// Scope or installation the request was for.
        scope: String,
        /// Number of requests sent.
        attempts: u32,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// GitHub responded with a success status but a body the client cannot read.
    #[error("invalid GitHub response to {operation} for {scope}: {reason}")]
    InvalidResponse {
        /// Operation the client attempted.
        operation: &'static str,
        /// Scope or installation the request was for.
        scope: String,
        /// Problem with the body.
        reason: String,
    },
}

impl Error {
    /// Returns whether a later attempt may succeed: 5xx, rate limits, transport errors
    /// and unreadable responses. Rejections and configuration errors are permanent.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Server { .. }
            | Error::RateLimited { .. }
            | Error::Transport { .. }
            | Error::InvalidResponse { .. } => true,
            Error::InvalidPrivateKey { .. }
            | Error::InvalidConfig { .. }
            | Error::HttpClient { .. }
            | Error::Jwt { .. }
            | Error::MissingInstallation { .. }
            | Error::InvalidRequest { .. }
            | Error::Rejected { .. } => false,
        }
    }

    /// Returns the HTTP status of GitHub's response, when the error came from a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Rejected { status, .. }
            | Error::Server { status, .. }
            | Error::RateLimited { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Converts the error for a [`RunnerCredentials`](crate::credentials::RunnerCredentials)
    /// caller: rejections become [`CredentialError::Rejected`], everything else
    /// [`CredentialError::Backend`] with the same retryability.
    pub fn into_credential_error(self, scope: String) -> CredentialError {
        match self {
            Error::Rejected { .. }
            | Error::MissingInstallation { .. }
            | Error::InvalidRequest { .. } => CredentialError::Rejected {
                scope,
                reason: self.to_string(),
            },
            other => CredentialError::Backend {
                source_name: "github-app",
                scope,
                retryable: other.is_retryable(),
                source: Box::new(other),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejection_maps_to_rejected_credential_error() {
        let error = Error::Rejected {
            operation: "generate JIT runner config",
            scope: "organization octo-org on https://github.com".to_owned(),
            status: 403,
            message: "\"Resource not accessible by integration\"".to_owned(),
        };
        assert!(!error.is_retryable());
        let mapped = error.into_credential_error("https://github.com/octo-org".to_owned());
        let CredentialError::Rejected { scope, reason } = &mapped else {
            panic!("expected Rejected, got {mapped:?}");
        };
        assert_eq!(scope, "https://github.com/octo-org");
        assert!(reason.contains("HTTP 403"), "{reason}");
        assert!(reason.contains("Resource not accessible"), "{reason}");
    }

    #[test]
    fn server_error_maps_to_retryable_backend() {
        let error = Error::Server {
            operation: "create registration token",
            scope: "organization octo-org on https://github.com".to_owned(),
            status: 502,
            attempts: 4,
        };
        assert!(error.is_retryable());
        assert_eq!(error.status(), Some(502));
        let mapped = error.into_credential_error("https://github.com/octo-org".to_owned());
        assert!(
            matches!(
                mapped,
                CredentialError::Backend {
                    retryable: true,
                    ..
                }
            ),
            "{mapped:?}"
        );
    }

    #[test]
    fn key_error_is_permanent_backend() {
        let error = Error::InvalidPrivateKey {
            reason: "the key is empty".to_owned(),
        };
        let mapped = error.into_credential_error("octo-org".to_owned());
        assert!(
            matches!(
                mapped,
                CredentialError::Backend {
                    retryable: false,
                    ..
                }
            ),
            "{mapped:?}"
        );
    }
}
