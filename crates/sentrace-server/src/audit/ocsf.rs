//! Audit records as OCSF API Activity events (class 6003, category 6 "Application
//! Activity"), OCSF schema 1.3.0 (the version of the detection findings), one JSON
//! object per record.
//!
//! Required attributes of the class and its base event: `activity_id`, `category_uid`,
//! `class_uid`, `type_uid`, `time`, `severity_id`, `metadata` (with `version` and
//! `product`), `actor`, `api` (with `operation`) and `src_endpoint`. Sentrace's own
//! counters (spans returned, masked, hidden), the filter, the decision and the role go to
//! `unmapped`.

use serde_json::{Map, Value, json};

use sentrace_core::{PrincipalKind, Role};

use super::Outcome;
use super::search::AuditEntry;

/// The OCSF schema version emitted.
pub const OCSF_VERSION: &str = "1.3.0";
/// API Activity.
pub const CLASS_UID: u32 = 6003;
/// Application Activity.
pub const CATEGORY_UID: u32 = 6;

/// The API Activity `activity_id` of an action: 1 Create, 2 Read, 3 Update, 4 Delete,
/// 99 Other (authentication, anything unknown).
pub fn activity(action: &str) -> (u32, &'static str) {
    let a = action.to_ascii_lowercase();
    let starts = |p: &[&str]| p.iter().any(|x| a.starts_with(x));
    if starts(&[
        "read",
        "search",
        "view",
        "verify",
        "list",
        "get",
        "detokenize",
    ]) {
        (2, "Read")
    } else if starts(&["create", "issue", "add"]) {
        (1, "Create")
    } else if starts(&["manage", "update", "set", "rotate", "reload", "undo"]) {
        (3, "Update")
    } else if starts(&["delete", "revoke", "remove", "shred"]) {
        (4, "Delete")
    } else {
        (99, "Other")
    }
}

fn severity(o: Outcome) -> (u32, &'static str) {
    match o {
        Outcome::Allowed => (1, "Informational"),
        Outcome::Failed => (2, "Low"),
        Outcome::Denied | Outcome::Unauthenticated => (3, "Medium"),
    }
}

fn enum_str<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The OCSF user type: 2 Admin, 3 System (service accounts and agents), 1 User, 0 Unknown.
fn user_type(kind: Option<PrincipalKind>, role: Option<Role>) -> (u32, &'static str) {
    match (kind, role) {
        (_, Some(Role::Admin)) => (2, "Admin"),
        (Some(PrincipalKind::ServiceAccount | PrincipalKind::Agent), _) => (3, "System"),
        (Some(PrincipalKind::User), _) => (1, "User"),
        (None, _) => (0, "Unknown"),
    }
}

/// `ip:port`, `[v6]:port` or a bare address, as an OCSF network endpoint.
fn endpoint(source: Option<&str>) -> Value {
    let Some(s) = source else {
        return json!({ "name": "unknown" });
    };
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return json!({ "ip": sa.ip().to_string(), "port": sa.port() });
    }
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return json!({ "ip": ip.to_string() });
    }
    json!({ "name": s })
}

/// One audit entry as an OCSF API Activity event.
pub fn to_ocsf(e: &AuditEntry) -> Value {
    let r = &e.record;
    let (activity_id, activity_name) = activity(&r.action);
    let (severity_id, severity_name) = severity(r.outcome);
    let allowed = r.outcome == Outcome::Allowed;
    let (type_id, type_name) = user_type(r.kind, r.role);
    let mut user = Map::new();
    user.insert("uid".into(), json!(r.principal));
    user.insert("name".into(), json!(r.principal));
    user.insert("type_id".into(), json!(type_id));
    user.insert("type".into(), json!(type_name));
    let (method, path) = match r.endpoint.split_once(' ') {
        Some((m, p)) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => (Some(m), p),
        _ => (None, r.endpoint.as_str()),
    };
    let mut http = Map::new();
    if let Some(m) = method {
        http.insert("http_method".into(), json!(m));
    }
    http.insert("url".into(), json!({ "path": path }));
    let mut event = json!({
        "class_uid": CLASS_UID,
        "class_name": "API Activity",
        "category_uid": CATEGORY_UID,
        "category_name": "Application Activity",
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": CLASS_UID * 100 + activity_id,
        "type_name": format!("API Activity: {activity_name}"),
        "time": r.time_unix_nanos / 1_000_000,
        "severity_id": severity_id,
        "severity": severity_name,
        "status_id": if allowed { 1 } else { 2 },
        "status": if allowed { "Success" } else { "Failure" },
        "status_code": enum_str(&r.outcome),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": format!("{}#{}", e.origin, e.index),
            "log_name": e.origin,
            "product": {
                "name": "Sentrace",
                "vendor_name": "Sentrace",
                "version": env!("CARGO_PKG_VERSION"),
            },
        },
        "actor": { "user": Value::Object(user) },
        "api": {
            "operation": r.action,
            "service": { "name": "sentrace" },
        },
        "src_endpoint": endpoint(r.source.as_deref()),
        "http_request": Value::Object(http),
        "unmapped": {
            "outcome": enum_str(&r.outcome),
            "spans_returned": r.spans_returned,
            "spans_masked": r.spans_masked,
            "spans_hidden": r.spans_hidden,
            "audit_index": e.index,
        },
    });
    if let Some(obj) = event.as_object_mut() {
        if let Some(t) = &r.tenant
            && let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut)
        {
            m.insert("tenant_uid".into(), json!(t.as_str()));
        }
        if let Some(reason) = &r.reason {
            obj.insert("status_detail".into(), json!(reason));
        }
        if !r.trace_ids.is_empty() {
            obj.insert(
                "resources".into(),
                Value::Array(
                    r.trace_ids
                        .iter()
                        .map(|t| json!({ "uid": t, "type": "trace" }))
                        .collect(),
                ),
            );
        }
        if let Some(u) = obj.get_mut("unmapped").and_then(Value::as_object_mut) {
            if !r.filter.is_empty() {
                u.insert("filter".into(), json!(r.filter));
            }
            if let Some(role) = &r.role {
                u.insert("role".into(), enum_str(role));
            }
            if let Some(m) = &r.method {
                u.insert("auth_method".into(), json!(m.as_str()));
            }
            if let Some(k) = &r.kind {
                u.insert("principal_kind".into(), json!(k.entity_type()));
            }
            if let Some(b) = &r.break_glass {
                u.insert("break_glass".into(), enum_str(b));
            }
        }
    }
    event
}
