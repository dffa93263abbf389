//! Deterministic runner names.

use crate::model::Job;

/// Maximum length of a runner name prefix. With a 20-digit job id and a 10-digit run
/// attempt, the longest name is 62 characters, below GitHub's limit of 64.
pub const MAX_RUNNER_NAME_PREFIX_LEN: usize = 30;

/// Returns the runner name for a job: `<prefix>-<workflow job id>-<run attempt>`.
///
/// The name is the same for every delivery and dispatch attempt of one job attempt, so a
/// repeated launch can be recognised by name, and it differs between jobs and between run
/// attempts. The prefix must pass [`validate_runner_name_prefix`].
pub fn runner_name(prefix: &str, job: &Job) -> String {
    format!("{prefix}-{}-{}", job.workflow_job_id, job.run_attempt)
}

/// Checks that a prefix keeps runner names valid: 1 to 30 ASCII letters, digits or `-`,
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

    #[test]
    fn name_is_deterministic_and_bounded() {
        let mut job = sample_job(TargetId::new_random());
        job.workflow_job_id = u64::MAX;
        job.run_attempt = u32::MAX;
        let prefix = "p".repeat(MAX_RUNNER_NAME_PREFIX_LEN);
        let name = runner_name(&prefix, &job);
        assert_eq!(name, runner_name(&prefix, &job));
        assert!(name.len() <= 64, "{} characters: {name}", name.len());
        assert_eq!(name.len(), 62);
    }

    #[test]
    fn name_differs_per_attempt() {
        let mut job = sample_job(TargetId::new_random());
        job.workflow_job_id = 38000000001;
        job.run_attempt = 1;
        assert_eq!(runner_name("myshoes", &job), "myshoes-38000000001-1");
        job.run_attempt = 2;
        assert_eq!(runner_name("myshoes", &job), "myshoes-38000000001-2");
        // The dispatch attempt does not change the name.
        job.attempt = 3;
        assert_eq!(runner_name("myshoes", &job), "myshoes-38000000001-2");
    }

    #[test]
    fn prefix_validation_rejects_bad_input() {
        assert!(validate_runner_name_prefix("myshoes").is_ok());
        assert!(validate_runner_name_prefix("team-a-01").is_ok());
        for bad in ["", "-x", "a b", "a/b", "a_b", "ä"] {
            assert!(
                validate_runner_name_prefix(bad).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(validate_runner_name_prefix(&"a".repeat(31)).is_err());
    }
}
