//! Runner profiles and GitHub's label matching rules.
//!
//! A [`RunnerProfile`] is one kind of runner a deployment offers: the labels it registers
//! with and the size it runs on. A job is matched to profiles the way GitHub matches it to
//! runners: a runner accepts a job when every `runs-on` label of the job is among the
//! runner's labels, compared case-insensitively. Every self-hosted runner carries the
//! `self-hosted` label, so every profile carries it implicitly. A job with no labels never
//! matches.
//!
//! This module is pure: it takes values and returns values.

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::model::ResourceType;

/// Label that GitHub gives every self-hosted runner.
pub const SELF_HOSTED_LABEL: &str = "self-hosted";

/// How a job's labels are compared with a profile's labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelMatchMode {
    /// GitHub's rule: every job label is among the profile's labels (plus `self-hosted`).
    #[default]
    Subset,
    /// Opt-in strict rule: the job's labels and the profile's labels are the same set.
    /// `self-hosted` is ignored on both sides, because a job may omit it.
    Exact,
}

/// One kind of runner a deployment offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerProfile {
    /// Name shown in logs and decisions, such as `linux-large`.
    pub name: String,
    /// Labels the runner registers with, in addition to the implicit `self-hosted`.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Size of runners of this profile; `unknown` means the target's resource type.
    #[serde(default)]
    pub resource_type: ResourceType,
    /// Order of matching: profiles with a higher priority are tried first, and profiles with
    /// equal priority in the order they were given.
    #[serde(default)]
    pub priority: i32,
    /// Maximum number of runners of this profile at once; `None` for no limit. A launch
    /// over the limit waits in the queue until a runner of the profile is swept.
    #[serde(default)]
    pub max_runners: Option<u32>,
}

impl RunnerProfile {
    /// Creates a profile with priority 0 and the target's resource type.
    pub fn new<I, S>(name: impl Into<String>, labels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            name: name.into(),
            labels: labels.into_iter().map(Into::into).collect(),
            resource_type: ResourceType::Unknown,
            priority: 0,
            max_runners: None,
        }
    }

    /// Sets the maximum number of runners of this profile at once.
    pub fn with_max_runners(mut self, max_runners: u32) -> Self {
        self.max_runners = Some(max_runners);
        self
    }

    /// Sets the resource type.
    pub fn with_resource_type(mut self, resource_type: ResourceType) -> Self {
        self.resource_type = resource_type;
        self
    }

    /// Sets the priority.
    pub fn with_priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Returns whether this profile accepts a job with `job_labels` under `mode`.
    pub fn accepts<S: AsRef<str>>(&self, job_labels: &[S], mode: LabelMatchMode) -> bool {
        labels_match(&self.labels, job_labels, mode)
    }
}

/// Lower-cases a label, borrowing it when lower-casing changes nothing.
fn fold(label: &str) -> Cow<'_, str> {
    let unchanged = label.chars().all(|c| {
        let mut lower = c.to_lowercase();
        lower.next() == Some(c) && lower.next().is_none()
    });
    if unchanged {
        Cow::Borrowed(label)
    } else {
        Cow::Owned(label.to_lowercase())
    }
}

/// Returns a runner's labels lower-cased, without `self-hosted` (which every runner has).
fn runner_label_set<S: AsRef<str>>(labels: &[S]) -> BTreeSet<String> {
    labels
        .iter()
        .map(|label| fold(label.as_ref()).into_owned())
        .filter(|label| label != SELF_HOSTED_LABEL)
        .collect()
}

/// A job's labels, lower-cased and deduplicated, without `self-hosted`; `None` for a job
/// with no labels, which no runner accepts.
fn job_label_set<S: AsRef<str>>(labels: &[S]) -> Option<Vec<Cow<'_, str>>> {
    if labels.is_empty() {
        return None;
    }
    let mut folded: Vec<Cow<'_, str>> = labels
        .iter()
        .map(|label| fold(label.as_ref()))
        .filter(|label| label != SELF_HOSTED_LABEL)
        .collect();
    folded.sort_unstable();
    folded.dedup();
    Some(folded)
}

