//! Settings whose value may live in SSM Parameter Store or Secrets Manager.
//!
//! A setting `NAME` is read from exactly one of three variables: `NAME` (the value itself),
//! `NAME_SSM_PARAMETER` (the name or ARN of a parameter, decrypted when it is a
//! `SecureString`) or `NAME_SECRET_ID` (the name or ARN of a secret whose `SecretString` is
//! the value).

use aws_config::SdkConfig;
use myshoes::secret::Secret;

use crate::config::{ConfigError, Environment, SECRET_ID_SUFFIX, SSM_SUFFIX};

/// Reads settings from the environment, fetching referenced parameters and secrets.
pub struct SettingReader<'a> {
    env: &'a dyn Environment,
    aws: &'a SdkConfig,
}

impl std::fmt::Debug for SettingReader<'_> {
    // The environment contains secrets, so it is left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingReader").finish_non_exhaustive()
    }
}

impl<'a> SettingReader<'a> {
    /// Creates a reader over `env`; `aws` configures the SSM and Secrets Manager clients,
    /// which are built only when a setting refers to them.
    pub fn new(env: &'a dyn Environment, aws: &'a SdkConfig) -> Self {
        Self { env, aws }
    }

    /// Returns the environment.
    pub fn env(&self) -> &dyn Environment {
        self.env
    }

    /// Reads setting `name`; `None` when none of its three variables is set.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Ambiguous`] when more than one variable is set, and
    /// [`ConfigError::Fetch`] when the parameter or secret cannot be read.
    pub async fn optional(&self, name: &str) -> Result<Option<Secret>, ConfigError> {
        let ssm_variable = format!("{name}{SSM_SUFFIX}");
        let secret_variable = format!("{name}{SECRET_ID_SUFFIX}");
        let direct = self.env.var(name);
        let parameter = self.env.var(&ssm_variable);
        let secret_id = self.env.var(&secret_variable);
        let set: Vec<&str> = [
            (direct.is_some(), name),
            (parameter.is_some(), ssm_variable.as_str()),
            (secret_id.is_some(), secret_variable.as_str()),
        ]
        .into_iter()
        .filter_map(|(is_set, variable)| is_set.then_some(variable))
        .collect();
        if set.len() > 1 {
            return Err(ConfigError::Ambiguous {
                variables: set.join(", "),
            });
        }
        if let Some(value) = direct {
            return Ok(Some(Secret::new(value)));
        }
        if let Some(parameter) = parameter {
            return self
                .fetch_parameter(&ssm_variable, &parameter)
                .await
                .map(Some);
        }
        if let Some(secret_id) = secret_id {
            return self
                .fetch_secret(&secret_variable, &secret_id)
                .await
                .map(Some);
        }
        Ok(None)
    }

    /// Reads setting `name`, which must be set.
    ///
    /// # Errors
    ///
    /// As [`SettingReader::optional`], and [`ConfigError::Missing`] when it is unset.
    pub async fn required(&self, name: &str, hint: &'static str) -> Result<Secret, ConfigError> {
        self.optional(name)
            .await?
            .ok_or_else(|| ConfigError::Missing {
                variable: format!("{name} (or {name}{SSM_SUFFIX} or {name}{SECRET_ID_SUFFIX})"),
                hint,
            })
    }

    async fn fetch_parameter(&self, variable: &str, name: &str) -> Result<Secret, ConfigError> {
        let fetch_error = |source: Box<dyn std::error::Error + Send + Sync>| ConfigError::Fetch {
            variable: variable.to_owned(),
            service: "SSM Parameter Store",
            id: name.to_owned(),
            source,
        };
        let client = aws_sdk_ssm::Client::new(self.aws);
        let output = client
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|error| fetch_error(Box::new(error)))?;
        let value = output
            .parameter()
            .and_then(|parameter| parameter.value())
            .ok_or_else(|| fetch_error("the parameter has no value".into()))?;
        Ok(Secret::new(value))
    }

    async fn fetch_secret(&self, variable: &str, id: &str) -> Result<Secret, ConfigError> {
        let fetch_error = |source: Box<dyn std::error::Error + Send + Sync>| ConfigError::Fetch {
            variable: variable.to_owned(),
            service: "Secrets Manager",
            id: id.to_owned(),
            source,
        };
        let client = aws_sdk_secretsmanager::Client::new(self.aws);
        let output = client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|error| fetch_error(Box::new(error)))?;
        let value = output.secret_string().ok_or_else(|| {
            fetch_error("the secret has no SecretString; store the value as text".into())
        })?;
        Ok(Secret::new(value))
    }
}
