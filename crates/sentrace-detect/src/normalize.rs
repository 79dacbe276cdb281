//! Input normalization before matching: repeated URL decoding, HTML entities, unicode and
//! hex escapes, case folding and whitespace folding. SQL comments are handled by the SQL
//! tokenizer, which sees them as tokens.

/// Longest input inspected, in bytes; the rest is ignored (an attacker padding past it
/// gains nothing that the per-value split of `payload::extract` does not already cut).
pub const MAX_INPUT_BYTES: usize = 8 * 1024;
/// Decoding rounds: `%2527` takes two rounds to become `'`.
pub const MAX_DECODE_ROUNDS: usize = 3;

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex_num(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |acc, b| {
        Some(acc.checked_mul(16)? + u32::from(hex_val(*b)?))
    })
}

fn push_char(out: &mut Vec<u8>, cp: u32) {
    let c = char::from_u32(cp).unwrap_or('\u{fffd}');
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// One round of URL decoding (`%XX`, `%uXXXX`, `+`). Returns `None` when nothing changed.
pub fn url_decode_once(s: &str) -> Option<String> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return None;
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let mut changed = false;
    while i < b.len() {
        match b[i] {
            b'%' => {
                if let Some(v) = b.get(i + 1..i + 3).and_then(hex_num) {
                    out.push(v as u8);
                    i += 3;
                    changed = true;
                    continue;
                }
                if matches!(b.get(i + 1), Some(b'u' | b'U'))
                    && let Some(v) = b.get(i + 2..i + 6).and_then(hex_num)
                {
                    push_char(&mut out, v);
                    i += 6;
                    changed = true;
                    continue;
                }
                out.push(b'%');
            }
            b'+' => {
                out.push(b' ');
                changed = true;
            }
            c => out.push(c),
        }
        i += 1;
    }
    changed.then(|| bytes_to_text(&out))
}

/// Length of the UTF-8 sequence a lead byte starts (1 for bytes that cannot lead one).
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 1,
    }
}

/// Length of the sequence a lead byte announces in the original UTF-8 of RFC 2279, which
/// allowed five- and six-byte forms (1 for bytes that cannot lead one). Decoders that
/// accepted overlong forms read these lengths.
fn lenient_len(lead: u8) -> usize {
    match lead {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        0xf8..=0xfb => 5,
        0xfc..=0xfd => 6,
        _ => 1,
    }
}

/// Smallest code point that needs a sequence of each length; a smaller one in that many
/// bytes is an overlong form.
const MIN_CODE_POINT: [u32; 7] = [0, 0, 0x80, 0x800, 0x1_0000, 0x20_0000, 0x400_0000];

/// The code point and length of an overlong sequence at the start of `b`: two to six
/// bytes (`C0 AE`, `E0 80 AE`, `F0 80 80 AE`, `F8 80 80 80 AE`, `FC 80 80 80 80 AE` all
/// spell `.`), or the two-byte form with a second byte that lacks its continuation bits
/// (`C0 2E`, `C1 1C`), which IIS read as `.`, `/` or `\\` (only those three are taken).
fn overlong(b: &[u8]) -> Option<(u32, usize)> {
    let lead = *b.first()?;
    let n = lenient_len(lead);
    if n > 1
        && let Some(tail) = b.get(1..n)
        && tail.iter().all(|c| c & 0xc0 == 0x80)
    {
        let cp = tail.iter().fold(u32::from(lead & (0x7f >> n)), |acc, c| {
            (acc << 6) | u32::from(c & 0x3f)
        });
        return (cp < MIN_CODE_POINT[n]).then_some((cp, n));
    }
    if matches!(lead, 0xc0 | 0xc1)
        && let Some(&c) = b.get(1)
        && c < 0x80
    {
        let cp = (u32::from(lead & 0x1f) << 6) | u32::from(c & 0x3f);
        return matches!(cp, 0x2e | 0x2f | 0x5c).then_some((cp, 2));
    }
    None
}