fn sets_match(runner: &BTreeSet<String>, job: &[Cow<'_, str>], mode: LabelMatchMode) -> bool {
    let all_present = job.iter().all(|label| runner.contains(label.as_ref()));
    match mode {
        LabelMatchMode::Subset => all_present,
        LabelMatchMode::Exact => all_present && job.len() == runner.len(),
    }
}

/// Returns whether a runner with `runner_labels` (plus the implicit `self-hosted`) accepts a
/// job with `job_labels` under `mode`. An empty `job_labels` never matches.
pub fn labels_match<R: AsRef<str>, J: AsRef<str>>(
    runner_labels: &[R],
    job_labels: &[J],
    mode: LabelMatchMode,
) -> bool {
    match job_label_set(job_labels) {
        Some(job) => sets_match(&runner_label_set(runner_labels), &job, mode),
        None => false,
    }
}

/// Error returned when a set of runner profiles is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// Two profiles share a name.
    #[error("duplicate runner profile name {name:?}: give every profile a unique name")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// A profile has an empty name.
    #[error("a runner profile has an empty name: every profile needs a name")]
    EmptyName,
    /// A profile has an empty or blank label.
    #[error("runner profile {name:?} has an empty label: remove it or give it text")]
    EmptyLabel {
        /// Name of the profile.
        name: String,
    },
    /// A profile label contains a comma or a control character, which the runner's
    /// `config.sh --labels` cannot register.
    #[error("runner profile {name:?} has label {label:?}, which contains a comma or a control character: runners cannot register such a label")]
    InvalidLabel {
        /// Name of the profile.
        name: String,
        /// The label.
        label: String,
    },
    /// A profile allows zero runners, so its jobs would wait forever.
    #[error("runner profile {name:?} has max_runners = 0, so its jobs would wait forever: raise it, or remove the profile")]
    ZeroMaxRunners {
        /// Name of the profile.
        name: String,
    },
}

/// Runner profiles in matching order, with the label match mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profiles {
    profiles: Vec<RunnerProfile>,
    /// Each profile's label set as [`runner_label_set`] builds it, computed once.
    label_sets: Vec<BTreeSet<String>>,
    mode: LabelMatchMode,
}

impl Profiles {
    /// Validates `profiles` and orders them by descending priority (stable for equal ones).
    pub fn new(profiles: Vec<RunnerProfile>, mode: LabelMatchMode) -> Result<Self, ProfileError> {
        let mut names = BTreeSet::new();
        for profile in &profiles {
            if profile.name.trim().is_empty() {
                return Err(ProfileError::EmptyName);
            }
            if !names.insert(profile.name.as_str()) {
                return Err(ProfileError::DuplicateName {
                    name: profile.name.clone(),
                });
            }
            if profile.labels.iter().any(|label| label.trim().is_empty()) {
                return Err(ProfileError::EmptyLabel {
                    name: profile.name.clone(),
                });
            }
            if profile.max_runners == Some(0) {
                return Err(ProfileError::ZeroMaxRunners {
                    name: profile.name.clone(),
                });
            }
            if let Some(label) = profile
                .labels
                .iter()
                .find(|label| label.contains(',') || label.chars().any(char::is_control))
            {
                return Err(ProfileError::InvalidLabel {
                    name: profile.name.clone(),
                    label: label.clone(),
                });
            }
        }
        let mut profiles = profiles;
        profiles.sort_by_key(|profile| std::cmp::Reverse(profile.priority));
        let label_sets = profiles
            .iter()
            .map(|profile| runner_label_set(&profile.labels))
            .collect();
        Ok(Self {
            profiles,
            label_sets,
            mode,
        })
    }

    /// Returns the first profile, in priority order, that accepts `job_labels`.
    pub fn choose<S: AsRef<str>>(&self, job_labels: &[S]) -> Option<&RunnerProfile> {
        let job = job_label_set(job_labels)?;
        self.profiles
            .iter()
            .zip(&self.label_sets)
            .find(|(_, labels)| sets_match(labels, &job, self.mode))
            .map(|(profile, _)| profile)
    }

    /// Returns the profile named `name`.
    pub fn get(&self, name: &str) -> Option<&RunnerProfile> {
        self.profiles.iter().find(|profile| profile.name == name)
    }

    /// Returns the profiles in matching order.
    pub fn iter(&self) -> impl Iterator<Item = &RunnerProfile> {
        self.profiles.iter()
    }

    /// Returns the label match mode.
    pub fn mode(&self) -> LabelMatchMode {
        self.mode
    }

    /// Returns whether there are no profiles.
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(labels: &[&str]) -> RunnerProfile {
        RunnerProfile::new("p", labels.iter().copied())
    }

    #[test]
    fn label_case_is_ignored() {
        assert!(profile(&["self-hosted", "Linux"])
            .accepts(&["self-hosted", "linux"], LabelMatchMode::Subset));
        assert!(profile(&["LINUX"]).accepts(&["Self-Hosted", "linux"], LabelMatchMode::Subset));
    }

    #[test]
    fn non_ascii_case_is_ignored() {
        assert!(profile(&["GPU-Ärger", "ǅ"]).accepts(&["gpu-ärger", "ǆ"], LabelMatchMode::Subset));
        assert!(profile(&["gpu-ärger"]).accepts(&["GPU-ÄRGER"], LabelMatchMode::Exact));
    }

