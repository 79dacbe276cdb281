//! Absolute system paths: a value that is, as a whole, the absolute path of a system file
//! or directory (`/etc/ssl/openssl.cnf`, `/proc/self/environ`, `C:\Windows\win.ini`,
//! `D:/inetpub/wwwroot/web.config`), sent where an application expects a name or an id
//! and joins it to a base directory (`open(base + "/" + name)`; with an absolute name
//! many path APIs drop the base, so no `..` is needed).
//!
//! The check parses the value as one path and looks at where it points, not at a list
//! of file names:
//!
//! 1. the whole value is one path: a `/`-rooted Unix path (not `//`, a scheme-relative
//!    URL) without white space, or a drive-letter Windows path (`C:\`, `d:/`); at most
//!    [`MAX_PATH_BYTES`] bytes, no query (`?`) or fragment (`#`);
//! 2. it has a file or directory under its root (two segments or more, or a file at the
//!    root of a drive);
//! 3. it points into the operating system: a root that only the system uses (`/etc`,
//!    `/proc`, `/boot`, `/root`, kernel interfaces under `/sys` and `/dev`, `C:\Windows`,
//!    `C:\inetpub`), a system folder under a shared root (`/var/log`, `/var/www`,
//!    `/usr/local/etc`, `/private/etc`), a web or database server install under a shared
//!    root (`/opt/lampp/logs/access_log`, `/usr/local/apache2/...`), a hidden file or folder
//!    (`/home/u/.ssh/id_rsa`, `/app/.env`), or a configuration, credential or log file by
//!    its extension (`.conf`, `.cnf`, `.ini`, `.config`, `.pem`, `.key`, `.log`, ...).
//!
//! Web routes (`/api/v1/users`, `/blog/2024/post`, `/users/42`), static assets
//! (`/static/app.js`), a bare file name (`report.pdf`) and the path a browser puts in a
//! file input (`C:\fakepath\photo.jpg`) do not match. A URL path in `url.path` that is a
//! system file is a probe as well, and is reported the same way.

/// Longest value read as a path.
pub const MAX_PATH_BYTES: usize = 512;

/// Roots of a Unix file system that only the system uses.
const UNIX_SYSTEM_ROOTS: &[&str] = &["etc", "proc", "boot", "root"];

/// Kernel interfaces under `/sys`.
const SYS_DIRS: &[&str] = &[
    "class",
    "kernel",
    "devices",
    "module",
    "fs",
    "power",
    "block",
    "bus",
    "firmware",
    "hypervisor",
];

/// Devices under `/dev` that a file read reaches.
const DEV_NAMES: &[&str] = &[
    "shm", "tcp", "udp", "mem", "kmem", "port", "null", "zero", "random", "urandom", "stdin",
    "stdout", "stderr", "fd", "tty", "console", "disk", "mapper", "log", "ptmx", "sda", "sda1",
    "nvme0n1", "vda", "xvda",
];

/// System folders under `/var`.
const VAR_DIRS: &[&str] = &[
    "log", "www", "spool", "mail", "backups", "run", "db", "adm", "opt", "cron",
];

/// Data folders under `/var/lib` that hold a server's files.
const VAR_LIB_DIRS: &[&str] = &[
    "mysql",
    "postgresql",
    "pgsql",
    "docker",
    "kubelet",
    "jenkins",
    "redis",
    "mongodb",
    "dpkg",
    "rpm",
    "php",
    "sss",
];

/// First folders of a Windows drive that belong to the system or a server install.
const WIN_SYSTEM_ROOTS: &[&str] = &[
    "windows",
    "winnt",
    "inetpub",
    "program files",
    "program files (x86)",
    "programdata",
    "documents and settings",
    "$recycle.bin",
    "system volume information",
    "boot",
    "recovery",
    "perflogs",
    "xampp",
    "wamp",
    "wamp64",
    "apache",
    "apache2",
    "apache24",
    "nginx",
    "php",
    "php5",
    "php7",
    "mysql",
    "tomcat",
];

/// Folders of web and database server installs, wherever they sit (`/opt/lampp/logs`,
/// `/usr/local/apache2/conf`, `/Library/WebServer`, `C:\\php4\\sessions`).
fn server_dir(seg: &str) -> bool {
    const NAMES: &[&str] = &[
        "apache",
        "apache2",
        "httpd",
        "nginx",
        "lampp",
        "lamp",
        "xampp",
        "wamp",
        "htdocs",
        "wwwroot",
        "webserver",
        "tomcat",
        "mysql",
        "sysprep",
    ];
    NAMES.contains(&seg)
        || seg
            .strip_prefix("php")
            .or_else(|| seg.strip_prefix("tomcat"))
            .is_some_and(|v| !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()))
}