/// Text of URL-decoded bytes. Valid UTF-8 is kept; overlong UTF-8 forms of any length
/// (`C0 AF` for `/`, `E0 80 AE` and `F0 80 80 AE` for `.`; RFC 3629 §3 forbids them, and
/// decoders that accepted them were the classic path-traversal bypass, CVE-2000-0884)
/// are decoded to the character they spell (see [`overlong`]); any other stray byte is
/// read as ISO 8859-1, so that `%BC` stays visible as `¼` instead of becoming U+FFFD (a
/// 7-bit decoder reads it as `<`).
pub fn bytes_to_text(b: &[u8]) -> String {
    if let Ok(s) = std::str::from_utf8(b) {
        return s.to_string();
    }
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let len = utf8_len(b[i]);
        if let Some(Ok(s)) = b.get(i..i + len).map(std::str::from_utf8) {
            out.push_str(s);
            i += len;
            continue;
        }
        if let Some((cp, n)) = overlong(&b[i..]) {
            out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
            i += n;
            continue;
        }
        out.push(char::from(b[i]));
        i += 1;
    }
    out
}

fn named_entity(name: &str) -> Option<char> {
    Some(match name {
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "amp" => '&',
        "nbsp" => ' ',
        "colon" => ':',
        "lpar" => '(',
        "rpar" => ')',
        "sol" => '/',
        "bsol" => '\\',
        "semi" => ';',
        "tab" => '\t',
        "newline" => '\n',
        "equals" => '=',
        "period" => '.',
        "grave" => '`',
        "num" => '#',
        "excl" => '!',
        "percnt" => '%',
        "lowbar" => '_',
        "plus" => '+',
        "comma" => ',',
        "dollar" => '$',
        "lbrace" | "lcub" => '{',
        "rbrace" | "rcub" => '}',
        "lsqb" | "lbrack" => '[',
        "rsqb" | "rbrack" => ']',
        _ => return None,
    })
}

/// Decodes HTML character references (`&lt;`, `&#60;`, `&#x3c;`, with or without `;`).
/// Returns `None` when nothing changed.
pub fn html_decode(s: &str) -> Option<String> {
    if !s.contains('&') {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut changed = false;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos + 1..];
        let (decoded, used) = decode_entity(tail);
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[used..];
                changed = true;
            }
            None => {
                out.push('&');
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    changed.then_some(out)
}

fn decode_entity(tail: &str) -> (Option<char>, usize) {
    let b = tail.as_bytes();
    if b.first() == Some(&b'#') {
        let (hex, start) = match b.get(1) {
            Some(b'x' | b'X') => (true, 2),
            _ => (false, 1),
        };
        let mut end = start;
        while end < b.len()
            && end - start < 8
            && (if hex {
                b[end].is_ascii_hexdigit()
            } else {
                b[end].is_ascii_digit()
            })
        {
            end += 1;
        }
        if end == start {
            return (None, 0);
        }
        let digits = &tail[start..end];
        let cp = if hex {
            u32::from_str_radix(digits, 16).ok()
        } else {
            digits.parse::<u32>().ok()
        };
        let used = if b.get(end) == Some(&b';') {
            end + 1
        } else {
            end
        };
        return (cp.and_then(char::from_u32), used);
    }
    let end = b
        .iter()
        .take(10)
        .position(|c| !c.is_ascii_alphabetic())
        .unwrap_or(b.len().min(10));
    if end == 0 {
        return (None, 0);
    }
    let name = tail[..end].to_ascii_lowercase();
    match named_entity(&name) {
        Some(c) => (
            Some(c),
            if b.get(end) == Some(&b';') {
                end + 1
            } else {
                end
            },
        ),
        None => (None, 0),
    }
}

