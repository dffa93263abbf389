//! Runs generated setup scripts with bash against stand-in `config.sh` and `run.sh`
//! scripts that record their exact arguments, so the tests check what the runner would
//! receive without contacting GitHub.
//!
//! The tests need bash, coreutils, tar, gzip, base64, curl and wget on the machine.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use myshoes::secret::Secret;
use myshoes::setup_script::{
    RunnerCredential, RunnerSource, SetupScript, SetupScriptParams, DEFAULT_RUNNER_VERSION,
};

const GITHUB_URL: &str = "https://github.com/octo-org/octo-repo";
const TOKEN: &str = "AABBCCDDEEFFGGHHIIJJKKLLMMNN0";
const JIT_CONFIG: &str = "eyJzZWNyZXQiOiJqaXQrY29uZmlnLz09In0=";
const UNSET: &str = "<unset>";

/// Stand-in `config.sh`: stores its arguments, each followed by a NUL byte. A plain
/// `printf '%s\0' "$@"` would print one NUL for no arguments.
const STAND_IN_CONFIG: &str = r#"#!/usr/bin/env bash
set -euo pipefail
for arg in "$@"; do printf '%s\0' "$arg"; done >config.args
"#;

/// Stand-in `run.sh`: stores its arguments, the variables the setup script exports, and
/// its standard input.
const STAND_IN_RUN: &str = r#"#!/usr/bin/env bash
set -euo pipefail
for arg in "$@"; do printf '%s\0' "$arg"; done >run.args
printf '%s\0' "${ACTIONS_RUNNER_HOOK_JOB_STARTED-<unset>}" \
  "${ACTIONS_RUNNER_HOOK_JOB_COMPLETED-<unset>}" \
  "${RUNNER_ALLOW_RUNASROOT-<unset>}" >run.env
cat >run.stdin
"#;

/// Stand-in `sudo`: stores its arguments in `$CALL_LOG_DIR/sudo-NAME.args`, where NAME is
/// the command after `--`, then runs that command as the current user.
const STAND_IN_SUDO: &str = r#"#!/usr/bin/env bash
set -euo pipefail
for arg in "$@"; do printf '%s\0' "$arg"; done >"$CALL_LOG_DIR/sudo-$(basename "$5").args"
shift 4
exec "$@"
"#;

/// Stand-in `chown`: stores its arguments and changes nothing.
const STAND_IN_CHOWN: &str = r#"#!/usr/bin/env bash
set -euo pipefail
for arg in "$@"; do printf '%s\0' "$arg"; done >"$CALL_LOG_DIR/chown.args"
"#;

const RUNNER_NAME: &str = "run'ner \"1\" $(touch pwned);&&*`id` – 名前";
const RUNNER_GROUP: &str = "group 'g' \"q\" $(touch pwned) `id` ; && * 日本";
const WORK_FOLDER: &str = "_work dir 'x' $(touch pwned)";
const RUNNER_USER: &str = "runner-user";

/// Labels with every character class that bash would otherwise interpret.
fn odd_labels() -> Vec<String> {
    [
        "with space",
        "single'quote",
        "double\"quote",
        "$(touch pwned)",
        "`touch pwned`",
        "semi;colon",
        "and&&and",
        "star*",
        "GPU – 日本語",
        "${HOME}",
        "back\\slash",
        "|pipe > redirect",
        "-dash",
    ]
    .iter()
    .map(|label| (*label).to_owned())
    .collect()
}

/// A temporary directory with a pre-installed stand-in runner, an empty working
/// directory for the setup script, and an empty `TMPDIR`.
struct Sandbox {
    _root: tempfile::TempDir,
    root: PathBuf,
    pre_installed: PathBuf,
    work: PathBuf,
    tmp: PathBuf,
    call_logs: PathBuf,
}

