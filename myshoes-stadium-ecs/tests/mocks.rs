//! EcsStadium against `aws-smithy-mocks` rules, for ECS responses moto cannot produce.
//!
//! Every case here names what moto 5.2.5 lacks: it always returns an empty `failures`
//! list from RunTask, never throttles, ignores `clientToken`, does not paginate ListTasks,
//! and returns HTTP 500 for StopTask on an unknown task where ECS returns an
//! InvalidParameterException.

use std::sync::{Arc, Mutex};

use aws_sdk_ecs::error::ErrorMetadata;
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
use aws_sdk_ecs::operation::run_task::{RunTaskError, RunTaskOutput};
use aws_sdk_ecs::operation::stop_task::StopTaskError;
use aws_sdk_ecs::types::error::{
    AccessDeniedException, ClientException, InvalidParameterException,
};
use aws_sdk_ecs::types::{Failure, Task, TaskField};
use aws_sdk_ecs::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use myshoes::stadium::conformance::{harmless_request, unique_runner_name};
use myshoes::stadium::{AddInstanceRequest, Error, Stadium};
use myshoes_stadium_ecs::{client_token, EcsConfig, EcsStadium, TaskProfile, TAG_RUNNER_NAME};

const CLUSTER: &str = "runners";
const TASK_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:task/runners/0123456789abcdef";

/// Turns SDK retries off, so each rule counts exactly the calls the stadium makes.
fn no_retries(config: aws_sdk_ecs::config::Builder) -> aws_sdk_ecs::config::Builder {
    config.retry_config(aws_sdk_ecs::config::retry::RetryConfig::disabled())
}

fn stadium(client: Client) -> EcsStadium {
    let config = EcsConfig::builder(CLUSTER, "runner")
        .with_subnets(["subnet-1"])
        .with_profile(TaskProfile::new("default", "runner-small"))
        .build()
        .expect("valid config");
    EcsStadium::new(client, config)
}

fn request() -> AddInstanceRequest {
    harmless_request(&unique_runner_name())
}

fn failure(reason: &str) -> Failure {
    Failure::builder()
        .arn("arn:aws:ecs:us-east-1:123456789012:task-definition/runner-small:1")
        .reason(reason)
        .detail("test detail")
        .build()
}

fn run_task_output(tasks: Vec<Task>, failures: Vec<Failure>) -> RunTaskOutput {
    RunTaskOutput::builder()
        .set_tasks(Some(tasks))
        .set_failures(Some(failures))
        .build()
}

fn rule_returning(output: RunTaskOutput) -> Rule {
    mock!(Client::run_task).then_output(move || output.clone())
}

fn rule_failing(error: impl Fn() -> RunTaskError + Send + Sync + 'static) -> Rule {
    mock!(Client::run_task).then_error(error)
}

async fn add_with(rule: &Rule) -> Result<myshoes::stadium::Instance, Error> {
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [rule], no_retries);
    stadium(client).add_instance(&request()).await
}

// moto returns `failures: []` on every RunTask.
#[tokio::test]
async fn capacity_failures_are_retryable() {
    for reason in [
        "RESOURCE:MEMORY",
        "AGENT",
        "Capacity is unavailable at this time. Please try again later or in a different availability zone",
    ] {
        let rule = rule_returning(run_task_output(Vec::new(), vec![failure(reason)]));
        let error = add_with(&rule).await.expect_err("no task started");
        assert!(matches!(error, Error::Capacity { .. }), "{reason}: {error:?}");
        assert!(error.is_retryable(), "{reason}");
        assert!(error.to_string().contains(reason), "{error}");
        assert_eq!(rule.num_calls(), 1);
    }
}

// moto returns `failures: []` on every RunTask.
#[tokio::test]
async fn missing_resource_failure_is_permanent() {
    let rule = rule_returning(run_task_output(Vec::new(), vec![failure("MISSING")]));
    let error = add_with(&rule).await.expect_err("no task started");
    assert!(matches!(error, Error::InvalidRequest { .. }), "{error:?}");
    assert!(!error.is_retryable());
}

// moto never reports a failure next to a started task.
#[tokio::test]
async fn partial_success_returns_task() {
    let task = Task::builder().task_arn(TASK_ARN).build();
    let rule = rule_returning(run_task_output(vec![task], vec![failure("RESOURCE:CPU")]));
    let instance = add_with(&rule).await.expect("one task started");
    assert_eq!(instance.cloud_id, TASK_ARN);
    assert_eq!(instance.stadium, "ecs");
}

