//! The bundled demo checkpoint never drifts from the generator that wrote it.

use std::path::Path;

#[test]
fn committed_demo_is_byte_identical_to_a_fresh_synth_run() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo");
    let spec = mpscope::synth::preset("demo").expect("demo preset");
    let dir = tempfile::tempdir().unwrap();
    mpscope::synth::write(dir.path(), &spec).unwrap();
    for name in ["model.safetensors", "config.json", "truth.json"] {
        let fresh = std::fs::read(dir.path().join(name)).unwrap();
        let kept = std::fs::read(committed.join(name))
            .unwrap_or_else(|e| panic!("assets/demo/{name}: {e}"));
        assert!(
            fresh == kept,
            "assets/demo/{name} differs from `mpscope synth assets/demo --preset demo`; \
             regenerate it with that command"
        );
    }
    let size = std::fs::metadata(committed.join("model.safetensors"))
        .unwrap()
        .len();
    assert!(
        size < 10 * 1024 * 1024,
        "demo is {size} bytes, keep it under 10 MB"
    );
}
