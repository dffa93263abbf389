use std::borrow::Cow;
use std::fmt;

use super::payload::Payload;
use super::WebhookError;

/// Maximum number of labels on a `workflow_job`. GitHub accepts at most 100 labels when it
/// registers a just-in-time runner.
pub const MAX_LABELS: usize = 100;

/// Maximum length of one `workflow_job` label in bytes.
///
/// NOTE: GitHub documents no label length limit. 256 bytes is this crate's choice, far
/// above real `runs-on` labels, to bound what one delivery can make the receiver store.
pub const MAX_LABEL_LEN: usize = 256;

/// The `action` of a `workflow_job` event.
///
/// Unknown values are kept in [`Other`](Self::Other) rather than rejected, so a new action
/// that GitHub adds is ignored instead of failing the delivery.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WorkflowJobAction {
    /// `queued`: the job was created.
    Queued,
    /// `waiting`: the job waits for an environment's approval.
    Waiting,
    /// `in_progress`: a runner started the job.
    InProgress,
    /// `completed`: the job finished, whatever its conclusion.
    Completed,
    /// Any other value, as sent.
    Other(String),
}

impl WorkflowJobAction {
    /// Returns the action as GitHub spells it, such as `in_progress`.
    pub fn as_str(&self) -> &str {
        match self {
            WorkflowJobAction::Queued => "queued",
            WorkflowJobAction::Waiting => "waiting",
            WorkflowJobAction::InProgress => "in_progress",
            WorkflowJobAction::Completed => "completed",
            WorkflowJobAction::Other(other) => other,
        }
    }

