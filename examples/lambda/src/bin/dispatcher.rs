//! Bootstrap of the dispatcher function (SQS event source mapping).

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use myshoes_lambda::config::ProcessEnvironment;
use myshoes_lambda::dispatch::DispatcherFunction;
use myshoes_lambda::runtime;
use myshoes_lambda::secrets::SettingReader;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    runtime::init_tracing();
    let aws = runtime::aws_config(&ProcessEnvironment).await?;
    let reader = SettingReader::new(&ProcessEnvironment, &aws);
    let function = Arc::new(
        DispatcherFunction::from_env(
            &reader,
            aws_sdk_sqs::Client::new(&aws),
            aws_sdk_ecs::Client::new(&aws),
        )
        .await?,
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let function = function.clone();
        async move { Ok::<_, Error>(function.handle(event.payload).await) }
    }))
    .await
}
