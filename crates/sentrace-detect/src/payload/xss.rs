//! A small HTML scanner for XSS: dangerous tags, event-handler attributes and script URLs.

use crate::normalize::MAX_INPUT_BYTES;

const DANGEROUS_TAGS: &[&str] = &[
    "script",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "meta",
    "base",
    "link",
    "style",
    "svg",
    "math",
    "isindex",
    "xss",
    "import",
    "portal",
    "vmlframe",
    "animate",
    "set",
    "handler",
    "listener",
    "noscript",
    "template",
    "xmp",
    "plaintext",
];

const URL_ATTRS: &[&str] = &[
    "href",
    "src",
    "action",
    "formaction",
    "data",
    "xlink:href",
    "background",
    "lowsrc",
    "dynsrc",
    "poster",
    "codebase",
    "to",
    "values",
    "from",
    "by",
    "srcdoc",
    "content",
    "code",
];

/// Whether `v` (lower-case, whitespace-folded) is a script URL.
pub fn script_url(v: &str) -> bool {
    let v: String = v
        .trim_start_matches(['"', '\'', '`', ' '])
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .take(20)
        .collect();
    v.starts_with("javascript:")
        || v.starts_with("vbscript:")
        || v.starts_with("livescript:")
        || v.starts_with("data:text/html")
        || v.starts_with("data:image/svg")
        || v.starts_with("data:application/x")
}

/// What a decoder that keeps only the low seven bits of each character reads for `c`
/// (`\u{bc}` -> `<`); ASCII characters are unchanged.
fn low7(c: char) -> char {
    char::from_u32(u32::from(c) & 0x7f).unwrap_or(c)
}

/// Markup read by a decoder that drops the high bits of each character: a US-ASCII
/// (7-bit) decoder turns `\u{bc}script\u{be}` into `<script>`, and a UTF-16 code unit
/// `U+043C` truncated to a byte is `<`. Only characters whose low seven bits are markup
/// punctuation are mapped; `None` when there are none.
pub fn seven_bit_view(s: &str) -> Option<String> {
    if s.is_ascii() {
        return None;
    }
    let mut changed = false;
    let out: String = s
        .chars()
        .map(|c| {
            let low = low7(c);
            if !c.is_ascii() && matches!(low, '<' | '>' | '"' | '\'' | '(' | ')' | '/' | '=') {
                changed = true;
                low
            } else {
                c
            }
        })
        .collect();
    changed.then_some(out)
}

/// Markup that runs script: dangerous tags, event-handler attributes, script URLs, a tag
/// left open after a URL attribute by an input that breaks out of the page's markup, and
/// markup written for a 7-bit decoder: read through [`seven_bit_view`], or a whole
/// element in Latin-1 brackets ([`smuggled_element`]). `s` is a whole normalized input.
pub fn detect(s: &str) -> Option<&'static str> {
    detect_in(s, true)
}

/// [`detect`] and [`bare_handler`] for one attribute: `raw` as received, `norm` its
/// normalized form. Normalization keeps only the first [`MAX_INPUT_BYTES`] of a longer
/// input, so an end that only the cut made (an attribute or a quote left open at byte
/// 8192) says nothing about the input's own end.
pub fn detect_value(raw: &str, norm: &str) -> Option<&'static str> {
    let cut = raw.len() > MAX_INPUT_BYTES;
    detect_in(norm, !cut).or_else(|| bare_handler(raw, norm))
}

fn detect_in(s: &str, whole: bool) -> Option<&'static str> {
    detect_markup(s, whole).or_else(|| {
        let v = seven_bit_view(s)?;
        detect_markup(&v, whole)
            .map(|_| "markup in 7-bit encoding")
            .or_else(|| smuggled_element(s))
    })
}

/// Most distinct start tags [`smuggled_element`] remembers (bounds its work).
const MAX_SMUGGLED_TAGS: usize = 32;

