//! Arrival order of one job's `workflow_job` events through the local app's webhook
//! endpoint and the dispatcher: every order of `waiting`, `queued`, `in_progress` and
//! `completed`, with the dispatcher running at every point after `queued` arrived.
//!
//! The rule checked: the job gets exactly one runner when the dispatcher handles it
//! before any event says the job started elsewhere or finished, and none otherwise.
//! `waiting` changes nothing wherever it arrives, and events after the launch neither stop
//! nor double the runner.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use myshoes::datastore::{Datastore, MemoryDatastore};
use myshoes::secret::Secret;
use myshoes::stadium::MemoryStadium;
use myshoes_local::app::{App, AppOptions};
use myshoes_local::config::ConfigFile;
use myshoes_local::demo::{sign, QUEUED_WEBHOOK};

const SECRET: &str = "ordering-test-secret";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Waiting,
    Queued,
    InProgress,
    Completed,
}

/// Who `in_progress` reports as the job's runner.
#[derive(Debug, Clone, Copy)]
enum TakenBy {
    /// A runner this deployment does not manage, so the job needs no runner from us.
    Foreign,
    /// A runner this deployment launched for another job, which then still needs the
    /// runner launched for this one, so `in_progress` must not cancel the launch.
    OwnForAnotherJob,
}

fn body(event: Event, taken_by: TakenBy) -> Vec<u8> {
    let text = String::from_utf8(QUEUED_WEBHOOK.to_vec()).unwrap();
    let action = match event {
        Event::Waiting => "waiting",
        Event::Queued => "queued",
        Event::InProgress => "in_progress",
        Event::Completed => "completed",
    };
    let mut text = text.replacen(
        "\"action\":\"queued\"",
        &format!("\"action\":\"{action}\""),
        1,
    );
    if event == Event::InProgress {
        let runner = match taken_by {
            TakenBy::Foreign => "GitHub Actions 7",
            TakenBy::OwnForAnotherJob => "myshoes-38000000099-1",
        };
        text = text.replacen(
            "\"runner_name\":null",
            &format!("\"runner_name\":\"{runner}\""),
            1,
        );
        assert!(text.contains(runner), "the fixture has a null runner_name");
    }
    text.into_bytes()
}

fn permutations(items: &[Event]) -> Vec<Vec<Event>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut all = Vec::new();
    for index in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(index);
        for mut tail in permutations(&rest) {
            tail.insert(0, first);
            all.push(tail);
        }
    }
    all
}

struct Scenario {
    app: App,
    datastore: Arc<MemoryDatastore>,
    stadium: Arc<MemoryStadium>,
    url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Scenario {
    /// Starts the app's HTTP routes without its dispatcher loop, so the test decides when
    /// jobs are dispatched.
    async fn start() -> Self {
        let config =
            ConfigFile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("myshoes.example.toml"))
                .unwrap();
        let datastore = Arc::new(MemoryDatastore::new());
        let stadium = Arc::new(MemoryStadium::new());
        let options = AppOptions::new(config, Secret::new(SECRET), Secret::new("token"));
        let app = App::new(options, datastore.clone(), stadium.clone())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let url = format!("http://{}/webhook", listener.local_addr().unwrap());
        let router = app.router();
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            app,
            datastore,
            stadium,
            url,
            server,
        }
    }

    async fn post(&self, body: &[u8]) -> u16 {
        // One client for every scenario: building one loads the system's root certificates.
        static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
        CLIENT
            .get_or_init(|| reqwest::Client::builder().no_proxy().build().unwrap())
            .post(&self.url)
            .header("X-GitHub-Event", "workflow_job")
            .header("X-GitHub-Delivery", uuid::Uuid::new_v4().to_string())
            .header("X-Hub-Signature-256", sign(&Secret::new(SECRET), body))
            .header("Content-Type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Dispatches every job in the queue, as the dispatcher loop would.
    async fn dispatch(&self) {
        loop {
            let received = self
                .datastore
                .receive_jobs(10, Duration::ZERO)
                .await
                .unwrap();
            if received.is_empty() {
                return;
            }
            for job in received {
                self.app.dispatcher().process(job).await;
            }
        }
    }
}

async fn check_every_order(taken_by: TakenBy) {
    let events = [
        Event::Waiting,
        Event::Queued,
        Event::InProgress,
        Event::Completed,
    ];
    let mut checked = 0;
    for order in permutations(&events) {
        let queued_at = order
            .iter()
            .position(|event| *event == Event::Queued)
            .unwrap();
        let ends_need = |event: &Event| match taken_by {
            TakenBy::Foreign => matches!(event, Event::InProgress | Event::Completed),
            TakenBy::OwnForAnotherJob => *event == Event::Completed,
        };
        let need_ends_at = order.iter().position(ends_need).unwrap();
        for dispatch_after in queued_at..order.len() {
            let scenario = Scenario::start().await;
            for (index, event) in order.iter().enumerate() {
                let status = scenario.post(&body(*event, taken_by)).await;
                assert!(
                    status == 200 || status == 202,
                    "{order:?}: {event:?} got {status}"
                );
                if index == dispatch_after {
                    scenario.dispatch().await;
                }
            }
            // Whatever is still queued is dispatched at the end.
            scenario.dispatch().await;

            let expected = usize::from(dispatch_after < need_ends_at);
            let context =
                format!("{taken_by:?}, order {order:?}, dispatched after event {dispatch_after}");
            assert_eq!(
                scenario.stadium.add_calls().len(),
                expected,
                "launch attempts: {context}"
            );
            assert_eq!(
                scenario.stadium.running().len(),
                expected,
                "runners at the end: {context}"
            );
            assert!(
                scenario.datastore.list_jobs().await.unwrap().is_empty(),
                "the queue is empty at the end: {context}"
            );
            scenario.server.abort();
            checked += 1;
        }
    }
    // 24 orders, each dispatched after queued and after every later event.
    assert_eq!(checked, 60);
}

#[tokio::test]
async fn every_order_with_foreign_runner() {
    check_every_order(TakenBy::Foreign).await;
}

#[tokio::test]
async fn every_order_with_own_runner_of_another_job() {
    check_every_order(TakenBy::OwnForAnotherJob).await;
}
