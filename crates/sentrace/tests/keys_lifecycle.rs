//! Key lifecycle on the real binary: tenant erasure with a signed receipt (nothing of the
//! tenant recoverable, other tenants untouched, verify clean), subject erasure, rotation and
//! rewrap (with crashes at chosen points and a real kill -9), the command KEK provider with
//! a real openssl-based program and its failures, and flipped bytes named by key id.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// Runs `sentrace args… --data-dir D` with `env`.
fn run(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).arg("--data-dir").arg(data);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// `sentrace verify-receipt FILE --key VKEYS`.
fn verify_receipt(receipt: &Path, vkeys: &str) -> Output {
    Command::new(BIN)
        .args([
            "verify-receipt",
            receipt.to_str().unwrap(),
            "--key",
            vkeys.trim(),
        ])
        .output()
        .unwrap()
}

fn err(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected a failure: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A 0600 file of 64 hex characters made by openssl.
fn openssl_key(path: &Path) {
    let out = Command::new("openssl")
        .args(["rand", "-hex", "32"])
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(path, &out.stdout).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Spans carrying values that must never be found in clear.
fn traced(srv: &Server, token: &str, tenant: &str, n: u64) -> (Vec<String>, Vec<String>) {
    let mut ids = Vec::new();
    let mut values = Vec::new();
    for i in 0..n {
        let mut s = span(
            i + tenant.len() as u64 * 1000,
            &format!("{tenant}-operation-{i}"),
        );
        let v = format!("{tenant}-marker-value-{i}-qzx");
        s.attributes.push(kv("order.note", &v));
        values.push(v);
        values.push(format!("{tenant}-operation-{i}"));
        ids.push(hex(&s.trace_id));
        let r = srv.post_proto(token, &request(&format!("{tenant}-svc"), vec![s]));
        assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap_or_default());
    }
    (ids, values)
}

fn status(srv: &Server, token: &str, id: &str) -> (u16, String) {
    let r = srv.get(token, &format!("/api/traces/{id}"));
    let s = r.status().as_u16();
    (s, r.text().unwrap_or_default())
}

fn no_bytes_of(dir: &Path, needles: &[String]) {
    for f in files_under(dir) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        for n in needles {
            assert!(
                !bytes.windows(n.len()).any(|w| w == n.as_bytes()),
                "{n:?} found in {}",
                f.display()
            );
        }
    }
}

fn verify(data: &Path, env: &[(&str, &str)]) -> (i32, serde_json::Value) {
    let out = run(data, &["verify", "--json"], env);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

fn log_of<'a>(v: &'a serde_json::Value, tenant: &str) -> &'a serde_json::Value {
    v["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["tenant"] == tenant)
        .unwrap_or_else(|| panic!("no log of {tenant}: {v}"))
}

/// Every `<tenant>.journal` file under the data directory `dir`, except the read audit's
/// (`audit/tenants/`): its Merkle tree verifies without any key and outlives an erasure on
/// purpose.
fn journals_of(dir: &Path, tenant: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let name = format!("{tenant}.journal");
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.ends_with("audit/tenants") {
            continue;
        }
        if p.is_dir() {
            out.extend(journals_of(&p, tenant));
        } else if p.file_name().is_some_and(|n| n == name.as_str()) {
            out.push(p);
        }
    }
    out
}

