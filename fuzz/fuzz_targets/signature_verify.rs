//! Fuzzes the signature check with arbitrary signature headers and bodies.
//!
//! The input is `header value`, a NUL byte, and the body; without a NUL the whole input is
//! the header value and the body is empty. The target fails on a panic, when an arbitrary
//! header is accepted for a body it does not sign, and when the correct signature of the
//! body is rejected.
#![no_main]

use libfuzzer_sys::fuzz_target;
use myshoes::secret::Secret;
use myshoes::webhook::{sign_sha256, verify_signature, SignatureOptions, WebhookHeaders};

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|byte| *byte == 0) {
        Some(index) => (&data[..index], &data[index + 1..]),
        None => (data, &[][..]),
    };
    let secret = Secret::new("fuzz-secret");
    let options = SignatureOptions::default().with_sha1(true);

    let correct = sign_sha256(&secret, body);
    let checked = verify_signature(
        &WebhookHeaders::from_pairs([("X-Hub-Signature-256", header)]),
        body,
        &secret,
        options,
    );
    // The check takes only `sha256=` and lower-case hex, as GitHub sends it, and header
    // values are trimmed of surrounding spaces and tabs, so the one header that may pass is
    // the correct one with optional spaces and tabs around it.
    if checked.is_ok() {
        let trimmed = std::str::from_utf8(header)
            .expect("an accepted header is UTF-8")
            .trim_matches([' ', '\t']);
        assert!(
            trimmed == correct,
            "accepted a signature that does not sign the body"
        );
    }

    let accepted = verify_signature(
        &WebhookHeaders::from_pairs([("X-Hub-Signature-256", correct.as_bytes())]),
        body,
        &secret,
        options,
    );
    assert!(accepted.is_ok(), "rejected the correct signature");

    let _ = verify_signature(
        &WebhookHeaders::from_pairs([("X-Hub-Signature", header)]),
        body,
        &secret,
        options,
    );
});
