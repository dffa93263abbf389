use std::fmt;

use chrono::{DateTime, Utc};

use super::error::truncate_to;
use super::{Delivery, Event, WorkflowJobAction, WorkflowJobEvent};
use crate::model::{GitHubHost, Job, JobId, RepositoryName, TargetId};
use crate::profile::Profiles;
use crate::runner_name::is_own_runner_name;

/// Settings of [`decide`]: runner profiles and the default host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecideConfig {
    /// Runner profiles that jobs are matched against.
    pub profiles: Profiles,
    /// Host for jobs whose payload and headers name none.
    pub default_host: GitHubHost,
    /// Prefix of the runner names this deployment's dispatcher gives, to recognise its own
    /// runners in `in_progress` and `completed` events.
    pub runner_name_prefix: String,
}

impl DecideConfig {
    /// Creates a config from profiles and the default host, with runner name prefix
    /// `myshoes` (the dispatcher's default).
    pub fn new(profiles: Profiles, default_host: GitHubHost) -> Self {
        Self {
            profiles,
            default_host,
            runner_name_prefix: "myshoes".to_owned(),
        }
    }

    /// Sets the runner name prefix; use the dispatcher's.
    pub fn with_runner_name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.runner_name_prefix = prefix.into();
        self
    }
}

/// Runner activity from an `in_progress` or `completed` event for one of this deployment's
/// runners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerActivity {
    /// Name of the runner, which starts with the deployment's runner name prefix.
    pub runner_name: String,
    /// `workflow_job.id` of the job the runner took.
    pub workflow_job_id: u64,
    /// `true` for `in_progress` (the runner started the job), `false` for `completed`.
    pub busy: bool,
}

/// Returns the runner activity a delivery reports for one of this deployment's runners:
/// evidence that it runs a job (`in_progress`) or finished one (`completed`). The sweeper
/// keeps a runner with such evidence even when GitHub's runner list shows it idle. `None`
/// for other events, other actions, and runners with another prefix.
pub fn runner_activity(event: &Event<'_>, config: &DecideConfig) -> Option<RunnerActivity> {
    let Event::WorkflowJob(job) = event else {
        return None;
    };
    let busy = match job.action {
        WorkflowJobAction::InProgress => true,
        WorkflowJobAction::Completed => false,
        _ => return None,
    };
    let runner_name = job
        .runner_name
        .as_deref()
        .filter(|name| is_own_runner_name(&config.runner_name_prefix, name))?;
    Some(RunnerActivity {
        runner_name: runner_name.to_owned(),
        workflow_job_id: job.id,
        busy,
    })
}

/// Outcome of [`decide`] for one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The job attempt started or finished: a launch for it that has not begun is no longer
    /// needed. The receiver records that with the Datastore's launch claim, so a dispatcher
    /// that receives the job later skips it.
    Cancel(JobCancel),
    /// The delivery requests a runner: store the job and dispatch it.
    Enqueue(JobRequest),
    /// The delivery creates no job. Respond with 2xx so that GitHub records it as delivered.
    Ignore(IgnoreReason),
}

/// A queued workflow job that a runner profile accepts: the fields of a
/// [`Job`](crate::model::Job) that come from the webhook, plus the chosen profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    /// `X-GitHub-Delivery` of the webhook.
    pub delivery_id: Option<String>,
    /// `workflow_job.id`.
    pub workflow_job_id: u64,
    /// `workflow_job.run_id`.
    pub run_id: u64,
    /// `workflow_job.run_attempt`, 1 when the payload has none.
    pub run_attempt: u32,
    /// `repository.full_name`.
    pub repository: RepositoryName,
    /// `installation.id`, present for deliveries to a GitHub App.
    pub installation_id: Option<u64>,
    /// The `runs-on` labels as sent, without `null` entries.
    pub labels: Vec<String>,
    /// GitHub instance the job runs on.
    pub host: GitHubHost,
    /// Name of the runner profile that accepts the labels.
    pub profile: String,
}

