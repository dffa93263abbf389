//! Tags that tie each task to its runner, and reading them back for the sweeper.

use aws_sdk_ecs::types::{Tag, Task};
use chrono::{DateTime, Utc};
use myshoes::stadium::{AddInstanceRequest, ListedInstance};

/// Tag key of the runner name.
pub const TAG_RUNNER_NAME: &str = "myshoes:runner-name";
/// Tag key of the job id.
pub const TAG_JOB_ID: &str = "myshoes:job-id";
/// Tag key of the repository, `owner/repo`.
pub const TAG_REPOSITORY: &str = "myshoes:repository";
/// Tag key of the target id.
pub const TAG_TARGET_ID: &str = "myshoes:target-id";
/// Tag key of the runner's labels, separated by single spaces.
pub const TAG_LABELS: &str = "myshoes:labels";
/// Tag key of the GitHub App installation id.
pub(crate) const TAG_INSTALLATION_ID: &str = "myshoes:installation-id";
/// Tag key of the runner profile name.
pub(crate) const TAG_PROFILE: &str = "myshoes:profile";

/// Maximum length of an ECS tag value.
const MAX_TAG_VALUE_LEN: usize = 256;

/// Returns whether ECS accepts `value` in a tag value: letters, digits, spaces and
/// `+ - = . _ : / @`.
fn is_tag_text(value: &str) -> bool {
    value.chars().all(|c| {
        c.is_alphanumeric() || matches!(c, ' ' | '+' | '-' | '=' | '.' | '_' | ':' | '/' | '@')
    })
}

/// Returns the labels tag value, or `None` when the labels cannot be stored in one tag
/// value: a label with a space or another character tags reject, or more than 256
/// characters in all.
fn labels_value(labels: &[String]) -> Option<String> {
    let representable = labels
        .iter()
        .all(|label| !label.contains(' ') && is_tag_text(label));
    let value = labels.join(" ");
    (representable && value.chars().count() <= MAX_TAG_VALUE_LEN).then_some(value)
}

/// Builds the tags of the task for `request`.
pub(crate) fn request_tags(request: &AddInstanceRequest) -> Vec<Tag> {
    let mut tags = vec![
        tag(TAG_RUNNER_NAME, &request.runner_name),
        tag(TAG_JOB_ID, &request.job_id.to_string()),
        tag(TAG_REPOSITORY, request.repository.as_str()),
        tag(TAG_TARGET_ID, &request.target_id.to_string()),
    ];
    if let Some(installation_id) = request.installation_id {
        tags.push(tag(TAG_INSTALLATION_ID, &installation_id.to_string()));
    }
    // A profile name that a tag value cannot hold is left out, like labels below.
    if !request.profile.is_empty()
        && is_tag_text(&request.profile)
        && request.profile.chars().count() <= MAX_TAG_VALUE_LEN
    {
        tags.push(tag(TAG_PROFILE, &request.profile));
    }
    // NOTE: labels that a tag value cannot hold are left out, so such a task lists with no
    // labels. Listing uses them for information only.
    if let Some(labels) = labels_value(&request.labels) {
        if !labels.is_empty() {
            tags.push(tag(TAG_LABELS, &labels));
        }
    }
    tags
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// Converts a described task into a listed instance; `None` without a task ARN.
pub(crate) fn listed_instance(task: &Task) -> Option<ListedInstance> {
    let cloud_id = task.task_arn()?.to_owned();
    let tag_value = |key: &str| {
        task.tags()
            .iter()
            .find(|tag| tag.key() == Some(key))
            .and_then(Tag::value)
    };
    let labels = tag_value(TAG_LABELS)
        .map(|value| {
            value
                .split(' ')
                .filter(|label| !label.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let started_at = task
        .started_at()
        .or_else(|| task.created_at())
        .and_then(|time| DateTime::<Utc>::from_timestamp(time.secs(), time.subsec_nanos()));
    Some(ListedInstance {
        cloud_id,
        runner_name: tag_value(TAG_RUNNER_NAME).map(str::to_owned),
        job_id: tag_value(TAG_JOB_ID).and_then(|value| value.parse().ok()),
        target_id: tag_value(TAG_TARGET_ID).and_then(|value| value.parse().ok()),
        installation_id: tag_value(TAG_INSTALLATION_ID).and_then(|value| value.parse().ok()),
        profile: tag_value(TAG_PROFILE).map(str::to_owned),
        labels,
        started_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::primitives::DateTime as AwsDateTime;
    use myshoes::stadium::conformance::harmless_request;

    #[test]
    fn tags_round_trip_through_listing() {
        let mut request = harmless_request("myshoes-38000000001-1");
        request.labels = vec!["linux".to_owned(), "x64".to_owned()];
        let task = Task::builder()
            .task_arn("arn:aws:ecs:us-east-1:123456789012:task/runners/abc")
            .set_tags(Some(request_tags(&request)))
            .created_at(AwsDateTime::from_secs(1_700_000_000))
            .build();
        let listed = listed_instance(&task).expect("task has an ARN");
        assert_eq!(listed.runner_name.as_deref(), Some("myshoes-38000000001-1"));
        assert_eq!(listed.job_id, Some(request.job_id));
        assert_eq!(listed.target_id, Some(request.target_id));
        assert_eq!(listed.installation_id, Some(42));
        assert_eq!(listed.profile.as_deref(), Some("conformance"));
        assert_eq!(listed.labels, request.labels);
        assert_eq!(
            listed.started_at.map(|time| time.timestamp()),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn labels_tag_omitted_when_unrepresentable() {
        let mut request = harmless_request("runner-1");
        request.labels = vec!["two words".to_owned()];
        assert!(request_tags(&request)
            .iter()
            .all(|tag| tag.key() != Some(TAG_LABELS)));
        request.labels = vec!["x".repeat(300)];
        assert!(request_tags(&request)
            .iter()
            .all(|tag| tag.key() != Some(TAG_LABELS)));
        request.labels = vec!["comma,label".to_owned()];
        assert!(request_tags(&request)
            .iter()
            .all(|tag| tag.key() != Some(TAG_LABELS)));
    }
}
