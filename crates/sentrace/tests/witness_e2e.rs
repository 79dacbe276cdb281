//! Witnesses end to end, on the real binaries over real TLS: two `sentrace witness`
//! processes cosign the server's checkpoints; `sentrace verify --witness ... --quorum 2`
//! passes with both and fails, naming the missing witness, when one is down; a split view
//! (another checkpoint of the same size, validly signed with the log key) is refused by the
//! witness with 409 and gets no cosignature.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::*;
use sentrace_ledger::checkpoint::{Checkpoint, Origin};
use sentrace_ledger::witness::AddCheckpoint;
use serde_json::Value;

const ORIGIN: &str = "sentrace/default";

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A `sentrace witness` process.
struct WitnessProc {
    name: String,
    state: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl WitnessProc {
    fn new(root: &Path, name: &str) -> Self {
        Self {
            name: name.into(),
            state: root.join(name),
            port: free_port(),
            child: None,
        }
    }

    /// `sentrace witness --show-key`: makes the keys and TLS material on first use.
    fn show_key(&self) -> String {
        let out = Command::new(BIN)
            .args(["witness", "--show-key", "--name", &self.name, "--state"])
            .arg(&self.state)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            text.lines().count(),
            2,
            "Ed25519 and ML-DSA-44 vkeys: {text}"
        );
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn log_path(&self) -> PathBuf {
        self.state.with_extension("log")
    }

    fn start(&mut self, log_vkeys: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["witness", "--name", &self.name, "--listen"])
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--state")
            .arg(&self.state)
            .arg("--log")
            .arg(format!("{ORIGIN}={log_vkeys}"));
        let (child, lines) = spawn_until(&mut cmd, log, "sentrace witness: ready");
        self.child = Some(child);
        assert!(
            lines.is_some(),
            "witness {} did not start: {}",
            self.name,
            std::fs::read_to_string(self.log_path()).unwrap_or_default()
        );
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let status = c.wait().unwrap();
            assert!(
                status.success(),
                "witness {} exited with {status}",
                self.name
            );
        }
    }

    fn ca(&self) -> PathBuf {
        self.state.join("tls").join("ca.pem")
    }

    fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    fn config(&self, vkeys: &str) -> String {
        format!(
            "[[seal.witness]]\nname = \"{}\"\nurl = \"{}\"\nvkey = \"{vkeys}\"\nca = \"{}\"\ntimeout_ms = 5000\n",
            self.name,
            self.url(),
            self.ca().display()
        )
    }

    /// POSTs a raw add-checkpoint body: (status, body).
    fn add_checkpoint(&self, body: Vec<u8>) -> (u16, String) {
        let r = client_for(&self.ca())
            .post(format!("{}/add-checkpoint", self.url()))
            .body(body)
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }
}

impl Drop for WitnessProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn post(srv: &Server, token: &str, first: u64, n: u64) {
    let spans: Vec<_> = (first..first + n)
        .map(|i| span(i, "witnessed-op"))
        .collect();
    let resp = srv.post_proto(token, &request("witnessed", spans));
    assert_eq!(resp.status().as_u16(), 200);
}

/// The served checkpoint: (size, full note text).
fn checkpoint(srv: &Server, token: &str) -> Option<(u64, String)> {
    let r = srv.get(token, "/.well-known/sentrace/log/default/checkpoint");
    if r.status().as_u16() != 200 {
        return None;
    }
    let text = r.text().ok()?;
    let size = text.lines().nth(1)?.parse().ok()?;
    Some((size, text))
}

fn cosigned_by(note: &str, witness: &str) -> bool {
    note.contains(&format!("\n\u{2014} {witness} "))
}

fn verify(data: &Path, extra: &[&str]) -> (i32, Value, String) {
    let (code, v) = verify_json(data, extra);
    let text = Command::new(BIN)
        .args(["verify", "--data-dir"])
        .arg(data)
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(text.status.code().unwrap_or(-1), code);
    (code, v, String::from_utf8_lossy(&text.stdout).into_owned())
}

