//! Settings of an [`EcsStadium`](crate::EcsStadium): where tasks run and how they start.

use aws_sdk_ecs::types::{CapacityProviderStrategyItem, LaunchType, PropagateTags};

use crate::profile::TaskProfile;

/// Maximum length of a RunTask `startedBy` value.
pub const MAX_STARTED_BY_LEN: usize = 36;

/// Default `startedBy` value of the tasks an [`EcsStadium`](crate::EcsStadium) starts.
pub const DEFAULT_STARTED_BY: &str = "myshoes";

/// Default name of the environment variable that carries the setup script with
/// [`ScriptDelivery::Environment`].
pub const DEFAULT_SCRIPT_VARIABLE: &str = "MYSHOES_SETUP_SCRIPT";

/// Channel through which the setup script reaches the runner container.
///
/// Both ways send the script's compact wrapper form, which contains the runner credential.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ScriptDelivery {
    /// The container override's command becomes `bash -c <wrapper>`. The image needs bash,
    /// `base64` and `gzip`, and the task definition's command is replaced.
    #[default]
    Command,
    /// The container override sets one environment variable to the wrapper, and the task
    /// definition's own command runs it. A command that also removes the variable from the
    /// job's environment is
    /// `["bash", "-c", "script=$MYSHOES_SETUP_SCRIPT; unset MYSHOES_SETUP_SCRIPT; eval \"$script\""]`.
    Environment {
        /// Name of the variable.
        variable: String,
    },
}

impl ScriptDelivery {
    /// Returns environment delivery through [`DEFAULT_SCRIPT_VARIABLE`].
    pub fn environment() -> Self {
        ScriptDelivery::Environment {
            variable: DEFAULT_SCRIPT_VARIABLE.to_owned(),
        }
    }
}

/// Source of the tasks' capacity.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum CapacitySource {
    /// Neither a launch type nor a strategy is sent, so the cluster's default capacity
    /// provider strategy applies.
    #[default]
    ClusterDefault,
    /// A launch type, such as `FARGATE`.
    LaunchType(LaunchType),
    /// A capacity provider strategy, such as `FARGATE_SPOT` with `FARGATE` as fallback.
    Strategy(Vec<CapacityProviderStrategyItem>),
}

/// Error returned by [`EcsConfigBuilder::build`] for settings ECS would reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required setting is empty.
    #[error("invalid ECS stadium config: {field} is empty; set at least one value")]
    Empty {
        /// The setting.
        field: &'static str,
    },
    /// The `startedBy` value breaks ECS's rules.
    #[error(
        "invalid ECS stadium config: started_by {value:?} must be 1 to 36 letters, digits, \
         '-', '/' or '_'"
    )]
    InvalidStartedBy {
        /// The rejected value.
        value: String,
    },
    /// The environment variable name for [`ScriptDelivery::Environment`] is not a shell
    /// variable name.
    #[error(
        "invalid ECS stadium config: script variable {value:?} must start with a letter or '_' \
         and contain only letters, digits and '_'"
    )]
    InvalidScriptVariable {
        /// The rejected value.
        value: String,
    },
    /// A capacity provider strategy is empty.
    #[error("invalid ECS stadium config: the capacity provider strategy has no item")]
    EmptyStrategy,
    /// A task profile has an empty task definition.
    #[error("invalid ECS stadium config: task profile {profile:?} has no task definition")]
    EmptyTaskDefinition {
        /// Name of the profile.
        profile: String,
    },
}

/// Settings of an [`EcsStadium`](crate::EcsStadium), built with [`EcsConfig::builder`].
#[derive(Debug, Clone)]
pub struct EcsConfig {
    pub(crate) cluster: String,
    pub(crate) container_name: String,
    pub(crate) subnets: Vec<String>,
    pub(crate) security_groups: Vec<String>,
    pub(crate) assign_public_ip: bool,
    pub(crate) capacity: CapacitySource,
    pub(crate) platform_version: Option<String>,
    pub(crate) propagate_tags: Option<PropagateTags>,
    pub(crate) enable_ecs_managed_tags: bool,
    pub(crate) started_by: String,
    pub(crate) script_delivery: ScriptDelivery,
    pub(crate) profiles: Vec<TaskProfile>,
}

