//! The physical layout of a canonical span inside a block.
//!
//! A canonical span (`0x01 ‖ protobuf ResourceSpans` holding one `ScopeSpans` holding one
//! `Span`, see `sentrace_core::canonical`) repeats its resource and scope in every span. A
//! block stores it in three parts, so the repeated parts cost a dictionary entry per row
//! group instead of their bytes per span:
//!
//! - `resource` = `varint(len(head)) ‖ head ‖ tail`, where `head` is the canonical bytes
//!   before the `scope_spans` field (the `0x01` and the resource) and `tail` those after it
//!   (the resource `schema_url`);
//! - `scope` = `varint(len(head)) ‖ head ‖ tail` for the fields of the `ScopeSpans` before
//!   and after its one `spans` field (the scope, and the scope `schema_url`);
//! - `body` = the `Span` message, without its leading `trace_id` and `span_id` fields (and
//!   `parent_span_id`, when it directly follows them) when those equal the row's index
//!   columns: the index columns already hold them.
//!
//! [`split`] rebuilds the span from its parts before it accepts them and otherwise keeps
//! the canonical bytes whole ([`Layout::Whole`]), so [`assemble`] always returns the exact
//! bytes that were hashed into the transparency log.

use prost::encoding::{decode_varint, encode_varint, encoded_len_varint};

use sentrace_core::{SpanId, TraceId};

/// How a row's canonical bytes are laid out, stored in the `layout` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `body` holds the whole canonical span; `resource` and `scope` are empty.
    Whole = 0,
    /// Split; `body` is the whole `Span` message.
    Split = 1,
    /// Split; `body` lacks the leading `trace_id` and `span_id` fields.
    SplitIds = 2,
    /// Split; `body` lacks the leading `trace_id`, `span_id` and `parent_span_id` fields.
    SplitIdsParent = 3,
}

impl Layout {
    pub(crate) fn from_i32(v: i32) -> Option<Self> {
        match v {
            0 => Some(Self::Whole),
            1 => Some(Self::Split),
            2 => Some(Self::SplitIds),
            3 => Some(Self::SplitIdsParent),
            _ => None,
        }
    }
}

/// One canonical span in parts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Parts<'a> {
    pub layout: Layout,
    pub resource: Vec<u8>,
    pub scope: Vec<u8>,
    pub body: &'a [u8],
}

/// Tag of field 2, wire type LEN (`scope_spans` of `ResourceSpans`, `spans` of
/// `ScopeSpans`).
const FIELD2_LEN: u8 = 0x12;
/// Canonical encoding version byte.
const CANONICAL_V1: u8 = 0x01;

/// Where the one field-2 (LEN) value of a protobuf message lies: `(key start, value start,
/// value end)`. `None` if the message does not parse, or has no or several such fields.
fn field2(msg: &[u8]) -> Option<(usize, usize, usize)> {
    let mut at = 0usize;
    let mut found = None;
    while at < msg.len() {
        let key_start = at;
        let mut rest = &msg[at..];
        let key = decode_varint(&mut rest).ok()?;
        at = msg.len() - rest.len();
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                decode_varint(&mut rest).ok()?;
                at = msg.len() - rest.len();
            }
            1 => at = at.checked_add(8)?,
            5 => at = at.checked_add(4)?,
            2 => {
                let len = usize::try_from(decode_varint(&mut rest).ok()?).ok()?;
                let start = msg.len() - rest.len();
                let end = start.checked_add(len)?;
                if field == 2 {
                    if found.is_some() {
                        return None;
                    }
                    found = Some((key_start, start, end));
                }
                at = end;
            }
            _ => return None,
        }
        if at > msg.len() {
            return None;
        }
    }
    found
}

fn framed(head: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(head.len() + tail.len() + 5);
    encode_varint(head.len() as u64, &mut v);
    v.extend_from_slice(head);
    v.extend_from_slice(tail);
    v
}

fn unframe(v: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut rest = v;
    let n = usize::try_from(decode_varint(&mut rest).ok()?).ok()?;
    (n <= rest.len()).then(|| rest.split_at(n))
}

/// The id fields a body may lack: `trace_id` (field 1) and `span_id` (field 2), then
/// optionally `parent_span_id` (field 4), each as protobuf encodes them.
fn id_prefix(trace: &TraceId, span: &SpanId, parent: Option<&SpanId>, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x0a, 16]);
    out.extend_from_slice(trace.as_bytes());
    out.extend_from_slice(&[0x12, 8]);
    out.extend_from_slice(span.as_bytes());
    if let Some(p) = parent {
        out.extend_from_slice(&[0x22, 8]);
        out.extend_from_slice(p.as_bytes());
    }
}

