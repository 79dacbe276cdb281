//! Checkpoint body parser and the full open path (note + body + signatures) under a fixed
//! policy: never panics, never accepts (the key is not the fuzzer's).
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sentrace_ledger::checkpoint::{Checkpoint, CheckpointPolicy, LogSigner, open_checkpoint};
use sentrace_ledger::note::KeyName;

fn policy() -> &'static CheckpointPolicy {
    static P: OnceLock<CheckpointPolicy> = OnceLock::new();
    P.get_or_init(|| {
        let name = KeyName::new("fuzz.example/log").expect("valid name");
        CheckpointPolicy::new(LogSigner::from_seeds(&name, [1; 32], [2; 32]).verifier())
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cp) = Checkpoint::parse(text) {
            assert_eq!(cp.to_text(), text);
        }
    }
    assert!(open_checkpoint(data, policy()).is_err());
});
