//! Decoding SQS messages into received jobs, for `receive_jobs` and for Lambda event
//! records.

use myshoes::datastore::{AckHandle, ReceivedJob};

use crate::body::{decode_job, BodyError};

/// Error from decoding one SQS message into a job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The body is not a job this consumer reads; the message belongs in the dead-letter
    /// queue.
    #[error(
        "SQS message {message_id} does not hold a readable job; route it to the dead-letter queue"
    )]
    Body {
        /// SQS message id.
        message_id: String,
        /// Reason the body was rejected.
        #[source]
        source: BodyError,
    },
    /// The message has no usable `ApproximateReceiveCount`.
    #[error("SQS message {message_id} has ApproximateReceiveCount {value:?}, expected a number of at least 1; request that attribute when receiving")]
    ReceiveCount {
        /// SQS message id.
        message_id: String,
        /// The attribute as received, if present.
        value: Option<String>,
    },
    /// The message has no receipt handle, so it cannot be acknowledged.
    #[error("SQS message {message_id} has no receipt handle")]
    MissingReceiptHandle {
        /// SQS message id.
        message_id: String,
    },
}

impl DecodeError {
    /// Returns the SQS message id of the message that failed, as Lambda's
    /// `batchItemFailures[].itemIdentifier` expects it.
    pub fn message_id(&self) -> &str {
        match self {
            DecodeError::Body { message_id, .. }
            | DecodeError::ReceiveCount { message_id, .. }
            | DecodeError::MissingReceiptHandle { message_id } => message_id,
        }
    }
}

/// The fields of one record of a Lambda SQS event that a dispatcher needs.
///
/// Fill it from the event type of your Lambda runtime: `messageId`, `receiptHandle`,
/// `body` and `attributes.ApproximateReceiveCount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsEventRecord {
    /// `messageId`.
    pub message_id: String,
    /// `receiptHandle`.
    pub receipt_handle: String,
    /// `body`.
    pub body: String,
    /// `attributes.ApproximateReceiveCount`: 1 on the first delivery.
    pub approximate_receive_count: u32,
}

/// The outcome of decoding one Lambda event record.
#[derive(Debug)]
pub struct DecodedRecord {
    /// SQS message id of the record, for `batchItemFailures` when handling it fails.
    pub message_id: String,
    /// The job with its acknowledgement handle, or the reason the record has none.
    pub result: Result<ReceivedJob, DecodeError>,
}

/// Decodes the records of one Lambda SQS event, each on its own.
///
/// A record that does not decode yields an `Err` and never affects the others. Report its
/// message id in `batchItemFailures` so SQS redelivers it until the queue's redrive policy
/// moves it to the dead-letter queue. Each job's [`AckHandle`] contains the record's receipt
/// handle, and [`myshoes::model::Job::attempt`] counts earlier deliveries.
///
/// Use [`SqsDatastore::decode_event_records`](crate::SqsDatastore::decode_event_records)
/// instead when the jobs may be dead-lettered through that store.
pub fn decode_event_records(records: &[SqsEventRecord]) -> Vec<DecodedRecord> {
    records
        .iter()
        .map(|record| DecodedRecord {
            message_id: record.message_id.clone(),
            result: decode_message(
                &record.message_id,
                Some(&record.receipt_handle),
                &record.body,
                Some(&record.approximate_receive_count.to_string()),
            ),
        })
        .collect()
}

/// Decodes one message into a received job whose attempt adds the earlier receives of this
/// message to the attempt stored in the body.
pub(crate) fn decode_message(
    message_id: &str,
    receipt_handle: Option<&str>,
    body: &str,
    receive_count: Option<&str>,
) -> Result<ReceivedJob, DecodeError> {
    let mut job = decode_job(body).map_err(|source| DecodeError::Body {
        message_id: message_id.to_owned(),
        source,
    })?;
    let count = receive_count
        .and_then(|value| value.parse::<u32>().ok())
        .filter(|count| *count >= 1)
        .ok_or_else(|| DecodeError::ReceiveCount {
            message_id: message_id.to_owned(),
            value: receive_count.map(str::to_owned),
        })?;
    let receipt_handle = receipt_handle
        .filter(|handle| !handle.is_empty())
        .ok_or_else(|| DecodeError::MissingReceiptHandle {
            message_id: message_id.to_owned(),
        })?;
    job.attempt = job.attempt.saturating_add(count - 1);
    let ack = AckHandle::new(job.id, receipt_handle);
    Ok(ReceivedJob { job, ack })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::encode_job;
    use myshoes::datastore::conformance::sample_job;
    use myshoes::model::TargetId;

    fn record(message_id: &str, body: String, count: u32) -> SqsEventRecord {
        SqsEventRecord {
            message_id: message_id.to_owned(),
            receipt_handle: format!("handle-{message_id}"),
            body,
            approximate_receive_count: count,
        }
    }

    #[test]
    fn batch_with_one_bad_record_yields_two_jobs() {
        let first = sample_job(TargetId::new_random());
        let mut second = sample_job(TargetId::new_random());
        second.attempt = 2;
        let records = vec![
            record("m-1", encode_job(&first), 1),
            record("m-2", "{\"v\":1,\"job\":".to_owned(), 1),
            record("m-3", encode_job(&second), 3),
        ];

        let decoded = decode_event_records(&records);

        assert_eq!(decoded.len(), 3, "one outcome per record");
        let ok: Vec<&ReceivedJob> = decoded
            .iter()
            .filter_map(|record| record.result.as_ref().ok())
            .collect();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].job.id, first.id);
        assert_eq!(ok[0].ack.token(), "handle-m-1");
        assert_eq!(ok[0].job.attempt, 0);
        assert_eq!(
            ok[1].job.attempt, 4,
            "the body's attempt plus two earlier receives"
        );
        let failed = decoded[1].result.as_ref().expect_err("bad body");
        assert_eq!(failed.message_id(), "m-2");
        assert_eq!(decoded[1].message_id, "m-2");
        assert!(matches!(failed, DecodeError::Body { .. }), "got {failed:?}");
    }

    #[test]
    fn zero_receive_count_is_rejected() {
        let records = vec![record(
            "m-1",
            encode_job(&sample_job(TargetId::new_random())),
            0,
        )];
        let decoded = decode_event_records(&records);
        assert!(
            matches!(decoded[0].result, Err(DecodeError::ReceiveCount { .. })),
            "got {:?}",
            decoded[0].result
        );
    }
}
