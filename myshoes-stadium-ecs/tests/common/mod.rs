//! Set-up shared by the tests that run against moto on loopback.
//!
//! The tests read `AWS_ENDPOINT_URL` and skip, with a message on standard error, when it is
//! not set. `.ci/run` starts moto and sets it.

#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};

use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use aws_sdk_ecs::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_ecs::config::{ConfigBag, Credentials, Intercept, Region, RuntimeComponents};
use aws_sdk_ecs::error::BoxError;
use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, NetworkMode, TaskField};
use aws_sdk_ecs::Client;
use myshoes_stadium_ecs::{EcsConfig, EcsConfigBuilder};

/// Environment variable that contains moto's loopback endpoint.
pub const ENDPOINT_VARIABLE: &str = "AWS_ENDPOINT_URL";

/// Name of the runner container in every test task definition.
pub const CONTAINER: &str = "runner";

/// Returns moto's endpoint, or `None` after printing why the test is skipped.
pub fn endpoint() -> Option<String> {
    match std::env::var(ENDPOINT_VARIABLE) {
        Ok(endpoint) if !endpoint.is_empty() => Some(endpoint),
        _ => {
            eprintln!(
                "skipping: {ENDPOINT_VARIABLE} is not set; run the tests through .ci/run, which \
                 starts moto on loopback and sets it"
            );
            None
        }
    }
}

/// Names of the ECS actions a client sent, in order.
#[derive(Debug, Clone, Default)]
pub struct CallLog(Arc<Mutex<Vec<String>>>);

impl CallLog {
    /// Returns the actions sent so far.
    pub fn actions(&self) -> Vec<String> {
        self.0.lock().expect("call log lock").clone()
    }

    /// Returns how many times `action` was sent.
    pub fn count(&self, action: &str) -> usize {
        self.actions().iter().filter(|sent| *sent == action).count()
    }

    /// Forgets the actions sent so far.
    pub fn clear(&self) {
        self.0.lock().expect("call log lock").clear();
    }
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // ECS speaks AWS JSON 1.1: the action is the suffix of the X-Amz-Target header.
        if let Some(target) = context.request().headers().get("x-amz-target") {
            let action = target.rsplit('.').next().unwrap_or(target).to_owned();
            self.0.lock().expect("call log lock").push(action);
        }
        Ok(())
    }
}

/// A cluster of its own on moto, with task definitions, and a client that logs its calls.
#[derive(Debug)]
pub struct MotoCluster {
    pub client: Client,
    pub calls: CallLog,
    pub cluster: String,
    pub subnet: String,
}

impl MotoCluster {
    /// Creates a uniquely named cluster; `None` when the endpoint is not set.
    pub async fn create() -> Option<Self> {
        let endpoint = endpoint()?;
        set_manual_task_transitions(&endpoint).await;
        let subnet = default_subnet(&endpoint).await;
        let calls = CallLog::default();
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "static"))
            .retry_config(RetryConfig::disabled())
            .load()
            .await;
        let config = aws_sdk_ecs::config::Builder::from(&shared)
            .interceptor(calls.clone())
            .build();
        let client = Client::from_conf(config);
        let cluster = format!("myshoes-test-{}", uuid::Uuid::new_v4().simple());
        client
            .create_cluster()
            .cluster_name(&cluster)
            .send()
            .await
            .expect("CreateCluster on moto");
        Some(Self {
            client,
            calls,
            cluster,
            subnet,
        })
    }

    /// Registers a Fargate task definition `<cluster>-<suffix>` with the runner container
    /// and returns its family.
    pub async fn register_task_definition(&self, suffix: &str) -> String {
        let family = format!("{}-{suffix}", self.cluster);
        // moto needs a container-level memory value; real Fargate does not.
        let container = ContainerDefinition::builder()
            .name(CONTAINER)
            .image("ghcr.io/actions/actions-runner:latest")
            .memory(512)
            .essential(true)
            .build();
        self.client
            .register_task_definition()
            .family(&family)
            .requires_compatibilities(Compatibility::Fargate)
            .network_mode(NetworkMode::Awsvpc)
            .cpu("256")
            .memory("512")
            .container_definitions(container)
            .send()
            .await
            .expect("RegisterTaskDefinition on moto");
        family
    }

    /// Starts a config for this cluster on Fargate, with the default subnet and a security
    /// group (moto needs one on every awsvpc RunTask).
    pub fn config(&self) -> EcsConfigBuilder {
        EcsConfig::builder(&self.cluster, CONTAINER)
            .with_subnets([self.subnet.clone()])
            .with_security_groups(["sg-myshoes-test"])
            .with_launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
    }

    /// Describes one task with its tags.
    pub async fn describe(&self, task_arn: &str) -> aws_sdk_ecs::types::Task {
        let output = self
            .client
            .describe_tasks()
            .cluster(&self.cluster)
            .tasks(task_arn)
            .include(TaskField::Tags)
            .send()
            .await
            .expect("DescribeTasks on moto");
        output
            .tasks()
            .first()
            .cloned()
            .unwrap_or_else(|| panic!("DescribeTasks must return task {task_arn}"))
    }
}

/// Keeps moto's ECS tasks RUNNING until StopTask. By default moto advances a task by one
/// state on each DescribeTasks call. The setting is global and idempotent.
pub async fn set_manual_task_transitions(endpoint: &str) {
    let response = reqwest::Client::new()
        .post(format!("{endpoint}/moto-api/state-manager/set-transition"))
        .header("Content-Type", "application/json")
        .body(r#"{"model_name":"ecs::task","transition":{"progression":"manual","times":1000000}}"#)
        .send()
        .await
        .expect("moto state manager request");
    assert!(
        response.status().is_success(),
        "moto state manager returned {}",
        response.status()
    );
}

/// Returns the id of one of the default VPC's subnets in moto's EC2, found with the EC2
/// Query API's DescribeSubnets. moto checks the credential scope's service name only.
pub async fn default_subnet(endpoint: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, \
             SignedHeaders=host, Signature=00",
        )
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("Action=DescribeSubnets&Version=2016-11-15&Filter.1.Name=default-for-az&Filter.1.Value.1=true")
        .send()
        .await
        .expect("EC2 DescribeSubnets on moto");
    let body = response.text().await.expect("DescribeSubnets body");
    let start = body
        .find("<subnetId>")
        .unwrap_or_else(|| panic!("no default subnet in DescribeSubnets output: {body}"))
        + "<subnetId>".len();
    let end = start + body[start..].find('<').expect("closing subnetId tag");
    body[start..end].to_owned()
}
