use std::borrow::Cow;

use super::error::truncate_to;
use super::WebhookError;

/// Encoding of a delivery's JSON payload, from the `Content-Type` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContentType {
    /// `application/json`: the body is the JSON payload.
    Json,
    /// `application/x-www-form-urlencoded`: the JSON payload is the form field `payload`.
    Form,
}

/// Name of the form field that carries the JSON payload of a form-encoded delivery.
const FORM_PAYLOAD_FIELD: &str = "payload";

impl ContentType {
    /// Reads the media type of a `Content-Type` value, ignoring parameters such as
    /// `charset=utf-8` and ASCII case. A missing header means JSON.
    ///
    /// # Errors
    ///
    /// [`WebhookError::UnsupportedContentType`] for any other media type.
    pub fn from_header(value: Option<&str>) -> Result<Self, WebhookError> {
        let Some(value) = value else {
            return Ok(ContentType::Json);
        };
        let media_type = value.split(';').next().unwrap_or_default().trim();
        if media_type.eq_ignore_ascii_case("application/json") {
            Ok(ContentType::Json)
        } else if media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            Ok(ContentType::Form)
        } else {
            Err(WebhookError::UnsupportedContentType {
                content_type: truncate_to(media_type, 100).to_owned(),
            })
        }
    }

    /// Returns the JSON payload of `body`: the body itself for JSON, and the decoded
    /// `payload` field for a form.
    ///
    /// Verify the signature before calling this, because GitHub signs the raw form body, not
    /// the extracted payload.
    ///
    /// # Errors
    ///
    /// [`WebhookError::InvalidFormBody`] when a form has no `payload` field or more than one.
    pub fn json_payload(self, body: &[u8]) -> Result<Cow<'_, [u8]>, WebhookError> {
        match self {
            ContentType::Json => Ok(Cow::Borrowed(body)),
            ContentType::Form => form_payload(body).map(|payload| Cow::Owned(payload.into_bytes())),
        }
    }
}

fn form_payload(body: &[u8]) -> Result<String, WebhookError> {
    let mut payloads = form_urlencoded::parse(body)
        .filter(|(name, _)| name == FORM_PAYLOAD_FIELD)
        .map(|(_, value)| value);
    let Some(payload) = payloads.next() else {
        return Err(WebhookError::InvalidFormBody {
            problem: "has no payload field",
        });
    };
    if payloads.next().is_some() {
        return Err(WebhookError::InvalidFormBody {
            problem: "has more than one payload field",
        });
    }
    Ok(payload.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types_are_accepted() {
        for value in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=UTF-8",
            " application/json ",
        ] {
            assert_eq!(
                ContentType::from_header(Some(value)),
                Ok(ContentType::Json),
                "{value}"
            );
        }
        assert_eq!(ContentType::from_header(None), Ok(ContentType::Json));
    }

    #[test]
    fn form_media_type_is_accepted() {
        assert_eq!(
            ContentType::from_header(Some("application/x-www-form-urlencoded")),
            Ok(ContentType::Form)
        );
    }

    #[test]
    fn other_media_types_are_rejected() {
        for value in [
            "text/plain",
            "application/jsonx",
            "multipart/form-data; boundary=x",
            "",
        ] {
            let error = ContentType::from_header(Some(value)).unwrap_err();
            assert_eq!(error.status_code(), 415, "{value}");
        }
    }

    #[test]
    fn long_media_type_is_shortened() {
        let long = "x".repeat(500);
        let WebhookError::UnsupportedContentType { content_type } =
            ContentType::from_header(Some(&long)).unwrap_err()
        else {
            panic!("expected UnsupportedContentType");
        };
        assert_eq!(content_type.len(), 100);
    }

    #[test]
    fn form_payload_is_decoded() {
        let body = b"payload=%7B%22action%22%3A%22queued%22%7D&other=1";
        let payload = ContentType::Form.json_payload(body).unwrap();
        assert_eq!(&*payload, br#"{"action":"queued"}"#);
    }

    #[test]
    fn form_without_payload_is_rejected() {
        let error = ContentType::Form.json_payload(b"other=1").unwrap_err();
        assert_eq!(
            error,
            WebhookError::InvalidFormBody {
                problem: "has no payload field"
            }
        );
        assert_eq!(error.status_code(), 400);
    }

    #[test]
    fn form_with_two_payloads_is_rejected() {
        let error = ContentType::Form
            .json_payload(b"payload=%7B%7D&payload=%7B%7D")
            .unwrap_err();
        assert!(error.to_string().contains("more than one"), "{error}");
    }

    #[test]
    fn json_payload_borrows_body() {
        let body = br#"{"zen":"x"}"#;
        assert!(matches!(
            ContentType::Json.json_payload(body),
            Ok(Cow::Borrowed(_))
        ));
    }
}
