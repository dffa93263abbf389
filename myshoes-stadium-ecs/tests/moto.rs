//! EcsStadium against moto's ECS on loopback: RunTask, StopTask and listing.

mod common;

use common::MotoCluster;
use myshoes::model::ResourceType;
use myshoes::secret::Secret;
use myshoes::setup_script::{RunnerCredential, SetupScriptParams};
use myshoes::stadium::conformance::{harmless_request, unique_runner_name};
use myshoes::stadium::{AddInstanceRequest, Error, Stadium};
use myshoes_stadium_ecs::{
    EcsStadium, ScriptDelivery, TaskProfile, MAX_OVERRIDES_LEN, TAG_JOB_ID, TAG_LABELS,
    TAG_REPOSITORY, TAG_RUNNER_NAME, TAG_TARGET_ID,
};

fn tag_value<'a>(task: &'a aws_sdk_ecs::types::Task, key: &str) -> Option<&'a str> {
    task.tags()
        .iter()
        .find(|tag| tag.key() == Some(key))
        .and_then(|tag| tag.value())
}

fn request_with(resource_type: ResourceType, labels: &[&str]) -> AddInstanceRequest {
    let mut request = harmless_request(&unique_runner_name());
    request.resource_type = resource_type;
    request.labels = labels.iter().map(|label| (*label).to_owned()).collect();
    request
}

#[tokio::test]
async fn run_task_carries_overrides_tags_started_by() {
    let Some(moto) = MotoCluster::create().await else {
        return;
    };
    let family = moto.register_task_definition("small").await;
    let config = moto
        .config()
        .with_started_by("myshoes-test")
        .with_profile(TaskProfile::new("default", &family))
        .build()
        .expect("valid config");
    let stadium = EcsStadium::new(moto.client.clone(), config);
    let request = request_with(ResourceType::Small, &["linux", "x64"]);

    let instance = stadium.add_instance(&request).await.expect("add_instance");
    let task = moto.describe(&instance.cloud_id).await;

    assert_eq!(task.task_arn(), Some(instance.cloud_id.as_str()));
    assert_eq!(instance.stadium, "ecs");
    assert_eq!(instance.resource_type, ResourceType::Small);
    assert_eq!(task.last_status(), Some("RUNNING"));
    assert_eq!(task.started_by(), Some("myshoes-test"));
    assert!(
        task.task_definition_arn()
            .is_some_and(|arn| arn.contains(&format!("task-definition/{family}:"))),
        "{:?}",
        task.task_definition_arn()
    );
    let overrides = task.overrides().expect("overrides are echoed");
    let container = &overrides.container_overrides()[0];
    assert_eq!(container.name(), Some(common::CONTAINER));
    assert_eq!(
        container.command(),
        ["bash", "-c", request.setup_script.wrapper()]
    );
    assert_eq!(
        tag_value(&task, TAG_RUNNER_NAME),
        Some(request.runner_name.as_str())
    );
    assert_eq!(
        tag_value(&task, TAG_JOB_ID),
        Some(request.job_id.to_string().as_str())
    );
    assert_eq!(
        tag_value(&task, TAG_REPOSITORY),
        Some(request.repository.as_str())
    );
    assert_eq!(
        tag_value(&task, TAG_TARGET_ID),
        Some(request.target_id.to_string().as_str())
    );
    assert_eq!(tag_value(&task, TAG_LABELS), Some("linux x64"));
}

#[tokio::test]
async fn environment_delivery_sets_variable() {
    let Some(moto) = MotoCluster::create().await else {
        return;
    };
    let family = moto.register_task_definition("env").await;
    let config = moto
        .config()
        .with_script_delivery(ScriptDelivery::Environment {
            variable: "MYSHOES_SETUP_SCRIPT".to_owned(),
        })
        .with_profile(TaskProfile::new("default", &family))
        .build()
        .expect("valid config");
    let stadium = EcsStadium::new(moto.client.clone(), config);
    let request = request_with(ResourceType::Small, &["linux"]);

    let instance = stadium.add_instance(&request).await.expect("add_instance");
    let task = moto.describe(&instance.cloud_id).await;

    let container = &task.overrides().expect("overrides").container_overrides()[0];
    assert!(container.command().is_empty(), "{:?}", container.command());
    let environment = container.environment();
    assert_eq!(environment.len(), 1);
    assert_eq!(environment[0].name(), Some("MYSHOES_SETUP_SCRIPT"));
    assert_eq!(environment[0].value(), Some(request.setup_script.wrapper()));
}

