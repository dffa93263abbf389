use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use super::headers::{SIGNATURE_256_HEADER, SIGNATURE_SHA1_HEADER};
use super::{WebhookError, WebhookHeaders};
use crate::secret::Secret;

/// Signature checks a receiver applies besides the default HMAC-SHA256 check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignatureOptions {
    /// Accept a request that carries only the HMAC-SHA1 `X-Hub-Signature` header, verifying
    /// it instead. Off by default. GitHub sends `X-Hub-Signature-256` with every signed
    /// delivery, so only old senders need this.
    pub allow_sha1: bool,
}

impl SignatureOptions {
    /// Sets whether a request signed only with HMAC-SHA1 is accepted.
    pub fn with_sha1(mut self, allow: bool) -> Self {
        self.allow_sha1 = allow;
        self
    }
}

/// The HMAC algorithm a delivery was verified with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// HMAC-SHA256 from `X-Hub-Signature-256`.
    Sha256,
    /// HMAC-SHA1 from `X-Hub-Signature`.
    Sha1,
}

/// Verifies the signature of a delivery over the exact raw `body` bytes.
///
/// `X-Hub-Signature-256` is checked when present, even if `X-Hub-Signature` is present too.
/// A request with only `X-Hub-Signature` is verified with HMAC-SHA1 when
/// [`SignatureOptions::allow_sha1`] is set and rejected otherwise. The digest comparison runs
/// in constant time.
///
/// A signature must be the prefix (`sha256=` or `sha1=`) followed by the digest in
/// lower-case hex. Upper-case hex digits are rejected as malformed, because GitHub always
/// sends lower-case.
///
/// # Errors
///
/// - [`WebhookError::EmptySecret`] when `secret` is empty.
/// - [`WebhookError::MissingSignature`] when neither header is present.
/// - [`WebhookError::Sha1NotAllowed`] when only the SHA-1 header is present and not allowed.
/// - [`WebhookError::MalformedSignature`] when the checked header is not in the form above.
/// - [`WebhookError::SignatureMismatch`] when the digest does not match.
pub fn verify_signature(
    headers: &WebhookHeaders,
    body: &[u8],
    secret: &Secret,
    options: SignatureOptions,
) -> Result<SignatureAlgorithm, WebhookError> {
    if secret.is_empty() {
        return Err(WebhookError::EmptySecret);
    }
    if let Some(value) = headers.signature_256()? {
        verify::<Hmac<Sha256>>(&SHA256_FORMAT, value, body, secret)?;
        return Ok(SignatureAlgorithm::Sha256);
    }
    let Some(value) = headers.signature_sha1()? else {
        return Err(WebhookError::MissingSignature);
    };
    if !options.allow_sha1 {
        return Err(WebhookError::Sha1NotAllowed);
    }
    verify::<Hmac<Sha1>>(&SHA1_FORMAT, value, body, secret)?;
    Ok(SignatureAlgorithm::Sha1)
}

/// Returns the `X-Hub-Signature-256` value for `body`: `sha256=` and the HMAC-SHA256 in
/// lower-case hex.
///
/// Use it to sign test deliveries. An empty secret gives a signature that
/// [`verify_signature`] rejects.
pub fn sign_sha256(secret: &Secret, body: &[u8]) -> String {
    format!(
        "{}{}",
        SHA256_FORMAT.prefix,
        hex::encode(digest::<Hmac<Sha256>>(secret, body))
    )
}

/// Returns the `X-Hub-Signature` value for `body`: `sha1=` and the HMAC-SHA1 in lower-case
/// hex.
pub fn sign_sha1(secret: &Secret, body: &[u8]) -> String {
    format!(
        "{}{}",
        SHA1_FORMAT.prefix,
        hex::encode(digest::<Hmac<Sha1>>(secret, body))
    )
}

/// Layout of one signature header.
struct SignatureFormat {
    header: &'static str,
    prefix: &'static str,
    /// Digest size in bytes. The hex form has twice as many digits.
    digest_len: usize,
}

const SHA256_FORMAT: SignatureFormat = SignatureFormat {
    header: SIGNATURE_256_HEADER,
    prefix: "sha256=",
    digest_len: 32,
};

const SHA1_FORMAT: SignatureFormat = SignatureFormat {
    header: SIGNATURE_SHA1_HEADER,
    prefix: "sha1=",
    digest_len: 20,
};