/// Decodes `\uXXXX`, `\u{X..}` and `\xNN` escapes (JavaScript, JSON, Python, shells).
/// Returns `None` when nothing changed.
pub fn unescape(s: &str) -> Option<String> {
    if !s.contains('\\') {
        return None;
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let mut changed = false;
    while i < b.len() {
        if b[i] == b'\\' {
            match b.get(i + 1) {
                Some(b'u' | b'U') => {
                    if let Some(v) = b.get(i + 2..i + 6).and_then(hex_num) {
                        push_char(&mut out, v);
                        i += 6;
                        changed = true;
                        continue;
                    }
                    if b.get(i + 2) == Some(&b'{')
                        && let Some(close) = b[i + 3..].iter().take(7).position(|c| *c == b'}')
                        && let Some(v) = hex_num(&b[i + 3..i + 3 + close])
                    {
                        push_char(&mut out, v);
                        i += 4 + close;
                        changed = true;
                        continue;
                    }
                }
                Some(b'x' | b'X') => {
                    if let Some(v) = b.get(i + 2..i + 4).and_then(hex_num) {
                        out.push(v as u8);
                        i += 4;
                        changed = true;
                        continue;
                    }
                }
                _ => {}
            }
        }
        out.push(b[i]);
        i += 1;
    }
    changed.then(|| bytes_to_text(&out))
}

/// Decodes until a fixed point (at most [`MAX_DECODE_ROUNDS`] rounds), without case or
/// whitespace folding.
pub fn decode(input: &str) -> String {
    let mut cur = truncate(input, MAX_INPUT_BYTES).to_string();
    for _ in 0..MAX_DECODE_ROUNDS {
        let mut changed = false;
        if let Some(d) = url_decode_once(&cur) {
            cur = d;
            changed = true;
        }
        if let Some(d) = html_decode(&cur) {
            cur = d;
            changed = true;
        }
        if let Some(d) = unescape(&cur) {
            cur = d;
            changed = true;
        }
        if !changed {
            break;
        }
    }
    cur
}

/// [`fold`] of ASCII text, a byte at a time.
fn fold_ascii(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut space = false;
    for &b in s.as_bytes() {
        if b.is_ascii_whitespace() || b.is_ascii_control() || b == 0x0b {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(b' ');
        }
        space = false;
        out.push(b.to_ascii_lowercase());
    }
    // Only ASCII bytes were pushed.
    String::from_utf8(out).unwrap_or_default()
}

/// [`decode`] without a copy when there is nothing to decode (no `%`, `+`, `&` or `\\`,
/// and within [`MAX_INPUT_BYTES`]): the common case.
pub fn decode_cow(input: &str) -> std::borrow::Cow<'_, str> {
    if input.len() <= MAX_INPUT_BYTES
        && !input
            .bytes()
            .any(|b| matches!(b, b'%' | b'+' | b'&' | b'\\'))
    {
        std::borrow::Cow::Borrowed(input)
    } else {
        std::borrow::Cow::Owned(decode(input))
    }
}

/// [`fold`] without a copy when the text is already folded: ASCII without upper case or
/// control characters, single spaces only between words.
pub fn fold_cow(s: &str) -> std::borrow::Cow<'_, str> {
    let b = s.as_bytes();
    let folded = b.first() != Some(&b' ')
        && b.last() != Some(&b' ')
        && b.iter()
            .all(|c| (0x21..0x7f).contains(c) && !c.is_ascii_uppercase() || *c == b' ')
        && !s.contains("  ");
    if folded {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(fold(s))
    }
}

/// Full normalization: [`decode`], then lower case, control characters and every run of
/// whitespace folded to one space, and the ends trimmed.
pub fn normalize(input: &str) -> String {
    fold(&decode(input))
}

