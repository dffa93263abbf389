//! End to end against moto on 127.0.0.1 and a GitHub fake (wiremock): signed webhook →
//! webhook handler → SQS FIFO queue → received and turned into a Lambda SQS event →
//! dispatcher handler → RUNNING ECS task. Also reads settings from SSM Parameter Store and
//! Secrets Manager.
//!
//! The tests read `AWS_ENDPOINT_URL` and print `SKIPPED` when it is not set; `.ci/run`
//! starts moto and sets it. Each test creates its own queues and cluster.

mod common;

use std::collections::HashMap;
use std::io::Read as _;

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, NetworkMode, Task, TaskField};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use base64::Engine as _;
use myshoes_lambda::config::{
    ConfigError, CLUSTER_VAR, CONFIG_VAR, DEAD_LETTER_QUEUE_URL_VAR, QUEUE_URL_VAR,
    SECURITY_GROUPS_VAR, SUBNETS_VAR, TASK_DEFINITION_VAR, WEBHOOK_SECRET_VAR,
};
use myshoes_lambda::dispatch::DispatcherFunction;
use myshoes_lambda::secrets::SettingReader;
use myshoes_lambda::sweep::SweeperFunction;
use myshoes_lambda::webhook::WebhookFunction;
use myshoes_stadium_ecs::{TAG_JOB_ID, TAG_REPOSITORY, TAG_RUNNER_NAME};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use common::*;

/// Queues, cluster and task definition of one test, with the functions' environment.
struct Deployment {
    aws: SdkConfig,
    sqs: aws_sdk_sqs::Client,
    ecs: aws_sdk_ecs::Client,
    queue_url: String,
    cluster: String,
    env: HashMap<String, String>,
    github: MockServer,
}

