//! `myshoes-local`: run the local myshoes app, or its demo.
#![forbid(unsafe_code)]

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use myshoes::datastore::MemoryDatastore;
use myshoes::github::{ClientConfig, GitHubApp, GitHubAppClient, QueuedJobScan, RescuePass};
use myshoes::model::{GitHubHost, Target};
use myshoes::profile::Profiles;
use myshoes::secret::Secret;
use myshoes::setup_script::{RunnerSource, DEFAULT_RUNNER_VERSION};
use myshoes::stadium::ProcessStadium;
use myshoes::webhook::DEFAULT_MAX_BODY_BYTES;
use myshoes_local::app::{default_instances_dir, App, AppOptions};
use myshoes_local::config::ConfigFile;
use myshoes_local::demo::{run_demo, stand_in_runner_dir, DemoOptions};
use tracing_subscriber::EnvFilter;

/// Local myshoes: GitHub webhooks in, ephemeral self-hosted runners out, in one process.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the webhook receiver and dispatcher until Ctrl-C.
    Serve(ServeArgs),
    /// Start the app on a free loopback port, send it a signed workflow_job webhook and
    /// print each step. Needs no network and no GitHub account.
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
struct CommonArgs {
    /// Configuration file with targets and runner profiles (TOML).
    #[arg(long, env = "MYSHOES_CONFIG", default_value_os_t = default_config_path())]
    config: PathBuf,

    /// Pre-installed Actions runner directory (with config.sh and run.sh); each runner
    /// gets a copy. Without it, serve downloads the runner.
    #[arg(long, env = "RUNNER_DIR")]
    runner_dir: Option<PathBuf>,

    /// Actions runner version to download when no runner directory is given.
    #[arg(long, env = "RUNNER_VERSION", default_value = DEFAULT_RUNNER_VERSION)]
    runner_version: String,

    /// Directory under which each runner gets its working directory.
    #[arg(long, env = "MYSHOES_INSTANCES_DIR", default_value_os_t = default_instances_dir())]
    instances_dir: PathBuf,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,

    /// Address to listen on.
    #[arg(long, env = "BIND", default_value = "127.0.0.1")]
    bind: IpAddr,

    /// TCP port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    port: u16,

    /// Secret of the GitHub App's webhook; deliveries signed with another secret get 401.
    #[arg(long, env = "GITHUB_APP_SECRET", hide_env_values = true)]
    webhook_secret: String,

    /// Runner registration token from GitHub (expires after one hour); used when no
    /// GitHub App is configured.
    #[arg(long, env = "RUNNER_REGISTRATION_TOKEN", hide_env_values = true)]
    registration_token: Option<String>,

    /// GitHub App id; with the private key, runners get JIT configs minted per job and jobs
    /// are checked to be still queued before a launch.
    #[arg(long, env = "GITHUB_APP_ID", requires = "github_private_key_base64")]
    github_app_id: Option<u64>,

    /// The GitHub App's private key, as PEM or base64 of PEM.
    #[arg(
        long,
        env = "GITHUB_PRIVATE_KEY_BASE64",
        hide_env_values = true,
        requires = "github_app_id"
    )]
    github_private_key_base64: Option<String>,

    /// Seconds between passes that ask GitHub to redeliver failed workflow_job webhooks of
    /// the last hour (needs a GitHub App); 0 turns the passes off.
    #[arg(long, env = "RESCUE_INTERVAL_SECS", default_value_t = 300)]
    rescue_interval_secs: u64,

    /// Seconds between sweeper passes, which remove finished, idle and leaked runners; 0
    /// turns the sweeper off.
    #[arg(long, env = "SWEEP_INTERVAL_SECS", default_value_t = 60)]
    sweep_interval_secs: u64,

    /// Seconds between scans of repository targets for jobs queued on GitHub for over 10
    /// minutes that no webhook brought (needs a GitHub App); 0 turns the scans off.
    #[arg(long, env = "QUEUED_SCAN_INTERVAL_SECS", default_value_t = 0)]
    queued_scan_interval_secs: u64,

    /// User that runs the runner (through sudo), instead of the app's user.
    #[arg(long, env = "RUNNER_USER")]
    runner_user: Option<String>,

    /// Jobs dispatched at the same time.
    #[arg(long, env = "MAX_CONCURRENCY", default_value_t = 4)]
    max_concurrency: usize,

    /// Largest webhook body accepted, in bytes (at least 65536).
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,

    /// Webhook requests handled at once; more wait. Each may buffer up to --max-body-bytes.
    #[arg(long, env = "MAX_WEBHOOK_REQUESTS", default_value_t = 16)]
    max_webhook_requests: usize,

    /// Accept deliveries signed only with HMAC-SHA1 (X-Hub-Signature), for old senders.
    #[arg(long, env = "ALLOW_SHA1_SIGNATURES")]
    allow_sha1_signatures: bool,
}

#[derive(Debug, Args)]
struct DemoArgs {
    #[command(flatten)]
    common: CommonArgs,

    /// Secret to sign the demo webhook with; a random one when absent.
    #[arg(long, env = "GITHUB_APP_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,

    /// Registration token for the runner; a placeholder when absent, which only the stand-in
    /// runner accepts.
    #[arg(long, env = "RUNNER_REGISTRATION_TOKEN", hide_env_values = true)]
    registration_token: Option<String>,

    /// Download and run the real Actions runner instead of the stand-in (needs network
    /// access to GitHub and a real registration token).
    #[arg(long)]
    download_runner: bool,
}

fn default_config_path() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/myshoes.example.toml"))
}

