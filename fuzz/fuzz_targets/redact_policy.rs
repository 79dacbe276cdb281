//! Redaction policy files: parsing arbitrary text fails with an error, never a panic, and a
//! policy that parses builds a redactor.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(policy) = sentrace_redact::Policy::from_toml(text, "fuzz.toml") {
        let _ = sentrace_redact::Redactor::new(policy);
    }
});
