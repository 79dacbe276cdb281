//! URL targets that a server should never be made to fetch: cloud metadata services,
//! loopback, private and link-local networks (in any IP notation), and non-HTTP schemes.

use std::net::{Ipv4Addr, Ipv6Addr};

const METADATA_HOSTS: &[&str] = &[
    "169.254.169.254",
    "169.254.170.2",
    "169.254.169.123",
    "100.100.100.200",
    "192.0.0.192",
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "metadata.azure.com",
    "metadata.packet.net",
    "instance-data",
    "instance-data.ec2.internal",
    "fd00:ec2::254",
];

const DANGEROUS_SCHEMES: &[&str] = &[
    "gopher", "dict", "ldap", "ldaps", "tftp", "file", "jar", "netdoc", "expect", "phar", "sftp",
    "smb", "rmi", "iiop", "corba", "nis", "nds", "dns", "netdoc",
];

/// Public DNS names that resolve to loopback (wildcards included: `*.lvh.me`).
const LOOPBACK_NAMES: &[&str] = &[
    "localtest.me",
    "lvh.me",
    "vcap.me",
    "lacolhost.com",
    "fbi.com",
    "127.0.0.1.nip.io",
    "localh.st",
    "ip6-localhost",
    "ip6-loopback",
];

/// A purely numeric host wider than 32 bits (`7147006462`, `0x41414141a9fea9fe`): some
/// URL parsers keep its low 32 bits, so it reaches the address they spell.
fn truncated_numeric_v4(host: &str) -> Option<Ipv4Addr> {
    let v = if let Some(h) = host.strip_prefix("0x") {
        if h.len() <= 8 || h.len() > 16 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(h, 16).ok()?
    } else {
        if host.len() < 10 || host.len() > 19 || !host.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        host.parse::<u64>().ok()?
    };
    (v > u64::from(u32::MAX)).then(|| Ipv4Addr::from((v & 0xffff_ffff) as u32))
}

/// How a URL target is classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A cloud metadata service.
    Metadata,
    /// Loopback (`localhost`, `127.0.0.0/8`, `::1`, `0.0.0.0`, ...).
    Loopback,
    /// Private, link-local or unique-local network.
    Private,
    /// A non-HTTP scheme that reaches internal services (`gopher://`, `dict://`, ...).
    Scheme,
    /// A public IP literal (remote file inclusion signal).
    PublicIp,
}

/// Parses an IPv4 address in any notation `inet_aton` accepts (decimal, octal, hex,
/// one to four parts), the notations SSRF filters forget.
pub fn parse_ipv4_loose(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut nums = Vec::with_capacity(4);
    for p in &parts {
        let v = if let Some(h) = p.strip_prefix("0x") {
            if h.is_empty() {
                0
            } else {
                u64::from_str_radix(h, 16).ok()?
            }
        } else if p.len() > 1 && p.starts_with('0') {
            u64::from_str_radix(p, 8).ok()?
        } else {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 10 {
                return None;
            }
            p.parse::<u64>().ok()?
        };
        nums.push(v);
    }
    let (last, head) = nums.split_last()?;
    let mut acc: u64 = 0;
    for (i, v) in head.iter().enumerate() {
        if *v > 255 {
            return None;
        }
        acc |= v << (24 - 8 * i);
    }
    let rem_bits = 32 - 8 * head.len() as u32;
    if *last >= (1u64 << rem_bits) {
        return None;
    }
    acc |= last;
    Some(Ipv4Addr::from(u32::try_from(acc).ok()?))
}

fn classify_v4(ip: Ipv4Addr) -> Target {
    let o = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254)
        || ip == Ipv4Addr::new(169, 254, 170, 2)
        || ip == Ipv4Addr::new(100, 100, 100, 200)
        || ip == Ipv4Addr::new(192, 0, 0, 192)
    {
        Target::Metadata
    } else if ip.is_loopback() || ip.is_unspecified() || o[0] == 0 {
        Target::Loopback
    } else if ip.is_private() || ip.is_link_local() || (o[0] == 100 && (64..128).contains(&o[1])) {
        Target::Private
    } else {
        Target::PublicIp
    }
}

