//! Configuration from environment variables and the JSON deployment document.
//!
//! Every function reads its settings once, at init. A missing or invalid setting fails the
//! init with a [`ConfigError`] that names the variable, so the Lambda console shows which
//! one to fix.

use std::collections::HashMap;
use std::time::Duration;

use myshoes::github::TlsRoots;
use myshoes::model::{GitHubHost, ResourceType, Scope, Target, TargetId, TargetStatus};
use myshoes::profile::{LabelMatchMode, Profiles, RunnerProfile};
use serde::Deserialize;
use uuid::Uuid;

/// The deployment document: targets and runner profiles, as JSON.
pub const CONFIG_VAR: &str = "MYSHOES_CONFIG";
/// Webhook secret of the GitHub App.
pub const WEBHOOK_SECRET_VAR: &str = "GITHUB_APP_SECRET";
/// Numeric id of the GitHub App.
pub const APP_ID_VAR: &str = "GITHUB_APP_ID";
/// The GitHub App's PEM private key, base64-encoded.
pub const PRIVATE_KEY_VAR: &str = "GITHUB_PRIVATE_KEY_BASE64";
/// URL of the job queue.
pub const QUEUE_URL_VAR: &str = "AWS_SQS_QUEUE_URL";
/// URL of the job queue's dead-letter queue.
pub const DEAD_LETTER_QUEUE_URL_VAR: &str = "AWS_SQS_DEAD_LETTER_QUEUE_URL";
/// ECS cluster name or ARN that runs the runner tasks.
pub const CLUSTER_VAR: &str = "ECS_TASK_CLUSTER";
/// Task definition (family, `family:revision` or ARN) of the default task profile.
pub const TASK_DEFINITION_VAR: &str = "ECS_TASK_DEFINITION_ARN";
/// Name of the runner container in every task definition.
pub const CONTAINER_NAME_VAR: &str = "ECS_TASK_CONTAINER_NAME";
/// Comma-separated subnet ids of the runner tasks.
pub const SUBNETS_VAR: &str = "ECS_TASK_SUBNETS";
/// Comma-separated security group ids of the runner tasks.
pub const SECURITY_GROUPS_VAR: &str = "ECS_TASK_SECURITY_GROUPS";
/// `true` to give runner tasks a public IP.
pub const PUBLIC_IP_VAR: &str = "ECS_TASK_ASSIGN_PUBLIC_IP";
/// `FARGATE`, `EC2` or `CLUSTER_DEFAULT`.
pub const LAUNCH_TYPE_VAR: &str = "ECS_TASK_LAUNCH_TYPE";
/// `startedBy` value of the runner tasks, which the sweeper lists them by.
pub const STARTED_BY_VAR: &str = "ECS_TASK_STARTED_BY";
/// Path of a pre-installed Actions runner in the runner image.
pub const RUNNER_DIR_VAR: &str = "RUNNER_DIR";
/// Start of every runner name.
pub const RUNNER_NAME_PREFIX_VAR: &str = "RUNNER_NAME_PREFIX";
/// Records one dispatcher invocation processes at once.
pub const DISPATCH_CONCURRENCY_VAR: &str = "DISPATCHER_MAX_CONCURRENCY";
/// Largest webhook body accepted, in bytes.
pub const MAX_BODY_BYTES_VAR: &str = "WEBHOOK_MAX_BODY_BYTES";
/// Sweeper: seconds a runner may take to register.
pub const BOOT_GRACE_VAR: &str = "SWEEPER_BOOT_GRACE_SECONDS";
/// Sweeper: seconds before an idle runner may be removed.
pub const MIN_IDLE_VAR: &str = "SWEEPER_MIN_IDLE_SECONDS";
/// Sweeper: seconds after which any runner task is stopped.
pub const MAX_LIFETIME_VAR: &str = "SWEEPER_MAX_LIFETIME_SECONDS";
/// Region of the queue, the cluster and the function, set by the Lambda runtime.
pub const REGION_VAR: &str = "AWS_REGION";
/// Root certificates of the HTTPS clients: `mozilla` (compiled in, the default) or
/// `platform` (the operating system's store).
pub const TLS_ROOTS_VAR: &str = "MYSHOES_TLS_ROOTS";

