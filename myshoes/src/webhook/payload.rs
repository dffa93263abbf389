//! One-pass deserialization of a `workflow_job` payload into a [`WorkflowJobEvent`].
//!
//! The structs mirror the JSON layout and name only the fields this crate needs. Serde skips
//! every other key with `IgnoredAny`, which allocates nothing, and `Text` borrows strings
//! from the body unless they contain escapes.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use super::{WorkflowJobAction, WorkflowJobEvent, MAX_LABELS};

/// A whole `workflow_job` payload.
#[derive(Deserialize)]
pub(super) struct Payload<'a> {
    action: WorkflowJobAction,
    #[serde(borrow)]
    workflow_job: JobObject<'a>,
    #[serde(default, borrow)]
    repository: Option<RepositoryObject<'a>>,
    #[serde(default)]
    installation: Option<InstallationObject>,
    #[serde(default, borrow)]
    organization: Option<OrganizationObject<'a>>,
}

#[derive(Deserialize)]
struct JobObject<'a> {
    id: u64,
    run_id: u64,
    #[serde(default)]
    run_attempt: Option<u32>,
    #[serde(default, borrow)]
    labels: Option<Labels<'a>>,
    #[serde(default, borrow)]
    status: Option<Text<'a>>,
    #[serde(default, borrow)]
    runner_name: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct RepositoryObject<'a> {
    #[serde(default, borrow)]
    full_name: Option<Text<'a>>,
    #[serde(default, borrow)]
    html_url: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct InstallationObject {
    #[serde(default)]
    id: Option<u64>,
}

#[derive(Deserialize)]
struct OrganizationObject<'a> {
    #[serde(default, borrow)]
    login: Option<Text<'a>>,
}

impl<'a> Payload<'a> {
    /// Moves the fields into the public event type.
    pub(super) fn into_event(self) -> WorkflowJobEvent<'a> {
        let (repository_full_name, repository_html_url) = match self.repository {
            Some(repository) => (
                repository.full_name.map(Text::into_cow),
                repository.html_url.map(Text::into_cow),
            ),
            None => (None, None),
        };
        WorkflowJobEvent {
            action: self.action,
            id: self.workflow_job.id,
            run_id: self.workflow_job.run_id,
            // Payloads from 2021 lack run_attempt, which then counts as the first attempt.
            run_attempt: self.workflow_job.run_attempt.unwrap_or(1),
            labels: self
                .workflow_job
                .labels
                .map(|labels| labels.0)
                .unwrap_or_default(),
            status: self.workflow_job.status.map(Text::into_cow),
            runner_name: self.workflow_job.runner_name.map(Text::into_cow),
            repository_full_name,
            repository_html_url,
            installation_id: self.installation.and_then(|installation| installation.id),
            organization_login: self
                .organization
                .and_then(|organization| organization.login)
                .map(Text::into_cow),
        }
    }
}

/// A JSON string that borrows from the input when it contains no escapes.
///
/// `Cow<str>` on its own always allocates when it sits inside `Option` or `Vec`, because
/// serde borrows only for fields whose type is exactly `Cow<str>`.
struct Text<'a>(Cow<'a, str>);

impl<'a> Text<'a> {
    fn into_cow(self) -> Cow<'a, str> {
        self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;

        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(value)))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(value.to_owned())))
            }

            fn visit_string<E: de::Error>(self, value: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(value)))
            }
        }

        deserializer.deserialize_str(TextVisitor)
    }
}

/// `workflow_job.labels` with `null` entries dropped.
struct Labels<'a>(Vec<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Labels<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LabelsVisitor;

        impl<'de> Visitor<'de> for LabelsVisitor {
            type Value = Labels<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of strings or nulls")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let capacity = seq.size_hint().unwrap_or(0).min(MAX_LABELS);
                let mut labels = Vec::with_capacity(capacity);
                while let Some(label) = seq.next_element::<Option<Text<'de>>>()? {
                    if let Some(label) = label {
                        labels.push(label.0);
                    }
                }
                Ok(Labels(labels))
            }
        }

        deserializer.deserialize_seq(LabelsVisitor)
    }
}

impl<'de> Deserialize<'de> for WorkflowJobAction {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ActionVisitor;

        impl Visitor<'_> for ActionVisitor {
            type Value = WorkflowJobAction;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a workflow_job action string")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(WorkflowJobAction::from_name(value))
            }
        }

        deserializer.deserialize_str(ActionVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<WorkflowJobEvent<'_>, serde_json::Error> {
        serde_json::from_str::<Payload<'_>>(json).map(Payload::into_event)
    }

    #[test]
    fn escaped_keys_are_matched() {
        let json = r#"{"\u0061ction":"queued","workflow_job":{"i\u0064":1,"run_id":2}}"#;
        let event = parse(json).unwrap();
        assert_eq!(event.action, WorkflowJobAction::Queued);
        assert_eq!(event.id, 1);
    }

    #[test]
    fn repeated_key_is_rejected() {
        let json = r#"{"action":"waiting","action":"queued","workflow_job":{"id":1,"run_id":2}}"#;
        let error = parse(json).unwrap_err();
        assert!(
            error.to_string().starts_with("duplicate field `action`"),
            "{error}"
        );
    }

    #[test]
    fn non_object_is_rejected() {
        for json in [
            r#"[]"#,
            r#"{"action":"queued","workflow_job":[]}"#,
            r#"{"action":"queued","workflow_job":{"id":1,"run_id":2},"repository":"x"}"#,
        ] {
            assert!(parse(json).is_err(), "{json}");
        }
    }

    #[test]
    fn missing_field_reports_position() {
        let error = parse(r#"{"action":"queued","workflow_job":{"id":1}}"#).unwrap_err();
        assert!(
            error.to_string().starts_with("missing field `run_id`"),
            "{error}"
        );
        assert_eq!(error.line(), 1);
        assert!(error.column() > 0, "{error}");
    }
}