/// Splits `canonical` into parts, checking that [`assemble`] gives it back; keeps it
/// whole otherwise.
pub(crate) fn split<'a>(
    canonical: &'a [u8],
    trace: &TraceId,
    span: &SpanId,
    parent: Option<&SpanId>,
) -> Parts<'a> {
    let whole = Parts {
        layout: Layout::Whole,
        resource: Vec::new(),
        scope: Vec::new(),
        body: canonical,
    };
    let Some((&CANONICAL_V1, rs)) = canonical.split_first() else {
        return whole;
    };
    let Some((rs_key, ss_start, ss_end)) = field2(rs) else {
        return whole;
    };
    let ss = &rs[ss_start..ss_end];
    let Some((ss_key, span_start, span_end)) = field2(ss) else {
        return whole;
    };
    let msg = &ss[span_start..span_end];
    let mut prefix = Vec::with_capacity(38);
    let (layout, body) = {
        id_prefix(trace, span, parent, &mut prefix);
        if parent.is_some() && msg.starts_with(&prefix) {
            (Layout::SplitIdsParent, &msg[prefix.len()..])
        } else {
            prefix.truncate(28);
            if msg.starts_with(&prefix) {
                (Layout::SplitIds, &msg[prefix.len()..])
            } else {
                (Layout::Split, msg)
            }
        }
    };
    let parts = Parts {
        layout,
        // `1 +` keeps the version byte in the resource head.
        resource: framed(&canonical[..1 + rs_key], &rs[ss_end..]),
        scope: framed(&ss[..ss_key], &ss[span_end..]),
        body,
    };
    match assemble(
        &parts.resource,
        &parts.scope,
        body,
        layout,
        trace,
        span,
        parent,
    ) {
        Some(back) if back == canonical => parts,
        _ => whole,
    }
}

