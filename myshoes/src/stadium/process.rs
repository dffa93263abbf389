//! A Stadium that runs each runner's setup script as a local child process.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Pid, Uid};
use tokio::process::Command;
use tokio::sync::{watch, Mutex};

use super::{AddInstanceRequest, Error, Instance, ListedInstance, Result, Stadium};
use crate::setup_script::REMOVE_SCRIPT_FILE_FLAG;

/// File name of the setup script in each instance's working directory.
pub const SCRIPT_FILE: &str = "setup.sh";
/// File name of the combined standard output and error in each instance's working directory.
pub const LOG_FILE: &str = "runner.log";

/// Environment variables passed from this process to the setup script; everything else,
/// such as the webhook secret or cloud credentials, is withheld.
const PASSED_ENV: [&str; 5] = ["PATH", "LANG", "LC_ALL", "USER", "LOGNAME"];

/// A Stadium that runs each setup script as a child process of this process, on this host.
///
/// **It runs CI jobs on the host.** Without a run-as user in the setup script, a workflow
/// runs as the user of this process and can read and change whatever that user can,
/// including this process's environment (`/proc/<pid>/environ`) and so any secret passed
/// in it. Use it for development and demos, or give the setup script a dedicated run-as
/// user on hosts that serve real jobs.
///
/// The base directory is created with mode 0700 and must belong to this process's user
/// and not be writable by group or others; `add_instance` fails otherwise. Each instance
/// gets its own working directory `<base>/<runner name>.<random>` that holds the script
/// ([`SCRIPT_FILE`], mode 0700) and its output ([`LOG_FILE`], mode 0600). The script runs as
/// `bash setup.sh --remove-script-file`, so it deletes itself, and the credential in it, as
/// soon as it starts. When the process ends, everything in the working directory except
/// the log is removed, unless [`ProcessStadiumBuilder::with_keep_files`] says otherwise.
/// The cloud id is the directory's name and [`Instance::address`] is its path.
///
/// The script runs with `bash` in a new process group, with standard input closed, `HOME`
/// set to the working directory and only `PATH`, `LANG`, `LC_ALL`, `USER` and `LOGNAME`
/// kept from this process's environment. `delete_instance` sends `SIGTERM` to the process
/// group and `SIGKILL` after a grace period. Processes that leave the group (with `setsid`)
/// are not stopped.
///
/// `add_instance` is idempotent per runner name for the life of this value: a repeated
/// request returns the instance started first, whether or not it still runs.
#[derive(Clone)]
pub struct ProcessStadium {
    inner: Arc<Inner>,
}

struct Inner {
    base_dir: PathBuf,
    stop_grace: Duration,
    use_wrapper: bool,
    keep_files: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    by_cloud_id: HashMap<String, Started>,
    by_runner_name: HashMap<String, String>,
}

struct Started {
    instance: Instance,
    listed: ListedInstance,
    pid: Option<Pid>,
    exit: watch::Receiver<Option<ExitStatus>>,
}

/// Builder for [`ProcessStadium`].
#[derive(Debug, Clone)]
pub struct ProcessStadiumBuilder {
    base_dir: PathBuf,
    stop_grace: Duration,
    use_wrapper: bool,
    keep_files: bool,
}

impl ProcessStadiumBuilder {
    /// Sets how long `delete_instance` waits after `SIGTERM` before `SIGKILL` (default 10
    /// seconds).
    pub fn with_stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// Runs the compact wrapper form of each setup script instead of the full script
    /// (default off). Both behave the same; the wrapper exercises the form that
    /// size-limited backends use.
    pub fn with_wrapper_form(mut self, use_wrapper: bool) -> Self {
        self.use_wrapper = use_wrapper;
        self
    }

    /// Keeps every file of an instance's working directory after its process ends (default
    /// off: only the log is kept, so a long-running host does not fill its disk with runner
    /// copies).
    pub fn with_keep_files(mut self, keep_files: bool) -> Self {
        self.keep_files = keep_files;
        self
    }

    /// Builds the Stadium. The base directory is created on the first launch.
    pub fn build(self) -> ProcessStadium {
        ProcessStadium {
            inner: Arc::new(Inner {
                base_dir: self.base_dir,
                stop_grace: self.stop_grace,
                use_wrapper: self.use_wrapper,
                keep_files: self.keep_files,
                state: Mutex::new(State::default()),
            }),
        }
    }
}

impl ProcessStadium {
    /// Creates a Stadium whose instances get working directories under `base_dir`.
    pub fn new(base_dir: impl Into<PathBuf>) -> Self {
        Self::builder(base_dir).build()
    }

    /// Returns a builder for options.
    pub fn builder(base_dir: impl Into<PathBuf>) -> ProcessStadiumBuilder {
        ProcessStadiumBuilder {
            base_dir: base_dir.into(),
            stop_grace: Duration::from_secs(10),
            use_wrapper: false,
            keep_files: false,
        }
    }