impl JobRequest {
    /// Returns the id the job gets, derived from the host, workflow job id and run attempt.
    pub fn job_id(&self) -> JobId {
        JobId::for_workflow_job(&self.host, self.workflow_job_id, self.run_attempt)
    }

    /// Turns the request into a new [`Job`] for `target_id`, with dispatch attempt 0.
    pub fn into_job(self, target_id: TargetId, received_at: DateTime<Utc>) -> Job {
        Job {
            id: self.job_id(),
            delivery_id: self.delivery_id,
            workflow_job_id: self.workflow_job_id,
            run_id: self.run_id,
            run_attempt: self.run_attempt,
            repository: self.repository,
            installation_id: self.installation_id,
            labels: self.labels,
            host: self.host,
            target_id,
            received_at,
            attempt: 0,
        }
    }
}

/// A job attempt that needs no runner any more, from an `in_progress` or `completed`
/// event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCancel {
    /// Id of the job attempt, as [`JobRequest::job_id`] would derive it.
    pub job_id: JobId,
    /// `workflow_job.id`.
    pub workflow_job_id: u64,
    /// `workflow_job.run_attempt`, 1 when the payload has none.
    pub run_attempt: u32,
    /// GitHub instance of the job.
    pub host: GitHubHost,
    /// The action that ends the need: `in_progress` or `completed`.
    pub action: WorkflowJobAction,
}

/// Reason a delivery creates no job. `Display` gives a short text for logs and responses.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IgnoreReason {
    /// The event is not `workflow_job`.
    NotWorkflowJob {
        /// The event name.
        event: String,
    },
    /// The `workflow_job` action is not `queued`.
    NotQueued {
        /// The action.
        action: WorkflowJobAction,
    },
    /// The job has no labels, so no self-hosted runner can take it.
    NoLabels,
    /// No runner profile accepts the job's labels.
    NoMatchingProfile {
        /// The job's labels.
        labels: Vec<String>,
    },
    /// A runner of this deployment took the job, so its own pending launch still serves the
    /// job that runner was launched for.
    TakenByOwnRunner {
        /// The runner's name.
        runner_name: String,
    },
    /// The payload has no `repository.full_name`.
    MissingRepository,
    /// `repository.full_name` is not a valid `owner/repo` name.
    InvalidRepository {
        /// The name as sent, shortened to 200 bytes.
        full_name: String,
    },
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IgnoreReason::NotWorkflowJob { event } => write!(f, "event {event} creates no job"),
            IgnoreReason::NotQueued { action } => write!(f, "action {action} creates no job"),
            IgnoreReason::NoLabels => f.write_str("the job has no labels"),
            IgnoreReason::NoMatchingProfile { labels } => {
                write!(f, "no runner profile matches labels {labels:?}")
            }
            IgnoreReason::TakenByOwnRunner { runner_name } => write!(
                f,
                "runner {runner_name} of this deployment took the job; its launch goes ahead for the job that runner was launched for"
            ),
            IgnoreReason::MissingRepository => f.write_str("repository.full_name is missing"),
            IgnoreReason::InvalidRepository { full_name } => {
                write!(
                    f,
                    "repository.full_name {full_name:?} is not a valid owner/repo name"
                )
            }
        }
    }
}

/// Decides whether a delivery creates a job.
///
/// Only a `workflow_job` with action `queued` does. The action decides, never
/// `workflow_job.status`, so `queued` with status `waiting` is enqueued. A queued job is
/// ignored when it has no labels, when no profile in `config` accepts its labels, or when
/// its repository name is missing or invalid. Actions `in_progress` and `completed` give
/// [`Decision::Cancel`] unless their labels match no profile; `waiting` and unknown
/// actions are ignored.
///
/// The job's host is taken from `repository.html_url` with the trailing `/{full_name}`
/// removed (ASCII case ignored), which keeps a GitHub Enterprise Server path prefix. When
/// that fails, `delivery.enterprise_host` is used, and then `config.default_host`.
pub fn decide(event: &Event<'_>, delivery: &Delivery<'_>, config: &DecideConfig) -> Decision {
    match event {
        Event::WorkflowJob(job) => decide_workflow_job(job, delivery, config),
        other => Decision::Ignore(IgnoreReason::NotWorkflowJob {
            event: other.name().to_owned(),
        }),
    }
}

