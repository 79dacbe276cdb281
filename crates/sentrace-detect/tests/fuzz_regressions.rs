//! Inputs the fuzzers found; each once made the detector panic.

use sentrace_core::TenantId;
use sentrace_detect::Detector;

#[test]
fn fuzz_found_inputs_do_not_panic() {
    let d = Detector::with_default_rules().unwrap();
    let t = TenantId::new("fuzz").unwrap();
    let inputs: &[&str] = &[
        // A multi-byte character before a URL-looking tail (`detect_value`, crash-9daa8c44).
        "\u{12}\u{4ea}R.R://",
    ];
    for input in inputs {
        let _ = d.scan_value(&t, input);
    }
}