#[test]
fn tenant_erase_leaves_nothing_readable_and_others_untouched() {
    let mut srv = Server::new("").start();
    let acme = srv.token("acme", "admin");
    let globex = srv.token("globex", "admin");
    let (acme_ids, acme_values) = traced(&srv, &acme, "acme", 5);
    let (globex_ids, _) = traced(&srv, &globex, "globex", 5);
    assert_eq!(status(&srv, &acme, &acme_ids[0]).0, 200);

    // Erasure refuses to run beside a live server.
    let e = err(&run(&srv.data, &["tenant", "erase", "acme", "--yes"], &[]));
    assert!(e.contains("stop the server"), "{e}");
    srv.stop();
    // Stopping saved both tenants' behavioural baselines in their encrypted journals.
    assert!(!journals_of(&srv.data, "acme").is_empty());

    let receipt_text = ok(&run(&srv.data, &["tenant", "erase", "acme", "--yes"], &[]));
    let receipt: serde_json::Value = serde_json::from_str(&receipt_text).unwrap();
    assert_eq!(receipt["statement"]["tenant"], "acme");
    assert_eq!(receipt["statement"]["type"], "sentrace.tenant-erasure.v1");
    assert!(
        !receipt["statement"]["key_ids"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        receipt["log"]["checkpoint"]
            .as_str()
            .unwrap()
            .contains("acme")
    );

    // The receipt verifies with the node's log key; an altered one does not.
    let vkeys = srv.cli(&["keys", "show"]);
    let rpath = srv.dir.path().join("receipt.json");
    std::fs::write(&rpath, &receipt_text).unwrap();
    let out = verify_receipt(&rpath, &vkeys);
    assert!(ok(&out).contains("receipt OK"));
    std::fs::write(&rpath, receipt_text.replace("\"acme\"", "\"acne\"")).unwrap();
    let out = verify_receipt(&rpath, &vkeys);
    assert_eq!(out.status.code(), Some(1));

    // No byte of the tenant's span values anywhere in the data directory.
    no_bytes_of(&srv.data, &acme_values);
    assert!(!srv.data.join("keys").join("acme.json").exists());
    // Its journals are gone, the other tenant's stay.
    assert_eq!(journals_of(&srv.data, "acme"), Vec::<PathBuf>::new());
    assert!(!journals_of(&srv.data, "globex").is_empty());

    // verify: the erased range is "erased", the other tenant clean, nothing tampered.
    let (code, v) = verify(&srv.data, &[]);
    assert_eq!(code, 0, "{v:#}");
    let a = log_of(&v, "acme");
    assert_eq!(a["report"]["ok"], true, "{a:#}");
    assert!(
        a["report"]["batches_erased"].as_u64().unwrap() >= 5,
        "{a:#}"
    );
    let g = log_of(&v, "globex");
    assert_eq!(g["report"]["ok"], true);
    assert_eq!(g["report"]["batches_checked"], 5, "{g:#}");

    // The API answers "erased" for every read of the tenant; the other tenant reads on.
    srv.launch();
    for id in &acme_ids {
        let (s, body) = status(&srv, &acme, id);
        assert_eq!(s, 410, "{body}");
        assert!(body.contains("erased"), "{body}");
    }
    let r = srv.get(&acme, "/api/services");
    assert_eq!(r.status().as_u16(), 410);
    let r = srv.get(&acme, "/api/traces?service=acme-svc&limit=100");
    assert_eq!(r.status().as_u16(), 410);
    // The tenant takes no new data.
    let r = srv.post_proto(&acme, &request("acme-svc", vec![span(99_999, "late")]));
    assert_ne!(r.status().as_u16(), 200);
    for id in &globex_ids {
        assert_eq!(status(&srv, &globex, id).0, 200);
    }
    srv.stop();
    no_bytes_of(&srv.data, &acme_values);
}

#[test]
fn rotate_and_rewrap_keep_every_span_readable_through_crashes() {
    let mut srv = Server::new("[store]\nflush_interval = \"1h\"\n").start();
    let admin = srv.admin_token.clone().unwrap();
    let (mut ids, _) = traced(&srv, &admin, "default", 3);
    srv.stop();
    let out = ok(&run(
        &srv.data,
        &["keys", "rotate", "--tenant", "default"],
        &[],
    ));
    assert!(out.contains("data key 2"), "{out}");
    srv.launch();
    // Written under data key 2.
    ids.extend(traced(&srv, &admin, "later", 3).0);
    srv.stop();

    // Crashes at chosen points: each prepared file, the commit marker, a rename. Each
    // round moves to a fresh master key; after the crash the same command finishes (or
    // redoes) the job and every span verifies under the new key.
    let keys_dir = srv.dir.path().join("keks");
    std::fs::create_dir(&keys_dir).unwrap();
    let mut current: Option<String> = None;
    for (round, fault) in [1u32, 3, 4, 5].into_iter().enumerate() {
        let next_path = keys_dir.join(format!("kek{round}.hex"));
        openssl_key(&next_path);
        let next = format!("file:{}", next_path.display());
        let cur_env: Vec<(&str, &str)> = current
            .as_deref()
            .map(|c| vec![("SENTRACE_KEK", c)])
            .unwrap_or_default();
        let mut env = cur_env.clone();
        let f = fault.to_string();
        env.push(("SENTRACE_REWRAP_FAULT_AFTER", &f));
        let crashed = run(&srv.data, &["keys", "rewrap", "--to", &next], &env);
        assert!(
            !crashed.status.success(),
            "fault point {fault} was not reached"
        );
        let out = ok(&run(
            &srv.data,
            &["keys", "rewrap", "--to", &next],
            &cur_env,
        ));
        assert!(out.contains("re-wrap"), "{out}");
        let (code, v) = verify(&srv.data, &[("SENTRACE_KEK", &next)]);
        assert_eq!(code, 0, "after a crash at step {fault}: {v:#}");
        let spans: u64 = v["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["report"]["spans_checked"].as_u64().unwrap())
            .sum();
        assert_eq!(spans, 6, "{v:#}");
        current = Some(next);
    }

    // A real kill -9 of a rewrap whose new master key is a slow program.
    let final_key = keys_dir.join("final.hex");
    openssl_key(&final_key);
    let slow = keys_dir.join("slow-kek.sh");
    std::fs::write(
        &slow,
        format!(
            "#!/bin/sh\nsleep 0.3\nexec python3 {} {}\n",
            example().display(),
            final_key.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o700)).unwrap();
    let to = format!("command:{}", slow.display());
    let cur = current.clone().unwrap();
    let mut child = Command::new(BIN)
        .args(["keys", "rewrap", "--to", &to, "--data-dir"])
        .arg(&srv.data)
        .env("SENTRACE_KEK", &cur)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once it has prepared at least one file (mid-way through the prepare phase).
    while !files_under(&srv.data.join("keys"))
        .iter()
        .any(|p| p.to_string_lossy().ends_with(".rewrap"))
    {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    ok(&run(
        &srv.data,
        &["keys", "rewrap", "--to", &to],
        &[("SENTRACE_KEK", &cur)],
    ));

    // The server runs on the command master key and serves every span.
    let cfg = std::fs::read_to_string(&srv.config).unwrap();
    std::fs::write(
        &srv.config,
        format!(
            "{cfg}\n[keys]\nkek = {{ command = [\"{}\"] }}\n",
            slow.display()
        ),
    )
    .unwrap();
    srv.launch();
    for id in &ids {
        assert_eq!(status(&srv, &admin, id).0, 200, "span {id} unreadable");
    }
    srv.stop();
    let list = ok(&run(
        &srv.data,
        &["keys", "list", "--json"],
        &[("SENTRACE_KEK", &to)],
    ));
    let ages: serde_json::Value = serde_json::from_str(&list).unwrap();
    let default = ages
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["tenant"] == "default")
        .unwrap();
    assert_eq!(default["key_id"], 2);
    assert!(default["kek"].as_str().unwrap().starts_with("cmd-"));
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kek-openssl.py")
}

#[test]
fn command_kek_with_openssl_and_its_failures() {
    let kek = tempfile::tempdir().unwrap();
    let key = kek.path().join("kek.hex");
    openssl_key(&key);
    // The configured program is a wrapper the test rewrites to make it fail.
    let prog = kek.path().join("kek.sh");
    let good = format!(
        "#!/bin/sh\nexec python3 {} {}\n",
        example().display(),
        key.display()
    );
    let set = |body: &str| {
        std::fs::write(&prog, body).unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o700)).unwrap();
    };
    set(&good);
    let mut srv = Server::new(&format!(
        "[keys]\nkek = {{ command = [\"{}\"], timeout = \"3s\" }}\nrotate_after = \"30d\"\n",
        prog.display()
    ))
    .start();
    let admin = srv.admin_token.clone().unwrap();
    let (ids, values) = traced(&srv, &admin, "default", 3);
    srv.stop();
    assert!(
        !srv.data.join("master.key").exists(),
        "no local master key is made when a command provides it"
    );
    let file = std::fs::read_to_string(srv.data.join("keys").join("default.json")).unwrap();
    assert!(file.contains("\"kek\": \"cmd-"), "{file}");
    no_bytes_of(&srv.data, &values);
    srv.launch();
    for id in &ids {
        assert_eq!(status(&srv, &admin, id).0, 200);
    }
    srv.stop();

    let env = [("SENTRACE_KEK", &*format!("command:{}", prog.display()))];
    let rotate = ["keys", "rotate", "--tenant", "default"];
    for (body, expect) in [
        (
            "#!/bin/sh\necho 'kms: access denied' >&2\nexit 3\n",
            "exited with",
        ),
        ("#!/bin/sh\nsleep 30\n", "no answer within"),
        // These read their request first: one that answers without reading it is an
        // error of its own (tests/command_kek_sigpipe.rs in sentrace-store), and which of
        // the two is seen first would depend on timing.
        (
            "#!/bin/sh\ncat >/dev/null\necho 'this is not json'\n",
            "is not {\"data\"",
        ),
        (
            "#!/bin/sh\ncat >/dev/null\necho '{\"data\":\"***\"}'\n",
            "not base64",
        ),
    ] {
        set(body);
        let e = err(&run(&srv.data, &rotate, &env));
        assert!(e.contains(expect), "{expect}: {e}");
        assert!(e.contains("of tenant default"), "names the tenant: {e}");
        assert!(
            e.contains("key pseudonym") || e.contains("key dek/"),
            "names the key: {e}"
        );
    }
    // A flipped byte in a wrapped data key: the program's authentication fails, named.
    set(&good);
    let path = srv.data.join("keys").join("default.json");
    let mut f: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let w = f["deks"][0]["wrapped"].as_str().unwrap().to_string();
    let flipped = format!("{}{}", if w.starts_with('0') { "1" } else { "0" }, &w[1..]);
    f["deks"][0]["wrapped"] = flipped.into();
    std::fs::write(&path, serde_json::to_vec(&f).unwrap()).unwrap();
    let e = err(&run(&srv.data, &rotate, &env));
    assert!(e.contains("key dek/1 of tenant default"), "{e}");
    assert!(e.contains("authentication failed"), "{e}");
}