impl Sandbox {
    fn new() -> Self {
        let root_dir = tempfile::tempdir().expect("failed to create a temporary directory");
        let root = fs::canonicalize(root_dir.path()).expect("failed to resolve the temp dir");
        let sandbox = Sandbox {
            pre_installed: root.join("pre-installed runner"),
            work: root.join("work"),
            tmp: root.join("tmp"),
            call_logs: root.join("call-logs"),
            root,
            _root: root_dir,
        };
        for dir in [
            &sandbox.pre_installed,
            &sandbox.work,
            &sandbox.tmp,
            &sandbox.call_logs,
        ] {
            fs::create_dir(dir).expect("failed to create a sandbox directory");
        }
        write_executable(&sandbox.pre_installed.join("config.sh"), STAND_IN_CONFIG);
        write_executable(&sandbox.pre_installed.join("run.sh"), STAND_IN_RUN);
        sandbox
    }

    fn copied_runner(&self) -> PathBuf {
        self.work.join("runner")
    }

    fn pre_installed_source(&self, copy: bool) -> RunnerSource {
        RunnerSource::PreInstalled {
            path: self.pre_installed.clone(),
            copy,
        }
    }

    /// Writes `text` to a file outside the working directory and runs it with bash in
    /// the working directory, with `stdin` as standard input.
    fn run(&self, text: &str, stdin: &[u8]) -> Output {
        self.run_with_path(
            text,
            stdin,
            &std::env::var("PATH").expect("PATH is not set"),
        )
    }

    fn run_with_path(&self, text: &str, stdin: &[u8], path: &str) -> Output {
        let script_path = self.root.join("setup.sh");
        fs::write(&script_path, text).expect("failed to write the script");

        let mut child = Command::new("bash")
            .arg(&script_path)
            .current_dir(&self.work)
            .env("PATH", path)
            .env("TMPDIR", &self.tmp)
            .env("CALL_LOG_DIR", &self.call_logs)
            .env_remove("RUNNER_ALLOW_RUNASROOT")
            .env_remove("ACTIONS_RUNNER_HOOK_JOB_STARTED")
            .env_remove("ACTIONS_RUNNER_HOOK_JOB_COMPLETED")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("failed to start bash");
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(stdin)
            .expect("failed to write stdin");
        child.wait_with_output().expect("failed to wait for bash")
    }

    /// Returns every file named `pwned` under the sandbox.
    fn pwned_files(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut pending = vec![self.root.clone()];
        while let Some(dir) = pending.pop() {
            for entry in fs::read_dir(&dir).expect("failed to list a sandbox directory") {
                let path = entry.expect("failed to read a directory entry").path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.file_name().is_some_and(|name| name == "pwned") {
                    found.push(path);
                }
            }
        }
        found
    }
}

fn write_executable(path: &Path, text: &str) {
    fs::write(path, text).expect("failed to write an executable");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .expect("failed to make a file executable");
}

/// Reads a file of NUL-terminated arguments.
fn read_args(path: &Path) -> Vec<String> {
    let bytes =
        fs::read(path).unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()));
    let text = String::from_utf8(bytes).expect("argument file is not UTF-8");
    text.split_terminator('\0').map(str::to_owned).collect()
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| (*value).to_owned()).collect()
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "script failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

fn assert_output_hides(output: &Output, secret: &str) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stdout.contains(secret),
        "stdout contains the secret:\n{stdout}"
    );
    assert!(
        !stderr.contains(secret),
        "stderr contains the secret:\n{stderr}"
    );
}

