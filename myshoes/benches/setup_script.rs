//! Times building a setup script and its wrapper form for a runner with 100 labels of 20
//! characters each, and prints the sizes of both forms.

use std::hint::black_box;

use criterion::Criterion;
use myshoes::secret::Secret;
use myshoes::setup_script::{RunnerCredential, SetupScriptParams};

/// Returns parameters with 100 distinct labels such as `team-042-linux-gpu-a`.
fn hundred_label_params() -> SetupScriptParams {
    let hardware = ["gpu-a", "gpu-b", "cpu-a", "cpu-b", "arm-a"];
    let mut params = SetupScriptParams::new(
        "https://github.com/octo-org/octo-repo",
        RunnerCredential::RegistrationToken(Secret::new("AABBCCDDEEFFGGHHIIJJKKLLMMNN0")),
        "myshoes-0f3c2a9e-1b7d-4c1e-9a55-6d2f8e4b7c10",
    );
    params.labels = (0..100)
        .map(|index| format!("team-{index:03}-linux-{}", hardware[index % hardware.len()]))
        .collect();
    params.runner_group = Some("linux-gpu".to_owned());
    params
}

fn build_setup_script(c: &mut Criterion) {
    let params = hundred_label_params();
    let setup = params.build().expect("benchmark parameters are valid");
    eprintln!(
        "setup_script with 100 labels: script {} bytes, wrapper {} bytes",
        setup.script_len(),
        setup.wrapper_len()
    );

    c.bench_function("setup_script build, 100 labels", |b| {
        b.iter(|| {
            black_box(&params)
                .build()
                .expect("benchmark parameters are valid")
        })
    });
}

// Written out instead of `criterion_group!`, whose generated public function has no docs.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    build_setup_script(&mut criterion);
    criterion.final_summary();
}
