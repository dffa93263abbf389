//! Bootstrap of the webhook function (Function URL or API Gateway).

use std::sync::Arc;

use lambda_http::{service_fn, Error, Request};
use myshoes_lambda::config::ProcessEnvironment;
use myshoes_lambda::runtime;
use myshoes_lambda::secrets::SettingReader;
use myshoes_lambda::webhook::{self, WebhookFunction};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    runtime::init_tracing();
    let aws = runtime::aws_config(&ProcessEnvironment).await?;
    let reader = SettingReader::new(&ProcessEnvironment, &aws);
    let function = Arc::new(WebhookFunction::from_env(&reader, webhook::sqs_client(&aws)).await?);
    lambda_http::run(service_fn(move |request: Request| {
        let function = function.clone();
        async move { Ok::<_, Error>(function.handle(request).await) }
    }))
    .await
}