fn is_root() -> bool {
    let output = Command::new("id")
        .arg("-u")
        .output()
        .expect("failed to run id");
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

fn token_params(source: RunnerSource) -> SetupScriptParams {
    let mut params = SetupScriptParams::new(
        GITHUB_URL,
        RunnerCredential::RegistrationToken(Secret::new(TOKEN)),
        RUNNER_NAME,
    );
    params.labels = odd_labels();
    params.runner_group = Some(RUNNER_GROUP.to_owned());
    params.work_folder = WORK_FOLDER.to_owned();
    params.runner_source = source;
    params
}

fn jit_params(source: RunnerSource) -> SetupScriptParams {
    let mut params = token_params(source);
    params.credential = RunnerCredential::JitConfig(Secret::new(JIT_CONFIG));
    params
}

fn build(params: &SetupScriptParams) -> SetupScript {
    params
        .build()
        .unwrap_or_else(|error| panic!("valid parameters were rejected: {error}"))
}

/// The `config.sh` arguments that `token_params` must produce.
fn expected_config_args() -> Vec<String> {
    let mut args = strings(&[
        "--unattended",
        "--url",
        GITHUB_URL,
        "--token",
        TOKEN,
        "--name",
        RUNNER_NAME,
        "--labels",
    ]);
    args.push(odd_labels().join(","));
    args.extend(strings(&[
        "--work",
        WORK_FOLDER,
        "--runnergroup",
        RUNNER_GROUP,
        "--ephemeral",
    ]));
    args
}

fn expected_run_env(started: &str, completed: &str, allow_root: bool) -> Vec<String> {
    let allow_root = if allow_root { "1" } else { UNSET };
    strings(&[started, completed, allow_root])
}

fn bash_syntax_check(text: &str) -> Output {
    let file = tempfile::NamedTempFile::new().expect("failed to create a temporary file");
    fs::write(file.path(), text).expect("failed to write the script");
    Command::new("bash")
        .arg("-n")
        .arg(file.path())
        .output()
        .expect("failed to run bash -n")
}

#[test]
fn all_variants_pass_bash_syntax_check() {
    let pre_installed = PathBuf::from("/opt/actions runner");
    let mut variants = vec![
        ("default download", token_params(RunnerSource::default())),
        (
            "download URL override",
            token_params(RunnerSource::Download {
                version: DEFAULT_RUNNER_VERSION.to_owned(),
                url: Some("https://mirror.example/runner.tar.gz?sig=a'b".to_owned()),
            }),
        ),
        (
            "pre-installed copy",
            token_params(RunnerSource::PreInstalled {
                path: pre_installed.clone(),
                copy: true,
            }),
        ),
        (
            "pre-installed in place",
            token_params(RunnerSource::PreInstalled {
                path: pre_installed,
                copy: false,
            }),
        ),
        ("JIT config", jit_params(RunnerSource::default())),
    ];

    let mut run_as = token_params(RunnerSource::default());
    run_as.run_as = Some(RUNNER_USER.to_owned());
    run_as.job_started_hook = Some("echo 'started'".to_owned());
    variants.push(("run as user with hook", run_as));

    let mut run_as_jit = jit_params(RunnerSource::default());
    run_as_jit.run_as = Some(RUNNER_USER.to_owned());
    variants.push(("run as user with JIT config", run_as_jit));

    let mut hooks = token_params(RunnerSource::default());
    hooks.job_started_hook = Some("echo \"it's\" $(date)\nexit 0".to_owned());
    hooks.job_completed_hook = Some("rm -rf -- \"$GITHUB_WORKSPACE\"/*".to_owned());
    variants.push(("both hooks", hooks));

    let mut plain = SetupScriptParams::new(
        GITHUB_URL,
        RunnerCredential::RegistrationToken(Secret::new(TOKEN)),
        "plain",
    );
    plain.ephemeral = false;
    variants.push(("no labels, not ephemeral", plain));

    for (name, params) in &variants {
        let setup = build(params);
        for (form, text) in [("script", setup.script()), ("wrapper", setup.wrapper())] {
            let output = bash_syntax_check(text);
            assert!(
                output.status.success(),
                "{name} {form} failed bash -n: {}\n{text}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

#[test]
fn token_script_passes_exact_argv() {
    let sandbox = Sandbox::new();
    let setup = build(&token_params(sandbox.pre_installed_source(true)));

    let output = sandbox.run(setup.script(), b"stdin for the runner\n");

    assert_success(&output);
    let runner = sandbox.copied_runner();
    assert_eq!(
        read_args(&runner.join("config.args")),
        expected_config_args()
    );
    assert_eq!(read_args(&runner.join("run.args")), Vec::<String>::new());
    assert_eq!(
        read_args(&runner.join("run.env")),
        expected_run_env(UNSET, UNSET, is_root())
    );
    assert_eq!(
        fs::read(runner.join("run.stdin")).expect("run.sh stored no stdin"),
        b"stdin for the runner\n"
    );
    assert_eq!(sandbox.pwned_files(), Vec::<PathBuf>::new());
    assert_output_hides(&output, TOKEN);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("myshoes: registering runner"), "{stdout}");
    assert!(stdout.contains("myshoes: starting the runner"), "{stdout}");
    assert!(
        sandbox.root.join("setup.sh").exists(),
        "the script deleted itself without --remove-script-file"
    );
}

#[test]
fn wrapper_passes_exact_argv_and_stdin() {
    let sandbox = Sandbox::new();
    let setup = build(&token_params(sandbox.pre_installed_source(true)));

    let output = sandbox.run(setup.wrapper(), b"stdin for the runner\n");

    assert_success(&output);
    let runner = sandbox.copied_runner();
    assert_eq!(
        read_args(&runner.join("config.args")),
        expected_config_args()
    );
    assert_eq!(read_args(&runner.join("run.args")), Vec::<String>::new());
    assert_eq!(
        fs::read(runner.join("run.stdin")).expect("run.sh stored no stdin"),
        b"stdin for the runner\n"
    );
    assert_eq!(sandbox.pwned_files(), Vec::<PathBuf>::new());
    assert_output_hides(&output, TOKEN);
    let leftovers: Vec<_> = fs::read_dir(&sandbox.tmp)
        .expect("failed to list TMPDIR")
        .map(|entry| entry.expect("failed to read TMPDIR entry").path())
        .collect();
    assert_eq!(
        leftovers,
        Vec::<PathBuf>::new(),
        "decoded script left in TMPDIR"
    );
}

#[test]
fn jit_config_runs_only_run_sh() {
    let sandbox = Sandbox::new();
    let setup = build(&jit_params(sandbox.pre_installed_source(true)));

    for (form, text) in [("script", setup.script()), ("wrapper", setup.wrapper())] {
        let runner = sandbox.copied_runner();
        let _ = fs::remove_dir_all(&runner);

        let output = sandbox.run(text, b"");

        assert_success(&output);
        assert!(
            !runner.join("config.args").exists(),
            "{form}: config.sh ran with a JIT config"
        );
        assert_eq!(
            read_args(&runner.join("run.args")),
            strings(&["--jitconfig", JIT_CONFIG]),
            "{form}"
        );
        assert_output_hides(&output, JIT_CONFIG);
    }
    assert_eq!(sandbox.pwned_files(), Vec::<PathBuf>::new());
}

#[test]
fn hooks_written_and_exported() {
    let sandbox = Sandbox::new();
    let started = "echo \"job 'started' $((1 + 1))\" >started.out";
    let completed = "printf '%s\\n' done '$(touch pwned)' `echo ok` >completed.out\n\techo \"line 2\" >>completed.out";
    let mut params = token_params(sandbox.pre_installed_source(true));
    params.job_started_hook = Some(started.to_owned());
    params.job_completed_hook = Some(completed.to_owned());
    let setup = build(&params);

    let output = sandbox.run(setup.script(), b"");

    assert_success(&output);
    let hook_dir = sandbox.work.join("myshoes-hooks");
    let started_path = hook_dir.join("job-started.sh");
    let completed_path = hook_dir.join("job-completed.sh");
    assert_eq!(
        read_args(&sandbox.copied_runner().join("run.env")),
        expected_run_env(
            started_path.to_str().expect("UTF-8 path"),
            completed_path.to_str().expect("UTF-8 path"),
            is_root()
        )
    );
    assert_eq!(
        fs::read_to_string(&started_path).expect("no job-started hook file"),
        format!("{started}\n")
    );
    assert_eq!(
        fs::read_to_string(&completed_path).expect("no job-completed hook file"),
        format!("{completed}\n")
    );
    assert_eq!(sandbox.pwned_files(), Vec::<PathBuf>::new());

    // The runner runs a `.sh` hook with `bash -e FILE`.
    let hook_run_dir = sandbox.root.join("hook-run");
    fs::create_dir(&hook_run_dir).expect("failed to create the hook run directory");
    for hook in [&started_path, &completed_path] {
        let status = Command::new("bash")
            .arg("-e")
            .arg(hook)
            .current_dir(&hook_run_dir)
            .status()
            .expect("failed to run a hook");
        assert!(status.success(), "{} failed: {status}", hook.display());
    }
    assert_eq!(
        fs::read_to_string(hook_run_dir.join("started.out")).expect("started hook wrote nothing"),
        "job 'started' 2\n"
    );
    assert_eq!(
        fs::read_to_string(hook_run_dir.join("completed.out"))
            .expect("completed hook wrote nothing"),
        "done\n$(touch pwned)\nok\nline 2\n"
    );
    assert_eq!(sandbox.pwned_files(), Vec::<PathBuf>::new());
}

#[test]
fn pre_installed_copy_leaves_source_untouched() {
    let sandbox = Sandbox::new();
    let setup = build(&token_params(sandbox.pre_installed_source(true)));

    let output = sandbox.run(setup.script(), b"");

    assert_success(&output);
    let runner = sandbox.copied_runner();
    assert!(
        runner.join("config.sh").exists(),
        "config.sh was not copied"
    );
    assert!(runner.join("run.sh").exists(), "run.sh was not copied");
    assert!(
        runner.join("config.args").exists(),
        "config.sh did not run in the copy"
    );
    assert!(!sandbox.pre_installed.join("config.args").exists());
    assert!(!sandbox.pre_installed.join("run.args").exists());
}

#[test]
fn pre_installed_in_place_runs_there() {
    let sandbox = Sandbox::new();
    let setup = build(&token_params(sandbox.pre_installed_source(false)));

    let output = sandbox.run(setup.script(), b"");

    assert_success(&output);
    assert_eq!(
        read_args(&sandbox.pre_installed.join("config.args")),
        expected_config_args()
    );
    assert_eq!(
        read_args(&sandbox.pre_installed.join("run.args")),
        Vec::<String>::new()
    );
    assert!(
        !sandbox.copied_runner().exists(),
        "in-place mode copied the runner"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("myshoes: using the pre-installed runner in"),
        "{stdout}"
    );
}

#[test]
fn missing_run_sh_fails_with_message() {
    let sandbox = Sandbox::new();
    fs::remove_file(sandbox.pre_installed.join("run.sh")).expect("failed to remove run.sh");
    let setup = build(&token_params(sandbox.pre_installed_source(true)));

    let output = sandbox.run(setup.script(), b"");

    assert!(
        !output.status.success(),
        "the script succeeded without run.sh"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("contains no executable run.sh"), "{stderr}");
    assert!(!sandbox.copied_runner().join("config.args").exists());
}

#[test]
fn run_as_script_text() {
    let mut params = token_params(RunnerSource::default());
    params.run_as = Some(RUNNER_USER.to_owned());
    params.job_started_hook = Some("true".to_owned());
    let setup = build(&params);
    let script = setup.script();

    assert!(
        script.contains("chown -R -- 'runner-user:' \"$runner_dir\" \"$hook_dir\"\n"),
        "{script}"
    );
    assert!(
        script.contains("\nsudo -E -u 'runner-user' -- ./config.sh --unattended "),
        "{script}"
    );
    assert!(
        script.contains("\nexec sudo -E -u 'runner-user' -- ./run.sh\n"),
        "{script}"
    );
    assert!(!script.contains("RUNNER_ALLOW_RUNASROOT"), "{script}");

    params.run_as = None;
    let script = build(&params).script().to_owned();
    assert!(!script.contains("sudo"), "{script}");
    assert!(!script.contains("chown"), "{script}");
    assert!(
        script.contains("export RUNNER_ALLOW_RUNASROOT=1"),
        "{script}"
    );
}

/// Runs the run-as branch with stand-in `sudo` and `chown` first on `PATH`, so it needs
/// neither root nor the user.
#[test]
fn run_as_uses_sudo_and_chown() {
    let sandbox = Sandbox::new();
    let bin = sandbox.root.join("bin");
    fs::create_dir(&bin).expect("failed to create the stand-in bin directory");
    write_executable(&bin.join("sudo"), STAND_IN_SUDO);
    write_executable(&bin.join("chown"), STAND_IN_CHOWN);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").expect("PATH is not set")
    );
    let mut params = token_params(sandbox.pre_installed_source(true));
    params.run_as = Some(RUNNER_USER.to_owned());
    params.job_completed_hook = Some("echo done".to_owned());
    let setup = build(&params);

    let output = sandbox.run_with_path(setup.script(), b"", &path);

    assert_success(&output);
    let runner = sandbox.copied_runner();
    let sudo_prefix = strings(&["-E", "-u", RUNNER_USER, "--"]);

    let mut expected_sudo_config = sudo_prefix.clone();
    expected_sudo_config.push("./config.sh".to_owned());
    expected_sudo_config.extend(expected_config_args());
    assert_eq!(
        read_args(&sandbox.call_logs.join("sudo-config.sh.args")),
        expected_sudo_config
    );

    let mut expected_sudo_run = sudo_prefix;
    expected_sudo_run.push("./run.sh".to_owned());
    assert_eq!(
        read_args(&sandbox.call_logs.join("sudo-run.sh.args")),
        expected_sudo_run
    );

    let hook_dir = sandbox.work.join("myshoes-hooks");
    assert_eq!(
        read_args(&sandbox.call_logs.join("chown.args")),
        strings(&[
            "-R",
            "--",
            "runner-user:",
            runner.to_str().expect("UTF-8 path"),
            hook_dir.to_str().expect("UTF-8 path"),
        ])
    );
    assert_eq!(
        read_args(&runner.join("config.args")),
        expected_config_args()
    );
    let completed_path = hook_dir.join("job-completed.sh");
    assert_eq!(
        read_args(&runner.join("run.env")),
        expected_run_env(UNSET, completed_path.to_str().expect("UTF-8 path"), false)
    );
    assert_eq!(sandbox.pwned_files(), Vec::<PathBuf>::new());
}

/// Serves `body` to one HTTP request on 127.0.0.1 and returns the base URL and a handle
/// that yields the request line. The server gives up after 30 seconds.
fn serve_once(body: Vec<u8>) -> (String, JoinHandle<Option<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("failed to bind 127.0.0.1");
    let address = listener.local_addr().expect("listener has no address");
    listener
        .set_nonblocking(true)
        .expect("failed to make the listener non-blocking");

    let handle = thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut stream, _) = loop {
            match listener.accept() {
                Ok(connection) => break connection,
                Err(error) if error.kind() == ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        return None;
                    }
                    thread::sleep(Duration::from_millis(20));
                }
                Err(error) => panic!("accept failed: {error}"),
            }
        };
        stream.set_nonblocking(false).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;

        let mut request = Vec::new();
        let mut buffer = [0_u8; 1024];
        while !request.windows(4).any(|window| window == b"\r\n\r\n") {
            let read = stream.read(&mut buffer).ok()?;
            if read == 0 {
                return None;
            }
            request.extend_from_slice(&buffer[..read]);
        }
        let header = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(header.as_bytes()).ok()?;
        stream.write_all(&body).ok()?;
        let request = String::from_utf8_lossy(&request);
        request.lines().next().map(str::to_owned)
    });
    (format!("http://{address}"), handle)
}

