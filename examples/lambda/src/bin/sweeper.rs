//! Bootstrap of the sweeper function (EventBridge schedule).

use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use myshoes_lambda::config::ProcessEnvironment;
use myshoes_lambda::runtime;
use myshoes_lambda::secrets::SettingReader;
use myshoes_lambda::sweep::SweeperFunction;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    runtime::init_tracing();
    let aws = runtime::aws_config(&ProcessEnvironment).await?;
    let reader = SettingReader::new(&ProcessEnvironment, &aws);
    let function =
        Arc::new(SweeperFunction::from_env(&reader, aws_sdk_ecs::Client::new(&aws)).await?);
    // The schedule's event carries nothing the pass needs, so any JSON is accepted.
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<serde_json::Value>| {
        let function = function.clone();
        async move { function.handle().await.map_err(Error::from) }
    }))
    .await
}
