//! Checks of every [`SetupScriptParams`] value before it is quoted into a script.
//!
//! Quoting alone makes any value safe for bash, except for a NUL byte, which a bash word
//! cannot contain. These checks also reject values that GitHub or `config.sh` would
//! misread, with errors that explain the fix.

use std::path::Path;

use super::{RunnerSource, SetupScriptError, SetupScriptParams, MAX_RUNNER_NAME_LEN};

/// Validates every field of `params` and returns the first problem.
pub(super) fn validate_params(params: &SetupScriptParams) -> Result<(), SetupScriptError> {
    validate_github_url(&params.github_url)?;
    validate_credential(params)?;
    validate_runner_name(&params.runner_name)?;
    for (index, label) in params.labels.iter().enumerate() {
        validate_label(index, label)?;
    }
    if let Some(group) = &params.runner_group {
        validate_runner_group(group)?;
    }
    validate_work_folder(&params.work_folder)?;
    if let Some(user) = &params.run_as {
        validate_run_as(user)?;
    }
    if let Some(command) = &params.job_started_hook {
        validate_hook("job_started_hook", command)?;
    }
    if let Some(command) = &params.job_completed_hook {
        validate_hook("job_completed_hook", command)?;
    }
    validate_runner_source(&params.runner_source)
}

fn invalid(field: &'static str, value: &str, reason: impl Into<String>) -> SetupScriptError {
    SetupScriptError::InvalidValue {
        field,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// Returns the first control character in `value` that is not in `allowed`.
fn find_control_character(value: &str, allowed: &[char]) -> Option<char> {
    value
        .chars()
        .find(|character| character.is_control() && !allowed.contains(character))
}

/// Describes a rejected control character, such as `the control character U+000A`.
fn describe_control_character(character: char) -> String {
    format!(
        "contains the control character U+{:04X}",
        u32::from(character)
    )
}

fn check_no_control_characters(field: &'static str, value: &str) -> Result<(), SetupScriptError> {
    match find_control_character(value, &[]) {
        Some(character) => Err(invalid(
            field,
            value,
            format!("{}; remove it", describe_control_character(character)),
        )),
        None => Ok(()),
    }
}

/// Checks that `value` is an absolute http(s) URL with no whitespace or control characters.
fn check_http_url(field: &'static str, value: &str) -> Result<url::Url, SetupScriptError> {
    if value.is_empty() {
        return Err(invalid(
            field,
            value,
            "must not be empty; set an https:// URL",
        ));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            field,
            value,
            "contains whitespace or a control character; percent-encode it or remove it",
        ));
    }
    let parsed = url::Url::parse(value).map_err(|error| {
        invalid(
            field,
            value,
            format!("is not a URL ({error}); set an https:// URL"),
        )
    })?;
    if parsed.scheme() != "https" && parsed.scheme() != "http" {
        return Err(invalid(
            field,
            value,
            format!(
                "has the scheme {:?}; use https:// or http://",
                parsed.scheme()
            ),
        ));
    }
    Ok(parsed)
}

fn validate_github_url(value: &str) -> Result<(), SetupScriptError> {
    const FIELD: &str = "github_url";
    const EXAMPLE: &str =
        "such as https://github.com/octo-org/octo-repo or https://github.com/octo-org";

    let parsed = check_http_url(FIELD, value)?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(
            FIELD,
            value,
            "contains a user name or password, which the script would print; remove it, \
             because the registration token or JIT config is the only credential needed",
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid(
            FIELD,
            value,
            format!("has a query or fragment; use the plain web URL, {EXAMPLE}"),
        ));
    }
    if parsed.path().trim_matches('/').is_empty() {
        return Err(invalid(
            FIELD,
            value,
            format!("names no repository, organization or enterprise; use a URL {EXAMPLE}"),
        ));
    }
    Ok(())
}