/// Packs the stand-in runner the way GitHub packs a release: files at the archive root.
fn stand_in_tarball(sandbox: &Sandbox) -> Vec<u8> {
    let tarball = sandbox.root.join("runner.tar.gz");
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&tarball)
        .arg("-C")
        .arg(&sandbox.pre_installed)
        .arg(".")
        .status()
        .expect("failed to run tar");
    assert!(status.success(), "tar failed: {status}");
    fs::read(&tarball).expect("failed to read the tarball")
}

fn download_from_local_server(path: &str) {
    let sandbox = Sandbox::new();
    let (base_url, server) = serve_once(stand_in_tarball(&sandbox));
    let file = "actions-runner-linux-x64-2.328.0.tar.gz";
    let setup = build(&token_params(RunnerSource::Download {
        version: "2.328.0".to_owned(),
        url: Some(format!("{base_url}/mirror/{file}")),
    }));

    let output = sandbox.run_with_path(setup.script(), b"", path);

    assert_success(&output);
    let request_line = server.join().expect("server thread panicked");
    assert_eq!(
        request_line.as_deref(),
        Some(format!("GET /mirror/{file} HTTP/1.1").as_str())
    );
    let runner = sandbox.copied_runner();
    assert_eq!(
        read_args(&runner.join("config.args")),
        expected_config_args()
    );
    assert_eq!(read_args(&runner.join("run.args")), Vec::<String>::new());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("myshoes: downloading Actions runner 2.328.0"),
        "{stdout}"
    );
    assert_eq!(sandbox.pwned_files(), Vec::<PathBuf>::new());
}

