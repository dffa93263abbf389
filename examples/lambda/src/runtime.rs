//! Process set-up shared by the three binaries.

use std::sync::OnceLock;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
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

/// Loads the AWS SDK configuration for the Lambda environment: the Region from
/// [`REGION_VAR`](config::REGION_VAR), the role's credentials, `AWS_ENDPOINT_URL` when set,
/// and the root certificates [`TLS_ROOTS_VAR`](config::TLS_ROOTS_VAR) names.
///
/// The Region is required rather than looked up along the SDK's provider chain, whose last
/// step calls the instance metadata service. The Lambda runtime always sets
/// `AWS_ACCESS_KEY_ID`. When it is set, the credentials come straight from the environment,
/// which is the first step of the SDK's chain; otherwise the whole chain runs.
///
/// # Errors
///
/// A [`ConfigError`] when the Region is not set, or when the roots variable is neither
/// `mozilla` nor `platform`.
pub async fn aws_config(env: &dyn Environment) -> Result<SdkConfig, ConfigError> {
    let region = config::required(
        env,
        config::REGION_VAR,
        "set it to the Region of the queue and the cluster, e.g. us-east-1 (the Lambda runtime sets it)",
    )?;
    let platform_roots = config::tls_roots(env)? == TlsRoots::Platform;
    let mut context = TlsContext::builder();
    if !platform_roots {
        let (roots, reason) = aws_roots(env, &region);
        tracing::debug!(region = %region, roots = ?roots, reason, "root certificates of the AWS clients");
        context = context.with_trust_store(TrustStore::empty().with_pem_certificate(roots.pem()));
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
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region))
        .http_client(CheckedOnce::new(client, platform_roots));
    if env.var(ACCESS_KEY_VAR).is_some() {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    Ok(loader.load().await)
}

/// Variable holding the access key id of the function's role.
const ACCESS_KEY_VAR: &str = "AWS_ACCESS_KEY_ID";

/// Variables whose `https://` value makes the AWS clients check a certificate from an
/// issuer of its own: endpoints of the services this app calls, HTTPS proxies, and the
/// container credentials endpoint.
const HTTPS_URL_VARS: [&str; 11] = [
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_ECS",
    "AWS_ENDPOINT_URL_SSM",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ENDPOINT_URL_STS",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
];

/// Settings that send AWS calls to other endpoint names: FIPS and dual-stack endpoints.
const ENDPOINT_FLAG_VARS: [&str; 2] = ["AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT"];

/// Variables that select an AWS config file profile, which may set endpoints of its own.
const PROFILE_VARS: [&str; 2] = ["AWS_PROFILE", "AWS_CONFIG_FILE"];

/// Choice of compiled-in roots for the AWS clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AwsRoots {
    /// The roots of Amazon Trust Services, which issues the certificates of AWS endpoints
    /// in the standard partition.
    Amazon,
    /// Every root of Mozilla's list.
    All,
}

/// Subject names of the roots Amazon Trust Services recommends for custom trust stores:
/// Amazon Root CA 1 to 4, and the older Starfield root that cross-signs them.
const AMAZON_ROOT_NAMES: [&[u8]; 2] = [
    b"Amazon Root CA ",
    b"Starfield Services Root Certificate Authority - G2",
];

/// Picks the roots for the AWS clients, and the reason for the log.
///
/// Amazon's roots suffice for the standard `aws` partition's regular endpoints, which is
/// what a Lambda function reaches unless configured otherwise. Everything else gets the
/// whole list: other partitions (China, GovCloud, the European Sovereign Cloud and the
/// rest), `https://` endpoints, proxies or credential URLs, FIPS and dual-stack endpoints,
/// and AWS config file profiles, which may set endpoints.
fn aws_roots(env: &dyn Environment, region: &str) -> (AwsRoots, &'static str) {
    let is_https = |name: &&str| {
        env.var(name).is_some_and(|url| {
            url.trim()
                .get(..8)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
        })
    };
    let is_true = |name: &&str| {
        env.var(name)
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
    };
    let has_profile = || {
        PROFILE_VARS.iter().any(|name| env.var(name).is_some())
            || env
                .var("HOME")
                .is_some_and(|home| std::path::Path::new(&home).join(".aws/config").exists())
    };
    if !standard_partition(region) {
        (
            AwsRoots::All,
            "the Region is outside the standard partition",
        )
    } else if HTTPS_URL_VARS.iter().any(is_https) {
        (
            AwsRoots::All,
            "an endpoint, proxy or credentials URL uses https",
        )
    } else if ENDPOINT_FLAG_VARS.iter().any(is_true) {
        (AwsRoots::All, "FIPS or dual-stack endpoints are selected")
    } else if has_profile() {
        (
            AwsRoots::All,
            "an AWS config file profile may set endpoints",
        )
    } else {
        (
            AwsRoots::Amazon,
            "standard partition with its regular endpoints",
        )
    }
}

