use std::fmt;

use super::WebhookError;

/// `X-GitHub-Event`: the event name, such as `workflow_job`.
pub const EVENT_HEADER: &str = "X-GitHub-Event";
/// `X-GitHub-Delivery`: the GUID of the delivery.
pub const DELIVERY_HEADER: &str = "X-GitHub-Delivery";
/// `X-Hub-Signature-256`: `sha256=` and the HMAC-SHA256 of the body in lower-case hex.
pub const SIGNATURE_256_HEADER: &str = "X-Hub-Signature-256";
/// `X-Hub-Signature`: `sha1=` and the HMAC-SHA1 of the body in lower-case hex.
pub const SIGNATURE_SHA1_HEADER: &str = "X-Hub-Signature";
/// `Content-Type` of the body.
pub const CONTENT_TYPE_HEADER: &str = "Content-Type";
/// `X-GitHub-Enterprise-Host`: the host name of a GitHub Enterprise Server instance.
pub const ENTERPRISE_HOST_HEADER: &str = "X-GitHub-Enterprise-Host";

/// Maximum length of `X-GitHub-Delivery` in bytes. GitHub sends 36-character GUIDs.
pub const MAX_DELIVERY_ID_LEN: usize = 100;

/// State of one header slot.
#[derive(Clone, Default, PartialEq, Eq)]
enum HeaderValue {
    #[default]
    Absent,
    Present(String),
    Invalid(&'static str),
}

impl HeaderValue {
    /// Stores `value`, or marks the slot invalid when the value is not UTF-8 or the header
    /// was already seen.
    fn set(&mut self, value: &[u8]) {
        *self = match (&*self, std::str::from_utf8(value)) {
            (HeaderValue::Absent, Ok(text)) => {
                HeaderValue::Present(text.trim_matches([' ', '\t']).to_owned())
            }
            (HeaderValue::Absent, Err(_)) => HeaderValue::Invalid("the value is not UTF-8"),
            (_, _) => HeaderValue::Invalid("the header appears more than once"),
        };
    }

    fn get(&self, name: &'static str) -> Result<Option<&str>, WebhookError> {
        match self {
            HeaderValue::Absent => Ok(None),
            HeaderValue::Present(value) => Ok(Some(value)),
            HeaderValue::Invalid(reason) => Err(WebhookError::InvalidHeader { name, reason }),
        }
    }

    /// Returns the value, or `None` when it is absent or empty.
    fn get_non_empty(&self, name: &'static str) -> Result<Option<&str>, WebhookError> {
        Ok(self.get(name)?.filter(|value| !value.is_empty()))
    }
}

/// The request headers a webhook receiver reads, collected from `(name, value)` pairs.
///
/// Names match case-insensitively, so `x-github-event` and `X-GITHUB-EVENT` both fill
/// [`EVENT_HEADER`]. Values are trimmed of surrounding spaces and tabs. A value that is not
/// UTF-8, or a header that appears more than once, is recorded as invalid, and its accessor
/// returns an error. Other headers are ignored.
///
/// Any framework's header map can feed it, for example
/// `WebhookHeaders::from_pairs(request.headers())` with the `http` crate, whose names are
/// `AsRef<str>` and whose values are `AsRef<[u8]>`.
///
/// `Debug` hides the signature values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct WebhookHeaders {
    event: HeaderValue,
    delivery: HeaderValue,
    signature_256: HeaderValue,
    signature_sha1: HeaderValue,
    content_type: HeaderValue,
    enterprise_host: HeaderValue,
}

/// Facts about one delivery that come from its headers rather than its body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery<'a> {
    /// `X-GitHub-Delivery`. [`WebhookHeaders::delivery`] rejects ids longer than
    /// [`MAX_DELIVERY_ID_LEN`] bytes.
    pub id: Option<&'a str>,
    /// `X-GitHub-Enterprise-Host`, sent only by GitHub Enterprise Server.
    pub enterprise_host: Option<&'a str>,
}

