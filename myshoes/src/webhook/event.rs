use super::{ContentType, WebhookError, WorkflowJobEvent};

/// A webhook event, chosen by the `X-GitHub-Event` header.
///
/// Only `workflow_job` bodies are parsed. The other events create no job, so their bodies
/// are never read, and a malformed body there does not fail the delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// `ping`, sent when a webhook is created.
    Ping,
    /// `workflow_job`.
    WorkflowJob(WorkflowJobEvent<'a>),
    /// `check_run`. GitHub Actions also sends one for every job, which `workflow_job`
    /// already covers.
    CheckRun,
    /// `installation`, `installation_repositories` and every other event whose name starts
    /// with `installation`.
    Installation {
        /// The event name as sent.
        name: String,
    },
    /// Any other event.
    Unknown {
        /// The event name as sent.
        name: String,
    },
}

impl<'a> Event<'a> {
    /// Chooses the event by `name` (the `X-GitHub-Event` value) and parses `body` only for
    /// `workflow_job`. Event names match exactly, since GitHub sends them in lower case.
    ///
    /// `content_type` is the `Content-Type` header value, and `None` means JSON. It is read
    /// only when the body is parsed. Verify the signature first.
    ///
    /// # Errors
    ///
    /// For `workflow_job` only: [`WebhookError::UnsupportedContentType`],
    /// [`WebhookError::InvalidFormBody`] and the errors of [`WorkflowJobEvent::from_json`].
    pub fn parse(
        name: &str,
        content_type: Option<&str>,
        body: &'a [u8],
    ) -> Result<Self, WebhookError> {
        match name {
            "workflow_job" => parse_workflow_job(content_type, body).map(Event::WorkflowJob),
            "ping" => Ok(Event::Ping),
            "check_run" => Ok(Event::CheckRun),
            installation if installation.starts_with("installation") => Ok(Event::Installation {
                name: installation.to_owned(),
            }),
            other => Ok(Event::Unknown {
                name: other.to_owned(),
            }),
        }
    }

    /// Returns the event name as GitHub sends it in `X-GitHub-Event`.
    pub fn name(&self) -> &str {
        match self {
            Event::Ping => "ping",
            Event::WorkflowJob(_) => "workflow_job",
            Event::CheckRun => "check_run",
            Event::Installation { name } | Event::Unknown { name } => name,
        }
    }
}

fn parse_workflow_job<'a>(
    content_type: Option<&str>,
    body: &'a [u8],
) -> Result<WorkflowJobEvent<'a>, WebhookError> {
    match ContentType::from_header(content_type)? {
        ContentType::Json => WorkflowJobEvent::from_json(body),
        // The payload is decoded into a new buffer, so the event must stop borrowing it.
        form => {
            let json = form.json_payload(body)?;
            WorkflowJobEvent::from_json(&json).map(WorkflowJobEvent::into_owned)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::WorkflowJobAction;

    const QUEUED: &str =
        r#"{"action":"queued","workflow_job":{"id":7,"run_id":8,"labels":["gpu"]}}"#;

    #[test]
    fn workflow_job_body_is_parsed() {
        let event = Event::parse("workflow_job", None, QUEUED.as_bytes()).unwrap();
        let Event::WorkflowJob(job) = &event else {
            panic!("expected WorkflowJob, got {event:?}");
        };
        assert_eq!(job.action, WorkflowJobAction::Queued);
        assert_eq!(job.id, 7);
        assert_eq!(event.name(), "workflow_job");
    }

    #[test]
    fn form_body_is_parsed() {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", QUEUED)
            .finish();
        let event = Event::parse(
            "workflow_job",
            Some("application/x-www-form-urlencoded"),
            body.as_bytes(),
        )
        .unwrap();
        let Event::WorkflowJob(job) = event else {
            panic!("expected WorkflowJob");
        };
        assert_eq!(job.labels, ["gpu"]);
    }

    #[test]
    fn other_events_skip_body() {
        let garbage = b"\xff not json";
        for (name, expected) in [
            ("ping", Event::Ping),
            ("check_run", Event::CheckRun),
            (
                "installation",
                Event::Installation {
                    name: "installation".into(),
                },
            ),
            (
                "installation_repositories",
                Event::Installation {
                    name: "installation_repositories".into(),
                },
            ),
            (
                "push",
                Event::Unknown {
                    name: "push".into(),
                },
            ),
            (
                "workflow_run",
                Event::Unknown {
                    name: "workflow_run".into(),
                },
            ),
        ] {
            let event = Event::parse(name, Some("text/plain"), garbage).unwrap();
            assert_eq!(event, expected, "{name}");
            assert_eq!(event.name(), name);
        }
    }

    #[test]
    fn workflow_job_content_type_is_checked() {
        let error =
            Event::parse("workflow_job", Some("text/plain"), QUEUED.as_bytes()).unwrap_err();
        assert_eq!(error.status_code(), 415);
    }

    #[test]
    fn event_name_match_is_exact() {
        let event = Event::parse("Workflow_Job", None, b"").unwrap();
        assert_eq!(
            event,
            Event::Unknown {
                name: "Workflow_Job".into()
            }
        );
    }
}