/// Lower-cases and folds whitespace and control characters (no decoding).
pub fn fold(s: &str) -> String {
    if s.is_ascii() {
        return fold_ascii(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() || c.is_control() || c == '\u{fffd}' {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        if let Some(a) = compat_ascii(c) {
            out.push(a);
            continue;
        }
        for l in c.to_lowercase() {
            out.push(l);
        }
    }
    out
}

/// The ASCII character a compatibility form stands for (what NFKC, and so IDNA host
/// mapping, makes of it): fullwidth forms (`＜`, `ｓ`), circled and parenthesized digits
/// and letters (`①`, `ⓛ`, `Ⓛ`, `⓪`). Lower case.
pub fn compat_ascii(c: char) -> Option<char> {
    let cp = u32::from(c);
    let ascii = |v: u32| char::from_u32(v).map(|a| a.to_ascii_lowercase());
    match cp {
        // Fullwidth ASCII variants U+FF01..U+FF5E map to U+0021..U+007E.
        0xff01..=0xff5e => ascii(cp - 0xff01 + 0x21),
        // Circled digits one to nine, U+2460..U+2468.
        0x2460..=0x2468 => ascii(cp - 0x2460 + u32::from(b'1')),
        // Parenthesized digits one to nine, U+2474..U+247C.
        0x2474..=0x247c => ascii(cp - 0x2474 + u32::from(b'1')),
        // Digits with full stop one to nine, U+2488..U+2490.
        0x2488..=0x2490 => ascii(cp - 0x2488 + u32::from(b'1')),
        // Circled capital and small letters, U+24B6..U+24E9.
        0x24b6..=0x24cf => ascii(cp - 0x24b6 + u32::from(b'a')),
        0x24d0..=0x24e9 => ascii(cp - 0x24d0 + u32::from(b'a')),
        // Circled digit zero, U+24EA; negative circled digit zero, U+24FF.
        0x24ea | 0x24ff => Some('0'),
        // Dingbat circled digits one to nine (three styles), U+2776..U+2792.
        0x2776..=0x277e => ascii(cp - 0x2776 + u32::from(b'1')),
        0x2780..=0x2788 => ascii(cp - 0x2780 + u32::from(b'1')),
        0x278a..=0x2792 => ascii(cp - 0x278a + u32::from(b'1')),
        // Ideographic full stop, as IDNA treats it in host names.
        0x3002 => Some('.'),
        // Division slash and set minus: IIS's `%u` decoder read them as `/` and `\\`
        // (`..%u2215`, `..%u2216`), as path-traversal lists still send them.
        0x2215 => Some('/'),
        0x2216 => Some('\\'),
        _ => None,
    }
}

/// Shell glob bracket expressions that stand for one known character (`/[e]tc`,
/// `/[e///]tc`, `pa[s]swd`) become that character; one that stands for any character
/// (`[?]`, `[!x]`) becomes `?`. Longer classes (`[details]`, `[1,2]`) stay.
fn collapse_brackets(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'['
            && let Some(len) = b[i + 1..].iter().take(12).position(|c| *c == b']')
        {
            let inner = &s[i + 1..i + 1 + len];
            let allowed = inner.bytes().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, b'/' | b'?' | b'!' | b'^' | b'*')
            });
            let mut alnum = inner.bytes().filter(u8::is_ascii_alphanumeric);
            let first = alnum.next();
            let one_char = alnum.all(|c| Some(c) == first);
            if allowed && !inner.is_empty() && one_char {
                match first {
                    Some(c) if !inner.starts_with(['!', '^']) => out.push(char::from(c)),
                    _ => out.push('?'),
                }
                i += len + 2;
                continue;
            }
        }
        let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    out
}

/// Longest braced name [`braced_prefix_var`] drops.
const MAX_BRACED_VAR: usize = 16;

/// The end of `${name}` at `b[i..]` when it is glued to the front of a word
/// (`${x}cat`, `${gcc7.4}gcc7.4`): an expansion that an attacker puts there to hide the
/// command word, since no program name starts with a variable. `${home}/x` and
/// `${jndi:...}` stay.
fn braced_prefix_var(b: &[u8], i: usize) -> Option<usize> {
    let body = b.get(i + 2..)?;
    let len = body
        .iter()
        .take(MAX_BRACED_VAR + 1)
        .position(|c| *c == b'}')?;
    let name = &body[..len];
    let is_name = name
        .first()
        .is_some_and(|c| c.is_ascii_lowercase() || *c == b'_')
        && name
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.'));
    let end = i + 2 + len + 1;
    let glued = b.get(end).is_some_and(u8::is_ascii_alphabetic);
    (is_name && glued).then_some(end)
}

