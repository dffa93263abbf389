//! The sweeper's decision about each runner.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::model::{JobId, Runner, RunnerId, TargetId};
use crate::stadium::ListedInstance;

/// Whether a runner stays or goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SweepAction {
    /// The runner and its instance stay.
    Keep,
    /// The runner was deregistered, its instance stopped and its record marked deleted.
    Delete,
}

impl SweepAction {
    /// Returns `keep` or `delete`, the `action` label of the sweeper metrics.
    pub fn label(self) -> &'static str {
        match self {
            SweepAction::Keep => "keep",
            SweepAction::Delete => "delete",
        }
    }
}

/// Reason the sweeper kept or deleted a runner.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SweepReason {
    /// GitHub reports the runner busy.
    Busy,
    /// GitHub reports the runner busy although its instance is gone; kept until GitHub
    /// stops reporting it busy or the maximum lifetime passes.
    BusyWithoutInstance,
    /// An `in_progress` webhook named the runner, and no `completed` followed.
    ActiveJobEvidence,
    /// Within the boot grace: not registered yet, or offline while it starts.
    Booting,
    /// Idle, but younger than the minimum idle lifetime.
    IdleTooShort,
    /// Idle past the minimum idle lifetime.
    Idle,
    /// Idle when judged, busy when read again after deregistration; its instance stays.
    TurnedBusy,
    /// Registered and offline past the boot grace.
    Offline,
    /// Not registered by the end of the boot grace.
    NeverRegistered,
    /// Registered once, and GitHub returns not found for its id: an ephemeral runner after
    /// its job.
    GoneFromGitHub,
    /// The Stadium no longer lists the instance.
    InstanceGone,
    /// Older than the maximum lifetime.
    MaxLifetime,
    /// An instance with this deployment's runner name prefix and no runner record.
    NoRecord,
    /// An instance whose runner name is missing or has another prefix: not ours.
    ForeignInstance,
    /// GitHub's view could not be read; nothing is deleted on a guess.
    GitHubUnknown(String),
}

impl SweepReason {
    /// Returns a short snake_case name, the `reason` label of the sweeper metrics.
    pub fn label(&self) -> &'static str {
        match self {
            SweepReason::Busy => "busy",
            SweepReason::BusyWithoutInstance => "busy_without_instance",
            SweepReason::ActiveJobEvidence => "active_job_evidence",
            SweepReason::Booting => "booting",
            SweepReason::IdleTooShort => "idle_too_short",
            SweepReason::Idle => "idle",
            SweepReason::TurnedBusy => "turned_busy",
            SweepReason::Offline => "offline",
            SweepReason::NeverRegistered => "never_registered",
            SweepReason::GoneFromGitHub => "gone_from_github",
            SweepReason::InstanceGone => "instance_gone",
            SweepReason::MaxLifetime => "max_lifetime",
            SweepReason::NoRecord => "no_record",
            SweepReason::ForeignInstance => "foreign_instance",
            SweepReason::GitHubUnknown(_) => "github_unknown",
        }
    }
}

impl fmt::Display for SweepReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SweepReason::Busy => f.write_str("GitHub reports the runner busy"),
            SweepReason::BusyWithoutInstance => {
                f.write_str("the instance is gone but GitHub still reports the runner busy")
            }
            SweepReason::ActiveJobEvidence => {
                f.write_str("an in_progress webhook named the runner and no completed followed")
            }
            SweepReason::Booting => f.write_str("within the boot grace"),
            SweepReason::IdleTooShort => {
                f.write_str("idle, but younger than the minimum idle lifetime")
            }
            SweepReason::Idle => f.write_str("idle past the minimum idle lifetime"),
            SweepReason::TurnedBusy => f.write_str("the runner turned busy during deregistration"),
            SweepReason::Offline => f.write_str("offline past the boot grace"),
            SweepReason::NeverRegistered => {
                f.write_str("never registered with GitHub within the boot grace")
            }
            SweepReason::GoneFromGitHub => f.write_str("GitHub no longer has the runner"),
            SweepReason::InstanceGone => f.write_str("the Stadium no longer lists the instance"),
            SweepReason::MaxLifetime => f.write_str("older than the maximum lifetime"),
            SweepReason::NoRecord => f.write_str("an instance without a runner record"),
            SweepReason::ForeignInstance => {
                f.write_str("an instance without this deployment's runner name prefix")
            }
            SweepReason::GitHubUnknown(why) => write!(f, "GitHub's view is unknown: {why}"),
        }
    }
}