impl Deployment {
    async fn create(endpoint: &str) -> Self {
        keep_tasks_running(endpoint).await;
        let subnet = moto_default_subnet(endpoint).await;
        let aws = moto_sdk_config(endpoint).await;
        let sqs = aws_sdk_sqs::Client::new(&aws);
        let ecs = aws_sdk_ecs::Client::new(&aws);
        let name = unique("myshoes-e2e");

        let dlq_url = sqs
            .create_queue()
            .queue_name(format!("{name}-dlq.fifo"))
            .attributes(QueueAttributeName::FifoQueue, "true")
            .send()
            .await
            .expect("CreateQueue (dead-letter queue) on moto")
            .queue_url
            .expect("queue URL");
        let dlq_arn = sqs
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("GetQueueAttributes on moto")
            .attributes
            .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn).cloned())
            .expect("queue ARN");
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("{name}.fifo"))
            .attributes(QueueAttributeName::FifoQueue, "true")
            .attributes(QueueAttributeName::VisibilityTimeout, "60")
            .attributes(
                QueueAttributeName::RedrivePolicy,
                json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}).to_string(),
            )
            .send()
            .await
            .expect("CreateQueue on moto")
            .queue_url
            .expect("queue URL");

        ecs.create_cluster()
            .cluster_name(&name)
            .send()
            .await
            .expect("CreateCluster on moto");
        // moto needs a container-level memory value; real Fargate does not.
        let container = ContainerDefinition::builder()
            .name("runner")
            .image("ghcr.io/actions/actions-runner:latest")
            .memory(512)
            .essential(true)
            .build();
        ecs.register_task_definition()
            .family(&name)
            .requires_compatibilities(Compatibility::Fargate)
            .network_mode(NetworkMode::Awsvpc)
            .cpu("256")
            .memory("512")
            .container_definitions(container)
            .send()
            .await
            .expect("RegisterTaskDefinition on moto");

        let github = MockServer::start().await;
        mount_github(&github).await;
        let key = base64::engine::general_purpose::STANDARD.encode(TEST_KEY);
        let env = env_of(&[
            (CONFIG_VAR, &deployment_json(&github.uri())),
            (WEBHOOK_SECRET_VAR, SECRET),
            ("GITHUB_APP_ID", "12345"),
            ("GITHUB_PRIVATE_KEY_BASE64", &key),
            (QUEUE_URL_VAR, &queue_url),
            (DEAD_LETTER_QUEUE_URL_VAR, &dlq_url),
            (CLUSTER_VAR, &name),
            (TASK_DEFINITION_VAR, &name),
            (SUBNETS_VAR, &subnet),
            // moto needs a security group on every awsvpc RunTask; it need not exist.
            (SECURITY_GROUPS_VAR, "sg-myshoes-e2e"),
        ]);
        Self {
            aws,
            sqs,
            ecs,
            queue_url,
            cluster: name,
            env,
            github,
        }
    }

    fn github_host(&self) -> String {
        self.github.uri()
    }

    async fn webhook(&self) -> WebhookFunction {
        let reader = SettingReader::new(&self.env, &self.aws);
        WebhookFunction::from_env(&reader, myshoes_lambda::webhook::sqs_client(&self.aws))
            .await
            .expect("webhook function init")
    }

    async fn sweeper(&self, extra: &[(&str, &str)]) -> SweeperFunction {
        let mut env = self.env.clone();
        env.extend(env_of(extra));
        let reader = SettingReader::new(&env, &self.aws);
        SweeperFunction::from_env(&reader, self.ecs.clone())
            .await
            .expect("sweeper function init")
    }

    async fn dispatcher(&self) -> DispatcherFunction {
        let reader = SettingReader::new(&self.env, &self.aws);
        DispatcherFunction::from_env(&reader, self.sqs.clone(), self.ecs.clone())
            .await
            .expect("dispatcher function init")
    }

    /// Receives messages until `expected` arrived or a receive returns none, and returns
    /// them as the SQS event Lambda would pass.
    async fn receive_event(&self, expected: usize) -> SqsEvent {
        let mut records: Vec<Value> = Vec::new();
        while records.len() < expected {
            let output = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .expect("ReceiveMessage on moto");
            let messages = output.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for message in messages {
                let attributes: serde_json::Map<String, Value> = message
                    .attributes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(name, value)| (name.as_str().to_owned(), Value::String(value)))
                    .collect();
                records.push(json!({
                    "messageId": message.message_id,
                    "receiptHandle": message.receipt_handle,
                    "body": message.body,
                    "attributes": attributes,
                    "messageAttributes": {},
                    "md5OfBody": message.md5_of_body,
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:queue.fifo",
                    "awsRegion": "us-east-1"
                }));
            }
        }
        serde_json::from_value(json!({ "Records": records })).expect("an SQS event")
    }

    /// Describes every task of the cluster with its tags and overrides.
    async fn tasks(&self) -> Vec<Task> {
        let arns = self
            .ecs
            .list_tasks()
            .cluster(&self.cluster)
            .send()
            .await
            .expect("ListTasks on moto")
            .task_arns
            .unwrap_or_default();
        if arns.is_empty() {
            return Vec::new();
        }
        self.ecs
            .describe_tasks()
            .cluster(&self.cluster)
            .set_tasks(Some(arns))
            .include(TaskField::Tags)
            .send()
            .await
            .expect("DescribeTasks on moto")
            .tasks
            .unwrap_or_default()
    }

    /// Posts a signed queued delivery for `workflow_job_id` to `webhook` and returns the
    /// response status and body.
    async fn deliver(&self, webhook: &WebhookFunction, workflow_job_id: u64) -> (u16, Value) {
        let body = webhook_on(&self.github_host(), workflow_job_id);
        let headers = github_headers(
            "workflow_job",
            &sign(body.as_bytes()),
            &uuid::Uuid::new_v4().to_string(),
        );
        let response = webhook
            .handle(function_url_event(headers, body.as_bytes()))
            .await;
        response_json(&response)
    }
}

fn tag<'a>(task: &'a Task, key: &str) -> Option<&'a str> {
    task.tags()
        .iter()
        .find(|tag| tag.key() == Some(key))
        .and_then(|tag| tag.value())
}

