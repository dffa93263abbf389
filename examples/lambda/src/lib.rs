//! AWS reference app for myshoes: three Lambda functions that wire the library crates.
//!
//! - [`webhook`]: Function URL or API Gateway → signature check and decision → SQS.
//! - [`dispatch`]: SQS event source mapping → one ECS task per job, with per-record
//!   failures reported in `batchItemFailures`.
//! - [`sweep`]: EventBridge schedule → one sweeper pass over ECS tasks and GitHub runners.
//!
//! Each function is its own binary (`src/bin/`), so each reads only the settings and builds
//! only the clients it needs at init. All job logic lives in `myshoes`,
//! `myshoes-datastore-sqs` and `myshoes-stadium-ecs`; this crate reads configuration
//! ([`config`], [`secrets`]) and connects them ([`init`]).

pub mod config;
pub mod dispatch;
pub mod init;
pub mod runtime;
pub mod secrets;
pub mod sweep;
pub mod webhook;
