//! Record of the receipt handles this process handed out. It catches stale handles before
//! they reach SQS and keeps the body that a dead letter needs.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use myshoes::model::JobId;

/// SQS keeps a message in flight for at most 12 hours, so a handle older than that is
/// useless and its entry can go.
const MAX_RECEIPT_AGE: Duration = Duration::from_secs(12 * 60 * 60);

/// Maximum number of receives remembered; the oldest are forgotten first. Handles of
/// messages that leave the queue without `delete_job`, such as records that Lambda's event
/// source mapping deletes, would otherwise pile up.
pub(crate) const MAX_RECEIPTS: usize = 10_000;

/// One receive of one message.
#[derive(Debug, Clone)]
pub(crate) struct Receipt {
    pub(crate) message_id: String,
    pub(crate) job_id: JobId,
    /// The message body exactly as received, forwarded unchanged to the dead-letter queue.
    pub(crate) body: Arc<str>,
}

impl PartialEq for Receipt {
    fn eq(&self, other: &Self) -> bool {
        self.message_id == other.message_id && self.job_id == other.job_id
    }
}

impl Eq for Receipt {}

/// State of a handle: whether it is the newest one this process holds for its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HandleState {
    /// The newest handle of its message.
    Current(Receipt),
    /// A later receive in this process replaced it.
    Stale,
    /// This process never handed it out, or forgot it.
    Unknown,
}

/// Receipts by handle, the handles of each SQS message id (oldest first), and every
/// recorded handle in the order of its receive.
#[derive(Debug, Default)]
pub(crate) struct ReceiptLedger {
    by_handle: HashMap<String, Receipt>,
    handles_by_message: HashMap<String, Vec<String>>,
    received: VecDeque<(Instant, String)>,
}

impl ReceiptLedger {
    /// Records a receive; its handle becomes the newest for the message.
    pub(crate) fn record(&mut self, handle: &str, message_id: &str, job_id: JobId, body: &str) {
        let now = Instant::now();
        self.handles_by_message
            .entry(message_id.to_owned())
            .or_default()
            .push(handle.to_owned());
        self.by_handle.insert(
            handle.to_owned(),
            Receipt {
                message_id: message_id.to_owned(),
                job_id,
                body: Arc::from(body),
            },
        );
        self.received.push_back((now, handle.to_owned()));
        self.evict(now);
    }

    /// Returns the state of a handle.
    pub(crate) fn state(&self, handle: &str) -> HandleState {
        let Some(receipt) = self.by_handle.get(handle) else {
            return HandleState::Unknown;
        };
        let newest = self
            .handles_by_message
            .get(&receipt.message_id)
            .and_then(|handles| handles.last());
        if newest.map(String::as_str) == Some(handle) {
            HandleState::Current(receipt.clone())
        } else {
            HandleState::Stale
        }
    }

    /// Forgets every handle of the message `handle` belongs to, after it left the queue.
    pub(crate) fn forget_message_of(&mut self, handle: &str) {
        let Some(receipt) = self.by_handle.remove(handle) else {
            return;
        };
        let handles = self
            .handles_by_message
            .remove(&receipt.message_id)
            .unwrap_or_default();
        for other in handles {
            self.by_handle.remove(&other);
        }
    }

    /// Forgets receives older than [`MAX_RECEIPT_AGE`] and those beyond [`MAX_RECEIPTS`].
    fn evict(&mut self, now: Instant) {
        while let Some((received_at, _)) = self.received.front() {
            let too_old = now.duration_since(*received_at) >= MAX_RECEIPT_AGE;
            if !too_old && self.received.len() <= MAX_RECEIPTS {
                break;
            }
            if let Some((_, handle)) = self.received.pop_front() {
                self.forget_handle(&handle);
            }
        }
    }

    fn forget_handle(&mut self, handle: &str) {
        let Some(receipt) = self.by_handle.remove(handle) else {
            return;
        };
        if let Some(handles) = self.handles_by_message.get_mut(&receipt.message_id) {
            handles.retain(|other| other != handle);
            if handles.is_empty() {
                self.handles_by_message.remove(&receipt.message_id);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_handle.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_receive_makes_earlier_handle_stale() {
        let mut ledger = ReceiptLedger::default();
        let job_id = JobId::new_random();
        ledger.record("h1", "m1", job_id, "{}");
        ledger.record("h2", "m1", job_id, "{}");

        assert_eq!(ledger.state("h1"), HandleState::Stale);
        assert!(matches!(ledger.state("h2"), HandleState::Current(_)));
        assert_eq!(ledger.state("other"), HandleState::Unknown);
    }

    #[test]
    fn forget_removes_every_handle_of_message() {
        let mut ledger = ReceiptLedger::default();
        let job_id = JobId::new_random();
        ledger.record("h1", "m1", job_id, "{}");
        ledger.record("h2", "m1", job_id, "{}");
        ledger.record("h3", "m2", job_id, "{}");

        ledger.forget_message_of("h2");

        assert_eq!(ledger.state("h1"), HandleState::Unknown);
        assert_eq!(ledger.state("h2"), HandleState::Unknown);
        assert!(matches!(ledger.state("h3"), HandleState::Current(_)));
        assert_eq!(ledger.len(), 1);
    }

    #[test]
    fn ledger_is_bounded() {
        let mut ledger = ReceiptLedger::default();
        let job_id = JobId::new_random();
        for index in 0..MAX_RECEIPTS + 5 {
            ledger.record(&format!("h{index}"), &format!("m{index}"), job_id, "{}");
        }

        assert_eq!(ledger.len(), MAX_RECEIPTS);
        assert_eq!(ledger.received.len(), MAX_RECEIPTS);
        assert_eq!(
            ledger.state("h0"),
            HandleState::Unknown,
            "the oldest is forgotten"
        );
        assert!(matches!(
            ledger.state(&format!("h{}", MAX_RECEIPTS + 4)),
            HandleState::Current(_)
        ));
    }
}
