use super::{
    decide, runner_activity, verify_signature, DecideConfig, Decision, Event, RunnerActivity,
    SignatureOptions, WebhookError, WebhookHeaders,
};
use crate::secret::Secret;

/// Default maximum body size: 25 MiB, which is more than the 25 MB GitHub caps payloads at.
pub const DEFAULT_MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// Settings of [`receive`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceiverConfig {
    /// Profiles and default host for [`decide`].
    pub decide: DecideConfig,
    /// Largest accepted body in bytes, [`DEFAULT_MAX_BODY_BYTES`] by default.
    pub max_body_bytes: usize,
    /// Signature checks, HMAC-SHA256 only by default.
    pub signature: SignatureOptions,
}

impl ReceiverConfig {
    /// Creates a config with the default body limit and signature options.
    pub fn new(decide: DecideConfig) -> Self {
        Self {
            decide,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            signature: SignatureOptions::default(),
        }
    }

    /// Sets the largest accepted body in bytes.
    pub fn with_max_body_bytes(mut self, max_body_bytes: usize) -> Self {
        self.max_body_bytes = max_body_bytes;
        self
    }

    /// Sets the signature options.
    pub fn with_signature_options(mut self, signature: SignatureOptions) -> Self {
        self.signature = signature;
        self
    }
}

/// A delivery that passed every check, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// `X-GitHub-Event`.
    pub event: String,
    /// `X-GitHub-Delivery`, when present.
    pub delivery_id: Option<String>,
    /// Whether the delivery creates a job.
    pub decision: Decision,
    /// What the delivery says about one of this deployment's runners, for the sweeper.
    pub runner_activity: Option<RunnerActivity>,
}