impl WebhookHeaders {
    /// Creates an empty set of headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Collects the headers this module reads from `(name, value)` pairs.
    pub fn from_pairs<I, N, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let mut headers = Self::new();
        for (name, value) in pairs {
            headers.insert(name.as_ref(), value.as_ref());
        }
        headers
    }

    /// Records one header. Names other than the six this module reads are ignored.
    pub fn insert(&mut self, name: &str, value: &[u8]) {
        let slot = if name.eq_ignore_ascii_case(EVENT_HEADER) {
            &mut self.event
        } else if name.eq_ignore_ascii_case(DELIVERY_HEADER) {
            &mut self.delivery
        } else if name.eq_ignore_ascii_case(SIGNATURE_256_HEADER) {
            &mut self.signature_256
        } else if name.eq_ignore_ascii_case(SIGNATURE_SHA1_HEADER) {
            &mut self.signature_sha1
        } else if name.eq_ignore_ascii_case(CONTENT_TYPE_HEADER) {
            &mut self.content_type
        } else if name.eq_ignore_ascii_case(ENTERPRISE_HOST_HEADER) {
            &mut self.enterprise_host
        } else {
            return;
        };
        slot.set(value);
    }

    /// Returns `X-GitHub-Event`, or `None` when it is absent or empty.
    ///
    /// # Errors
    ///
    /// [`WebhookError::InvalidHeader`] when the value is not UTF-8 or repeated.
    pub fn event(&self) -> Result<Option<&str>, WebhookError> {
        self.event.get_non_empty(EVENT_HEADER)
    }

    /// Returns `X-GitHub-Delivery`, or `None` when it is absent or empty.
    ///
    /// # Errors
    ///
    /// [`WebhookError::InvalidHeader`] when the value is not UTF-8 or repeated, and
    /// [`WebhookError::DeliveryIdTooLong`] when it is longer than [`MAX_DELIVERY_ID_LEN`].
    pub fn delivery_id(&self) -> Result<Option<&str>, WebhookError> {
        let id = self.delivery.get_non_empty(DELIVERY_HEADER)?;
        if let Some(id) = id {
            if id.len() > MAX_DELIVERY_ID_LEN {
                return Err(WebhookError::DeliveryIdTooLong {
                    len: id.len(),
                    max: MAX_DELIVERY_ID_LEN,
                });
            }
        }
        Ok(id)
    }

    /// Returns `X-Hub-Signature-256` as sent, possibly empty.
    ///
    /// # Errors
    ///
    /// [`WebhookError::MalformedSignature`] when the value is not UTF-8 or repeated.
    pub fn signature_256(&self) -> Result<Option<&str>, WebhookError> {
        signature_value(&self.signature_256, SIGNATURE_256_HEADER)
    }

    /// Returns `X-Hub-Signature` (HMAC-SHA1) as sent, possibly empty.
    ///
    /// # Errors
    ///
    /// [`WebhookError::MalformedSignature`] when the value is not UTF-8 or repeated.
    pub fn signature_sha1(&self) -> Result<Option<&str>, WebhookError> {
        signature_value(&self.signature_sha1, SIGNATURE_SHA1_HEADER)
    }

    /// Returns `Content-Type`, or `None` when it is absent or empty.
    ///
    /// # Errors
    ///
    /// [`WebhookError::InvalidHeader`] when the value is not UTF-8 or repeated.
    pub fn content_type(&self) -> Result<Option<&str>, WebhookError> {
        self.content_type.get_non_empty(CONTENT_TYPE_HEADER)
    }

    /// Returns `X-GitHub-Enterprise-Host`, or `None` when it is absent or empty.
    ///
    /// # Errors
    ///
    /// [`WebhookError::InvalidHeader`] when the value is not UTF-8 or repeated.
    pub fn enterprise_host(&self) -> Result<Option<&str>, WebhookError> {
        self.enterprise_host.get_non_empty(ENTERPRISE_HOST_HEADER)
    }

    /// Returns the delivery id and enterprise host together.
    ///
    /// # Errors
    ///
    /// The errors of [`delivery_id`](Self::delivery_id) and
    /// [`enterprise_host`](Self::enterprise_host).
    pub fn delivery(&self) -> Result<Delivery<'_>, WebhookError> {
        Ok(Delivery {
            id: self.delivery_id()?,
            enterprise_host: self.enterprise_host()?,
        })
    }
}

/// Reads a signature header, reporting an unusable value as a malformed signature (401)
/// rather than a bad request, because the request cannot be authenticated.
fn signature_value<'a>(
    slot: &'a HeaderValue,
    name: &'static str,
) -> Result<Option<&'a str>, WebhookError> {
    slot.get(name).map_err(|error| match error {
        WebhookError::InvalidHeader { reason, .. } => WebhookError::MalformedSignature {
            header: name,
            reason: reason.to_owned(),
        },
        other => other,
    })
}

impl fmt::Debug for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderValue::Absent => f.write_str("Absent"),
            HeaderValue::Present(value) => fmt::Debug::fmt(value, f),
            HeaderValue::Invalid(reason) => write!(f, "Invalid({reason})"),
        }
    }
}