/// Removes expansions of short, unset-looking variables that an attacker puts inside or
/// after a command word so that it does not read as one: `$u` in `cat$u /etc$u/passwd`,
/// `$$` and `$-` in `una$$me`, `c$-at`, a lone `$a ` before a word (`|$u wget`), and a
/// braced `${name}` of up to [`MAX_BRACED_VAR`] characters glued to the front of a word
/// (`${x}cat`, see [`braced_prefix_var`]). A bare name is one to three letters; longer
/// bare names (`$HOME`) stay.
fn drop_empty_vars(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('$') {
        return std::borrow::Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        let in_word = i > 0 && b[i - 1].is_ascii_alphanumeric();
        let next = b.get(i + 1).copied();
        let end = match next {
            Some(b'$' | b'-') if in_word => Some(i + 2),
            Some(b'{') => braced_prefix_var(b, i),
            Some(c) if c.is_ascii_lowercase() || c == b'_' => {
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_lowercase() || b[j] == b'_') {
                    j += 1;
                }
                let after = b.get(j).copied();
                let short = j - i - 1 <= 3;
                let ends_word = after.is_none_or(|c| matches!(c, b' ' | b'/' | b';' | b'|' | b'&'));
                (short && (in_word || ends_word) && !after.is_some_and(|c| c.is_ascii_digit()))
                    .then_some(j)
            }
            _ => None,
        };
        match end {
            Some(e) => {
                out.push_str(&s[last..i]);
                i = e;
                last = e;
            }
            None => i += 1,
        }
    }
    if last == 0 {
        return std::borrow::Cow::Borrowed(s);
    }
    out.push_str(&s[last..]);
    std::borrow::Cow::Owned(out)
}