#[test]
fn subject_erasure_and_a_flipped_ciphertext_byte() {
    // Emails become reversible tokens (their originals in the vault).
    let mut srv = tokenizing_server();
    let admin = srv.admin_token.clone().unwrap();
    for (i, who) in ["jane@example.com", "john@example.com"].iter().enumerate() {
        let mut s = span(500 + i as u64, "login");
        s.attributes.push(kv("user.email", who));
        let r = srv.post_proto(&admin, &request("auth", vec![s]));
        assert_eq!(r.status().as_u16(), 200);
    }
    traced(&srv, &admin, "default", 2);
    srv.stop();

    let erase = |v: &str| {
        run(
            &srv.data,
            &["subject", "erase", "--tenant", "default", "--value", v],
            &[],
        )
    };
    let receipt: serde_json::Value = serde_json::from_str(&ok(&erase("jane@example.com"))).unwrap();
    assert_eq!(receipt["statement"]["type"], "sentrace.subject-erasure.v1");
    assert_eq!(receipt["statement"]["tokens"].as_array().unwrap().len(), 1);
    assert!(
        !receipt.to_string().contains("jane"),
        "the receipt names no value"
    );
    // Gone: a second erasure finds nothing; the other subject is still there.
    assert!(err(&erase("jane@example.com")).contains("nothing was erased"));
    let vkeys = srv.cli(&["keys", "show"]);
    let rpath = srv.dir.path().join("subject-receipt.json");
    std::fs::write(&rpath, receipt.to_string()).unwrap();
    let out = verify_receipt(&rpath, &vkeys);
    assert!(ok(&out).contains("receipt OK"));
    // The statement is in the log and verify is clean.
    let (code, v) = verify(&srv.data, &[]);
    assert_eq!(code, 0, "{v:#}");
    ok(&erase("john@example.com"));

    // A flipped byte inside the first WAL record: authentication fails, naming tenant and key.
    let mut segs: Vec<PathBuf> = files_under(&srv.data.join("wal"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    segs.sort();
    let seg = segs.first().unwrap().clone();
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[200] ^= 1;
    std::fs::write(&seg, bytes).unwrap();
    let out = run(&srv.data, &["verify"], &[]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("tenant default under data key 1"), "{text}");
}
