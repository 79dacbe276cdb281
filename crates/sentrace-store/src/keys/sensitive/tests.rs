//! The sensitive-value key: made with each data key, unwrapped only on use, envelopes bound
//! to their place, errors naming the key id.

use super::*;
use crate::MasterKey;

fn t(s: &str) -> TenantId {
    TenantId::new(s).unwrap()
}

fn ctx<'a>(place: &'a str) -> ValueContext<'a> {
    ValueContext {
        trace_id: &[1; 16],
        span_id: &[2; 8],
        place,
    }
}

#[test]
fn made_with_the_data_key_unwrapped_only_on_use() {
    let dir = tempfile::tempdir().unwrap();
    let mk = MasterKey::generate().unwrap();
    let a = t("acme");
    let envelope = {
        let ring = KeyRing::open(dir.path(), &mk).unwrap();
        let k = ring.sensitive_key_for_write(&a).unwrap();
        assert_eq!(k.id, 1);
        // Made, not unwrapped.
        assert_eq!(ring.sensitive_key_stats().unwraps, 0);
        k.seal(&ctx("span:enduser.id"), b"alice").unwrap()
    };
    assert_eq!(envelope_key_id(&envelope), Some(1));
    assert!(!envelope.windows(5).any(|w| w == b"alice"));

    // A restarted ring loads the tenant's data keys without touching the sensitive key.
    let ring = KeyRing::open(dir.path(), &mk).unwrap();
    ring.current_dek(&a).unwrap();
    ring.pseudonym_key(&a).unwrap();
    assert_eq!(ring.sensitive_key_stats(), SensitiveKeyStats::default());
    let ages = ring.key_ages().unwrap();
    assert_eq!(ages[0].sensitive_keys, 1);

    // Reading unwraps it once, then uses the cached key.
    for _ in 0..3 {
        let plain = ring
            .open_sensitive(&a, &ctx("span:enduser.id"), &envelope)
            .unwrap();
        assert_eq!(plain, b"alice");
    }
    assert_eq!(
        ring.sensitive_key_stats(),
        SensitiveKeyStats {
            unwraps: 1,
            values_opened: 3
        }
    );

    // Rotation makes sensitive/2 with dek/2; values under sensitive/1 stay readable.
    assert_eq!(ring.rotate(&a).unwrap(), 2);
    let k2 = ring.sensitive_key_for_write(&a).unwrap();
    assert_eq!(k2.id, 2);
    let file: crate::keys::ring::KeyFile =
        serde_json::from_slice(&std::fs::read(dir.path().join("acme.json")).unwrap()).unwrap();
    assert_eq!(
        file.sensitive.iter().map(|w| w.id).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(
        ring.open_sensitive(&a, &ctx("span:enduser.id"), &envelope)
            .unwrap(),
        b"alice"
    );

    // Erasure destroys it with the data keys.
    ring.erase(&a).unwrap();
    let err = KeyRing::open(dir.path(), &mk)
        .unwrap()
        .open_sensitive(&a, &ctx("span:enduser.id"), &envelope)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::SensitiveKeyUnavailable { key_id: 1, .. }),
        "{err}"
    );
}

#[test]
fn a_flipped_or_moved_envelope_is_an_authentication_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mk = MasterKey::generate().unwrap();
    let ring = KeyRing::open(dir.path(), &mk).unwrap();
    let a = t("acme");
    let envelope = ring
        .sensitive_key_for_write(&a)
        .unwrap()
        .seal(&ctx("span:card"), b"4111")
        .unwrap();
    for i in [HEADER_LEN, HEADER_LEN + 12, envelope.len() - 1] {
        let mut bad = envelope.clone();
        bad[i] ^= 1;
        let err = ring
            .open_sensitive(&a, &ctx("span:card"), &bad)
            .unwrap_err();
        assert!(matches!(err, StoreError::Crypto { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("sensitive/1")
                && text.contains("tenant acme")
                && text.contains("span:card"),
            "{text}"
        );
    }
    // Moved to another attribute, span or tenant: refused.
    assert!(
        ring.open_sensitive(&a, &ctx("span:other"), &envelope)
            .is_err()
    );
    let other_span = ValueContext {
        span_id: &[3; 8],
        ..ctx("span:card")
    };
    assert!(ring.open_sensitive(&a, &other_span, &envelope).is_err());
    let b = t("bravo");
    ring.sensitive_key_for_write(&b).unwrap();
    assert!(
        ring.open_sensitive(&b, &ctx("span:card"), &envelope)
            .is_err()
    );
    // Not an envelope at all.
    assert!(!is_envelope(b"\0STS"));
    assert!(
        ring.open_sensitive(&a, &ctx("span:card"), b"plain")
            .is_err()
    );
}

#[test]
fn key_files_from_before_get_their_sensitive_key_on_first_write() {
    let dir = tempfile::tempdir().unwrap();
    let mk = MasterKey::generate().unwrap();
    let a = t("acme");
    KeyRing::open(dir.path(), &mk)
        .unwrap()
        .current_dek(&a)
        .unwrap();
    // Strip the sensitive keys, as a file written before they existed.
    let path = dir.path().join("acme.json");
    let mut file: crate::keys::ring::KeyFile =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    file.sensitive.clear();
    std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
    assert!(
        !std::fs::read_to_string(&path)
            .unwrap()
            .contains("sensitive")
    );

    let ring = KeyRing::open(dir.path(), &mk).unwrap();
    assert!(matches!(
        ring.sensitive_key(&a, 1),
        Err(StoreError::SensitiveKeyUnavailable { .. })
    ));
    let k = ring.sensitive_key_for_write(&a).unwrap();
    assert_eq!(k.id, 1);
    let env = k.seal(&ctx("span:x"), b"v").unwrap();
    let fresh = KeyRing::open(dir.path(), &mk).unwrap();
    assert_eq!(
        fresh.open_sensitive(&a, &ctx("span:x"), &env).unwrap(),
        b"v"
    );
}
