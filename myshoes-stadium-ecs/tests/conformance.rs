//! The Stadium conformance suite against EcsStadium on moto.
//!
//! moto ignores RunTask's `clientToken`, so the fixture does not promise idempotent adds
//! here; the mock tests check that a repeated launch sends the same token.

mod common;

use common::MotoCluster;
use myshoes::stadium::conformance::Fixture;
use myshoes_stadium_ecs::{EcsStadium, TaskProfile};

async fn setup() -> Option<(EcsStadium, Fixture)> {
    let moto = MotoCluster::create().await?;
    let family = moto.register_task_definition("conformance").await;
    let config = moto
        .config()
        .with_profile(TaskProfile::new("default", family))
        .build()
        .expect("valid config");
    let stadium = EcsStadium::new(moto.client.clone(), config);
    Some((stadium, Fixture::harmless(false).with_lists_instances(true)))
}

myshoes::stadium_conformance!(setup());