impl EcsConfig {
    /// Starts a config for tasks in `cluster` (name or ARN) whose runner container is
    /// `container_name` in every profile's task definition.
    pub fn builder(
        cluster: impl Into<String>,
        container_name: impl Into<String>,
    ) -> EcsConfigBuilder {
        EcsConfigBuilder {
            config: EcsConfig {
                cluster: cluster.into(),
                container_name: container_name.into(),
                subnets: Vec::new(),
                security_groups: Vec::new(),
                assign_public_ip: false,
                capacity: CapacitySource::default(),
                platform_version: None,
                propagate_tags: None,
                enable_ecs_managed_tags: false,
                started_by: DEFAULT_STARTED_BY.to_owned(),
                script_delivery: ScriptDelivery::default(),
                profiles: Vec::new(),
            },
        }
    }

    /// Returns the cluster name or ARN.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// Returns the `startedBy` value of every task this stadium starts and lists.
    pub fn started_by(&self) -> &str {
        &self.started_by
    }

    /// Returns the task profiles in matching order.
    pub fn profiles(&self) -> &[TaskProfile] {
        &self.profiles
    }
}

/// Builder of an [`EcsConfig`], whose [`EcsConfigBuilder::build`] checks the settings.
#[derive(Debug, Clone)]
pub struct EcsConfigBuilder {
    config: EcsConfig,
}