/// Decodes the setup script from the `bash -c <wrapper>` command override.
fn setup_script(task: &Task) -> String {
    let overrides = task.overrides().expect("RunTask overrides are echoed");
    let container = &overrides.container_overrides()[0];
    assert_eq!(container.name(), Some("runner"));
    let command = container.command();
    assert_eq!(&command[..2], ["bash", "-c"], "{command:?}");
    let wrapper = &command[2];
    let start = wrapper.find("printf '%s' '").expect("encoded script") + "printf '%s' '".len();
    let end = start + wrapper[start..].find('\'').expect("end of encoded script");
    let compressed = base64::engine::general_purpose::STANDARD
        .decode(&wrapper[start..end])
        .expect("base64 script");
    let mut script = String::new();
    flate2::read::GzDecoder::new(compressed.as_slice())
        .read_to_string(&mut script)
        .expect("gzip script");
    script
}

fn reported(response: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.clone())
        .collect()
}

#[tokio::test]
async fn queued_webhook_becomes_running_task() {
    let logs = captured_logs();
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let deployment = Deployment::create(&endpoint).await;
    let webhook = deployment.webhook().await;
    let dispatcher = deployment.dispatcher().await;

    let (status, response) = deployment.deliver(&webhook, WORKFLOW_JOB_ID).await;
    assert_eq!(status, 202, "{response}");
    let job_id = response["job_id"].as_str().expect("job id").to_owned();
    // GitHub delivers the same job again, for example after a manual redelivery.
    let (status, again) = deployment.deliver(&webhook, WORKFLOW_JOB_ID).await;
    assert!(status == 202 || status == 200, "{again}");
    assert_eq!(again["job_id"], job_id.as_str());

    let event = deployment.receive_event(2).await;
    assert_eq!(
        event.records.len(),
        1,
        "FIFO deduplication keeps one message per job attempt"
    );

    let response = dispatcher.handle(event.clone()).await;
    assert!(reported(&response).is_empty(), "{response:?}");

    let tasks = deployment.tasks().await;
    assert_eq!(tasks.len(), 1);
    let task = &tasks[0];
    assert_eq!(task.last_status(), Some("RUNNING"));
    assert_eq!(tag(task, TAG_JOB_ID), Some(job_id.as_str()));
    assert_eq!(tag(task, TAG_REPOSITORY), Some("octo-org/hello-world"));
    let runner_name = tag(task, TAG_RUNNER_NAME).expect("runner name tag");
    assert!(runner_name.starts_with("myshoes-"), "{runner_name}");
    let script = setup_script(task);
    assert!(
        script.contains(JIT_CONFIG),
        "the task's command override carries the job's JIT config"
    );

    // The message is gone from the queue once the runner was launched.
    assert!(deployment.receive_event(1).await.records.is_empty());

    // The same record handled again, as after a Lambda retry, launches nothing new.
    let response = dispatcher.handle(event).await;
    assert!(reported(&response).is_empty(), "{response:?}");
    assert_eq!(deployment.tasks().await.len(), 1);

    let logs = logs.text();
    assert!(logs.contains(&job_id), "the run logged the job");
    let key_lines = TEST_KEY.lines().filter(|line| !line.starts_with("-----"));
    for secret in [SECRET, JIT_CONFIG, INSTALLATION_TOKEN]
        .into_iter()
        .chain(key_lines)
    {
        assert!(!logs.contains(secret), "{secret:?} appeared in the logs");
    }
}

/// Log output collected in memory.
#[derive(Clone, Default)]
struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

/// Returns every log line of this test binary at TRACE level, from all its tests at once.
///
/// One global subscriber, installed before any test emits an event: scoped subscribers in
/// tests running in parallel race on tracing's per-callsite interest cache, so one test's
/// events could go unrecorded. Checking the shared text for secrets covers every test that
/// ran before the check.
fn captured_logs() -> &'static CapturedLogs {
    static LOGS: std::sync::LazyLock<CapturedLogs> = std::sync::LazyLock::new(|| {
        let logs = CapturedLogs::default();
        let writer = logs.clone();
        tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish(),
        )
        .expect("no other global subscriber in this test binary");
        logs
    });
    &LOGS
}

