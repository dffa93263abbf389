//! Deterministic runner names, and recognising them.
//!
//! This module is pure: it takes values and returns values.

use sha2::{Digest, Sha256};

use crate::model::Job;

/// Maximum length of a runner name, as GitHub accepts it.
pub const MAX_RUNNER_NAME_LEN: usize = 64;

/// Maximum length of a runner name prefix. Longer parts of a prefix are cut when a name
/// would exceed [`MAX_RUNNER_NAME_LEN`] (see [`runner_name`]).
pub const MAX_RUNNER_NAME_PREFIX_LEN: usize = 64;

/// Length of the prefix hash that replaces the cut part of a long prefix.
const PREFIX_HASH_LEN: usize = 8;

/// Returns the runner name for a job: `<prefix>-<workflow job id>-<run attempt>`.
///
/// The name is the same for every delivery and dispatch attempt of one job attempt, so a
/// repeated launch can be recognised by name, and it differs between jobs and between run
/// attempts. When the name would exceed 64 characters, the prefix is cut and followed by
/// the first 8 hex digits of its SHA-256, so two long prefixes that share their start
/// still give different names. The prefix must pass [`validate_runner_name_prefix`].
pub fn runner_name(prefix: &str, job: &Job) -> String {
    let suffix = format!("-{}-{}", job.workflow_job_id, job.run_attempt);
    if prefix.len() + suffix.len() <= MAX_RUNNER_NAME_LEN {
        return format!("{prefix}{suffix}");
    }
    let hash = hex::encode(Sha256::digest(prefix.as_bytes()));
    let keep = MAX_RUNNER_NAME_LEN - suffix.len() - PREFIX_HASH_LEN - 1;
    // Prefixes are ASCII (see validate_runner_name_prefix), so any byte index is a
    // character boundary.
    format!("{}-{}{suffix}", &prefix[..keep], &hash[..PREFIX_HASH_LEN])
}

/// Returns whether `name` is a runner name that [`runner_name`] makes with `prefix`, for
/// any job: `<prefix>-<digits>-<digits>`, or the cut form with the prefix's hash.
pub fn is_own_runner_name(prefix: &str, name: &str) -> bool {
    let mut parts = name.rsplitn(3, '-');
    let (Some(attempt), Some(job_id), Some(stem)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !digits(attempt) || !digits(job_id) {
        return false;
    }
    if stem == prefix {
        return true;
    }
    let Some((cut, hash)) = stem.rsplit_once('-') else {
        return false;
    };
    let expected = hex::encode(Sha256::digest(prefix.as_bytes()));
    hash.len() == PREFIX_HASH_LEN && expected.starts_with(hash) && prefix.starts_with(cut)
}

/// Checks that a prefix keeps runner names valid: 1 to 64 ASCII letters, digits or `-`,
/// starting with a letter or digit.
pub fn validate_runner_name_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() || prefix.len() > MAX_RUNNER_NAME_PREFIX_LEN {
        return Err(format!(
            "runner name prefix {prefix:?} must be 1 to {MAX_RUNNER_NAME_PREFIX_LEN} characters long"
        ));
    }
    if !prefix.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(format!(
            "runner name prefix {prefix:?} may contain only ASCII letters, digits and '-', starting with a letter or digit"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datastore::conformance::sample_job;
    use crate::model::TargetId;

    fn job(workflow_job_id: u64, run_attempt: u32) -> Job {
        let mut job = sample_job(TargetId::new_random());
        job.workflow_job_id = workflow_job_id;
        job.run_attempt = run_attempt;
        job
    }

    #[test]
    fn name_is_deterministic_per_attempt() {
        let mut job = job(38000000001, 1);
        assert_eq!(runner_name("myshoes", &job), "myshoes-38000000001-1");
        job.attempt = 3;
        assert_eq!(
            runner_name("myshoes", &job),
            "myshoes-38000000001-1",
            "the dispatch attempt does not change the name"
        );
        job.run_attempt = 2;
        assert_eq!(runner_name("myshoes", &job), "myshoes-38000000001-2");
    }

    #[test]
    fn long_prefix_is_cut_with_hash() {
        let largest = job(u64::MAX, u32::MAX);
        for length in [1, 30, 31, 40, 63, 64] {
            let prefix = "p".repeat(length);
            let name = runner_name(&prefix, &largest);
            assert!(
                name.len() <= MAX_RUNNER_NAME_LEN,
                "{length}: {} characters: {name}",
                name.len()
            );
            assert!(name.ends_with("-18446744073709551615-4294967295"), "{name}");
        }
        assert_eq!(
            runner_name(&"p".repeat(30), &largest).len(),
            62,
            "short enough: not cut"
        );
    }

    #[test]
    fn cut_prefixes_stay_distinct() {
        let largest = job(u64::MAX, u32::MAX);
        let a = runner_name(&format!("{}-team-a", "x".repeat(40)), &largest);
        let b = runner_name(&format!("{}-team-b", "x".repeat(40)), &largest);
        assert_ne!(
            a, b,
            "prefixes that differ only past the cut must give different names"
        );
        assert_eq!(a.len(), MAX_RUNNER_NAME_LEN);
    }

    #[test]
    fn own_names_are_recognised() {
        let largest = job(u64::MAX, u32::MAX);
        for prefix in ["myshoes", "team-a", &"x".repeat(60)] {
            let name = runner_name(prefix, &largest);
            assert!(is_own_runner_name(prefix, &name), "{prefix}: {name}");
        }
        assert!(!is_own_runner_name("myshoes", "GitHub Actions 1000009543"));
        assert!(!is_own_runner_name("myshoes", "myshoes-abc-1"));
        assert!(!is_own_runner_name("myshoes", "other-12-1"));
        assert!(!is_own_runner_name("team-a", "team-b-12-1"));
        let other = runner_name(&"y".repeat(60), &largest);
        assert!(!is_own_runner_name(&"x".repeat(60), &other));
    }

    #[test]
    fn prefix_validation_rejects_bad_input() {
        assert!(validate_runner_name_prefix("myshoes").is_ok());
        assert!(validate_runner_name_prefix("team-a-01").is_ok());
        assert!(validate_runner_name_prefix(&"a".repeat(64)).is_ok());
        for bad in ["", "-x", "a b", "a/b", "a_b", "ä"] {
            assert!(
                validate_runner_name_prefix(bad).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(validate_runner_name_prefix(&"a".repeat(65)).is_err());
    }
}
