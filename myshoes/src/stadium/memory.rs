//! A Stadium that records calls, for tests.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use chrono::{DateTime, Utc};

use super::{AddInstanceRequest, Error, Instance, ListedInstance, Result, Stadium};

/// A failure that [`MemoryStadium`] returns from a future `add_instance` call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScriptedFailure {
    /// [`Error::Capacity`].
    Capacity,
    /// [`Error::Throttled`].
    Throttled,
    /// [`Error::TimedOut`].
    TimedOut,
    /// [`Error::InvalidRequest`].
    InvalidRequest,
    /// [`Error::AccessDenied`].
    AccessDenied,
}

impl ScriptedFailure {
    fn to_error(&self) -> Error {
        let reason = "scripted failure of MemoryStadium".to_owned();
        match self {
            ScriptedFailure::Capacity => Error::Capacity { reason },
            ScriptedFailure::Throttled => Error::Throttled { reason },
            ScriptedFailure::TimedOut => Error::TimedOut {
                operation: "add_instance",
            },
            ScriptedFailure::InvalidRequest => Error::InvalidRequest { reason },
            ScriptedFailure::AccessDenied => Error::AccessDenied { reason },
        }
    }
}

/// A Stadium that starts nothing: it records every call, keeps the "running" instances in
/// memory and returns scripted failures. For tests of code that uses a Stadium.
///
/// `add_instance` is idempotent per runner name: a second request for a name it launched
/// returns the first instance. Clones share one state.
#[derive(Clone, Default)]
pub struct MemoryStadium {
    inner: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    running: HashMap<String, (Instance, AddInstanceRequest)>,
    started_at: HashMap<String, DateTime<Utc>>,
    by_runner_name: HashMap<String, String>,
    add_calls: Vec<AddInstanceRequest>,
    delete_calls: Vec<String>,
    failures: VecDeque<ScriptedFailure>,
    /// Whether calls are kept for [`MemoryStadium::add_calls`] and
    /// [`MemoryStadium::delete_calls`].
    skip_call_log: bool,
}

impl MemoryStadium {
    /// Creates an empty Stadium.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates an empty Stadium that keeps no call log, so its memory stays bounded by the
    /// running instances; for long benchmarks. [`MemoryStadium::add_calls`] and
    /// [`MemoryStadium::delete_calls`] then return empty lists.
    pub fn without_call_log() -> Self {
        let stadium = Self::default();
        stadium.state().skip_call_log = true;
        stadium
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes the next `add_instance` calls fail, one queued failure per call, before any
    /// other check.
    pub fn push_failure(&self, failure: ScriptedFailure) {
        self.state().failures.push_back(failure);
    }

    /// Returns every `add_instance` request received, failed ones included, in order.
    pub fn add_calls(&self) -> Vec<AddInstanceRequest> {
        self.state().add_calls.clone()
    }

    /// Returns the cloud id of every `delete_instance` call, in order.
    pub fn delete_calls(&self) -> Vec<String> {
        self.state().delete_calls.clone()
    }

    /// Ends an instance as if its runner exited by itself after its job: it is no longer
    /// listed or running, and no `delete_instance` call is recorded.
    pub fn finish(&self, cloud_id: &str) {
        self.state().forget(cloud_id);
    }

    /// Returns the instances started and not deleted, with the request that started each.
    pub fn running(&self) -> Vec<(Instance, AddInstanceRequest)> {
        let mut running: Vec<_> = self.state().running.values().cloned().collect();
        running.sort_by(|a, b| a.0.cloud_id.cmp(&b.0.cloud_id));
        running
    }
}

impl State {
    /// Removes an instance and its runner name.
    fn forget(&mut self, cloud_id: &str) {
        if let Some((_, request)) = self.running.remove(cloud_id) {
            if self
                .by_runner_name
                .get(&request.runner_name)
                .map(String::as_str)
                == Some(cloud_id)
            {
                self.by_runner_name.remove(&request.runner_name);
            }
        }
        self.started_at.remove(cloud_id);
    }
}

impl fmt::Debug for MemoryStadium {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("MemoryStadium")
            .field("running", &state.running.len())
            .field("add_calls", &state.add_calls.len())
            .field("delete_calls", &state.delete_calls.len())
            .finish()
    }
}

impl fmt::Display for MemoryStadium {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MemoryStadium")
    }
}

#[async_trait]
impl Stadium for MemoryStadium {
    async fn add_instance(&self, request: &AddInstanceRequest) -> Result<Instance> {
        let mut state = self.state();
        if !state.skip_call_log {
            state.add_calls.push(request.clone());
        }
        if let Some(failure) = state.failures.pop_front() {
            return Err(failure.to_error());
        }
        if let Some(cloud_id) = state.by_runner_name.get(&request.runner_name) {
            if let Some((instance, _)) = state.running.get(cloud_id) {
                return Ok(instance.clone());
            }
        }
        state.next_id += 1;
        let instance = Instance {
            cloud_id: format!("memory-{}", state.next_id),
            stadium: "memory".to_owned(),
            address: None,
            resource_type: request.resource_type,
        };
        state
            .by_runner_name
            .insert(request.runner_name.clone(), instance.cloud_id.clone());
        state.running.insert(
            instance.cloud_id.clone(),
            (instance.clone(), request.clone()),
        );
        state
            .started_at
            .insert(instance.cloud_id.clone(), Utc::now());
        Ok(instance)
    }

    async fn delete_instance(&self, cloud_id: &str, _labels: &[String]) -> Result<()> {
        let mut state = self.state();
        if !state.skip_call_log {
            state.delete_calls.push(cloud_id.to_owned());
        }
        state.forget(cloud_id);
        Ok(())
    }

    async fn list_instances(&self) -> Result<Vec<ListedInstance>> {
        let state = self.state();
        let mut listed: Vec<ListedInstance> = state
            .running
            .iter()
            .map(|(cloud_id, (_, request))| ListedInstance {
                cloud_id: cloud_id.clone(),
                runner_name: Some(request.runner_name.clone()),
                job_id: Some(request.job_id),
                target_id: Some(request.target_id),
                installation_id: request.installation_id,
                profile: Some(request.profile.clone()),
                labels: request.labels.clone(),
                started_at: state.started_at.get(cloud_id).copied(),
            })
            .collect();
        listed.sort_by(|a, b| a.cloud_id.cmp(&b.cloud_id));
        Ok(listed)
    }
}
