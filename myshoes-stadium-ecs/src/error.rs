//! Mapping of ECS API errors and RunTask failures into [`myshoes::stadium::Error`].
//!
//! Modeled SDK errors are distinguished by their type and unmodeled ones by their error
//! code, never by message text.

use std::error::Error as StdError;

use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksError;
use aws_sdk_ecs::operation::list_tasks::ListTasksError;
use aws_sdk_ecs::operation::run_task::RunTaskError;
use aws_sdk_ecs::operation::stop_task::StopTaskError;
use aws_sdk_ecs::types::Failure;
use myshoes::stadium::{BoxError, Error};

/// Name of this backend in [`Error::Backend`] and [`Error::NotSupported`].
pub(crate) const BACKEND: &str = "ecs";

/// Error codes that AWS services use for throttling, as the AWS SDKs' retry classifiers
/// list them. ECS does not model a throttling error, so it arrives unmodeled.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "LimitExceededException",
];

/// The source inside an [`Error::Backend`] from this crate.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EcsError {
    /// An ECS API call failed. The source is the SDK's error without its raw response.
    #[error("ECS {action} on cluster {cluster} failed")]
    Api {
        action: &'static str,
        cluster: String,
        #[source]
        source: BoxError,
    },
    /// RunTask returned HTTP 200 with an empty `tasks` and an empty `failures` list.
    #[error("ECS RunTask on cluster {cluster} returned neither a task nor a failure")]
    NoTask { cluster: String },
}

/// Handling class of an ECS error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    AccessDenied,
    ClusterNotFound,
    InvalidRequest,
    Throttled,
    Retryable,
    Permanent,
}

/// Classification of the modeled errors of one ECS operation.
pub(crate) trait ModeledError:
    StdError + ProvideErrorMetadata + Send + Sync + 'static
{
    /// Returns the kind of a modeled variant, or `None` for the unmodeled one.
    fn modeled_kind(&self) -> Option<Kind>;
}

impl ModeledError for RunTaskError {
    fn modeled_kind(&self) -> Option<Kind> {
        Some(match self {
            RunTaskError::AccessDeniedException(_) | RunTaskError::BlockedException(_) => {
                Kind::AccessDenied
            }
            RunTaskError::ClusterNotFoundException(_) => Kind::ClusterNotFound,
            RunTaskError::ClientException(_)
            | RunTaskError::InvalidParameterException(_)
            | RunTaskError::PlatformTaskDefinitionIncompatibilityException(_)
            | RunTaskError::PlatformUnknownException(_)
            | RunTaskError::UnsupportedFeatureException(_) => Kind::InvalidRequest,
            RunTaskError::ConflictException(_) | RunTaskError::ServerException(_) => {
                Kind::Retryable
            }
            _ => return None,
        })
    }
}

impl ModeledError for StopTaskError {
    fn modeled_kind(&self) -> Option<Kind> {
        Some(match self {
            StopTaskError::AccessDeniedException(_) => Kind::AccessDenied,
            StopTaskError::ClusterNotFoundException(_) => Kind::ClusterNotFound,
            StopTaskError::ClientException(_) | StopTaskError::InvalidParameterException(_) => {
                Kind::InvalidRequest
            }
            StopTaskError::ServerException(_) => Kind::Retryable,
            _ => return None,
        })
    }
}

impl ModeledError for ListTasksError {
    fn modeled_kind(&self) -> Option<Kind> {
        Some(match self {
            ListTasksError::AccessDeniedException(_) => Kind::AccessDenied,
            ListTasksError::ClusterNotFoundException(_) => Kind::ClusterNotFound,
            ListTasksError::ClientException(_)
            | ListTasksError::InvalidParameterException(_)
            | ListTasksError::ServiceNotFoundException(_) => Kind::InvalidRequest,
            ListTasksError::ServerException(_) => Kind::Retryable,
            _ => return None,
        })
    }
}

impl ModeledError for DescribeTasksError {
    fn modeled_kind(&self) -> Option<Kind> {
        Some(match self {
            DescribeTasksError::AccessDeniedException(_) => Kind::AccessDenied,
            DescribeTasksError::ClusterNotFoundException(_) => Kind::ClusterNotFound,
            DescribeTasksError::ClientException(_)
            | DescribeTasksError::InvalidParameterException(_) => Kind::InvalidRequest,
            DescribeTasksError::ServerException(_) => Kind::Retryable,
            _ => return None,
        })
    }
}

/// Context of one ECS call: the Stadium method, the ECS action and the cluster.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'a> {
    pub(crate) operation: &'static str,
    pub(crate) action: &'static str,
    pub(crate) cluster: &'a str,
    /// IAM actions the call needs, for access-denied messages.
    pub(crate) permissions: &'static str,
}

/// Returns whether a StopTask error may mean that the task is unknown, so a DescribeTasks
/// call should decide. ECS returns a client or invalid-parameter error for an unknown
/// task, and moto 5.2.5 returns HTTP 500.
pub(crate) fn may_mean_unknown_task<E: ModeledError, R>(error: &SdkError<E, R>) -> bool {
    let timed_out = matches!(error, SdkError::TimeoutError(_));
    !timed_out && matches!(classify(error), Kind::InvalidRequest | Kind::Retryable)
}