/// Extensions of configuration, credential, log and system files.
const SYSTEM_EXTENSIONS: &[&str] = &[
    "conf",
    "cnf",
    "ini",
    "cfg",
    "config",
    "env",
    "pem",
    "key",
    "crt",
    "p12",
    "pfx",
    "jks",
    "keystore",
    "kdbx",
    "htpasswd",
    "htaccess",
    "log",
    "sys",
    "dat",
    "inf",
    "sam",
    "asa",
    "properties",
    "bak",
    "old",
    "db",
    "sqlite",
];

/// File names that are system or credential files wherever they are.
const SYSTEM_FILES: &[&str] = &[
    "passwd",
    "shadow",
    "group",
    "hosts",
    "sudoers",
    "authorized_keys",
    "known_hosts",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "credentials",
    "environ",
    "cmdline",
    "wp-config.php",
    "tomcat-users.xml",
    "web.config",
    "ntuser.dat",
    "access_log",
    "error_log",
    "apachectl",
];

fn extension(name: &str) -> Option<&str> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty()).then_some(ext)
}

/// Whether a path's segments point at a hidden, configuration or credential file.
fn sensitive_leaf(segments: &[&str]) -> bool {
    let hidden = segments
        .iter()
        .any(|s| s.len() > 1 && s.starts_with('.') && *s != "..");
    let last = segments.last().copied().unwrap_or("");
    hidden
        || SYSTEM_FILES.contains(&last)
        || extension(last).is_some_and(|e| SYSTEM_EXTENSIONS.contains(&e))
}

/// Folders of a server install that hold its configuration, logs and programs.
const INSTALL_DIRS: &[&str] = &["conf", "logs", "log", "bin", "etc", "htdocs", "sessions"];

/// Whether a path under a shared root reaches a sensitive file, or a file of a server
/// install: a server folder (`lampp`, `apache2`) and then a file with an extension or
/// an install folder (`/opt/lampp/logs/access_log`). A server name as a user or record
/// name (`/users/lamp/22925`) is not enough.
fn under_shared_root(segs: &[&str]) -> bool {
    if segs.len() < 3 {
        return false;
    }
    let install = segs[1..]
        .iter()
        .position(|s| server_dir(s))
        .is_some_and(|k| {
            let after = &segs[k + 2..];
            after.iter().any(|s| INSTALL_DIRS.contains(s))
                || (!after.is_empty() && after.last().and_then(|l| extension(l)).is_some())
        });
    install || sensitive_leaf(segs)
}

/// Whether the first folder of a Unix path is one that [`unix`] looks into (checked
/// before the path is split, so that web routes cost one comparison).
fn interesting_root(p: &str) -> bool {
    let first = p.trim_start_matches('/').split('/').next().unwrap_or("");
    matches!(
        first,
        "etc"
            | "proc"
            | "boot"
            | "root"
            | "sys"
            | "dev"
            | "var"
            | "usr"
            | "private"
            | "home"
            | "users"
            | "opt"
            | "srv"
            | "mnt"
            | "media"
            | "app"
            | "data"
            | "tmp"
            | "run"
            | "library"
            | "applications"
            | "snap"
            | "nix"
            | "."
    )
}

fn unix(p: &str) -> bool {
    if !interesting_root(p) {
        return false;
    }
    let segs: Vec<&str> = p
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .take(32)
        .collect();
    if segs.len() < 2 {
        return false;
    }
    let second = segs[1];
    match segs[0] {
        r if UNIX_SYSTEM_ROOTS.contains(&r) => true,
        "sys" => SYS_DIRS.contains(&second),
        "dev" => DEV_NAMES.contains(&second),
        "var" => {
            (VAR_DIRS.contains(&second) && segs.len() >= 3)
                || (second == "lib" && segs.get(2).is_some_and(|d| VAR_LIB_DIRS.contains(d)))
                || under_shared_root(&segs)
        }
        "usr" => segs.contains(&"etc") || under_shared_root(&segs),
        "private" => matches!(second, "etc" | "var") || sensitive_leaf(&segs),
        // Shared roots: home folders, installs, data and temporary files. Only hidden,
        // configuration and credential files, and server installs, count here
        // (`/home/u/.ssh/id_rsa`, `/opt/app/.env`, `/opt/lampp/logs/x`);
        // `/home/index.html` and `/users/42` are web routes.
        "home" | "users" | "opt" | "srv" | "mnt" | "media" | "app" | "data" | "tmp" | "run"
        | "library" | "applications" | "snap" | "nix" => under_shared_root(&segs),
        _ => false,
    }
}

