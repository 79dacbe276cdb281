//! Typed checks that confirm a candidate found by a pattern: check digits, number ranges,
//! decodings. A detector only reports a candidate that passes its check.

use base64::Engine as _;

/// Luhn (ISO/IEC 7812-1 annex B) over the ASCII digits of `s`; other bytes are ignored.
pub fn luhn(s: &str) -> bool {
    let mut sum: u32 = 0;
    let mut n = 0usize;
    for b in s.bytes().rev().filter(u8::is_ascii_digit) {
        let mut d = u32::from(b - b'0');
        if !n.is_multiple_of(2) {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        n += 1;
    }
    n > 0 && sum.is_multiple_of(10)
}

/// Whether a digit string (no separators) lies in a card-issuer IIN range with a length
/// that issuer uses: Visa, Mastercard (51-55, 2221-2720), American Express, Discover,
/// Diners Club, JCB (including the 15-digit 1800/2131 ranges), UnionPay and Maestro.
pub fn card_iin(d: &[u8]) -> bool {
    let len = d.len();
    let prefix = |n: usize| -> u32 {
        d.iter()
            .take(n)
            .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'))
    };
    if !(12..=19).contains(&len) {
        return false;
    }
    let p1 = prefix(1);
    let p2 = prefix(2);
    let p3 = prefix(3);
    let p4 = prefix(4);
    match p1 {
        // Visa.
        4 => matches!(len, 13 | 16 | 19),
        // American Express 34/37, Diners 30/36/38/39, JCB 3528-3589.
        3 => {
            ((p2 == 34 || p2 == 37) && len == 15)
                || ((300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39)
                    && (14..=19).contains(&len)
                // JCB is 3528-3589; test-card generators use all of 35xx.
                || (3500..=3599).contains(&p4) && (16..=19).contains(&len)
        }
        // Mastercard 51-55; Maestro 50, 56-58.
        5 => ((51..=55).contains(&p2) && len == 16) || p2 == 50 || (56..=58).contains(&p2),
        // Mastercard 2221-2720.
        2 => ((2221..=2720).contains(&p4) && len == 16) || (p4 == 2131 && len == 15),
        // Discover, UnionPay and Maestro share the 6 range (60-69).
        6 => true,
        // JCB 1800.
        1 => p4 == 1800 && len == 15,
        _ => false,
    }
}

/// A card number: 12 to 19 digits (separators ignored) in an IIN range, passing Luhn.
pub fn card(s: &str) -> bool {
    let mut digits = [0u8; 19];
    let mut n = 0usize;
    for b in s.bytes() {
        if b.is_ascii_digit() {
            if n == digits.len() {
                return false;
            }
            digits[n] = b;
            n += 1;
        }
    }
    card_iin(&digits[..n]) && luhn(s)
}

/// Length of an IBAN for each country that issues them (ISO 13616 registry, common subset).
pub fn iban_length(cc: &[u8]) -> Option<usize> {
    let len = match cc {
        b"AD" => 24,
        b"AE" => 23,
        b"AT" => 20,
        b"BE" => 16,
        b"BG" => 22,
        b"BH" => 22,
        b"BR" => 29,
        b"CH" => 21,
        b"CY" => 28,
        b"CZ" => 24,
        b"DE" => 22,
        b"DK" => 18,
        b"EE" => 20,
        b"ES" => 24,
        b"FI" => 18,
        b"FR" => 27,
        b"GB" => 22,
        b"GI" => 23,
        b"GR" => 27,
        b"HR" => 21,
        b"HU" => 28,
        b"IE" => 22,
        b"IL" => 23,
        b"IS" => 26,
        b"IT" => 27,
        b"KW" => 30,
        b"KZ" => 20,
        b"LB" => 28,
        b"LI" => 21,
        b"LT" => 20,
        b"LU" => 20,
        b"LV" => 21,
        b"MC" => 27,
        b"MT" => 31,
        b"NL" => 18,
        b"NO" => 15,
        b"PK" => 24,
        b"PL" => 28,
        b"PT" => 25,
        b"QA" => 29,
        b"RO" => 24,
        b"SA" => 24,
        b"SE" => 24,
        b"SI" => 19,
        b"SK" => 24,
        b"SM" => 27,
        b"TR" => 26,
        b"UA" => 29,
        _ => return None,
    };
    Some(len)
}

/// An IBAN (ISO 13616): known country, its length, and the mod-97 check (ISO 7064
/// MOD 97-10) equal to 1. Spaces are ignored; letters may be of either case.
pub fn iban(s: &str) -> bool {
    let mut buf = [0u8; 34];
    let mut n = 0usize;
    for b in s.bytes() {
        if b == b' ' {
            continue;
        }
        if !b.is_ascii_alphanumeric() || n == buf.len() {
            return false;
        }
        buf[n] = b.to_ascii_uppercase();
        n += 1;
    }
    if n < 15 || !buf[0].is_ascii_alphabetic() || !buf[1].is_ascii_alphabetic() {
        return false;
    }
    if !buf[2].is_ascii_digit() || !buf[3].is_ascii_digit() {
        return false;
    }
    if iban_length(&buf[..2]) != Some(n) {
        return false;
    }
    // Move the first four characters to the end, map A=10..Z=35, reduce mod 97.
    let mut rem: u32 = 0;
    for &c in buf[4..n].iter().chain(buf[..4].iter()) {
        if c.is_ascii_digit() {
            rem = (rem * 10 + u32::from(c - b'0')) % 97;
        } else {
            let v = u32::from(c - b'A') + 10;
            rem = (rem * 100 + v) % 97;
        }
    }
    rem == 1
}

/// A US SSN `AAA-GG-SSSS` in the ranges the SSA issues: area not 000, 666 or 900-999,
/// group not 00, serial not 0000. Dashes or spaces, or none, are accepted.
pub fn ssn(s: &str) -> bool {
    let digits: Vec<u32> = s
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| u32::from(b - b'0'))
        .collect();
    if digits.len() != 9 {
        return false;
    }
    let area = digits[0] * 100 + digits[1] * 10 + digits[2];
    let group = digits[3] * 10 + digits[4];
    let serial = digits[5] * 1000 + digits[6] * 100 + digits[7] * 10 + digits[8];
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// A JWT: three base64url parts, the first decoding to a JSON object with an `alg`.
pub fn jwt(s: &str) -> bool {
    let Some(header) = s.split('.').next() else {
        return false;
    };
    if header.len() > 4096 {
        return false;
    }
    let Ok(bytes) =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header.trim_end_matches('='))
    else {
        return false;
    };
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(map)) => map.contains_key("alg") || map.contains_key("typ"),
        _ => false,
    }
}