// moto always returns the tasks it started.
#[tokio::test]
async fn empty_response_is_retryable() {
    let rule = rule_returning(run_task_output(Vec::new(), Vec::new()));
    let error = add_with(&rule).await.expect_err("no task started");
    assert!(matches!(error, Error::Backend { .. }), "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(error.to_string(), "ecs stadium failed during add_instance");
    let source = std::error::Error::source(&error)
        .expect("a source")
        .to_string();
    assert!(source.contains("neither a task nor a failure"), "{source}");
}

// moto never returns a modeled ServerException.
#[tokio::test]
async fn server_error_is_retryable_backend() {
    let rule = rule_failing(|| {
        RunTaskError::ServerException(
            aws_sdk_ecs::types::error::ServerException::builder()
                .message("internal failure")
                .build(),
        )
    });
    let error = add_with(&rule).await.expect_err("server error");

    assert!(matches!(error, Error::Backend { .. }), "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(error.to_string(), "ecs stadium failed during add_instance");
    let source = std::error::Error::source(&error).expect("a source");
    assert_eq!(source.to_string(), "ECS RunTask on cluster runners failed");
    let cause = source.source().expect("the SDK error").to_string();
    assert!(cause.contains("internal failure"), "{cause}");
}

// moto never throttles.
#[tokio::test]
async fn throttling_is_retryable() {
    let rule = rule_failing(|| {
        RunTaskError::generic(
            ErrorMetadata::builder()
                .code("ThrottlingException")
                .message("Rate exceeded")
                .build(),
        )
    });
    let error = add_with(&rule).await.expect_err("throttled");
    assert!(matches!(error, Error::Throttled { .. }), "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(rule.num_calls(), 1);
}

// moto does not enforce IAM.
#[tokio::test]
async fn access_denied_is_permanent() {
    let rule = rule_failing(|| {
        RunTaskError::AccessDeniedException(
            AccessDeniedException::builder()
                .message("not authorized to perform iam:PassRole")
                .build(),
        )
    });
    let error = add_with(&rule).await.expect_err("denied");
    assert!(matches!(error, Error::AccessDenied { .. }), "{error:?}");
    assert!(!error.is_retryable());
    let message = error.to_string();
    assert!(message.contains("ecs:RunTask"), "{message}");
    assert!(message.contains("iam:PassRole"), "{message}");
}

// moto ignores clientToken, so it neither returns the first task again nor rejects a
// reused token with other parameters.
#[tokio::test]
async fn repeated_launch_reuses_client_token() {
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let seen = tokens.clone();
    let rule = mock!(Client::run_task)
        .match_requests(move |input| {
            seen.lock()
                .expect("token lock")
                .push(input.client_token().unwrap_or_default().to_owned());
            true
        })
        .sequence()
        .output(|| run_task_output(vec![Task::builder().task_arn(TASK_ARN).build()], Vec::new()))
        .output(|| run_task_output(vec![Task::builder().task_arn(TASK_ARN).build()], Vec::new()))
        .error(|| {
            RunTaskError::ClientException(
                ClientException::builder()
                    .message("The client token is already used with different parameters")
                    .build(),
            )
        })
        .build();
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&rule], no_retries);
    let stadium = stadium(client);
    let request = request();

    let first = stadium.add_instance(&request).await.expect("first launch");
    let second = stadium
        .add_instance(&request)
        .await
        .expect("repeated launch");
    let mut changed = request.clone();
    changed.labels.push("changed".to_owned());
    let error = stadium
        .add_instance(&changed)
        .await
        .expect_err("token reused with other parameters");

    assert_eq!(first.cloud_id, second.cloud_id);
    let tokens = tokens.lock().expect("token lock").clone();
    assert_eq!(tokens.len(), 3);
    assert_eq!(tokens[0], client_token(&request));
    assert!(tokens.iter().all(|token| *token == tokens[0]), "{tokens:?}");
    assert!(tokens[0].len() <= 64);
    assert!(matches!(error, Error::InvalidRequest { .. }), "{error:?}");
    assert!(!error.is_retryable());
}

// moto returns HTTP 500 for StopTask on an unknown task, while ECS returns an
// InvalidParameterException and a MISSING failure from DescribeTasks.
#[tokio::test]
async fn stop_unknown_task_is_ok() {
    let stop = mock!(Client::stop_task).then_error(|| {
        StopTaskError::InvalidParameterException(
            InvalidParameterException::builder()
                .message("The referenced task was not found.")
                .build(),
        )
    });
    let describe = mock!(Client::describe_tasks).then_output(|| {
        DescribeTasksOutput::builder()
            .failures(Failure::builder().arn(TASK_ARN).reason("MISSING").build())
            .build()
    });
    let client = mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [&stop, &describe],
        no_retries
    );

    stadium(client)
        .delete_instance(TASK_ARN, &[])
        .await
        .expect("an unknown task counts as deleted");
    assert_eq!(stop.num_calls(), 1);
    assert_eq!(describe.num_calls(), 1);
}