fn decide_workflow_job(
    job: &WorkflowJobEvent<'_>,
    delivery: &Delivery<'_>,
    config: &DecideConfig,
) -> Decision {
    if matches!(
        job.action,
        WorkflowJobAction::InProgress | WorkflowJobAction::Completed
    ) {
        // Jobs for runners this deployment does not offer (GitHub-hosted ones, say) are not
        // ours to cancel. Completed events may carry no labels; those are cancelled.
        if !job.labels.is_empty() && config.profiles.choose(&job.labels).is_none() {
            return Decision::Ignore(IgnoreReason::NoMatchingProfile {
                labels: job.labels.iter().map(|label| label.to_string()).collect(),
            });
        }
        // A runner launched for another job may have taken this one. That other job then
        // needs this job's runner, so the pending launch must go ahead.
        if let Some(runner) = job
            .runner_name
            .as_deref()
            .filter(|name| is_own_runner_name(&config.runner_name_prefix, name))
        {
            return Decision::Ignore(IgnoreReason::TakenByOwnRunner {
                runner_name: runner.to_owned(),
            });
        }
        let host = job_host(job, delivery, config);
        return Decision::Cancel(JobCancel {
            job_id: JobId::for_workflow_job(&host, job.id, job.run_attempt),
            workflow_job_id: job.id,
            run_attempt: job.run_attempt,
            host,
            action: job.action.clone(),
        });
    }
    if job.action != WorkflowJobAction::Queued {
        return Decision::Ignore(IgnoreReason::NotQueued {
            action: job.action.clone(),
        });
    }
    if job.labels.is_empty() {
        return Decision::Ignore(IgnoreReason::NoLabels);
    }
    let Some(profile) = config.profiles.choose(&job.labels) else {
        return Decision::Ignore(IgnoreReason::NoMatchingProfile {
            labels: job.labels.iter().map(|label| label.to_string()).collect(),
        });
    };
    let Some(full_name) = job.repository_full_name.as_deref() else {
        return Decision::Ignore(IgnoreReason::MissingRepository);
    };
    let Ok(repository) = full_name.parse::<RepositoryName>() else {
        return Decision::Ignore(IgnoreReason::InvalidRepository {
            full_name: truncate_to(full_name, 200).to_owned(),
        });
    };

    let host = job_host(job, delivery, config);

    Decision::Enqueue(JobRequest {
        delivery_id: delivery.id.map(str::to_owned),
        workflow_job_id: job.id,
        run_id: job.run_id,
        run_attempt: job.run_attempt,
        repository,
        installation_id: job.installation_id,
        labels: job.labels.iter().map(|label| label.to_string()).collect(),
        host,
        profile: profile.name.clone(),
    })
}

/// Derives the job's host: from `repository.html_url`, then `X-GitHub-Enterprise-Host`,
/// then the configured default.
fn job_host(
    job: &WorkflowJobEvent<'_>,
    delivery: &Delivery<'_>,
    config: &DecideConfig,
) -> GitHubHost {
    job.repository_full_name
        .as_deref()
        .zip(job.repository_html_url.as_deref())
        .and_then(|(full_name, html_url)| {
            host_from_html_url(html_url, full_name, &config.default_host)
        })
        .or_else(|| delivery.enterprise_host.and_then(|host| host.parse().ok()))
        .unwrap_or_else(|| config.default_host.clone())
}

