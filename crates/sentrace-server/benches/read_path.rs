//! The cost of the read path on a trace-by-id query (issue 10: authorization, masking and
//! audit should add at most 5 %).
//!
//! One store holds one realistic trace (50 spans over 5 services, 20 attributes each, three
//! minimized values per span recorded in `sentrace.minimized`), flushed to an encrypted
//! block. Over that same trace, in one run:
//!
//! 1. `baseline`: what the handler did before the read path existed: `store.trace` +
//!    `views` + `dedup` (no authorization, no masking, no audit);
//! 2. `admin_defaults`: the full read path (`QueryService::trace`), admin token, the
//!    default policies, the real audit log (one fsync'd record per read);
//! 3. `admin_1000`: the same with 1,000 extra generated policies;
//! 4. `viewer_1000`: a viewer (values masked) with the 1,000 policies;
//! 5. `viewer_1000_null_audit`: 4 with an audit sink that does nothing. This is a
//!    measurement tool only (a server never runs without its audit log): 4 minus 5 is what
//!    the audit costs, 5 minus 1 is what authorization and masking cost;
//! 6. `audit_record`: `AuditLog::record` of one realistic record alone, fsync included.
//!
//! A table of medians and ratios to the baseline is printed at the end.
//!
//! Run: `cargo bench -p sentrace-server --bench read_path` (`BENCH_DIR=DIR` puts the store
//! and the audit log on another disk; default the package directory, so that fsync hits
//! a real disk and not a tmpfs).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use sentrace_access::authz::{Action, PolicySource, PolicyStore, RequestContext, Resource, Teams};
use sentrace_core::{Identity, MINIMIZED_ATTRIBUTE, Role, TenantId, TraceId};
use sentrace_ledger::checkpoint::LogSigner;
use sentrace_ledger::log::CheckpointCadence;
use sentrace_ledger::note::KeyName;
use sentrace_query::audit::{AuditFuture, AuditReceipt, AuditRecord, AuditSink, Outcome};
use sentrace_query::service::{Caller, Policies, QueryService, dedup, views};
use sentrace_server::audit::AuditLog;
use sentrace_store::testutil::span;
use sentrace_store::{KeyRing, MasterKey, SpanEntry, Store, StoreConfig};
use tokio::runtime::Runtime;

const TENANT: &str = "bench";
const SERVICES: [&str; 5] = ["frontend", "orders", "payments", "inventory", "shipping"];
const SPANS: u64 = 50;
const EXTRA_POLICIES: usize = 1000;
const ENDPOINT: &str = "GET /api/traces/{traceID}";
const GROUP: &str = "read_path";

