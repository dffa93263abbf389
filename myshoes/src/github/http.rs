//! Sending one API call: headers, authentication, retries and rate limits.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, RETRY_AFTER, USER_AGENT};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use url::Url;

use super::{Error, GitHubAppClient, Installation};
use crate::model::GitHubHost;
use crate::secret::Secret;

/// Media type GitHub recommends for REST calls.
const GITHUB_JSON: &str = "application/vnd.github+json";
/// REST API version the client is written against.
const API_VERSION: &str = "2022-11-28";
/// Wait GitHub's docs request after a secondary rate limit that names no time.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// Maximum number of characters of an error body kept in an error message.
const MAX_MESSAGE_LEN: usize = 300;
/// Stored in the rate-limit gauge while no response has carried `x-ratelimit-remaining`.
pub(super) const RATE_LIMIT_UNKNOWN: u64 = u64::MAX;

/// Operation and scope of a call, for logs and error messages.
#[derive(Debug, Clone, Copy)]
pub(super) struct CallContext<'a> {
    pub(super) operation: &'static str,
    pub(super) scope: &'a str,
}

/// A final response: any status other than 5xx and rate limits, which are retried.
#[derive(Debug)]
pub(super) struct ApiResponse {
    pub(super) status: StatusCode,
    /// Response headers, for callers that read more than the body (such as `Link`).
    pub(super) headers: HeaderMap,
    body: Vec<u8>,
}

/// Error body GitHub sends with 4xx responses.
#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
}