#[test]
fn download_with_curl() {
    let status = Command::new("bash")
        .args(["-c", "command -v curl"])
        .stdout(Stdio::null())
        .status()
        .expect("failed to run bash");
    assert!(
        status.success(),
        "curl is not installed, so this test cannot run"
    );
    download_from_local_server(&std::env::var("PATH").expect("PATH is not set"));
}

/// Returns the absolute path of `program` on `PATH`, and fails if it is missing.
fn find_program(program: &str) -> PathBuf {
    let path = std::env::var("PATH").expect("PATH is not set");
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{program} is not installed, so this test cannot run"))
}

/// Runs the download with a `PATH` that has every tool the script and stand-ins use
/// except curl, so the script must fall back to wget.
#[test]
fn download_falls_back_to_wget() {
    let sandbox = Sandbox::new();
    let bin = sandbox.root.join("bin-without-curl");
    fs::create_dir(&bin).expect("failed to create the bin directory");
    for program in ["bash", "mkdir", "tar", "gzip", "wget", "id", "cat", "rm"] {
        std::os::unix::fs::symlink(find_program(program), bin.join(program))
            .expect("failed to link a program");
    }
    let path = bin.to_str().expect("UTF-8 path").to_owned();
    let probe = Command::new(bin.join("bash"))
        .args(["-c", "command -v curl"])
        .env("PATH", &path)
        .output()
        .expect("failed to run bash");
    assert!(!probe.status.success(), "curl is still reachable on {path}");

    download_from_local_server(&path);
}

