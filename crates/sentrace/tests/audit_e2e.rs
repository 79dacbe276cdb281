//! The read-audit log end to end: the server opens it at start; records written through
//! the audit sink are read back by `sentrace audit` (text, JSON, OCSF 6003) and verified
//! by `sentrace verify`, which names a deleted record by its index and exits 1.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::*;
use sentrace_core::{Identity, Role, TenantId};
use sentrace_server::audit::{
    AuditFiles, AuditLog, AuditRecord, AuditSink, LogName, Outcome, now_nanos, record_auth_failure,
};
use sentrace_store::{KeyRing, MasterKey};

fn audit(data: &std::path::Path, args: &[&str]) -> Vec<String> {
    let out = Command::new(BIN)
        .arg("audit")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "audit {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn records_read_back_exported_and_verified() {
    let mut srv = Server::new("").start();
    srv.stop();
    assert!(
        srv.data.join("audit/tenants").is_dir(),
        "serve opens the audit logs"
    );

    // Records written the way the query service writes them.
    let master = MasterKey::load(&srv.data.join("master.key")).unwrap();
    let signer = sentrace_server::seal::keys::load(&srv.data, &master).unwrap();
    let keys = Arc::new(KeyRing::open(&srv.data.join("keys"), &master).unwrap());
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let log = AuditLog::open(
            &srv.data,
            keys.clone(),
            &master,
            &signer,
            "sentrace",
            Default::default(),
        )
        .unwrap();
        for i in 0..3 {
            let id = Identity::new(
                TenantId::new("default").unwrap(),
                format!("token:p{i}"),
                Role::Viewer,
            );
            let mut r = AuditRecord::new(
                now_nanos(),
                None,
                "",
                "read_trace",
                "GET /api/traces/{traceID}",
                Outcome::Allowed,
            )
            .by(&id);
            r.source = Some("127.0.0.1:40000".into());
            r.trace_ids.push(trace.into());
            r.spans_returned = 2;
            assert_eq!(log.record(r).await.unwrap().index, i);
        }
        record_auth_failure(
            log.as_ref(),
            None,
            "token:nobody",
            Some("127.0.0.1:40001".parse().unwrap()),
            "GET /api/services",
            "unknown token",
        )
        .await
        .unwrap();
    });
    drop(rt);

    // Read back.
    let data = srv.data.as_path();
    let json = audit(data, &["--json"]);
    assert_eq!(json.len(), 4, "{json:?}");
    let one = audit(
        data,
        &["--tenant", "default", "--principal", "token:p1", "--json"],
    );
    assert_eq!(one.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&one[0]).unwrap();
    assert_eq!(v["index"], 1);
    assert_eq!(v["origin"], "sentrace/default/audit");
    assert_eq!(v["record"]["trace_ids"][0], trace);
    assert_eq!(audit(data, &["--trace", trace, "--since", "1h"]).len(), 3);
    assert!(
        audit(
            data,
            &[
                "--since",
                "2000-01-01T00:00:00Z",
                "--until",
                "2001-01-01T00:00:00Z"
            ]
        )
        .is_empty()
    );
    let node = audit(data, &["--tenant", "_node"]);
    assert_eq!(node.len(), 1);
    assert!(node[0].contains("token:nobody") && node[0].contains("unauthenticated"));
    for line in audit(data, &["--ocsf"]) {
        let e: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(e["class_uid"], 6003);
        assert_eq!(e["category_uid"], 6);
        for field in [
            "activity_id",
            "type_uid",
            "time",
            "severity_id",
            "metadata",
            "actor",
            "api",
            "src_endpoint",
        ] {
            assert!(!e[field].is_null(), "{field} missing in {line}");
        }
        assert_eq!(e["src_endpoint"]["ip"], "127.0.0.1");
    }

    // Verified.
    let (code, v) = verify_json(data, &[]);
    assert_eq!(code, 0, "{v:#}");
    let logs = v["audit_logs"].as_array().unwrap();
    assert_eq!(logs.len(), 2, "{v:#}");
    assert!(logs.iter().all(|l| l["ok"] == true));

    // A record deleted: reported by index, exit 1.
    let files = AuditFiles::open(data, keys, &master).unwrap();
    let tenant = LogName::Tenant(TenantId::new("default").unwrap());
    let r1 = files.stored(&tenant).unwrap().records[1].clone();
    let path = files.journal_path(&tenant);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.drain(r1.offset as usize..r1.offset as usize + r1.bytes.len());
    std::fs::write(&path, &bytes).unwrap();
    let (code, v) = verify_json(data, &[]);
    assert_eq!(code, 1, "{v:#}");
    let bad = v["audit_logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["log"] == "default")
        .unwrap();
    assert_eq!(bad["ok"], false);
    assert!(
        bad["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "deleted" && f["index"] == 1),
        "{bad:#}"
    );
    let out = Command::new(BIN)
        .args(["verify", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("audit log default: FAILED") && text.contains("record 1 is missing"),
        "{text}"
    );
    // The node's own log alone still verifies.
    let (code, v) = verify_json(data, &["--tenant", "_node"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["audit_logs"].as_array().unwrap().len(), 1);
    assert_eq!(v["audit_logs"][0]["log"], "_node");
}
