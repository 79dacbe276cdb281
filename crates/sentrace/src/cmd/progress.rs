//! Progress on a terminal for the long client commands (`verify`, `redact`, `scan`,
//! `detect`, `loadgen`): one line on standard error, redrawn at most a few times a second,
//! cleared at the end. When standard error is not a terminal (a pipe, a file, a service
//! log) nothing is drawn at all, so captured output holds only what the command prints.

use std::io::{IsTerminal, Read};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Redraws per second: enough to look alive, cheap for the work it reports on.
const REFRESH_HZ: u8 = 8;

/// A progress line, or nothing when standard error is not a terminal.
pub(crate) struct Progress(Option<ProgressBar>);

impl Progress {
    fn new(len: Option<u64>, template: &str) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar =
            ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr_with_hz(REFRESH_HZ));
        // The templates are constants of this module; a bad one is a programming error
        // caught by the tests, and falls back to the default style rather than failing.
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(250));
        Self(Some(bar))
    }

    /// Bytes of an input of `len` bytes (unknown for a pipe), with a message beside them
    /// (spans so far).
    pub(crate) fn bytes(what: &str, len: Option<u64>) -> Self {
        Self::new(len, &bytes_template(what, len.is_some()))
    }

    /// `len` items (unknown: a counter) of a kind named by `unit`.
    pub(crate) fn items(what: &str, len: Option<u64>, unit: &str) -> Self {
        Self::new(len, &items_template(what, len.is_some(), unit))
    }

    /// Steps of known length each, named in the message before the bar.
    pub(crate) fn steps(what: &str, unit: &str) -> Self {
        Self::new(
            Some(0),
            &format!("{what} {{msg}} [{{bar:30}}] {{pos}}/{{len}} {unit}"),
        )
    }

    /// Whether anything is drawn.
    pub(crate) fn is_drawn(&self) -> bool {
        self.0.is_some()
    }

    /// `n` more done.
    pub(crate) fn inc(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }

    /// Sets how much of which step is done (`verify`: a tenant's stage).
    pub(crate) fn step(&self, label: &str, done: u64, len: u64) {
        if let Some(b) = &self.0 {
            b.set_length(len);
            b.set_position(done);
            if b.message() != label {
                b.set_message(label.to_string());
            }
        }
    }

    /// The text after the bar.
    pub(crate) fn message(&self, text: impl Into<std::borrow::Cow<'static, str>>) {
        if let Some(b) = &self.0 {
            b.set_message(text);
        }
    }

    /// Removes the line (the command's own summary follows).
    pub(crate) fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

fn bytes_template(what: &str, known: bool) -> String {
    if known {
        format!(
            "{what} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}} eta {{eta}} {{msg}}"
        )
    } else {
        format!("{what} {{spinner}} {{bytes}} {{bytes_per_sec}} {{msg}}")
    }
}

fn items_template(what: &str, known: bool, unit: &str) -> String {
    if known {
        format!("{what} [{{bar:30}}] {{pos}}/{{len}} {unit} eta {{eta}} {{msg}}")
    } else {
        format!("{what} {{spinner}} {{pos}} {unit} {{per_sec}} {{msg}}")
    }
}

/// Standard input's size when it is a regular file (`< file`), for a bar with an end.
pub(crate) fn stdin_len() -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        let fd = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
        let meta = std::fs::File::from(fd).metadata().ok()?;
        meta.is_file().then_some(meta.len())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// A reader that reports the bytes read through it.
pub(crate) struct Counting<'a, R> {
    inner: R,
    progress: &'a Progress,
}

impl<'a, R> Counting<'a, R> {
    pub(crate) fn new(inner: R, progress: &'a Progress) -> Self {
        Self { inner, progress }
    }
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.inc(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse() {
        for known in [false, true] {
            for t in [
                bytes_template("x", known),
                items_template("x", known, "spans"),
            ] {
                assert!(ProgressStyle::with_template(&t).is_ok(), "{t}");
            }
        }
    }

    #[test]
    fn counting_reader_passes_bytes_through() {
        let p = Progress(None);
        let mut out = Vec::new();
        Counting::new(&b"hello"[..], &p)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello");
        assert!(!p.is_drawn());
    }
}