/// Rebuilds the canonical bytes from their parts; `None` if the parts are malformed.
pub(crate) fn assemble(
    resource: &[u8],
    scope: &[u8],
    body: &[u8],
    layout: Layout,
    trace: &TraceId,
    span: &SpanId,
    parent: Option<&SpanId>,
) -> Option<Vec<u8>> {
    let parent = match layout {
        Layout::Whole => return Some(body.to_vec()),
        Layout::Split => None,
        Layout::SplitIds => Some(None),
        Layout::SplitIdsParent => Some(Some(parent?)),
    };
    let (rs_head, rs_tail) = unframe(resource)?;
    let (ss_head, ss_tail) = unframe(scope)?;
    let ids_len = match parent {
        None => 0,
        Some(None) => 28,
        Some(Some(_)) => 38,
    };
    let msg_len = ids_len + body.len();
    let ss_len = ss_head.len() + 1 + encoded_len_varint(msg_len as u64) + msg_len + ss_tail.len();
    let total = rs_head.len() + 1 + encoded_len_varint(ss_len as u64) + ss_len + rs_tail.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(rs_head);
    out.push(FIELD2_LEN);
    encode_varint(ss_len as u64, &mut out);
    out.extend_from_slice(ss_head);
    out.push(FIELD2_LEN);
    encode_varint(msg_len as u64, &mut out);
    if let Some(p) = parent {
        id_prefix(trace, span, p, &mut out);
    }
    out.extend_from_slice(body);
    out.extend_from_slice(ss_tail);
    out.extend_from_slice(rs_tail);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sentrace_core::canonical;
    use sentrace_core::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
    use sentrace_core::proto::resource::v1::Resource;
    use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    /// Splits and reassembles; returns the layout chosen.
    fn round_trip(bytes: &[u8], t: &TraceId, s: &SpanId, p: Option<&SpanId>) -> Layout {
        let parts = split(bytes, t, s, p);
        let back = assemble(
            &parts.resource,
            &parts.scope,
            parts.body,
            parts.layout,
            t,
            s,
            p,
        );
        assert_eq!(back.as_deref(), Some(bytes), "layout {:?}", parts.layout);
        parts.layout
    }

    #[allow(clippy::too_many_arguments)]
    fn encode(
        trace: [u8; 16],
        span: [u8; 8],
        parent: Option<[u8; 8]>,
        trace_state: &str,
        attrs: &[(String, String)],
        resource: Option<&[(String, String)]>,
        scope: Option<&str>,
        urls: (&str, &str),
    ) -> Vec<u8> {
        let s = Span {
            trace_id: trace.to_vec(),
            span_id: span.to_vec(),
            parent_span_id: parent.map(|p| p.to_vec()).unwrap_or_default(),
            trace_state: trace_state.into(),
            name: "GET /x".into(),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_000_500_000,
            attributes: attrs.iter().map(|(k, v)| kv(k, v)).collect(),
            ..Default::default()
        };
        let ss = ScopeSpans {
            scope: scope.map(|n| InstrumentationScope {
                name: n.into(),
                version: "1.2.3".into(),
                ..Default::default()
            }),
            spans: vec![],
            schema_url: urls.1.into(),
        };
        let rs = ResourceSpans {
            resource: resource.map(|r| Resource {
                attributes: r.iter().map(|(k, v)| kv(k, v)).collect(),
                ..Default::default()
            }),
            scope_spans: vec![],
            schema_url: urls.0.into(),
        };
        canonical::encode(&rs, &ss, &s)
    }

    #[test]
    fn typical_spans_split_and_come_back_byte_for_byte() {
        let (t, s, p) = ([7u8; 16], [9u8; 8], [3u8; 8]);
        let (tid, sid, pid) = (
            TraceId::from_slice(&t).unwrap(),
            SpanId::from_slice(&s).unwrap(),
            SpanId::from_slice(&p).unwrap(),
        );
        let attrs: Vec<_> = (0..20)
            .map(|i| (format!("app.k{i}"), "v".repeat(i * 9)))
            .collect();
        let res = [("service.name".to_string(), "cart".to_string())];
        let url = "https://opentelemetry.io/schemas/1.26.0";
        let with_parent = encode(
            t,
            s,
            Some(p),
            "",
            &attrs,
            Some(&res),
            Some("lib"),
            (url, url),
        );
        assert_eq!(
            round_trip(&with_parent, &tid, &sid, Some(&pid)),
            Layout::SplitIdsParent
        );
        let root = encode(t, s, None, "", &attrs, Some(&res), Some("lib"), ("", url));
        assert_eq!(round_trip(&root, &tid, &sid, None), Layout::SplitIds);
        // A trace state sits between span_id and parent_span_id: ids only.
        let ts = encode(t, s, Some(p), "a=b", &attrs, Some(&res), None, (url, ""));
        assert_eq!(round_trip(&ts, &tid, &sid, Some(&pid)), Layout::SplitIds);
        // Index columns that disagree with the span: the body keeps the ids.
        let other = SpanId::from_slice(&[1u8; 8]).unwrap();
        assert_eq!(round_trip(&root, &tid, &other, None), Layout::Split);
        // No resource, no scope.
        let bare = encode(t, s, None, "", &[], None, None, ("", ""));
        assert_eq!(round_trip(&bare, &tid, &sid, None), Layout::SplitIds);
        // The same resource and scope give the same resource and scope parts.
        let a = split(&with_parent, &tid, &sid, Some(&pid));
        let b = split(&root, &tid, &sid, None);
        assert_eq!(a.resource.len(), b.resource.len() + url.len() + 2);
        assert_eq!(a.scope, b.scope);
    }

    #[test]
    fn what_does_not_split_is_kept_whole() {
        let tid = TraceId::from_slice(&[1u8; 16]).unwrap();
        let sid = SpanId::from_slice(&[2u8; 8]).unwrap();
        for bytes in [
            &b""[..],
            &[0x01],
            &[0x02, 0x12, 0x00],
            // Two scope_spans fields.
            &[0x01, 0x12, 0x02, 0x12, 0x00, 0x12, 0x02, 0x12, 0x00],
            // A length past the end.
            &[0x01, 0x12, 0x09, 0x12, 0x00],
            // A non-minimal length varint: reassembly would differ.
            &[0x01, 0x12, 0x82, 0x00, 0x12, 0x00],
        ] {
            assert_eq!(
                round_trip(bytes, &tid, &sid, None),
                Layout::Whole,
                "{bytes:?}"
            );
        }
        // Malformed parts are refused, not panicked on.
        assert!(assemble(&[0x05], &[0], b"", Layout::Split, &tid, &sid, None).is_none());
        assert!(assemble(&[0], &[0], b"", Layout::SplitIdsParent, &tid, &sid, None).is_none());
    }

    proptest! {
        /// Any canonical span, and any byte string at all, comes back byte for byte.
        #[test]
        fn reassembly_is_exact(
            t in any::<[u8; 16]>(), s in any::<[u8; 8]>(), p in any::<Option<[u8; 8]>>(),
            ts in "[a-z=]{0,4}",
            attrs in proptest::collection::vec(("[a-z.]{1,8}", ".{0,40}"), 0..8),
            res in proptest::option::of(proptest::collection::vec(("[a-z.]{1,8}", ".{0,20}"), 0..4)),
            scope in proptest::option::of("[a-z]{0,6}"),
            u1 in "[a-z:/.]{0,10}", u2 in "[a-z:/.]{0,10}",
            junk in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let (Ok(tid), Ok(sid)) = (TraceId::from_slice(&t), SpanId::from_slice(&s)) else {
                return Ok(());
            };
            let pid = p.and_then(|p| SpanId::from_slice(&p).ok());
            let bytes = encode(t, s, p, &ts, &attrs, res.as_deref(), scope.as_deref(), (&u1, &u2));
            let layout = round_trip(&bytes, &tid, &sid, pid.as_ref());
            prop_assert_ne!(layout, Layout::Whole);
            round_trip(&junk, &tid, &sid, pid.as_ref());
            let mut tail_junk = bytes.clone();
            tail_junk.extend_from_slice(&junk);
            round_trip(&tail_junk, &tid, &sid, pid.as_ref());
        }
    }
}
