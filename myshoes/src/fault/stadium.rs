//! [`FaultyStadium`]: a [`Stadium`] that fails at the calls a [`FaultPlan`] selects.

use std::fmt;

use async_trait::async_trait;

use super::plan::{apply, Fault, FaultPlan, InjectedError, Op};
use crate::stadium::{AddInstanceRequest, Error, Instance, ListedInstance, Result, Stadium};

/// A [`Stadium`] that forwards every call to `S`, except those its [`FaultPlan`] selects.
///
/// Errors it returns for each [`Fault`]:
///
/// | fault | error |
/// |---|---|
/// | retryable error | [`Error::Backend`] with `retryable: true` and an [`InjectedError`] source |
/// | permanent error | [`Error::AccessDenied`] |
/// | throttled | [`Error::Throttled`] |
/// | timed out, lost response | [`Error::TimedOut`] |
/// | capacity | [`Error::Capacity`] |
///
/// `Display` is `Faulty(<inner>)`.
pub struct FaultyStadium<S> {
    inner: S,
    plan: FaultPlan,
}

impl<S: Stadium> FaultyStadium<S> {
    /// Wraps `inner`, injecting the faults `plan` selects.
    pub fn new(inner: S, plan: FaultPlan) -> Self {
        Self { inner, plan }
    }

    /// Returns the wrapped Stadium.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Returns the plan.
    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }
}

fn to_error(injected: InjectedError) -> Error {
    let reason = injected.to_string();
    match injected.fault {
        Fault::PermanentError => Error::AccessDenied { reason },
        Fault::Throttled => Error::Throttled { reason },
        Fault::TimedOut | Fault::LostResponse | Fault::Crash => Error::TimedOut {
            operation: injected.op.name(),
        },
        Fault::Capacity => Error::Capacity { reason },
        Fault::RetryableError => Error::Backend {
            backend: "fault injection",
            operation: injected.op.name(),
            retryable: true,
            source: Box::new(injected),
        },
    }
}

impl<S: fmt::Debug> fmt::Debug for FaultyStadium<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyStadium")
            .field("inner", &self.inner)
            .field("plan", &self.plan)
            .finish()
    }
}

impl<S: fmt::Display> fmt::Display for FaultyStadium<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faulty({})", self.inner)
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<S: Stadium> Stadium for FaultyStadium<S> {
    async fn add_instance(&self, request: &AddInstanceRequest) -> Result<Instance> {
        let fault = self.plan.decide(Op::AddInstance, Some(request.job_id));
        apply(
            Op::AddInstance,
            fault,
            self.inner.add_instance(request),
            to_error,
        )
        .await
    }

    async fn delete_instance(&self, cloud_id: &str, labels: &[String]) -> Result<()> {
        let fault = self.plan.decide(Op::DeleteInstance, None);
        apply(
            Op::DeleteInstance,
            fault,
            self.inner.delete_instance(cloud_id, labels),
            to_error,
        )
        .await
    }

    async fn list_instances(&self) -> Result<Vec<ListedInstance>> {
        let fault = self.plan.decide(Op::ListInstances, None);
        apply(
            Op::ListInstances,
            fault,
            self.inner.list_instances(),
            to_error,
        )
        .await
    }
}