impl EcsConfigBuilder {
    /// Sets the subnets of the tasks' `awsvpc` network interface (at least one).
    pub fn with_subnets<I, S>(mut self, subnets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.subnets = subnets.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the security groups of the tasks' network interface. Without any, ECS uses the
    /// VPC's default security group.
    pub fn with_security_groups<I, S>(mut self, security_groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.security_groups = security_groups.into_iter().map(Into::into).collect();
        self
    }

    /// Turns a public IP address for each task on or off (default off). Fargate tasks in a
    /// public subnet need one to reach GitHub; tasks in a private subnet reach it through a
    /// NAT gateway instead.
    pub fn with_public_ip(mut self, assign_public_ip: bool) -> Self {
        self.config.assign_public_ip = assign_public_ip;
        self
    }

    /// Sets the launch type, such as [`LaunchType::Fargate`], in place of the cluster's
    /// default capacity provider strategy.
    pub fn with_launch_type(mut self, launch_type: LaunchType) -> Self {
        self.config.capacity = CapacitySource::LaunchType(launch_type);
        self
    }

    /// Sets a capacity provider strategy in place of a launch type.
    pub fn with_capacity_provider_strategy(
        mut self,
        strategy: Vec<CapacityProviderStrategyItem>,
    ) -> Self {
        self.config.capacity = CapacitySource::Strategy(strategy);
        self
    }

    /// Sets the Fargate platform version, such as `1.4.0` (default: ECS's `LATEST`).
    pub fn with_platform_version(mut self, platform_version: impl Into<String>) -> Self {
        self.config.platform_version = Some(platform_version.into());
        self
    }

    /// Copies the tags of the task definition (or service) to each task.
    pub fn with_propagate_tags(mut self, propagate_tags: PropagateTags) -> Self {
        self.config.propagate_tags = Some(propagate_tags);
        self
    }

    /// Turns ECS managed tags (`aws:ecs:clusterName`, ...) on or off (default off).
    pub fn with_ecs_managed_tags(mut self, enable: bool) -> Self {
        self.config.enable_ecs_managed_tags = enable;
        self
    }

    /// Sets the `startedBy` value (default `myshoes`). Listing finds tasks by it, so
    /// deployments that share a cluster need different values.
    pub fn with_started_by(mut self, started_by: impl Into<String>) -> Self {
        self.config.started_by = started_by.into();
        self
    }

    /// Sets how the setup script reaches the container (default [`ScriptDelivery::Command`]).
    pub fn with_script_delivery(mut self, script_delivery: ScriptDelivery) -> Self {
        self.config.script_delivery = script_delivery;
        self
    }

    /// Appends a task profile. Profiles are matched in the order they were added.
    pub fn with_profile(mut self, profile: TaskProfile) -> Self {
        self.config.profiles.push(profile);
        self
    }

    /// Checks the settings and returns the config.
    ///
    /// # Errors
    /// Returns [`ConfigError`] for an empty cluster, container name, subnet list, profile
    /// list, capacity provider strategy or task definition, an invalid `startedBy` value or
    /// an invalid script variable name.
    pub fn build(self) -> Result<EcsConfig, ConfigError> {
        let config = self.config;
        if config.cluster.is_empty() {
            return Err(ConfigError::Empty { field: "cluster" });
        }
        if config.container_name.is_empty() {
            return Err(ConfigError::Empty {
                field: "container_name",
            });
        }
        if config.subnets.is_empty() || config.subnets.iter().any(String::is_empty) {
            return Err(ConfigError::Empty { field: "subnets" });
        }
        if config.profiles.is_empty() {
            return Err(ConfigError::Empty { field: "profiles" });
        }
        if let Some(profile) = config
            .profiles
            .iter()
            .find(|profile| profile.task_definition.is_empty())
        {
            return Err(ConfigError::EmptyTaskDefinition {
                profile: profile.name.clone(),
            });
        }
        if let CapacitySource::Strategy(strategy) = &config.capacity {
            if strategy.is_empty() {
                return Err(ConfigError::EmptyStrategy);
            }
        }
        if !is_valid_started_by(&config.started_by) {
            return Err(ConfigError::InvalidStartedBy {
                value: config.started_by,
            });
        }
        if let ScriptDelivery::Environment { variable } = &config.script_delivery {
            if !is_shell_variable_name(variable) {
                return Err(ConfigError::InvalidScriptVariable {
                    value: variable.clone(),
                });
            }
        }
        Ok(config)
    }
}

/// Returns whether ECS accepts `value` as `startedBy`.
fn is_valid_started_by(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_STARTED_BY_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_'))
}

fn is_shell_variable_name(value: &str) -> bool {
    let mut bytes = value.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> EcsConfigBuilder {
        EcsConfig::builder("runners", "runner")
            .with_subnets(["subnet-1"])
            .with_profile(TaskProfile::new("default", "runner-small"))
    }

    #[test]
    fn build_accepts_minimal_config() {
        let config = builder().build().expect("valid config");
        assert_eq!(config.started_by(), DEFAULT_STARTED_BY);
        assert_eq!(config.cluster(), "runners");
    }

    #[test]
    fn build_rejects_missing_subnets() {
        let error = EcsConfig::builder("runners", "runner")
            .with_profile(TaskProfile::new("default", "runner-small"))
            .build()
            .expect_err("no subnet");
        assert_eq!(error, ConfigError::Empty { field: "subnets" });
    }

    #[test]
    fn build_rejects_missing_profiles() {
        let error = EcsConfig::builder("runners", "runner")
            .with_subnets(["subnet-1"])
            .build()
            .expect_err("no profile");
        assert_eq!(error, ConfigError::Empty { field: "profiles" });
    }

    #[test]
    fn build_rejects_invalid_started_by() {
        for value in ["", "has space", "x".repeat(37).as_str(), "dot.dot"] {
            let error = builder()
                .with_started_by(value)
                .build()
                .expect_err("invalid startedBy");
            assert!(
                matches!(error, ConfigError::InvalidStartedBy { .. }),
                "{value:?}: {error:?}"
            );
        }
        let longest = "a/b_c-".repeat(6);
        assert_eq!(longest.len(), MAX_STARTED_BY_LEN);
        builder()
            .with_started_by(longest)
            .build()
            .expect("36 valid characters");
    }

    #[test]
    fn build_rejects_invalid_script_variable() {
        let error = builder()
            .with_script_delivery(ScriptDelivery::Environment {
                variable: "1BAD".to_owned(),
            })
            .build()
            .expect_err("invalid variable");
        assert!(matches!(error, ConfigError::InvalidScriptVariable { .. }));
    }

    #[test]
    fn build_rejects_empty_strategy() {
        let error = builder()
            .with_capacity_provider_strategy(Vec::new())
            .build()
            .expect_err("empty strategy");
        assert_eq!(error, ConfigError::EmptyStrategy);
    }
}