fn runner_source(common: &CommonArgs, fallback: Option<PathBuf>) -> RunnerSource {
    match common.runner_dir.clone().or(fallback) {
        Some(path) => RunnerSource::PreInstalled { path, copy: true },
        None => RunnerSource::Download {
            version: common.runner_version.clone(),
            url: None,
        },
    }
}

fn init_tracing(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
}

/// Enqueues, every `interval`, jobs of repository targets that GitHub has kept queued for
/// over 10 minutes without a webhook reaching the app.
async fn run_queued_scan(
    client: Arc<GitHubAppClient>,
    datastore: Arc<MemoryDatastore>,
    targets: Vec<Target>,
    profiles: Profiles,
    interval: Duration,
) {
    let scan = QueuedJobScan::new(Duration::from_secs(600));
    let mut ticks = tokio::time::interval(interval);
    loop {
        ticks.tick().await;
        scan.run(&client, datastore.as_ref(), &targets, &profiles)
            .await;
    }
}

/// Asks GitHub, every `interval`, to redeliver the failed `workflow_job` webhooks of the
/// last hour; GitHub does not redeliver them by itself. Redelivered jobs that were handled
/// meanwhile are duplicates, which the receiver and the launch claim ignore.
async fn run_rescue(client: Arc<GitHubAppClient>, hosts: Vec<GitHubHost>, interval: Duration) {
    let pass = RescuePass::new();
    let mut ticks = tokio::time::interval(interval);
    loop {
        ticks.tick().await;
        let since = chrono::Utc::now() - chrono::Duration::hours(1);
        for host in &hosts {
            if let Err(error) = pass.run(&client, host, since).await {
                tracing::warn!(host = %host, error = %myshoes::ErrorChain(&error), "webhook rescue pass failed; the next pass tries again");
            }
        }
    }
}

async fn shutdown_signal() {
    if let Err(error) = tokio::signal::ctrl_c().await {
        tracing::error!(%error, "failed to listen for Ctrl-C; stopping");
    }
}

async fn serve(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let config = ConfigFile::load(&args.common.config)?;
    let stadium = Arc::new(ProcessStadium::new(&args.common.instances_dir));
    let github_app = match (args.github_app_id, &args.github_private_key_base64) {
        (Some(app_id), Some(key)) => {
            let app = GitHubApp::new(app_id, &Secret::new(key.clone()))?;
            Some(Arc::new(GitHubAppClient::new(
                app,
                ClientConfig::default(),
            )?))
        }
        _ => None,
    };
    if github_app.is_none() && args.registration_token.is_none() {
        return Err("set GITHUB_APP_ID and GITHUB_PRIVATE_KEY_BASE64, or RUNNER_REGISTRATION_TOKEN, so runners can register".into());
    }
    let mut options = AppOptions::new(
        config,
        Secret::new(args.webhook_secret),
        Secret::new(args.registration_token.unwrap_or_default()),
    );
    options.github_app = github_app.clone();
    let datastore = Arc::new(MemoryDatastore::new());
    if let (Some(client), true) = (&github_app, args.queued_scan_interval_secs > 0) {
        tokio::spawn(run_queued_scan(
            client.clone(),
            datastore.clone(),
            options.config.targets.clone(),
            options.config.profiles.clone(),
            Duration::from_secs(args.queued_scan_interval_secs),
        ));
    }
    if let (Some(client), true) = (github_app, args.rescue_interval_secs > 0) {
        let hosts: Vec<_> = {
            let mut hosts: Vec<_> = options
                .config
                .targets
                .iter()
                .map(|target| target.host.clone())
                .collect();
            hosts.push(options.config.github_host.clone());
            hosts.sort_by(|a, b| a.web_url().cmp(b.web_url()));
            hosts.dedup();
            hosts
        };
        tokio::spawn(run_rescue(
            client,
            hosts,
            Duration::from_secs(args.rescue_interval_secs),
        ));
    }
    options.runner_source = runner_source(&args.common, None);
    options.run_as = args.runner_user;
    options.max_concurrency = args.max_concurrency;
    options.max_body_bytes = args.max_body_bytes;
    options.max_webhook_requests = args.max_webhook_requests;
    options.allow_sha1 = args.allow_sha1_signatures;
    options.sweep_interval = Duration::from_secs(args.sweep_interval_secs);
    let app = App::new(options, datastore, stadium.clone()).await?;

    let address = SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(address).await?;
    tracing::info!(%address, config = %args.common.config.display(), "myshoes-local listening; POST GitHub webhooks to /webhook");
    let served = app.run(listener, shutdown_signal()).await;
    tracing::info!("stopping runner processes");
    let stopped = stadium.stop_all().await;
    served?;
    stopped?;
    Ok(())
}

async fn demo(args: DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let config = ConfigFile::load(&args.common.config)?;
    let fallback = (!args.download_runner).then(stand_in_runner_dir);
    let secret = args
        .webhook_secret
        .unwrap_or_else(|| format!("demo-{}", uuid::Uuid::new_v4().simple()));
    let options = DemoOptions {
        config,
        webhook_secret: Secret::new(secret),
        registration_token: Secret::new(
            args.registration_token
                .unwrap_or_else(|| "stand-in-registration-token".to_owned()),
        ),
        runner_source: runner_source(&args.common, fallback),
        instances_dir: args.common.instances_dir,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    run_demo(options, |line| println!("{line}")).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => {
            init_tracing("info");
            serve(args).await
        }
        Command::Demo(args) => {
            init_tracing("error");
            demo(args).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", myshoes::ErrorChain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}
