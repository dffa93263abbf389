//! [`EcsStadium`]: one ECS task per runner.

use std::fmt;

use async_trait::async_trait;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, DesiredStatus, NetworkConfiguration, Task, TaskField,
};
use aws_sdk_ecs::Client;
use myshoes::stadium::{AddInstanceRequest, Error, Instance, ListedInstance, Result, Stadium};
use sha2::{Digest, Sha256};
use tracing::{debug, warn};

use crate::config::{CapacitySource, EcsConfig};
use crate::error::{map_failure, map_sdk_error, may_mean_unknown_task, Call, EcsError, BACKEND};
use crate::overrides::{Overrides, MAX_OVERRIDES_LEN};
use crate::profile;
use crate::tags::{listed_instance, request_tags};

/// Maximum number of tasks in one DescribeTasks call.
const DESCRIBE_TASKS_MAX: usize = 100;

/// Reason StopTask records on every task this stadium stops.
const STOP_REASON: &str = "myshoes deleted the runner instance";

/// IAM actions per method, for access-denied messages.
const RUN_PERMISSIONS: &str = "ecs:RunTask, ecs:TagResource and iam:PassRole on the task roles";
const STOP_PERMISSIONS: &str = "ecs:StopTask and ecs:DescribeTasks";
const LIST_PERMISSIONS: &str = "ecs:ListTasks and ecs:DescribeTasks";

/// A [`Stadium`] that runs each runner as one Amazon ECS task.
///
/// See the [crate documentation](crate) for the calls, permissions and limits. Clones share
/// the SDK client, whose connection pool is shared too.
#[derive(Debug, Clone)]
pub struct EcsStadium {
    client: Client,
    config: EcsConfig,
}

impl EcsStadium {
    /// Creates a stadium that starts tasks with `client` and the settings in `config`. The caller
    /// builds the client, with its region, credentials and retry settings.
    pub fn new(client: Client, config: EcsConfig) -> Self {
        Self { client, config }
    }

    /// Returns the config.
    pub fn config(&self) -> &EcsConfig {
        &self.config
    }

    fn call(
        &self,
        operation: &'static str,
        action: &'static str,
        permissions: &'static str,
    ) -> Call<'_> {
        Call {
            operation,
            action,
            cluster: &self.config.cluster,
            permissions,
        }
    }

    fn network_configuration(&self) -> Result<NetworkConfiguration> {
        let assign_public_ip = if self.config.assign_public_ip {
            AssignPublicIp::Enabled
        } else {
            AssignPublicIp::Disabled
        };
        let awsvpc = AwsVpcConfiguration::builder()
            .set_subnets(Some(self.config.subnets.clone()))
            .set_security_groups(
                (!self.config.security_groups.is_empty())
                    .then(|| self.config.security_groups.clone()),
            )
            .assign_public_ip(assign_public_ip)
            .build()
            .map_err(|error| Error::InvalidRequest {
                reason: format!("invalid awsvpc configuration: {error}"),
            })?;
        Ok(NetworkConfiguration::builder()
            .awsvpc_configuration(awsvpc)
            .build())
    }

    /// Describes `task_arns` with their tags, in calls of at most 100 tasks.
    async fn describe_tasks(
        &self,
        task_arns: &[String],
        operation: &'static str,
    ) -> Result<Vec<Task>> {
        let mut tasks = Vec::with_capacity(task_arns.len());
        for chunk in task_arns.chunks(DESCRIBE_TASKS_MAX) {
            let output = self
                .client
                .describe_tasks()
                .cluster(&self.config.cluster)
                .set_tasks(Some(chunk.to_vec()))
                .include(TaskField::Tags)
                .send()
                .await
                .map_err(|error| {
                    map_sdk_error(
                        error,
                        self.call(operation, "DescribeTasks", LIST_PERMISSIONS),
                    )
                })?;
            tasks.extend(output.tasks.unwrap_or_default());
        }
        Ok(tasks)
    }

    /// Returns whether DescribeTasks shows `cloud_id` as unknown or stopped.
    async fn is_gone(&self, cloud_id: &str) -> Result<bool> {
        let tasks = self
            .describe_tasks(&[cloud_id.to_owned()], "delete_instance")
            .await?;
        Ok(tasks
            .iter()
            .filter(|task| {
                task.task_arn()
                    .is_some_and(|arn| arn == cloud_id || arn.ends_with(&format!("/{cloud_id}")))
            })
            .all(|task| {
                task.last_status() == Some("STOPPED") || task.desired_status() == Some("STOPPED")
            }))
    }
}

