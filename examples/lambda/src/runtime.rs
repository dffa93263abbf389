//! Process set-up shared by the three binaries.

use aws_config::{BehaviorVersion, SdkConfig};

/// Installs the JSON log subscriber, filtered by `RUST_LOG` (default `info`). CloudWatch
/// adds timestamps, so the lines carry none.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .without_time()
        .with_target(false)
        .init();
}

/// Loads the AWS SDK configuration from the Lambda environment (region, role credentials,
/// and `AWS_ENDPOINT_URL` when set).
pub async fn aws_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}