/// Returns the host of `html_url` (`https://HOST[/PREFIX]/{full_name}`), or `None` when the
/// URL does not end with `/{full_name}` or the rest is not a valid host.
fn host_from_html_url(
    html_url: &str,
    full_name: &str,
    default_host: &GitHubHost,
) -> Option<GitHubHost> {
    let url = html_url.strip_suffix('/').unwrap_or(html_url);
    let split = url.len().checked_sub(full_name.len() + 1)?;
    if !url.is_char_boundary(split) {
        return None;
    }
    let (base, tail) = url.split_at(split);
    let tail = tail.strip_prefix('/')?;
    if base.is_empty() || !tail.eq_ignore_ascii_case(full_name) {
        return None;
    }

    // Parsing a URL costs about as much as the rest of the decision, so the two common
    // hosts skip it.
    if base == default_host.web_url() {
        return Some(default_host.clone());
    }
    if base.eq_ignore_ascii_case("https://github.com") {
        return Some(GitHubHost::github_com());
    }
    base.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::profile::{LabelMatchMode, RunnerProfile};

    fn config() -> DecideConfig {
        let profiles = Profiles::new(
            vec![
                RunnerProfile::new("linux", ["linux", "x64"]),
                RunnerProfile::new("gpu", ["gpu", "db-app", "dc-03"]),
            ],
            LabelMatchMode::Subset,
        )
        .unwrap();
        DecideConfig::new(profiles, "https://ghes.default.example".parse().unwrap())
    }

    fn queued_job() -> WorkflowJobEvent<'static> {
        WorkflowJobEvent {
            action: WorkflowJobAction::Queued,
            id: 38_000_000_001,
            run_id: 21_000_000_002,
            run_attempt: 2,
            labels: vec![Cow::Borrowed("self-hosted"), Cow::Borrowed("linux")],
            status: Some(Cow::Borrowed("queued")),
            runner_name: None,
            repository_full_name: Some(Cow::Borrowed("octo-org/hello-world")),
            repository_html_url: Some(Cow::Borrowed("https://github.com/octo-org/hello-world")),
            installation_id: Some(42),
            organization_login: Some(Cow::Borrowed("octo-org")),
        }
    }

    fn decide_job(job: WorkflowJobEvent<'_>, delivery: &Delivery<'_>) -> Decision {
        decide(&Event::WorkflowJob(job), delivery, &config())
    }

    fn expect_request(decision: Decision) -> JobRequest {
        match decision {
            Decision::Enqueue(request) => request,
            other => panic!("expected a job, got {other:?}"),
        }
    }

    fn expect_reason(decision: Decision) -> IgnoreReason {
        match decision {
            Decision::Ignore(reason) => reason,
            other => panic!("expected an ignore, got {other:?}"),
        }
    }

    #[test]
    fn queued_job_is_enqueued() {
        let delivery = Delivery {
            id: Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            enterprise_host: None,
        };
        let request = expect_request(decide_job(queued_job(), &delivery));
        assert_eq!(
            request.delivery_id.as_deref(),
            Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
        );
        assert_eq!(request.workflow_job_id, 38_000_000_001);
        assert_eq!(request.run_id, 21_000_000_002);
        assert_eq!(request.run_attempt, 2);
        assert_eq!(request.repository.as_str(), "octo-org/hello-world");
        assert_eq!(request.installation_id, Some(42));
        assert_eq!(request.labels, ["self-hosted", "linux"]);
        assert_eq!(request.host, GitHubHost::github_com());
        assert_eq!(request.profile, "linux");
    }

    #[test]
    fn queued_with_waiting_status_is_enqueued() {
        let mut job = queued_job();
        job.status = Some(Cow::Borrowed("waiting"));
        expect_request(decide_job(job, &Delivery::default()));
    }

    #[test]
    fn started_or_finished_job_cancels() {
        for action in [WorkflowJobAction::InProgress, WorkflowJobAction::Completed] {
            let mut job = queued_job();
            job.action = action.clone();
            // Completed events may carry no labels; the cancel does not depend on them.
            job.labels = Vec::new();
            let Decision::Cancel(cancel) = decide_job(job, &Delivery::default()) else {
                panic!("{action}: expected a cancel");
            };
            assert_eq!(cancel.action, action);
            assert_eq!(cancel.workflow_job_id, 38_000_000_001);
            assert_eq!(cancel.run_attempt, 2);
            assert_eq!(cancel.host, GitHubHost::github_com());
            let request = expect_request(decide_job(queued_job(), &Delivery::default()));
            assert_eq!(
                cancel.job_id,
                request.job_id(),
                "the same attempt gets the same id"
            );
        }
    }

    #[test]
    fn job_on_own_runner_is_not_cancelled() {
        let mut job = queued_job();
        job.action = WorkflowJobAction::InProgress;
        job.runner_name = Some(Cow::Borrowed("myshoes-37000000005-1"));
        let reason = expect_reason(decide_job(job, &Delivery::default()));
        assert_eq!(
            reason,
            IgnoreReason::TakenByOwnRunner {
                runner_name: "myshoes-37000000005-1".into()
            }
        );

        let mut foreign = queued_job();
        foreign.action = WorkflowJobAction::InProgress;
        foreign.runner_name = Some(Cow::Borrowed("build-host-7"));
        assert!(matches!(
            decide_job(foreign, &Delivery::default()),
            Decision::Cancel(_)
        ));
    }

    #[test]
    fn hosted_job_completion_is_ignored() {
        let mut job = queued_job();
        job.action = WorkflowJobAction::Completed;
        job.labels = vec![Cow::Borrowed("ubuntu-latest")];
        let reason = expect_reason(decide_job(job, &Delivery::default()));
        assert!(
            matches!(reason, IgnoreReason::NoMatchingProfile { .. }),
            "{reason:?}"
        );
    }

    #[test]
    fn other_actions_are_ignored() {
        for action in [
            WorkflowJobAction::Waiting,
            WorkflowJobAction::Other("paused".into()),
        ] {
            let mut job = queued_job();
            job.action = action.clone();
            job.status = Some(Cow::Borrowed("queued"));
            let reason = expect_reason(decide_job(job, &Delivery::default()));
            assert_eq!(
                reason,
                IgnoreReason::NotQueued {
                    action: action.clone()
                }
            );
            assert_eq!(
                reason.to_string(),
                format!("action {action} creates no job")
            );
        }
    }

    #[test]
    fn other_events_are_ignored() {
        for event in [
            Event::Ping,
            Event::CheckRun,
            Event::Installation {
                name: "installation_repositories".into(),
            },
            Event::Unknown {
                name: "push".into(),
            },
        ] {
            let reason = expect_reason(decide(&event, &Delivery::default(), &config()));
            assert_eq!(
                reason,
                IgnoreReason::NotWorkflowJob {
                    event: event.name().to_owned()
                }
            );
        }
        let reason = IgnoreReason::NotWorkflowJob {
            event: "ping".into(),
        };
        assert_eq!(reason.to_string(), "event ping creates no job");
    }

    #[test]
    fn empty_labels_are_ignored() {
        let mut job = queued_job();
        job.labels.clear();
        assert_eq!(
            expect_reason(decide_job(job, &Delivery::default())),
            IgnoreReason::NoLabels
        );
    }

    #[test]
    fn unmatched_labels_are_ignored() {
        let mut job = queued_job();
        job.labels = vec![Cow::Borrowed("ubuntu-latest")];
        let reason = expect_reason(decide_job(job, &Delivery::default()));
        assert_eq!(
            reason,
            IgnoreReason::NoMatchingProfile {
                labels: vec!["ubuntu-latest".into()]
            }
        );
        assert_eq!(
            reason.to_string(),
            r#"no runner profile matches labels ["ubuntu-latest"]"#
        );
    }

    #[test]
    fn missing_repository_is_ignored() {
        let mut job = queued_job();
        job.repository_full_name = None;
        assert_eq!(
            expect_reason(decide_job(job, &Delivery::default())),
            IgnoreReason::MissingRepository
        );
    }

    #[test]
    fn invalid_repository_is_ignored() {
        let mut job = queued_job();
        job.repository_full_name = Some(Cow::Borrowed("not a repo"));
        assert_eq!(
            expect_reason(decide_job(job, &Delivery::default())),
            IgnoreReason::InvalidRepository {
                full_name: "not a repo".into()
            }
        );
    }

    #[test]
    fn host_keeps_ghes_path_prefix() {
        let mut job = queued_job();
        job.repository_html_url = Some(Cow::Borrowed(
            "https://ghes.example.com/github/Octo-Org/Hello-World/",
        ));
        let request = expect_request(decide_job(job, &Delivery::default()));
        assert_eq!(request.host.web_url(), "https://ghes.example.com/github");
    }

    #[test]
    fn host_falls_back_to_enterprise_header() {
        let delivery = Delivery {
            id: None,
            enterprise_host: Some("ghes.example.com"),
        };
        let mut job = queued_job();
        job.repository_html_url = None;
        let request = expect_request(decide_job(job, &delivery));
        assert_eq!(request.host.web_url(), "https://ghes.example.com");

        let mut mismatched = queued_job();
        mismatched.repository_html_url = Some(Cow::Borrowed("https://github.com/other/repo"));
        let request = expect_request(decide_job(mismatched, &delivery));
        assert_eq!(request.host.web_url(), "https://ghes.example.com");
    }

    #[test]
    fn host_falls_back_to_default() {
        let mut job = queued_job();
        job.repository_html_url = Some(Cow::Borrowed("octo-org/hello-world"));
        let delivery = Delivery {
            id: None,
            enterprise_host: Some("not a host/\u{0}"),
        };
        let request = expect_request(decide_job(job, &delivery));
        assert_eq!(request.host.web_url(), "https://ghes.default.example");
    }

    #[test]
    fn html_url_host_parsing() {
        let full_name = "octo-org/hello-world";
        let cases = [
            (
                "https://github.com/octo-org/hello-world",
                Some("https://github.com"),
            ),
            (
                "https://GitHub.com/Octo-Org/Hello-World",
                Some("https://github.com"),
            ),
            (
                "https://octocorp.ghe.com/octo-org/hello-world",
                Some("https://octocorp.ghe.com"),
            ),
            (
                "http://127.0.0.1:8080/octo-org/hello-world",
                Some("http://127.0.0.1:8080"),
            ),
            (
                "https://ghes.default.example/prefix/octo-org/hello-world",
                Some("https://ghes.default.example/prefix"),
            ),
            (
                "https://github.com:443/octo-org/hello-world",
                Some("https://github.com"),
            ),
            ("https://github.com/octo-org/other", None),
            ("https://github.com/xocto-org/hello-world", None),
            ("/octo-org/hello-world", None),
            ("octo-org/hello-world", None),
            // The split point falls inside the two-byte "é".
            ("https://x.coméocto-org/hello-world", None),
            ("", None),
        ];
        let default_host: GitHubHost = "https://ghes.default.example/prefix".parse().unwrap();
        for (html_url, expected) in cases {
            let host = host_from_html_url(html_url, full_name, &default_host);
            assert_eq!(
                host.as_ref().map(GitHubHost::web_url),
                expected,
                "{html_url}"
            );
        }
    }

    #[test]
    fn into_job_fills_job_fields() {
        let request = expect_request(decide_job(queued_job(), &Delivery::default()));
        let target_id = TargetId::new_random();
        let received_at = Utc::now();
        let expected_id = JobId::for_workflow_job(&GitHubHost::github_com(), 38_000_000_001, 2);
        assert_eq!(request.job_id(), expected_id);

        let job = request.clone().into_job(target_id, received_at);
        assert_eq!(job.id, expected_id);
        assert_eq!(job.delivery_id, None);
        assert_eq!(job.workflow_job_id, request.workflow_job_id);
        assert_eq!(job.run_id, request.run_id);
        assert_eq!(job.run_attempt, 2);
        assert_eq!(job.repository, request.repository);
        assert_eq!(job.installation_id, Some(42));
        assert_eq!(job.labels, request.labels);
        assert_eq!(job.host, request.host);
        assert_eq!(job.target_id, target_id);
        assert_eq!(job.received_at, received_at);
        assert_eq!(job.attempt, 0);
    }
}
