//! ProcessStadium against real child processes, with stand-in runner scripts.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use myshoes::model::{JobId, ResourceType, TargetId};
use myshoes::secret::Secret;
use myshoes::setup_script::{RunnerCredential, RunnerSource, SetupScriptParams};
use myshoes::stadium::{AddInstanceRequest, ProcessStadium, Stadium, LOG_FILE, SCRIPT_FILE};

fn write_executable(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Creates a stand-in runner directory whose `run.sh` runs `run_body`.
fn stand_in_runner(dir: &Path, run_body: &str) -> PathBuf {
    let runner = dir.join("stand-in");
    std::fs::create_dir_all(&runner).unwrap();
    write_executable(
        &runner.join("config.sh"),
        "#!/usr/bin/env bash\nprintf '%s\\n' \"$@\" > config.args\n",
    );
    write_executable(
        &runner.join("run.sh"),
        &format!("#!/usr/bin/env bash\n{run_body}\n"),
    );
    runner
}

fn request(runner_dir: &Path, name: &str, token: &str) -> AddInstanceRequest {
    let mut params = SetupScriptParams::new(
        "https://github.com/octo-org",
        RunnerCredential::RegistrationToken(Secret::new(token)),
        name,
    );
    params.labels = vec!["linux".to_owned()];
    params.runner_source = RunnerSource::PreInstalled {
        path: runner_dir.to_path_buf(),
        copy: true,
    };
    AddInstanceRequest {
        runner_name: name.to_owned(),
        setup_script: params.build().unwrap(),
        resource_type: ResourceType::Small,
        labels: params.labels.clone(),
        target_id: TargetId::new_random(),
        job_id: JobId::new_random(),
        repository: "octo-org/hello-world".parse().unwrap(),
        profile: "linux".to_owned(),
        installation_id: None,
    }
}

fn find_file(root: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(root).ok()? {
        let path = entry.ok()?.path();
        if path.file_name().is_some_and(|file| file == name) {
            return Some(path);
        }
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        }
    }
    None
}

