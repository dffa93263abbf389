//! myshoes: ephemeral, auto-scaled, self-hosted GitHub Actions runners.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod credentials;
pub mod datastore;
pub mod dispatcher;
pub mod model;
pub mod profile;
pub mod secret;
pub mod setup_script;
pub mod stadium;
pub mod webhook;

mod error_chain;
pub use error_chain::ErrorChain;
