//! Proof bundle parser and verifier: never panic, never accept under a key the fuzzer
//! does not hold.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sentrace_ledger::bundle::{ProofBundle, verify_bundle};
use sentrace_ledger::checkpoint::{LogSigner, LogVerifier};
use sentrace_ledger::note::KeyName;

fn key() -> &'static LogVerifier {
    static K: OnceLock<LogVerifier> = OnceLock::new();
    K.get_or_init(|| {
        let name = KeyName::new("fuzz.example/log").expect("valid name");
        LogSigner::from_seeds(&name, [1; 32], [2; 32]).verifier()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = ProofBundle::parse(data);
    assert!(verify_bundle(data, key()).is_err());
});