/// An element (`<x ...>` and a later `</x`) whose angle brackets all come from Latin-1
/// characters that a 7-bit decoder reads as `<`, `>` and `/` (`¼test¾...¼¯test¾`).
/// Nobody writes a whole element in `¼`/`¾` but to smuggle markup past filters; `¼ cup ¾
/// full` (no tag name) and rich text with ASCII tags that merely contains a `½` stay
/// clean, because the input's own ASCII `<` and `>` do not count here. Only U+0080-U+00FF
/// is mapped: above it every 128th code point reads as a bracket (CJK 值 and 设 are `<`
/// and `>`), so ordinary CJK text around Latin words would pair up. One pass: each start
/// tag's `>` is looked for only up to the next `<`.
fn smuggled_element(s: &str) -> Option<&'static str> {
    let view: String = s
        .chars()
        .map(|c| match c {
            '<' | '>' => ' ',
            '\u{80}'..='\u{ff}' if matches!(low7(c), '<' | '>' | '/') => low7(c),
            c => c,
        })
        .collect();
    let tag_name = |t: &str| -> usize {
        if t.starts_with(|c: char| c.is_ascii_alphabetic()) {
            t.bytes().take_while(|b| b.is_ascii_alphanumeric()).count()
        } else {
            0
        }
    };
    let mut opened: Vec<&str> = Vec::new();
    for (q, _) in view.match_indices('<') {
        let tail = &view[q + 1..];
        if let Some(close) = tail.strip_prefix('/') {
            let name = &close[..tag_name(close)];
            if !name.is_empty() && opened.contains(&name) {
                return Some("element in 7-bit encoding");
            }
            continue;
        }
        let name = &tail[..tag_name(tail)];
        let rest = &tail[name.len()..];
        let closed = rest.starts_with(['>', ' ', '/'])
            && rest.split('<').next().is_some_and(|t| t.contains('>'));
        if !name.is_empty() && closed && opened.len() < MAX_SMUGGLED_TAGS && !opened.contains(&name)
        {
            opened.push(name);
        }
    }
    None
}

/// Event-handler attribute names that browsers run (the names after `on`); a name that
/// starts with one of [`HANDLER_FAMILIES`] counts too (`onmouseover`, `onkeydown`).
const HANDLERS: &[&str] = &[
    "abort",
    "activate",
    "afterprint",
    "afterscriptexecute",
    "afterupdate",
    "auxclick",
    "beforeactivate",
    "beforecopy",
    "beforecut",
    "beforedeactivate",
    "beforeeditfocus",
    "beforeinput",
    "beforepaste",
    "beforeprint",
    "beforescriptexecute",
    "beforetoggle",
    "beforeunload",
    "beforeupdate",
    "begin",
    "blur",
    "bounce",
    "cancel",
    "canplay",
    "canplaythrough",
    "cellchange",
    "change",
    "click",
    "close",
    "command",
    "contextmenu",
    "controlselect",
    "copy",
    "cuechange",
    "cut",
    "dataavailable",
    "datasetchanged",
    "datasetcomplete",
    "dblclick",
    "deactivate",
    "drop",
    "durationchange",
    "emptied",
    "end",
    "ended",
    "error",
    "errorupdate",
    "filterchange",
    "finish",
    "formdata",
    "fullscreenchange",
    "hashchange",
    "help",
    "input",
    "invalid",
    "keydown",
    "keypress",
    "keyup",
    "layoutcomplete",
    "load",
    "loadeddata",
    "loadedmetadata",
    "loadend",
    "loadstart",
    "losecapture",
    "message",
    "move",
    "moveend",
    "movestart",
    "offline",
    "online",
    "pagehide",
    "pageshow",
    "paste",
    "pause",
    "play",
    "playing",
    "popstate",
    "progress",
    "propertychange",
    "ratechange",
    "readystatechange",
    "redo",
    "repeat",
    "reset",
    "resize",
    "resume",
    "reverse",
    "rowenter",
    "rowexit",
    "rowsdelete",
    "rowsinserted",
    "search",
    "seek",
    "seeked",
    "seeking",
    "select",
    "selectionchange",
    "selectstart",
    "show",
    "stalled",
    "start",
    "stop",
    "storage",
    "submit",
    "suspend",
    "timeupdate",
    "toggle",
    "undo",
    "unhandledrejection",
    "unload",
    "volumechange",
    "waiting",
    "wheel",
    "zoom",
];