/// Checks one webhook delivery and decides whether it creates a job.
///
/// The steps run in this order, and the first failure is returned:
///
/// 1. The body size against [`ReceiverConfig::max_body_bytes`] (413). Limit the body in the
///    HTTP server as well, because this check runs only after the body is buffered.
/// 2. The signature over the raw body with [`verify_signature`] (401, or 500 for an empty
///    secret), so that nothing else is read from an unauthenticated request.
/// 3. `X-GitHub-Event`, `X-GitHub-Delivery` and `X-GitHub-Enterprise-Host` (400).
/// 4. The body with [`Event::parse`], only for `workflow_job` (415 for another content
///    type, 400 for an invalid body or a field over its limit).
/// 5. [`decide`].
///
/// Map an error to a response with [`WebhookError::status_code`]. An `Ok` result, including
/// [`Decision::Ignore`], should get a 2xx response.
///
/// # Errors
///
/// The [`WebhookError`] of the first step that fails.
pub fn receive(
    headers: &WebhookHeaders,
    body: &[u8],
    secret: &Secret,
    config: &ReceiverConfig,
) -> Result<Received, WebhookError> {
    if body.len() > config.max_body_bytes {
        return Err(WebhookError::BodyTooLarge {
            size: body.len(),
            max: config.max_body_bytes,
        });
    }
    verify_signature(headers, body, secret, config.signature)?;

    let event_name = headers.event()?.ok_or(WebhookError::MissingEventHeader)?;
    let delivery = headers.delivery()?;
    let event = Event::parse(event_name, headers.content_type()?, body)?;
    let decision = decide(&event, &delivery, &config.decide);
    let runner_activity = runner_activity(&event, &config.decide);

    Ok(Received {
        event: event_name.to_owned(),
        delivery_id: delivery.id.map(str::to_owned),
        decision,
        runner_activity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GitHubHost;
    use crate::profile::{LabelMatchMode, Profiles, RunnerProfile};
    use crate::webhook::{sign_sha1, sign_sha256, IgnoreReason};

    const SECRET: &str = "receive-test-secret";
    const QUEUED: &str = r#"{"action":"queued","workflow_job":{"id":5000000000,"run_id":6000000000,"run_attempt":1,"labels":["self-hosted","linux"],"status":"queued"},"repository":{"full_name":"octo-org/hello-world","html_url":"https://github.com/octo-org/hello-world"},"installation":{"id":77}}"#;
    const DELIVERY_ID: &str = "0b989ba4-242f-11e5-81e1-c7b6966d2516";

    fn config() -> ReceiverConfig {
        let profiles = Profiles::new(
            vec![RunnerProfile::new("linux", ["linux"])],
            LabelMatchMode::Subset,
        )
        .unwrap();
        ReceiverConfig::new(DecideConfig::new(profiles, GitHubHost::github_com()))
    }

    fn signed_headers(event: &str, body: &[u8], extra: &[(&str, &str)]) -> WebhookHeaders {
        let signature = sign_sha256(&Secret::new(SECRET), body);
        let mut headers = WebhookHeaders::from_pairs([
            ("X-GitHub-Event", event.as_bytes()),
            ("X-Hub-Signature-256", signature.as_bytes()),
        ]);
        for (name, value) in extra {
            headers.insert(name, value.as_bytes());
        }
        headers
    }

    fn run(headers: &WebhookHeaders, body: &[u8]) -> Result<Received, WebhookError> {
        receive(headers, body, &Secret::new(SECRET), &config())
    }

    #[test]
    fn queued_json_is_enqueued() {
        let body = QUEUED.as_bytes();
        let headers = signed_headers(
            "workflow_job",
            body,
            &[
                ("Content-Type", "application/json"),
                ("X-GitHub-Delivery", DELIVERY_ID),
            ],
        );
        let received = run(&headers, body).unwrap();
        assert_eq!(received.event, "workflow_job");
        assert_eq!(received.delivery_id.as_deref(), Some(DELIVERY_ID));
        let Decision::Enqueue(request) = received.decision else {
            panic!("expected Enqueue, got {:?}", received.decision);
        };
        assert_eq!(request.workflow_job_id, 5_000_000_000);
        assert_eq!(request.run_id, 6_000_000_000);
        assert_eq!(request.installation_id, Some(77));
        assert_eq!(request.delivery_id.as_deref(), Some(DELIVERY_ID));
        assert_eq!(request.profile, "linux");
    }

    #[test]
    fn form_body_is_signed_raw() {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", QUEUED)
            .finish();
        let headers = signed_headers(
            "workflow_job",
            body.as_bytes(),
            &[("Content-Type", "application/x-www-form-urlencoded")],
        );
        let received = run(&headers, body.as_bytes()).unwrap();
        assert!(
            matches!(received.decision, Decision::Enqueue(_)),
            "{received:?}"
        );

        // A signature over the extracted JSON does not authenticate the form body.
        let json_signed = signed_headers(
            "workflow_job",
            QUEUED.as_bytes(),
            &[("Content-Type", "application/x-www-form-urlencoded")],
        );
        let error = run(&json_signed, body.as_bytes()).unwrap_err();
        assert!(
            matches!(error, WebhookError::SignatureMismatch { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn charset_parameter_is_accepted() {
        let body = QUEUED.as_bytes();
        let headers = signed_headers(
            "workflow_job",
            body,
            &[("content-type", "application/json; charset=utf-8")],
        );
        assert!(run(&headers, body).is_ok());
    }

    #[test]
    fn lower_case_header_names_work() {
        let body = QUEUED.as_bytes();
        let signature = sign_sha256(&Secret::new(SECRET), body);
        let headers = WebhookHeaders::from_pairs([
            ("x-github-event", "workflow_job"),
            ("X-HUB-SIGNATURE-256", signature.as_str()),
        ]);
        let received = run(&headers, body).unwrap();
        assert_eq!(received.delivery_id, None);
        assert!(matches!(received.decision, Decision::Enqueue(_)));
    }

    #[test]
    fn oversized_body_is_rejected_first() {
        let body = vec![b' '; 11];
        let headers = WebhookHeaders::new();
        let config = config().with_max_body_bytes(10);
        let error = receive(&headers, &body, &Secret::new(SECRET), &config).unwrap_err();
        assert_eq!(error, WebhookError::BodyTooLarge { size: 11, max: 10 });
        assert_eq!(error.status_code(), 413);
    }

    #[test]
    fn unsigned_request_is_rejected() {
        let headers = WebhookHeaders::from_pairs([("X-GitHub-Event", "workflow_job")]);
        let error = run(&headers, QUEUED.as_bytes()).unwrap_err();
        assert_eq!(error, WebhookError::MissingSignature);
    }

    #[test]
    fn sha1_only_request_follows_option() {
        let body = QUEUED.as_bytes();
        let signature = sign_sha1(&Secret::new(SECRET), body);
        let headers = WebhookHeaders::from_pairs([
            ("X-GitHub-Event", "workflow_job"),
            ("X-Hub-Signature", signature.as_str()),
        ]);
        let error = run(&headers, body).unwrap_err();
        assert_eq!(error, WebhookError::Sha1NotAllowed);

        let config = config().with_signature_options(SignatureOptions::default().with_sha1(true));
        let received = receive(&headers, body, &Secret::new(SECRET), &config).unwrap();
        assert!(matches!(received.decision, Decision::Enqueue(_)));
    }

    #[test]
    fn empty_secret_is_rejected() {
        let body = QUEUED.as_bytes();
        let headers = signed_headers("workflow_job", body, &[]);
        let error = receive(&headers, body, &Secret::new(""), &config()).unwrap_err();
        assert_eq!(error, WebhookError::EmptySecret);
    }

    #[test]
    fn missing_event_header_is_rejected() {
        let body = QUEUED.as_bytes();
        let signature = sign_sha256(&Secret::new(SECRET), body);
        let headers = WebhookHeaders::from_pairs([("X-Hub-Signature-256", signature.as_str())]);
        let error = run(&headers, body).unwrap_err();
        assert_eq!(error, WebhookError::MissingEventHeader);
        assert_eq!(error.status_code(), 400);
    }

    #[test]
    fn long_delivery_id_is_rejected() {
        let body = QUEUED.as_bytes();
        let long_id = "x".repeat(101);
        let headers = signed_headers("workflow_job", body, &[("X-GitHub-Delivery", &long_id)]);
        let error = run(&headers, body).unwrap_err();
        assert_eq!(
            error,
            WebhookError::DeliveryIdTooLong { len: 101, max: 100 }
        );
    }

    #[test]
    fn unsupported_content_type_is_415() {
        let body = QUEUED.as_bytes();
        let headers = signed_headers("workflow_job", body, &[("Content-Type", "text/xml")]);
        let error = run(&headers, body).unwrap_err();
        assert_eq!(error.status_code(), 415);
    }

    #[test]
    fn unknown_event_body_is_not_parsed() {
        let body = b"<html>not json</html>";
        let headers = signed_headers("push", body, &[("Content-Type", "text/html")]);
        let received = run(&headers, body).unwrap();
        assert_eq!(received.event, "push");
        assert_eq!(
            received.decision,
            Decision::Ignore(IgnoreReason::NotWorkflowJob {
                event: "push".into()
            })
        );
    }

    #[test]
    fn invalid_json_is_400_without_body() {
        let body = br#"{"action":"queued","workflow_job":{"id":"top-secret-body","run_id":1}}"#;
        let headers = signed_headers("workflow_job", body, &[]);
        let error = run(&headers, body).unwrap_err();
        assert_eq!(error.status_code(), 400);
        let message = error.to_string();
        assert!(!message.contains("top-secret-body"), "{message}");
        assert!(!message.contains(SECRET), "{message}");
    }
}
