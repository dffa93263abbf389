//! The app's configuration file: targets and runner profiles.

use std::path::Path;

use myshoes::model::{GitHubHost, ResourceType, Scope, Target, TargetStatus};
use myshoes::profile::{LabelMatchMode, Profiles, RunnerProfile};
use serde::Deserialize;

/// Contents of the TOML configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// GitHub instance for targets without a host, and for webhooks without a repository
    /// URL.
    #[serde(default)]
    pub github_host: GitHubHost,
    /// How job labels are compared with profile labels.
    #[serde(default)]
    pub label_match: LabelMatchMode,
    /// Repositories and organizations that get runners.
    #[serde(default)]
    pub targets: Vec<TargetEntry>,
    /// Kinds of runner offered.
    #[serde(default)]
    pub profiles: Vec<RunnerProfile>,
    /// Maximum number of runners at once per target; unset for no limit.
    #[serde(default)]
    pub max_runners_per_target: Option<u32>,
}

/// One target in the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetEntry {
    /// `owner/repo` or `owner`.
    pub scope: Scope,
    /// GitHub instance; the file's `github_host` when absent.
    pub host: Option<GitHubHost>,
    /// Default runner size; `unknown` when absent.
    #[serde(default)]
    pub resource_type: ResourceType,
    /// `active` (the default) or `suspend`, which keeps the target but gives it no jobs.
    #[serde(default = "active")]
    pub status: TargetStatus,
}

fn active() -> TargetStatus {
    TargetStatus::Active
}

/// Error returned for an unreadable or invalid configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("failed to read configuration file {path}")]
    Read {
        /// Path of the file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or invalid fields.
    #[error("invalid configuration file {path}")]
    Parse {
        /// Path of the file.
        path: String,
        /// The parse error, with line and column.
        #[source]
        source: toml::de::Error,
    },
    /// The settings are individually valid but do not fit together.
    #[error("invalid configuration file {path}: {reason}")]
    Invalid {
        /// Path of the file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Validated settings from the configuration file.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// Default GitHub instance.
    pub github_host: GitHubHost,
    /// Targets to create at start.
    pub targets: Vec<Target>,
    /// Runner profiles in matching order.
    pub profiles: Profiles,
    /// Most runners at once per target; `None` for no limit.
    pub max_runners_per_target: Option<u32>,
}

impl ConfigFile {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: display.clone(),
            source,
        })?;
        Self::parse(&text, &display)
    }

    /// Parses and validates configuration text; `path` only names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<LoadedConfig, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |reason: String| ConfigError::Invalid {
            path: path.to_owned(),
            reason,
        };
        if file.profiles.is_empty() {
            return Err(invalid(
                "no [[profiles]]: add at least one runner profile, or no job ever matches"
                    .to_owned(),
            ));
        }
        let profiles = Profiles::new(file.profiles, file.label_match)
            .map_err(|error| invalid(error.to_string()))?;

        let mut targets: Vec<Target> = Vec::new();
        for entry in file.targets {
            let host = entry.host.unwrap_or_else(|| file.github_host.clone());
            if targets
                .iter()
                .any(|t| t.host == host && t.scope == entry.scope)
            {
                return Err(invalid(format!(
                    "target {} on {host} is listed twice",
                    entry.scope
                )));
            }
            if !matches!(entry.status, TargetStatus::Active | TargetStatus::Suspend) {
                return Err(invalid(format!(
                    "target {} has status {}: use active or suspend",
                    entry.scope, entry.status
                )));
            }
            let mut target = Target::new(entry.scope, host, entry.resource_type);
            target.status = entry.status;
            targets.push(target);
        }
        Ok(LoadedConfig {
            github_host: file.github_host,
            targets,
            profiles,
            max_runners_per_target: file.max_runners_per_target,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("myshoes.example.toml");
        let config = ConfigFile::load(&path).unwrap();
        assert_eq!(config.targets.len(), 2);
        assert_eq!(config.github_host, GitHubHost::github_com());
        assert_eq!(config.profiles.iter().next().unwrap().name, "linux-x64");
    }

    #[test]
    fn errors_name_the_problem() {
        let unknown =
            ConfigFile::parse("colour = 1\n[[profiles]]\nname='a'\n", "x.toml").unwrap_err();
        let text = format!(
            "{unknown}: {}",
            std::error::Error::source(&unknown).unwrap()
        );
        assert!(text.contains("x.toml"), "{text}");
        assert!(text.contains("colour"), "{text}");

        let no_profiles = ConfigFile::parse("", "x.toml").unwrap_err().to_string();
        assert!(no_profiles.contains("no [[profiles]]"), "{no_profiles}");

        let bad_scope = ConfigFile::parse(
            "[[targets]]\nscope = 'https://github.com/a'\n[[profiles]]\nname='a'\n",
            "x.toml",
        )
        .unwrap_err();
        let text = format!("{}", std::error::Error::source(&bad_scope).unwrap());
        assert!(text.contains("invalid GitHub scope"), "{text}");

        let twice = ConfigFile::parse(
            "[[targets]]\nscope = 'a'\n[[targets]]\nscope = 'A'\n[[profiles]]\nname='p'\n",
            "x.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(twice.contains("listed twice"), "{twice}");

        let deleted = ConfigFile::parse(
            "[[targets]]\nscope = 'a'\nstatus = 'deleted'\n[[profiles]]\nname='p'\n",
            "x.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(deleted.contains("use active or suspend"), "{deleted}");
    }

    #[test]
    fn suspended_target_loads() {
        let config = ConfigFile::parse(
            "[[targets]]\nscope = 'a'\nstatus = 'suspend'\n[[profiles]]\nname='p'\n",
            "x.toml",
        )
        .unwrap();
        assert_eq!(config.targets[0].status, TargetStatus::Suspend);
    }
}