    /// Returns the directory under which instances get their working directories.
    pub fn base_dir(&self) -> &Path {
        &self.inner.base_dir
    }

    /// Waits until the instance's process exits and returns its status, or `None` for an
    /// unknown cloud id or a process whose status could not be read.
    pub async fn wait_for_exit(&self, cloud_id: &str) -> Option<ExitStatus> {
        let mut exit = {
            let state = self.inner.state.lock().await;
            state.by_cloud_id.get(cloud_id)?.exit.clone()
        };
        let status = exit.wait_for(Option::is_some).await.ok()?;
        *status
    }

    /// Returns whether the instance's process is still running.
    pub async fn is_running(&self, cloud_id: &str) -> bool {
        let state = self.inner.state.lock().await;
        state
            .by_cloud_id
            .get(cloud_id)
            .is_some_and(|started| started.exit.borrow().is_none())
    }

    /// Stops every instance this value started, all at once, for a clean shutdown, and
    /// returns the first error.
    pub async fn stop_all(&self) -> Result<()> {
        let cloud_ids: Vec<String> = {
            let state = self.inner.state.lock().await;
            state.by_cloud_id.keys().cloned().collect()
        };
        let mut stops = tokio::task::JoinSet::new();
        for cloud_id in cloud_ids {
            let stadium = self.clone();
            stops.spawn(async move { stadium.delete_instance(&cloud_id, &[]).await });
        }
        let mut first_error = None;
        while let Some(stopped) = stops.join_next().await {
            let result = stopped.unwrap_or_else(|join_error| {
                Err(Error::Backend {
                    backend: "process",
                    operation: "delete_instance",
                    retryable: false,
                    source: Box::new(join_error),
                })
            });
            if let Err(error) = result {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn start(&self, request: &AddInstanceRequest) -> Result<Started> {
        let cloud_id = format!(
            "{}.{}",
            request.runner_name,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        prepare_base_directory(&self.inner.base_dir)
            .map_err(|source| io_error("add_instance", source))?;
        let dir = self.inner.base_dir.join(&cloud_id);
        let script = if self.inner.use_wrapper {
            request.setup_script.wrapper()
        } else {
            request.setup_script.script()
        };
        let log =
            prepare_directory(&dir, script).map_err(|source| io_error("add_instance", source))?;
        let log_for_stderr = log
            .try_clone()
            .map_err(|source| io_error("add_instance", source))?;

        let mut command = Command::new("bash");
        command
            .arg(SCRIPT_FILE)
            .arg(REMOVE_SCRIPT_FILE_FLAG)
            .current_dir(&dir)
            .env_clear()
            .env("HOME", &dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_for_stderr)
            .process_group(0);
        for name in PASSED_ENV {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        let mut child = command
            .spawn()
            .map_err(|source| io_error("add_instance", source))?;
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);

        let (exit_sender, exit) = watch::channel(None);
        let runner_name = request.runner_name.clone();
        let keep_files = self.inner.keep_files;
        let working_dir = dir.clone();
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(status) => Some(status),
                Err(error) => {
                    tracing::warn!(runner_name, %error, "failed to wait for the runner process");
                    None
                }
            };
            match status {
                Some(status) if status.success() => {
                    tracing::debug!(runner_name, %status, "runner process exited");
                }
                _ => tracing::warn!(
                    runner_name,
                    status = ?status,
                    log = %working_dir.join(LOG_FILE).display(),
                    "runner process failed; see its log"
                ),
            }
            if !keep_files {
                if let Err(error) = remove_all_but_log(&working_dir) {
                    tracing::warn!(runner_name, %error, "failed to clean the runner's working directory");
                }
            }
            // A closed channel is fine, because the Stadium may have been dropped.
            let _ = exit_sender.send(status.or_else(failed_status));
        });

        Ok(Started {
            listed: ListedInstance {
                cloud_id: cloud_id.clone(),
                runner_name: Some(request.runner_name.clone()),
                job_id: Some(request.job_id),
                target_id: Some(request.target_id),
                installation_id: request.installation_id,
                profile: Some(request.profile.clone()),
                labels: request.labels.clone(),
                started_at: Some(chrono::Utc::now()),
            },
            instance: Instance {
                cloud_id,
                stadium: "process".to_owned(),
                address: Some(dir.display().to_string()),
                resource_type: request.resource_type,
            },
            pid,
            exit,
        })
    }
}

/// Exit status used when waiting for a child failed, so waiters do not hang.
fn failed_status() -> Option<ExitStatus> {
    use std::os::unix::process::ExitStatusExt;
    Some(ExitStatus::from_raw(255 << 8))
}

fn io_error(operation: &'static str, source: std::io::Error) -> Error {
    Error::Backend {
        backend: "process",
        operation,
        retryable: false,
        source: Box::new(source),
    }
}

/// Creates the base directory with mode 0700 if needed, and checks that it belongs to this
/// user and that no one else can write to it, so no other user can swap a runner's files.
fn prepare_base_directory(base: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(base)?;
    let metadata = fs::metadata(base)?;
    let owner = Uid::from_raw(metadata.uid());
    if owner != Uid::current() {
        return Err(std::io::Error::other(format!(
            "the instances directory {} belongs to uid {owner}, not to this process's uid {}; choose a directory of your own",
            base.display(),
            Uid::current()
        )));
    }
    if metadata.mode() & 0o022 != 0 {
        return Err(std::io::Error::other(format!(
            "the instances directory {} is writable by group or others (mode {:o}); run chmod 700 on it",
            base.display(),
            metadata.mode() & 0o777
        )));
    }
    Ok(())
}

/// Removes everything in a working directory except the log.
fn remove_all_but_log(dir: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name() == LOG_FILE {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            fs::remove_dir_all(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Creates the working directory, writes the script into it and opens the log file.
fn prepare_directory(dir: &Path, script: &str) -> std::io::Result<fs::File> {
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::create_dir(dir)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(dir.join(SCRIPT_FILE))?;
    file.write_all(script.as_bytes())?;
    OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.join(LOG_FILE))
}

fn validate_runner_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidRequest {
            reason: format!(
                "runner name {name:?} cannot name a directory: use 1 to 64 ASCII letters, digits, '-', '_' or '.', not starting with '.'"
            ),
        })
    }
}

