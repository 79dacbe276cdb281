//! Evaluation of the subset on single-span views. Callers pass views already scoped and
//! masked, so a condition sees exactly what the caller would see in a trace answer (a
//! masked value compares as its mask text and never as the stored value).

use std::cmp::Ordering;

use sentrace_core::otlp::attr;
use sentrace_core::proto::common::v1::{AnyValue, any_value::Value};

use super::{
    AttrScope, CmpOp, Condition, Field, Intrinsic, KindValue, Literal, Query, SetExpr, SpanExpr,
    StatusValue,
};
use crate::SpanView;

/// The value of `field` on `v` as an OTLP value (status and kind as their keywords,
/// duration in nanoseconds as an integer), or None when the attribute is absent.
pub fn field_value(field: &Field, v: &SpanView) -> Option<AnyValue> {
    let s = v.span();
    let text = |t: &str| {
        Some(AnyValue {
            value: Some(Value::StringValue(t.to_string())),
        })
    };
    match field {
        Field::Intrinsic(Intrinsic::Name) => text(&s.name),
        Field::Intrinsic(Intrinsic::Status) => {
            text(StatusValue::of_code(s.status.as_ref().map_or(0, |st| st.code)).as_str())
        }
        Field::Intrinsic(Intrinsic::Kind) => text(KindValue::of_code(s.kind).as_str()),
        Field::Intrinsic(Intrinsic::Duration) => Some(AnyValue {
            value: Some(Value::IntValue(
                i64::try_from(duration_nanos(v)).unwrap_or(i64::MAX),
            )),
        }),
        Field::Attr(scope, key) => attr_value(*scope, key, v).cloned(),
    }
}

fn duration_nanos(v: &SpanView) -> u64 {
    let s = v.span();
    s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano)
}

fn attr_value<'a>(scope: AttrScope, key: &str, v: &'a SpanView) -> Option<&'a AnyValue> {
    let span = || attr(&v.span().attributes, key);
    let resource = || {
        v.rs.resource
            .as_ref()
            .and_then(|r| attr(&r.attributes, key))
    };
    match scope {
        AttrScope::Span => span(),
        AttrScope::Resource => resource(),
        AttrScope::Any => span().or_else(resource),
    }
}

fn apply(op: CmpOp, ord: Option<Ordering>) -> bool {
    let Some(ord) = ord else { return false };
    match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        // Regex conditions never reach here.
        CmpOp::Re | CmpOp::NotRe => false,
    }
}

fn text_matches(op: CmpOp, have: &str, want: &Literal) -> bool {
    match want {
        Literal::Regex(re) => re.is_match(have) == (op == CmpOp::Re),
        Literal::Str(s) => apply(op, Some(have.cmp(s.as_str()))),
        _ => false,
    }
}

fn value_matches(op: CmpOp, have: &AnyValue, want: &Literal) -> bool {
    match (&have.value, want) {
        (Some(Value::StringValue(s)), Literal::Str(_) | Literal::Regex(_)) => {
            text_matches(op, s, want)
        }
        (Some(Value::IntValue(i)), Literal::Int(w)) => apply(op, Some(i.cmp(w))),
        (Some(Value::IntValue(i)), Literal::Float(w)) => apply(op, (*i as f64).partial_cmp(w)),
        (Some(Value::DoubleValue(d)), Literal::Int(w)) => apply(op, d.partial_cmp(&(*w as f64))),
        (Some(Value::DoubleValue(d)), Literal::Float(w)) => apply(op, d.partial_cmp(w)),
        (Some(Value::BoolValue(b)), Literal::Bool(w)) => apply(op, Some(b.cmp(w))),
        // Different types never match, `!=` included (as in Tempo).
        _ => false,
    }
}

fn condition_matches(c: &Condition, v: &SpanView) -> bool {
    let s = v.span();
    match (&c.field, &c.value) {
        (Field::Intrinsic(Intrinsic::Name), want) => text_matches(c.op, &s.name, want),
        (Field::Intrinsic(Intrinsic::Status), Literal::Status(want)) => {
            let have = StatusValue::of_code(s.status.as_ref().map_or(0, |st| st.code));
            apply(
                c.op,
                Some(if have == *want {
                    Ordering::Equal
                } else {
                    Ordering::Less
                }),
            )
        }
        (Field::Intrinsic(Intrinsic::Kind), Literal::Kind(want)) => {
            let have = KindValue::of_code(s.kind);
            apply(
                c.op,
                Some(if have == *want {
                    Ordering::Equal
                } else {
                    Ordering::Less
                }),
            )
        }
        (Field::Intrinsic(Intrinsic::Duration), Literal::Duration(want)) => {
            apply(c.op, Some(duration_nanos(v).cmp(want)))
        }
        (Field::Attr(scope, key), want) => {
            attr_value(*scope, key, v).is_some_and(|have| value_matches(c.op, have, want))
        }
        // The parser refuses every other pairing.
        _ => false,
    }
}

/// Whether span `v` satisfies `e`.
pub fn span_matches(e: &SpanExpr, v: &SpanView) -> bool {
    match e {
        SpanExpr::All => true,
        SpanExpr::Cond(c) => condition_matches(c, v),
        SpanExpr::And(a, b) => span_matches(a, v) && span_matches(b, v),
        SpanExpr::Or(a, b) => span_matches(a, v) || span_matches(b, v),
    }
}

fn set_matches(e: &SetExpr, spans: &[SpanView]) -> Vec<usize> {
    match e {
        SetExpr::Spanset(se) => spans
            .iter()
            .enumerate()
            .filter(|(_, v)| span_matches(se, v))
            .map(|(i, _)| i)
            .collect(),
        SetExpr::And(a, b) => {
            let left = set_matches(a, spans);
            if left.is_empty() {
                return left;
            }
            let right = set_matches(b, spans);
            if right.is_empty() {
                return right;
            }
            union(left, right)
        }
        SetExpr::Or(a, b) => union(set_matches(a, spans), set_matches(b, spans)),
    }
}

fn union(mut a: Vec<usize>, b: Vec<usize>) -> Vec<usize> {
    a.extend(b);
    a.sort_unstable();
    a.dedup();
    a
}

impl Query {
    /// Evaluates the query on the spans of one trace: the indexes of the matched spans
    /// (ascending), or None when the trace does not match.
    pub fn trace_matches(&self, spans: &[SpanView]) -> Option<Vec<usize>> {
        let m = set_matches(&self.root, spans);
        (!m.is_empty()).then_some(m)
    }

    /// Whether one span satisfies any of the query's span sets (for filtered tag names
    /// and values, which Tempo evaluates per span).
    pub fn span_matches_any(&self, v: &SpanView) -> bool {
        self.spansets().into_iter().any(|e| span_matches(e, v))
    }
}