impl fmt::Display for EcsStadium {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EcsStadium({})", self.config.cluster)
    }
}

/// Returns the RunTask `clientToken` of a request: the SHA-256 of the job id and the
/// runner name, as 64 hex digits.
///
/// The job id is derived from the workflow job id and its run attempt, and the runner name
/// ends in `-<workflow job id>-<run attempt>`, so every launch of one job attempt gets the
/// same token and another attempt a different one. Hashing keeps the token within
/// RunTask's limit of 64 ASCII characters whatever the runner name's length.
///
/// NOTE: the ECS API reference does not say whether a reused token replays a response that
/// started no task. If it does, retries of a capacity failure within 24 hours fail the same
/// way until the dispatcher gives up.
pub fn client_token(request: &AddInstanceRequest) -> String {
    let mut hasher = Sha256::new();
    hasher.update(request.job_id.to_string().as_bytes());
    hasher.update(b"\n");
    hasher.update(request.runner_name.as_bytes());
    hex::encode(hasher.finalize())
}

/// Returns the private IP address ECS reported for the task's network interface, if any.
/// RunTask usually returns before the interface has one.
fn private_address(task: &Task) -> Option<String> {
    task.attachments()
        .iter()
        .flat_map(|attachment| attachment.details())
        .find(|detail| detail.name() == Some("privateIPv4Address"))
        .and_then(|detail| detail.value())
        .map(str::to_owned)
}

#[async_trait]
impl Stadium for EcsStadium {
    /// Starts the runner's task with one RunTask call.
    ///
    /// No DescribeTasks follows, so the task may still be provisioning when this returns.
    #[tracing::instrument(skip_all, fields(runner_name = %request.runner_name, job_id = %request.job_id))]
    async fn add_instance(&self, request: &AddInstanceRequest) -> Result<Instance> {
        let profile = profile::select(
            &self.config.profiles,
            request.resource_type,
            &request.labels,
        )
        .map_err(|reason| Error::InvalidRequest { reason })?;
        let overrides = Overrides::new(
            &self.config.container_name,
            &self.config.script_delivery,
            &request.setup_script,
            profile,
        );
        let overrides_len = overrides.json_len();
        if overrides_len > MAX_OVERRIDES_LEN {
            return Err(Error::InvalidRequest {
                reason: format!(
                    "the RunTask overrides for runner {} are {overrides_len} characters, {} over \
                     ECS's limit of {MAX_OVERRIDES_LEN}; shorten the setup script (fewer job \
                     hooks or labels) or shorten the container name",
                    request.runner_name,
                    overrides_len - MAX_OVERRIDES_LEN
                ),
            });
        }
        debug!(
            profile = profile.name(),
            task_definition = profile.task_definition(),
            overrides_len,
            "running ECS task"
        );

        let mut run_task = self
            .client
            .run_task()
            .cluster(&self.config.cluster)
            .task_definition(&profile.task_definition)
            .count(1)
            .started_by(&self.config.started_by)
            .client_token(client_token(request))
            .network_configuration(self.network_configuration()?)
            .overrides(overrides.into_task_override())
            .set_tags(Some(request_tags(request)))
            .enable_ecs_managed_tags(self.config.enable_ecs_managed_tags)
            .set_platform_version(self.config.platform_version.clone())
            .set_propagate_tags(self.config.propagate_tags.clone());
        run_task = match &self.config.capacity {
            CapacitySource::ClusterDefault => run_task,
            CapacitySource::LaunchType(launch_type) => run_task.launch_type(launch_type.clone()),
            CapacitySource::Strategy(strategy) => {
                run_task.set_capacity_provider_strategy(Some(strategy.clone()))
            }
        };
        let output = run_task.send().await.map_err(|error| {
            map_sdk_error(error, self.call("add_instance", "RunTask", RUN_PERMISSIONS))
        })?;

        let failures = output.failures();
        let Some(task) = output.tasks().first() else {
            return Err(match failures.first() {
                Some(failure) => map_failure(failure, &self.config.cluster, &request.runner_name),
                None => Error::Backend {
                    backend: BACKEND,
                    operation: "add_instance",
                    retryable: true,
                    source: Box::new(EcsError::NoTask {
                        cluster: self.config.cluster.clone(),
                    }),
                },
            });
        };
        for failure in failures {
            warn!(
                reason = failure.reason(),
                arn = failure.arn(),
                detail = failure.detail(),
                "ECS RunTask started the task but also reported a failure"
            );
        }
        let Some(task_arn) = task.task_arn() else {
            return Err(Error::Backend {
                backend: BACKEND,
                operation: "add_instance",
                retryable: true,
                source: Box::new(EcsError::NoTask {
                    cluster: self.config.cluster.clone(),
                }),
            });
        };
        debug!(task_arn, "ECS task started");
        Ok(Instance {
            cloud_id: task_arn.to_owned(),
            stadium: BACKEND.to_owned(),
            address: private_address(task),
            resource_type: request.resource_type,
        })
    }

