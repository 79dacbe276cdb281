//! tlog-witness add-checkpoint body parser: never panics; round trip.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sentrace_ledger::witness::AddCheckpoint;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = AddCheckpoint::parse(data) {
        assert_eq!(r.encode(), data);
    }
});
