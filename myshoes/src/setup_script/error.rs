//! The error type of [`SetupScriptParams::build`](super::SetupScriptParams::build).

/// An invalid [`SetupScriptParams`](super::SetupScriptParams) value, found before any
/// script text is built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetupScriptError {
    /// A parameter other than a label or the credential has an invalid value.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidValue {
        /// Name of the parameter as written in `SetupScriptParams`, such as `runner_name`
        /// or `runner_source.version`.
        field: &'static str,
        /// The rejected value.
        value: String,
        /// Description of the problem and of the fix.
        reason: String,
    },

    /// One of the runner labels is invalid.
    #[error("invalid label {label:?} at index {index} of labels: {reason}")]
    InvalidLabel {
        /// Position of the label in `SetupScriptParams::labels`.
        index: usize,
        /// The rejected label.
        label: String,
        /// Description of the problem and of the fix.
        reason: String,
    },

    /// The registration token or JIT config is invalid. The message never contains the
    /// secret value.
    #[error("invalid {credential}: {reason}")]
    InvalidCredential {
        /// Name of the rejected credential: `registration token` or `JIT config`.
        credential: &'static str,
        /// Description of the problem and of the fix.
        reason: String,
    },
}
