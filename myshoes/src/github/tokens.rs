//! Cached App JWTs, installation access tokens and registration tokens.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::config::JWT_LIFETIME;
use super::http::{same_secret, CallContext};
use super::{Error, GitHubAppClient};
use crate::model::GitHubHost;
use crate::secret::Secret;

/// An App JWT is replaced this long before its `exp`.
const JWT_RENEW_BEFORE: Duration = Duration::from_secs(60);
/// An installation token is replaced this long before its `expires_at`.
pub(super) const INSTALLATION_TOKEN_RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);

/// A token and its expiry as GitHub reports it. `Debug` shows the expiry only.
#[derive(Clone)]
pub(super) struct CachedToken {
    pub(super) token: Secret,
    pub(super) expires_at: DateTime<Utc>,
}

impl CachedToken {
    /// Returns whether the token stays valid for more than `lifetime` from now.
    pub(super) fn valid_for(&self, lifetime: Duration) -> bool {
        let lifetime = chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::MAX);
        self.expires_at - Utc::now() > lifetime
    }
}

impl fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedToken")
            .field("token", &self.token)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Body of the access-token and registration-token responses.
#[derive(Deserialize)]
pub(super) struct TokenBody {
    token: String,
    expires_at: DateTime<chrono::FixedOffset>,
}

impl From<TokenBody> for CachedToken {
    fn from(body: TokenBody) -> Self {
        Self {
            token: Secret::new(body.token),
            expires_at: body.expires_at.with_timezone(&Utc),
        }
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

/// Tokens by key, minted at most once at a time per key: callers for one key wait on the
/// key's lock while one of them mints.
pub(super) struct TokenCache<K> {
    slots: Mutex<HashMap<K, Slot>>,
}

impl<K: Hash + Eq + Clone + Send + Sync> TokenCache<K> {
    pub(super) fn new() -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, key: &K) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.entry(key.clone()).or_default().clone()
    }

    /// Returns the cached token for `key` when it stays valid for more than `lifetime`,
    /// otherwise mints, stores and returns a new one.
    pub(super) async fn get_or_mint<F, Fut>(
        &self,
        key: &K,
        lifetime: Duration,
        mint: F,
    ) -> Result<CachedToken, Error>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<CachedToken, Error>> + Send,
    {
        let slot = self.slot(key);
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref().filter(|token| token.valid_for(lifetime)) {
            return Ok(token.clone());
        }
        let token = mint().await?;
        *cached = Some(token.clone());
        Ok(token)
    }

    /// Drops the cached token for `key` if it is still `token`, so a newer one minted by
    /// another caller survives.
    pub(super) async fn invalidate(&self, key: &K, token: &Secret) {
        let slot = self.slot(key);
        let mut cached = slot.lock().await;
        if cached
            .as_ref()
            .is_some_and(|current| same_secret(&current.token, token))
        {
            *cached = None;
        }
    }
}

impl<K: fmt::Debug> fmt::Debug for TokenCache<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let mut map = f.debug_map();
        for (key, slot) in slots.iter() {
            match slot.try_lock() {
                Ok(cached) => map.entry(key, &cached.as_ref().map(|token| token.expires_at)),
                Err(_) => map.entry(key, &"minting"),
            };
        }
        map.finish()
    }
}

/// The signed App JWT and when it expires. `Debug` shows the expiry only.
pub(super) struct CachedJwt {
    token: Secret,
    expires_at: SystemTime,
}

impl fmt::Debug for CachedJwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedJwt")
            .field("token", &self.token)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl GitHubAppClient {
    /// Returns the App JWT, signing a new one when the cached one expires within a minute.
    pub fn app_jwt(&self) -> Result<Secret, Error> {
        let mut cached = self.jwt.lock().unwrap_or_else(PoisonError::into_inner);
        let now = SystemTime::now();
        if let Some(jwt) = cached.as_ref() {
            if now + JWT_RENEW_BEFORE < jwt.expires_at {
                return Ok(jwt.token.clone());
            }
        }
        let token = self.app.sign_jwt(now)?;
        tracing::debug!(app_id = self.app.app_id(), "signed a new GitHub App JWT");
        *cached = Some(CachedJwt {
            token: token.clone(),
            expires_at: now + JWT_LIFETIME,
        });
        Ok(token)
    }

    pub(super) fn invalidate_app_jwt(&self, token: &Secret) {
        let mut cached = self.jwt.lock().unwrap_or_else(PoisonError::into_inner);
        if cached
            .as_ref()
            .is_some_and(|jwt| same_secret(&jwt.token, token))
        {
            *cached = None;
        }
    }

    /// Returns an access token for App installation `installation_id` on `host`, minting
    /// one when the cached token expires within five minutes. Concurrent callers for one
    /// installation share one mint.
    pub async fn installation_token(
        &self,
        host: &GitHubHost,
        installation_id: u64,
    ) -> Result<Secret, Error> {
        let key = (host.clone(), installation_id);
        let token = self
            .installation_tokens
            .get_or_mint(&key, INSTALLATION_TOKEN_RENEW_BEFORE, || {
                self.mint_installation_token(host, installation_id)
            })
            .await?;
        Ok(token.token)
    }

    async fn mint_installation_token(
        &self,
        host: &GitHubHost,
        installation_id: u64,
    ) -> Result<CachedToken, Error> {
        let scope = format!("installation {installation_id} on {host}");
        let context = CallContext {
            operation: "create installation access token",
            scope: &scope,
        };
        let url = self.api_url(
            host,
            &format!("/app/installations/{installation_id}/access_tokens"),
        )?;
        let response = self.send_as_app(context, Method::POST, url, None).await?;
        if response.status != StatusCode::CREATED && response.status != StatusCode::OK {
            return Err(response.into_error(context));
        }
        let token: CachedToken = response.json::<TokenBody>(context)?.into();
        tracing::info!(
            installation_id,
            host = %host,
            expires_at = %token.expires_at,
            "minted GitHub App installation token"
        );
        Ok(token)
    }

    pub(super) async fn invalidate_installation_token(
        &self,
        host: &GitHubHost,
        installation_id: u64,
        token: &Secret,
    ) {
        let key = (host.clone(), installation_id);
        self.installation_tokens.invalidate(&key, token).await;
    }
}