fn signal_group(pid: Pid, signal: Signal) -> Result<()> {
    match killpg(pid, signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(errno) => Err(Error::Backend {
            backend: "process",
            operation: "delete_instance",
            retryable: false,
            source: Box::new(std::io::Error::from(errno)),
        }),
    }
}

impl fmt::Debug for ProcessStadium {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessStadium")
            .field("base_dir", &self.inner.base_dir)
            .field("stop_grace", &self.inner.stop_grace)
            .field("use_wrapper", &self.inner.use_wrapper)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ProcessStadium {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProcessStadium({})", self.inner.base_dir.display())
    }
}

#[async_trait]
impl Stadium for ProcessStadium {
    async fn add_instance(&self, request: &AddInstanceRequest) -> Result<Instance> {
        validate_runner_name(&request.runner_name)?;
        // Holding the lock across the start makes concurrent requests for one runner name
        // start one process.
        let mut state = self.inner.state.lock().await;
        if let Some(started) = state
            .by_runner_name
            .get(&request.runner_name)
            .and_then(|cloud_id| state.by_cloud_id.get(cloud_id))
        {
            return Ok(started.instance.clone());
        }
        let started = self.start(request).await?;
        let instance = started.instance.clone();
        tracing::debug!(
            runner_name = %request.runner_name,
            cloud_id = %instance.cloud_id,
            pid = ?started.pid,
            "runner process started"
        );
        state
            .by_runner_name
            .insert(request.runner_name.clone(), instance.cloud_id.clone());
        state.by_cloud_id.insert(instance.cloud_id.clone(), started);
        Ok(instance)
    }

    async fn delete_instance(&self, cloud_id: &str, _labels: &[String]) -> Result<()> {
        let (pid, mut exit) = {
            let state = self.inner.state.lock().await;
            match state.by_cloud_id.get(cloud_id) {
                Some(started) => (started.pid, started.exit.clone()),
                None => return Ok(()),
            }
        };
        if exit.borrow().is_some() {
            return Ok(());
        }
        let Some(pid) = pid else {
            return Ok(());
        };
        // NOTE: the waiter task reaps the leader before it publishes the exit, so in that
        // short window this signal may reach a reused process group id. Processes the
        // leader left behind after it exited are not signalled either.
        signal_group(pid, Signal::SIGTERM)?;
        let timed_out = tokio::time::timeout(self.inner.stop_grace, exit.wait_for(Option::is_some))
            .await
            .is_err();
        if timed_out {
            tracing::info!(cloud_id, "runner process ignored SIGTERM; sending SIGKILL");
            signal_group(pid, Signal::SIGKILL)?;
            // The waiter task reaps the process; a closed channel means it is gone already.
            let _ = exit.wait_for(Option::is_some).await;
        }
        Ok(())
    }

    async fn list_instances(&self) -> Result<Vec<ListedInstance>> {
        let state = self.inner.state.lock().await;
        let mut listed: Vec<ListedInstance> = state
            .by_cloud_id
            .values()
            .filter(|started| started.exit.borrow().is_none())
            .map(|started| started.listed.clone())
            .collect();
        listed.sort_by(|a, b| a.cloud_id.cmp(&b.cloud_id));
        Ok(listed)
    }
}