/// Checks that `region` has the shape of a Region of the standard `aws` partition, such as
/// `us-east-1` or `ap-southeast-2`: one of its area prefixes, a word, and a number.
/// `us-gov-west-1`, `cn-north-1` and `eusc-de-east-1` do not.
fn standard_partition(region: &str) -> bool {
    const AREAS: [&str; 9] = ["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"];
    let mut parts = region.split('-');
    let (Some(area), Some(word), Some(number), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    AREAS.contains(&area)
        && !word.is_empty()
        && word.bytes().all(|byte| byte.is_ascii_alphanumeric())
        && !number.is_empty()
        && number.bytes().all(|byte| byte.is_ascii_digit())
}

impl AwsRoots {
    /// Returns the chosen roots as PEM: the SDK takes custom roots only in that form.
    fn pem(self) -> String {
        let finders = AMAZON_ROOT_NAMES.map(memchr::memmem::Finder::new);
        let mut pem = String::new();
        for certificate in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
            let der = certificate.as_ref();
            // The issuer name sits near the start, and a root is self-signed, so that name is
            // also its subject.
            let head = &der[..der.len().min(512)];
            if self == AwsRoots::Amazon && !finders.iter().any(|name| name.find(head).is_some()) {
                continue;
            }
            let encoded = base64::engine::general_purpose::STANDARD.encode(der);
            pem.push_str("-----BEGIN CERTIFICATE-----\n");
            for line in encoded.as_bytes().chunks(64) {
                pem.push_str(std::str::from_utf8(line).unwrap_or_default());
                pem.push('\n');
            }
            pem.push_str("-----END CERTIFICATE-----\n");
        }
        pem
    }
}

/// The SDK's HTTPS client, with its construction-time check run at most once per process.
///
/// Every SDK client built from one configuration runs that check. The check of the
/// hyper-based client builds a connector and drops it. With the system store, that loads
/// the store into the SDK's process-wide cache, so the first client runs the check and
/// later ones skip it. With compiled-in roots nothing of it is kept, so no client runs
/// it. Either way, connectors for requests are built on first use and cached by the
/// wrapped client.
#[derive(Debug)]
struct CheckedOnce {
    inner: SharedHttpClient,
    checked: OnceLock<()>,
}

impl CheckedOnce {
    /// Wraps `inner`. With `check`, the first client runs the check of `inner`.
    fn new(inner: SharedHttpClient, check: bool) -> Self {
        let checked = OnceLock::new();
        if !check {
            let _ = checked.set(());
        }
        Self { inner, checked }
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
    use std::collections::HashMap;
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
        let components = RuntimeComponentsBuilder::new("test");
        let cfg = ConfigBag::base();
        for (check, expected) in [(true, 1), (false, 0)] {
            count.store(0, Ordering::SeqCst);
            let client =
                CheckedOnce::new(SharedHttpClient::new(CountingClient(count.clone())), check);
            for _ in 0..3 {
                client
                    .validate_base_client_config(&components, &cfg)
                    .unwrap();
            }
            assert_eq!(count.load(Ordering::SeqCst), expected, "check: {check}");
        }
    }

    /// Decodes `pem` the way the SDK does, which panics on a block it cannot add, and
    /// returns the trust anchors' subjects.
    fn anchors(pem: &str) -> Vec<Vec<u8>> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::CertificateDer;

