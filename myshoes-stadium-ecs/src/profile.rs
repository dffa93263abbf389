//! Task profiles: which task definition, and which cpu and memory, serve a runner request.

use std::fmt;

use myshoes::model::ResourceType;

/// One runner size an [`EcsStadium`](crate::EcsStadium) offers: a task definition and
/// optional task-level cpu and memory overrides, chosen by resource type and/or labels.
///
/// A profile matches a request when its resource type, if set, equals the request's and
/// every one of its labels is among the request's labels (compared case-insensitively).
/// A profile with neither matches every request, so it belongs last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskProfile {
    pub(crate) name: String,
    pub(crate) task_definition: String,
    pub(crate) resource_type: Option<ResourceType>,
    pub(crate) labels: Vec<String>,
    pub(crate) cpu: Option<u32>,
    pub(crate) memory_mib: Option<u32>,
}

impl TaskProfile {
    /// Creates a profile named `name` (for logs and errors) that runs `task_definition`
    /// (`family`, `family:revision` or an ARN) and matches every request.
    pub fn new(name: impl Into<String>, task_definition: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            task_definition: task_definition.into(),
            resource_type: None,
            labels: Vec::new(),
            cpu: None,
            memory_mib: None,
        }
    }

    /// Restricts the profile to requests of `resource_type`.
    pub fn for_resource_type(mut self, resource_type: ResourceType) -> Self {
        self.resource_type = Some(resource_type);
        self
    }

    /// Restricts the profile to requests that carry every one of `labels`.
    pub fn for_labels<I, S>(mut self, labels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.labels = labels.into_iter().map(Into::into).collect();
        self
    }

    /// Overrides the task's cpu, in CPU units (1024 is one vCPU). On Fargate the cpu and
    /// memory pair must be a size Fargate offers.
    pub fn with_cpu(mut self, cpu_units: u32) -> Self {
        self.cpu = Some(cpu_units);
        self
    }

    /// Overrides the task's memory, in MiB.
    pub fn with_memory_mib(mut self, memory_mib: u32) -> Self {
        self.memory_mib = Some(memory_mib);
        self
    }

    /// Returns the profile's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the task definition the profile runs.
    pub fn task_definition(&self) -> &str {
        &self.task_definition
    }

    /// Returns whether the profile serves a request of `resource_type` with `labels`.
    pub fn matches(&self, resource_type: ResourceType, labels: &[String]) -> bool {
        let type_matches = self
            .resource_type
            .is_none_or(|wanted| wanted == resource_type);
        let labels_match = self.labels.iter().all(|wanted| {
            labels
                .iter()
                .any(|label| label.eq_ignore_ascii_case(wanted))
        });
        type_matches && labels_match
    }
}

impl fmt::Display for TaskProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (resource type ", self.name)?;
        match self.resource_type {
            Some(resource_type) => write!(f, "{resource_type}")?,
            None => f.write_str("any")?,
        }
        write!(f, ", labels [{}])", self.labels.join(", "))
    }
}

/// Returns the first profile that serves the request, or a message that names the request
/// and every configured profile.
pub(crate) fn select<'a>(
    profiles: &'a [TaskProfile],
    resource_type: ResourceType,
    labels: &[String],
) -> Result<&'a TaskProfile, String> {
    profiles
        .iter()
        .find(|profile| profile.matches(resource_type, labels))
        .ok_or_else(|| {
            let configured: Vec<String> = profiles.iter().map(ToString::to_string).collect();
            format!(
                "no ECS task profile matches resource type {resource_type} with labels [{}]; \
                 configured profiles: {}; add a matching task profile or change the runner \
                 profile",
                labels.join(", "),
                configured.join("; ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(values: &[&str]) -> Vec<String> {
        values.iter().map(|value| (*value).to_owned()).collect()
    }

    #[test]
    fn select_uses_first_match_in_order() {
        let profiles = [
            TaskProfile::new("gpu", "runner-gpu").for_labels(["gpu"]),
            TaskProfile::new("large", "runner-large").for_resource_type(ResourceType::Large),
            TaskProfile::new("default", "runner-small"),
        ];
        let pick = |resource_type, request_labels: &[&str]| {
            select(&profiles, resource_type, &labels(request_labels))
                .expect("a profile matches")
                .name()
                .to_owned()
        };
        assert_eq!(pick(ResourceType::Large, &["linux", "GPU"]), "gpu");
        assert_eq!(pick(ResourceType::Large, &["linux"]), "large");
        assert_eq!(pick(ResourceType::Small, &["linux"]), "default");
    }

    #[test]
    fn select_rejects_unmapped_request() {
        let profiles = [
            TaskProfile::new("small", "runner-small").for_resource_type(ResourceType::Small),
            TaskProfile::new("arm", "runner-arm").for_labels(["arm64"]),
        ];
        let message = select(&profiles, ResourceType::XLarge, &labels(&["linux"]))
            .expect_err("nothing matches");
        assert!(message.contains("resource type xlarge"), "{message}");
        assert!(message.contains("labels [linux]"), "{message}");
        assert!(
            message.contains("small (resource type small, labels [])"),
            "{message}"
        );
        assert!(
            message.contains("arm (resource type any, labels [arm64])"),
            "{message}"
        );
    }
}
