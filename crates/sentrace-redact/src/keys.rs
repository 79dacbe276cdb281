//! Key-name rules: what an attribute key says about its value.
//!
//! Keys are normalized before matching: ASCII lower case, with `.` and `-` turned into
//! `_`, so `http.request.header.X-Api-Key`, `x_api_key` and `XApiKey`-style names meet the
//! same rules. Rules look at how the normalized key ends (`..._token`, `..._password`),
//! which covers header, query-parameter, JSON-field and semantic-convention names alike.

use crate::kind::Kind;

/// What a key says about how to treat its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyClass {
    /// Nothing special: run the free-text detectors.
    Plain,
    /// Infrastructure metadata (`server.address`, `host.ip`, `k8s.*`): free-text
    /// detectors, but IP addresses are kept (they are not client addresses).
    Infra,
    /// The whole value is sensitive: apply the kind's action to it.
    Sensitive(Kind),
    /// An `Authorization` header: keep the scheme, minimize the credential.
    Authorization,
    /// A `Cookie` header: keep cookie names, minimize values.
    Cookie,
    /// A `Set-Cookie` header: keep name and attributes, minimize the value.
    SetCookie,
    /// A full URL (or a path with a query): keep scheme, host and path.
    Url,
    /// A query string alone (`url.query`).
    Query,
    /// A URL path alone (`url.path`).
    Path,
    /// A SQL statement: replace literals with `?`.
    Sql,
    /// A request or response body: JSON is walked, forms are treated as queries.
    Body,
}

/// Normalizes `key` into `buf` (lower case, `.`/`-` to `_`).
pub fn normalize_into(key: &str, buf: &mut String) {
    buf.clear();
    buf.extend(key.chars().map(|c| match c {
        '.' | '-' | ' ' => '_',
        c => c.to_ascii_lowercase(),
    }));
}

/// Normalized form of a key, allocated (for policy tables).
pub fn normalize(key: &str) -> String {
    let mut s = String::with_capacity(key.len());
    normalize_into(key, &mut s);
    s
}

const ENDS_PASSWORD: &[&str] = &["pwd", "passwd", "pass"];
const ENDS_SECRET: &[&str] = &[
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_key",
    "accesskey",
    "secret_key",
    "secretkey",
    "signing_key",
    "encryption_key",
    "master_key",
    "auth_key",
    "credential",
    "credentials",
    "client_secret",
    "connection_string",
    "connectionstring",
    "dsn",
];
const ENDS_SESSION: &[&str] = &["session_id", "sessionid", "jsessionid", "phpsessid", "_sid"];
const ENDS_CARD: &[&str] = &[
    "card_number",
    "cardnumber",
    "credit_card",
    "creditcard",
    "card_no",
    "cc_number",
    "ccnum",
    "card_pan",
    "cvv",
    "cvc",
    "cvv2",
    "card_cvv",
];
const ENDS_PHONE: &[&str] = &[
    "phone",
    "phone_number",
    "phonenumber",
    "mobile",
    "mobile_number",
    "msisdn",
    "telephone",
    "fax",
];
const ENDS_EMAIL: &[&str] = &["email", "e_mail", "email_address", "emailaddress", "mail"];
const ENDS_USER: &[&str] = &[
    "enduser_id",
    "user_id",
    "userid",
    "user_name",
    "username",
    "login",
    "customer_id",
    "member_id",
    "account_holder",
    "enduser_pseudo_id",
];
const ENDS_NAME: &[&str] = &[
    "full_name",
    "fullname",
    "first_name",
    "firstname",
    "last_name",
    "lastname",
    "surname",
    "given_name",
    "family_name",
];
const INFRA_PREFIXES: &[&str] = &[
    "server_",
    "host_",
    "net_host_",
    "network_local_",
    "k8s_",
    "container_",
    "cloud_",
    "service_",
    "telemetry_",
    "otel_",
    "os_",
    "destination_",
    "peer_service",
];

fn ends_any(k: &str, list: &[&str]) -> bool {
    list.iter().any(|e| {
        k.ends_with(e) && {
            // The suffix must start a word: `..._token` or the whole key, not `pokens`.
            let cut = k.len() - e.len();
            cut == 0 || e.starts_with('_') || k.as_bytes()[cut - 1] == b'_' || long_suffix(e)
        }
    })
}

/// Suffixes long and specific enough to match inside a run-together name
/// (`xapikey`, `accesstoken`, `userpassword`).
fn long_suffix(e: &str) -> bool {
    e.len() >= 5 && e != "login" && e != "email" && e != "phone"
}