fn validate_credential(params: &SetupScriptParams) -> Result<(), SetupScriptError> {
    let credential = params.credential.description();
    let value = params.credential.secret().expose();
    if value.is_empty() {
        return Err(SetupScriptError::InvalidCredential {
            credential,
            reason: "is empty; pass the value that GitHub returned".to_owned(),
        });
    }
    // The message leaves out the character, because it is part of the secret.
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(SetupScriptError::InvalidCredential {
            credential,
            reason: "contains whitespace or a control character, which GitHub never issues; \
                     pass the value exactly as GitHub returned it"
                .to_owned(),
        });
    }
    Ok(())
}

fn validate_runner_name(value: &str) -> Result<(), SetupScriptError> {
    const FIELD: &str = "runner_name";

    if value.is_empty() {
        return Err(invalid(
            FIELD,
            value,
            "must not be empty; set the name the runner registers with",
        ));
    }
    let length = value.chars().count();
    if length > MAX_RUNNER_NAME_LEN {
        return Err(invalid(
            FIELD,
            value,
            format!(
                "is {length} characters long, but GitHub accepts at most \
                 {MAX_RUNNER_NAME_LEN}; shorten it"
            ),
        ));
    }
    check_no_control_characters(FIELD, value)
}

fn validate_label(index: usize, label: &str) -> Result<(), SetupScriptError> {
    let reject = |reason: String| SetupScriptError::InvalidLabel {
        index,
        label: label.to_owned(),
        reason,
    };

    if label.is_empty() {
        return Err(reject(
            "must not be empty; remove it from labels".to_owned(),
        ));
    }
    if label.contains(',') {
        return Err(reject(
            "contains ',', but config.sh splits --labels on commas; \
             remove the comma or split the label in two"
                .to_owned(),
        ));
    }
    if let Some(character) = find_control_character(label, &[]) {
        return Err(reject(format!(
            "{}; remove it",
            describe_control_character(character)
        )));
    }
    Ok(())
}

fn validate_runner_group(value: &str) -> Result<(), SetupScriptError> {
    if value.is_empty() {
        return Err(invalid(
            "runner_group",
            value,
            "must not be empty; set None to join the default runner group",
        ));
    }
    check_no_control_characters("runner_group", value)
}

fn validate_work_folder(value: &str) -> Result<(), SetupScriptError> {
    if value.is_empty() {
        return Err(invalid(
            "work_folder",
            value,
            format!(
                "must not be empty; the usual value is {:?}",
                super::DEFAULT_WORK_FOLDER
            ),
        ));
    }
    check_no_control_characters("work_folder", value)
}

/// Accepts portable user names: ASCII letters, digits, `_`, `-` and `.`, not starting
/// with `-`, and not `root`, which needs no `sudo`.
fn validate_run_as(value: &str) -> Result<(), SetupScriptError> {
    const FIELD: &str = "run_as";

    if value.is_empty() {
        return Err(invalid(
            FIELD,
            value,
            "must not be empty; set None to run the runner as the user that runs the script",
        ));
    }
    let portable = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !portable || value.starts_with('-') {
        return Err(invalid(
            FIELD,
            value,
            "is not a portable user name; use ASCII letters, digits, '_', '-' and '.', \
             not starting with '-'",
        ));
    }
    if value == "root" {
        return Err(invalid(
            FIELD,
            value,
            "must not be root; set None to run as root without sudo",
        ));
    }
    Ok(())
}

/// Accepts any command text except an empty one and control characters other than
/// newline and tab, which multi-line commands need.
fn validate_hook(field: &'static str, command: &str) -> Result<(), SetupScriptError> {
    if command.is_empty() {
        return Err(invalid(
            field,
            command,
            "must not be empty; set None for no hook",
        ));
    }
    if let Some(character) = find_control_character(command, &['\n', '\t']) {
        return Err(invalid(
            field,
            command,
            format!(
                "{}; only newline and tab are allowed, so remove it",
                describe_control_character(character)
            ),
        ));
    }
    Ok(())
}