impl ApiResponse {
    /// Parses the body as JSON of type `T`.
    pub(super) fn json<T: DeserializeOwned>(&self, context: CallContext<'_>) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|error| Error::InvalidResponse {
            operation: context.operation,
            scope: context.scope.to_owned(),
            reason: format!(
                "HTTP {} with a body that is not the expected JSON ({error})",
                self.status.as_u16()
            ),
        })
    }

    /// Builds the error for a response the caller does not accept. [`GitHubAppClient::send`]
    /// turns 5xx responses into [`Error::Server`] itself, so the 5xx branch here only keeps
    /// such a response retryable if a caller passes one.
    pub(super) fn into_error(self, context: CallContext<'_>) -> Error {
        let status = self.status.as_u16();
        if self.status.is_server_error() {
            return Error::Server {
                operation: context.operation,
                scope: context.scope.to_owned(),
                status,
                attempts: 1,
            };
        }
        let message = match serde_json::from_slice::<ErrorBody>(&self.body) {
            Ok(ErrorBody {
                message: Some(message),
            }) => message,
            _ => String::from_utf8_lossy(&self.body).into_owned(),
        };
        let message = truncate(message.trim(), MAX_MESSAGE_LEN);
        let hint = match status {
            401 => "check the App id and private key, and that the App is still installed",
            403 => "the App lacks a permission: runners need Administration (read and write) on repositories or Self-hosted runners (read and write) on organizations, and job status needs Actions (read)",
            404 => "not found, or the App is not installed there",
            409 => "a conflicting object exists",
            422 => "GitHub considered the request invalid",
            _ => "see GitHub's message",
        };
        let message = if message.is_empty() {
            hint.to_owned()
        } else {
            format!("{message:?} ({hint})")
        };
        Error::Rejected {
            operation: context.operation,
            scope: context.scope.to_owned(),
            status,
            message,
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

impl GitHubAppClient {
    /// Sends one call authenticated as the installation.
    pub(super) async fn send(
        &self,
        context: CallContext<'_>,
        method: Method,
        url: Url,
        installation: &Installation,
        body: Option<&serde_json::Value>,
    ) -> Result<ApiResponse, Error> {
        let host = &installation.host;
        let id = installation.id;
        let token = || self.installation_token(host, id);
        let invalidate = |token: Secret| async move {
            self.invalidate_installation_token(host, id, &token).await;
        };
        self.send_with(context, method, url, body, token, invalidate)
            .await
    }

    /// Sends one call authenticated as the App, with its JWT.
    pub(super) async fn send_as_app(
        &self,
        context: CallContext<'_>,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
    ) -> Result<ApiResponse, Error> {
        let token = || std::future::ready(self.app_jwt());
        let invalidate = |token: Secret| {
            self.invalidate_app_jwt(&token);
            std::future::ready(())
        };
        self.send_with(context, method, url, body, token, invalidate)
            .await
    }

    /// Sends one call and returns the first response that is neither 5xx nor a rate limit,
    /// retrying those with backoff up to `retry.max_attempts` requests. A 401 response
    /// invalidates the token and gets one more request with a fresh one, which does not
    /// count as an attempt.
    async fn send_with<T, TokenFuture, I, InvalidateFuture>(
        &self,
        context: CallContext<'_>,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
        token_source: T,
        invalidate: I,
    ) -> Result<ApiResponse, Error>
    where
        T: Fn() -> TokenFuture + Send + Sync,
        TokenFuture: Future<Output = Result<Secret, Error>> + Send,
        I: Fn(Secret) -> InvalidateFuture + Send + Sync,
        InvalidateFuture: Future<Output = ()> + Send,
    {
        let retry = &self.config.retry;
        let mut attempt: u32 = 1;
        let mut reauthorized = false;
        loop {
            let token = token_source().await?;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header(ACCEPT, GITHUB_JSON)
                .header(USER_AGENT, &self.config.user_agent)
                .header("X-GitHub-Api-Version", API_VERSION)
                .bearer_auth(token.expose());
            if let Some(body) = body {
                request = request.json(body);
            }

            let (status, headers, bytes) = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    self.record_rate_limit(&headers);
                    match response.bytes().await {
                        Ok(bytes) => (status, headers, bytes.to_vec()),
                        Err(source) => {
                            self.transport_retry(context, attempt, source).await?;
                            attempt += 1;
                            continue;
                        }
                    }
                }
                Err(source) => {
                    self.transport_retry(context, attempt, source).await?;
                    attempt += 1;
                    continue;
                }
            };
            tracing::debug!(
                operation = context.operation,
                scope = context.scope,
                status = status.as_u16(),
                attempt,
                "GitHub API responded"
            );

            if status == StatusCode::UNAUTHORIZED && !reauthorized {
                reauthorized = true;
                tracing::warn!(
                    operation = context.operation,
                    scope = context.scope,
                    "GitHub API responded 401; retrying once with a fresh token"
                );
                invalidate(token).await;
                continue;
            }

            if let Some(wait) = rate_limit_wait(status, &headers, &bytes) {
                if attempt >= retry.max_attempts || wait > retry.max_rate_limit_wait {
                    tracing::warn!(
                        operation = context.operation,
                        scope = context.scope,
                        status = status.as_u16(),
                        attempt,
                        wait_secs = wait.as_secs(),
                        "GitHub API rate limit; giving up"
                    );
                    return Err(Error::RateLimited {
                        operation: context.operation,
                        scope: context.scope.to_owned(),
                        status: status.as_u16(),
                        retry_after: Some(wait),
                        attempts: attempt,
                    });
                }
                tracing::warn!(
                    operation = context.operation,
                    scope = context.scope,
                    status = status.as_u16(),
                    attempt,
                    wait_secs = wait.as_secs_f64(),
                    "GitHub API rate limit; waiting before the next attempt"
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }

            if status.is_server_error() {
                if attempt >= retry.max_attempts {
                    tracing::warn!(
                        operation = context.operation,
                        scope = context.scope,
                        status = status.as_u16(),
                        attempt,
                        "GitHub API server error; giving up"
                    );
                    return Err(Error::Server {
                        operation: context.operation,
                        scope: context.scope.to_owned(),
                        status: status.as_u16(),
                        attempts: attempt,
                    });
                }
                let wait = retry.backoff(attempt);
                tracing::warn!(
                    operation = context.operation,
                    scope = context.scope,
                    status = status.as_u16(),
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    "GitHub API server error; retrying"
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }

            return Ok(ApiResponse {
                status,
                headers,
                body: bytes,
            });
        }
    }

    /// Waits before the next attempt after a transport error, or returns the error when
    /// the attempts are used up.
    async fn transport_retry(
        &self,
        context: CallContext<'_>,
        attempt: u32,
        source: reqwest::Error,
    ) -> Result<(), Error> {
        let retry = &self.config.retry;
        if attempt >= retry.max_attempts {
            tracing::warn!(
                operation = context.operation,
                scope = context.scope,
                attempt,
                error = %source,
                "GitHub API request failed; giving up"
            );
            return Err(Error::Transport {
                operation: context.operation,
                scope: context.scope.to_owned(),
                attempts: attempt,
                source,
            });
        }
        let wait = retry.backoff(attempt);
        tracing::warn!(
            operation = context.operation,
            scope = context.scope,
            attempt,
            error = %source,
            "GitHub API request failed; retrying"
        );
        tokio::time::sleep(wait).await;
        Ok(())
    }

    fn record_rate_limit(&self, headers: &HeaderMap) {
        if let Some(remaining) = header_u64(headers, "x-ratelimit-remaining") {
            self.rate_limit_remaining
                .store(remaining, Ordering::Relaxed);
            // Precision loss above 2^53 does not matter for a request budget.
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!("myshoes_github_rate_limit_remaining").set(remaining as f64);
        }
    }

    /// Returns `x-ratelimit-remaining` of the last response that carried it.
    pub fn rate_limit_remaining(&self) -> Option<u64> {
        match self.rate_limit_remaining.load(Ordering::Relaxed) {
            RATE_LIMIT_UNKNOWN => None,
            remaining => Some(remaining),
        }
    }

    /// Returns the URL `<API base of host><path>`.
    pub(super) fn api_url(&self, host: &GitHubHost, path: &str) -> Result<Url, Error> {
        let text = format!("{}{path}", host.api_url());
        Url::parse(&text).map_err(|error| Error::InvalidConfig {
            field: "host",
            reason: format!("{host} gives the invalid API URL {text:?} ({error})"),
        })
    }
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers
        .get(name)
        .and_then(|value: &HeaderValue| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok())
}

/// Returns how long to wait when the response is a rate limit, or `None` when it is not.
///
/// GitHub signals a rate limit with 429, or with 403 plus `retry-after`,
/// `x-ratelimit-remaining: 0` or a message that mentions the rate limit. `retry-after`
/// (seconds) wins; then `x-ratelimit-reset` (epoch seconds) when nothing remains; then
/// one minute, which GitHub's docs give for secondary limits that name no time.
fn rate_limit_wait(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::FORBIDDEN {
        return None;
    }
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    let exhausted = header_u64(headers, "x-ratelimit-remaining") == Some(0);
    let mentions_limit = String::from_utf8_lossy(body)
        .to_ascii_lowercase()
        .contains("rate limit");
    if status == StatusCode::FORBIDDEN && retry_after.is_none() && !exhausted && !mentions_limit {
        return None;
    }

    if let Some(seconds) = retry_after {
        return Some(Duration::from_secs(seconds));
    }
    if exhausted {
        if let Some(reset) = header_u64(headers, "x-ratelimit-reset") {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            return Some(Duration::from_secs(reset.saturating_sub(now)));
        }
    }
    Some(DEFAULT_RATE_LIMIT_WAIT)
}

/// Returns whether `token` is the same secret as `other`, for invalidating only the
/// token a failed request used.
pub(super) fn same_secret(token: &Secret, other: &Secret) -> bool {
    token.expose() == other.expose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn rate_limit_wait_reads_retry_after() {
        let wait = rate_limit_wait(
            StatusCode::FORBIDDEN,
            &headers(&[("retry-after", "7")]),
            b"",
        );
        assert_eq!(wait, Some(Duration::from_secs(7)));
    }

    #[test]
    fn rate_limit_wait_ignores_plain_forbidden() {
        let body = br#"{"message":"Resource not accessible by integration"}"#;
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &HeaderMap::new(), body),
            None
        );
    }

    #[test]
    fn rate_limit_wait_defaults_to_one_minute() {
        let body = br#"{"message":"You have exceeded a secondary rate limit."}"#;
        let wait = rate_limit_wait(StatusCode::FORBIDDEN, &HeaderMap::new(), body);
        assert_eq!(wait, Some(DEFAULT_RATE_LIMIT_WAIT));
        let wait = rate_limit_wait(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), b"");
        assert_eq!(wait, Some(DEFAULT_RATE_LIMIT_WAIT));
    }

    #[test]
    fn rate_limit_wait_uses_reset_when_exhausted() {
        let past = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1")]);
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &past, b""),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn truncate_keeps_short_text() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("abcdef", 3), "abc…");
    }
}
