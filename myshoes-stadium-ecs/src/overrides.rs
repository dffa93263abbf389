//! The RunTask `overrides` that carry the setup script, and ECS's size limit on them.

use aws_sdk_ecs::types::{ContainerOverride, KeyValuePair, TaskOverride};
use myshoes::setup_script::SetupScript;
use serde_json::{json, Map, Value};

use crate::config::ScriptDelivery;
use crate::profile::TaskProfile;

/// Maximum size of RunTask's `overrides`, in characters of its JSON form including the
/// formatting characters, as the ECS API reference states it.
pub const MAX_OVERRIDES_LEN: usize = 8192;

/// The overrides of one RunTask call. It contains the setup script, so it has no `Debug`.
pub(crate) struct Overrides {
    container: String,
    command: Option<Vec<String>>,
    environment: Vec<(String, String)>,
    cpu: Option<String>,
    memory: Option<String>,
}

impl Overrides {
    /// Builds the overrides for `container` that hand `setup` to it by `delivery`,
    /// with the profile's cpu and memory.
    pub(crate) fn new(
        container: &str,
        delivery: &ScriptDelivery,
        setup: &SetupScript,
        profile: &TaskProfile,
    ) -> Self {
        let (command, environment) = match delivery {
            ScriptDelivery::Command => (
                Some(vec![
                    "bash".to_owned(),
                    "-c".to_owned(),
                    setup.wrapper().to_owned(),
                ]),
                Vec::new(),
            ),
            ScriptDelivery::Environment { variable } => {
                (None, vec![(variable.clone(), setup.wrapper().to_owned())])
            }
        };
        Self {
            container: container.to_owned(),
            command,
            environment,
            cpu: profile.cpu.map(|cpu| cpu.to_string()),
            memory: profile.memory_mib.map(|memory| memory.to_string()),
        }
    }

    /// Returns the length in characters of the overrides' JSON form, as ECS counts it
    /// against [`MAX_OVERRIDES_LEN`].
    pub(crate) fn json_len(&self) -> usize {
        let mut container = Map::new();
        container.insert("name".to_owned(), json!(self.container));
        if let Some(command) = &self.command {
            container.insert("command".to_owned(), json!(command));
        }
        if !self.environment.is_empty() {
            let environment: Vec<Value> = self
                .environment
                .iter()
                .map(|(name, value)| json!({ "name": name, "value": value }))
                .collect();
            container.insert("environment".to_owned(), Value::Array(environment));
        }
        let mut overrides = Map::new();
        overrides.insert(
            "containerOverrides".to_owned(),
            Value::Array(vec![Value::Object(container)]),
        );
        if let Some(cpu) = &self.cpu {
            overrides.insert("cpu".to_owned(), json!(cpu));
        }
        if let Some(memory) = &self.memory {
            overrides.insert("memory".to_owned(), json!(memory));
        }
        Value::Object(overrides).to_string().chars().count()
    }

