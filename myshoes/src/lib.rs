//! Ephemeral, auto-scaled, self-hosted GitHub Actions runners: one clean runner per job,
//! on infrastructure you own.
//!
//! A GitHub App's `workflow_job` webhook goes through [`webhook::receive`] (signature,
//! parsing, decision), becomes a [`Job`](model::Job) in a [`Datastore`](datastore::Datastore),
//! and a [`Dispatcher`](dispatcher::Dispatcher) turns each job into a runner started on a
//! [`Stadium`](stadium::Stadium) with a setup script from [`setup_script`].
//!
//! | part | in this crate | elsewhere |
//! |---|---|---|
//! | Datastore | [`MemoryDatastore`](datastore::MemoryDatastore) (not durable) | your own, checked with the conformance suite |
//! | Stadium | [`ProcessStadium`](stadium::ProcessStadium) (local processes), [`MemoryStadium`](stadium::MemoryStadium) (tests) | your own, checked with the conformance suite |
//! | runner credentials | [`StaticRegistrationToken`](credentials::StaticRegistrationToken) | your own [`RunnerCredentials`](credentials::RunnerCredentials) |
//!
//! | feature | enables |
//! |---|---|
//! | `conformance` | `datastore::conformance` and `stadium::conformance`, the suites that check a backend against the traits' contracts, and their macros |
//!
//! The `webhook`, `setup_script` and `profile` modules are pure: they take values and
//! return values, with no I/O and no logging. Everything else logs with `tracing` and never
//! installs a subscriber. Types that hold a secret redact it in `Debug`.
//!
//! # Example
//!
//! One signed webhook, from HTTP bytes to a launched runner, on the in-memory backends:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use myshoes::credentials::StaticRegistrationToken;
//! use myshoes::datastore::{Datastore, DatastoreExt, MemoryDatastore};
//! use myshoes::dispatcher::{Dispatcher, DispatcherConfig, Outcome};
//! use myshoes::model::{GitHubHost, ResourceType, Target};
//! use myshoes::profile::{LabelMatchMode, Profiles, RunnerProfile};
//! use myshoes::secret::Secret;
//! use myshoes::stadium::MemoryStadium;
//! use myshoes::webhook::{self, DecideConfig, Decision, ReceiverConfig, WebhookHeaders};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let datastore = Arc::new(MemoryDatastore::new());
//! let stadium = Arc::new(MemoryStadium::new());
//! let org = Target::new("octo-org".parse()?, GitHubHost::github_com(), ResourceType::Small);
//! datastore.create_target(&org).await?;
//! let profiles = Profiles::new(vec![RunnerProfile::new("linux", ["linux", "x64"])], LabelMatchMode::Subset)?;
//!
//! // What GitHub sends: a body and headers, signed with the webhook secret.
//! let secret = Secret::new("webhook-secret");
//! let body = br#"{"action":"queued","workflow_job":{"id":38000000001,"run_id":19000000001,"run_attempt":1,"labels":["self-hosted","linux"]},"repository":{"full_name":"octo-org/hello-world","html_url":"https://github.com/octo-org/hello-world"},"installation":{"id":4242}}"#;
//! let signature = webhook::sign_sha256(&secret, body);
//! let headers = WebhookHeaders::from_pairs([
//!     ("X-GitHub-Event", "workflow_job"),
//!     ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
//!     ("X-Hub-Signature-256", signature.as_str()),
//!     ("Content-Type", "application/json"),
//! ]);
//!
//! // Verify, parse and decide; then store the job for the repository's target.
//! let config = ReceiverConfig::new(DecideConfig::new(profiles.clone(), GitHubHost::github_com()));
//! let received = webhook::receive(&headers, body, &secret, &config)?;
//! let Decision::Enqueue(request) = received.decision else { panic!("expected a job") };
//! let target = datastore.find_target_for_repository(&request.host, &request.repository).await?.expect("a target");
//! datastore.enqueue_job(&request.into_job(target.id, chrono::Utc::now())).await?;
//!
//! // Dispatch it.
//! let dispatcher = Dispatcher::new(
//!     datastore.clone(),
//!     stadium.clone(),
//!     Arc::new(StaticRegistrationToken::new(Secret::new("registration-token"))),
//!     profiles,
//!     DispatcherConfig::default(),
//! )?;
//! let job = datastore.receive_jobs(1, Duration::from_secs(1)).await?.remove(0);
//! let Outcome::Launched { runner, .. } = dispatcher.process(job).await else { panic!("expected a launch") };
//! assert_eq!(runner.name, "myshoes-38000000001-1");
//! assert_eq!(stadium.running().len(), 1);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod credentials;
pub mod datastore;
pub mod dispatcher;
pub mod fault;
pub mod github;
pub mod job_status;
pub mod model;
pub mod profile;
pub mod runner_name;
pub mod secret;
pub mod setup_script;
pub mod stadium;
pub mod sweeper;
pub mod webhook;

mod error_chain;
pub use error_chain::ErrorChain;
