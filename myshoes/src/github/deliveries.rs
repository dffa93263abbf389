//! Webhook deliveries of the GitHub App: listing, redelivery, and a rescue pass that
//! redelivers failed `workflow_job` deliveries, because GitHub does not redeliver a failed
//! delivery by itself.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, LINK};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use url::Url;

use super::http::CallContext;
use super::{Error, GitHubAppClient};
use crate::model::GitHubHost;

/// Deliveries requested per page, GitHub's maximum.
const DELIVERIES_PER_PAGE: usize = 100;
/// Maximum pages read in one listing: 10,000 deliveries.
const MAX_DELIVERY_PAGES: u32 = 100;
/// Event name of the webhooks that queue runners.
const WORKFLOW_JOB_EVENT: &str = "workflow_job";
/// Maximum GUIDs a [`RescuePass`] remembers. The oldest are dropped first.
const MAX_REMEMBERED_GUIDS: usize = 10_000;
/// Slack for clock skew between this host and GitHub when pruning remembered GUIDs.
const PRUNE_MARGIN: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// One delivery attempt of the App's webhook, as `GET /app/hook/deliveries` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HookDelivery {
    /// Id of this attempt, used to redeliver it.
    pub id: u64,
    /// Event GUID, the `X-GitHub-Delivery` header. A redelivery keeps the GUID.
    pub guid: String,
    /// Time GitHub sent this attempt.
    pub delivered_at: DateTime<Utc>,
    /// Whether this attempt is a redelivery.
    #[serde(default)]
    pub redelivery: bool,
    /// HTTP status GitHub recorded for the attempt. Any value outside 2xx counts as failed.
    #[serde(default)]
    pub status_code: u16,
    /// Event name, such as `workflow_job` or `ping`.
    pub event: String,
    /// Event action, such as `queued`, or `None` for events without one.
    #[serde(default)]
    pub action: Option<String>,
}

impl HookDelivery {
    /// Returns whether the webhook endpoint responded with a 2xx status.
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status_code)
    }
}

/// A listing and the API requests it took.
struct Listing {
    deliveries: Vec<HookDelivery>,
    pages: u32,
}

impl GitHubAppClient {
    /// Lists the App's webhook deliveries on `host` delivered at or after `since`, newest
    /// first, authenticated with the App JWT.
    ///
    /// It reads pages of 100 and follows the `rel="next"` URL of the `Link` header. GitHub
    /// lists deliveries newest first, so it stops at the first page that reaches a delivery
    /// older than `since`, and after at most 100 pages.
    pub async fn list_deliveries(
        &self,
        host: &GitHubHost,
        since: DateTime<Utc>,
    ) -> Result<Vec<HookDelivery>, Error> {
        Ok(self.list_deliveries_counted(host, since).await?.deliveries)
    }

    async fn list_deliveries_counted(
        &self,
        host: &GitHubHost,
        since: DateTime<Utc>,
    ) -> Result<Listing, Error> {
        let scope = format!("App webhook on {host}");
        let context = CallContext {
            operation: "list webhook deliveries",
            scope: &scope,
        };
        let mut url = self.api_url(host, "/app/hook/deliveries")?;
        url.query_pairs_mut()
            .append_pair("per_page", &DELIVERIES_PER_PAGE.to_string());
        let origin = url.origin();

        let mut listing = Listing {
            deliveries: Vec::new(),
            pages: 0,
        };
        loop {
            let (page, next) = self.deliveries_page(context, url).await?;
            listing.pages += 1;
            let reached_since = page.iter().any(|delivery| delivery.delivered_at < since);
            listing.deliveries.extend(
                page.into_iter()
                    .filter(|delivery| delivery.delivered_at >= since),
            );
            let Some(next) = next else { break };
            if reached_since {
                break;
            }
            if listing.pages >= MAX_DELIVERY_PAGES {
                tracing::warn!(
                    host = %host,
                    pages = listing.pages,
                    "stopped listing webhook deliveries at the page limit; older deliveries are not checked"
                );
                break;
            }
            // The JWT goes with every page, so a next URL on another origin is not followed.
            if next.origin() != origin {
                return Err(Error::InvalidResponse {
                    operation: context.operation,
                    scope: scope.clone(),
                    reason: format!("the Link header points to another origin: {next}"),
                });
            }
            url = next;
        }
        tracing::debug!(
            host = %host,
            deliveries = listing.deliveries.len(),
            pages = listing.pages,
            "listed webhook deliveries"
        );
        Ok(listing)
    }

    /// Sends one list request and returns the page and the `rel="next"` URL. The request
    /// gets the client's usual retries for server errors and rate limits.
    async fn deliveries_page(
        &self,
        context: CallContext<'_>,
        url: Url,
    ) -> Result<(Vec<HookDelivery>, Option<Url>), Error> {
        let response = self.send_as_app(context, Method::GET, url, None).await?;
        if response.status != StatusCode::OK {
            return Err(response.into_error(context));
        }
        let next = next_link(&response.headers);
        let page = response.json(context)?;
        Ok((page, next))
    }

