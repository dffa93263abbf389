//! Building the shared parts of the functions at init: the deployment document, the
//! seeded memory store, the SQS Datastore, the ECS Stadium and the GitHub App client.

use std::path::PathBuf;
use std::sync::Arc;

use aws_sdk_ecs::types::LaunchType;
use myshoes::datastore::{Datastore, MemoryDatastore};
use myshoes::github::{ClientConfig, GitHubApp, GitHubAppClient};
use myshoes::setup_script::RunnerSource;
use myshoes_datastore_sqs::SqsDatastore;
use myshoes_stadium_ecs::{EcsConfig, EcsStadium, TaskProfile};

use crate::config::{
    self, ConfigError, Deployment, APP_ID_VAR, CLUSTER_VAR, CONFIG_VAR, CONTAINER_NAME_VAR,
    DEAD_LETTER_QUEUE_URL_VAR, LAUNCH_TYPE_VAR, PRIVATE_KEY_VAR, PUBLIC_IP_VAR, QUEUE_URL_VAR,
    RUNNER_DIR_VAR, RUNNER_NAME_PREFIX_VAR, SECURITY_GROUPS_VAR, STARTED_BY_VAR, SUBNETS_VAR,
    TASK_DEFINITION_VAR,
};
use crate::secrets::SettingReader;

/// Error that stops a function's init.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// A setting is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A target from the deployment document could not be stored in memory.
    #[error("failed to seed target {scope} into the in-memory store")]
    Seed {
        /// Scope of the target.
        scope: String,
        /// The Datastore error.
        #[source]
        source: myshoes::datastore::Error,
    },
    /// The dispatcher settings are invalid.
    #[error("invalid dispatcher settings")]
    Dispatcher(#[source] myshoes::dispatcher::ConfigError),
}

/// Name of the default runner container.
pub const DEFAULT_CONTAINER_NAME: &str = "runner";

/// Reads [`CONFIG_VAR`] (or its SSM or Secrets Manager form) and validates it.
pub async fn load_deployment(reader: &SettingReader<'_>) -> Result<Deployment, ConfigError> {
    let text = reader
        .required(
            CONFIG_VAR,
            "set it to the JSON document with targets and profiles (see the README)",
        )
        .await?;
    Deployment::parse(text.expose(), CONFIG_VAR)
}

/// Creates a memory store holding the deployment's targets.
pub async fn seeded_store(deployment: &Deployment) -> Result<Arc<MemoryDatastore>, InitError> {
    let store = Arc::new(MemoryDatastore::new());
    for target in &deployment.targets {
        store
            .create_target(target)
            .await
            .map_err(|source| InitError::Seed {
                scope: target.scope.to_string(),
                source,
            })?;
    }
    Ok(store)
}

/// Builds the SQS Datastore over `inner`. With `require_dead_letter_queue`, the
/// dead-letter queue URL must be set, so dropped jobs are kept there instead of deleted.
pub fn sqs_datastore(
    env: &dyn config::Environment,
    client: aws_sdk_sqs::Client,
    inner: Arc<dyn Datastore>,
    require_dead_letter_queue: bool,
) -> Result<SqsDatastore, ConfigError> {
    let queue_url = config::required(
        env,
        QUEUE_URL_VAR,
        "set it to the URL of the job queue, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/myshoes-jobs.fifo",
    )?;
    let mut builder = SqsDatastore::builder(client, queue_url).with_inner(inner);
    match env.var(DEAD_LETTER_QUEUE_URL_VAR) {
        Some(url) => builder = builder.with_dead_letter_queue_url(url),
        None if require_dead_letter_queue => {
            return Err(ConfigError::Missing {
                variable: DEAD_LETTER_QUEUE_URL_VAR.to_owned(),
                hint: "set it to the URL of the job queue's dead-letter queue, where jobs that get no runner are kept",
            })
        }
        None => {}
    }
    builder
        .build()
        .map_err(|error| ConfigError::invalid(QUEUE_URL_VAR, error.to_string()))
}

/// Builds the GitHub App client from [`APP_ID_VAR`] and [`PRIVATE_KEY_VAR`].
pub async fn github_client(
    reader: &SettingReader<'_>,
    client_config: ClientConfig,
) -> Result<GitHubAppClient, ConfigError> {
    let app_id = config::required(
        reader.env(),
        APP_ID_VAR,
        "set it to the numeric App ID from the GitHub App's settings page",
    )?;
    let app_id: u64 = app_id.trim().parse().map_err(|_| {
        ConfigError::invalid(APP_ID_VAR, format!("{app_id:?} is not a numeric App ID"))
    })?;
    let key = reader
        .required(
            PRIVATE_KEY_VAR,
            "set it to the base64 of the PEM private key GitHub generated for the App",
        )
        .await?;
    // The key's error message describes the problem without the key.
    let app = GitHubApp::new(app_id, &key)
        .map_err(|error| ConfigError::invalid(PRIVATE_KEY_VAR, error.to_string()))?;
    let mut client_config = client_config;
    client_config.tls_roots = config::tls_roots(reader.env())?;
    GitHubAppClient::new(app, client_config).map_err(|error| match error {
        // Building the HTTP client fails only on its TLS setup.
        myshoes::github::Error::HttpClient { .. } => {
            ConfigError::invalid(config::TLS_ROOTS_VAR, error.to_string())
        }
        _ => ConfigError::invalid(APP_ID_VAR, error.to_string()),
    })
}

