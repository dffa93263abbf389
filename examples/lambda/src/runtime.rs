//! Process set-up shared by the three binaries.

use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use base64::Engine as _;
use myshoes::github::TlsRoots;

use crate::config::{self, ConfigError, Environment};

/// Installs the JSON log subscriber, filtered by `RUST_LOG` (default `info`). CloudWatch
/// adds timestamps, so the lines carry none.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .without_time()
        .with_target(false)
        .init();
}

/// Loads the AWS SDK configuration from the Lambda environment (region, role credentials,
/// and `AWS_ENDPOINT_URL` when set), with the root certificates
/// [`TLS_ROOTS_VAR`](config::TLS_ROOTS_VAR) names.
///
/// # Errors
///
/// A [`ConfigError`] when that variable holds neither `mozilla` nor `platform`.
pub async fn aws_config(env: &dyn Environment) -> Result<SdkConfig, ConfigError> {
    let loader = aws_config::defaults(BehaviorVersion::latest());
    let loader = match config::tls_roots(env)? {
        TlsRoots::Mozilla => with_mozilla_roots(loader)?,
        _ => loader,
    };
    Ok(loader.load().await)
}

/// Gives the loader an HTTPS client (rustls with aws-lc-rs) that trusts Mozilla's roots.
///
/// The SDK's default client reads and parses the system store when it is built, which
/// on Linux means every file under the certificate directories. The SDK takes custom
/// roots only in PEM form, so the compiled-in certificates are encoded for it.
fn with_mozilla_roots(loader: ConfigLoader) -> Result<ConfigLoader, ConfigError> {
    let mut pem = String::with_capacity(256 * 1024);
    for certificate in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let encoded = base64::engine::general_purpose::STANDARD.encode(certificate.as_ref());
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(pem))
        .build()
        .map_err(|error| {
            ConfigError::invalid(
                config::TLS_ROOTS_VAR,
                format!("the compiled-in roots were refused ({error}); set it to \"platform\""),
            )
        })?;
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https();
    Ok(loader.http_client(client))
}
