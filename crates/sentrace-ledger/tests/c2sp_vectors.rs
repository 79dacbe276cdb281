//! Known-answer vectors from outside this crate: the signed-note example of Go's
//! `golang.org/x/mod/sumdb/note` documentation (an Ed25519 vkey and a note it signed).

use sentrace_ledger::keys::VerifierKey;
use sentrace_ledger::note::Note;

fn data(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn go_sumdb_note_example_verifies() {
    let vkey = VerifierKey::parse(&data("go_note_example.vkey")).unwrap();
    assert_eq!(vkey.key_id(), 0xc74f20a3);
    let text = data("go_note_example.txt");
    let note = Note::parse(text.as_bytes()).unwrap();
    assert_eq!(note.signatures.len(), 1);
    assert!(vkey.matches(&note.signatures[0]));
    vkey.verify_note(note.text(), &note.signatures[0].signature)
        .unwrap();
    // One changed character and it no longer verifies.
    let changed = note.text().replacen("answer", "Answer", 1);
    assert!(
        vkey.verify_note(&changed, &note.signatures[0].signature)
            .is_err()
    );
    assert_eq!(note.to_text(), text);
}
