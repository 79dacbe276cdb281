//! Stopping `sentrace serve` for a rolling restart: on SIGTERM `/readyz` answers 503
//! `draining` at once while the listeners keep serving for `[server] drain_grace` (a second
//! signal ends the wait), and the buffered spans are flushed into blocks before the process
//! exits (`[store] shutdown_flush_timeout`), so nothing is left only in the WAL. When the
//! flush cannot finish (the S3 server is down) the node says so, exits, and the WAL still
//! holds every acknowledged span for the next start.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::s3::*;
use common::*;

fn ingest(srv: &Server, token: &str, base: u64, n: u64) -> Vec<String> {
    let spans: Vec<_> = (0..n).map(|i| span(base + i, "op")).collect();
    let ids = spans.iter().map(|s| hex(&s.trace_id)).collect();
    let resp = srv.post_proto(token, &request("stopper", spans));
    assert_eq!(resp.status().as_u16(), 200, "{}", resp.text().unwrap());
    ids
}

/// The span count of the last "WAL replayed" line of the server's log.
fn last_replayed_spans(log: &str) -> u64 {
    let line = log
        .lines()
        .rfind(|l| l.contains("store opened; WAL replayed"))
        .unwrap_or_else(|| panic!("no start in the log:\n{log}"));
    let at = line.find(" spans=").unwrap() + " spans=".len();
    line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

fn sigterm(srv: &Server) {
    let ok = Command::new("kill")
        .arg(srv.pid().to_string())
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn sigterm_flushes_buffered_spans_into_blocks() {
    let mut srv =
        Server::new("[store]\nflush_interval = \"1h\"\nshutdown_flush_timeout = \"60s\"\n");
    srv.launch();
    let admin = srv.admin_token.clone().unwrap();
    let mut ids = ingest(&srv, &admin, 0, 30);
    ids.extend(ingest(&srv, &admin, 1000, 30));
    // Nothing is flushed while it runs (a one-hour interval).
    assert_eq!(flushed_spans(&srv.log()), 0);
    srv.stop();
    let log = srv.log();
    assert!(log.contains("flushed before exit"), "log:\n{log}");
    assert_eq!(flushed_spans(&log), 60, "log:\n{log}");
    let blocks: Vec<_> = files_under(&srv.data.join("blocks"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert!(!blocks.is_empty(), "no block after the stop");

    // The next start replays nothing: every span is read from the blocks.
    srv.launch();
    assert_eq!(last_replayed_spans(&srv.log()), 0, "log:\n{}", srv.log());
    read_all(&srv, &admin, &ids, "after a flushing stop");
    srv.stop();
    let (code, v) = verify_json(&srv.data, &[]);
    assert_eq!(code, 0, "{v:#}");
}

#[test]
fn a_flush_that_cannot_finish_leaves_the_spans_in_the_wal() {
    let mut s3 = S3Server::start();
    let mut srv = Server::new(&format!(
        "[store]\nurl = \"s3://{BUCKET}/stop\"\nflush_interval = \"1h\"\nshutdown_flush_timeout = \"3s\"\n"
    ));
    srv.env = s3.env();
    srv.launch();
    let admin = srv.admin_token.clone().unwrap();
    let ids = ingest(&srv, &admin, 0, 40);
    s3.stop();
    srv.stop();
    let log = srv.log();
    assert!(
        log.contains("the flush before exit did not finish")
            || log.contains("the flush before exit failed"),
        "the node did not say its flush failed; log:\n{log}"
    );
    assert_eq!(flushed_spans(&log), 0, "log:\n{log}");

    // The store is back: the WAL replays every acknowledged span.
    s3.restart();
    srv.launch();
    assert_eq!(last_replayed_spans(&srv.log()), 40, "log:\n{}", srv.log());
    read_all(&srv, &admin, &ids, "after a failed flush at stop");
}

#[test]
fn sigterm_drains_readyz_while_the_listeners_keep_serving() {
    // A long grace, ended by a second signal: nothing here depends on timing.
    let mut srv = Server::new("[server]\ndrain_grace = \"10m\"\n");
    srv.launch();
    let admin = srv.admin_token.clone().unwrap();
    let client = srv.client();
    let readyz = || {
        let r = client.get(srv.query_url("/readyz")).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert_eq!(readyz(), (200, "ready\n".to_string()));

    sigterm(&srv);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = readyz();
        if status == 503 {
            assert_eq!(body, "draining\n");
            break;
        }
        assert!(Instant::now() < deadline, "/readyz never said draining");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Still serving while draining: ingest is acknowledged and reads answer.
    let ids = ingest(&srv, &admin, 5000, 5);
    read_all(&srv, &admin, &ids, "while draining");
    assert_eq!(readyz().0, 503);
    assert!(srv.log().contains("draining"), "log:\n{}", srv.log());

    // The second signal ends the drain; the process stops cleanly.
    srv.stop();
    srv.launch();
    read_all(&srv, &admin, &ids, "after the restart");
}
