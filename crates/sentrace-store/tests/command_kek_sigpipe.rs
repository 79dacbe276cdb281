//! A command master key program that exits, or closes its standard input, without reading
//! its request: with SIGPIPE at its default action (as in `sentrace verify`, `audit` and
//! `proof`, which reset it so `| head` ends them quietly), the call must fail with an error
//! naming the program's exit and standard error, and the process must live on.
//!
//! Its own test binary: resetting SIGPIPE is process-wide.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use sentrace_store::keys::{CommandKek, Kek, KeyLabel};

fn program(dir: &std::path::Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
    p.display().to_string()
}

#[test]
fn a_program_that_does_not_read_its_request_is_an_error_not_a_sigpipe() {
    sigpipe::reset();
    let dir = tempfile::tempdir().unwrap();
    let label = KeyLabel {
        tenant: "acme",
        key_id: "dek/1",
    };
    // A request larger than a pipe's buffer, so the write cannot complete into the buffer
    // before the program is gone.
    let big = vec![7u8; 256 * 1024];
    for (name, body, expect) in [
        // Closes its standard input at once, then fails with a message.
        (
            "closes-and-fails",
            "#!/bin/sh\nexec 0<&-\nsleep 0.3\necho 'kms: key not found' >&2\nexit 4\n",
            "exited with exit status: 4 (stderr: kms: key not found)",
        ),
        // Exits at once with success and an answer it made up.
        (
            "ignores-request",
            "#!/bin/sh\nexec 0<&-\nsleep 0.3\necho '{\"data\":\"AAAA\"}'\n",
            "closed its standard input before reading the request",
        ),
    ] {
        let kek = CommandKek::new(
            vec![program(dir.path(), name, body)],
            Duration::from_secs(10),
            None,
        );
        // Only a request larger than the pipe's buffer surely meets the closed pipe (a small
        // one may land in the buffer first); the failing program fails either way.
        let sizes: &[&[u8]] = if name == "closes-and-fails" {
            &[b"0123456789abcdef0123456789abcdef", &big]
        } else {
            &[&big]
        };
        for data in sizes {
            let e = kek.unwrap(&label, b"aad", data).unwrap_err().to_string();
            assert!(e.contains(expect), "{name}: {e}");
            assert!(e.contains("dek/1") && e.contains("acme"), "{name}: {e}");
        }
    }
    // And a program that reads its request still works in this process.
    let ok = CommandKek::new(
        vec![program(
            dir.path(),
            "echo",
            "#!/bin/sh\ncat > /dev/null\necho '{\"data\":\"a2V5\"}'\n",
        )],
        Duration::from_secs(10),
        None,
    );
    assert_eq!(&*ok.unwrap(&label, b"aad", &big).unwrap(), b"key");
}
