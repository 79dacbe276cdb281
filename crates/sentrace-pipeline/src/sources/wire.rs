//! The wire contract of a signed batch: four gRPC metadata entries on OTLP/gRPC, and the
//! same names as HTTP headers on OTLP/HTTP.
//!
//! | name | value |
//! |---|---|
//! | `sentrace-source` | the source's name, as registered for the tenant (a key name: printable, no spaces, no `+`, at most 255 bytes) |
//! | `sentrace-seq` | the source's sequence number for this batch, decimal `u64`; one higher per batch |
//! | `sentrace-sent-at` | when the source signed the batch, Unix nanoseconds, decimal `u64` |
//! | `sentrace-signature` | standard base64 (RFC 4648 §4, padded) of `SourceSignature::encode` |
//!
//! A request carries all four or none. Malformed values are refused here, before the body
//! is looked at, with a message that names the header.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sentrace_core::SourceInfo;
use sentrace_ledger::manifest::SourceSignature;

/// The source's name.
pub const SOURCE: &str = "sentrace-source";
/// The source's sequence number.
pub const SEQ: &str = "sentrace-seq";
/// The source's send time, Unix ns.
pub const SENT_AT: &str = "sentrace-sent-at";
/// The base64 source signature.
pub const SIGNATURE: &str = "sentrace-signature";

/// The longest `sentrace-signature` value accepted (the encoded signature is 2528 bytes,
/// 3372 base64 characters).
pub const MAX_SIGNATURE_CHARS: usize = 4096;

/// A malformed or incomplete set of source headers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Some of the four headers are present, this one is not.
    #[error(
        "{header} is missing: a signed batch carries all of sentrace-source, sentrace-seq, sentrace-sent-at and sentrace-signature"
    )]
    Missing {
        /// The missing header.
        header: &'static str,
    },
    /// A header's value is not valid.
    #[error("{header} is malformed: {why}")]
    Malformed {
        /// The header.
        header: &'static str,
        /// What is wrong.
        why: String,
    },
}

/// Reads the source headers through `get` (`None`: absent; `Some(None)`: present but not
/// visible ASCII). `Ok(None)` when none of the four is present (an unsigned batch).
pub fn parse<'a>(
    get: impl Fn(&'static str) -> Option<Option<&'a str>>,
) -> Result<Option<SourceInfo>, WireError> {
    let values = [SOURCE, SEQ, SENT_AT, SIGNATURE].map(|h| (h, get(h)));
    if values.iter().all(|(_, v)| v.is_none()) {
        return Ok(None);
    }
    let mut text = [""; 4];
    for (i, (header, v)) in values.iter().enumerate() {
        match v {
            None => return Err(WireError::Missing { header }),
            Some(None) => {
                return Err(WireError::Malformed {
                    header,
                    why: "not visible ASCII".into(),
                });
            }
            Some(Some(s)) => text[i] = s.trim(),
        }
    }
    let [source, seq, sent_at, signature] = text;
    sentrace_ledger::note::KeyName::new(source).map_err(|e| WireError::Malformed {
        header: SOURCE,
        why: e.to_string(),
    })?;
    let number = |header: &'static str, s: &str| -> Result<u64, WireError> {
        if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(WireError::Malformed {
                header,
                why: format!("{:?} is not a decimal unsigned 64-bit integer", truncate(s)),
            });
        }
        s.parse().map_err(|_| WireError::Malformed {
            header,
            why: format!("{s} does not fit in 64 bits"),
        })
    };
    let sequence = number(SEQ, seq)?;
    let sent_at_unix_nanos = number(SENT_AT, sent_at)?;
    if signature.len() > MAX_SIGNATURE_CHARS {
        return Err(WireError::Malformed {
            header: SIGNATURE,
            why: format!(
                "{} characters; at most {MAX_SIGNATURE_CHARS}",
                signature.len()
            ),
        });
    }
    let raw = STANDARD
        .decode(signature)
        .map_err(|e| WireError::Malformed {
            header: SIGNATURE,
            why: format!("not standard base64: {e}"),
        })?;
    SourceSignature::decode(&raw).map_err(|e| WireError::Malformed {
        header: SIGNATURE,
        why: e.to_string(),
    })?;
    Ok(Some(SourceInfo {
        source_id: source.to_owned(),
        sequence,
        sent_at_unix_nanos,
        signature: raw,
    }))
}