    /// Converts the overrides into the SDK's type.
    pub(crate) fn into_task_override(self) -> TaskOverride {
        let environment: Vec<KeyValuePair> = self
            .environment
            .into_iter()
            .map(|(name, value)| KeyValuePair::builder().name(name).value(value).build())
            .collect();
        let container = ContainerOverride::builder()
            .name(self.container)
            .set_command(self.command)
            .set_environment((!environment.is_empty()).then_some(environment))
            .build();
        TaskOverride::builder()
            .container_overrides(container)
            .set_cpu(self.cpu)
            .set_memory(self.memory)
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use myshoes::secret::Secret;
    use myshoes::setup_script::{RunnerCredential, SetupScriptParams};

    fn setup() -> SetupScript {
        SetupScriptParams::new(
            "https://github.com/octo-org",
            RunnerCredential::RegistrationToken(Secret::new("token\"with\\quotes")),
            "runner-1",
        )
        .build()
        .expect("valid parameters")
    }

    fn serialized_len(overrides: Overrides) -> usize {
        // The SDK's own JSON shape, to check that json_len counts the same characters.
        let task_override = overrides.into_task_override();
        let container = &task_override.container_overrides()[0];
        let mut value = json!({ "containerOverrides": [{ "name": container.name() }] });
        if !container.command().is_empty() {
            value["containerOverrides"][0]["command"] = json!(container.command());
        }
        if !container.environment().is_empty() {
            let environment: Vec<Value> = container
                .environment()
                .iter()
                .map(|pair| json!({ "name": pair.name(), "value": pair.value() }))
                .collect();
            value["containerOverrides"][0]["environment"] = Value::Array(environment);
        }
        if let Some(cpu) = task_override.cpu() {
            value["cpu"] = json!(cpu);
        }
        if let Some(memory) = task_override.memory() {
            value["memory"] = json!(memory);
        }
        value.to_string().chars().count()
    }

    #[test]
    fn json_len_matches_sdk_shape() {
        let setup = setup();
        let profile = TaskProfile::new("large", "runner-large")
            .with_cpu(2048)
            .with_memory_mib(4096);
        for delivery in [
            ScriptDelivery::Command,
            ScriptDelivery::Environment {
                variable: "MYSHOES_SETUP_SCRIPT".to_owned(),
            },
        ] {
            let overrides = Overrides::new("runner", &delivery, &setup, &profile);
            let counted = overrides.json_len();
            assert!(counted > setup.wrapper_len(), "{delivery:?}");
            let rebuilt = Overrides::new("runner", &delivery, &setup, &profile);
            assert_eq!(counted, serialized_len(rebuilt), "{delivery:?}");
        }
    }

    #[test]
    fn command_runs_wrapper_with_bash() {
        let setup = setup();
        let profile = TaskProfile::new("default", "runner");
        let task_override = Overrides::new("runner", &ScriptDelivery::Command, &setup, &profile)
            .into_task_override();
        let container = &task_override.container_overrides()[0];
        assert_eq!(container.name(), Some("runner"));
        assert_eq!(container.command()[..2], ["bash", "-c"]);
        assert_eq!(container.command()[2], setup.wrapper());
        assert!(container.environment().is_empty());
        assert_eq!(task_override.cpu(), None);
        assert_eq!(task_override.memory(), None);
    }

    #[test]
    fn command_override_reaches_setup_script() {
        // The harmless script stops at once because its pre-installed runner is missing.
        let request = myshoes::stadium::conformance::harmless_request("runner-1");
        let profile = TaskProfile::new("default", "runner");
        let task_override = Overrides::new(
            "runner",
            &ScriptDelivery::Command,
            &request.setup_script,
            &profile,
        )
        .into_task_override();
        let command = task_override.container_overrides()[0].command();

        let output = std::process::Command::new(&command[0])
            .args(&command[1..])
            .current_dir(std::env::temp_dir())
            .output()
            .expect("run bash");

        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        assert!(stderr.contains("myshoes:"), "{stderr}");
        assert!(stderr.contains("contains no executable run.sh"), "{stderr}");
        assert!(!stderr.contains("conformance-token"), "{stderr}");
    }

    #[test]
    fn environment_override_runs_with_documented_command() {
        let request = myshoes::stadium::conformance::harmless_request("runner-1");
        let profile = TaskProfile::new("default", "runner");
        let task_override = Overrides::new(
            "runner",
            &ScriptDelivery::environment(),
            &request.setup_script,
            &profile,
        )
        .into_task_override();
        let variable = &task_override.container_overrides()[0].environment()[0];

        // The task definition command that ScriptDelivery::Environment documents.
        let output = std::process::Command::new("bash")
            .arg("-c")
            .arg("script=$MYSHOES_SETUP_SCRIPT; unset MYSHOES_SETUP_SCRIPT; eval \"$script\"")
            .env(
                variable.name().expect("variable name"),
                variable.value().expect("variable value"),
            )
            .current_dir(std::env::temp_dir())
            .output()
            .expect("run bash");

        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        assert!(stderr.contains("contains no executable run.sh"), "{stderr}");
    }
}
