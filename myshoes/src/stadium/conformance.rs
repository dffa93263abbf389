//! A test suite that checks a [`Stadium`] against the trait's contract.
//!
//! Each public `async fn` checks one sentence of the contract.
//! [`stadium_conformance!`](crate::stadium_conformance) expands every case into its own
//! `#[tokio::test]`:
//!
//! ```
//! use myshoes::stadium::MemoryStadium;
//! use myshoes::stadium::conformance::Fixture;
//!
//! myshoes::stadium_conformance!(async { Some((MemoryStadium::new(), Fixture::harmless(true))) });
//! # fn main() {}
//! ```
//!
//! The setup expression is awaited once per case and yields `Option<(S, Fixture)>` for an
//! `S: Stadium`; `None` skips the case, and the setup should print why. The test crate
//! needs `tokio` with the `macros` and `rt` features.
//!
//! This module is not covered by semantic versioning: cases are added as the contract grows.

use std::fmt;
use std::sync::Arc;

use super::{AddInstanceRequest, Error, Stadium};
use crate::model::{JobId, ResourceType, TargetId};
use crate::secret::Secret;
use crate::setup_script::{RunnerCredential, RunnerSource, SetupScriptParams};

/// Builds requests for the cases and states what the backend supports.
#[derive(Clone)]
pub struct Fixture {
    make_request: Arc<dyn Fn(&str) -> AddInstanceRequest + Send + Sync>,
    /// The backend returns the same instance for a repeated runner name.
    pub idempotent_add: bool,
    /// [`Stadium::list_instances`] works, and the fixture's instances keep running until
    /// they are deleted, so a listing right after the start finds them.
    pub lists_instances: bool,
}

impl Fixture {
    /// Creates a fixture whose requests come from `make_request`, called with a unique
    /// runner name per request.
    pub fn new(
        make_request: impl Fn(&str) -> AddInstanceRequest + Send + Sync + 'static,
        idempotent_add: bool,
    ) -> Self {
        Self {
            make_request: Arc::new(make_request),
            idempotent_add,
            lists_instances: true,
        }
    }

    /// States whether the backend lists instances (default `true`).
    pub fn with_lists_instances(mut self, lists_instances: bool) -> Self {
        self.lists_instances = lists_instances;
        self
    }

    /// Creates a fixture whose setup scripts exit at once without touching the network:
    /// they use a pre-installed runner directory that does not exist, so a backend that
    /// runs them sees a quick failure and nothing else.
    pub fn harmless(idempotent_add: bool) -> Self {
        Self::new(harmless_request, idempotent_add)
    }

    /// Returns a request for `runner_name`.
    pub fn request(&self, runner_name: &str) -> AddInstanceRequest {
        (self.make_request)(runner_name)
    }
}

impl fmt::Debug for Fixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fixture")
            .field("idempotent_add", &self.idempotent_add)
            .field("lists_instances", &self.lists_instances)
            .finish_non_exhaustive()
    }
}

/// Returns a request whose script fails at once (see [`Fixture::harmless`]).
pub fn harmless_request(runner_name: &str) -> AddInstanceRequest {
    let mut params = SetupScriptParams::new(
        "https://github.com/conformance-org",
        RunnerCredential::RegistrationToken(Secret::new("conformance-token")),
        runner_name,
    );
    params.labels = vec!["conformance".to_owned()];
    params.runner_source = RunnerSource::PreInstalled {
        path: "/nonexistent/myshoes-conformance-runner".into(),
        copy: false,
    };
    AddInstanceRequest {
        runner_name: runner_name.to_owned(),
        setup_script: params.build().expect("static parameters are valid"),
        resource_type: ResourceType::Small,
        labels: params.labels.clone(),
        target_id: TargetId::new_random(),
        job_id: JobId::new_random(),
        repository: "conformance-org/repo"
            .parse()
            .expect("static name is valid"),
        profile: "conformance".to_owned(),
        installation_id: Some(42),
    }
}

