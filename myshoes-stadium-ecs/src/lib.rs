//! An Amazon ECS [`Stadium`](myshoes::stadium::Stadium) for myshoes: each ephemeral GitHub
//! Actions runner is one ECS task, on Fargate or on the cluster's capacity providers.
//!
//! [`EcsStadium::new`] takes an `aws_sdk_ecs::Client` that the caller builds, with its
//! region, credentials and retry settings. It also takes an [`EcsConfig`]: the cluster, the
//! runner container's name, the subnets and security groups, a public IP on or off, a launch type
//! or capacity provider strategy, the platform version, tag propagation and the
//! [`TaskProfile`]s that map a runner's resource type and labels to a task definition with
//! optional cpu and memory overrides.
//!
//! # Capabilities
//!
//! | method | ECS calls | behaviour |
//! |---|---|---|
//! | `add_instance` | one `RunTask` | supported: the setup script's wrapper form goes into a container override, as the command or as an environment variable ([`ScriptDelivery`]); returns the task ARN without waiting for the task to run |
//! | idempotent launch | `RunTask` `clientToken` | supported: a repeated launch of one job attempt within 24 hours returns the first task ([`client_token`]) |
//! | `delete_instance` | `StopTask`, and `DescribeTasks` when StopTask fails | supported: an unknown or stopped task counts as deleted |
//! | `list_instances` | `ListTasks` by `startedBy` and desired status `RUNNING`, then `DescribeTasks` with tags, 100 tasks per call | supported: runner name, job id and labels come from the task's tags, the start time from `startedAt` or `createdAt` |
//! | resource types and labels | task definition per [`TaskProfile`] | supported: the first matching profile wins; a request no profile matches is a permanent error naming the request and the profiles |
//! | large setup scripts | none | limited: the overrides may hold at most 8192 characters ([`MAX_OVERRIDES_LEN`]); a larger request fails before any call |
//! | instance address | none | limited: the private IP only when RunTask already reports one, which it rarely does |
//!
//! # Errors
//!
//! Every failure maps to [`myshoes::stadium::Error`]. RunTask `failures` with `RESOURCE:*`,
//! `AGENT` or another reason ECS describes in free text (Fargate's "Capacity is unavailable")
//! become [`Capacity`](myshoes::stadium::Error::Capacity), and throttling becomes
//! [`Throttled`](myshoes::stadium::Error::Throttled); both are retryable. `MISSING`,
//! `INACTIVE` and `ATTRIBUTE` failures, a missing cluster or task definition and other
//! rejected parameters become [`InvalidRequest`](myshoes::stadium::Error::InvalidRequest),
//! and denied calls [`AccessDenied`](myshoes::stadium::Error::AccessDenied); these are
//! permanent. Modeled SDK errors are distinguished by their type and unmodeled ones by their
//! error code, never by message text.
//!
//! # IAM permissions
//!
//! | method | actions |
//! |---|---|
//! | `add_instance` | `ecs:RunTask` on the task definitions, `ecs:TagResource` (RunTask sends tags), and `iam:PassRole` for the task definitions' task role and execution role |
//! | `delete_instance` | `ecs:StopTask`, and `ecs:DescribeTasks` to confirm that a task StopTask rejected is gone |
//! | `list_instances` | `ecs:ListTasks` and `ecs:DescribeTasks` |
//!
//! # What the override exposes
//!
//! The setup script carries a runner credential: a registration token or a JIT
//! configuration. ECS stores RunTask's overrides with the task and returns them from
//! `DescribeTasks` while the task runs and, as the DescribeTasks API reference states, for
//! at least an hour after it stops. Every principal allowed `ecs:DescribeTasks` on the
//! cluster can therefore read the credential while it is valid. Use JIT configurations,
//! which register one runner once, and keep `ecs:DescribeTasks` on the runner cluster to the
//! principals that run myshoes. This crate never logs the overrides and leaves them out of
//! its `Debug` output and error messages.
//!
//! # Tags and `startedBy`
//!
//! Each task gets the tags [`TAG_RUNNER_NAME`], [`TAG_JOB_ID`], [`TAG_REPOSITORY`],
//! [`TAG_TARGET_ID`] and, when a tag value can hold them, [`TAG_LABELS`], and the config's
//! `startedBy` value ([`DEFAULT_STARTED_BY`] unless set). Listing finds tasks by
//! `startedBy`, so deployments that share a cluster need different values.
//!
//! # Example
//!
//! ```no_run
//! use aws_sdk_ecs::types::{CapacityProviderStrategyItem, LaunchType};
//! use myshoes::model::ResourceType;
//! use myshoes_stadium_ecs::{EcsConfig, EcsStadium, TaskProfile};
//!
//! # async fn example(client: aws_sdk_ecs::Client) -> Result<(), Box<dyn std::error::Error>> {
//! let spot_first = vec![
//!     CapacityProviderStrategyItem::builder().capacity_provider("FARGATE_SPOT").weight(1).build()?,
//!     CapacityProviderStrategyItem::builder().capacity_provider("FARGATE").base(0).weight(0).build()?,
//! ];
//! let config = EcsConfig::builder("runners", "runner")
//!     .with_subnets(["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"])
//!     .with_security_groups(["sg-0123456789abcdef0"])
//!     .with_capacity_provider_strategy(spot_first)
//!     .with_profile(TaskProfile::new("large", "runner-large").for_resource_type(ResourceType::Large).with_cpu(4096).with_memory_mib(8192))
//!     .with_profile(TaskProfile::new("default", "runner-small"))
//!     .build()?;
//! let stadium = EcsStadium::new(client, config);
//! # let _ = stadium;
//! # Ok(())
//! # }
//! ```
//!
//! # Testing
//!
//! The integration tests run against moto (`moto[server]` 5.2.5) on loopback, found through
//! `AWS_ENDPOINT_URL`; without it they print a notice and pass. Answers moto cannot give,
//! such as RunTask failures, throttling and a reused client token, are covered with
//! `aws-smithy-mocks` rules.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod error;
mod overrides;
mod profile;
mod stadium;
mod tags;

pub use config::{
    CapacitySource, ConfigError, EcsConfig, EcsConfigBuilder, ScriptDelivery,
    DEFAULT_SCRIPT_VARIABLE, DEFAULT_STARTED_BY, MAX_STARTED_BY_LEN,
};
pub use overrides::MAX_OVERRIDES_LEN;
pub use profile::TaskProfile;
pub use stadium::{client_token, EcsStadium};
pub use tags::{TAG_JOB_ID, TAG_LABELS, TAG_REPOSITORY, TAG_RUNNER_NAME, TAG_TARGET_ID};
