//! Seeded benign request bodies of the kinds real services receive and that look like
//! attacks to a rule that sees no context: CI job definitions whose `script` carries
//! shell, CMS page fragments with embedded video players, markdown documents, code
//! snippets, support-desk prose with punctuation, and SQL that a service's own database
//! client spans carry in `db.statement`.
//!
//! Each set is generated from templates filled with varied words, paths and numbers, so a
//! set of 10,000 values holds many distinct bodies; every template is something a
//! developer, editor or customer writes every day.
#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A benign set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Set {
    /// CI/CD job definitions: `script` holds shell.
    Ci,
    /// CMS page fragments: `html` holds markup with iframes.
    Cms,
    /// Markdown documents with code spans, tables and lists.
    Markdown,
    /// Code snippets posted to a paste or Q&A service.
    Code,
    /// Support tickets and comments: prose with semicolons, pipes, parentheses.
    Prose,
    /// A server span with a child database span whose statement reads catalogues.
    Db,
}

impl Set {
    /// Every set, in report order.
    pub const ALL: [Set; 6] = [
        Set::Ci,
        Set::Cms,
        Set::Markdown,
        Set::Code,
        Set::Prose,
        Set::Db,
    ];

    /// Short name for the report.
    pub fn name(self) -> &'static str {
        match self {
            Set::Ci => "CI job scripts",
            Set::Cms => "CMS HTML (iframes)",
            Set::Markdown => "markdown",
            Set::Code => "code snippets",
            Set::Prose => "prose (punctuation)",
            Set::Db => "SQL in DB spans",
        }
    }
}

const PKGS: &[&str] = &[
    "web",
    "api",
    "billing",
    "search-ui",
    "auth",
    "worker",
    "docs",
];
const DIRS: &[&str] = &[
    "build",
    "dist",
    "coverage",
    "node_modules/.cache",
    "target",
    "out",
];
const BRANCHES: &[&str] = &["main", "release/2.4", "feature/login-form", "fix/ci-cache"];
const HOSTS: &[&str] = &[
    "registry.example.com",
    "artifacts.example.org",
    "get.example.dev",
    "mirror.example.net",
];

const CI_LINES: &[&str] = &[
    "npm ci && npm test; chmod +x ./deploy.sh",
    "curl -fsSL https://{host}/install.sh -o install.sh",
    "rm -rf {dir} dist",
    "export NODE_ENV=production",
    "cd packages/{pkg} && npm run build",
    "docker build -t {host}/{pkg}:$CI_COMMIT_SHA .",
    "docker push {host}/{pkg}:$CI_COMMIT_SHA",
    "cargo test --workspace --locked",
    "pip install -r requirements.txt && pytest -q",
    "echo \"Deploying $CI_COMMIT_REF_NAME to staging\"",
    "if [ \"$CI_COMMIT_BRANCH\" = \"{branch}\" ]; then ./scripts/release.sh; fi",
    "ls -la {dir}",
    "tar czf {pkg}.tar.gz {dir}",
    "git fetch origin {branch} && git diff --stat origin/{branch}...HEAD",
    "kubectl apply -f k8s/{pkg}.yaml",
    "./gradlew assemble --no-daemon | tee build.log",
    "make -j$(nproc) all",
    "sha256sum {pkg}.tar.gz > {pkg}.tar.gz.sha256",
    "cat coverage/lcov.info | npx coveralls",
    "whoami && id && uname -a",
    "test -f .env || cp .env.example .env",
    "find . -name '*.pyc' -delete",
    "apt-get update && apt-get install -y jq",
    "mkdir -p $HOME/.cache/{pkg} && cp -r {dir} $HOME/.cache/{pkg}/",
    "for f in dist/*.js; do gzip -k \"$f\"; done",
];

const CMS_BLOCKS: &[&str] = &[
    "<p>Watch the {topic} walkthrough below.</p>",
    "<iframe src=\"https://player.example/embed/{vid}\" width=\"640\" height=\"360\" frameborder=\"0\" allowfullscreen></iframe>",
    "<figure class=\"video\"><iframe src=\"https://video.example.com/embed/{vid}?rel=0\" title=\"{topic}\" allow=\"autoplay; encrypted-media\" allowfullscreen></iframe></figure>",
    "<h2>{topic}</h2><p>Read more in our <a href=\"/blog/{slug}\">guide</a>.</p>",
    "<img src=\"/media/{slug}.jpg\" alt=\"{topic}\" loading=\"lazy\">",
    "<ul><li>Step 1: unbox</li><li>Step 2: plug in (USB-C)</li></ul>",
    "<blockquote>It just works; I use it daily.</blockquote>",
    "<p>Prices from $19.99 &amp; free shipping (EU only).</p>",
    "<div class=\"embed\"><iframe src=\"https://maps.example.com/embed?pb={vid}\" style=\"border:0\" allowfullscreen=\"\" loading=\"lazy\"></iframe></div>",
    "<table><tr><th>Size</th><th>Price</th></tr><tr><td>M</td><td>$25</td></tr></table>",
    "<p>Contact us at <a href=\"mailto:press@example.com\">press@example.com</a> or call (555) 123-4567.</p>",
];

const MD_BLOCKS: &[&str] = &[
    "# {topic}\n\nInstall with `npm install {pkg}`; then run `npx {pkg} init`.",
    "| Option | Default | Description |\n|---|---|---|\n| `--port` | 8080 | Port to listen on |\n| `--verbose` | false | More logs |",
    "```bash\ncurl -s https://{host}/v1/status | jq .state\n```",
    "> **Note:** paths such as `/api/v1/users` are versioned.",
    "- [x] migrate {pkg}\n- [ ] update docs (see #42)",
    "Use `a | b` to pipe, and `a && b` to chain.",
    "```sql\nSELECT id, name FROM users WHERE active = true ORDER BY name;\n```",
    "See [the guide](https://docs.example.com/{slug}) for details.",
    "1. Open settings\n2. Choose *Security*\n3. Click **Save**",
    "The config lives in `config/{pkg}.toml`; restart after editing.",
];