/// Largest digest among the supported algorithms (SHA-256), in bytes.
const MAX_DIGEST_LEN: usize = 32;

fn new_mac<M: Mac + hmac::digest::KeyInit>(secret: &Secret) -> M {
    <M as Mac>::new_from_slice(secret.expose().as_bytes()).expect("HMAC accepts keys of any length")
}

fn digest<M: Mac + hmac::digest::KeyInit>(secret: &Secret, body: &[u8]) -> Vec<u8> {
    let mut mac = new_mac::<M>(secret);
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn verify<M: Mac + hmac::digest::KeyInit>(
    format: &SignatureFormat,
    value: &str,
    body: &[u8],
    secret: &Secret,
) -> Result<(), WebhookError> {
    let mut expected = [0u8; MAX_DIGEST_LEN];
    let expected = &mut expected[..format.digest_len];
    decode_signature(format, value, expected)?;

    let mut mac = new_mac::<M>(secret);
    mac.update(body);
    mac.verify_slice(expected)
        .map_err(|_| WebhookError::SignatureMismatch {
            header: format.header,
        })
}

/// Checks the form of a signature header and decodes its digest into `digest`.
fn decode_signature(
    format: &SignatureFormat,
    value: &str,
    digest: &mut [u8],
) -> Result<(), WebhookError> {
    let malformed = |reason: String| WebhookError::MalformedSignature {
        header: format.header,
        reason,
    };
    let Some(hex_digits) = value.strip_prefix(format.prefix) else {
        return Err(malformed(format!(
            "it does not start with {}",
            format.prefix
        )));
    };
    let expected_len = format.digest_len * 2;
    if hex_digits.len() != expected_len {
        return Err(malformed(format!(
            "expected {expected_len} hex digits after {}, found {} bytes",
            format.prefix,
            hex_digits.len()
        )));
    }
    if hex_digits.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(malformed(
            "it contains upper-case hex digits, but GitHub sends lower-case hex".to_owned(),
        ));
    }
    hex::decode_to_slice(hex_digits, digest)
        .map_err(|_| malformed("it contains characters that are not hex digits".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test vector from GitHub's "Validating webhook deliveries" documentation.
    const DOC_SECRET: &str = "It's a Secret to Everybody";
    const DOC_BODY: &[u8] = b"Hello, World!";
    const DOC_SHA256: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    /// HMAC-SHA1 of the same secret and body (not in GitHub's documentation).
    const DOC_SHA1: &str = "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59";

    fn headers(pairs: &[(&str, &str)]) -> WebhookHeaders {
        WebhookHeaders::from_pairs(pairs.iter().map(|(name, value)| (*name, value.as_bytes())))
    }

    fn verify_doc(
        pairs: &[(&str, &str)],
        options: SignatureOptions,
    ) -> Result<SignatureAlgorithm, WebhookError> {
        verify_signature(&headers(pairs), DOC_BODY, &Secret::new(DOC_SECRET), options)
    }

    #[test]
    fn github_test_vector_passes() {
        let result = verify_doc(
            &[("X-Hub-Signature-256", DOC_SHA256)],
            SignatureOptions::default(),
        );
        assert_eq!(result, Ok(SignatureAlgorithm::Sha256));
    }

    #[test]
    fn sign_reproduces_test_vectors() {
        let secret = Secret::new(DOC_SECRET);
        assert_eq!(sign_sha256(&secret, DOC_BODY), DOC_SHA256);
        assert_eq!(sign_sha1(&secret, DOC_BODY), DOC_SHA1);
    }

    #[test]
    fn changed_body_is_mismatch() {
        let result = verify_signature(
            &headers(&[("X-Hub-Signature-256", DOC_SHA256)]),
            b"Hello, World?",
            &Secret::new(DOC_SECRET),
            SignatureOptions::default(),
        );
        assert_eq!(
            result,
            Err(WebhookError::SignatureMismatch {
                header: SIGNATURE_256_HEADER
            })
        );
    }

    #[test]
    fn wrong_secret_is_mismatch() {
        let result = verify_signature(
            &headers(&[("X-Hub-Signature-256", DOC_SHA256)]),
            DOC_BODY,
            &Secret::new("another secret"),
            SignatureOptions::default(),
        );
        assert!(
            matches!(result, Err(WebhookError::SignatureMismatch { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn empty_secret_is_config_error() {
        let empty = Secret::new("");
        let signature = sign_sha256(&empty, DOC_BODY);
        let result = verify_signature(
            &headers(&[("X-Hub-Signature-256", &signature)]),
            DOC_BODY,
            &empty,
            SignatureOptions::default(),
        );
        assert_eq!(result, Err(WebhookError::EmptySecret));
        assert_eq!(WebhookError::EmptySecret.status_code(), 500);
    }

    #[test]
    fn missing_signature_is_rejected() {
        let result = verify_doc(&[("X-GitHub-Event", "ping")], SignatureOptions::default());
        assert_eq!(result, Err(WebhookError::MissingSignature));
    }

    #[test]
    fn sha1_only_rejected_by_default() {
        let result = verify_doc(
            &[("X-Hub-Signature", DOC_SHA1)],
            SignatureOptions::default(),
        );
        assert_eq!(result, Err(WebhookError::Sha1NotAllowed));
    }

    #[test]
    fn sha1_only_accepted_when_allowed() {
        let options = SignatureOptions::default().with_sha1(true);
        let result = verify_doc(&[("X-Hub-Signature", DOC_SHA1)], options);
        assert_eq!(result, Ok(SignatureAlgorithm::Sha1));
    }

    #[test]
    fn sha1_mismatch_when_allowed() {
        let options = SignatureOptions::default().with_sha1(true);
        let wrong = "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca5a";
        let result = verify_doc(&[("X-Hub-Signature", wrong)], options);
        assert_eq!(
            result,
            Err(WebhookError::SignatureMismatch {
                header: SIGNATURE_SHA1_HEADER
            })
        );
    }

    #[test]
    fn sha256_preferred_over_sha1() {
        let options = SignatureOptions::default().with_sha1(true);
        let both = verify_doc(
            &[
                ("X-Hub-Signature", DOC_SHA1),
                ("X-Hub-Signature-256", DOC_SHA256),
            ],
            options,
        );
        assert_eq!(both, Ok(SignatureAlgorithm::Sha256));

        // A valid SHA-1 signature does not rescue a wrong SHA-256 one.
        let wrong_256 = "sha256=0000000000000000000000000000000000000000000000000000000000000000";
        let result = verify_doc(
            &[
                ("X-Hub-Signature", DOC_SHA1),
                ("X-Hub-Signature-256", wrong_256),
            ],
            options,
        );
        assert!(
            matches!(result, Err(WebhookError::SignatureMismatch { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn malformed_signatures_are_rejected() {
        let digest = DOC_SHA256.trim_start_matches("sha256=");
        let cases = [
            ("wrong prefix", format!("sha1={digest}")),
            ("upper-case prefix", format!("SHA256={digest}")),
            ("no prefix", digest.to_owned()),
            ("empty", String::new()),
            ("short", format!("sha256={}", &digest[..63])),
            ("long", format!("sha256={digest}0")),
            ("non-hex", format!("sha256={}g", &digest[..63])),
            (
                "upper-case hex",
                format!("sha256={}", digest.to_ascii_uppercase()),
            ),
            (
                "multi-byte characters",
                format!("sha256={}é", &digest[..62]),
            ),
        ];
        for (case, value) in cases {
            let result = verify_doc(
                &[("X-Hub-Signature-256", &value)],
                SignatureOptions::default(),
            );
            let Err(error) = result else {
                panic!("{case}: {value:?} was accepted");
            };
            assert!(
                matches!(
                    error,
                    WebhookError::MalformedSignature {
                        header: SIGNATURE_256_HEADER,
                        ..
                    }
                ),
                "{case}: {error:?}"
            );
            assert_eq!(error.status_code(), 401, "{case}");
        }
    }

    #[test]
    fn malformed_message_hides_value() {
        let value = "sha256=ZZZZ-not-a-signature";
        let error = verify_doc(
            &[("X-Hub-Signature-256", value)],
            SignatureOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(!error.contains("ZZZZ"), "{error}");
        assert!(error.contains("X-Hub-Signature-256"), "{error}");
    }

    #[test]
    fn mismatch_message_hides_value() {
        let wrong = "sha256=1111111111111111111111111111111111111111111111111111111111111111";
        let error = verify_doc(
            &[("X-Hub-Signature-256", wrong)],
            SignatureOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(!error.contains("1111"), "{error}");
        assert!(!error.contains(DOC_SECRET), "{error}");
    }
}
