//! GitHub webhook deliveries: signature check, `workflow_job` parsing and the decision
//! whether a delivery creates a job.
//!
//! This module is pure: it takes header pairs and body bytes and returns values, with no
//! I/O and no logging. The parts are:
//!
//! - [`WebhookHeaders`]: the headers it reads, matched by name case-insensitively.
//! - [`verify_signature`]: HMAC-SHA256 of the raw body (`X-Hub-Signature-256`), compared in
//!   constant time, with HMAC-SHA1 (`X-Hub-Signature`) only as an opt-in.
//! - [`Event::parse`]: chooses the event from `X-GitHub-Event` and parses only
//!   `workflow_job` bodies, sent as JSON or as a form field `payload`.
//! - [`decide`]: a `queued` workflow job whose labels a [`RunnerProfile`] accepts becomes a
//!   [`JobRequest`], and everything else is ignored with an [`IgnoreReason`].
//! - [`receive`]: all of the above in one call, returning a [`WebhookError`] with an HTTP
//!   status code when a check fails.
//!
//! [`RunnerProfile`]: crate::profile::RunnerProfile
//!
//! # Example
//!
//! ```
//! use myshoes::model::GitHubHost;
//! use myshoes::profile::{LabelMatchMode, Profiles, RunnerProfile};
//! use myshoes::secret::Secret;
//! use myshoes::webhook::{
//!     receive, sign_sha256, DecideConfig, Decision, ReceiverConfig, WebhookHeaders,
//! };
//!
//! let profiles = Profiles::new(
//!     vec![RunnerProfile::new("linux", ["linux", "x64"])],
//!     LabelMatchMode::Subset,
//! )
//! .unwrap();
//! let config = ReceiverConfig::new(DecideConfig::new(profiles, GitHubHost::github_com()));
//! let secret = Secret::new("webhook secret");
//!
//! let body = br#"{"action":"queued","workflow_job":{"id":1,"run_id":2,"labels":["self-hosted","linux"]},"repository":{"full_name":"octo-org/hello-world","html_url":"https://github.com/octo-org/hello-world"}}"#;
//! let signature = sign_sha256(&secret, body);
//! let headers = WebhookHeaders::from_pairs([
//!     ("x-github-event", "workflow_job"),
//!     ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
//!     ("x-hub-signature-256", signature.as_str()),
//!     ("content-type", "application/json"),
//! ]);
//!
//! match receive(&headers, body, &secret, &config) {
//!     Ok(received) => match received.decision {
//!         Decision::Enqueue(request) => assert_eq!(request.profile, "linux"),
//!         Decision::Ignore(reason) => panic!("ignored: {reason}"),
//!         Decision::Cancel(cancel) => panic!("cancelled: {cancel:?}"),
//!     },
//!     Err(error) => panic!("answer {}: {error}", error.status_code()),
//! }
//! ```

mod body;
mod decide;
mod error;
mod event;
mod headers;
mod payload;
mod receive;
mod signature;
mod workflow_job;

pub use body::ContentType;
pub use decide::{
    decide, runner_activity, DecideConfig, Decision, IgnoreReason, JobCancel, JobRequest,
    RunnerActivity,
};
pub use error::WebhookError;
pub use event::Event;
pub use headers::{
    Delivery, WebhookHeaders, CONTENT_TYPE_HEADER, DELIVERY_HEADER, ENTERPRISE_HOST_HEADER,
    EVENT_HEADER, MAX_DELIVERY_ID_LEN, SIGNATURE_256_HEADER, SIGNATURE_SHA1_HEADER,
};
pub use receive::{receive, Received, ReceiverConfig, DEFAULT_MAX_BODY_BYTES};
pub use signature::{
    sign_sha1, sign_sha256, verify_signature, SignatureAlgorithm, SignatureOptions,
};
pub use workflow_job::{WorkflowJobAction, WorkflowJobEvent, MAX_LABELS, MAX_LABEL_LEN};