/// The normalized input as a shell would see it: quotes, backslashes, `^`, empty command
/// substitutions (` `` `, `$()`, `<()`), `$@`, short unset variables that split a
/// command word and `${name}` glued to the front of one are removed and `$IFS` becomes a
/// space (`c'a't$IFS/etc` becomes `cat /etc`). Returns `None` when the view equals the input.
pub fn shell_view(norm: &str) -> Option<String> {
    if !norm
        .bytes()
        .any(|b| matches!(b, b'\'' | b'"' | b'\\' | b'^' | b'$' | b'[' | b'`'))
        && !norm.contains("()")
    {
        return None;
    }
    /// Shell constructs that expand to a space or to nothing, replaced in this order.
    const EMPTY: &[(&str, &str)] = &[
        ("${ifs}", " "),
        ("$ifs", " "),
        ("${@}", ""),
        ("$@", ""),
        ("$*", ""),
        ("```", " "),
        ("``", ""),
        ("$()", ""),
        (">()", ""),
        ("<()", ""),
        ("$!", ""),
        ("$_", ""),
        ("$?", ""),
    ];
    let mut s = norm.to_string();
    for (from, to) in EMPTY {
        // `replace` allocates even when there is nothing to replace.
        if s.contains(from) {
            s = s.replace(from, to);
        }
    }
    let s = drop_empty_vars(&s).into_owned();
    let s = if s.contains('[') {
        collapse_brackets(&s)
    } else {
        s
    };
    let out: String = s
        .chars()
        .filter(|c| !matches!(c, '\'' | '"' | '\\' | '^'))
        .collect();
    (out != norm).then_some(out)
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_url_decoding() {
        assert_eq!(normalize("%2527%2520OR%25201%253D1"), "' or 1=1");
        assert_eq!(normalize("a+b%20C"), "a b c");
        assert_eq!(normalize("%u003cscript%u003e"), "<script>");
        assert_eq!(normalize("100%"), "100%");
        assert_eq!(normalize("%zz"), "%zz");
    }

    #[test]
    fn entities_and_escapes() {
        assert_eq!(
            normalize("&lt;svg onload&#x3d;alert(1)&gt;"),
            "<svg onload=alert(1)>"
        );
        assert_eq!(normalize("&#60&#115cript"), "<script");
        assert_eq!(normalize("Tom &amp; Jerry"), "tom & jerry");
        assert_eq!(normalize("AT&T"), "at&t");
        assert_eq!(normalize("\\u0027 or \\x31=1"), "' or 1=1");
    }

    #[test]
    fn borrowed_fast_paths_agree() {
        for s in [
            "plain words",
            "Mixed Case",
            "  spaced  ",
            "a%20b",
            "x+y",
            "a&amp;b",
            "tab\there",
            "é",
            "/api/v1/orders",
            "\\u0027",
            "",
        ] {
            assert_eq!(decode_cow(s), decode(s), "{s:?}");
            assert_eq!(fold_cow(s), fold(s), "{s:?}");
            assert_eq!(fold_cow(&decode_cow(s)), normalize(s), "{s:?}");
        }
    }

    #[test]
    fn ascii_fold_matches_char_fold() {
        let chars = |s: &str| -> String {
            let mut out = String::new();
            let mut space = false;
            for c in s.chars() {
                if c.is_whitespace() || c.is_control() {
                    space = true;
                    continue;
                }
                if space && !out.is_empty() {
                    out.push(' ');
                }
                space = false;
                out.extend(c.to_lowercase());
            }
            out
        };
        let all: String = (0u8..0x80).map(char::from).collect();
        for s in [
            all.as_str(),
            " A\x0bB\x1c\x7fC  ",
            "\t\n",
            "Mozilla/5.0 (X11)",
        ] {
            assert_eq!(fold(s), chars(s), "{s:?}");
        }
    }

    #[test]
    fn overlong_utf8_and_stray_bytes() {
        assert_eq!(normalize("..%c0%af..%c0%afetc"), "../../etc");
        assert_eq!(normalize("%e0%80%ae%e0%80%ae/"), "../");
        assert_eq!(normalize("%c1%9c"), "\\");
        assert_eq!(normalize("%bcscript%be"), "¼script¾");
        assert_eq!(normalize("\\xbcscript\\xbe"), "¼script¾");
        // Valid UTF-8 is unchanged.
        assert_eq!(normalize("caf%C3%A9"), "café");
    }

    #[test]
    fn whitespace_and_case() {
        assert_eq!(normalize("  UNION\t\n  SELECT  "), "union select");
        assert_eq!(normalize("a%00b"), "a b");
    }

    #[test]
    fn shell_view_removes_quoting() {
        assert_eq!(
            shell_view("c'a't$ifs/etc/pass\\wd").as_deref(),
            Some("cat /etc/passwd")
        );
        assert_eq!(shell_view("plain"), None);
        assert_eq!(
            shell_view("cat /[e///]tc/[p//]asswd").as_deref(),
            Some("cat /etc/passwd")
        );
        assert_eq!(
            shell_view("cat /[?]tc/pa[!x]swd").as_deref(),
            Some("cat /?tc/pa?swd")
        );
        assert_eq!(shell_view("see [details](x)"), None);
        assert_eq!(
            shell_view("cat$u /etc$u/passwd").as_deref(),
            Some("cat /etc/passwd")
        );
        assert_eq!(shell_view("una$$me -a").as_deref(), Some("uname -a"));
        assert_eq!(shell_view("c$-at x").as_deref(), Some("cat x"));
        assert_eq!(shell_view("|$u wget x").as_deref(), Some("| wget x"));
        assert_eq!(
            shell_view("echo | ${gcc7.4}gcc7.4").as_deref(),
            Some("echo | gcc7.4")
        );
        assert_eq!(shell_view("c${x}at /etc").as_deref(), Some("cat /etc"));
        assert_eq!(shell_view("${home}/x"), None);
        assert_eq!(shell_view("${user} logged in"), None);
        assert_eq!(
            shell_view("ping`` 1.2.3.4").as_deref(),
            Some("ping 1.2.3.4")
        );
        assert_eq!(shell_view("pi<()ng 1").as_deref(), Some("ping 1"));
        // Prices and longer variable names are not touched.
        assert_eq!(shell_view("costs $5 or us$10"), None);
        assert_eq!(shell_view("echo $home/x"), None);
        assert_eq!(shell_view("a[1,2]"), None);
    }

    #[test]
    fn compatibility_forms_fold_to_ascii() {
        assert_eq!(normalize("①②⑦.⓪.⓪.①"), "127.0.0.1");
        assert_eq!(normalize("ⓛⓞⓒⓐⓛⓗⓞⓢⓣ ⓁⓄⒸⒶⓁ"), "localhost local");
        assert_eq!(normalize("＜ｓｃｒｉｐｔ＞"), "<script>");
        assert_eq!(normalize("Saint-Étienne"), "saint-étienne");
    }

    #[test]
    fn truncation_is_bounded_and_safe() {
        let long = "é".repeat(MAX_INPUT_BYTES);
        assert!(decode(&long).len() <= MAX_INPUT_BYTES);
    }
}