#[tokio::test]
async fn delete_stops_task_and_repeats() {
    let Some(moto) = MotoCluster::create().await else {
        return;
    };
    let family = moto.register_task_definition("small").await;
    let config = moto
        .config()
        .with_profile(TaskProfile::new("default", &family))
        .build()
        .expect("valid config");
    let stadium = EcsStadium::new(moto.client.clone(), config);
    let request = request_with(ResourceType::Small, &["linux"]);
    let instance = stadium.add_instance(&request).await.expect("add_instance");

    stadium
        .delete_instance(&instance.cloud_id, &request.labels)
        .await
        .expect("delete_instance");
    let task = moto.describe(&instance.cloud_id).await;
    assert_eq!(task.last_status(), Some("STOPPED"));
    assert_eq!(task.desired_status(), Some("STOPPED"));
    assert_eq!(
        task.stopped_reason(),
        Some("myshoes deleted the runner instance")
    );

    stadium
        .delete_instance(&instance.cloud_id, &request.labels)
        .await
        .expect("deleting a stopped task succeeds");
    let unknown = instance.cloud_id.replace(
        instance.cloud_id.rsplit('/').next().expect("task id"),
        "00000000000000000000000000000000",
    );
    stadium
        .delete_instance(&unknown, &[])
        .await
        .expect("deleting an unknown task succeeds");
}

#[tokio::test]
async fn listing_finds_running_not_stopped() {
    let Some(moto) = MotoCluster::create().await else {
        return;
    };
    let family = moto.register_task_definition("small").await;
    let config = moto
        .config()
        .with_started_by("myshoes-list")
        .with_profile(TaskProfile::new("default", &family))
        .build()
        .expect("valid config");
    let stadium = EcsStadium::new(moto.client.clone(), config);
    let running_request = request_with(ResourceType::Small, &["linux", "x64"]);
    let stopped_request = request_with(ResourceType::Small, &["linux"]);
    let running = stadium
        .add_instance(&running_request)
        .await
        .expect("add_instance");
    let stopped = stadium
        .add_instance(&stopped_request)
        .await
        .expect("add_instance");
    stadium
        .delete_instance(&stopped.cloud_id, &stopped_request.labels)
        .await
        .expect("delete_instance");
    let other_config = moto
        .config()
        .with_started_by("someone-else")
        .with_profile(TaskProfile::new("default", &family))
        .build()
        .expect("valid config");
    let other = EcsStadium::new(moto.client.clone(), other_config)
        .add_instance(&request_with(ResourceType::Small, &["linux"]))
        .await
        .expect("add_instance with another startedBy");

    let listed = stadium.list_instances().await.expect("list_instances");

    assert_eq!(listed.len(), 1, "{listed:?}");
    let found = &listed[0];
    assert_eq!(found.cloud_id, running.cloud_id);
    assert_eq!(
        found.runner_name.as_deref(),
        Some(running_request.runner_name.as_str())
    );
    assert_eq!(found.job_id, Some(running_request.job_id));
    assert_eq!(found.labels, running_request.labels);
    assert!(listed
        .iter()
        .all(|listed| listed.cloud_id != stopped.cloud_id));
    assert!(listed
        .iter()
        .all(|listed| listed.cloud_id != other.cloud_id));
}

#[tokio::test]
async fn profiles_choose_task_definition_and_overrides() {
    let Some(moto) = MotoCluster::create().await else {
        return;
    };
    let small = moto.register_task_definition("small").await;
    let large = moto.register_task_definition("large").await;
    let gpu = moto.register_task_definition("gpu").await;
    let config = moto
        .config()
        .with_profile(
            TaskProfile::new("gpu", &gpu)
                .for_labels(["gpu"])
                .with_cpu(4096)
                .with_memory_mib(16384),
        )
        .with_profile(
            TaskProfile::new("large", &large)
                .for_resource_type(ResourceType::Large)
                .with_cpu(2048)
                .with_memory_mib(4096),
        )
        .with_profile(TaskProfile::new("small", &small).for_resource_type(ResourceType::Small))
        .build()
        .expect("valid config");
    let stadium = EcsStadium::new(moto.client.clone(), config);
    let cases = [
        (
            ResourceType::Large,
            &["linux", "gpu"][..],
            &gpu,
            Some("4096"),
            Some("16384"),
        ),
        (
            ResourceType::Large,
            &["linux"][..],
            &large,
            Some("2048"),
            Some("4096"),
        ),
        (ResourceType::Small, &["linux"][..], &small, None, None),
    ];

    for (resource_type, labels, family, cpu, memory) in cases {
        let instance = stadium
            .add_instance(&request_with(resource_type, labels))
            .await
            .expect("add_instance");
        let task = moto.describe(&instance.cloud_id).await;
        let arn = task.task_definition_arn().unwrap_or_default();
        assert!(
            arn.contains(&format!("task-definition/{family}:")),
            "{resource_type} {labels:?}: {arn}"
        );
        let overrides = task.overrides().expect("overrides");
        assert_eq!(overrides.cpu(), cpu, "{resource_type} {labels:?}");
        assert_eq!(overrides.memory(), memory, "{resource_type} {labels:?}");
    }

    let error = stadium
        .add_instance(&request_with(ResourceType::XLarge, &["linux"]))
        .await
        .expect_err("no profile serves xlarge");
    assert!(!error.is_retryable(), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("resource type xlarge"), "{message}");
    assert!(
        message.contains("large (resource type large, labels [])"),
        "{message}"
    );
}