        let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("every block decodes");
        let mut roots = rustls::RootCertStore::empty();
        for certificate in certificates {
            roots
                .add(certificate)
                .expect("every root is a valid trust anchor");
        }
        roots
            .roots
            .iter()
            .map(|anchor| anchor.subject.as_ref().to_vec())
            .collect()
    }

    #[test]
    fn all_roots_pem_holds_every_root() {
        let subjects = anchors(&AwsRoots::All.pem());
        assert_eq!(
            subjects.len(),
            webpki_root_certs::TLS_SERVER_ROOT_CERTS.len()
        );
        assert!(subjects.len() > 100, "{}", subjects.len());
    }

    #[test]
    fn amazon_roots_are_five_ats_roots() {
        let subjects = anchors(&AwsRoots::Amazon.pem());
        let names: Vec<String> = subjects
            .iter()
            .map(|subject| {
                let text = String::from_utf8_lossy(subject);
                [
                    "Amazon Root CA 1",
                    "Amazon Root CA 2",
                    "Amazon Root CA 3",
                    "Amazon Root CA 4",
                    "Starfield Services Root Certificate Authority - G2",
                ]
                .into_iter()
                .find(|name| text.contains(name))
                .unwrap_or("another root")
                .to_owned()
            })
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [
                "Amazon Root CA 1",
                "Amazon Root CA 2",
                "Amazon Root CA 3",
                "Amazon Root CA 4",
                "Starfield Services Root Certificate Authority - G2"
            ],
            "{names:?}"
        );
    }

    #[test]
    fn only_standard_partition_regions_match() {
        for region in [
            "us-east-1",
            "eu-central-2",
            "ap-southeast-7",
            "il-central-1",
            "mx-central-1",
            "ca-west-1",
        ] {
            assert!(standard_partition(region), "{region}");
        }
        for region in [
            "cn-north-1",
            "cn-northwest-1",
            "us-gov-west-1",
            "us-iso-east-1",
            "us-isob-east-1",
            "eusc-de-east-1",
            "us-east",
            "us--1",
            "us-east-",
            "",
            "local",
        ] {
            assert!(!standard_partition(region), "{region}");
        }
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn standard_region_gets_amazon_roots() {
        assert_eq!(aws_roots(&env(&[]), "us-east-1").0, AwsRoots::Amazon);
        // Plain HTTP carries no certificate, so the roots do not matter there.
        let http = env(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("HTTPS_PROXY", "http://proxy.internal:3128"),
            ("AWS_USE_FIPS_ENDPOINT", "false"),
        ]);
        assert_eq!(aws_roots(&http, "us-east-1").0, AwsRoots::Amazon);
    }

    #[test]
    fn other_partitions_get_every_root() {
        for region in ["cn-north-1", "us-gov-east-1", "eusc-de-east-1"] {
            assert_eq!(aws_roots(&env(&[]), region).0, AwsRoots::All, "{region}");
        }
    }

    #[test]
    fn https_urls_get_every_root() {
        for name in HTTPS_URL_VARS {
            let https = env(&[(name, " HTTPS://sqs.example.internal")]);
            assert_eq!(aws_roots(&https, "us-east-1").0, AwsRoots::All, "{name}");
        }
    }

    #[test]
    fn fips_dual_stack_and_profiles_get_every_root() {
        for (name, value) in [
            ("AWS_USE_FIPS_ENDPOINT", "true"),
            ("AWS_USE_DUALSTACK_ENDPOINT", "TRUE"),
            ("AWS_PROFILE", "dev"),
            ("AWS_CONFIG_FILE", "/etc/aws/config"),
        ] {
            let settings = env(&[(name, value)]);
            assert_eq!(aws_roots(&settings, "us-east-1").0, AwsRoots::All, "{name}");
        }
    }

    #[test]
    fn config_file_in_home_gets_every_root() {
        let home = std::env::temp_dir().join(format!("myshoes-roots-{}", std::process::id()));
        std::fs::create_dir_all(home.join(".aws")).unwrap();
        let settings = env(&[("HOME", home.to_str().unwrap())]);
        assert_eq!(aws_roots(&settings, "us-east-1").0, AwsRoots::Amazon);
        std::fs::write(home.join(".aws/config"), "[default]\n").unwrap();
        assert_eq!(aws_roots(&settings, "us-east-1").0, AwsRoots::All);
        std::fs::remove_dir_all(&home).unwrap();
    }

    #[tokio::test]
    async fn missing_region_is_named() {
        let env: HashMap<String, String> = HashMap::new();
        let error = aws_config(&env).await.expect_err("no Region").to_string();
        assert!(error.starts_with("AWS_REGION is not set"), "{error}");
    }
}