fn windows(p: &str) -> bool {
    // `c:` then the rest, with either separator.
    let segs: Vec<&str> = p[2..]
        .split(['\\', '/'])
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != ".")
        .take(32)
        .collect();
    let Some(first) = segs.first() else {
        return false;
    };
    if WIN_SYSTEM_ROOTS.contains(first) || segs.iter().any(|s| server_dir(s)) {
        return true;
    }
    // A file at the root of a drive (`C:\boot.ini`, `D:\web.config`), or a system file
    // anywhere (`C:\users\administrator\ntuser.dat`, `E:\site\web.config`).
    (segs.len() == 1 && extension(first).is_some()) || sensitive_leaf(&segs)
}

/// The reason if `norm` (a normalized input) is, as a whole, the absolute path of a
/// system file or folder (see the module documentation).
pub fn detect(norm: &str) -> Option<&'static str> {
    let p = norm.trim_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'');
    if p.len() > MAX_PATH_BYTES || p.contains(['?', '#', '<', '>', '|', '*']) {
        return None;
    }
    let b = p.as_bytes();
    if b.first() == Some(&b'/') {
        if b.get(1) == Some(&b'/') || p.contains(char::is_whitespace) {
            return None;
        }
        return unix(p).then_some("absolute path of a system file");
    }
    let drive =
        b.len() > 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && matches!(b[2], b'\\' | b'/');
    // Windows folder names hold spaces (`program files`); a sentence that starts with a
    // drive letter does not hold two path separators in a row of words.
    if drive && p.split(['\\', '/']).all(|s| s.split(' ').count() <= 4) {
        return windows(p).then_some("absolute path of a system file");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;

    #[test]
    fn system_paths() {
        for s in [
            "/etc/ssl/openssl.cnf",
            "/etc/hostname",
            "/proc/self/environ",
            "/proc/version",
            "/root/.bash_history",
            "/boot/grub/grub.cfg",
            "/sys/class/net/eth0/address",
            "/dev/shm/x",
            "/var/log/nginx/access.log",
            "/var/www/html/config.php",
            "/var/lib/mysql/mysql/user.MYD",
            "/usr/local/etc/php.ini",
            "/usr/local/apache2/conf/httpd.conf",
            "/private/etc/master.passwd",
            "/home/alice/.ssh/id_rsa",
            "/Users/bob/.aws/credentials",
            "/opt/app/.env",
            "/srv/app/config/database.yml.bak",
            "C:\\Windows\\win.ini",
            "C:/Windows/System32/drivers/etc/hosts",
            "D:/inetpub/wwwroot/web.config",
            "c:\\boot.ini",
            "C:/Program Files/MySQL/my.ini",
            "C:/documents and settings/administrator/ntuser.dat",
            "E:\\sites\\shop\\web.config",
            "C:/xampp/apache/conf/httpd.conf",
            "/opt/lampp/logs/access_log",
            "/usr/local/apache2/htdocs/index.html",
            "/Library/WebServer/Documents/index.html",
            "C:/logs/httpd/error_log",
            "C:/php4/sessions/",
            "%2Fetc%2Fssl%2Fopenssl.cnf",
            "/etc//./passwd",
        ] {
            assert!(detect(&normalize(s)).is_some(), "missed {s:?}");
        }
    }

    #[test]
    fn not_system_paths() {
        for s in [
            "/api/v1/users",
            "/users/42",
            "/users/42/orders",
            "/blog/2024/05/hello-world",
            "/static/js/app.3f2a1b.js",
            "/home",
            "/home/index.html",
            "/etc",
            "//cdn.example.com/lib.js",
            "report.pdf",
            "config.ini",
            "C:\\fakepath\\photo.jpg",
            "C:\\Users\\bob\\Desktop\\holiday.png",
            "https://example.com/etc/passwd",
            "/search?q=/etc/passwd",
            "/tmp/upload_8f3a.png",
            "/var/folders",
            "/opt/homebrew/bin",
            "/dev/docs/getting-started",
            "/sys/login",
            "a: see /etc for the files",
            "10:30/11:45",
            "/products/shoes/red.html",
            "/data/exports/2024-05.csv",
            "/docs/nginx/setup",
            "/opt/homebrew/share/man",
            "/blog/php7-release-notes",
            "/users/lamp/22925",
            "/home/nginx/profile",
        ] {
            assert!(detect(&normalize(s)).is_none(), "false positive on {s:?}");
        }
    }
}