/// Suffix of the variable that names an SSM parameter holding a setting's value.
pub const SSM_SUFFIX: &str = "_SSM_PARAMETER";
/// Suffix of the variable that names a Secrets Manager secret holding a setting's value.
pub const SECRET_ID_SUFFIX: &str = "_SECRET_ID";

/// Smallest webhook body limit accepted; `workflow_job` deliveries are around 10 KB.
pub const MIN_BODY_LIMIT: usize = 64 * 1024;
/// Default webhook body limit: 1 MiB. Function URLs and API Gateway reject requests over
/// 6 MB before the function runs.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Error returned for a missing or invalid setting. Every variant names the variable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{variable} is not set: {hint}")]
    Missing {
        /// Name of the variable.
        variable: String,
        /// Advice on the value to set.
        hint: &'static str,
    },
    /// A variable's value is invalid.
    #[error("{variable} is invalid: {reason}")]
    Invalid {
        /// Name of the variable.
        variable: String,
        /// Reason the value is invalid; it omits the value when that may be a secret.
        reason: String,
    },
    /// A setting is given in more than one way.
    #[error("set only one of {variables}")]
    Ambiguous {
        /// The variables that are set, comma-separated.
        variables: String,
    },
    /// Reading a parameter or secret from AWS failed.
    #[error("failed to read {variable} from {service} ({id})")]
    Fetch {
        /// The variable that names the parameter or secret.
        variable: String,
        /// `SSM Parameter Store` or `Secrets Manager`.
        service: &'static str,
        /// Name or ARN of the parameter or secret.
        id: String,
        /// The SDK error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ConfigError {
    pub(crate) fn invalid(variable: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            variable: variable.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Source of environment variables: the process environment, or a map in tests.
pub trait Environment: Send + Sync + std::fmt::Debug {
    /// Returns the variable's value; `None` when it is unset or empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|value| !value.is_empty())
    }
}

impl Environment for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|value| !value.is_empty()).cloned()
    }
}

/// Returns a required variable's value.
pub(crate) fn required(
    env: &dyn Environment,
    variable: &str,
    hint: &'static str,
) -> Result<String, ConfigError> {
    env.var(variable).ok_or_else(|| ConfigError::Missing {
        variable: variable.to_owned(),
        hint,
    })
}

/// Parses an optional number; `default` when unset.
pub(crate) fn number<T: std::str::FromStr>(
    env: &dyn Environment,
    variable: &str,
    default: T,
) -> Result<T, ConfigError> {
    match env.var(variable) {
        None => Ok(default),
        Some(text) => text.trim().parse().map_err(|_| {
            ConfigError::invalid(variable, format!("{text:?} is not a non-negative integer"))
        }),
    }
}

/// Parses an optional duration in whole seconds; `default` when unset.
pub(crate) fn seconds(
    env: &dyn Environment,
    variable: &str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    number(env, variable, default.as_secs()).map(Duration::from_secs)
}

