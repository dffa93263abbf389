//! Fault plans for the decorators: [`FaultPlan`], [`FaultRule`] and [`Fault`].

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::model::JobId;

/// A failure to inject in place of a call's normal result. See the [module docs](super)
/// for what each one models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// The call is not made; the caller gets a retryable error.
    RetryableError,
    /// The call is not made; the caller gets a permanent error.
    PermanentError,
    /// The call is not made; the caller gets a rate-limit error, which is retryable.
    Throttled,
    /// The call is not made; the caller gets a timed-out error, which is retryable.
    TimedOut,
    /// The call is not made; the caller gets the backend's "no room" error.
    Capacity,
    /// The call is made and takes effect; its result is dropped and the caller gets a
    /// timed-out error, which is retryable.
    LostResponse,
    /// The call is made and takes effect; then the calling task unwinds with an
    /// [`InjectedCrash`] payload.
    Crash,
}

impl Fault {
    /// Every fault, in the order of the module docs' table.
    pub const ALL: [Fault; 7] = [
        Fault::RetryableError,
        Fault::PermanentError,
        Fault::Throttled,
        Fault::TimedOut,
        Fault::Capacity,
        Fault::LostResponse,
        Fault::Crash,
    ];

    /// Returns a short name, such as `lost-response`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::RetryableError => "retryable-error",
            Fault::PermanentError => "permanent-error",
            Fault::Throttled => "throttled",
            Fault::TimedOut => "timed-out",
            Fault::Capacity => "capacity",
            Fault::LostResponse => "lost-response",
            Fault::Crash => "crash",
        }
    }

    /// Returns whether the wrapped call runs before the fault shows.
    pub fn runs_call(self) -> bool {
        matches!(self, Fault::LostResponse | Fault::Crash)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A method of a wrapped trait: the place a fault is injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
#[allow(missing_docs)] // Each variant is the trait method of the same name.
pub enum Op {
    // Datastore.
    CreateTarget,
    GetTarget,
    GetTargetByScope,
    ListTargets,
    DeleteTarget,
    UpdateTargetStatus,
    UpdateTargetResourceType,
    EnqueueJob,
    ReceiveJobs,
    ListJobs,
    DeleteJob,
    RetryJob,
    DeferJob,
    CreateRunner,
    GetRunner,
    ListRunners,
    ListRunnersByTarget,
    DeleteRunner,
    AcquireLock,
    LockHolder,
    ReleaseLock,
    ClaimLaunch,
    CompleteLaunch,
    ReleaseLaunch,
    SetRunnerGithubId,
    DeadLetterJob,
    ListDeadLetters,
    AcquireSlot,
    ReleaseSlot,
    CountSlots,
    // Stadium.
    AddInstance,
    DeleteInstance,
    ListInstances,
    // RunnerCredentials.
    RunnerCredential,
    // GitHubApi.
    GitHubJobStatus,
    GitHubCreateRunnerCredential,
    GitHubListRunners,
    GitHubGetRunner,
    GitHubDeleteRunner,
}

impl Op {
    /// Returns the trait method's name, prefixed with `github.` for [`GitHubApi`](crate::github::GitHubApi)
    /// methods.
    pub fn name(self) -> &'static str {
        match self {
            Op::CreateTarget => "create_target",
            Op::GetTarget => "get_target",
            Op::GetTargetByScope => "get_target_by_scope",
            Op::ListTargets => "list_targets",
            Op::DeleteTarget => "delete_target",
            Op::UpdateTargetStatus => "update_target_status",
            Op::UpdateTargetResourceType => "update_target_resource_type",
            Op::EnqueueJob => "enqueue_job",
            Op::ReceiveJobs => "receive_jobs",
            Op::ListJobs => "list_jobs",
            Op::DeleteJob => "delete_job",
            Op::RetryJob => "retry_job",
            Op::DeferJob => "defer_job",
            Op::CreateRunner => "create_runner",
            Op::GetRunner => "get_runner",
            Op::ListRunners => "list_runners",
            Op::ListRunnersByTarget => "list_runners_by_target",
            Op::DeleteRunner => "delete_runner",
            Op::AcquireLock => "acquire_lock",
            Op::LockHolder => "lock_holder",
            Op::ReleaseLock => "release_lock",
            Op::ClaimLaunch => "claim_launch",
            Op::CompleteLaunch => "complete_launch",
            Op::ReleaseLaunch => "release_launch",
            Op::SetRunnerGithubId => "set_runner_github_id",
            Op::DeadLetterJob => "dead_letter_job",
            Op::ListDeadLetters => "list_dead_letters",
            Op::AcquireSlot => "acquire_slot",
            Op::ReleaseSlot => "release_slot",
            Op::CountSlots => "count_slots",
            Op::AddInstance => "add_instance",
            Op::DeleteInstance => "delete_instance",
            Op::ListInstances => "list_instances",
            Op::RunnerCredential => "runner_credential",
            Op::GitHubJobStatus => "github.job_status",
            Op::GitHubCreateRunnerCredential => "github.create_runner_credential",
            Op::GitHubListRunners => "github.list_runners",
            Op::GitHubGetRunner => "github.get_runner",
            Op::GitHubDeleteRunner => "github.delete_runner",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One call, as a [`FaultRule`] matches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallInfo {
    /// The method called.
    pub op: Op,
    /// Number of this call among the calls of `op` through the plan, starting at 1.
    pub call: u64,
    /// Job the call is about, when its arguments name one: the job id of a launch claim,
    /// an acknowledgement handle, a runner record, an instance request or a credential
    /// request.
    pub job_id: Option<JobId>,
}

type Predicate = Arc<dyn Fn(&CallInfo) -> bool + Send + Sync>;

/// A fault for the calls of one method that a condition selects.
#[derive(Clone)]
pub struct FaultRule {
    op: Op,
    fault: Fault,
    predicate: Predicate,
}

impl FaultRule {
    /// Injects `fault` at every call of `op`; narrow it with [`FaultRule::on_call`] or
    /// [`FaultRule::when`].
    pub fn new(op: Op, fault: Fault) -> Self {
        Self {
            op,
            fault,
            predicate: Arc::new(|_| true),
        }
    }

    /// Limits the rule to call number `call` of its method (1 for the first call).
    pub fn on_call(self, call: u64) -> Self {
        self.when(move |info| info.call == call)
    }

    /// Limits the rule to the calls for which `predicate` returns `true`.
    pub fn when(mut self, predicate: impl Fn(&CallInfo) -> bool + Send + Sync + 'static) -> Self {
        self.predicate = Arc::new(predicate);
        self
    }

    /// Returns the method the rule applies to.
    pub fn op(&self) -> Op {
        self.op
    }

    /// Returns the fault the rule injects.
    pub fn fault(&self) -> Fault {
        self.fault
    }
}

impl fmt::Debug for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultRule")
            .field("op", &self.op)
            .field("fault", &self.fault)
            .finish_non_exhaustive()
    }
}

/// A fault that was injected, with the call it replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injection {
    /// The call.
    pub call: CallInfo,
    /// The fault injected at it.
    pub fault: Fault,
}