/// Builds the ECS Stadium: the document's task profiles first, then a default profile
/// with [`TASK_DEFINITION_VAR`] when it is set.
pub fn ecs_stadium(
    env: &dyn config::Environment,
    client: aws_sdk_ecs::Client,
    deployment: &Deployment,
) -> Result<EcsStadium, ConfigError> {
    let cluster = config::required(
        env,
        CLUSTER_VAR,
        "set it to the name or ARN of the ECS cluster that runs the runner tasks",
    )?;
    let container = env
        .var(CONTAINER_NAME_VAR)
        .unwrap_or_else(|| DEFAULT_CONTAINER_NAME.to_owned());
    let mut builder = EcsConfig::builder(cluster, container)
        .with_subnets(config::list(env, SUBNETS_VAR))
        .with_security_groups(config::list(env, SECURITY_GROUPS_VAR))
        .with_public_ip(config::boolean(env, PUBLIC_IP_VAR, false)?);
    let launch_type = env
        .var(LAUNCH_TYPE_VAR)
        .unwrap_or_else(|| "FARGATE".to_owned());
    match launch_type.to_ascii_uppercase().as_str() {
        "FARGATE" => builder = builder.with_launch_type(LaunchType::Fargate),
        "EC2" => builder = builder.with_launch_type(LaunchType::Ec2),
        "CLUSTER_DEFAULT" => {}
        _ => {
            return Err(ConfigError::invalid(
                LAUNCH_TYPE_VAR,
                format!("{launch_type:?} is not FARGATE, EC2 or CLUSTER_DEFAULT"),
            ))
        }
    }
    if let Some(started_by) = env.var(STARTED_BY_VAR) {
        builder = builder.with_started_by(started_by);
    }
    for entry in &deployment.task_profiles {
        let mut profile = TaskProfile::new(&entry.name, &entry.task_definition);
        if let Some(resource_type) = entry.resource_type {
            profile = profile.for_resource_type(resource_type);
        }
        if !entry.labels.is_empty() {
            profile = profile.for_labels(entry.labels.iter().cloned());
        }
        if let Some(cpu) = entry.cpu {
            profile = profile.with_cpu(cpu);
        }
        if let Some(memory) = entry.memory_mib {
            profile = profile.with_memory_mib(memory);
        }
        builder = builder.with_profile(profile);
    }
    match env.var(TASK_DEFINITION_VAR) {
        Some(task_definition) => {
            builder = builder.with_profile(TaskProfile::new("default", task_definition));
        }
        None if deployment.task_profiles.is_empty() => {
            return Err(ConfigError::Missing {
                variable: TASK_DEFINITION_VAR.to_owned(),
                hint:
                    "set it to the runner task definition, or list task_profiles in MYSHOES_CONFIG",
            })
        }
        None => {}
    }
    let config = builder.build().map_err(|error| {
        ConfigError::invalid(
            CLUSTER_VAR,
            format!("invalid ECS settings ({SUBNETS_VAR}, {SECURITY_GROUPS_VAR}, {STARTED_BY_VAR}, task profiles): {error}"),
        )
    })?;
    Ok(EcsStadium::new(client, config))
}

/// Returns the runner source: the pre-installed runner at [`RUNNER_DIR_VAR`], or a
/// download of the pinned runner version.
pub fn runner_source(env: &dyn config::Environment) -> Result<RunnerSource, ConfigError> {
    match env.var(RUNNER_DIR_VAR) {
        None => Ok(RunnerSource::default()),
        Some(dir) => {
            let path = PathBuf::from(&dir);
            if !path.is_absolute() {
                return Err(ConfigError::invalid(
                    RUNNER_DIR_VAR,
                    format!("{dir:?} is not an absolute path; the actions-runner image has its runner in /home/runner"),
                ));
            }
            Ok(RunnerSource::PreInstalled { path, copy: false })
        }
    }
}

/// Returns the runner name prefix, `myshoes` unless [`RUNNER_NAME_PREFIX_VAR`] is set.
pub fn runner_name_prefix(env: &dyn config::Environment) -> String {
    env.var(RUNNER_NAME_PREFIX_VAR)
        .unwrap_or_else(|| "myshoes".to_owned())
}
