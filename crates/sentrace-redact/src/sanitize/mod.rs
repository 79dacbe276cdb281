//! Sanitizers that keep the structure of what they clean: URLs keep scheme, host and path;
//! SQL keeps its shape with literals as `?`; headers keep their scheme and cookie names;
//! JSON bodies keep their shape with sensitive values replaced; free text keeps everything
//! but the detected spans.
//!
//! Sanitizers write into an output buffer and call back into a [`Sink`] (the minimizer)
//! for every value they isolate, so the policy decides what happens to each.

pub mod body;
pub mod header;
pub mod sql;
pub mod url;

use crate::detect::Context;
use crate::keys::KeyClass;
use crate::kind::Kind;

/// What happened to a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The (possibly minimized) value was appended to the output.
    Keep,
    /// The value's holder must be removed; nothing was appended.
    Drop,
}

/// The minimizer, as seen by a sanitizer.
pub trait Sink {
    /// Minimizes a whole value of a known kind (appends the result).
    fn value(&mut self, kind: Kind, v: &str, out: &mut String) -> Step;
    /// Minimizes free text: only the detected spans (appends the result).
    fn text(&mut self, v: &str, ctx: Context, out: &mut String) -> Step;
    /// Classifies a raw key with the policy's and the built-in key-name rules.
    fn classify(&mut self, key: &str) -> KeyClass;
    /// Whether SQL literals are to be replaced.
    fn sanitize_sql(&self) -> bool;
    /// Counts one SQL literal replaced by `?`.
    fn sql_literal(&mut self);
}

/// Minimizes `v` according to what its key says about it.
pub fn by_class(sink: &mut dyn Sink, class: KeyClass, v: &str, out: &mut String) -> Step {
    match class {
        KeyClass::Plain => sink.text(v, Context::default(), out),
        KeyClass::Infra => sink.text(
            v,
            Context {
                infra_key: true,
                ..Context::default()
            },
            out,
        ),
        KeyClass::Sensitive(kind) => sink.value(kind, v, out),
        KeyClass::Authorization => header::authorization(sink, v, out),
        KeyClass::Cookie => header::cookie(sink, v, out),
        KeyClass::SetCookie => header::set_cookie(sink, v, out),
        KeyClass::Url => url::url(sink, v, out),
        KeyClass::Query => url::query(sink, v, out),
        KeyClass::Path => url::path(sink, v, out),
        KeyClass::Sql if sink.sanitize_sql() => {
            // Literals first, then the detectors over what remains (identifiers and
            // comments can still hold values).
            let mut shaped = String::with_capacity(v.len());
            sql::sql(sink, v, &mut shaped);
            sink.text(&shaped, Context::default(), out)
        }
        KeyClass::Sql => sink.text(v, Context::default(), out),
        KeyClass::Body => body::body(sink, v, out),
    }
}