fn classify<E: ModeledError, R>(error: &SdkError<E, R>) -> Kind {
    match error {
        SdkError::ServiceError(context) => {
            let service_error = context.err();
            if let Some(kind) = service_error.modeled_kind() {
                return kind;
            }
            if service_error
                .code()
                .is_some_and(|code| THROTTLING_CODES.contains(&code))
            {
                return Kind::Throttled;
            }
            Kind::Retryable
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Kind::Retryable
        }
        _ => Kind::Permanent,
    }
}

/// Maps an SDK error of one ECS call into the core error.
///
/// The SDK error is reduced to its source first, because its raw HTTP response can echo
/// the request, and RunTask's request carries the runner credential.
pub(crate) fn map_sdk_error<E, R>(error: SdkError<E, R>, call: Call<'_>) -> Error
where
    E: ModeledError,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let Call {
        operation,
        action,
        cluster,
        permissions,
    } = call;
    let timed_out = match &error {
        SdkError::TimeoutError(_) => true,
        SdkError::DispatchFailure(failure) => failure.is_timeout(),
        _ => false,
    };
    if timed_out {
        return Error::TimedOut { operation };
    }
    let kind = classify(&error);
    let code = error
        .as_service_error()
        .and_then(|service_error| service_error.code())
        .unwrap_or("no error code")
        .to_owned();
    let message = error
        .as_service_error()
        .and_then(|service_error| service_error.message())
        .unwrap_or("no message")
        .to_owned();
    match kind {
        Kind::AccessDenied => Error::AccessDenied {
            reason: format!(
                "ECS {action} on cluster {cluster} was denied ({code}: {message}); grant the \
                 caller {permissions}"
            ),
        },
        Kind::ClusterNotFound => Error::InvalidRequest {
            reason: format!(
                "ECS cluster {cluster} not found ({message}); check the cluster name and the \
                 client's region"
            ),
        },
        Kind::InvalidRequest => Error::InvalidRequest {
            reason: format!("ECS rejected {action} on cluster {cluster} ({code}: {message})"),
        },
        Kind::Throttled => Error::Throttled {
            reason: format!("ECS {action} on cluster {cluster} was throttled ({code})"),
        },
        Kind::Retryable | Kind::Permanent => Error::Backend {
            backend: BACKEND,
            operation,
            retryable: kind == Kind::Retryable,
            source: Box::new(EcsError::Api {
                action,
                cluster: cluster.to_owned(),
                source: sdk_error_source(error),
            }),
        },
    }
}

fn sdk_error_source<E, R>(error: SdkError<E, R>) -> BoxError
where
    E: StdError + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match error.into_source() {
        Ok(source) => source,
        Err(error) => format!("{error}").into(),
    }
}

/// Handling class of a RunTask failure reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// No room now: `RESOURCE:*`, `AGENT`, and reasons ECS documents as free text, such as
    /// Fargate's "Capacity is unavailable at this time".
    Capacity,
    /// A missing or invalid resource: `MISSING`, `INACTIVE`, `ATTRIBUTE`.
    Permanent,
}

/// Classifies a RunTask failure by its reason.
///
/// ECS documents short codes for placement failures (`RESOURCE:CPU`, `AGENT`, `MISSING`,
/// ...), and free text for Fargate capacity. The reason field is the only classification
/// ECS returns, so the codes are compared exactly and anything else counts as capacity.
pub(crate) fn classify_failure(reason: &str) -> FailureKind {
    let code = reason.trim();
    if matches!(code, "MISSING" | "INACTIVE" | "ATTRIBUTE") {
        FailureKind::Permanent
    } else {
        // NOTE: unknown reasons, including quota messages such as "The requested CPU
        // configuration is above your limit", are treated as retryable capacity problems.
        // The dispatcher's attempt limit ends their retries.
        FailureKind::Capacity
    }
}

/// Maps the first RunTask failure of a response without tasks into the core error.
pub(crate) fn map_failure(failure: &Failure, cluster: &str, runner_name: &str) -> Error {
    let reason = failure.reason().unwrap_or("no reason");
    let arn = failure.arn().unwrap_or("no ARN");
    let detail = failure.detail().unwrap_or("no detail");
    match classify_failure(reason) {
        FailureKind::Capacity => Error::Capacity {
            reason: format!(
                "ECS RunTask for runner {runner_name} on cluster {cluster} failed with {reason} \
                 ({arn}: {detail}); retry later or add capacity"
            ),
        },
        FailureKind::Permanent => Error::InvalidRequest {
            reason: format!(
                "ECS RunTask for runner {runner_name} on cluster {cluster} failed with {reason} \
                 ({arn}: {detail}); check that the task definition, cluster and capacity \
                 providers exist and are active"
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_reasons_split_by_code() {
        for reason in [
            "RESOURCE:CPU",
            "RESOURCE:MEMORY",
            "AGENT",
            "Capacity is unavailable at this time. Please try again later or in a different availability zone",
        ] {
            assert_eq!(classify_failure(reason), FailureKind::Capacity, "{reason}");
        }
        for reason in ["MISSING", "INACTIVE", "ATTRIBUTE"] {
            assert_eq!(classify_failure(reason), FailureKind::Permanent, "{reason}");
        }
    }
}
