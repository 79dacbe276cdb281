use super::*;

fn kinds(text: &str) -> Vec<(Kind, String)> {
    let d = Detectors::new().unwrap();
    let mut out = Vec::new();
    d.find(text, Context::default(), &mut out);
    out.iter()
        .map(|f| (f.kind, text[f.start..f.end].to_string()))
        .collect()
}

fn one(text: &str, kind: Kind, value: &str) {
    let got = kinds(text);
    assert!(
        got.iter().any(|(k, v)| *k == kind && v == value),
        "{text:?}: wanted {kind} {value:?}, got {got:?}"
    );
}

fn none(text: &str) {
    let got = kinds(text);
    assert!(got.is_empty(), "{text:?}: wanted nothing, got {got:?}");
}

#[test]
fn personal_data() {
    one(
        "mail me at Jane.Doe+x@example.co.uk now",
        Kind::Email,
        "Jane.Doe+x@example.co.uk",
    );
    one(
        "card 4111 1111 1111 1111 ok",
        Kind::Card,
        "4111 1111 1111 1111",
    );
    one(
        "card 5500-0000-0000-0004",
        Kind::Card,
        "5500-0000-0000-0004",
    );
    one("ssn 123-45-6789.", Kind::Ssn, "123-45-6789");
    one(
        "iban GB82 WEST 1234 5698 7654 32 thanks",
        Kind::Iban,
        "GB82 WEST 1234 5698 7654 32",
    );
    one(
        "iban DE89370400440532013000",
        Kind::Iban,
        "DE89370400440532013000",
    );
    one("from 203.0.113.7 at", Kind::Ip, "203.0.113.7");
    one(
        "from 2001:db8::8a2e:370:7334 at",
        Kind::Ip,
        "2001:db8::8a2e:370:7334",
    );
}

#[test]
fn phone_formats() {
    one("call +44 20 7946 0958", Kind::Phone, "+44 20 7946 0958");
    one("x (415) 555-2671 y", Kind::Phone, "(415) 555-2671");
    one("x 415.555.2671 y", Kind::Phone, "415.555.2671");
    one("x 1-415-555-2671 y", Kind::Phone, "1-415-555-2671");
    one("uk 07700 900123 y", Kind::Phone, "07700 900123");
    one("de 030 12345678 y", Kind::Phone, "030 12345678");
    one("fr 01 23 45 67 89 y", Kind::Phone, "01 23 45 67 89");
    one("in +91 98765 43210 y", Kind::Phone, "+91 98765 43210");
    one("in 098765 43210 y", Kind::Phone, "098765 43210");
    one("Phone: 467 3395", Kind::Phone, "467 3395");
    one("Fax: 345-899-3560x4587", Kind::Phone, "345-899-3560x4587");
}

#[test]
fn hard_negatives() {
    none("trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7");
    none("id 123e4567-e89b-12d3-a456-426614174000");
    none("commit 9fceb02d0ae598e95dc970b74767f19372d61af8");
    none("version 1.24.3 build 20241124");
    none("order 4111111111111112 total 129.99 EUR");
    none("at 2024-11-24T09:45:40Z took 1234567 ns");
    none("GET /api/v1/users/{id}/orders");
    none("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    none("ts 1700000000123");
    none("local 127.0.0.1 and ::1");
    none("gen_ai.usage.input_tokens=1234 max_tokens=4096");
}

#[test]
fn credentials() {
    one(
        "Authorization: Bearer abcDEF123456ghiJKL",
        Kind::Bearer,
        "abcDEF123456ghiJKL",
    );
    one(
        "Authorization: Basic dXNlcjpwYXNzd29yZA==",
        Kind::BasicAuth,
        "dXNlcjpwYXNzd29yZA==",
    );
    one("postgres://app:s3cr3t@db:5432/x", Kind::Password, "s3cr3t");
    one(
        "Server=db;User Id=sa;Password=Hunter2!;",
        Kind::Password,
        "Hunter2!",
    );
    one("{\"password\":\"hunter2\"}", Kind::Password, "hunter2");
    one("GET /login?user=bob&pwd=letmein", Kind::Password, "letmein");
    one(
        "JSESSIONID=1A2B3C4D5E6F7A8B9C0D",
        Kind::SessionId,
        "1A2B3C4D5E6F7A8B9C0D",
    );
    let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----";
    one(&format!("key: {pem} end"), Kind::PrivateKey, pem);
}

#[test]
fn rules_fit_the_trigger_table() {
    assert!(secrets::RULES.len() <= 64);
}

#[test]
fn long_credentials_are_found_whole() {
    let long = "A1b2".repeat(600);
    one(&format!("password={long}&x=1"), Kind::Password, &long);
    one(&format!("https://u:{long}@h/"), Kind::Password, &long);
}