/// Subject of one judgement: a runner record with its instance, or an instance without a
/// record.
#[derive(Debug, Clone)]
pub(super) struct Subject {
    pub(super) record: Option<Runner>,
    pub(super) runner_name: Option<String>,
    pub(super) cloud_id: String,
    pub(super) target_id: Option<TargetId>,
    pub(super) installation_id: Option<u64>,
    pub(super) github_runner_id: Option<u64>,
    pub(super) profile: Option<String>,
    pub(super) job_id: Option<JobId>,
    /// Launch time: the record's creation, or the instance's start (or first sighting).
    pub(super) started: DateTime<Utc>,
    /// Whether the Stadium lists the instance; `None` when it cannot list.
    pub(super) instance_alive: Option<bool>,
    pub(super) labels: Vec<String>,
}

impl Subject {
    pub(super) fn from_record(record: &Runner, instance_alive: Option<bool>) -> Self {
        Self {
            record: Some(record.clone()),
            runner_name: Some(record.name.clone()),
            cloud_id: record.cloud_id.clone(),
            target_id: Some(record.target_id),
            installation_id: record.installation_id,
            github_runner_id: record.github_runner_id,
            profile: (!record.profile.is_empty()).then(|| record.profile.clone()),
            job_id: Some(record.job_id),
            started: record.created_at,
            instance_alive,
            labels: record.labels.clone(),
        }
    }

    pub(super) fn from_instance(instance: &ListedInstance, started: DateTime<Utc>) -> Self {
        Self {
            record: None,
            runner_name: instance.runner_name.clone(),
            cloud_id: instance.cloud_id.clone(),
            target_id: instance.target_id,
            installation_id: instance.installation_id,
            github_runner_id: None,
            profile: instance.profile.clone(),
            job_id: instance.job_id,
            started,
            instance_alive: Some(true),
            labels: instance.labels.clone(),
        }
    }
}

/// The sweeper's decision about one runner record or instance.
#[derive(Debug, Clone)]
pub struct SweepDecision {
    /// Id of the runner record; `None` for an instance without one.
    pub runner_id: Option<RunnerId>,
    /// Runner name, when known.
    pub runner_name: Option<String>,
    /// The Stadium's id of the instance.
    pub cloud_id: String,
    /// GitHub's runner id, when the runner is registered.
    pub github_runner_id: Option<u64>,
    /// Keep or delete.
    pub action: SweepAction,
    /// Why.
    pub reason: SweepReason,
    pub(super) subject: Subject,
    pub(super) github_busy: bool,
    pub(super) github_registered: bool,
}

impl SweepDecision {
    pub(super) fn new(subject: Subject) -> Self {
        Self {
            runner_id: subject.record.as_ref().map(|record| record.id),
            runner_name: subject.runner_name.clone(),
            cloud_id: subject.cloud_id.clone(),
            github_runner_id: subject.github_runner_id,
            action: SweepAction::Keep,
            reason: SweepReason::Booting,
            subject,
            github_busy: false,
            github_registered: false,
        }
    }

    pub(super) fn keep(mut self, reason: SweepReason) -> Self {
        self.action = SweepAction::Keep;
        self.reason = reason;
        self
    }

    pub(super) fn delete(mut self, reason: SweepReason) -> Self {
        self.action = SweepAction::Delete;
        self.reason = reason;
        self
    }
}

/// Everything one sweep pass decided.
#[derive(Debug, Clone, Default)]
pub struct SweepReport {
    /// Decisions that were carried out, in the order they were made.
    pub decisions: Vec<SweepDecision>,
    /// Deletions that failed part way, with the error; they are tried again next pass.
    pub failures: Vec<(SweepDecision, String)>,
    /// Why the Stadium's instances could not be listed, when they could not; the pass then
    /// judged the records without that view and left unrecorded instances alone.
    pub instance_listing_error: Option<String>,
}

impl SweepReport {
    /// Returns how many runners were kept.
    pub fn kept(&self) -> usize {
        self.count(SweepAction::Keep)
    }

    /// Returns how many runners were deleted.
    pub fn deleted(&self) -> usize {
        self.count(SweepAction::Delete)
    }

    fn count(&self, action: SweepAction) -> usize {
        self.decisions
            .iter()
            .filter(|decision| decision.action == action)
            .count()
    }

    /// Returns the decision about the record `runner_id`, if the pass made one.
    pub fn for_runner(&self, runner_id: RunnerId) -> Option<&SweepDecision> {
        self.decisions
            .iter()
            .chain(self.failures.iter().map(|(decision, _)| decision))
            .find(|decision| decision.runner_id == Some(runner_id))
    }

    /// Returns the decision about the instance `cloud_id`, if the pass made one.
    pub fn for_instance(&self, cloud_id: &str) -> Option<&SweepDecision> {
        self.decisions
            .iter()
            .chain(self.failures.iter().map(|(decision, _)| decision))
            .find(|decision| decision.cloud_id == cloud_id)
    }
}