#[tokio::test]
async fn process_runs_script_and_logs() {
    let temp = tempfile::tempdir().unwrap();
    let runner = stand_in_runner(
        temp.path(),
        "env | cut -d= -f1 | sort > env.names\necho stand-in run finished",
    );
    let stadium = ProcessStadium::builder(temp.path().join("instances"))
        .with_keep_files(true)
        .build();
    let request = request(&runner, "myshoes-1-1", "token-that-stays-in-the-script");

    let instance = stadium.add_instance(&request).await.unwrap();
    assert_eq!(instance.stadium, "process");
    let dir = PathBuf::from(
        instance
            .address
            .clone()
            .expect("address is the working directory"),
    );
    assert!(dir.starts_with(temp.path().join("instances")));
    assert_eq!(
        dir.file_name().unwrap().to_str().unwrap(),
        instance.cloud_id
    );

    let status = tokio::time::timeout(
        Duration::from_secs(60),
        stadium.wait_for_exit(&instance.cloud_id),
    )
    .await
    .expect("the script must finish")
    .expect("an exit status");
    let log = std::fs::read_to_string(dir.join(LOG_FILE)).unwrap();
    assert!(status.success(), "script failed: {log}");
    assert!(
        log.contains("stand-in run finished"),
        "the log captures output: {log}"
    );
    assert!(
        !log.contains("token-that-stays-in-the-script"),
        "the token must not reach the log"
    );

    assert!(
        !dir.join(SCRIPT_FILE).exists(),
        "the script deletes itself, and the credential in it, when it starts"
    );
    let base_mode = std::fs::metadata(temp.path().join("instances"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(base_mode, 0o700);
    let log_mode = std::fs::metadata(dir.join(LOG_FILE))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(log_mode, 0o600);

    let config_args =
        std::fs::read_to_string(find_file(&dir, "config.args").expect("config.sh ran")).unwrap();
    assert!(config_args.contains("myshoes-1-1"), "{config_args}");

    let names = std::fs::read_to_string(find_file(&dir, "env.names").expect("run.sh ran")).unwrap();
    let allowed = [
        "PATH",
        "LANG",
        "LC_ALL",
        "USER",
        "LOGNAME",
        "HOME",
        "PWD",
        "OLDPWD",
        "SHLVL",
        "_",
        "RUNNER_ALLOW_RUNASROOT",
    ];
    for name in names.lines() {
        assert!(
            allowed.contains(&name),
            "the runner environment leaks {name}"
        );
    }
    assert!(!stadium.is_running(&instance.cloud_id).await);
}

fn process_alive(pid: u32) -> bool {
    // A zombie counts as gone: it no longer runs and only waits for its parent to reap it.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[tokio::test]
async fn process_delete_stops_process_group() {
    let temp = tempfile::tempdir().unwrap();
    let runner = stand_in_runner(
        temp.path(),
        "sleep 300 &\necho $! > background.pid\nsleep 300",
    );
    let stadium = ProcessStadium::builder(temp.path().join("instances"))
        .with_stop_grace(Duration::from_secs(5))
        .build();
    let instance = stadium
        .add_instance(&request(&runner, "myshoes-2-1", "t"))
        .await
        .unwrap();
    let dir = PathBuf::from(instance.address.clone().unwrap());

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let pid_file = loop {
        if let Some(found) = find_file(&dir, "background.pid") {
            if !std::fs::read_to_string(&found).unwrap().trim().is_empty() {
                break found;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "run.sh must start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let background: u32 = std::fs::read_to_string(pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(stadium.is_running(&instance.cloud_id).await);
    assert!(process_alive(background));

    stadium
        .delete_instance(&instance.cloud_id, &[])
        .await
        .unwrap();
    assert!(
        !stadium.is_running(&instance.cloud_id).await,
        "the script must be stopped"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while process_alive(background) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "background process {background} survived the delete"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stadium
        .delete_instance(&instance.cloud_id, &[])
        .await
        .expect("a second delete succeeds");
}

#[tokio::test]
async fn process_rejects_path_like_runner_name() {
    let temp = tempfile::tempdir().unwrap();
    let runner = stand_in_runner(temp.path(), "true");
    let stadium = ProcessStadium::new(temp.path().join("instances"));
    let mut bad = request(&runner, "myshoes-3-1", "t");
    bad.runner_name = "../escape".to_owned();
    let error = stadium.add_instance(&bad).await.unwrap_err();
    assert!(!error.is_retryable());
    assert!(error.to_string().contains("../escape"), "{error}");
    assert!(!temp.path().join("escape").exists());
}

#[tokio::test]
async fn process_exit_keeps_only_log() {
    let temp = tempfile::tempdir().unwrap();
    let runner = stand_in_runner(temp.path(), "echo job output; touch left-behind");
    let stadium = ProcessStadium::new(temp.path().join("instances"));
    let instance = stadium
        .add_instance(&request(&runner, "myshoes-4-1", "t"))
        .await
        .unwrap();
    let dir = PathBuf::from(instance.address.clone().unwrap());
    let status = tokio::time::timeout(
        Duration::from_secs(60),
        stadium.wait_for_exit(&instance.cloud_id),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(status.success());
    let left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, vec![LOG_FILE.to_owned()], "only the log stays");
    let log = std::fs::read_to_string(dir.join(LOG_FILE)).unwrap();
    assert!(log.contains("job output"), "{log}");
}

#[tokio::test]
async fn process_rejects_shared_base_directory() {
    let temp = tempfile::tempdir().unwrap();
    let runner = stand_in_runner(temp.path(), "true");
    let base = temp.path().join("shared");
    std::fs::create_dir(&base).unwrap();
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o777)).unwrap();
    let stadium = ProcessStadium::new(&base);
    let error = stadium
        .add_instance(&request(&runner, "myshoes-5-1", "t"))
        .await
        .unwrap_err();
    let message = myshoes::ErrorChain(&error).to_string();
    assert!(message.contains("writable by group or others"), "{message}");
    assert!(!error.is_retryable());
    assert_eq!(
        std::fs::read_dir(&base).unwrap().count(),
        0,
        "nothing is started"
    );
}