impl fmt::Debug for WebhookHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |slot: &HeaderValue| match slot {
            HeaderValue::Present(_) => "[REDACTED]",
            HeaderValue::Absent => "Absent",
            HeaderValue::Invalid(reason) => reason,
        };
        f.debug_struct("WebhookHeaders")
            .field("event", &self.event)
            .field("delivery", &self.delivery)
            .field("signature_256", &redacted(&self.signature_256))
            .field("signature_sha1", &redacted(&self.signature_sha1))
            .field("content_type", &self.content_type)
            .field("enterprise_host", &self.enterprise_host)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> WebhookHeaders {
        WebhookHeaders::from_pairs(pairs.iter().map(|(name, value)| (*name, value.as_bytes())))
    }

    #[test]
    fn names_match_case_insensitively() {
        for name in [
            "X-GitHub-Event",
            "x-github-event",
            "X-GITHUB-EVENT",
            "X-Github-Event",
        ] {
            let parsed = headers(&[(name, "workflow_job")]);
            assert_eq!(parsed.event().unwrap(), Some("workflow_job"), "{name}");
        }
        let parsed = headers(&[
            ("x-hub-signature-256", "sha256=ab"),
            ("X-HUB-SIGNATURE", "sha1=cd"),
            ("content-type", "application/json"),
            ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ("x-github-enterprise-host", "ghes.example.com"),
        ]);
        assert_eq!(parsed.signature_256().unwrap(), Some("sha256=ab"));
        assert_eq!(parsed.signature_sha1().unwrap(), Some("sha1=cd"));
        assert_eq!(parsed.content_type().unwrap(), Some("application/json"));
        assert_eq!(
            parsed.delivery_id().unwrap(),
            Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
        );
        assert_eq!(parsed.enterprise_host().unwrap(), Some("ghes.example.com"));
    }

    #[test]
    fn other_headers_are_ignored() {
        let parsed = headers(&[
            ("User-Agent", "GitHub-Hookshot/044aadd"),
            ("X-GitHub-Event-X", "a"),
        ]);
        assert_eq!(parsed, WebhookHeaders::new());
    }

    #[test]
    fn non_utf8_value_is_invalid() {
        let parsed = WebhookHeaders::from_pairs([("X-GitHub-Event", &[0xff, 0xfe][..])]);
        let error = parsed.event().unwrap_err();
        assert!(
            matches!(
                error,
                WebhookError::InvalidHeader {
                    name: EVENT_HEADER,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(error.status_code(), 400);
    }

    #[test]
    fn non_utf8_signature_is_malformed() {
        let parsed = WebhookHeaders::from_pairs([("X-Hub-Signature-256", &[0xc3][..])]);
        let error = parsed.signature_256().unwrap_err();
        assert!(
            matches!(error, WebhookError::MalformedSignature { .. }),
            "{error:?}"
        );
        assert_eq!(error.status_code(), 401);
    }

    #[test]
    fn repeated_header_is_invalid() {
        let parsed = headers(&[
            ("X-GitHub-Event", "ping"),
            ("x-github-event", "workflow_job"),
        ]);
        let error = parsed.event().unwrap_err();
        assert!(error.to_string().contains("more than once"), "{error}");
    }

    #[test]
    fn empty_event_counts_as_missing() {
        assert_eq!(headers(&[("X-GitHub-Event", "  ")]).event().unwrap(), None);
        assert_eq!(headers(&[]).event().unwrap(), None);
    }

    #[test]
    fn values_are_trimmed() {
        let parsed = headers(&[("X-GitHub-Event", " workflow_job\t")]);
        assert_eq!(parsed.event().unwrap(), Some("workflow_job"));
    }

    #[test]
    fn delivery_id_limit_is_enforced() {
        let at_limit = "d".repeat(MAX_DELIVERY_ID_LEN);
        assert_eq!(
            headers(&[("X-GitHub-Delivery", &at_limit)])
                .delivery_id()
                .unwrap(),
            Some(at_limit.as_str())
        );
        let too_long = "d".repeat(MAX_DELIVERY_ID_LEN + 1);
        let error = headers(&[("X-GitHub-Delivery", &too_long)])
            .delivery_id()
            .unwrap_err();
        assert_eq!(
            error,
            WebhookError::DeliveryIdTooLong { len: 101, max: 100 }
        );
        assert!(error.to_string().contains("101 bytes"), "{error}");
    }

    #[test]
    fn debug_hides_signatures() {
        let parsed = headers(&[
            ("X-Hub-Signature-256", "sha256=0123abcd"),
            ("X-Hub-Signature", "sha1=4567"),
        ]);
        let debug = format!("{parsed:?}");
        assert!(!debug.contains("0123abcd"), "{debug}");
        assert!(!debug.contains("4567"), "{debug}");
        assert!(debug.contains("[REDACTED]"), "{debug}");
    }
}
