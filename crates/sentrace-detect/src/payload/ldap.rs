//! LDAP filter injection: a value that closes the filter it was placed in and opens a new
//! one.
//!
//! An application builds a search filter such as `(&(uid=` + input + `)(objectClass=user))`
//! (RFC 4515 string form). An input that is a filter value has balanced parentheses, or
//! none. An injection closes a parenthesis that the input never opened (the application's),
//! then starts a filter of its own: `*)(uid=*))(|(uid=*`, `admin)(&)`, `x)!(sn=*`,
//! `val)|(cn=admin`. The check reads the input as filter text:
//!
//! 1. walk it, counting parentheses (a backslash escapes the next character, as RFC 4515
//!    `\XX` escapes do), and stop at each `)` that the input did not open;
//! 2. right after it, find a `(` (optionally behind `&`, `|` or `!` and white space)
//!    that opens a filter: an operator (`&`, `|`, `!`), another `(` or `)` (the absolute
//!    filters `(&)` and `(|)` of RFC 4526), the end of the input, or an attribute
//!    description followed by a filter type (`=`, `~=`, `>=`, `<=`, `:=`, `:dn:`).
//!
//! A value that holds a composite filter (`*(|(mail=*))`) without being one (it does not
//! start with `(`) is reported as well.
//!
//! A whole filter sent by an LDAP admin tool is balanced from its first character and never
//! matches; neither do a phone number `(555) 123-4567`, a smiley followed by an aside
//! (`thanks :) (really)`), a formula `(a+b)*c` or an e-mail address.

/// Longest input read, in bytes (the normalizer already caps inputs; this bounds the walk).
const MAX_LDAP_BYTES: usize = 4096;

/// Whether `b` may be part of an attribute description (RFC 4512 §2.5: a name or an OID,
/// with options after `;`).
fn attr_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b';' | b'_')
}

/// Whether `s` (the text after an opening `(`) starts a filter item: an attribute
/// description and a filter type (`uid=`, `cn>=`, `sn~=`, `cn:dn:=`, `1.2.3:=`).
fn starts_item(s: &[u8]) -> bool {
    let n = s.iter().take_while(|b| attr_byte(**b)).count();
    if n == 0 || !s[0].is_ascii_alphanumeric() {
        return false;
    }
    let rest = &s[n..];
    matches!(
        rest,
        [b'=', ..] | [b'~' | b'>' | b'<', b'=', ..] | [b':', ..]
    ) && (rest[0] != b':' || rest.contains(&b'='))
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Whether a `(` at `open` starts a filter (see the module documentation, step 2).
fn opens_filter(s: &[u8], open: usize) -> bool {
    let i = skip_ws(s, open + 1);
    match s.get(i) {
        None => true,
        Some(b'&' | b'|' | b'!' | b'(' | b')') => true,
        Some(_) => starts_item(&s[i..]),
    }
}

/// The reason if `norm` (a normalized input) breaks out of an LDAP filter.
pub fn detect(norm: &str) -> Option<&'static str> {
    let s = norm.as_bytes();
    let s = &s[..s.len().min(MAX_LDAP_BYTES)];
    if !s.contains(&b')') || !s.contains(&b'(') {
        return None;
    }
    // A composite filter inside a value (`*(|(mail=*))`, `x(&(uid=*))`): an input that is
    // a whole filter starts with `(`; prose never writes `(|(`.
    if s.first() != Some(&b'(')
        && s.windows(2).enumerate().any(|(i, w)| {
            w[0] == b'('
                && matches!(w[1], b'&' | b'|' | b'!')
                && s.get(skip_ws(s, i + 2)) == Some(&b'(')
                && opens_filter(s, skip_ws(s, i + 2))
        })
    {
        return Some("LDAP composite filter inside a value");
    }
    let mut depth: i32 = 0;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 1,
            b'(' => depth += 1,
            b')' if depth > 0 => depth -= 1,
            b')' => {
                // A parenthesis the input did not open. Only an operator (and white
                // space) may stand between it and the filter the input opens: `)(`,
                // `)!(`, `) ( & `.
                let j = skip_ws(s, i + 1);
                let j = match s.get(j) {
                    Some(b'&' | b'|' | b'!') => skip_ws(s, j + 1),
                    _ => j,
                };
                if s.get(j) == Some(&b'(') && opens_filter(s, j) {
                    return Some("LDAP filter closed and a new filter opened");
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;

    #[test]
    fn filter_breaks() {
        for s in [
            "*)(mail=*))(|(mail=*",
            "admin)(&)",
            "*)(uid=*))(|(uid=*",
            "bar)(%26)",
            "printer)(uid=*)",
            "void)(objectClass=users))(%26(objectClass=void)",
            "eb9adbd87d)!(sn=*",
            "*)!(sn=*",
            "aaa*aaa)(cn>=bob)",
            "value)(gidNumber%3C%3D100",
            "john)(sn~%3Dsmith",
            "admin)(|",
            "test))(%26(objectClass%3D*",
            "val)%26(cn%3Dadmin",
            "val)%7C(uid%3D*",
            "admin)(%7C(password%3D*",
            "test)%20(%20%26%20",
            "test)%09(%09|",
            "admin*)((|userPassword=*)",
            "*)(cn:dn:=admin",
            "x)(1.2.840.113556.1.4.803:=2)",
            "*(|(mail=*))",
            "%2A%28%7C%28objectclass%3D%2A%29%29",
            "admin(&(uid=*))",
        ] {
            assert!(detect(&normalize(s)).is_some(), "missed {s:?}");
        }
    }

    #[test]
    fn not_filter_breaks() {
        for s in [
            "(555) 123-4567",
            "+1 (555) 123-4567 ext. (12)",
            "Call me (after 5pm) please (or text)",
            "thanks :) (really)",
            "1) open the box 2) (optional) remove the film",
            "(a+b)*c",
            "(1+2)+(3+4)",
            "jane.doe@example.com",
            "(&(objectCategory=computer)  (userAccountControl:1.2.840.113556.1.4.803:=8192))",
            "(objectSID=S-1-5-21-73586283-152049171-839522115-1111)",
            "(userAccountControl:1.2.840.113556.1.4.803:=67108864)(&(objectCategory=group)(groupType:1.2.840.113556.1.4.803:=2147483648))",
            "f(x) = (x+1)(x-1)",
            "see section 2) (x)",
            "search=foo|bar",
            "Smith \\29(uid=*",
            "a) b) c)",
            "(|(cn=alice)(cn=bob))",
            "choose one (| is or) (& is and)",
        ] {
            assert!(detect(&normalize(s)).is_none(), "false positive on {s:?}");
        }
    }
}