    #[test]
    fn missing_label_does_not_match() {
        assert!(
            !profile(&["linux", "x64"]).accepts(&["self-hosted", "gpu"], LabelMatchMode::Subset)
        );
    }

    #[test]
    fn extra_job_label_never_matches() {
        let linux = profile(&["linux", "x64"]);
        assert!(linux.accepts(&["self-hosted", "linux"], LabelMatchMode::Subset));
        assert!(!linux.accepts(
            &["self-hosted", "linux", "x64", "gpu"],
            LabelMatchMode::Subset
        ));
        assert!(!linux.accepts(&["linux", "x64", "gpu"], LabelMatchMode::Exact));
    }

    #[test]
    fn single_custom_label_matches() {
        assert!(profile(&["dependabot"]).accepts(&["dependabot"], LabelMatchMode::Subset));
        assert!(profile(&["dependabot"]).accepts(&["dependabot"], LabelMatchMode::Exact));
    }

    #[test]
    fn empty_job_labels_never_match() {
        let empty: [&str; 0] = [];
        assert!(!profile(&["linux"]).accepts(&empty, LabelMatchMode::Subset));
        assert!(!profile(&[]).accepts(&empty, LabelMatchMode::Subset));
        assert!(!profile(&[]).accepts(&empty, LabelMatchMode::Exact));
    }

    #[test]
    fn self_hosted_alone_matches_any_profile() {
        assert!(profile(&["linux", "gpu"]).accepts(&["self-hosted"], LabelMatchMode::Subset));
        assert!(!profile(&["linux"]).accepts(&["self-hosted"], LabelMatchMode::Exact));
        assert!(profile(&[]).accepts(&["self-hosted"], LabelMatchMode::Exact));
    }

    #[test]
    fn exact_mode_requires_equal_sets() {
        let linux = profile(&["linux", "x64"]);
        assert!(linux.accepts(&["self-hosted", "x64", "LINUX"], LabelMatchMode::Exact));
        assert!(linux.accepts(&["linux", "x64"], LabelMatchMode::Exact));
        assert!(!linux.accepts(&["self-hosted", "linux"], LabelMatchMode::Exact));
    }

    #[test]
    fn hosted_runner_labels_do_not_match() {
        assert!(!profile(&["linux", "x64"]).accepts(&["ubuntu-latest"], LabelMatchMode::Subset));
    }

    #[test]
    fn choose_prefers_higher_priority() {
        let profiles = Profiles::new(
            vec![
                RunnerProfile::new("small", ["linux"]),
                RunnerProfile::new("large", ["linux"])
                    .with_priority(10)
                    .with_resource_type(ResourceType::Large),
                RunnerProfile::new("gpu", ["linux", "gpu"]).with_priority(5),
            ],
            LabelMatchMode::Subset,
        )
        .unwrap();
        assert_eq!(
            profiles.choose(&["self-hosted", "linux"]).unwrap().name,
            "large"
        );
        assert_eq!(profiles.choose(&["linux", "gpu"]).unwrap().name, "gpu");
        assert!(profiles.choose(&["windows"]).is_none());
    }

    #[test]
    fn choose_keeps_order_for_equal_priority() {
        let profiles = Profiles::new(
            vec![
                RunnerProfile::new("first", ["linux"]),
                RunnerProfile::new("second", ["linux"]),
            ],
            LabelMatchMode::Subset,
        )
        .unwrap();
        assert_eq!(profiles.choose(&["linux"]).unwrap().name, "first");
    }

    #[test]
    fn profiles_reject_invalid_sets() {
        let duplicate = Profiles::new(
            vec![
                RunnerProfile::new("a", ["x"]),
                RunnerProfile::new("a", ["y"]),
            ],
            LabelMatchMode::Subset,
        );
        assert_eq!(
            duplicate.unwrap_err(),
            ProfileError::DuplicateName { name: "a".into() }
        );
        let blank = Profiles::new(vec![RunnerProfile::new(" ", ["x"])], LabelMatchMode::Subset);
        assert_eq!(blank.unwrap_err(), ProfileError::EmptyName);
        let empty_label =
            Profiles::new(vec![RunnerProfile::new("a", [""])], LabelMatchMode::Subset);
        assert!(matches!(
            empty_label.unwrap_err(),
            ProfileError::EmptyLabel { .. }
        ));
        for label in ["linux,x64", "line\nbreak", "tab\there"] {
            let invalid = Profiles::new(
                vec![RunnerProfile::new("a", [label])],
                LabelMatchMode::Subset,
            );
            assert_eq!(
                invalid.unwrap_err(),
                ProfileError::InvalidLabel {
                    name: "a".into(),
                    label: label.into()
                }
            );
        }
    }
}