#[tokio::test]
async fn launch_sends_one_run_task_only() {
    let Some(moto) = MotoCluster::create().await else {
        return;
    };
    let family = moto.register_task_definition("small").await;
    let config = moto
        .config()
        .with_profile(TaskProfile::new("default", &family))
        .build()
        .expect("valid config");
    let stadium = EcsStadium::new(moto.client.clone(), config);
    moto.calls.clear();

    for _ in 0..3 {
        stadium
            .add_instance(&request_with(ResourceType::Small, &["linux"]))
            .await
            .expect("add_instance");
    }

    assert_eq!(moto.calls.count("RunTask"), 3, "{:?}", moto.calls.actions());
    assert_eq!(
        moto.calls.count("DescribeTasks"),
        0,
        "{:?}",
        moto.calls.actions()
    );
    assert_eq!(moto.calls.actions().len(), 3, "{:?}", moto.calls.actions());
}

#[tokio::test]
async fn oversized_overrides_fail_before_call() {
    let Some(moto) = MotoCluster::create().await else {
        return;
    };
    let family = moto.register_task_definition("small").await;
    let config = moto
        .config()
        .with_profile(TaskProfile::new("default", &family))
        .build()
        .expect("valid config");
    let stadium = EcsStadium::new(moto.client.clone(), config);
    let mut request = request_with(ResourceType::Small, &["linux"]);
    let mut params = SetupScriptParams::new(
        "https://github.com/octo-org",
        RunnerCredential::RegistrationToken(Secret::new("oversize-token")),
        request.runner_name.clone(),
    );
    // Random hex compresses poorly, so the wrapper stays above the limit.
    let hook: String = (0..600)
        .map(|_| format!("echo {}\n", uuid::Uuid::new_v4().simple()))
        .collect();
    params.job_started_hook = Some(hook);
    request.setup_script = params.build().expect("valid parameters");
    assert!(request.setup_script.wrapper_len() > MAX_OVERRIDES_LEN);
    moto.calls.clear();

    let error = stadium
        .add_instance(&request)
        .await
        .expect_err("overrides over the limit");

    assert!(matches!(error, Error::InvalidRequest { .. }), "{error:?}");
    assert!(!error.is_retryable());
    let message = error.to_string();
    assert!(message.contains("over ECS's limit of 8192"), "{message}");
    assert!(!message.contains("oversize-token"), "{message}");
    assert!(
        moto.calls.actions().is_empty(),
        "{:?}",
        moto.calls.actions()
    );
}

#[tokio::test]
async fn missing_cluster_is_permanent() {
    let Some(moto) = MotoCluster::create().await else {
        return;
    };
    let family = moto.register_task_definition("small").await;
    let missing = format!("{}-missing", moto.cluster);
    let config = myshoes_stadium_ecs::EcsConfig::builder(&missing, common::CONTAINER)
        .with_subnets([moto.subnet.clone()])
        .with_security_groups(["sg-myshoes-test"])
        .with_launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
        .with_profile(TaskProfile::new("default", &family))
        .build()
        .expect("valid config");
    let stadium = EcsStadium::new(moto.client.clone(), config);

    let error = stadium
        .add_instance(&request_with(ResourceType::Small, &["linux"]))
        .await
        .expect_err("the cluster does not exist");

    assert!(matches!(error, Error::InvalidRequest { .. }), "{error:?}");
    assert!(!error.is_retryable());
    assert!(error.to_string().contains(&missing), "{error}");
}

#[tokio::test]
async fn missing_task_definition_is_permanent() {
    let Some(moto) = MotoCluster::create().await else {
        return;
    };
    let config = moto
        .config()
        .with_profile(TaskProfile::new(
            "default",
            format!("{}-never-registered", moto.cluster),
        ))
        .build()
        .expect("valid config");
    let stadium = EcsStadium::new(moto.client.clone(), config);

    let error = stadium
        .add_instance(&request_with(ResourceType::Small, &["linux"]))
        .await
        .expect_err("the task definition does not exist");

    assert!(matches!(error, Error::InvalidRequest { .. }), "{error:?}");
    assert!(!error.is_retryable());
}
