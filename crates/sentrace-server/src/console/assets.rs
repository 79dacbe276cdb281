//! The console's static files, embedded in the binary.
//!
//! They are plain files under `assets/` (no build step). They are served under
//! `/console/a/<version>/<path>`, where `<version>` is a hash of every file, so they can be
//! cached for a year: a new binary with other files has another version.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// One embedded file.
pub struct Asset {
    /// Path under `assets/`.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
    /// Whether it is served without a session (what the login page needs).
    pub public: bool,
}

const JS: &str = "text/javascript; charset=utf-8";

macro_rules! asset {
    ($path:literal, $ct:expr, $public:expr) => {
        Asset {
            path: $path,
            content_type: $ct,
            bytes: include_bytes!(concat!("assets/", $path)),
            public: $public,
        }
    };
}

/// Every file of the console.
pub static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8", false),
    asset!("login.html", "text/html; charset=utf-8", true),
    asset!("app.css", "text/css; charset=utf-8", true),
    asset!("app.js", JS, false),
    asset!("lib.js", JS, false),
    asset!("views/search.js", JS, false),
    asset!("views/trace.js", JS, false),
    asset!("views/findings.js", JS, false),
    asset!("views/finding.js", JS, false),
    asset!("views/map.js", JS, false),
    asset!("views/exposure.js", JS, false),
    asset!("views/integrity.js", JS, false),
    asset!("views/admin.js", JS, false),
];

/// The placeholder in the HTML files replaced by the asset version.
const VERSION_MARK: &str = "__VERSION__";
/// The placeholder in the login page replaced by a (fixed, server-written) message.
const MESSAGE_MARK: &str = "<!--MESSAGE-->";

/// The file at `path`.
pub fn get(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// The hash of all files (16 hex digits).
pub fn version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        let mut h = Sha256::new();
        for a in ASSETS {
            h.update(a.path.as_bytes());
            h.update((a.bytes.len() as u64).to_be_bytes());
            h.update(a.bytes);
        }
        hex::encode(&h.finalize()[..8])
    })
}

/// The URL prefix of the assets (`/console/a/<version>/`).
pub fn prefix() -> String {
    format!("/console/a/{}/", version())
}

fn html(path: &str) -> String {
    let text = get(path)
        .map(|a| String::from_utf8_lossy(a.bytes).into_owned())
        .unwrap_or_default();
    text.replace(VERSION_MARK, version())
}

/// The shell page (`GET /`).
pub fn shell() -> &'static str {
    static S: OnceLock<String> = OnceLock::new();
    S.get_or_init(|| html("index.html"))
}

/// The placeholder in the login page replaced by the OIDC login links.
const OIDC_MARK: &str = "<!--OIDC-->";

fn escape(m: &str) -> String {
    m.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The login page with `message` (HTML-escaped) shown above the form, and a link per
/// `(index, label)` OIDC provider.
pub fn login_page(message: Option<&str>, oidc: &[(usize, String)]) -> String {
    let mut page = html("login.html");
    if let Some(m) = message {
        page = page.replace(
            MESSAGE_MARK,
            &format!("<p class=\"error\" role=\"alert\">{}</p>", escape(m)),
        );
    }
    let links: String = oidc
        .iter()
        .map(|(i, label)| {
            format!(
                "<p><a class=\"button\" href=\"/console/oidc/{i}/start\">Log in with {}</a></p>",
                escape(label)
            )
        })
        .collect();
    page.replace(OIDC_MARK, &links)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_present_and_within_budget() {
        let total: usize = ASSETS.iter().map(|a| a.bytes.len()).sum();
        assert!(total <= 300 * 1024, "console assets weigh {total} bytes");
        assert_eq!(version().len(), 16);
        assert!(shell().contains(&prefix()));
        assert!(!shell().contains(VERSION_MARK));
        let page = login_page(Some("<bad>"), &[(0, "<IdP>".into())]);
        assert!(page.contains("&lt;bad&gt;") && !page.contains("<bad>"));
        assert!(page.contains("/console/oidc/0/start\">Log in with &lt;IdP&gt;</a>"));
    }

    #[test]
    fn no_inline_script_or_style() {
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".html")) {
            let text = String::from_utf8_lossy(a.bytes);
            assert!(!text.contains("style="), "{} has a style attribute", a.path);
            assert!(!text.contains("<style"), "{} has a style element", a.path);
            for (i, _) in text.match_indices("<script") {
                let tag = &text[i..text[i..].find('>').map_or(text.len(), |e| i + e)];
                assert!(tag.contains("src="), "{} has an inline script", a.path);
            }
            let lower = text.to_ascii_lowercase();
            for (i, _) in lower.match_indices(" on") {
                let name: String = lower[i + 3..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .collect();
                let after = lower[i + 3 + name.len()..].trim_start();
                assert!(
                    name.is_empty() || !after.starts_with('='),
                    "{} has an event attribute on{name}",
                    a.path
                );
            }
        }
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            let text = String::from_utf8_lossy(a.bytes);
            for bad in [
                "innerHTML",
                "outerHTML",
                "eval(",
                "new Function",
                "insertAdjacentHTML",
                "document.write",
            ] {
                assert!(!text.contains(bad), "{} uses {bad}", a.path);
            }
        }
    }
}