/// A Basic credential: standard base64 of `user:password`.
pub fn basic_credential(s: &str) -> bool {
    if s.len() > 4096 {
        return false;
    }
    match base64::engine::general_purpose::STANDARD.decode(s) {
        Ok(bytes) => bytes.contains(&b':') && std::str::from_utf8(&bytes).is_ok(),
        Err(_) => false,
    }
}

/// Shannon entropy in bits per byte.
pub fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[usize::from(b)] += 1;
    }
    let len = s.len() as f64;
    if len == 0.0 {
        return 0.0;
    }
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / len;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_iin() {
        assert!(card("4111 1111 1111 1111"));
        assert!(card("5500-0000-0000-0004"));
        assert!(card("378282246310005"));
        assert!(card("6011111111111117"));
        assert!(card("3530111333300000"));
        assert!(card("2223003122003222"));
        assert!(!card("4111 1111 1111 1112"), "Luhn failure accepted");
        assert!(!card("1234567812345670"), "no issuer starts with 1234");
        assert!(!card("41111111"));
    }

    #[test]
    fn iban_mod97() {
        assert!(iban("GB82 WEST 1234 5698 7654 32"));
        assert!(iban("DE89370400440532013000"));
        assert!(iban("fr1420041010050500013m02606"));
        assert!(!iban("GB82 WEST 1234 5698 7654 33"));
        assert!(!iban("DE8937040044053201300"), "wrong length accepted");
        assert!(!iban("XX89370400440532013000"));
    }

    #[test]
    fn ssn_ranges() {
        assert!(ssn("123-45-6789"));
        assert!(!ssn("000-12-3456"));
        assert!(!ssn("666-12-3456"));
        assert!(!ssn("912-12-3456"));
        assert!(!ssn("123-00-3456"));
        assert!(!ssn("123-45-0000"));
    }

    #[test]
    fn jwt_and_basic() {
        let header =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"{\"alg\":\"HS256\"}");
        assert!(jwt(&format!("{header}.eyJzdWIiOiIxIn0.c2ln")));
        assert!(!jwt("eyJub3Rqc29u.a.b"));
        assert!(basic_credential("dXNlcjpwYXNz"));
        assert!(!basic_credential("bm9jb2xvbg=="));
    }
}