/// Splits a comma-separated list, dropping blanks.
pub(crate) fn list(env: &dyn Environment, variable: &str) -> Vec<String> {
    env.var(variable)
        .map(|text| {
            text.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Reads [`TLS_ROOTS_VAR`]: `mozilla` (the default when unset) or `platform`; any other
/// value is an error.
pub fn tls_roots(env: &dyn Environment) -> Result<TlsRoots, ConfigError> {
    match env.var(TLS_ROOTS_VAR) {
        None => Ok(TlsRoots::Mozilla),
        Some(text) => match text.trim().to_ascii_lowercase().as_str() {
            "mozilla" => Ok(TlsRoots::Mozilla),
            "platform" => Ok(TlsRoots::Platform),
            _ => Err(ConfigError::invalid(
                TLS_ROOTS_VAR,
                format!("{text:?} is neither \"mozilla\" nor \"platform\""),
            )),
        },
    }
}

/// Parses `true` or `false` (any case); `default` when unset.
pub(crate) fn boolean(
    env: &dyn Environment,
    variable: &str,
    default: bool,
) -> Result<bool, ConfigError> {
    match env.var(variable) {
        None => Ok(default),
        Some(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(ConfigError::invalid(
                variable,
                format!("{text:?} is not true or false"),
            )),
        },
    }
}

/// The JSON deployment document in [`CONFIG_VAR`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    github_host: GitHubHost,
    #[serde(default)]
    label_match: LabelMatchMode,
    #[serde(default)]
    targets: Vec<TargetEntry>,
    #[serde(default)]
    profiles: Vec<RunnerProfile>,
    #[serde(default)]
    task_profiles: Vec<TaskProfileEntry>,
    /// Accepted only to reject it with a reason; see [`Deployment::parse`].
    #[serde(default)]
    max_runners_per_target: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetEntry {
    scope: Scope,
    host: Option<GitHubHost>,
    #[serde(default)]
    resource_type: ResourceType,
    #[serde(default = "active")]
    status: TargetStatus,
}

fn active() -> TargetStatus {
    TargetStatus::Active
}

/// One ECS task profile in the deployment document.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TaskProfileEntry {
    /// Name shown in errors.
    pub name: String,
    /// Task definition family, `family:revision` or ARN.
    pub task_definition: String,
    /// Resource type this profile serves; any when absent.
    #[serde(default)]
    pub resource_type: Option<ResourceType>,
    /// Labels a runner must have for this profile; any when empty.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Task cpu override in CPU units.
    #[serde(default)]
    pub cpu: Option<u32>,
    /// Task memory override in MiB.
    #[serde(default)]
    pub memory_mib: Option<u32>,
}

/// Validated contents of the deployment document.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Default GitHub instance.
    pub github_host: GitHubHost,
    /// Targets, each with an id derived from its host and scope.
    pub targets: Vec<Target>,
    /// Runner profiles in matching order.
    pub profiles: Profiles,
    /// ECS task profiles, tried before the default one from [`TASK_DEFINITION_VAR`].
    pub task_profiles: Vec<TaskProfileEntry>,
}

impl Deployment {
    /// Parses and validates the JSON document; `variable` names its source in errors.
    ///
    /// Runner limits (`max_runners` on a profile, `max_runners_per_target`) are rejected:
    /// the dispatcher counts runners in the memory of one Lambda instance, so a limit would
    /// hold per warm instance only and not for the deployment.
    pub fn parse(text: &str, variable: &str) -> Result<Self, ConfigError> {
        let document: Document = serde_json::from_str(text)
            .map_err(|error| ConfigError::invalid(variable, format!("invalid JSON: {error}")))?;
        if document.max_runners_per_target.is_some()
            || document.profiles.iter().any(|p| p.max_runners.is_some())
        {
            return Err(ConfigError::invalid(
                variable,
                "runner limits (max_runners, max_runners_per_target) are not supported on \
                 Lambda, because each instance counts only its own launches; bound launches \
                 with the event source mapping's maximum concurrency instead",
            ));
        }
        if document.profiles.is_empty() {
            return Err(ConfigError::invalid(
                variable,
                "no profiles: add at least one runner profile, or no job ever matches",
            ));
        }
        let profiles = Profiles::new(document.profiles, document.label_match)
            .map_err(|error| ConfigError::invalid(variable, error.to_string()))?;

        let mut targets: Vec<Target> = Vec::new();
        for entry in document.targets {
            let host = entry.host.unwrap_or_else(|| document.github_host.clone());
            if !matches!(entry.status, TargetStatus::Active | TargetStatus::Suspend) {
                return Err(ConfigError::invalid(
                    variable,
                    format!(
                        "target {} has status {}: use active or suspend",
                        entry.scope, entry.status
                    ),
                ));
            }
            let mut target = Target::new(entry.scope, host, entry.resource_type);
            target.id = target_id(&target.host, &target.scope);
            target.status = entry.status;
            if targets.iter().any(|other| other.id == target.id) {
                return Err(ConfigError::invalid(
                    variable,
                    format!("target {} on {} is listed twice", target.scope, target.host),
                ));
            }
            targets.push(target);
        }
        if targets.is_empty() {
            return Err(ConfigError::invalid(
                variable,
                "no targets: add the repositories or organizations that get runners",
            ));
        }
        Ok(Self {
            github_host: document.github_host,
            targets,
            profiles,
            task_profiles: document.task_profiles,
        })
    }
}

/// Namespace of [`target_id`]: a UUIDv5 of the URL `urn:myshoes-lambda:target`.
const TARGET_NAMESPACE: Uuid = Uuid::from_bytes([
    0x5b, 0x0e, 0x8f, 0x2a, 0x47, 0x31, 0x5c, 0x9d, 0x8e, 0x11, 0x3c, 0x6a, 0x90, 0x2f, 0x7d, 0x14,
]);

/// Derives a target's id from its host and scope (UUIDv5, case-insensitive).
///
/// Each Lambda instance seeds its own memory store from the document, so ids must come out
/// the same in the webhook function that enqueues a job and the dispatcher that reads it.
pub fn target_id(host: &GitHubHost, scope: &Scope) -> TargetId {
    let name = format!("{host}/{scope}").to_ascii_lowercase();
    TargetId::from_uuid(Uuid::new_v5(&TARGET_NAMESPACE, name.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        r#"{"targets":[{"scope":"octo-org"}],"profiles":[{"name":"linux","labels":["linux"]}]}"#;

    #[test]
    fn minimal_document_parses() {
        let deployment = Deployment::parse(MINIMAL, CONFIG_VAR).unwrap();
        assert_eq!(deployment.targets.len(), 1);
        assert_eq!(deployment.github_host, GitHubHost::github_com());
        assert!(deployment.task_profiles.is_empty());
    }

    #[test]
    fn target_ids_are_stable() {
        let first = Deployment::parse(MINIMAL, CONFIG_VAR).unwrap();
        let second = Deployment::parse(MINIMAL, CONFIG_VAR).unwrap();
        assert_eq!(first.targets[0].id, second.targets[0].id);
        let upper = MINIMAL.replace("octo-org", "Octo-Org");
        let third = Deployment::parse(&upper, CONFIG_VAR).unwrap();
        assert_eq!(first.targets[0].id, third.targets[0].id);
    }

    #[test]
    fn runner_limits_are_rejected() {
        let profile_cap = MINIMAL.replace(r#""labels":["linux"]"#, r#""max_runners":3"#);
        let error = Deployment::parse(&profile_cap, CONFIG_VAR)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with(CONFIG_VAR), "{error}");
        assert!(error.contains("not supported on Lambda"), "{error}");

        let target_cap = MINIMAL.replacen('{', r#"{"max_runners_per_target":2,"#, 1);
        let error = Deployment::parse(&target_cap, CONFIG_VAR)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not supported on Lambda"), "{error}");
    }

    #[test]
    fn invalid_documents_name_the_variable() {
        for (text, expected) in [
            ("{", "invalid JSON"),
            (r#"{"targets":[{"scope":"a"}]}"#, "no profiles"),
            (r#"{"profiles":[{"name":"p"}]}"#, "no targets"),
            (
                r#"{"targets":[{"scope":"a"},{"scope":"A"}],"profiles":[{"name":"p"}]}"#,
                "listed twice",
            ),
            (r#"{"colour":1}"#, "unknown field"),
        ] {
            let error = Deployment::parse(text, CONFIG_VAR).unwrap_err().to_string();
            assert!(error.starts_with(CONFIG_VAR), "{error}");
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn helpers_name_the_variable() {
        let env: HashMap<String, String> = [
            ("N".to_owned(), "x".to_owned()),
            ("B".to_owned(), "yes".to_owned()),
        ]
        .into();
        let error = number(&env, "N", 1u32).unwrap_err().to_string();
        assert!(error.starts_with("N is invalid"), "{error}");
        let error = boolean(&env, "B", false).unwrap_err().to_string();
        assert!(error.starts_with("B is invalid"), "{error}");
        let error = required(&env, "MISSING", "set it").unwrap_err().to_string();
        assert_eq!(error, "MISSING is not set: set it");
    }

    #[test]
    fn tls_roots_default_to_mozilla() {
        let mut env: HashMap<String, String> = HashMap::new();
        assert_eq!(tls_roots(&env).unwrap(), TlsRoots::Mozilla);

        env.insert(TLS_ROOTS_VAR.to_owned(), " Platform ".to_owned());
        assert_eq!(tls_roots(&env).unwrap(), TlsRoots::Platform);

        env.insert(TLS_ROOTS_VAR.to_owned(), "system".to_owned());
        let error = tls_roots(&env).unwrap_err().to_string();
        assert!(error.starts_with(TLS_ROOTS_VAR), "{error}");
        assert!(error.contains("\"system\""), "{error}");
    }
}