/// Classifies a host (lower-case, without port or brackets).
pub fn classify_host(host: &str) -> Option<Target> {
    let host = host.trim_end_matches('.');
    if METADATA_HOSTS.contains(&host) {
        return Some(Target::Metadata);
    }
    if LOOPBACK_NAMES
        .iter()
        .any(|n| host == *n || host.strip_suffix(n).is_some_and(|h| h.ends_with('.')))
    {
        return Some(Target::Loopback);
    }
    if host == "localhost"
        || host.ends_with(".localhost")
        || host.starts_with("localhost.")
        || host.starts_with("localhost4")
        || host.starts_with("localhost6")
        || host == "ip6-localhost"
        || host == "ipv6-localhost"
        || host == "ip6-loopback"
    {
        return Some(Target::Loopback);
    }
    if host.ends_with(".internal")
        || host.ends_with(".local")
        || host.ends_with(".svc")
        || host.contains(".svc.")
        || host == "kubernetes"
        || host.starts_with("kubernetes.default")
    {
        return Some(Target::Private);
    }
    // DNS names that resolve to the address they spell (`127.0.0.1.nip.io`).
    for suffix in [".nip.io", ".sslip.io", ".xip.io", ".localtest.me"] {
        if let Some(inner) = host.strip_suffix(suffix) {
            let inner = inner.rsplit_once(['-', '.']).map_or(inner, |_| inner);
            if let Some(ip) = parse_ipv4_loose(inner.replace('-', ".").as_str()) {
                return Some(classify_v4(ip));
            }
            return Some(Target::Loopback);
        }
    }
    if let Some(ip) = parse_ipv4_loose(host).or_else(|| truncated_numeric_v4(host)) {
        return Some(classify_v4(ip));
    }
    if let Ok(ip6) = host.parse::<Ipv6Addr>() {
        if let Some(v4) = ip6.to_ipv4_mapped() {
            return Some(classify_v4(v4));
        }
        let seg = ip6.segments();
        return Some(if ip6.is_loopback() || ip6.is_unspecified() {
            Target::Loopback
        } else if host == "fd00:ec2::254" {
            Target::Metadata
        } else if (seg[0] & 0xfe00) == 0xfc00 || (seg[0] & 0xffc0) == 0xfe80 {
            Target::Private
        } else {
            Target::PublicIp
        });
    }
    None
}

/// The first URL-like target in a normalized input: scheme and host.
pub fn url_target(s: &str) -> Option<(String, String)> {
    let Some(p) = s.find("://").or_else(|| s.find(":\\\\")) else {
        // `http:2130706433`, `http:/127.0.0.1`: schemes that browsers and some URL
        // parsers accept without the double slash.
        for scheme in ["http:", "https:", "gopher:", "dict:", "ftp:"] {
            if let Some(rest) = s.strip_prefix(scheme) {
                let rest = rest.trim_start_matches('/');
                let host = match rest.strip_prefix('[') {
                    Some(inner) => inner.split([']', '%']).next()?,
                    None => rest.split(['/', '?', '#', ':']).next()?,
                };
                return Some((scheme.trim_end_matches(':').to_string(), host.to_string()));
            }
        }
        return None;
    };
    // The scheme starts after the last character that cannot be in one (which may be
    // several bytes long: step over the whole character).
    let scheme_start = s[..p]
        .char_indices()
        .rev()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.'))
        .map_or(0, |(q, c)| q + c.len_utf8());
    let scheme = s[scheme_start..p]
        .rsplit(':')
        .next()
        .unwrap_or("")
        .to_string();
    let rest = &s[p + 3.min(s.len() - p)..];
    let authority_end = rest
        .find(['/', '?', '#', '\\', ' ', '"', '\'', '<', '>'])
        .unwrap_or(rest.len());
    Some((scheme, host_of(&rest[..authority_end]).to_string()))
}

/// The host of an authority (`user@host:port`, `[v6]:port`).
fn host_of(authority: &str) -> &str {
    let hostport = authority.rsplit('@').next().unwrap_or(authority);
    if let Some(inner) = hostport.strip_prefix('[') {
        inner.split([']', '%']).next().unwrap_or("")
    } else {
        hostport.split(':').next().unwrap_or("")
    }
}

/// The host that a lenient parser sees when the authority runs to the first `/` and the
/// last `@` before it wins (`http://a.com:80 &@127.0.0.1:22/`, `http://a.com#@10.0.0.1/`):
/// parsers disagree on where userinfo ends, and SSRF filters check the wrong one.
fn lenient_host(s: &str) -> Option<&str> {
    let p = s.find("://")?;
    let rest = &s[p + 3..];
    let end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..end];
    authority.contains('@').then(|| host_of(authority))
}

/// SSRF target classification of a normalized input.
pub fn detect(s: &str) -> Option<Target> {
    // `http://\\l\\o\\c\\a\\l\\h\\o\\s\\t/`: URL parsers that treat `\\` as `/` or drop it
    // see the host with the backslashes removed.
    if let Some(p) = s.find("://\\") {
        let unslashed: String = s[p + 3..].chars().filter(|c| *c != '\\').collect();
        let fixed = format!("{}://{unslashed}", &s[..p]);
        if let Some(t) = detect_url(&fixed) {
            return Some(t);
        }
    }
    detect_url(s)
}