    /// Stops the task with StopTask. An unknown or stopped task counts as deleted. When
    /// StopTask fails with an invalid-request or server error, a DescribeTasks call decides
    /// whether the task is gone.
    #[tracing::instrument(skip_all, fields(cloud_id = %cloud_id))]
    async fn delete_instance(&self, cloud_id: &str, _labels: &[String]) -> Result<()> {
        let call = self.call("delete_instance", "StopTask", STOP_PERMISSIONS);
        let result = self
            .client
            .stop_task()
            .cluster(&self.config.cluster)
            .task(cloud_id)
            .reason(STOP_REASON)
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        if may_mean_unknown_task(&error) && self.is_gone(cloud_id).await? {
            debug!("task is unknown or already stopped");
            return Ok(());
        }
        Err(map_sdk_error(error, call))
    }

    /// Lists tasks with this stadium's `startedBy` whose desired status is RUNNING (which
    /// includes tasks still provisioning), with their tags.
    #[tracing::instrument(skip_all, fields(started_by = %self.config.started_by))]
    async fn list_instances(&self) -> Result<Vec<ListedInstance>> {
        let mut task_arns = Vec::new();
        let mut pages = self
            .client
            .list_tasks()
            .cluster(&self.config.cluster)
            .started_by(&self.config.started_by)
            .desired_status(DesiredStatus::Running)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| {
                map_sdk_error(
                    error,
                    self.call("list_instances", "ListTasks", LIST_PERMISSIONS),
                )
            })?;
            task_arns.extend(page.task_arns.unwrap_or_default());
        }
        if task_arns.is_empty() {
            return Ok(Vec::new());
        }
        let tasks = self.describe_tasks(&task_arns, "list_instances").await?;
        let listed: Vec<ListedInstance> = tasks
            .iter()
            .filter(|task| task.desired_status() != Some("STOPPED"))
            .filter_map(listed_instance)
            .collect();
        debug!(count = listed.len(), "listed ECS tasks");
        Ok(listed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use myshoes::stadium::conformance::harmless_request;

    #[test]
    fn client_token_is_stable_per_attempt() {
        let request = harmless_request("myshoes-38000000001-1");
        let token = client_token(&request);
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(token, client_token(&request.clone()));
        let mut next_attempt = request.clone();
        next_attempt.runner_name = "myshoes-38000000001-2".to_owned();
        assert_ne!(token, client_token(&next_attempt));
    }
}
