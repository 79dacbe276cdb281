//! `sentrace export` on the real binary: a tenant's spans from blocks and from the WAL,
//! decrypted into plain Parquet that another reader opens, the time range, the audit
//! record, and every refusal (server running, directory not empty, bad flags, unknown or
//! other tenants).

mod common;

use std::fs::File;
use std::path::Path;
use std::process::{Command, Output};

use arrow_array::{Array, RecordBatch, StringArray};
use common::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn export(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("export")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every row of every `part-*.parquet` in `dir`.
fn read_dir(dir: &Path) -> Vec<RecordBatch> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no file in {}", dir.display());
    let mut out = Vec::new();
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("part-") && name.ends_with(".parquet"),
            "{name}"
        );
        let r = ParquetRecordBatchReaderBuilder::try_new(File::open(&f).unwrap())
            .unwrap()
            .build()
            .unwrap();
        out.extend(r.map(|b| b.unwrap()));
    }
    out
}

fn strings(batches: &[RecordBatch], col: &str) -> Vec<String> {
    let mut v = Vec::new();
    for b in batches {
        let a = b.column_by_name(col).unwrap();
        let a = a.as_any().downcast_ref::<StringArray>().unwrap();
        v.extend((0..a.len()).map(|i| a.value(i).to_string()));
    }
    v.sort();
    v
}

fn send(srv: &Server, token: &str, service: &str, from: u64, n: u64) -> Vec<String> {
    let mut names = Vec::new();
    for i in from..from + n {
        let name = format!("{service}-op-{i}");
        let mut s = span(i, &name);
        s.attributes.push(kv("order.id", &format!("order-{i}")));
        let r = srv.post_proto(token, &request(service, vec![s]));
        assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap_or_default());
        names.push(name);
    }
    names
}

#[test]
fn export_reads_blocks_and_wal_is_audited_and_refuses_what_it_must() {
    let mut srv = Server::new("[store]\nflush_interval = \"1s\"\n").start();
    let acme = srv.token("acme", "ingest");
    let globex = srv.token("globex", "ingest");
    // Batch A reaches a block; batch B stays in the WAL (no flush for an hour, kill -9).
    let mut want = send(&srv, &acme, "shop", 0, 20);
    send(&srv, &globex, "other", 100, 5);
    let t0 = std::time::Instant::now();
    while flushed_spans(&srv.log()) < 25 {
        assert!(t0.elapsed().as_secs() < 60, "no flush; log:\n{}", srv.log());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    srv.stop();
    let text = std::fs::read_to_string(&srv.config).unwrap();
    std::fs::write(&srv.config, text.replace("\"1s\"", "\"1h\"")).unwrap();
    srv.launch();
    want.extend(send(&srv, &acme, "shop", 20, 10));

    // Refused while the server runs: the data directory is in use.
    let out_dir = srv.dir.path().join("out");
    let o = export(
        &srv.data,
        &["--tenant", "acme", "--to", out_dir.to_str().unwrap()],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("stop the server"), "{}", stderr(&o));
    assert!(!out_dir.exists() || std::fs::read_dir(&out_dir).unwrap().next().is_none());
    srv.kill9();

    // Everything of acme, from a block and from the WAL, and nothing of globex.
    let o = export(
        &srv.data,
        &["--tenant", "acme", "--to", out_dir.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let msg = stderr(&o);
    assert!(msg.contains("exported 30 spans of tenant acme"), "{msg}");
    assert!(msg.contains("10 spans from the WAL"), "{msg}");
    assert!(!msg.contains("0 blocks read"), "{msg}");
    let batches = read_dir(&out_dir);
    want.sort();
    assert_eq!(strings(&batches, "name"), want);
    assert!(
        strings(&batches, "service_name")
            .iter()
            .all(|s| s == "shop")
    );
    assert_eq!(batches[0].schema().fields().len(), 20);
    use std::os::unix::fs::PermissionsExt;
    for e in std::fs::read_dir(&out_dir).unwrap() {
        let mode = e.unwrap().metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "export files are private");
    }

    // A range after every span: no row, but the schema is there.
    let late = srv.dir.path().join("late");
    let o = export(
        &srv.data,
        &[
            "--tenant",
            "acme",
            "--since",
            "2500-01-01T00:00:00Z",
            "--until",
            "2500-01-02T00:00:00Z",
            "--to",
            late.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let b = read_dir(&late);
    assert_eq!(b.iter().map(|b| b.num_rows()).sum::<usize>(), 0);

    // Refusals, each naming what was wrong.
    let cases: [(&[&str], &str); 5] = [
        (
            &["--tenant", "acme", "--to", out_dir.to_str().unwrap()],
            "not empty",
        ),
        (
            &["--tenant", "nobody", "--to", "/nonexistent-x/y"],
            "no data",
        ),
        (
            &[
                "--tenant",
                "acme",
                "--since",
                "5",
                "--to",
                "/tmp/never-made-x",
            ],
            "--since",
        ),
        (
            &[
                "--tenant",
                "acme",
                "--since",
                "1h",
                "--until",
                "2h",
                "--to",
                "/tmp/never-made-x",
            ],
            "before --until",
        ),
        (
            &["--tenant", "Bad Tenant!", "--to", "/tmp/never-made-x"],
            "--tenant",
        ),
    ];
    for (args, needle) in cases {
        let o = export(&srv.data, args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    assert!(!Path::new("/tmp/never-made-x").exists());

    // Both successful exports are in acme's audit log, with their span counts.
    let audit = Command::new(BIN)
        .args(["audit", "--tenant", "acme", "--json", "--data-dir"])
        .arg(&srv.data)
        .output()
        .unwrap();
    assert!(audit.status.success(), "{}", stderr(&audit));
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&audit.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["record"].clone())
        .filter(|r| r["action"] == "export")
        .collect();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0]["spans_returned"], 30);
    assert!(
        records[0]["principal"]
            .as_str()
            .unwrap()
            .starts_with("cli:")
    );
    // The server starts on the audit log the command extended (and publishes the log
    // entries the kill -9 left without a checkpoint); then everything verifies.
    srv.launch();
    srv.stop();
    let (code, v) = verify_json(&srv.data, &[]);
    assert_eq!(code, 0, "{v}");
}