fn metric(srv: &Server, token: &str, line_prefix: &str) -> u64 {
    let text = srv.get(token, "/metrics").text().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// `sentrace proof` of the first trace, then `sentrace verify-proof` with `extra`:
/// (exit code, stdout).
fn proof_and_verify(srv: &Server, log_vkeys: &str, extra: &[&str]) -> (i32, String) {
    let file = srv.dir.path().join("proof.txt");
    let trace = hex(&span(0, "x").trace_id);
    srv.cli(&["proof", &trace, "-o", file.to_str().unwrap()]);
    let out = Command::new(BIN)
        .arg("verify-proof")
        .arg(&file)
        .args(["--key", log_vkeys])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn witnesses_cosign_quorum_is_verified_and_split_views_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let mut w1 = WitnessProc::new(root.path(), "w1.example");
    let mut w2 = WitnessProc::new(root.path(), "w2.example");
    let (vk1, vk2) = (w1.show_key(), w2.show_key());
    // --show-key is stable: the keys are made once.
    assert_eq!(w1.show_key(), vk1);

    let mut srv = Server::new(&format!(
        "[seal]\nwitness_quorum = 2\n[seal.checkpoint]\nevery_secs = 1\nevery_entries = 1\n{}{}",
        w1.config(&vk1),
        w2.config(&vk2)
    ))
    .start();
    let admin = srv.admin_token.clone().unwrap();
    let log_vkeys = srv.cli(&["keys", "show"]).trim().to_string();
    w1.start(&log_vkeys);
    w2.start(&log_vkeys);

    // Ingest; the checkpoint gets both cosignatures off the ack path.
    post(&srv, &admin, 0, 3);
    post(&srv, &admin, 10, 3);
    wait_for("a checkpoint cosigned by both witnesses", || {
        checkpoint(&srv, &admin).is_some_and(|(size, note)| {
            size == 2 && cosigned_by(&note, "w1.example") && cosigned_by(&note, "w2.example")
        })
    });
    wait_for("the quorum metric", || {
        metric(&srv, &admin, "sentrace_witness_quorum_reached_total ") >= 1
    });
    assert!(
        metric(
            &srv,
            &admin,
            "sentrace_witness_requests_total{witness=\"w1.example\",outcome=\"cosigned\"} "
        ) >= 1
    );
    // The witness's own /metrics comes from the typed registry too.
    let text = client_for(&w1.ca())
        .get(format!("{}/metrics", w1.url()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let cosigned = text.lines().find_map(|l| {
        l.strip_prefix("sentrace_witness_requests_total{outcome=\"cosigned\"} ")?
            .parse::<u64>()
            .ok()
    });
    assert!(cosigned.is_some_and(|n| n >= 1), "{text}");
    assert!(text.contains("sentrace_build_info{version=\""), "{text}");
    // Checkpoints were published: the node reports their age.
    let text = srv.get(&admin, "/metrics").text().unwrap();
    assert!(
        text.contains("\nsentrace_checkpoint_age_seconds "),
        "{text}"
    );
    srv.stop();

    let (w1a, w2a) = (format!("--witness={vk1}"), format!("--witness={vk2}"));
    let (code, v, text) = verify(&srv.data, &[&w1a, &w2a, "--quorum", "2"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(
        v["logs"][0]["report"]["witnesses"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let line = text
        .lines()
        .find(|l| l.contains("cosigned by witnesses:"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("w1.example") && line.contains("w2.example"),
        "{line}"
    );

    // Witness 2 goes down: new checkpoints get w1's cosignature only.
    w2.stop();
    srv.launch();
    post(&srv, &admin, 20, 3);
    wait_for("a checkpoint of size 3 cosigned by w1", || {
        checkpoint(&srv, &admin)
            .is_some_and(|(size, note)| size == 3 && cosigned_by(&note, "w1.example"))
    });
    wait_for("a failure counted for w2", || {
        metric(
            &srv,
            &admin,
            "sentrace_witness_requests_total{witness=\"w2.example\",outcome=\"failed\"} ",
        ) >= 1
    });
    let (_, note) = checkpoint(&srv, &admin).unwrap();
    assert!(!cosigned_by(&note, "w2.example"), "{note}");
    // Ingest never waited for the dead witness.
    post(&srv, &admin, 30, 1);
    wait_for("checkpoint 4 cosigned by w1", || {
        checkpoint(&srv, &admin)
            .is_some_and(|(size, note)| size == 4 && cosigned_by(&note, "w1.example"))
    });
    srv.stop();
    let (code, v, text) = verify(&srv.data, &[&w1a, &w2a, "--quorum", "2"]);
    assert_eq!(code, 1, "{v:#}");
    let f = verify_findings(&v);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0]["kind"], "unwitnessed");
    let detail = f[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("no valid cosignature from: w2.example"),
        "{detail}"
    );
    assert!(text.contains("FAIL unwitnessed"), "{text}");
    assert!(text.contains("w2.example"), "{text}");
    let (code, out) = proof_and_verify(&srv, &log_vkeys, &[&w1a, &w2a, "--quorum", "2"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("no valid cosignature from: w2.example"),
        "{out}"
    );
    // One witness is enough when the verifier asks for one.
    let (code, v, _) = verify(&srv.data, &[&w1a, &w2a, "--quorum", "1"]);
    assert_eq!(code, 0, "{v:#}");

    // Split view: another tree of size 4, validly signed with the log key.
    let master = sentrace_store::MasterKey::load(&srv.data.join("master.key")).unwrap();
    let signer = sentrace_server::seal::keys::load(&srv.data, &master).unwrap();
    let forked = Checkpoint::new(Origin::new(ORIGIN).unwrap(), 4, [0x5a; 32]);
    let forked_note = signer.sign(&forked, 1).unwrap().to_text();
    let body = AddCheckpoint {
        old_size: 4,
        proof: vec![],
        checkpoint: forked_note.clone(),
    }
    .encode();
    let (status, text) = w1.add_checkpoint(body);
    assert_eq!((status, text.as_str()), (409, "4\n"));
    // The honest checkpoint of size 4 is still cosigned (the witness state is unchanged).
    let honest = std::fs::read_to_string(
        srv.data
            .join("blocks")
            .join("log")
            .join("default")
            .join("checkpoint"),
    )
    .unwrap();
    let (status, _) = w1.add_checkpoint(
        AddCheckpoint {
            old_size: 4,
            proof: vec![],
            checkpoint: honest,
        }
        .encode(),
    );
    assert_eq!(status, 200);
    // Put the forked checkpoint where a verifier reads it: no quorum, by name.
    std::fs::write(
        srv.data
            .join("blocks")
            .join("log")
            .join("default")
            .join("checkpoint"),
        &forked_note,
    )
    .unwrap();
    let (code, v, _) = verify(&srv.data, &[&w1a, &w2a, "--quorum", "1"]);
    assert_eq!(code, 1, "{v:#}");
    let f = verify_findings(&v);
    assert!(
        f.iter()
            .any(|f| f["kind"] == "unwitnessed"
                && f["detail"].as_str().unwrap().contains("w1.example")),
        "{f:#?}"
    );
    w1.stop();
}
