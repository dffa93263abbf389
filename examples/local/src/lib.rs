//! The local myshoes app: a GitHub webhook receiver, the in-memory Datastore, the
//! dispatcher and the process Stadium in one process.
//!
//! The binary `myshoes-local` has two commands: `serve` runs the app until Ctrl-C, and
//! `demo` starts it, sends it a signed `workflow_job` webhook and prints every step.
#![forbid(unsafe_code)]

pub mod app;
pub mod config;
pub mod demo;