    pub(super) fn from_name(name: &str) -> Self {
        match name {
            "queued" => WorkflowJobAction::Queued,
            "waiting" => WorkflowJobAction::Waiting,
            "in_progress" => WorkflowJobAction::InProgress,
            "completed" => WorkflowJobAction::Completed,
            other => WorkflowJobAction::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for WorkflowJobAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The parts of a `workflow_job` delivery that deciding on a runner needs.
///
/// Strings borrow from the JSON body where it has no escapes. Only `action`,
/// `workflow_job.id` and `workflow_job.run_id` are required, and every other field may be
/// missing or `null`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowJobEvent<'a> {
    /// `action`.
    pub action: WorkflowJobAction,
    /// `workflow_job.id`, equal to the id of the job's check run.
    pub id: u64,
    /// `workflow_job.run_id`.
    pub run_id: u64,
    /// `workflow_job.run_attempt`, or 1 when missing or `null`, as in payloads from 2021.
    pub run_attempt: u32,
    /// `workflow_job.labels` (the `runs-on` labels) without `null` entries. Empty when the
    /// field is missing or `null`.
    pub labels: Vec<Cow<'a, str>>,
    /// `workflow_job.status`, informational only: the action, not the status, decides.
    pub status: Option<Cow<'a, str>>,
    /// `workflow_job.runner_name`: the runner that took the job; `None` while queued.
    pub runner_name: Option<Cow<'a, str>>,
    /// `repository.full_name`, such as `octo-org/hello-world`.
    pub repository_full_name: Option<Cow<'a, str>>,
    /// `repository.html_url`, such as `https://github.com/octo-org/hello-world`.
    pub repository_html_url: Option<Cow<'a, str>>,
    /// `installation.id`, present for deliveries to a GitHub App.
    pub installation_id: Option<u64>,
    /// `organization.login`, present when the repository belongs to an organization.
    pub organization_login: Option<Cow<'a, str>>,
}

impl<'a> WorkflowJobEvent<'a> {
    /// Parses a `workflow_job` JSON payload in one pass, skipping fields it does not need,
    /// and checks the label limits.
    ///
    /// # Errors
    ///
    /// - [`WebhookError::InvalidPayload`] when `json` is not valid JSON, lacks `action`,
    ///   `workflow_job.id` or `workflow_job.run_id`, or has a field of the wrong type.
    /// - [`WebhookError::TooManyLabels`] when there are more than [`MAX_LABELS`] labels.
    /// - [`WebhookError::LabelTooLong`] when a label is longer than [`MAX_LABEL_LEN`] bytes.
    pub fn from_json(json: &'a [u8]) -> Result<Self, WebhookError> {
        let payload: Payload<'a> = serde_json::from_slice(json)
            .map_err(|error| WebhookError::invalid_payload("workflow_job", &error))?;
        let event = payload.into_event();
        check_label_limits(&event.labels)?;
        Ok(event)
    }

    /// Copies every borrowed string, so the event no longer borrows the body.
    pub fn into_owned(self) -> WorkflowJobEvent<'static> {
        WorkflowJobEvent {
            action: self.action,
            id: self.id,
            run_id: self.run_id,
            run_attempt: self.run_attempt,
            labels: self
                .labels
                .into_iter()
                .map(|label| Cow::Owned(label.into_owned()))
                .collect(),
            status: owned(self.status),
            runner_name: owned(self.runner_name),
            repository_full_name: owned(self.repository_full_name),
            repository_html_url: owned(self.repository_html_url),
            installation_id: self.installation_id,
            organization_login: owned(self.organization_login),
        }
    }
}

fn owned(text: Option<Cow<'_, str>>) -> Option<Cow<'static, str>> {
    text.map(|text| Cow::Owned(text.into_owned()))
}

fn check_label_limits(labels: &[Cow<'_, str>]) -> Result<(), WebhookError> {
    if labels.len() > MAX_LABELS {
        return Err(WebhookError::TooManyLabels {
            count: labels.len(),
            max: MAX_LABELS,
        });
    }
    if let Some(label) = labels.iter().find(|label| label.len() > MAX_LABEL_LEN) {
        return Err(WebhookError::LabelTooLong {
            len: label.len(),
            max: MAX_LABEL_LEN,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<WorkflowJobEvent<'_>, WebhookError> {
        WorkflowJobEvent::from_json(json.as_bytes())
    }

    #[test]
    fn minimal_payload_uses_defaults() {
        let event = parse(r#"{"action":"queued","workflow_job":{"id":1,"run_id":2}}"#).unwrap();
        assert_eq!(event.action, WorkflowJobAction::Queued);
        assert_eq!(event.id, 1);
        assert_eq!(event.run_id, 2);
        assert_eq!(event.run_attempt, 1);
        assert!(event.labels.is_empty());
        assert_eq!(event.status, None);
        assert_eq!(event.repository_full_name, None);
        assert_eq!(event.repository_html_url, None);
        assert_eq!(event.installation_id, None);
        assert_eq!(event.organization_login, None);
    }

    #[test]
    fn null_fields_use_defaults() {
        let json = r#"{"action":"queued","workflow_job":{"id":1,"run_id":2,"run_attempt":null,
            "labels":null,"status":null},"repository":null,"installation":null,
            "organization":null}"#;
        let event = parse(json).unwrap();
        assert_eq!(event.run_attempt, 1);
        assert!(event.labels.is_empty());
        assert_eq!(event.status, None);
        assert_eq!(event.repository_full_name, None);
        assert_eq!(event.installation_id, None);
    }

    #[test]
    fn null_nested_fields_use_defaults() {
        let json = r#"{"action":"queued","workflow_job":{"id":1,"run_id":2},
            "repository":{"full_name":null,"html_url":null},"installation":{"id":null},
            "organization":{"login":null}}"#;
        let event = parse(json).unwrap();
        assert_eq!(event.repository_full_name, None);
        assert_eq!(event.repository_html_url, None);
        assert_eq!(event.installation_id, None);
        assert_eq!(event.organization_login, None);
    }

    #[test]
    fn full_payload_is_read() {
        let json = r#"{"action":"queued","workflow_job":{"id":38000000001,"run_id":21000000002,
            "run_attempt":3,"labels":["self-hosted","linux"],"status":"waiting","steps":[]},
            "repository":{"full_name":"octo-org/hello-world","html_url":"https://github.com/octo-org/hello-world","id":5},
            "installation":{"id":23154469,"node_id":"x"},"organization":{"login":"octo-org"},
            "sender":{"login":"octocat"}}"#;
        let event = parse(json).unwrap();
        assert_eq!(event.id, 38_000_000_001);
        assert_eq!(event.run_id, 21_000_000_002);
        assert_eq!(event.run_attempt, 3);
        assert_eq!(event.labels, ["self-hosted", "linux"]);
        assert_eq!(event.status.as_deref(), Some("waiting"));
        assert_eq!(
            event.repository_full_name.as_deref(),
            Some("octo-org/hello-world")
        );
        assert_eq!(
            event.repository_html_url.as_deref(),
            Some("https://github.com/octo-org/hello-world")
        );
        assert_eq!(event.installation_id, Some(23_154_469));
        assert_eq!(event.organization_login.as_deref(), Some("octo-org"));
    }

    #[test]
    fn ids_above_u32_are_kept() {
        let json = format!(
            r#"{{"action":"queued","workflow_job":{{"id":{},"run_id":{}}},"installation":{{"id":{}}}}}"#,
            u64::MAX,
            (1u64 << 32) + 7,
            (1u64 << 40) + 1
        );
        let event = parse(&json).unwrap();
        assert_eq!(event.id, u64::MAX);
        assert_eq!(event.run_id, (1 << 32) + 7);
        assert_eq!(event.installation_id, Some((1 << 40) + 1));
    }

    #[test]
    fn unknown_action_is_kept() {
        let event = parse(r#"{"action":"paused","workflow_job":{"id":1,"run_id":2}}"#).unwrap();
        assert_eq!(event.action, WorkflowJobAction::Other("paused".to_owned()));
        assert_eq!(event.action.to_string(), "paused");
    }

    #[test]
    fn known_actions_are_recognized() {
        for (name, action) in [
            ("queued", WorkflowJobAction::Queued),
            ("waiting", WorkflowJobAction::Waiting),
            ("in_progress", WorkflowJobAction::InProgress),
            ("completed", WorkflowJobAction::Completed),
        ] {
            let json = format!(r#"{{"action":"{name}","workflow_job":{{"id":1,"run_id":2}}}}"#);
            assert_eq!(parse(&json).unwrap().action, action);
            assert_eq!(action.as_str(), name);
        }
    }

    #[test]
    fn null_label_entries_are_skipped() {
        let json =
            r#"{"action":"queued","workflow_job":{"id":1,"run_id":2,"labels":[null,"gpu",null]}}"#;
        assert_eq!(parse(json).unwrap().labels, ["gpu"]);
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let json = r#"{"action":"queued","workflow_job":{"id":1,"run_id":2,"labels":["a\u0062c","d\"e"]}}"#;
        assert_eq!(parse(json).unwrap().labels, ["abc", "d\"e"]);
    }

    #[test]
    fn plain_strings_are_borrowed() {
        let json = r#"{"action":"queued","workflow_job":{"id":1,"run_id":2,"labels":["gpu"],"status":"queued"}}"#;
        let event = parse(json).unwrap();
        assert!(matches!(event.labels[0], Cow::Borrowed(_)));
        assert!(matches!(event.status, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn into_owned_keeps_values() {
        let json = r#"{"action":"queued","workflow_job":{"id":1,"run_id":2,"labels":["gpu"]},"organization":{"login":"o"}}"#;
        let event = parse(json).unwrap();
        let owned = event.clone().into_owned();
        assert_eq!(owned, event);
    }

    #[test]
    fn required_fields_are_enforced() {
        for (missing, json) in [
            ("action", r#"{"workflow_job":{"id":1,"run_id":2}}"#),
            ("workflow_job", r#"{"action":"queued"}"#),
            ("id", r#"{"action":"queued","workflow_job":{"run_id":2}}"#),
            ("run_id", r#"{"action":"queued","workflow_job":{"id":1}}"#),
        ] {
            let error = parse(json).unwrap_err();
            assert_eq!(error.status_code(), 400, "{missing}");
            assert!(
                error
                    .to_string()
                    .contains(&format!("missing field `{missing}`")),
                "{missing}: {error}"
            );
        }
    }

    #[test]
    fn wrong_types_are_rejected() {
        for json in [
            r#"{"action":null,"workflow_job":{"id":1,"run_id":2}}"#,
            r#"{"action":"queued","workflow_job":{"id":null,"run_id":2}}"#,
            r#"{"action":"queued","workflow_job":{"id":-1,"run_id":2}}"#,
            r#"{"action":"queued","workflow_job":{"id":"1","run_id":2}}"#,
            r#"{"action":"queued","workflow_job":{"id":1,"run_id":2,"labels":[1]}}"#,
            r#"{"action":"queued","workflow_job":{"id":1,"run_id":2,"run_attempt":4294967296}}"#,
            r#"{"action":"queued","workflow_job":null}"#,
            r#"[]"#,
        ] {
            let error = parse(json).unwrap_err();
            assert!(
                matches!(error, WebhookError::InvalidPayload { .. }),
                "{json}: {error:?}"
            );
        }
    }

    #[test]
    fn label_count_limit_is_enforced() {
        let labels = |count: usize| {
            let list: Vec<String> = (0..count).map(|i| format!("\"l{i}\"")).collect();
            format!(
                r#"{{"action":"queued","workflow_job":{{"id":1,"run_id":2,"labels":[{}]}}}}"#,
                list.join(",")
            )
        };
        assert_eq!(parse(&labels(MAX_LABELS)).unwrap().labels.len(), MAX_LABELS);
        let json = labels(MAX_LABELS + 1);
        let error = parse(&json).unwrap_err();
        assert_eq!(
            error,
            WebhookError::TooManyLabels {
                count: 101,
                max: 100
            }
        );
        assert!(error.to_string().contains("101 labels"), "{error}");
    }

    #[test]
    fn label_length_limit_is_enforced() {
        let label = |len: usize| {
            format!(
                r#"{{"action":"queued","workflow_job":{{"id":1,"run_id":2,"labels":["{}"]}}}}"#,
                "x".repeat(len)
            )
        };
        assert!(parse(&label(MAX_LABEL_LEN)).is_ok());
        let json = label(MAX_LABEL_LEN + 1);
        let error = parse(&json).unwrap_err();
        assert_eq!(error, WebhookError::LabelTooLong { len: 257, max: 256 });
        assert!(error.to_string().contains("257 bytes"), "{error}");
    }
}