fn validate_runner_source(source: &RunnerSource) -> Result<(), SetupScriptError> {
    match source {
        RunnerSource::Download { version, url } => {
            validate_version(version)?;
            if let Some(url) = url {
                check_http_url("runner_source.url", url)?;
            }
            Ok(())
        }
        RunnerSource::PreInstalled { path, copy: _ } => validate_pre_installed_path(path),
    }
}

/// Accepts versions such as `2.328.0`: one or more groups of ASCII digits separated by dots.
fn validate_version(value: &str) -> Result<(), SetupScriptError> {
    let well_formed = value
        .split('.')
        .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()));
    if !well_formed {
        return Err(invalid(
            "runner_source.version",
            value,
            format!(
                "must be digits separated by dots without a leading 'v', \
                 such as {:?}",
                super::DEFAULT_RUNNER_VERSION
            ),
        ));
    }
    Ok(())
}

fn validate_pre_installed_path(path: &Path) -> Result<(), SetupScriptError> {
    const FIELD: &str = "runner_source.path";

    let Some(value) = path.to_str() else {
        return Err(invalid(
            FIELD,
            &path.display().to_string(),
            "is not valid UTF-8; move the runner to a UTF-8 path",
        ));
    };
    if value.is_empty() {
        return Err(invalid(
            FIELD,
            value,
            "must not be empty; set the directory that contains config.sh and run.sh",
        ));
    }
    if !value.starts_with('/') {
        return Err(invalid(
            FIELD,
            value,
            "must be absolute, because the script runs in a working directory chosen \
             by the Stadium; start it with '/'",
        ));
    }
    check_no_control_characters(FIELD, value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::setup_script::RunnerCredential;

    fn valid_params() -> SetupScriptParams {
        SetupScriptParams::new(
            "https://github.com/octo-org/octo-repo",
            RunnerCredential::RegistrationToken(Secret::new("AABBCCDDEEFF")),
            "myshoes-runner-1",
        )
    }

    /// Returns the `InvalidValue` field and reason, and fails on any other result.
    fn invalid_field(params: &SetupScriptParams) -> (&'static str, String, String) {
        match params.validate() {
            Err(SetupScriptError::InvalidValue {
                field,
                value,
                reason,
            }) => (field, value, reason),
            other => panic!("expected InvalidValue, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(valid_params().validate(), Ok(()));
    }

    #[test]
    fn odd_but_valid_values_pass() {
        let mut params = valid_params();
        params.runner_name = "runner 'x' \"y\" $(z) – 日本語".to_owned();
        params.labels = vec![
            "GPU – 日本語".to_owned(),
            "$(touch pwned)".to_owned(),
            "a b; c && d * `e` 'f' \"g\"".to_owned(),
        ];
        params.runner_group = Some("group 'one'".to_owned());
        params.job_started_hook = Some("echo start\n\techo more".to_owned());
        params.run_as = Some("runner_user-1.x".to_owned());
        params.runner_source = RunnerSource::PreInstalled {
            path: "/opt/actions runner/'x'".into(),
            copy: true,
        };
        assert_eq!(params.validate(), Ok(()));
    }

    #[test]
    fn github_url_rejections() {
        let cases = [
            ("", "must not be empty"),
            ("github.com/octo-org", "is not a URL"),
            ("ftp://github.com/octo-org", "has the scheme \"ftp\""),
            ("https://github.com/octo org", "contains whitespace"),
            ("https://github.com", "names no repository"),
            ("https://github.com/", "names no repository"),
            (
                "https://user:pw@github.com/octo-org",
                "user name or password",
            ),
            ("https://github.com/octo-org?x=1", "query or fragment"),
        ];
        for (url, expected) in cases {
            let mut params = valid_params();
            params.github_url = url.to_owned();
            let (field, value, reason) = invalid_field(&params);
            assert_eq!(field, "github_url", "{url}");
            assert_eq!(value, url);
            assert!(reason.contains(expected), "{url}: {reason}");
        }
    }

    #[test]
    fn github_url_accepts_enterprise_server() {
        let mut params = valid_params();
        params.github_url = "http://ghes.example.internal/octo-org".to_owned();
        assert_eq!(params.validate(), Ok(()));
    }

    #[test]
    fn credential_errors_hide_secret() {
        let cases = [
            RunnerCredential::RegistrationToken(Secret::new("")),
            RunnerCredential::RegistrationToken(Secret::new("TOKEN WITH-SPACE")),
            RunnerCredential::JitConfig(Secret::new("abc\ndef-SECRETPART")),
        ];
        for credential in cases {
            let mut params = valid_params();
            params.credential = credential.clone();
            let error = params.validate().expect_err("credential must be rejected");
            let message = error.to_string();
            assert!(
                matches!(error, SetupScriptError::InvalidCredential { .. }),
                "{error:?}"
            );
            assert!(!message.contains("SPACE"), "{message}");
            assert!(!message.contains("SECRETPART"), "{message}");
            assert!(message.contains(credential.description()), "{message}");
        }
    }

    #[test]
    fn runner_name_empty() {
        let mut params = valid_params();
        params.runner_name = String::new();
        let (field, _, reason) = invalid_field(&params);
        assert_eq!(field, "runner_name");
        assert!(reason.contains("must not be empty"), "{reason}");
    }

    #[test]
    fn runner_name_length_limit() {
        let mut params = valid_params();
        params.runner_name = "日".repeat(MAX_RUNNER_NAME_LEN);
        assert_eq!(params.validate(), Ok(()));

        params.runner_name = "a".repeat(MAX_RUNNER_NAME_LEN + 1);
        let (field, _, reason) = invalid_field(&params);
        assert_eq!(field, "runner_name");
        assert!(reason.contains("is 65 characters long"), "{reason}");
        assert!(reason.contains("at most 64"), "{reason}");
    }

    #[test]
    fn runner_name_control_character() {
        let mut params = valid_params();
        params.runner_name = "runner\nname".to_owned();
        let (field, _, reason) = invalid_field(&params);
        assert_eq!(field, "runner_name");
        assert!(reason.contains("U+000A"), "{reason}");
    }

    #[test]
    fn label_errors_name_index_and_label() {
        let cases = [
            ("", "must not be empty"),
            ("gpu,large", "contains ','"),
            ("gpu\nlarge", "U+000A"),
            ("nul\0byte", "U+0000"),
            ("tab\tlabel", "U+0009"),
        ];
        for (bad_label, expected) in cases {
            let mut params = valid_params();
            params.labels = vec!["linux".to_owned(), "x64".to_owned(), bad_label.to_owned()];
            let error = params.validate().expect_err("label must be rejected");
            let SetupScriptError::InvalidLabel {
                index,
                label,
                reason,
            } = &error
            else {
                panic!("expected InvalidLabel, got {error:?}");
            };
            assert_eq!(*index, 2);
            assert_eq!(label, bad_label);
            assert!(reason.contains(expected), "{bad_label:?}: {reason}");
            let message = error.to_string();
            assert!(message.contains("at index 2"), "{message}");
            assert!(message.contains(&format!("{bad_label:?}")), "{message}");
        }
    }

    #[test]
    fn runner_group_rejections() {
        let mut params = valid_params();
        params.runner_group = Some(String::new());
        let (field, _, reason) = invalid_field(&params);
        assert_eq!(field, "runner_group");
        assert!(reason.contains("set None"), "{reason}");

        params.runner_group = Some("group\rname".to_owned());
        let (field, _, reason) = invalid_field(&params);
        assert_eq!(field, "runner_group");
        assert!(reason.contains("U+000D"), "{reason}");
    }

    #[test]
    fn work_folder_rejections() {
        let mut params = valid_params();
        params.work_folder = String::new();
        let (field, _, _) = invalid_field(&params);
        assert_eq!(field, "work_folder");

        params.work_folder = "work\u{7f}".to_owned();
        let (field, _, reason) = invalid_field(&params);
        assert_eq!(field, "work_folder");
        assert!(reason.contains("U+007F"), "{reason}");
    }

    #[test]
    fn run_as_rejections() {
        let cases = [
            ("", "must not be empty"),
            ("-runner", "is not a portable user name"),
            ("run ner", "is not a portable user name"),
            ("runner;id", "is not a portable user name"),
            ("ユーザー", "is not a portable user name"),
            ("root", "must not be root"),
        ];
        for (user, expected) in cases {
            let mut params = valid_params();
            params.run_as = Some(user.to_owned());
            let (field, value, reason) = invalid_field(&params);
            assert_eq!(field, "run_as", "{user}");
            assert_eq!(value, user);
            assert!(reason.contains(expected), "{user}: {reason}");
        }
    }

    #[test]
    fn hook_rejections() {
        let mut params = valid_params();
        params.job_started_hook = Some(String::new());
        let (field, _, _) = invalid_field(&params);
        assert_eq!(field, "job_started_hook");

        let mut params = valid_params();
        params.job_completed_hook = Some("echo done\r\n".to_owned());
        let (field, _, reason) = invalid_field(&params);
        assert_eq!(field, "job_completed_hook");
        assert!(reason.contains("U+000D"), "{reason}");
    }

    #[test]
    fn version_rejections() {
        for version in [
            "",
            "v2.328.0",
            "2..0",
            "2.328.",
            ".2",
            "2.328.0-beta",
            "2 .1",
        ] {
            let mut params = valid_params();
            params.runner_source = RunnerSource::Download {
                version: version.to_owned(),
                url: None,
            };
            let (field, value, reason) = invalid_field(&params);
            assert_eq!(field, "runner_source.version", "{version}");
            assert_eq!(value, version);
            assert!(reason.contains("digits separated by dots"), "{reason}");
        }
    }

    #[test]
    fn version_accepts_digits_and_dots() {
        for version in ["2", "2.328.0", "10.0.0.1"] {
            let mut params = valid_params();
            params.runner_source = RunnerSource::Download {
                version: version.to_owned(),
                url: None,
            };
            assert_eq!(params.validate(), Ok(()), "{version}");
        }
    }

    #[test]
    fn download_url_rejections() {
        for url in ["", "file:///tmp/runner.tar.gz", "https://mirror/a b.tar.gz"] {
            let mut params = valid_params();
            params.runner_source = RunnerSource::Download {
                version: "2.328.0".to_owned(),
                url: Some(url.to_owned()),
            };
            let (field, _, _) = invalid_field(&params);
            assert_eq!(field, "runner_source.url", "{url}");
        }
    }

    #[test]
    fn pre_installed_path_rejections() {
        let cases = [
            ("", "must not be empty"),
            ("opt/runner", "must be absolute"),
            ("/opt/run\nner", "U+000A"),
        ];
        for (path, expected) in cases {
            let mut params = valid_params();
            params.runner_source = RunnerSource::PreInstalled {
                path: path.into(),
                copy: false,
            };
            let (field, _, reason) = invalid_field(&params);
            assert_eq!(field, "runner_source.path", "{path:?}");
            assert!(reason.contains(expected), "{path:?}: {reason}");
        }
    }

    #[test]
    fn error_message_names_field_and_value() {
        let mut params = valid_params();
        params.runner_group = Some("g\u{1b}".to_owned());
        let message = params
            .validate()
            .expect_err("group must be rejected")
            .to_string();
        assert_eq!(
            message,
            "invalid runner_group \"g\\u{1b}\": contains the control character U+001B; remove it"
        );
    }
}
