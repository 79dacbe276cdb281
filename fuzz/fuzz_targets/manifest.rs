//! Batch manifest and source-signature decoders: never panic; strict round trip.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sentrace_ledger::manifest::{BatchManifest, SourceSignature};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = BatchManifest::decode(data) {
        assert_eq!(m.encode(), data);
    }
    if let Ok(s) = SourceSignature::decode(data) {
        assert_eq!(s.encode(), data);
    }
});
