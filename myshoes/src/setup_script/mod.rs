//! Setup scripts that register and start one GitHub Actions runner on a fresh machine or
//! container.
//!
//! [`SetupScriptParams::build`] turns a credential and the runner's settings into a
//! [`SetupScript`]: a bash script and a compact wrapper form of the same script. A Stadium
//! runs either form with bash in an empty working directory that serves this runner
//! alone. The script then
//!
//! 1. downloads the runner into `runner/`, copies a pre-installed runner there, or uses a
//!    pre-installed runner in place ([`RunnerSource`]),
//! 2. writes the job hooks, if any, into `myshoes-hooks/`,
//! 3. with a registration token, runs `config.sh --unattended`, and
//! 4. replaces itself with `run.sh` through `exec`, so the runner's exit status is the
//!    script's.
//!
//! Progress lines on standard output start with `myshoes:` and never contain the
//! credential. The script needs bash and coreutils, `tar`, `gzip` and `curl` or `wget` for
//! a download, and `sudo` for [`SetupScriptParams::run_as`]. The wrapper form also needs
//! `base64` and `gzip`.
//!
//! Building is pure: it reads no files and does no I/O.
//!
//! ```
//! use myshoes::secret::Secret;
//! use myshoes::setup_script::{RunnerCredential, SetupScriptParams};
//!
//! let mut params = SetupScriptParams::new(
//!     "https://github.com/octo-org/octo-repo",
//!     RunnerCredential::RegistrationToken(Secret::new("AABBCCDDEEFF")),
//!     "myshoes-7f3a",
//! );
//! params.labels = vec!["linux".to_owned(), "gpu".to_owned()];
//! let setup = params.build()?;
//! assert!(setup.script().contains("--labels 'linux,gpu'"));
//! assert!(setup.wrapper().starts_with("#!/usr/bin/env bash\n"));
//! # Ok::<(), myshoes::setup_script::SetupScriptError>(())
//! ```

use std::fmt;
use std::sync::OnceLock;

mod error;
mod params;
mod quote;
mod render;
mod validate;

pub use error::SetupScriptError;

/// Argument that makes a setup script delete its own file as soon as it starts, so the
/// credential it contains does not stay on disk: `bash setup.sh --remove-script-file`.
/// The wrapper form always passes it.
pub const REMOVE_SCRIPT_FILE_FLAG: &str = "--remove-script-file";
pub use params::{
    RunnerCredential, RunnerSource, SetupScriptParams, DEFAULT_RUNNER_VERSION, DEFAULT_WORK_FOLDER,
    MAX_RUNNER_NAME_LEN,
};

/// A built setup script and its compact wrapper form, both bash.
///
/// Both texts contain the credential in clear, so `Debug` shows only their sizes and
/// there is no `Display`.
///
/// The wrapper is compressed on its first use, so backends that run the full script pay
/// nothing for it.
#[derive(Clone)]
pub struct SetupScript {
    script: String,
    wrapper: OnceLock<String>,
}

impl SetupScript {
    /// Returns the setup script. It contains the credential: hand it to the machine, never
    /// log it.
    pub fn script(&self) -> &str {
        &self.script
    }

    /// Returns the wrapper form: a short bash script that carries the setup script
    /// gzip-compressed and base64-encoded, writes it to a temporary file and runs it with
    /// `exec bash`, leaving standard input to the runner. The setup script deletes the
    /// temporary file as soon as it starts. It contains the credential too.
    pub fn wrapper(&self) -> &str {
        self.wrapper
            .get_or_init(|| render::render_wrapper(&self.script))
    }

    /// Returns the size of the setup script in bytes.
    pub fn script_len(&self) -> usize {
        self.script.len()
    }

    /// Returns the size of the wrapper form in bytes.
    pub fn wrapper_len(&self) -> usize {
        self.wrapper().len()
    }

    pub(crate) fn new(script: String) -> Self {
        Self {
            script,
            wrapper: OnceLock::new(),
        }
    }
}

impl fmt::Debug for SetupScript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetupScript")
            .field("script", &"[REDACTED]")
            .field("script_len", &self.script.len())
            .field("wrapper_len", &self.wrapper.get().map(String::len))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    const TOKEN: &str = "AABBCCDDEEFFGGHH";

    fn token_params() -> SetupScriptParams {
        SetupScriptParams::new(
            "https://github.com/octo-org/octo-repo",
            RunnerCredential::RegistrationToken(Secret::new(TOKEN)),
            "runner-1",
        )
    }

    #[test]
    fn debug_redacts_script() {
        let setup = token_params().build().expect("valid parameters");
        let debug = format!("{setup:?}");
        assert!(!debug.contains(TOKEN), "{debug}");
        assert!(debug.contains("[REDACTED]"), "{debug}");
        assert!(
            debug.contains(&format!("script_len: {}", setup.script_len())),
            "{debug}"
        );
    }

    #[test]
    fn build_rejects_invalid_params() {
        let mut params = token_params();
        params.labels = vec!["a,b".to_owned()];
        let error = params
            .build()
            .expect_err("label with comma must be rejected");
        assert!(
            matches!(error, SetupScriptError::InvalidLabel { index: 0, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn lengths_match_text() {
        let setup = token_params().build().expect("valid parameters");
        assert_eq!(setup.script_len(), setup.script().len());
        assert_eq!(setup.wrapper_len(), setup.wrapper().len());
    }

    #[test]
    fn token_appears_once_quoted() {
        let setup = token_params().build().expect("valid parameters");
        assert_eq!(setup.script().matches(TOKEN).count(), 1);
        assert!(setup.script().contains(&format!("--token '{TOKEN}'")));
        assert!(
            !setup.wrapper().contains(TOKEN),
            "the wrapper carries the script encoded"
        );
    }

    #[test]
    fn default_download_url_per_arch() {
        let script = token_params()
            .build()
            .expect("valid parameters")
            .script()
            .to_owned();
        let expected = format!(
            "runner_url='https://github.com/actions/runner/releases/download/v{0}/actions-runner-linux-'\"$runner_arch\"'-{0}.tar.gz'",
            DEFAULT_RUNNER_VERSION
        );
        assert!(script.contains(&expected), "{script}");
        assert!(
            script.contains("x86_64 | amd64) runner_arch=x64 ;;"),
            "{script}"
        );
        assert!(
            script.contains("aarch64 | arm64) runner_arch=arm64 ;;"),
            "{script}"
        );
    }

    #[test]
    fn labels_omitted_when_empty() {
        let script = token_params()
            .build()
            .expect("valid parameters")
            .script()
            .to_owned();
        assert!(!script.contains("--labels"), "{script}");
        assert!(script.contains("--ephemeral"), "{script}");
    }

    #[test]
    fn ephemeral_flag_can_be_off() {
        let mut params = token_params();
        params.ephemeral = false;
        let script = params
            .build()
            .expect("valid parameters")
            .script()
            .to_owned();
        assert!(!script.contains("--ephemeral"), "{script}");
    }
}