    /// Asks GitHub to redeliver webhook delivery `delivery_id` of the App on `host`.
    /// GitHub responds 202 and sends the delivery again with the same GUID.
    pub async fn redeliver(&self, host: &GitHubHost, delivery_id: u64) -> Result<(), Error> {
        let scope = format!("webhook delivery {delivery_id} on {host}");
        let context = CallContext {
            operation: "redeliver webhook delivery",
            scope: &scope,
        };
        let url = self.api_url(
            host,
            &format!("/app/hook/deliveries/{delivery_id}/attempts"),
        )?;
        let response = self.send_as_app(context, Method::POST, url, None).await?;
        if !response.status.is_success() {
            return Err(response.into_error(context));
        }
        Ok(())
    }
}

/// Returns the `rel="next"` URL of a `Link` header such as
/// `<https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_7>; rel="next"`.
fn next_link(headers: &HeaderMap) -> Option<Url> {
    let value = headers.get(LINK)?.to_str().ok()?;
    let mut rest = value;
    while let Some(start) = rest.find('<') {
        let after_start = &rest[start + 1..];
        let end = after_start.find('>')?;
        let target = &after_start[..end];
        let params_and_rest = &after_start[end + 1..];
        let params_end = params_and_rest.find('<').unwrap_or(params_and_rest.len());
        let params = &params_and_rest[..params_end];
        let is_next = params.split(';').any(|param| {
            let param = param.trim().trim_end_matches(',').trim();
            param.eq_ignore_ascii_case("rel=\"next\"") || param.eq_ignore_ascii_case("rel=next")
        });
        if is_next {
            return Url::parse(target).ok();
        }
        rest = params_and_rest;
    }
    None
}

/// Counts of one [`RescuePass::run`].
#[derive(Debug, Default)]
pub struct RescueReport {
    /// Deliveries listed at or after `since`, of every event.
    pub listed: usize,
    /// `workflow_job` event GUIDs whose deliveries in the listing all failed.
    pub failed: usize,
    /// Redelivery requests GitHub accepted.
    pub redelivered: usize,
    /// Failed GUIDs skipped because this pass redelivered them before.
    pub already_redelivered: usize,
    /// API requests sent: list pages plus redelivery requests. Retries inside one request
    /// and JWT signing are not counted.
    pub requests: u32,
    /// Redelivery requests that failed, with the error.
    pub errors: Vec<RedeliveryError>,
}

/// A redelivery request that failed.
#[derive(Debug)]
pub struct RedeliveryError {
    /// Delivery id the request named.
    pub delivery_id: u64,
    /// Event GUID of that delivery.
    pub guid: String,
    /// The error the client returned.
    pub error: Error,
}