/// Returns a runner name unique to this call.
pub fn unique_runner_name() -> String {
    format!(
        "conformance-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    )
}

/// `add_instance` returns a non-empty cloud id and stadium kind, and a resource type.
pub async fn add_returns_cloud_id(stadium: &dyn Stadium, fixture: &Fixture) {
    let request = fixture.request(&unique_runner_name());
    let instance = stadium.add_instance(&request).await.expect("add_instance");
    assert!(!instance.cloud_id.is_empty(), "cloud id must not be empty");
    assert!(
        !instance.stadium.is_empty(),
        "stadium kind must not be empty"
    );
    stadium
        .delete_instance(&instance.cloud_id, &request.labels)
        .await
        .expect("delete_instance");
}

/// Requests with different runner names get different cloud ids.
pub async fn add_distinct_names_distinct_ids(stadium: &dyn Stadium, fixture: &Fixture) {
    let first = fixture.request(&unique_runner_name());
    let second = fixture.request(&unique_runner_name());
    let a = stadium.add_instance(&first).await.expect("add_instance");
    let b = stadium.add_instance(&second).await.expect("add_instance");
    assert_ne!(a.cloud_id, b.cloud_id, "two runners must get two instances");
    for (instance, request) in [(a, first), (b, second)] {
        stadium
            .delete_instance(&instance.cloud_id, &request.labels)
            .await
            .expect("delete_instance");
    }
}

/// A repeated request for one runner name returns the first instance, on backends that
/// promise it.
pub async fn add_same_name_is_idempotent(stadium: &dyn Stadium, fixture: &Fixture) {
    let name = unique_runner_name();
    let request = fixture.request(&name);
    let first = stadium.add_instance(&request).await.expect("add_instance");
    let second = stadium
        .add_instance(&request)
        .await
        .expect("second add_instance");
    if fixture.idempotent_add {
        assert_eq!(
            first.cloud_id, second.cloud_id,
            "a repeated request for one runner name must return the first instance"
        );
    }
    for instance in [first, second] {
        stadium
            .delete_instance(&instance.cloud_id, &request.labels)
            .await
            .expect("delete_instance");
    }
}

/// Deleting an instance twice, and deleting an unknown cloud id, succeed.
pub async fn delete_is_idempotent(stadium: &dyn Stadium, fixture: &Fixture) {
    let request = fixture.request(&unique_runner_name());
    let instance = stadium.add_instance(&request).await.expect("add_instance");
    stadium
        .delete_instance(&instance.cloud_id, &request.labels)
        .await
        .expect("first delete_instance");
    stadium
        .delete_instance(&instance.cloud_id, &request.labels)
        .await
        .expect("a second delete_instance must succeed");
    stadium
        .delete_instance("myshoes-conformance-unknown-instance", &[])
        .await
        .expect("deleting an unknown instance must succeed");
}

/// A started instance is listed with its runner name until it is deleted.
pub async fn list_shows_running_instance(stadium: &dyn Stadium, fixture: &Fixture) {
    if !fixture.lists_instances {
        match stadium.list_instances().await {
            Err(Error::NotSupported { .. }) => return,
            other => panic!("list_instances must return NotSupported here, got {other:?}"),
        }
    }
    let name = unique_runner_name();
    let request = fixture.request(&name);
    let instance = stadium.add_instance(&request).await.expect("add_instance");
    let listed = stadium.list_instances().await.expect("list_instances");
    let found = listed
        .iter()
        .find(|listed| listed.cloud_id == instance.cloud_id)
        .unwrap_or_else(|| panic!("a running instance must be listed; listed {listed:?}"));
    assert_eq!(
        found.runner_name.as_deref(),
        Some(name.as_str()),
        "a listed instance must carry its runner name"
    );
    stadium
        .delete_instance(&instance.cloud_id, &request.labels)
        .await
        .expect("delete_instance");
}

/// An instance whose deletion succeeded is not listed.
pub async fn list_omits_deleted_instance(stadium: &dyn Stadium, fixture: &Fixture) {
    if !fixture.lists_instances {
        return;
    }
    let request = fixture.request(&unique_runner_name());
    let instance = stadium.add_instance(&request).await.expect("add_instance");
    stadium
        .delete_instance(&instance.cloud_id, &request.labels)
        .await
        .expect("delete_instance");
    let listed = stadium.list_instances().await.expect("list_instances");
    assert!(
        listed
            .iter()
            .all(|listed| listed.cloud_id != instance.cloud_id),
        "a deleted instance must not be listed; listed {listed:?}"
    );
}

/// Expands the Stadium conformance suite into one `#[tokio::test]` per case.
///
/// `$setup` is an expression whose value is awaited per case and yields
/// `Option<(S, Fixture)>` with `S: Stadium`; `None` skips the case.
#[macro_export]
macro_rules! stadium_conformance {
    ($setup:expr $(,)?) => {
        $crate::stadium_conformance!(@cases ($setup)
            add_returns_cloud_id,
            add_distinct_names_distinct_ids,
            add_same_name_is_idempotent,
            delete_is_idempotent,
            list_shows_running_instance,
            list_omits_deleted_instance,
        );
    };
    (@cases ($setup:expr) $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $case() {
                let Some((stadium, fixture)) = $setup.await else {
                    return;
                };
                $crate::stadium::conformance::$case(&stadium, &fixture).await;
            }
        )*
    };
}

#[cfg(test)]
mod memory_conformance {
    use super::Fixture;
    use crate::stadium::MemoryStadium;

    crate::stadium_conformance!(async { Some((MemoryStadium::new(), Fixture::harmless(true))) });
}

#[cfg(test)]
mod process_conformance {
    use super::Fixture;
    use crate::secret::Secret;
    use crate::setup_script::{RunnerCredential, RunnerSource, SetupScriptParams};
    use crate::stadium::ProcessStadium;

    crate::stadium_conformance!(async {
        let base = std::env::temp_dir().join(format!(
            "myshoes-conformance-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let runner = base.join("runner");
        std::fs::create_dir_all(&runner).expect("create the stand-in runner directory");
        for (file, body) in [
            ("config.sh", "#!/usr/bin/env bash\nexit 0\n"),
            ("run.sh", "#!/usr/bin/env bash\nexec sleep 60\n"),
        ] {
            let path = runner.join(file);
            std::fs::write(&path, body).expect("write a stand-in runner script");
            let mut permissions = std::fs::metadata(&path).expect("metadata").permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
            std::fs::set_permissions(&path, permissions).expect("make the script executable");
        }
        let fixture = Fixture::new(
            move |name| {
                let mut request = super::harmless_request(name);
                let mut params = SetupScriptParams::new(
                    "https://github.com/conformance-org",
                    RunnerCredential::RegistrationToken(Secret::new("conformance-token")),
                    name,
                );
                params.labels = request.labels.clone();
                params.runner_source = RunnerSource::PreInstalled {
                    path: runner.clone(),
                    copy: false,
                };
                request.setup_script = params.build().expect("static parameters are valid");
                request
            },
            true,
        );
        Some((ProcessStadium::new(base.join("instances")), fixture))
    });
}
