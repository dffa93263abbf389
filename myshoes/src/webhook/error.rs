/// Error returned when a webhook delivery is rejected.
///
/// Messages name the header, field or limit that failed and what to change. They never
/// contain the request body, the webhook secret or a signature value, so they are safe to
/// log and to return to the sender. [`WebhookError::status_code`] gives the HTTP status of
/// the response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The body is larger than the configured maximum.
    #[error(
        "the request body is {size} bytes, more than the maximum of {max} bytes: \
         GitHub sends at most 25 MB, so raise the receiver's body size limit only if \
         larger deliveries are expected"
    )]
    BodyTooLarge {
        /// Size of the body in bytes.
        size: usize,
        /// Configured maximum in bytes.
        max: usize,
    },

    /// The webhook secret is empty, so no signature can be verified.
    #[error(
        "the webhook secret is empty: configure the same non-empty secret here and in the \
         GitHub App or webhook settings"
    )]
    EmptySecret,

    /// Neither `X-Hub-Signature-256` nor `X-Hub-Signature` is present.
    #[error(
        "the request has no X-Hub-Signature-256 header: set a webhook secret in the GitHub \
         App or webhook settings so that GitHub signs every delivery"
    )]
    MissingSignature,

    /// A signature header is present but not in the form `sha256=<64 lower-case hex digits>`
    /// (or `sha1=<40 lower-case hex digits>`).
    #[error(
        "the {header} header is malformed: {reason}: sign deliveries as GitHub does, and \
         check that no proxy rewrites the header"
    )]
    MalformedSignature {
        /// Name of the header.
        header: &'static str,
        /// Reason the value is unusable, without the value itself.
        reason: String,
    },

    /// The signature does not match the body and the secret.
    #[error(
        "the {header} signature does not match the request body: check that the receiver's \
         webhook secret equals the one set on GitHub and that nothing rewrites the body"
    )]
    SignatureMismatch {
        /// Name of the header that was checked.
        header: &'static str,
    },

    /// Only the HMAC-SHA1 `X-Hub-Signature` header is present and SHA-1 is not allowed.
    #[error(
        "the request carries only the HMAC-SHA1 X-Hub-Signature header, and SHA-1 signatures \
         are not accepted: make the sender add X-Hub-Signature-256, or allow SHA-1 signatures \
         in the receiver's settings"
    )]
    Sha1NotAllowed,

    /// `X-GitHub-Event` is missing or empty.
    #[error(
        "the request has no X-GitHub-Event header: send GitHub webhook deliveries to this \
         endpoint, with their headers unchanged"
    )]
    MissingEventHeader,

    /// A header this module reads has a value that cannot be used.
    #[error("the {name} header is invalid: {reason}: send GitHub's delivery headers unchanged")]
    InvalidHeader {
        /// Name of the header.
        name: &'static str,
        /// Reason the value is unusable.
        reason: &'static str,
    },

    /// `X-GitHub-Delivery` is longer than [`MAX_DELIVERY_ID_LEN`](super::MAX_DELIVERY_ID_LEN).
    #[error(
        "the X-GitHub-Delivery header is {len} bytes long, more than the limit of {max} bytes: \
         GitHub delivery ids are 36-character GUIDs"
    )]
    DeliveryIdTooLong {
        /// Length of the value in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },

    /// The `Content-Type` is neither JSON nor a URL-encoded form.
    #[error(
        "unsupported content type {content_type:?}: set the webhook content type to \
         application/json (or application/x-www-form-urlencoded)"
    )]
    UnsupportedContentType {
        /// The media type from the header, shortened to 100 bytes.
        content_type: String,
    },

    /// A form-encoded body has no `payload` field, or more than one.
    #[error("the form-encoded body {problem}: GitHub puts the JSON in one field named payload")]
    InvalidFormBody {
        /// Problem found, such as `has no payload field`.
        problem: &'static str,
    },

    /// The JSON body is not valid JSON or lacks a required field of its event.
    #[error(
        "invalid {event} payload: {detail} at line {line} column {column}: send the body \
         exactly as GitHub delivered it"
    )]
    InvalidPayload {
        /// Event name from `X-GitHub-Event`.
        event: &'static str,
        /// Description of the problem. It names fields and expected types, never a value from
        /// the body.
        detail: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },

    /// A `workflow_job` has more labels than [`MAX_LABELS`](super::MAX_LABELS).
    #[error(
        "workflow_job.labels has {count} labels, more than the limit of {max}: GitHub accepts \
         at most {max} labels on a runner"
    )]
    TooManyLabels {
        /// Number of labels in the payload.
        count: usize,
        /// The limit.
        max: usize,
    },

    /// A `workflow_job` label is longer than [`MAX_LABEL_LEN`](super::MAX_LABEL_LEN).
    #[error(
        "a workflow_job label is {len} bytes long, more than the limit of {max} bytes: \
         shorten the runs-on label"
    )]
    LabelTooLong {
        /// Length of the label in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
}

