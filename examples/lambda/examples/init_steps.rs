//! Times each step of the dispatcher's init, in the order the dispatcher runs them, and
//! prints one line of microseconds per step. It reads the same variables as the
//! dispatcher and makes no AWS or GitHub call, but the AWS variables must still point
//! the SDK away from the network (see `docs/benchmarks.md` for the command).

use std::time::Instant;

use myshoes::github::ClientConfig;
use myshoes_lambda::config::ProcessEnvironment;
use myshoes_lambda::secrets::SettingReader;
use myshoes_lambda::{init, runtime};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let mut marks = Vec::new();
    let mut mark = |step: &'static str| marks.push((step, start.elapsed()));

    runtime::init_tracing();
    mark("log subscriber");
    let aws = runtime::aws_config(&ProcessEnvironment).await?;
    mark("SDK configuration");
    let reader = SettingReader::new(&ProcessEnvironment, &aws);
    let sqs = aws_sdk_sqs::Client::new(&aws);
    mark("SQS client");
    let ecs = aws_sdk_ecs::Client::new(&aws);
    mark("ECS client");
    let deployment = init::load_deployment(&reader).await?;
    mark("deployment document");
    let _github = init::github_client(&reader, ClientConfig::default()).await?;
    mark("GitHub App client");
    let _stadium = init::ecs_stadium(&ProcessEnvironment, ecs, &deployment)?;
    let store = init::seeded_store(&deployment).await?;
    let _datastore = init::sqs_datastore(&ProcessEnvironment, sqs, store, true)?;
    mark("Stadium and Datastore");

    let mut previous = 0;
    let line: Vec<String> = marks
        .iter()
        .map(|(step, elapsed)| {
            let micros = elapsed.as_micros();
            let step_micros = micros - previous;
            previous = micros;
            format!("{step}: {step_micros} µs")
        })
        .collect();
    println!("{}", line.join(", "));
    Ok(())
}