const CODE_SNIPPETS: &[&str] = &[
    "const url = `${base}/api/${id}`;\nfetch(url).then(r => r.json());",
    "def total(items):\n    return sum(i.price * i.qty for i in items)",
    "for (let i = 0; i < n; i++) { sum += a[i]; }",
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public';",
    "if err != nil {\n\treturn fmt.Errorf(\"open %s: %w\", path, err)\n}",
    "let greeting = format!(\"Hello, {}!\", name);",
    "echo \"$HOME\"; ls -la | grep .env",
    "SELECT current_setting('search_path');",
    "import os\nprint(os.path.join(base_dir, 'static'))",
    "<div class=\"{{ cls }}\">{{ user.name }}</div>",
    "@media (max-width: 600px) { .nav { display: none; } }",
    "user = User.find_by(email: params[:email])",
];

const PROSE: &[&str] = &[
    "Hi team; the order arrived late (again), but the {topic} is great.",
    "Call me at (555) 123-4567 or mail {user}@example.com; thanks!",
    "Options are A | B | C, pick one.",
    "We tried both (a) restart and (b) reinstall; neither worked.",
    "I read your post about information_schema and pg_settings: very helpful!",
    "The file is in /api/v1/users? No, it's under Settings > Export.",
    "Version 2.3 (build 118) fixed it; version 2.4 broke it again :)",
    "Meeting moved to 3pm; agenda: budget | hiring | roadmap.",
    "Can you check why `id` shows twice in the report?",
    "Dear support, my {topic} shows error 0x80070005 (access denied).",
];

const DB_STATEMENTS: &[&str] = &[
    "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1",
    "SELECT name, setting FROM pg_settings WHERE name = 'max_connections'",
    "SELECT current_setting('server_version_num')",
    "SELECT @@version",
    "SELECT name FROM sqlite_master WHERE type = 'table'",
    "SELECT * FROM sys.objects WHERE type = 'U'",
    "SELECT id, email FROM users WHERE id = $1",
    "UPDATE orders SET status = $1 WHERE id = $2",
];

const TOPICS: &[&str] = &[
    "onboarding",
    "espresso machine",
    "summer sale",
    "product tour",
    "security update",
];

/// Generator of one benign set.
pub struct Realistic {
    rng: StdRng,
}

impl Realistic {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.rng.random_range(0..xs.len())]
    }

    fn fill(&mut self, t: &str) -> String {
        let id: String = (0..11)
            .map(|_| {
                let c = self.rng.random_range(0..62u8);
                char::from(match c {
                    0..=9 => b'0' + c,
                    10..=35 => b'a' + c - 10,
                    _ => b'A' + c - 36,
                })
            })
            .collect();
        let topic = self.pick(TOPICS);
        t.replace("{host}", self.pick(HOSTS))
            .replace("{pkg}", self.pick(PKGS))
            .replace("{dir}", self.pick(DIRS))
            .replace("{branch}", self.pick(BRANCHES))
            .replace("{vid}", &id)
            .replace("{topic}", topic)
            .replace("{slug}", &topic.replace(' ', "-"))
            .replace(
                "{user}",
                self.pick(&["ana", "li.wei", "o.brien", "sam+news"]),
            )
    }

    fn several(&mut self, xs: &[&str], min: usize, max: usize, sep: &str) -> String {
        let n = self.rng.random_range(min..=max);
        (0..n)
            .map(|_| {
                let t = self.pick(xs);
                self.fill(t)
            })
            .collect::<Vec<_>>()
            .join(sep)
    }

    /// One request of `set`: server-span attributes, and the statement of a child
    /// database span where the set has one.
    pub fn request(&mut self, set: Set) -> (Vec<(String, String)>, Option<String>) {
        let json = |k: &str, v: &str| serde_json::json!({ k: v, "id": 42 }).to_string();
        let (path, body, db) = match set {
            Set::Ci => {
                let script = self.several(CI_LINES, 1, 6, "\n");
                (
                    "/api/v4/projects/17/pipelines",
                    json("script", &script),
                    None,
                )
            }
            Set::Cms => {
                let html = self.several(CMS_BLOCKS, 1, 5, "\n");
                ("/wp-json/wp/v2/pages/12", json("html", &html), None)
            }
            Set::Markdown => {
                let md = self.several(MD_BLOCKS, 1, 4, "\n\n");
                ("/api/docs/pages", json("body", &md), None)
            }
            Set::Code => {
                let code = self.several(CODE_SNIPPETS, 1, 2, "\n\n");
                ("/api/snippets", json("content", &code), None)
            }
            Set::Prose => {
                let text = self.several(PROSE, 1, 3, " ");
                ("/api/tickets/881/comments", json("comment", &text), None)
            }
            Set::Db => {
                let stmt = self.pick(DB_STATEMENTS).to_string();
                let q = self.fill("{topic}");
                ("/api/reports", json("name", &q), Some(stmt))
            }
        };
        (
            vec![
                ("http.request.method".into(), "POST".into()),
                ("url.path".into(), path.into()),
                (
                    "http.request.header.content-type".into(),
                    "application/json".into(),
                ),
                ("http.request.body".into(), body),
            ],
            db,
        )
    }
}