/// The four header values for a signed batch (what a client sends).
pub fn headers(
    source: &str,
    sequence: u64,
    sent_at_unix_nanos: u64,
    signature: &SourceSignature,
) -> [(&'static str, String); 4] {
    [
        (SOURCE, source.to_owned()),
        (SEQ, sequence.to_string()),
        (SENT_AT, sent_at_unix_nanos.to_string()),
        (SIGNATURE, STANDARD.encode(signature.encode())),
    ]
}

fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use sentrace_ledger::manifest::SourceSigner;
    use sentrace_ledger::note::KeyName;

    use super::*;

    fn parse_map(m: &HashMap<&'static str, String>) -> Result<Option<SourceInfo>, WireError> {
        parse(|h| m.get(h).map(|v| Some(v.as_str())))
    }

    fn signed() -> HashMap<&'static str, String> {
        let key = SourceSigner::from_seeds(&KeyName::new("edge-1").unwrap(), [1; 32], [2; 32]);
        let sig = SourceSignature::sign(&key, "edge-1", 9, 1234, 2, [5; 32]).unwrap();
        headers("edge-1", 9, 1234, &sig).into_iter().collect()
    }

    #[test]
    fn round_trips_and_absent_is_unsigned() {
        assert_eq!(parse_map(&HashMap::new()), Ok(None));
        let info = parse_map(&signed()).unwrap().unwrap();
        assert_eq!(
            (
                info.source_id.as_str(),
                info.sequence,
                info.sent_at_unix_nanos
            ),
            ("edge-1", 9, 1234)
        );
        assert_eq!(
            SourceSignature::decode(&info.signature).unwrap().span_root,
            [5; 32]
        );
    }

    #[test]
    fn names_the_bad_header() {
        let mut m = signed();
        m.remove(SEQ);
        assert_eq!(parse_map(&m), Err(WireError::Missing { header: SEQ }));
        for (header, value) in [
            (SOURCE, "has space"),
            (SEQ, "-1"),
            (SEQ, "18446744073709551616"),
            (SENT_AT, "12abc"),
            (SIGNATURE, "!!!"),
            (SIGNATURE, "AAAA"),
        ] {
            let mut m = signed();
            m.insert(header, value.into());
            match parse_map(&m) {
                Err(WireError::Malformed { header: h, .. }) => assert_eq!(h, header, "{value}"),
                other => panic!("{header}={value}: {other:?}"),
            }
        }
        let mut m = signed();
        m.insert(SIGNATURE, "A".repeat(MAX_SIGNATURE_CHARS + 4));
        assert!(parse_map(&m).unwrap_err().to_string().contains("at most"));
        let r = parse(|h| (h == SOURCE).then_some(None));
        assert!(matches!(
            r,
            Err(WireError::Malformed { header: SOURCE, .. })
        ));
    }

    proptest::proptest! {
        /// Hostile header values never panic, and whatever is accepted round-trips.
        #[test]
        fn parse_never_panics(
            values in proptest::collection::vec(proptest::option::of(".{0,64}"), 4),
            sig_bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..3000),
        ) {
            let names = [SOURCE, SEQ, SENT_AT, SIGNATURE];
            let mut m: HashMap<&'static str, String> = HashMap::new();
            for (n, v) in names.iter().zip(values) {
                if let Some(v) = v {
                    m.insert(n, v);
                }
            }
            if m.contains_key(SIGNATURE) {
                m.insert(SIGNATURE, STANDARD.encode(&sig_bytes));
            }
            if let Ok(Some(info)) = parse_map(&m) {
                proptest::prop_assert_eq!(Ok(info.sequence), m[SEQ].trim().parse::<u64>());
                proptest::prop_assert_eq!(info.signature, sig_bytes);
            }
        }
    }
}
