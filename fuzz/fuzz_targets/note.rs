//! Signed-note parser: never panics; whatever parses re-serializes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sentrace_ledger::note::Note;

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = Note::parse(data) {
        assert_eq!(n.to_text().as_bytes(), data);
    }
});
