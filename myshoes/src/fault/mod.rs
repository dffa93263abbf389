//! Fault injection: decorators that make a real backend fail at chosen calls.
//!
//! [`FaultyDatastore`], [`FaultyStadium`], [`FaultyCredentials`] and [`FaultyGitHub`] wrap
//! a working [`Datastore`](crate::datastore::Datastore), [`Stadium`](crate::stadium::Stadium),
//! [`RunnerCredentials`](crate::credentials::RunnerCredentials) or
//! [`GitHubApi`](crate::github::GitHubApi) and forward every call to it, except the calls a
//! [`FaultPlan`] selects. A selected call gets the plan's [`Fault`] instead. The dispatcher
//! and sweeper see backends only through those traits, so a wrapped backend tests their
//! handling of every failure without changing them.
//!
//! What each fault models:
//!
//! | fault | inner call runs | caller sees | models |
//! |---|---|---|---|
//! | [`Fault::RetryableError`] | no | a retryable error | a transient backend failure (5xx, a dropped connection before the request arrived) |
//! | [`Fault::PermanentError`] | no | a permanent error | a failure a retry does not fix (access denied, invalid request) |
//! | [`Fault::Throttled`] | no | a rate-limit error, retryable | the backend rejecting the call under its rate limit |
//! | [`Fault::TimedOut`] | no | a timed-out error, retryable | the caller giving up before the request reached the backend |
//! | [`Fault::Capacity`] | no | a capacity error | the backend having no room: no instance capacity, a full slot pool |
//! | [`Fault::LostResponse`] | yes | a timed-out error, retryable | the side effect happened, then the response was lost (a timeout after the backend acted) |
//! | [`Fault::Crash`] | yes | nothing: the calling task unwinds | the process stopping right after the call took effect, before the next step |
//!
//! A real timeout is either [`Fault::TimedOut`] or [`Fault::LostResponse`]; the caller
//! cannot tell which, so both must be handled. The error each fault produces for each
//! trait is listed on the decorator.
//!
//! [`Fault::Crash`] unwinds the calling task with [`std::panic::resume_unwind`] and an
//! [`InjectedCrash`] payload, which skips the panic hook. Nothing after the call runs: no
//! cleanup, no acknowledgement. In the dispatcher's run loop, a crash inside one job's
//! processing ends that job's task (the loop logs it), and a crash in `receive_jobs` ends
//! the loop itself. Either way the received jobs stay invisible until the Datastore's
//! visibility timeout returns them, as they would after the whole process stopped. A real
//! process crash also loses in-memory state (a [`MemoryDatastore`](crate::datastore::MemoryDatastore),
//! the process Stadium's table), which these decorators do not model.
//!
//! ```
//! use myshoes::datastore::{Datastore, MemoryDatastore};
//! use myshoes::fault::{Fault, FaultPlan, FaultRule, FaultyDatastore, Op};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // The second `list_jobs` call fails with a retryable error; the others pass through.
//! let plan = FaultPlan::new().with_rule(FaultRule::new(Op::ListJobs, Fault::RetryableError).on_call(2));
//! let store = FaultyDatastore::new(MemoryDatastore::new(), plan.clone());
//! assert!(store.list_jobs().await.is_ok());
//! assert!(store.list_jobs().await.unwrap_err().is_retryable());
//! assert!(store.list_jobs().await.is_ok());
//! assert_eq!(plan.injected().len(), 1);
//! # });
//! ```

mod datastore;
mod github;
mod plan;
mod stadium;

pub use datastore::FaultyDatastore;
pub use github::{FaultyCredentials, FaultyGitHub};
pub use plan::{
    CallInfo, Fault, FaultPlan, FaultRule, InjectedCrash, InjectedError, Injection, Op,
};
pub use stadium::FaultyStadium;

#[cfg(test)]
mod tests;