/// Classifies a normalized key with the built-in rules.
pub fn classify_normalized(k: &str) -> KeyClass {
    if k.ends_with("set_cookie") {
        return KeyClass::SetCookie;
    }
    if k.ends_with("cookie") || k.ends_with("cookies") {
        return KeyClass::Cookie;
    }
    if k.ends_with("authorization") {
        return KeyClass::Authorization;
    }
    if k.contains("password") || k.contains("passphrase") || ends_any(k, ENDS_PASSWORD) {
        return KeyClass::Sensitive(Kind::Password);
    }
    if k.ends_with("private_key") || k.ends_with("privatekey") {
        return KeyClass::Sensitive(Kind::PrivateKey);
    }
    if ends_any(k, ENDS_SESSION) || k == "sid" {
        return KeyClass::Sensitive(Kind::SessionId);
    }
    if ends_any(k, ENDS_SECRET) {
        return KeyClass::Sensitive(Kind::Secret);
    }
    if ends_any(k, &["ssn", "social_security_number"]) {
        return KeyClass::Sensitive(Kind::Ssn);
    }
    if ends_any(k, ENDS_CARD) {
        return KeyClass::Sensitive(Kind::Card);
    }
    if ends_any(k, &["iban"]) {
        return KeyClass::Sensitive(Kind::Iban);
    }
    if ends_any(k, ENDS_PHONE) {
        return KeyClass::Sensitive(Kind::Phone);
    }
    if ends_any(k, ENDS_EMAIL) {
        return KeyClass::Sensitive(Kind::Email);
    }
    if k.contains("birth") || ends_any(k, &["dob"]) {
        return KeyClass::Sensitive(Kind::Dob);
    }
    if ends_any(k, ENDS_NAME) {
        return KeyClass::Sensitive(Kind::PersonName);
    }
    if ends_any(k, ENDS_USER) {
        return KeyClass::Sensitive(Kind::UserId);
    }
    match k {
        "url_full"
        | "http_url"
        | "url_original"
        | "http_target"
        | "url"
        | "uri"
        | "http_request_header_referer"
        | "referer"
        | "location"
        | "http_response_header_location" => return KeyClass::Url,
        "url_query" | "query_string" | "querystring" => return KeyClass::Query,
        "url_path" | "http_path" => return KeyClass::Path,
        "db_statement" | "db_query_text" | "sql" | "db_sql" | "db_sql_query" => {
            return KeyClass::Sql;
        }
        _ => {}
    }
    if k.ends_with("_url") || k.ends_with("_uri") {
        return KeyClass::Url;
    }
    if k.ends_with("body") || k.ends_with("payload") {
        return KeyClass::Body;
    }
    if INFRA_PREFIXES.iter().any(|p| k.starts_with(p)) {
        return KeyClass::Infra;
    }
    KeyClass::Plain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(k: &str) -> KeyClass {
        classify_normalized(&normalize(k))
    }

    #[test]
    fn sensitive_by_name() {
        use KeyClass::Sensitive as S;
        assert_eq!(c("password"), S(Kind::Password));
        assert_eq!(c("db.password"), S(Kind::Password));
        assert_eq!(c("userPassword"), S(Kind::Password));
        assert_eq!(c("http.request.header.x-api-key"), S(Kind::Secret));
        assert_eq!(c("access_token"), S(Kind::Secret));
        assert_eq!(c("client_secret"), S(Kind::Secret));
        assert_eq!(c("session.id"), S(Kind::SessionId));
        assert_eq!(c("PHPSESSID"), S(Kind::SessionId));
        assert_eq!(c("ssn"), S(Kind::Ssn));
        assert_eq!(c("card_number"), S(Kind::Card));
        assert_eq!(c("user.email"), S(Kind::Email));
        assert_eq!(c("user.phone"), S(Kind::Phone));
        assert_eq!(c("date_of_birth"), S(Kind::Dob));
        assert_eq!(c("enduser.id"), S(Kind::UserId));
        assert_eq!(c("user.full_name"), S(Kind::PersonName));
        assert_eq!(
            c("http.request.header.authorization"),
            KeyClass::Authorization
        );
        assert_eq!(c("http.request.header.cookie"), KeyClass::Cookie);
        assert_eq!(c("http.response.header.set-cookie"), KeyClass::SetCookie);
    }

    #[test]
    fn not_sensitive() {
        for k in [
            "gen_ai.usage.input_tokens",
            "http.request.method",
            "http.route",
            "user_agent.original",
            "messaging.kafka.message.key",
            "db.query.summary",
            "token_type_hint_count",
            "email_verified_count",
        ] {
            let got = c(k);
            assert!(
                matches!(got, KeyClass::Plain | KeyClass::Infra),
                "{k} classified {got:?}"
            );
        }
        assert_eq!(c("server.address"), KeyClass::Infra);
        assert_eq!(c("url.full"), KeyClass::Url);
        assert_eq!(c("db.statement"), KeyClass::Sql);
        assert_eq!(c("http.request.body"), KeyClass::Body);
    }
}
