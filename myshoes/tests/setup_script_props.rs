//! Property test of the setup script's quoting: for generated runner names, labels,
//! runner groups, work folders and hook commands full of shell syntax, the script either
//! is rejected by `build` or, run with bash against stand-in `config.sh` and `run.sh`,
//! passes every value through verbatim and runs nothing it was given.
//!
//! Needs bash and coreutils on the machine.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use myshoes::secret::Secret;
use myshoes::setup_script::{RunnerCredential, RunnerSource, SetupScriptParams};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const GITHUB_URL: &str = "https://github.com/octo-org/octo-repo";
const TOKEN: &str = "AABBCCDDEEFFGGHHIIJJKKLLMMNN0";

/// Stand-in `config.sh`: stores its arguments, each followed by a NUL byte.
const STAND_IN_CONFIG: &str = r#"#!/usr/bin/env bash
set -euo pipefail
for arg in "$@"; do printf '%s\0' "$arg"; done >config.args
"#;

/// Stand-in `run.sh`: stores its arguments and the hook variables the script exports.
const STAND_IN_RUN: &str = r#"#!/usr/bin/env bash
set -euo pipefail
for arg in "$@"; do printf '%s\0' "$arg"; done >run.args
printf '%s\0' "${ACTIONS_RUNNER_HOOK_JOB_STARTED-<unset>}" \
  "${ACTIONS_RUNNER_HOOK_JOB_COMPLETED-<unset>}" >run.env
"#;

/// Pieces that bash would interpret if they escaped their quoting; each command piece
/// creates a file named `pwned` when it runs.
const SHELL_PIECES: &[&str] = &[
    "$(touch pwned)",
    "`touch pwned`",
    "'; touch pwned; '",
    "\"; touch pwned; \"",
    "$((1+1))",
    "${HOME}",
    "$'\\x41'",
    "\\",
    "\\'",
    "&&",
    "||",
    ";",
    "|",
    ">",
    "<",
    "*",
    "?",
    "[a]",
    "{a,b}",
    "~",
    "!",
    "#",
    " ",
    "\t",
    "\n",
    "EOF",
    "MYSHOES_EOF",
    "-",
    "--",
    "%s",
    "日本語",
    "é",
];

/// Returns `PROPTEST_CASES` when set, and `default` otherwise. An explicit `cases` in a
/// proptest config would ignore the variable.
fn case_count(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Generates strings of shell pieces, ASCII letters and arbitrary characters.
///
/// Validation rejects newlines and tabs in single-line values and commas in labels. So
/// without `line_breaks` the pieces with a newline or tab are left out, and without
/// `commas` those with a comma. An arbitrary character can still bring either in.
fn shell_text(max_pieces: usize, line_breaks: bool, commas: bool) -> impl Strategy<Value = String> {
    let pieces: Vec<&'static str> = SHELL_PIECES
        .iter()
        .copied()
        .filter(|piece| line_breaks || !piece.contains(['\n', '\t']))
        .filter(|piece| commas || !piece.contains(','))
        .collect();
    let piece = prop_oneof![
        4 => proptest::sample::select(pieces).prop_map(str::to_owned),
        2 => "[a-z0-9]{1,4}",
        1 => any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(piece, 1..max_pieces).prop_map(|pieces| pieces.concat())
}

#[derive(Debug, Clone)]
struct Inputs {
    runner_name: String,
    labels: Vec<String>,
    runner_group: String,
    work_folder: String,
    started_hook: String,
    completed_hook: String,
}

fn inputs() -> impl Strategy<Value = Inputs> {
    (
        shell_text(8, false, true),
        proptest::collection::vec(shell_text(5, false, false), 1..4),
        shell_text(6, false, true),
        shell_text(6, false, true),
        shell_text(10, true, true),
        shell_text(10, true, true),
    )
        .prop_map(
            |(runner_name, labels, runner_group, work_folder, started_hook, completed_hook)| {
                Inputs {
                    runner_name,
                    labels,
                    runner_group,
                    work_folder,
                    started_hook,
                    completed_hook,
                }
            },
        )
}

fn write_executable(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

fn read_args(path: &Path) -> Vec<String> {
    let bytes = fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    String::from_utf8(bytes)
        .unwrap()
        .split_terminator('\0')
        .map(str::to_owned)
        .collect()
}

/// Returns every file named `pwned` under `root`.
fn pwned_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().is_some_and(|name| name == "pwned") {
                found.push(path);
            }
        }
    }
    found
}