impl WebhookError {
    /// Returns the HTTP status code of the response to a rejected delivery.
    ///
    /// - 413 for [`BodyTooLarge`](Self::BodyTooLarge).
    /// - 401 for a missing, malformed, mismatched or SHA-1-only signature.
    /// - 415 for [`UnsupportedContentType`](Self::UnsupportedContentType).
    /// - 500 for [`EmptySecret`](Self::EmptySecret), which is a receiver configuration error.
    /// - 400 for everything else: missing or invalid headers, unparseable bodies and field
    ///   limits.
    pub fn status_code(&self) -> u16 {
        match self {
            WebhookError::BodyTooLarge { .. } => 413,
            WebhookError::EmptySecret => 500,
            WebhookError::MissingSignature
            | WebhookError::MalformedSignature { .. }
            | WebhookError::SignatureMismatch { .. }
            | WebhookError::Sha1NotAllowed => 401,
            WebhookError::UnsupportedContentType { .. } => 415,
            WebhookError::MissingEventHeader
            | WebhookError::InvalidHeader { .. }
            | WebhookError::DeliveryIdTooLong { .. }
            | WebhookError::InvalidFormBody { .. }
            | WebhookError::InvalidPayload { .. }
            | WebhookError::TooManyLabels { .. }
            | WebhookError::LabelTooLong { .. } => 400,
        }
    }

    /// Builds [`WebhookError::InvalidPayload`] from a `serde_json` error.
    ///
    /// `serde_json` puts unexpected values into some messages (`invalid type: string "…"`),
    /// so only field names and expected types are kept.
    pub(super) fn invalid_payload(event: &'static str, error: &serde_json::Error) -> Self {
        WebhookError::InvalidPayload {
            event,
            detail: sanitized_json_detail(error),
            line: error.line(),
            column: error.column(),
        }
    }
}

/// Returns the message of a `serde_json` error without its position and without any value
/// copied from the input.
fn sanitized_json_detail(error: &serde_json::Error) -> String {
    let full = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    let message = full.strip_suffix(&position).unwrap_or(&full);

    match error.classify() {
        // Syntax and end-of-input messages are fixed texts such as "expected value" or
        // "EOF while parsing an object".
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            message.to_owned()
        }
        serde_json::error::Category::Data | serde_json::error::Category::Io => {
            data_error_detail(message)
        }
    }
}

/// Keeps the parts of a data error message that come from this crate's types: the field
/// name of a missing or duplicate field and the expected type after ", expected ".
fn data_error_detail(message: &str) -> String {
    if message.starts_with("missing field `") || message.starts_with("duplicate field `") {
        return message.to_owned();
    }
    match message.rfind(", expected ") {
        Some(index) => format!(
            "a field has the wrong type or value, expected {}",
            &message[index + ", expected ".len()..]
        ),
        None => "a field has the wrong type or value".to_owned(),
    }
}

/// Shortens `text` to at most `max` bytes on a character boundary.
pub(super) fn truncate_to(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Sample {
        id: u64,
    }

    fn json_error(input: &str) -> serde_json::Error {
        serde_json::from_str::<Sample>(input).unwrap_err()
    }

    #[test]
    fn payload_error_hides_body_values() {
        let error =
            WebhookError::invalid_payload("workflow_job", &json_error(r#"{"id":"s3cr3t-value"}"#));
        let message = error.to_string();
        assert!(!message.contains("s3cr3t"), "{message}");
        assert!(message.contains("expected u64"), "{message}");
        assert!(message.contains("line 1 column"), "{message}");
        assert_eq!(error.status_code(), 400);
    }

    #[test]
    fn payload_error_keeps_missing_field_name() {
        let message = WebhookError::invalid_payload("workflow_job", &json_error("{}")).to_string();
        assert!(message.contains("missing field `id`"), "{message}");
    }

    #[test]
    fn payload_error_keeps_syntax_message() {
        let message =
            WebhookError::invalid_payload("workflow_job", &json_error("{\"id\":")).to_string();
        assert!(message.contains("EOF while parsing"), "{message}");
    }

    #[test]
    fn status_codes_follow_error_class() {
        assert_eq!(
            WebhookError::BodyTooLarge { size: 2, max: 1 }.status_code(),
            413
        );
        assert_eq!(WebhookError::MissingSignature.status_code(), 401);
        assert_eq!(WebhookError::Sha1NotAllowed.status_code(), 401);
        assert_eq!(
            WebhookError::SignatureMismatch {
                header: "X-Hub-Signature-256"
            }
            .status_code(),
            401
        );
        assert_eq!(
            WebhookError::UnsupportedContentType {
                content_type: "text/plain".into()
            }
            .status_code(),
            415
        );
        assert_eq!(WebhookError::MissingEventHeader.status_code(), 400);
        assert_eq!(
            WebhookError::TooManyLabels {
                count: 101,
                max: 100
            }
            .status_code(),
            400
        );
        assert_eq!(WebhookError::EmptySecret.status_code(), 500);
    }

    #[test]
    fn truncate_respects_char_boundary() {
        assert_eq!(truncate_to("abc", 10), "abc");
        assert_eq!(truncate_to("abcdef", 3), "abc");
        assert_eq!(truncate_to("aé", 2), "a");
    }
}
