//! Small helpers over OTLP types.

use crate::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use crate::proto::resource::v1::Resource;

/// The service name OTLP prescribes when a resource has none.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// The string value of attribute `key`, if present and a string.
pub fn attr_str<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(s)) => Some(s.as_str()),
            _ => None,
        }
    })
}

/// The value of attribute `key`, if present.
pub fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

/// `service.name` of a resource, or `unknown_service`.
pub fn service_name(resource: Option<&Resource>) -> &str {
    resource
        .and_then(|r| attr_str(&r.attributes, "service.name"))
        .filter(|s| !s.is_empty())
        .unwrap_or(UNKNOWN_SERVICE)
}

/// A display string for any value: strings as-is, scalars in their usual text form, arrays
/// and key-value lists as JSON, bytes as base16.
pub fn value_to_string(v: &AnyValue) -> String {
    match &v.value {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(b)) => hex::encode(b),
        Some(Value::StringValueStrindex(i)) => format!("<strindex {i}>"),
        Some(Value::ArrayValue(a)) => {
            let parts: Vec<String> = a.values.iter().map(json_of).collect();
            format!("[{}]", parts.join(","))
        }
        Some(Value::KvlistValue(kv)) => {
            let parts: Vec<String> = kv
                .values
                .iter()
                .map(|e| {
                    format!(
                        "{}:{}",
                        json_string(&e.key),
                        e.value.as_ref().map_or("null".to_string(), json_of)
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
    }
}

fn json_of(v: &AnyValue) -> String {
    match &v.value {
        Some(Value::StringValue(s)) => json_string(s),
        Some(Value::BytesValue(b)) => json_string(&hex::encode(b)),
        None => "null".into(),
        _ => value_to_string(v),
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
