//! One-line rendering of an error and its sources.

use std::error::Error;
use std::fmt;

/// Displays an error followed by each of its [`source`](Error::source)s, separated by `: `,
/// for log lines and messages that must carry the whole cause on one line.
///
/// ```
/// use myshoes::ErrorChain;
///
/// let inner = std::io::Error::other("connection refused");
/// let outer = myshoes::datastore::Error::Backend {
///     backend: "example",
///     operation: "enqueue_job",
///     source: Box::new(inner),
/// };
/// assert_eq!(
///     ErrorChain(&outer).to_string(),
///     "example datastore failed during enqueue_job: connection refused"
/// );
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}
