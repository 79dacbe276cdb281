//! Threat detection over arbitrary request values never panics or hangs.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sentrace_core::TenantId;
use sentrace_detect::Detector;

fuzz_target!(|data: &[u8]| {
    static D: OnceLock<Detector> = OnceLock::new();
    let d = D.get_or_init(|| Detector::with_default_rules().expect("default rules"));
    if let Ok(text) = std::str::from_utf8(data) {
        let tenant = TenantId::new("fuzz").expect("tenant");
        let _ = d.scan_value(&tenant, text);
    }
});
