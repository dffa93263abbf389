//! Helpers shared by the tests that run against an SQS server such as moto.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region, SharedInterceptor};
use aws_sdk_sqs::types::QueueAttributeName;
use myshoes::datastore::MemoryDatastore;
use myshoes_datastore_sqs::SqsDatastore;

/// Environment variable with the SQS endpoint, such as `http://127.0.0.1:5123`.
pub const ENDPOINT_VARIABLE: &str = "AWS_ENDPOINT_URL";

/// Returns the SQS endpoint, or prints why the test is skipped and returns `None`.
pub fn endpoint() -> Option<String> {
    match std::env::var(ENDPOINT_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "SKIPPED: {ENDPOINT_VARIABLE} is not set; run `bash .ci/run`, which starts \
                 moto_server on 127.0.0.1 and sets it"
            );
            None
        }
    }
}

/// Builds a client for `endpoint` with explicit region and test credentials, so the SDK
/// never looks for them elsewhere, and without retries, so server errors fail fast.
pub fn client(endpoint: &str, interceptor: Option<SharedInterceptor>) -> aws_sdk_sqs::Client {
    let mut builder = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .retry_config(RetryConfig::disabled());
    if let Some(interceptor) = interceptor {
        builder = builder.interceptor(interceptor);
    }
    aws_sdk_sqs::Client::from_conf(builder.build())
}

/// Returns a queue name unique to this test run, so tests run in parallel.
pub fn unique_name(prefix: &str, fifo: bool) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let suffix = if fifo { ".fifo" } else { "" };
    format!("{prefix}-{}{suffix}", &id[..16])
}

/// Settings of a test queue.
#[derive(Debug, Clone, Default)]
pub struct QueueSpec {
    pub fifo: bool,
    pub visibility_timeout_seconds: Option<u32>,
    /// Dead-letter queue ARN and `maxReceiveCount` of the redrive policy.
    pub redrive: Option<(String, u32)>,
}

/// Creates a queue and returns its URL.
pub async fn create_queue(client: &aws_sdk_sqs::Client, prefix: &str, spec: &QueueSpec) -> String {
    let mut request = client
        .create_queue()
        .queue_name(unique_name(prefix, spec.fifo));
    if spec.fifo {
        request = request.attributes(QueueAttributeName::FifoQueue, "true");
    }
    if let Some(seconds) = spec.visibility_timeout_seconds {
        request = request.attributes(QueueAttributeName::VisibilityTimeout, seconds.to_string());
    }
    if let Some((arn, max_receive_count)) = &spec.redrive {
        let policy =
            format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"{max_receive_count}"}}"#);
        request = request.attributes(QueueAttributeName::RedrivePolicy, policy);
    }
    let output = request.send().await.expect("CreateQueue");
    output
        .queue_url()
        .expect("CreateQueue returns the URL")
        .to_owned()
}

/// Returns a queue's ARN.
pub async fn queue_arn(client: &aws_sdk_sqs::Client, queue_url: &str) -> String {
    let output = client
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes");
    output
        .attributes()
        .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn))
        .expect("QueueArn")
        .clone()
}

/// Returns the number of messages in a queue, visible or in flight.
pub async fn message_count(client: &aws_sdk_sqs::Client, queue_url: &str) -> u64 {
    let output = client
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("GetQueueAttributes");
    let attributes: HashMap<QueueAttributeName, String> =
        output.attributes().cloned().unwrap_or_default();
    [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .map(|name| {
        attributes
            .get(name)
            .map_or(0, |value| value.parse::<u64>().expect("a count"))
    })
    .sum()
}

/// A main queue with a dead-letter queue, and a store for them whose inner store is a
/// `MemoryDatastore`.
pub struct QueuePair {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub dead_letter_queue_url: String,
}

/// Creates a dead-letter queue and a main queue; the main queue's redrive policy uses
/// `max_receive_count` when given.
pub async fn create_queue_pair(
    client: &aws_sdk_sqs::Client,
    fifo: bool,
    visibility_timeout_seconds: u32,
    max_receive_count: Option<u32>,
) -> QueuePair {
    let dead_letter_queue_url = create_queue(
        client,
        "dlq",
        &QueueSpec {
            fifo,
            ..QueueSpec::default()
        },
    )
    .await;
    let redrive = match max_receive_count {
        Some(count) => Some((queue_arn(client, &dead_letter_queue_url).await, count)),
        None => None,
    };
    let queue_url = create_queue(
        client,
        "jobs",
        &QueueSpec {
            fifo,
            visibility_timeout_seconds: Some(visibility_timeout_seconds),
            redrive,
        },
    )
    .await;
    QueuePair {
        client: client.clone(),
        queue_url,
        dead_letter_queue_url,
    }
}

impl QueuePair {
    /// Builds a store for the pair with a `MemoryDatastore` inside.
    pub fn store(&self) -> SqsDatastore {
        SqsDatastore::builder(self.client.clone(), &self.queue_url)
            .with_inner(Arc::new(MemoryDatastore::new()))
            .with_dead_letter_queue_url(&self.dead_letter_queue_url)
            .build()
            .expect("valid settings")
    }
}

/// Receives raw messages from a queue, with attributes, waiting up to `wait`.
pub async fn receive_raw(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    wait: Duration,
) -> Vec<aws_sdk_sqs::types::Message> {
    let output = client
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(i32::try_from(wait.as_secs()).expect("short wait"))
        .message_attribute_names("All")
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .expect("ReceiveMessage");
    output.messages.unwrap_or_default()
}