/// Returns 100 distinct labels of 20 characters, such as `team-042-linux-gpu-a`.
fn hundred_labels() -> Vec<String> {
    let hardware = ["gpu-a", "gpu-b", "cpu-a", "cpu-b", "arm-a"];
    (0..100)
        .map(|index| format!("team-{index:03}-linux-{}", hardware[index % hardware.len()]))
        .collect()
}

#[test]
fn wrapper_fits_4096_bytes_for_100_labels() {
    let labels = hundred_labels();
    assert!(labels.iter().all(|label| label.len() == 20), "{labels:?}");
    let mut distinct = labels.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 100);

    let mut params = SetupScriptParams::new(
        GITHUB_URL,
        RunnerCredential::RegistrationToken(Secret::new(TOKEN)),
        "myshoes-0f3c2a9e-1b7d-4c1e-9a55-6d2f8e4b7c10",
    );
    params.labels = labels;
    params.runner_group = Some("linux-gpu".to_owned());
    let setup = build(&params);

    println!(
        "100 labels of 20 characters: script {} bytes, wrapper {} bytes",
        setup.script_len(),
        setup.wrapper_len()
    );
    assert!(
        setup.wrapper_len() <= 4096,
        "wrapper is {} bytes",
        setup.wrapper_len()
    );
    let output = bash_syntax_check(setup.wrapper());
    assert!(output.status.success(), "{output:?}");
}