/// The trace: 50 spans, 10 per service, 20 attributes each, of which three hold values the
/// redactor minimized (their stored form, as the redactor leaves it) and are listed in
/// `sentrace.minimized`.
fn trace() -> Vec<SpanEntry> {
    (0..SPANS)
        .map(|i| {
            let service = SERVICES[(i % 5) as usize];
            let path = format!("/api/v1/{service}/{}/items", i * 31 % 5000);
            let peer = format!("10.0.{}.{}", i / 256, i % 256);
            let req = format!("{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let status = if i % 17 == 0 { "500" } else { "200" };
            let attrs: Vec<(&str, &str)> = vec![
                ("http.request.method", "GET"),
                ("url.path", &path),
                ("url.scheme", "https"),
                ("http.response.status_code", status),
                ("http.route", "/api/v1/{service}/{id}/items"),
                ("server.address", "shop.internal.example"),
                ("server.port", "8443"),
                ("client.address", "<ip_address>"),
                (
                    "user_agent.original",
                    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0",
                ),
                ("network.peer.address", &peer),
                ("enduser.id", "<user_id:…4f2c>"),
                ("request.id", &req),
                ("http.request.header.authorization", "<bearer>"),
                ("deployment.environment", "production"),
                ("k8s.namespace.name", "shop"),
                ("db.system", "postgresql"),
                ("db.operation.name", "SELECT"),
                ("feature.flag", "checkout-v2"),
                ("thread.name", "tokio-runtime-worker"),
                (
                    MINIMIZED_ATTRIBUTE,
                    "span:client.address=pii;span:enduser.id=pii;\
                     span:http.request.header.authorization=secret",
                ),
            ];
            let start = 1_700_000_000_000_000_000 + i * 1_000_000;
            span(
                7,
                i + 1,
                service,
                "GET /api/v1/{service}/{id}/items",
                start,
                start + 2_500_000 + (i % 97) * 10_000,
                &attrs,
            )
        })
        .collect()
}

/// 1,000 policies of the kinds a large deployment writes: team permits on named services,
/// forbids of sensitive services for contractor teams, per-team view_sensitive grants,
/// metrics for service owners; all with `when` conditions on principal attributes, none
/// matching the admin or the viewer of this bench (they must all still be evaluated).
fn extra_policies() -> PolicySource {
    let mut text = String::new();
    for i in 0..EXTRA_POLICIES {
        let svc = SERVICES[i % 5];
        let p = match i % 4 {
            0 => format!(
                "@id(\"team-{i}-permit\")\npermit (principal, action in [Action::\"search\", \
                 Action::\"read_trace\"], resource == Service::\"{svc}-{i}\")\nwhen {{ \
                 principal.role == \"developer\" && principal has team && principal.team == \
                 \"team-{i}\" }};\n"
            ),
            1 => format!(
                "@id(\"contractors-{i}-forbid\")\nforbid (principal, action == \
                 Action::\"read_trace\", resource == Service::\"{svc}\")\nwhen {{ \
                 principal.role == \"developer\" && principal has team && principal.team == \
                 \"contractors-{i}\" }};\n"
            ),
            2 => format!(
                "@id(\"team-{i}-pii\")\npermit (principal, action == Action::\"view_sensitive\", \
                 resource == AttributeClass::\"pii\")\nwhen {{ principal.role == \
                 \"security-analyst\" && principal has team && principal.team == \"team-{i}\" \
                 }};\n"
            ),
            _ => format!(
                "@id(\"owners-{i}-metrics\")\npermit (principal, action == \
                 Action::\"read_metrics\", resource is Service)\nwhen {{ principal.role == \
                 \"developer\" && principal has team && principal.team == \"team-{i}\" && \
                 resource.teams.contains(\"team-{i}\") }};\n"
            ),
        };
        text.push_str(&p);
    }
    PolicySource {
        name: "generated.cedar".into(),
        text,
    }
}

fn teams() -> Teams {
    (0..EXTRA_POLICIES)
        .filter(|i| i % 4 == 3)
        .map(|i| {
            (
                format!("team-{i}"),
                vec![format!("{}-{i}", SERVICES[i % 5])],
            )
        })
        .collect()
}

/// An audit sink that keeps nothing. A measurement tool only, to split the audit's cost
/// from authorization and masking; the server never runs without its audit log.
struct NullAudit;

impl AuditSink for NullAudit {
    fn record(&self, _record: AuditRecord) -> AuditFuture<'_> {
        Box::pin(async {
            Ok(AuditReceipt {
                origin: String::new(),
                index: 0,
            })
        })
    }
}

/// The record a viewer's trace read writes.
fn realistic_record(tenant: &TenantId, trace_id: &TraceId) -> AuditRecord {
    let who = Identity::new(tenant.clone(), "viewer-1", Role::Viewer);
    let mut r = AuditRecord::new(0, None, "", "read_trace", ENDPOINT, Outcome::Allowed).by(&who);
    r.source = Some("10.1.2.3:51234".into());
    r.filter.insert("trace_id".into(), trace_id.to_string());
    r.trace_ids = vec![trace_id.to_string()];
    r.spans_returned = SPANS;
    r.spans_masked = SPANS;
    r
}

