//! Process set-up shared by the three binaries.

use std::sync::OnceLock;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_http_client::ConnectorBuilder;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;
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
/// A [`ConfigError`] when that variable is neither `mozilla` nor `platform`.
pub async fn aws_config(env: &dyn Environment) -> Result<SdkConfig, ConfigError> {
    let mut context = TlsContext::builder();
    if config::tls_roots(env)? == TlsRoots::Mozilla {
        context = context.with_trust_store(TrustStore::empty().with_pem_certificate(mozilla_pem()));
    }
    let context = context.build().map_err(|error| {
        ConfigError::invalid(
            config::TLS_ROOTS_VAR,
            format!("the root certificates were refused ({error})"),
        )
    })?;
    // The SDK's default client, but with this TLS context: rustls with aws-lc-rs, the
    // connector settings and sleep of each SDK client, and the proxy from `HTTPS_PROXY`,
    // `HTTP_PROXY` and `NO_PROXY`.
    let client = aws_smithy_http_client::Builder::new().build_with_connector_fn(
        move |settings, components| {
            let mut connector = ConnectorBuilder::default()
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                .tls_context(context.clone());
            connector.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                connector.set_sleep_impl(components.sleep_impl());
            }
            connector.set_proxy_config(Some(ProxyConfig::from_env()));
            connector.build()
        },
    );
    Ok(aws_config::defaults(BehaviorVersion::latest())
        .http_client(CheckedOnce::new(client))
        .load()
        .await)
}

/// Returns Mozilla's roots, compiled in, as PEM: the SDK takes custom roots only in that
/// form.
fn mozilla_pem() -> String {
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
    pem
}

/// The SDK's HTTPS client with its construction-time check run once per process.
///
/// Every SDK client built from one configuration runs that check, and the check of the
/// hyper-based client builds a connector and drops it, which parses the trust store
/// again. The check has the same result each time, so clients after the first skip
/// it. Connectors for requests are built and cached by the wrapped client as before.
#[derive(Debug)]
struct CheckedOnce {
    inner: SharedHttpClient,
    checked: OnceLock<()>,
}

impl CheckedOnce {
    fn new(inner: SharedHttpClient) -> Self {
        Self {
            inner,
            checked: OnceLock::new(),
        }
    }
}

impl HttpClient for CheckedOnce {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.inner.http_connector(settings, components)
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        if self.checked.get().is_none() {
            self.inner
                .validate_base_client_config(runtime_components, cfg)?;
            let _ = self.checked.set(());
        }
        Ok(())
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_final_config(runtime_components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    /// Counts construction-time checks; it is never asked for a connector.
    #[derive(Debug)]
    struct CountingClient(Arc<AtomicUsize>);

    impl HttpClient for CountingClient {
        fn http_connector(
            &self,
            _settings: &HttpConnectorSettings,
            _components: &RuntimeComponents,
        ) -> SharedHttpConnector {
            unreachable!("the test sends no request")
        }

        fn validate_base_client_config(
            &self,
            _runtime_components: &RuntimeComponentsBuilder,
            _cfg: &ConfigBag,
        ) -> Result<(), BoxError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[test]
    fn construction_check_runs_once() {
        let count = Arc::new(AtomicUsize::new(0));
        let client = CheckedOnce::new(SharedHttpClient::new(CountingClient(count.clone())));
        let components = RuntimeComponentsBuilder::new("test");
        let cfg = ConfigBag::base();
        for _ in 0..3 {
            client
                .validate_base_client_config(&components, &cfg)
                .unwrap();
        }
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn mozilla_pem_holds_every_root() {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::CertificateDer;

        // The SDK reads custom roots this way and panics on a block it cannot add.
        let pem = mozilla_pem();
        let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("every block decodes");
        assert_eq!(
            certificates.len(),
            webpki_root_certs::TLS_SERVER_ROOT_CERTS.len()
        );
        assert!(certificates.len() > 100, "{}", certificates.len());
        let mut roots = rustls::RootCertStore::empty();
        for certificate in certificates {
            roots
                .add(certificate)
                .expect("every root is a valid trust anchor");
        }
        assert_eq!(roots.len(), webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
    }
}