/// Runs both credentials against the demo app's stand-in runner, which must redact them.
#[test]
fn demo_stand_in_runner_redacts_credentials() {
    let stand_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/local/stand-in-runner");
    let source = RunnerSource::PreInstalled {
        path: fs::canonicalize(&stand_in).expect("stand-in runner directory not found"),
        copy: true,
    };

    for (params, secret) in [
        (token_params(source.clone()), TOKEN),
        (jit_params(source), JIT_CONFIG),
    ] {
        let sandbox = Sandbox::new();
        let setup = build(&params);

        let output = sandbox.run(setup.script(), b"");

        assert_success(&output);
        assert_output_hides(&output, secret);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("[REDACTED]"), "{stdout}");
        assert!(stdout.contains("stand-in job finished"), "{stdout}");
        let log = fs::read_to_string(sandbox.copied_runner().join("stand-in-calls.log"))
            .expect("the stand-in wrote no stand-in-calls.log");
        assert!(!log.contains(secret), "{log}");
        assert!(log.contains("[REDACTED]"), "{log}");
        assert_eq!(sandbox.pwned_files(), Vec::<PathBuf>::new());
        assert!(
            !stand_in.join("stand-in-calls.log").exists(),
            "the stand-in wrote into the source directory"
        );
    }
}