/// Builds and runs the script for `inputs`. Returns `false` when `build` rejected them.
fn check(inputs: &Inputs) -> Result<bool, TestCaseError> {
    let root_dir = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(root_dir.path()).unwrap();
    let pre_installed = root.join("runner");
    let work = root.join("work");
    fs::create_dir(&pre_installed).unwrap();
    fs::create_dir(&work).unwrap();
    write_executable(&pre_installed.join("config.sh"), STAND_IN_CONFIG);
    write_executable(&pre_installed.join("run.sh"), STAND_IN_RUN);

    let mut params = SetupScriptParams::new(
        GITHUB_URL,
        RunnerCredential::RegistrationToken(Secret::new(TOKEN)),
        &inputs.runner_name,
    );
    params.labels = inputs.labels.clone();
    params.runner_group = Some(inputs.runner_group.clone());
    params.work_folder = inputs.work_folder.clone();
    params.job_started_hook = Some(inputs.started_hook.clone());
    params.job_completed_hook = Some(inputs.completed_hook.clone());
    params.runner_source = RunnerSource::PreInstalled {
        path: pre_installed,
        copy: true,
    };
    let Ok(setup) = params.build() else {
        return Ok(false);
    };

    let script = root.join("setup.sh");
    fs::write(&script, setup.script()).unwrap();
    let output = Command::new("bash")
        .arg(&script)
        .current_dir(&work)
        .env_remove("ACTIONS_RUNNER_HOOK_JOB_STARTED")
        .env_remove("ACTIONS_RUNNER_HOOK_JOB_COMPLETED")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    prop_assert!(
        output.status.success(),
        "script failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );

    let runner = work.join("runner");
    let expected_config = vec![
        "--unattended".to_owned(),
        "--url".to_owned(),
        GITHUB_URL.to_owned(),
        "--token".to_owned(),
        TOKEN.to_owned(),
        "--name".to_owned(),
        inputs.runner_name.clone(),
        "--labels".to_owned(),
        inputs.labels.join(","),
        "--work".to_owned(),
        inputs.work_folder.clone(),
        "--runnergroup".to_owned(),
        inputs.runner_group.clone(),
        "--ephemeral".to_owned(),
    ];
    prop_assert_eq!(read_args(&runner.join("config.args")), expected_config);
    prop_assert_eq!(read_args(&runner.join("run.args")), Vec::<String>::new());

    let exported = read_args(&runner.join("run.env"));
    prop_assert_eq!(exported.len(), 2);
    for (path, hook) in exported
        .iter()
        .zip([&inputs.started_hook, &inputs.completed_hook])
    {
        let written = fs::read_to_string(path)
            .map_err(|error| TestCaseError::fail(format!("hook file {path}: {error}")))?;
        prop_assert_eq!(written, format!("{hook}\n"));
    }
    prop_assert_eq!(pwned_files(&root), Vec::<PathBuf>::new());
    Ok(true)
}

#[test]
fn shell_syntax_in_values_stays_quoted() {
    let accepted = AtomicUsize::new(0);
    let cases = case_count(48);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&inputs(), |inputs| {
            if check(&inputs)? {
                accepted.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap();
    // Arbitrary characters can bring in what validation rejects: control characters,
    // commas in labels and names over 64 characters. About two thirds of the inputs pass,
    // and at least a third must, or the test checks little.
    let accepted = accepted.into_inner();
    println!("{accepted} of {cases} generated inputs passed validation and were run");
    assert!(
        accepted * 3 >= cases as usize,
        "only {accepted} of {cases} inputs were accepted"
    );
}