/// Prefixes of whole families of handler names (`onmouse...`, `onpointer...`).
const HANDLER_FAMILIES: &[&str] = &[
    "animation",
    "drag",
    "focus",
    "mouse",
    "moz",
    "ms",
    "pointer",
    "scroll",
    "touch",
    "transition",
    "webkit",
];

/// Whether `name` (lower case, with its `on`) is an event-handler attribute a browser runs.
pub fn known_handler(name: &str) -> bool {
    name.strip_prefix("on").is_some_and(|n| {
        HANDLERS.contains(&n)
            || HANDLER_FAMILIES
                .iter()
                .any(|f| n.len() > f.len() && n.starts_with(f))
    })
}

/// An input that ends in an event-handler attribute whose value is still to come
/// (`x" onmouseover=`, `  onabcdefgh= `): injected into an unquoted or broken-out
/// attribute, the page's next characters become handler code. The name must follow
/// whitespace or a quote. A name browsers run ([`known_handler`]) may follow any text;
/// any other `on...` name only counts when nothing but separators precede it and the
/// input's own first character is one (`  onabcdefgh= `, not `sort by online=`,
/// `filter=status+online=`, or `+onboarding=`, whose space is a form-encoded `+`). An
/// input longer than [`MAX_INPUT_BYTES`] never counts: normalization cut its end.
pub fn bare_handler(raw: &str, norm: &str) -> Option<&'static str> {
    if raw.len() > MAX_INPUT_BYTES {
        return None;
    }
    let body = norm.strip_suffix('=')?.trim_end();
    let name_start = body
        .char_indices()
        .rev()
        .find(|(_, c)| !c.is_ascii_lowercase())
        .map_or(0, |(p, c)| p + c.len_utf8());
    let name = &body[name_start..];
    if !(5..=52).contains(&name.len()) || !name.starts_with("on") {
        return None;
    }
    let sep = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`');
    let separated = if known_handler(name) {
        match name_start.checked_sub(1) {
            None => crate::normalize::decode(raw).starts_with(sep),
            Some(p) => matches!(body.as_bytes().get(p), Some(b' ' | b'"' | b'\'' | b'`')),
        }
    } else {
        body[..name_start].chars().all(sep)
            && !raw.starts_with('+')
            && crate::normalize::decode(raw).starts_with(sep)
    };
    separated.then_some("event handler attribute left open")
}