fn detect_url(s: &str) -> Option<Target> {
    // Every URL form `url_target` accepts has a `:` (`x://`, `x:\\`, `http:`).
    if s.contains(':')
        && let Some((scheme, host)) = url_target(s)
    {
        if DANGEROUS_SCHEMES.contains(&scheme.as_str()) {
            return Some(Target::Scheme);
        }
        let strict = if host.is_empty() {
            None
        } else {
            classify_host(&host)
        };
        if !matches!(
            strict,
            Some(Target::Metadata | Target::Loopback | Target::Private)
        ) && let Some(h) = lenient_host(s).filter(|h| !h.is_empty() && *h != host)
            && let Some(t @ (Target::Metadata | Target::Loopback | Target::Private)) =
                classify_host(h)
        {
            return Some(t);
        }
        return strict;
    }
    // A bare host or host:port value (`url=169.254.169.254/latest`, `host=localhost:6379`).
    let head = s.split(['/', '?', '#']).next().unwrap_or("");
    let host = head.rsplit_once(':').map_or(head, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            head
        }
    });
    // Only hosts that read as addresses or internal names count when bare; checked
    // before the (costlier) classification, which most inputs then skip.
    let host_like = host.matches('.').count() == 3
        || host.ends_with(".internal")
        || host.contains(".svc")
        || host.starts_with("ipv6-")
        || host.starts_with("localhost")
        || LOOPBACK_NAMES.contains(&host)
        || METADATA_HOSTS.contains(&host);
    if !host_like {
        return None;
    }
    match classify_host(host) {
        Some(t @ (Target::Metadata | Target::Loopback | Target::Private)) => Some(t),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_notations() {
        assert_eq!(
            parse_ipv4_loose("2130706433"),
            Some(Ipv4Addr::new(127, 0, 0, 1))
        );
        assert_eq!(
            parse_ipv4_loose("0x7f000001"),
            Some(Ipv4Addr::new(127, 0, 0, 1))
        );
        assert_eq!(
            parse_ipv4_loose("0177.0.0.1"),
            Some(Ipv4Addr::new(127, 0, 0, 1))
        );
        assert_eq!(parse_ipv4_loose("127.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(parse_ipv4_loose("256.1.1.1"), None);
        assert_eq!(parse_ipv4_loose("example"), None);
    }

    #[test]
    fn backslashes_in_the_authority() {
        assert_eq!(
            detect("http://\\\\l\\\\o\\\\c\\\\a\\\\l\\\\h\\\\o\\\\s\\\\t/"),
            Some(Target::Loopback)
        );
        assert_eq!(detect("http://\\\\example.com/"), None);
    }

    #[test]
    fn targets() {
        let t = |s: &str| detect(s);
        assert_eq!(
            t("http://169.254.169.254/latest/meta-data/"),
            Some(Target::Metadata)
        );
        assert_eq!(
            t("http://metadata.google.internal/computeMetadata/v1/"),
            Some(Target::Metadata)
        );
        assert_eq!(t("http://[::ffff:a9fe:a9fe]/"), Some(Target::Metadata));
        assert_eq!(t("http://2130706433/admin"), Some(Target::Loopback));
        assert_eq!(t("http://user@127.0.0.1:8080/"), Some(Target::Loopback));
        assert_eq!(t("http://10.0.0.5/"), Some(Target::Private));
        assert_eq!(t("gopher://x:6379/_flushall"), Some(Target::Scheme));
        assert_eq!(t("169.254.169.254/latest"), Some(Target::Metadata));
        assert_eq!(t("localhost:6379"), Some(Target::Loopback));
        assert_eq!(t("https://8.8.8.8/x"), Some(Target::PublicIp));
        assert_eq!(t("https://www.example.com/cb?x=1"), None);
        assert_eq!(t("version 10.0.1 released"), None);
        assert_eq!(t("127.5"), None);
        assert_eq!(t("see https://docs.rs/regex"), None);
        assert_eq!(t("http://7147006462/"), Some(Target::Metadata));
        assert_eq!(t("http://0x41414141A9FEA9FE/"), Some(Target::Metadata));
        assert_eq!(
            t("http://google.com:80 &@127.88.23.245:22/# @google.com:80/"),
            Some(Target::Loopback)
        );
        assert_eq!(
            t("http://google.com:80 &@google.com:80# @127.88.23.245:22/"),
            Some(Target::Loopback)
        );
        assert_eq!(t("http:[::ffff:a9fe:a9fe]"), Some(Target::Metadata));
        assert_eq!(t("lvh.me/"), Some(Target::Loopback));
        assert_eq!(t("http://app.localtest.me/"), Some(Target::Loopback));
        assert_eq!(t("https://user@example.com/a@b"), None);
        assert_eq!(t("https://example.com/p/12345678901"), None);
    }
}
