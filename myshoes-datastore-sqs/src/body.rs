//! The message body: a compact, versioned JSON envelope around a [`Job`].

use myshoes::model::Job;
use serde::{Deserialize, Serialize};

/// Version of the message body this crate writes and the newest it reads.
///
/// A body is `{"v":1,"job":{...}}`, where `job` is the [`Job`] in its serde form. A
/// consumer rejects a body with another version instead of guessing at its fields, so
/// roll out a consumer that reads a new version before any producer writes it.
pub const BODY_VERSION: u32 = 1;

#[derive(Serialize)]
struct EnvelopeRef<'a> {
    v: u32,
    job: &'a Job,
}

#[derive(Deserialize)]
struct VersionOnly {
    v: u64,
}

#[derive(Deserialize)]
struct EnvelopeV1 {
    job: Job,
}

/// Error from decoding a message body that is not a job this crate can read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is not a JSON object with a numeric version field `v`.
    #[error("body is not a JSON object with a numeric version field `v`")]
    NotEnvelope(#[source] serde_json::Error),
    /// The body has a version this crate does not read.
    #[error("body version {found} is not supported; this consumer reads version {supported}, so upgrade it")]
    UnsupportedVersion {
        /// Version in the body.
        found: u64,
        /// Version this crate reads.
        supported: u32,
    },
    /// The body has a supported version but its `job` field is missing or invalid.
    #[error("body version {version} does not contain a valid job")]
    InvalidJob {
        /// Version in the body.
        version: u32,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

/// Encodes a job as a message body of version [`BODY_VERSION`].
pub fn encode_job(job: &Job) -> String {
    let envelope = EnvelopeRef {
        v: BODY_VERSION,
        job,
    };
    // Serializing a Job cannot fail because its serde form has only strings, numbers,
    // lists and maps with string keys.
    serde_json::to_string(&envelope).expect("a Job serializes to JSON")
}

/// Decodes a message body written by [`encode_job`].
///
/// # Errors
/// Fails with [`BodyError`] when the body is not an envelope, has an unsupported version,
/// or does not contain a valid job.
pub fn decode_job(body: &str) -> Result<Job, BodyError> {
    let version: VersionOnly = serde_json::from_str(body).map_err(BodyError::NotEnvelope)?;
    if version.v != u64::from(BODY_VERSION) {
        return Err(BodyError::UnsupportedVersion {
            found: version.v,
            supported: BODY_VERSION,
        });
    }
    let envelope: EnvelopeV1 =
        serde_json::from_str(body).map_err(|source| BodyError::InvalidJob {
            version: BODY_VERSION,
            source,
        })?;
    Ok(envelope.job)
}

#[cfg(test)]
mod tests {
    use super::*;
    use myshoes::datastore::conformance::sample_job;
    use myshoes::model::TargetId;

    #[test]
    fn largest_job_fits_one_message() {
        // Every field at the limit the webhook receiver enforces: 100 labels of 256 bytes,
        // a 512-byte host URL, a 39-character owner and a 100-character repository name.
        let mut job = sample_job(TargetId::new_random());
        job.labels = (0..myshoes::webhook::MAX_LABELS)
            .map(|index| {
                format!(
                    "{index:03}{}",
                    "l".repeat(myshoes::webhook::MAX_LABEL_LEN - 3)
                )
            })
            .collect();
        let host = format!("https://ghes.example.com/{}", "p".repeat(450));
        assert!(host.len() <= myshoes::model::MAX_HOST_LEN);
        job.host = host.parse().unwrap();
        job.repository = format!("{}/{}", "o".repeat(39), "r".repeat(100))
            .parse()
            .unwrap();
        job.delivery_id = Some("d".repeat(100));
        let body = encode_job(&job);
        assert!(
            body.len() < 64 * 1024,
            "{} bytes, far below SQS's 256 KiB",
            body.len()
        );
        assert_eq!(decode_job(&body).unwrap(), job);
    }

    #[test]
    fn body_round_trips_job() {
        let job = sample_job(TargetId::new_random());
        let body = encode_job(&job);
        assert!(body.starts_with(r#"{"v":1,"job":{"#), "{body}");
        assert_eq!(decode_job(&body).expect("decode"), job);
    }

    #[test]
    fn newer_version_is_rejected() {
        let body =
            encode_job(&sample_job(TargetId::new_random())).replacen(r#"{"v":1,"#, r#"{"v":2,"#, 1);
        let error = decode_job(&body).expect_err("version 2 is unknown");
        assert!(
            matches!(
                error,
                BodyError::UnsupportedVersion {
                    found: 2,
                    supported: 1
                }
            ),
            "got {error:?}"
        );
        assert!(error.to_string().contains("upgrade"), "{error}");
    }

    #[test]
    fn non_envelope_is_rejected() {
        for body in ["", "not json", "[]", r#"{"job":{}}"#, r#"{"v":"1"}"#] {
            let error = decode_job(body).expect_err("not an envelope");
            assert!(
                matches!(error, BodyError::NotEnvelope(_)),
                "{body:?}: {error:?}"
            );
        }
    }

    #[test]
    fn invalid_job_is_rejected() {
        let error = decode_job(r#"{"v":1,"job":{"id":"x"}}"#).expect_err("invalid job");
        assert!(
            matches!(error, BodyError::InvalidJob { version: 1, .. }),
            "got {error:?}"
        );
    }
}