impl CapturedLogs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn poison_record_is_reported_alone() {
    captured_logs();
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let deployment = Deployment::create(&endpoint).await;
    let webhook = deployment.webhook().await;
    let dispatcher = deployment.dispatcher().await;

    for workflow_job_id in [WORKFLOW_JOB_ID, WORKFLOW_JOB_ID + 1] {
        let (status, response) = deployment.deliver(&webhook, workflow_job_id).await;
        assert_eq!(status, 202, "{response}");
    }
    let poison_id = deployment
        .sqs
        .send_message()
        .queue_url(&deployment.queue_url)
        .message_body("this is not a myshoes job")
        .message_group_id("poison")
        .message_deduplication_id("poison")
        .send()
        .await
        .expect("SendMessage on moto")
        .message_id
        .expect("message id");

    let event = deployment.receive_event(3).await;
    assert_eq!(event.records.len(), 3);
    let response = dispatcher.handle(event).await;
    assert_eq!(reported(&response), [poison_id]);

    let tasks = deployment.tasks().await;
    assert_eq!(tasks.len(), 2);
    let mut job_ids: Vec<&str> = tasks
        .iter()
        .filter_map(|task| tag(task, TAG_JOB_ID))
        .collect();
    job_ids.sort_unstable();
    job_ids.dedup();
    assert_eq!(job_ids.len(), 2, "one task per job");
    assert!(tasks
        .iter()
        .all(|task| task.last_status() == Some("RUNNING")));
}

#[tokio::test]
async fn settings_from_ssm_and_secrets_manager() {
    captured_logs();
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let aws = moto_sdk_config(&endpoint).await;
    let parameter = format!("/{}/webhook-secret", unique("myshoes-e2e"));
    aws_sdk_ssm::Client::new(&aws)
        .put_parameter()
        .name(&parameter)
        .value("secret-from-ssm")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("PutParameter on moto");
    let secret_name = unique("myshoes-e2e-key");
    aws_sdk_secretsmanager::Client::new(&aws)
        .create_secret()
        .name(&secret_name)
        .secret_string("key-from-secrets-manager")
        .send()
        .await
        .expect("CreateSecret on moto");

    let env = env_of(&[
        ("GITHUB_APP_SECRET_SSM_PARAMETER", &parameter),
        ("GITHUB_PRIVATE_KEY_BASE64_SECRET_ID", &secret_name),
        ("BOTH", "direct"),
        ("BOTH_SSM_PARAMETER", &parameter),
        ("MISSING_SSM_PARAMETER", "/myshoes-e2e/does-not-exist"),
    ]);
    let reader = SettingReader::new(&env, &aws);

    let secret = reader.required("GITHUB_APP_SECRET", "hint").await.unwrap();
    assert_eq!(secret.expose(), "secret-from-ssm");
    let key = reader
        .required("GITHUB_PRIVATE_KEY_BASE64", "hint")
        .await
        .unwrap();
    assert_eq!(key.expose(), "key-from-secrets-manager");

    let ambiguous = reader.optional("BOTH").await.unwrap_err();
    assert!(
        matches!(ambiguous, ConfigError::Ambiguous { .. }),
        "{ambiguous}"
    );
    assert!(ambiguous.to_string().contains("BOTH_SSM_PARAMETER"));

    let missing = reader.optional("MISSING").await.unwrap_err();
    assert!(matches!(missing, ConfigError::Fetch { .. }), "{missing}");
    assert!(
        missing.to_string().contains("MISSING_SSM_PARAMETER"),
        "{missing}"
    );

    let unset = reader.required("UNSET", "set it").await.unwrap_err();
    assert!(unset.to_string().starts_with("UNSET"), "{unset}");
}

