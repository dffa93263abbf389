//! The inputs of a setup script: credential, runner settings and runner install source.

use std::path::PathBuf;

use crate::secret::Secret;

use super::{render, validate, SetupScript, SetupScriptError};

/// Actions runner release that [`RunnerSource::default`] downloads.
///
/// NOTE: GitHub stops accepting runner versions some time after newer ones are released,
/// so a pinned version needs raising from time to time. The downloaded runner updates
/// itself when GitHub requests it, which costs time at the start of a job.
pub const DEFAULT_RUNNER_VERSION: &str = "2.328.0";

/// Work folder that [`SetupScriptParams::new`] sets, relative to the runner directory.
pub const DEFAULT_WORK_FOLDER: &str = "_work";

/// Maximum length of a runner name in characters. GitHub rejects longer names.
pub const MAX_RUNNER_NAME_LEN: usize = 64;

/// Credential that registers the runner with GitHub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerCredential {
    /// Registration token from GitHub's create-registration-token endpoint. The script
    /// passes it to `config.sh --token` and then starts `run.sh`.
    RegistrationToken(Secret),
    /// Encoded just-in-time runner configuration from GitHub's generate-jitconfig endpoint.
    /// The script skips `config.sh` and starts `run.sh --jitconfig`.
    JitConfig(Secret),
}

impl RunnerCredential {
    /// Returns the credential's name as error messages write it.
    pub(super) fn description(&self) -> &'static str {
        match self {
            RunnerCredential::RegistrationToken(_) => "registration token",
            RunnerCredential::JitConfig(_) => "JIT config",
        }
    }

    /// Returns the secret value.
    pub(super) fn secret(&self) -> &Secret {
        match self {
            RunnerCredential::RegistrationToken(secret) | RunnerCredential::JitConfig(secret) => {
                secret
            }
        }
    }
}

/// Source of the Actions runner: a download or a directory that is already on the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunnerSource {
    /// Download a Linux runner release into `runner/` in the working directory, with `curl`
    /// or, if `curl` is missing, `wget`.
    Download {
        /// Runner version such as `2.328.0`: digits separated by dots, without a leading `v`.
        version: String,
        /// Full URL of a runner `.tar.gz` to download instead of the GitHub release. The
        /// script uses it as given for every machine type, and `version` only appears in
        /// progress output.
        url: Option<String>,
    },
    /// Use a runner that is already extracted on the machine, with no download.
    PreInstalled {
        /// Absolute path of the extracted runner directory, the one that contains
        /// `config.sh` and `run.sh`.
        path: PathBuf,
        /// Whether to copy the directory into `runner/` in the working directory first.
        /// Copying lets many runners on one host share one pre-installed directory, because
        /// `config.sh` writes the runner's registration into the directory it runs from.
        /// Without copying, the directory serves one runner at a time.
        copy: bool,
    },
}

impl Default for RunnerSource {
    /// Downloads [`DEFAULT_RUNNER_VERSION`] from GitHub.
    fn default() -> Self {
        RunnerSource::Download {
            version: DEFAULT_RUNNER_VERSION.to_owned(),
            url: None,
        }
    }
}

/// Settings of one runner, from which [`SetupScriptParams::build`] creates its setup
/// script.
///
/// Create it with [`SetupScriptParams::new`] and set the public fields. With a
/// [`RunnerCredential::JitConfig`], GitHub has already stored the name, labels, runner
/// group and work folder in the JIT config, so the script ignores `runner_name`,
/// `labels`, `runner_group`, `work_folder` and `ephemeral`. They are still validated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SetupScriptParams {
    /// Web URL of the repository, organization or enterprise the runner registers with,
    /// such as `https://github.com/octo-org/octo-repo` or `https://github.com/octo-org`.
    pub github_url: String,
    /// Registration token or JIT config.
    pub credential: RunnerCredential,
    /// Name the runner registers with: not empty, at most [`MAX_RUNNER_NAME_LEN`]
    /// characters, no control characters.
    pub runner_name: String,
    /// Custom labels. Each is non-empty and contains neither `,` (because `config.sh`
    /// splits `--labels` on commas) nor control characters. When empty, the script omits
    /// `--labels` and the runner gets only GitHub's default labels.
    pub labels: Vec<String>,
    /// Runner group to join. `None` joins the default group.
    pub runner_group: Option<String>,
    /// Whether the runner takes one job and then unregisters (`config.sh --ephemeral`).
    pub ephemeral: bool,
    /// Directory where the runner runs jobs, passed to `config.sh --work`. A relative path
    /// is relative to the runner directory.
    pub work_folder: String,
    /// User that runs `config.sh` and `run.sh` through `sudo -E -u USER --`. The script
    /// first makes this user the owner of the runner directory and of the hook directory.
    /// The value must be a portable user name other than `root`: ASCII letters, digits,
    /// `_`, `-` and `.`, not starting with `-`. The user needs search permission on the
    /// working directory. `sudo` must permit `-E` (the sudoers `SETENV` tag or `setenv`
    /// option), which passes the hook variables on.
    ///
    /// `None` runs both as the user that runs the script. When that user is root, the
    /// script sets `RUNNER_ALLOW_RUNASROOT=1`, without which the runner's scripts refuse to
    /// run as root.
    pub run_as: Option<String>,
    /// Shell commands the runner runs before each job. The script writes them to a file and
    /// points `ACTIONS_RUNNER_HOOK_JOB_STARTED` at it. The runner runs that file with
    /// `bash -e`, so a failing command fails the job.
    pub job_started_hook: Option<String>,
    /// Shell commands the runner runs after each job, through a file that
    /// `ACTIONS_RUNNER_HOOK_JOB_COMPLETED` points at.
    pub job_completed_hook: Option<String>,
    /// Source of the Actions runner.
    pub runner_source: RunnerSource,
}

impl SetupScriptParams {
    /// Creates parameters for an ephemeral runner with no custom labels, the default runner
    /// group, work folder [`DEFAULT_WORK_FOLDER`], no hooks, the current user, and a
    /// download of [`DEFAULT_RUNNER_VERSION`].
    pub fn new(
        github_url: impl Into<String>,
        credential: RunnerCredential,
        runner_name: impl Into<String>,
    ) -> Self {
        Self {
            github_url: github_url.into(),
            credential,
            runner_name: runner_name.into(),
            labels: Vec::new(),
            runner_group: None,
            ephemeral: true,
            work_folder: DEFAULT_WORK_FOLDER.to_owned(),
            run_as: None,
            job_started_hook: None,
            job_completed_hook: None,
            runner_source: RunnerSource::default(),
        }
    }

    /// Checks every parameter, whichever credential is set, and returns the first problem.
    pub fn validate(&self) -> Result<(), SetupScriptError> {
        validate::validate_params(self)
    }

    /// Validates the parameters and builds the setup script and its compact wrapper form.
    pub fn build(&self) -> Result<SetupScript, SetupScriptError> {
        self.validate()?;
        Ok(SetupScript::new(render::render_script(self)))
    }
}