/// The rules that decide which calls fail, shared by the decorators it is given to.
///
/// Rules are checked in the order they were added, and the first one whose method and
/// condition match the call decides its fault. Call numbers count every call of a method
/// through any decorator holding this plan (or a clone of it), faulted or not.
#[derive(Clone, Default)]
pub struct FaultPlan {
    inner: Arc<Mutex<PlanState>>,
}

#[derive(Default)]
struct PlanState {
    rules: Vec<FaultRule>,
    calls: HashMap<Op, u64>,
    injected: Vec<Injection>,
}

impl FaultPlan {
    /// Creates a plan without rules: every call passes through.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule after the existing ones.
    pub fn with_rule(self, rule: FaultRule) -> Self {
        self.add_rule(rule);
        self
    }

    /// Adds a rule after the existing ones, also while decorators use the plan.
    pub fn add_rule(&self, rule: FaultRule) {
        self.state().rules.push(rule);
    }

    /// Returns how many calls of `op` went through the plan.
    pub fn calls(&self, op: Op) -> u64 {
        self.state().calls.get(&op).copied().unwrap_or(0)
    }

    /// Returns every fault injected so far, in order.
    pub fn injected(&self) -> Vec<Injection> {
        self.state().injected.clone()
    }

    fn state(&self) -> MutexGuard<'_, PlanState> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a call of `op` and returns the fault to inject in it, if any.
    pub(super) fn decide(&self, op: Op, job_id: Option<JobId>) -> Option<Fault> {
        let mut state = self.state();
        let count = state.calls.entry(op).or_insert(0);
        *count += 1;
        let info = CallInfo {
            op,
            call: *count,
            job_id,
        };
        let fault = state
            .rules
            .iter()
            .find(|rule| rule.op == op && (rule.predicate)(&info))
            .map(|rule| rule.fault)?;
        state.injected.push(Injection { call: info, fault });
        Some(fault)
    }
}

impl fmt::Debug for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("FaultPlan")
            .field("rules", &state.rules)
            .field("injected", &state.injected.len())
            .finish()
    }
}

/// The source error of an injected failure, so logs and error chains show that the
/// failure was injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("injected fault {fault} at {op}")]
pub struct InjectedError {
    /// The method the fault replaced.
    pub op: Op,
    /// The fault.
    pub fault: Fault,
}

/// The panic payload of [`Fault::Crash`]. Find it in a task's
/// [`JoinError`](tokio::task::JoinError) with [`InjectedCrash::from_panic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InjectedCrash {
    /// The method after which the task stopped.
    pub op: Op,
}

impl InjectedCrash {
    /// Returns the crash a panic payload carries, or `None` for any other panic.
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> Option<&InjectedCrash> {
        payload.downcast_ref::<InjectedCrash>()
    }
}

/// Runs `call` under `fault`: passes it through when there is no fault, skips it for faults
/// that replace the call, and runs it first for faults that follow it. `to_error` builds
/// the error returned to the caller.
pub(super) async fn apply<T, E>(
    op: Op,
    fault: Option<Fault>,
    call: impl Future<Output = Result<T, E>>,
    to_error: impl FnOnce(InjectedError) -> E,
) -> Result<T, E> {
    let Some(fault) = fault else {
        return call.await;
    };
    if fault.runs_call() {
        // The result is discarded on purpose: the side effect happened, the caller never
        // learns of it.
        let _ = call.await;
        if fault == Fault::Crash {
            std::panic::resume_unwind(Box::new(InjectedCrash { op }));
        }
    }
    Err(to_error(InjectedError { op, fault }))
}