#[tokio::test]
async fn sweeper_stops_unregistered_runner_task() {
    let logs = captured_logs();
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let deployment = Deployment::create(&endpoint).await;
    let webhook = deployment.webhook().await;
    let dispatcher = deployment.dispatcher().await;
    let (status, response) = deployment.deliver(&webhook, WORKFLOW_JOB_ID).await;
    assert_eq!(status, 202, "{response}");
    let event = deployment.receive_event(1).await;
    assert!(reported(&dispatcher.handle(event).await).is_empty());
    assert_eq!(deployment.tasks().await.len(), 1);

    // GitHub refuses the runner listing once: the pass cannot judge the task and keeps it.
    Mock::given(method("GET"))
        .and(path("/api/v3/orgs/octo-org/actions/runners"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "message": "Resource not accessible by integration",
            "documentation_url": "https://docs.github.com/rest/actions/self-hosted-runners"
        })))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&deployment.github)
        .await;
    let blind = deployment
        .sweeper(&[("SWEEPER_BOOT_GRACE_SECONDS", "0")])
        .await;
    let summary = blind
        .handle()
        .await
        .expect("a refused listing leaves the task unjudged, not the pass failed");
    assert_eq!(summary.deleted, 0, "{summary:?}");
    assert_eq!(summary.kept, 1, "{summary:?}");
    let tasks = deployment.tasks().await;
    assert_eq!(tasks[0].last_status(), Some("RUNNING"));

    // GitHub lists no runner: the task's runner never registered.
    Mock::given(method("GET"))
        .and(path("/api/v3/orgs/octo-org/actions/runners"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"total_count": 0, "runners": []})),
        )
        .mount(&deployment.github)
        .await;

    // Within the boot grace the task is kept.
    let patient = deployment.sweeper(&[]).await;
    let summary = patient.handle().await.expect("sweep pass");
    assert_eq!(summary.deleted, 0, "{summary:?}");
    let tasks = deployment.tasks().await;
    assert_eq!(tasks[0].last_status(), Some("RUNNING"));

    // With no boot grace it is stopped.
    let strict = deployment
        .sweeper(&[("SWEEPER_BOOT_GRACE_SECONDS", "0")])
        .await;
    let summary = strict.handle().await.expect("sweep pass");
    assert_eq!(summary.deleted, 1, "{summary:?}");
    assert_eq!(summary.failed, 0, "{summary:?}");
    let tasks = deployment.tasks().await;
    assert!(
        tasks
            .iter()
            .all(|task| task.desired_status() == Some("STOPPED")),
        "{:?}",
        tasks
            .iter()
            .map(|task| task.desired_status())
            .collect::<Vec<_>>()
    );

    let logs = logs.text();
    assert!(
        logs.contains("Resource not accessible by integration"),
        "the refused listing was logged"
    );
    assert!(logs.contains("sweep pass finished"));
    let key_lines = TEST_KEY.lines().filter(|line| !line.starts_with("-----"));
    for secret in [SECRET, JIT_CONFIG, INSTALLATION_TOKEN]
        .into_iter()
        .chain(key_lines)
    {
        assert!(!logs.contains(secret), "{secret:?} appeared in the logs");
    }
}

#[tokio::test]
async fn sdk_client_with_compiled_roots_reaches_moto() {
    captured_logs();
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    // The default roots: Amazon's for a standard Region, parsed at the first request.
    // moto's endpoint and the credentials come from the process environment, read directly
    // with AWS_ACCESS_KEY_ID in the settings and through the SDK's whole chain without it.
    assert!(!endpoint.is_empty());
    let region = (myshoes_lambda::config::REGION_VAR, "us-east-1");
    for settings in [vec![region, ("AWS_ACCESS_KEY_ID", "test")], vec![region]] {
        let env = env_of(&settings);
        let aws = myshoes_lambda::runtime::aws_config(&env)
            .await
            .expect("the default roots are accepted");
        let sqs = aws_sdk_sqs::Client::new(&aws);
        sqs.list_queues().send().await.unwrap_or_else(|error| {
            panic!("ListQueues failed with settings {settings:?}: {error:?}")
        });
    }

    let env = env_of(&[
        (myshoes_lambda::config::REGION_VAR, "us-east-1"),
        (myshoes_lambda::config::TLS_ROOTS_VAR, "system"),
    ]);
    let error = myshoes_lambda::runtime::aws_config(&env)
        .await
        .expect_err("an unknown value is refused")
        .to_string();
    assert!(error.starts_with("MYSHOES_TLS_ROOTS"), "{error}");
}