/// A rescue of lost `workflow_job` webhooks. Run it periodically with one
/// [`GitHubAppClient`], and it sends at most one accepted redelivery request per failed
/// event GUID that it still remembers.
///
/// It remembers each GUID it redelivered with the time of the request. A run drops the
/// GUIDs redelivered more than an hour before its `since`, because a run lists no delivery
/// older than its `since`, and the hour covers clock skew. At most 10,000 GUIDs are kept,
/// and the oldest are dropped first.
///
/// GitHub request cost of one run: one `GET /app/hook/deliveries` per page of 100
/// deliveries back to `since` (at most 100 pages), plus one
/// `POST /app/hook/deliveries/{id}/attempts` per failed `workflow_job` delivery it
/// redelivers. All are authenticated with the App JWT, so a run mints no installation
/// token. An hour of 300 deliveries with 2 failures costs 3 + 2 = 5 requests.
#[derive(Debug, Default)]
pub struct RescuePass {
    redelivered: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl RescuePass {
    /// Creates a pass that has redelivered nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the number of GUIDs remembered as redelivered.
    pub fn remembered(&self) -> usize {
        self.lock().len()
    }

    /// Lists the deliveries since `since` on `host` and redelivers every `workflow_job`
    /// event that failed and was not redelivered before.
    ///
    /// An event counts as failed when none of the listed deliveries of its GUID got a 2xx
    /// response: one success means the webhook endpoint accepted the event once already.
    /// The newest delivery of a failed GUID is redelivered. A failed redelivery request is
    /// logged and reported in [`RescueReport::errors`]. Its GUID is remembered when the error
    /// is one a retry does not fix, such as a 422, so later runs do not repeat it. A failed
    /// listing returns the error.
    pub async fn run(
        &self,
        client: &GitHubAppClient,
        host: &GitHubHost,
        since: DateTime<Utc>,
    ) -> Result<RescueReport, Error> {
        self.prune(since);
        let listing = client.list_deliveries_counted(host, since).await?;
        let mut report = RescueReport {
            listed: listing.deliveries.len(),
            requests: listing.pages,
            ..RescueReport::default()
        };

        for delivery in failed_workflow_jobs(&listing.deliveries) {
            report.failed += 1;
            if self.lock().contains_key(&delivery.guid) {
                report.already_redelivered += 1;
                continue;
            }
            report.requests += 1;
            match client.redeliver(host, delivery.id).await {
                Ok(()) => {
                    tracing::info!(
                        host = %host,
                        delivery_id = delivery.id,
                        guid = %delivery.guid,
                        action = delivery.action.as_deref().unwrap_or(""),
                        status_code = delivery.status_code,
                        "requested redelivery of a failed workflow_job webhook"
                    );
                    self.remember(&delivery.guid);
                    report.redelivered += 1;
                }
                Err(error) => {
                    tracing::warn!(
                        host = %host,
                        delivery_id = delivery.id,
                        guid = %delivery.guid,
                        error = %error,
                        "failed to redeliver a failed workflow_job webhook"
                    );
                    if !error.is_retryable() {
                        self.remember(&delivery.guid);
                    }
                    report.errors.push(RedeliveryError {
                        delivery_id: delivery.id,
                        guid: delivery.guid.clone(),
                        error,
                    });
                }
            }
        }

        tracing::info!(
            host = %host,
            since = %since,
            listed = report.listed,
            failed = report.failed,
            redelivered = report.redelivered,
            already_redelivered = report.already_redelivered,
            errors = report.errors.len(),
            requests = report.requests,
            "webhook rescue pass finished"
        );
        Ok(report)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, DateTime<Utc>>> {
        self.redelivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn remember(&self, guid: &str) {
        let mut redelivered = self.lock();
        redelivered.insert(guid.to_owned(), Utc::now());
        if redelivered.len() > MAX_REMEMBERED_GUIDS {
            let mut by_age: Vec<(DateTime<Utc>, String)> = redelivered
                .iter()
                .map(|(guid, at)| (*at, guid.clone()))
                .collect();
            by_age.sort_unstable();
            let excess = redelivered.len() - MAX_REMEMBERED_GUIDS;
            for (_, guid) in by_age.into_iter().take(excess) {
                redelivered.remove(&guid);
            }
        }
    }

    fn prune(&self, since: DateTime<Utc>) {
        let cutoff = since - PRUNE_MARGIN;
        self.lock()
            .retain(|_, redelivered_at| *redelivered_at >= cutoff);
    }
}

/// Returns the newest delivery of every `workflow_job` GUID that has no 2xx delivery in
/// `deliveries`, in listing order.
fn failed_workflow_jobs(deliveries: &[HookDelivery]) -> Vec<&HookDelivery> {
    let jobs = || {
        deliveries
            .iter()
            .filter(|delivery| delivery.event == WORKFLOW_JOB_EVENT)
    };
    let succeeded: HashSet<&str> = jobs()
        .filter(|delivery| delivery.succeeded())
        .map(|delivery| delivery.guid.as_str())
        .collect();
    let mut seen = HashSet::new();
    jobs()
        .filter(|delivery| !succeeded.contains(delivery.guid.as_str()))
        .filter(|delivery| seen.insert(delivery.guid.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn link(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(LINK, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn next_link_finds_next_among_relations() {
        let headers = link(
            "<https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_1>; rel=\"prev\", \
             <https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_9>; rel=\"next\"",
        );
        let next = next_link(&headers).unwrap();
        assert_eq!(next.query(), Some("per_page=100&cursor=v1_9"));
    }

    #[test]
    fn next_link_absent_on_last_page() {
        let headers =
            link("<https://api.github.com/app/hook/deliveries?cursor=v1_1>; rel=\"prev\"");
        assert_eq!(next_link(&headers), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    fn delivery(id: u64, guid: &str, event: &str, status_code: u16) -> HookDelivery {
        HookDelivery {
            id,
            guid: guid.to_owned(),
            delivered_at: Utc::now(),
            redelivery: false,
            status_code,
            event: event.to_owned(),
            action: None,
        }
    }

    #[test]
    fn failed_workflow_jobs_skips_guids_that_succeeded() {
        let deliveries = [
            delivery(6, "a", WORKFLOW_JOB_EVENT, 200),
            delivery(5, "b", WORKFLOW_JOB_EVENT, 502),
            delivery(4, "c", "ping", 500),
            delivery(3, "a", WORKFLOW_JOB_EVENT, 500),
            delivery(2, "b", WORKFLOW_JOB_EVENT, 0),
        ];
        let ids: Vec<u64> = failed_workflow_jobs(&deliveries)
            .iter()
            .map(|delivery| delivery.id)
            .collect();
        assert_eq!(ids, [5]);
    }

    #[test]
    fn rescue_pass_prunes_old_guids() {
        let pass = RescuePass::new();
        pass.remember("old");
        pass.prune(Utc::now() + chrono::TimeDelta::hours(2));
        assert_eq!(pass.remembered(), 0);
        pass.remember("new");
        pass.prune(Utc::now() - chrono::TimeDelta::hours(24));
        assert_eq!(pass.remembered(), 1);
    }
}