fn median_ns(dir: &Path, name: &str) -> Option<f64> {
    let p = dir
        .join(GROUP)
        .join(name)
        .join("new")
        .join("estimates.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn main() {
    let rt: Runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = std::env::var("BENCH_DIR").unwrap_or_else(|_| ".".into());
    let dir = tempfile::tempdir_in(base).unwrap();
    let out = tempfile::tempdir().unwrap();
    let tenant = TenantId::new(TENANT).unwrap();

    // The store, with the trace flushed into an encrypted block.
    let master = MasterKey::generate().unwrap();
    let keys = Arc::new(KeyRing::open(&dir.path().join("keys"), &master).unwrap());
    let cfg = StoreConfig {
        flush_interval: Duration::from_secs(3600),
        flush_max_spans: usize::MAX,
        ..Default::default()
    };
    let (store, _) = rt
        .block_on(Store::open(&dir.path().join("store"), cfg, keys.clone()))
        .unwrap();
    let spans = trace();
    let trace_id = spans[0].trace_id;
    let raw_id = trace_id.to_string();
    rt.block_on(async {
        store.append(&tenant, spans).await.unwrap();
        store.flush().await.unwrap();
    });

    // The audit log, as `serve` opens it.
    let signer = LogSigner::generate(&KeyName::new("benchnode").unwrap()).unwrap();
    let audit: Arc<AuditLog> = AuditLog::open(
        dir.path(),
        keys.clone(),
        &master,
        &signer,
        "benchnode",
        CheckpointCadence::default(),
    )
    .unwrap();

    let defaults = Arc::new(Policies::new(PolicyStore::defaults().unwrap()));
    let many = Arc::new(Policies::new(
        PolicyStore::load(&[extra_policies()], true, &teams()).unwrap(),
    ));
    println!(
        "policies: {} default, {} with the generated set",
        defaults.current().len(),
        many.current().len()
    );
    let svc =
        |p: &Arc<Policies>, a: Arc<dyn AuditSink>| QueryService::new(store.clone(), p.clone(), a);
    let admin_defaults = svc(&defaults, audit.clone());
    let admin_many = svc(&many, audit.clone());
    let viewer_many = svc(&many, audit.clone());
    let viewer_null = svc(&many, Arc::new(NullAudit));
    let admin = Caller::new(Identity::new(tenant.clone(), "admin-1", Role::Admin));
    let mut viewer = Caller::new(Identity::new(tenant.clone(), "viewer-1", Role::Viewer));
    viewer.source = Some("10.1.2.3:51234".into());

    // The answers must be what the bench claims: all 50 spans, masked for the viewer only.
    let a = rt
        .block_on(admin_many.trace(&admin, &raw_id, ENDPOINT))
        .unwrap();
    let v = rt
        .block_on(viewer_many.trace(&viewer, &raw_id, ENDPOINT))
        .unwrap();
    assert_eq!((a.spans.len(), a.shaped.masked), (SPANS as usize, 0));
    assert_eq!((v.spans.len(), v.shaped.masked), (SPANS as usize, SPANS));

    let mut c = Criterion::default()
        .output_directory(out.path())
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let mut g = c.benchmark_group(GROUP);
    g.bench_function("baseline", |b| {
        b.iter(|| {
            rt.block_on(async {
                let entries = store.trace(&tenant, trace_id).await.unwrap();
                dedup(views(&entries))
            })
        })
    });
    let cases: [(&str, &QueryService, &Caller); 4] = [
        ("admin_defaults", &admin_defaults, &admin),
        ("admin_1000", &admin_many, &admin),
        ("viewer_1000", &viewer_many, &viewer),
        ("viewer_1000_null_audit", &viewer_null, &viewer),
    ];
    for (name, service, caller) in cases {
        g.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(service.trace(caller, &raw_id, ENDPOINT))
                    .unwrap()
            })
        });
    }
    let record = realistic_record(&tenant, &trace_id);
    g.bench_function("audit_record", |b| {
        b.iter(|| rt.block_on(audit.record(record.clone())).unwrap())
    });
    // One Cedar decision (a viewer reading a service's spans), to tell how the policy
    // count weighs: a trace read of 5 services makes 9 (1 trace, 5 services, 3 classes).
    let resource = Resource::Service("orders".into());
    for (name, p) in [("decide_defaults", &defaults), ("decide_1000", &many)] {
        let store = p.current();
        g.bench_function(name, |b| {
            b.iter(|| {
                store.decide(
                    &viewer.identity,
                    Action::ReadTrace,
                    &resource,
                    RequestContext::default(),
                )
            })
        });
    }
    g.finish();

    let names = [
        "baseline",
        "admin_defaults",
        "admin_1000",
        "viewer_1000",
        "viewer_1000_null_audit",
        "audit_record",
        "decide_defaults",
        "decide_1000",
    ];
    let base = median_ns(out.path(), "baseline").unwrap_or(f64::NAN);
    println!("\n| case | median | vs baseline |\n|---|---:|---:|");
    for n in names {
        let m = median_ns(out.path(), n).unwrap_or(f64::NAN);
        println!(
            "| {n} | {:.1} µs | {:.2}x ({:+.1} %) |",
            m / 1e3,
            m / base,
            (m / base - 1.0) * 100.0
        );
    }
    let s = audit.stats();
    let (records, commits) = (
        s.records.load(std::sync::atomic::Ordering::Relaxed),
        s.commits.load(std::sync::atomic::Ordering::Relaxed),
    );
    println!("\naudit writer: {records} records in {commits} group commits (one fdatasync each)");
}