// The counterpart of the case above: the task still runs, so the StopTask error is returned.
#[tokio::test]
async fn stop_error_stands_for_running_task() {
    let stop = mock!(Client::stop_task).then_error(|| {
        StopTaskError::InvalidParameterException(
            InvalidParameterException::builder()
                .message("invalid reason")
                .build(),
        )
    });
    let describe = mock!(Client::describe_tasks).then_output(|| {
        DescribeTasksOutput::builder()
            .tasks(
                Task::builder()
                    .task_arn(TASK_ARN)
                    .last_status("RUNNING")
                    .desired_status("RUNNING")
                    .build(),
            )
            .build()
    });
    let client = mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [&stop, &describe],
        no_retries
    );

    let error = stadium(client)
        .delete_instance(TASK_ARN, &[])
        .await
        .expect_err("the task still runs");
    assert!(matches!(error, Error::InvalidRequest { .. }), "{error:?}");
}

// moto returns every task in one ListTasks page.
#[tokio::test]
async fn listing_follows_pages_and_chunks() {
    let arns: Vec<String> = (0..150)
        .map(|index| format!("arn:aws:ecs:us-east-1:123456789012:task/runners/{index:032x}"))
        .collect();
    let (first_page, second_page) = (arns[..120].to_vec(), arns[120..].to_vec());
    let list = mock!(Client::list_tasks)
        .match_requests(|input| {
            input.started_by() == Some("myshoes")
                && input.desired_status() == Some(&aws_sdk_ecs::types::DesiredStatus::Running)
        })
        .sequence()
        .output(move || {
            ListTasksOutput::builder()
                .set_task_arns(Some(first_page.clone()))
                .next_token("page-2")
                .build()
        })
        .output(move || {
            ListTasksOutput::builder()
                .set_task_arns(Some(second_page.clone()))
                .build()
        })
        .build();
    let describe = mock!(Client::describe_tasks)
        .match_requests(|input| {
            input.tasks().len() <= 100 && input.include().contains(&TaskField::Tags)
        })
        .then_compute_output(|input| {
            let tasks = input
                .tasks()
                .iter()
                .map(|arn| {
                    Task::builder()
                        .task_arn(arn)
                        .desired_status("RUNNING")
                        .tags(
                            aws_sdk_ecs::types::Tag::builder()
                                .key(TAG_RUNNER_NAME)
                                .value(format!("runner-{}", arn.len()))
                                .build(),
                        )
                        .build()
                })
                .collect();
            DescribeTasksOutput::builder()
                .set_tasks(Some(tasks))
                .build()
        });
    let client = mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [&list, &describe],
        no_retries
    );

    let listed = stadium(client)
        .list_instances()
        .await
        .expect("list_instances");

    assert_eq!(listed.len(), 150);
    assert_eq!(list.num_calls(), 2);
    assert_eq!(describe.num_calls(), 2);
    let listed_arns: Vec<&str> = listed
        .iter()
        .map(|instance| instance.cloud_id.as_str())
        .collect();
    assert_eq!(
        listed_arns,
        arns.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(listed.iter().all(|instance| instance.runner_name.is_some()));
}

// The credential must not leak through errors or Debug output.
#[tokio::test]
async fn errors_and_debug_hide_credential() {
    let rule = rule_failing(|| {
        RunTaskError::ClientException(ClientException::builder().message("bad request").build())
    });
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&rule], no_retries);
    let stadium = stadium(client);
    let request = request();

    let error = stadium.add_instance(&request).await.expect_err("rejected");

    for text in [
        format!("{error:?}"),
        format!("{error}"),
        format!("{stadium:?}"),
        format!("{request:?}"),
    ] {
        assert!(!text.contains("conformance-token"), "{text}");
    }
}