/// The markup scan. `whole`: `s` is the input's real end (not cut by normalization), so
/// a tag left open there is dangling markup. Each tag's attributes are read only up to
/// the next `<`, which keeps the scan linear (`<a <a <a ...`).
fn detect_markup(s: &str, whole: bool) -> Option<&'static str> {
    let b = s.as_bytes();
    let mut i = 0;
    if script_url(s) {
        return Some("script url");
    }
    // Dangling markup needs the input to break out of the page's own markup first
    // (`"><a href="x"`); `How do I style <a href="#"` is a question about HTML.
    let may_dangle = whole && s.starts_with(['"', '\'', '`', '>']);
    while let Some(p) = s[i..].find('<') {
        let start = i + p + 1;
        i = start;
        let name_end = b[start..]
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || *c == b':' || *c == b'-' || *c == b'_'))
            .map_or(b.len(), |q| start + q);
        if name_end == start || !b[start].is_ascii_alphabetic() {
            continue;
        }
        let name = &s[start..name_end];
        if DANGEROUS_TAGS.contains(&name.split(':').next_back().unwrap_or(name)) {
            return Some("dangerous tag");
        }
        let next_open = s[name_end..].find('<').map_or(b.len(), |q| name_end + q);
        let closing = s[name_end..next_open].find('>');
        let tag_end = closing.map_or(next_open, |q| name_end + q);
        let attrs = &s[name_end..tag_end];
        let at_end = closing.is_none() && next_open == b.len();
        // attributes: on* handlers and script URLs
        let ab = attrs.as_bytes();
        let attrs_end = attrs.trim_end().len();
        let mut j = 0;
        while j < ab.len() {
            while j < ab.len() && matches!(ab[j], b' ' | b'/' | b'"' | b'\'' | b'`') {
                j += 1;
            }
            let an_start = j;
            while j < ab.len() && !matches!(ab[j], b' ' | b'/' | b'=' | b'>') {
                j += 1;
            }
            let an = &attrs[an_start..j];
            while j < ab.len() && ab[j] == b' ' {
                j += 1;
            }
            if ab.get(j) != Some(&b'=') {
                if j == an_start {
                    j += 1;
                }
                continue;
            }
            j += 1;
            while j < ab.len() && ab[j] == b' ' {
                j += 1;
            }
            let v_start = j;
            let quote = ab
                .get(j)
                .copied()
                .filter(|c| matches!(c, b'"' | b'\'' | b'`'));
            if quote.is_some() {
                j += 1;
            }
            while j < ab.len()
                && (if let Some(q) = quote {
                    ab[j] != q
                } else {
                    ab[j] != b' '
                })
            {
                j += 1;
            }
            let val = &attrs[v_start..j.min(ab.len())];
            if an.len() > 2
                && an.starts_with("on")
                && an[2..].bytes().all(|c| c.is_ascii_alphabetic())
            {
                return Some("event handler attribute");
            }
            if URL_ATTRS.contains(&an) && script_url(val) {
                return Some("script url attribute");
            }
            // Dangling markup: the input stops right after a URL attribute of a tag it
            // never closes (`<a href="x"`), so the page's own following markup is read as
            // more attributes of the injected tag.
            if may_dangle
                && at_end
                && quote.is_some()
                && URL_ATTRS.contains(&an)
                && j + 1 == attrs_end
            {
                return Some("tag left open after a URL attribute");
            }
            if an == "style"
                && (val.contains("expression(")
                    || val.contains("javascript:")
                    || val.contains("behavior:"))
            {
                return Some("script in style");
            }
            j += 1;
        }
        // `<img src=x onerror=...` without a closing `>` is handled above; an unclosed
        // `<a href="javascript:` too. Tags with no attributes are ordinary markup.
        i = name_end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;

    #[test]
    fn positives() {
        for s in [
            "<script>alert(1)</script>",
            "\"><img src=x onerror=alert(1)>",
            "<svg/onload=alert(1)>",
            "<a href=\"jav&#x09;ascript:alert(1)\">x</a>",
            "javascript:alert(document.cookie)",
            "<body onload=alert(1)>",
            "<iframe src=//evil>",
            "%3Cscript%3Ealert(1)%3C/script%3E",
            "<div style=\"width: expression(alert(1))\">",
            "<x onclick=alert(1)>click",
            "<img src=x:x onerror=alert(1)//",
            "\u{bc}script\u{be}alert(1)\u{bc}/script\u{be}",
            "\u{43c}script\u{43e}alert(1)\u{43c}/script\u{43e}",
        ] {
            assert!(detect(&normalize(s)).is_some(), "missed {s:?}");
        }
    }

    #[test]
    fn markup_smuggled_for_a_7_bit_decoder() {
        for s in [
            "\u{bc}test\u{be}test(\u{a2}xss\u{a2})\u{bc}/test\u{be}",
            "\u{bc}b class=x\u{be}hi\u{bc}/b\u{be}",
        ] {
            assert!(detect(&normalize(s)).is_some(), "missed {s:?}");
        }
        for s in [
            "<p>Add \u{bd} cup</p>",
            "\u{bc} cup sugar, \u{be} cup flour </b>",
            "\u{bc}b\u{be} alone",
            "<b>bold</b> \u{bc}",
            // CJK characters whose low seven bits are `<` (值 格 似), `>` (设 放 达) and
            // `/` (是): only Latin-1 brackets count.
            "参数值abc 设置成功，当前值是abc",
            "默认值null 设为空，返回值是null",
            "价格usd 放在这里，价格是usd",
        ] {
            assert!(detect(&normalize(s)).is_none(), "false positive on {s:?}");
        }
    }

    #[test]
    fn tag_left_open_after_a_url_attribute() {
        for s in [
            "\"><a href=\"test\"",
            "'><img src='//evil/x' ",
            "\"><form action=\"/x\"",
            "> <a href=\"test\"",
        ] {
            assert!(detect(&normalize(s)).is_some(), "missed {s:?}");
        }
        // Cut by normalization right after a quote: the input itself goes on.
        let mut long = String::from("\"><p>");
        long.push_str(&"x".repeat(MAX_INPUT_BYTES - long.len() - 34));
        long.push_str("<a href=\"https://example.com/page\">link</a></p>");
        let norm = normalize(&long);
        assert!(norm.ends_with("/page\""), "{:?}", &norm[norm.len() - 20..]);
        assert!(detect(&norm).is_some());
        assert!(detect_value(&long, &norm).is_none(), "cut input");
        for s in [
            "<a href=\"test\">link</a>",
            // Truncated rich text: the quote is still open.
            "<p>see <a href=\"https://example.com/a",
            "<b class=\"x\"",
            "if a <b and c> d",
            // No break out of the page's markup first: HTML quoted in text.
            "<a href=\"test\"",
            "<a href=\"https://example.com/\"",
            "How do I style <a href=\"#\"",
            "x=<img src='//evil/x' ",
        ] {
            assert!(detect(&normalize(s)).is_none(), "false positive on {s:?}");
        }
    }

    #[test]
    fn event_handler_left_open() {
        let bare = |raw: &str| bare_handler(raw, &normalize(raw));
        for s in [
            "  onabcdefgh= ",
            "%20onfoo=",
            "x\" onmouseover=",
            "' onload =",
            "\"onabcdef=",
            // A handler browsers run may follow any text.
            "sort by onclick=",
            "abcd+onmouseover=",
        ] {
            assert!(bare(s).is_some(), "missed {s:?}");
        }
        // Cut by normalization at the `=`: the input itself goes on.
        for name in [" onboarding=", "\" onload="] {
            let mut long = "a".repeat(MAX_INPUT_BYTES - name.len());
            long.push_str(name);
            long.push_str("true");
            assert!(normalize(&long).ends_with('='));
            assert!(bare(&long).is_none(), "cut input ending in {name:?}");
        }
        for s in [
            "onAbCdEfGh=",
            "t=1614308115,v1=5257a869e7ecebeda32affa62cdca3fa51onabcd=",
            "eyJzdWIiOiIxMjM0In0onload=",
            "abc/onabcdef=",
            " on=",
            " onion",
            " online=3",
            "turn on= off",
            // Not a handler name, and text before it.
            "sort by online=",
            "filter=status+online=",
            "abcd+onetwo=",
            "+onboarding=",
        ] {
            assert!(bare(s).is_none(), "false positive on {s:?}");
        }
    }

    #[test]
    fn negatives() {
        for s in [
            "<b>bold</b> and <i>italic</i>",
            "привет мир, ¼ cup sugar ¾ full",
            "Prix: 5€ ½ tarif",
            "a < b and c > d",
            "x<y",
            "<p class=\"note\">Hello</p>",
            "See <https://example.com/a?b=c>",
            "I <3 cats",
            "onion=yes",
            "<a href=\"https://example.com\">link</a>",
            "**markdown** [link](http://x.org)",
            "java script is fun",
        ] {
            assert!(detect(&normalize(s)).is_none(), "false positive on {s:?}");
        }
    }
}
