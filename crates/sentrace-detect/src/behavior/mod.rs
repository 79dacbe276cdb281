//! Behavioral detectors with per-tenant baselines.
//!
//! All windows run on span time (start time, or the batch's receive time when a span has
//! none), so replaying recorded traffic gives the same findings as live ingest. Thresholds
//! live in [`BehaviorConfig`] (the `[behavior]` table of a ruleset). Memory is bounded:
//! every table holds at most `max_keys` keys per tenant and evicts the least recently seen.
//!
//! | detector | fires when | warm-up |
//! |---|---|---|
//! | `new_edge` | a parent span in service A has a child in service B (or a client span names `peer.service` B) and A→B was never seen | A is warm |
//! | `new_endpoint` | an entry span's (service, route) was never seen; or the first entry span of a service never seen, once the tenant is warm | the service is warm |
//! | `brute_force` | `brute_force_failures` auth failures from one client address, or against one user, within `auth_window_secs` | no |
//! | `credential_stuffing` | auth failures over `stuffing_distinct_users` distinct users from one client within the window | no |
//! | `enumeration` | `enumeration_distinct_ids` distinct object ids answered 403/404 to one client within the window | no |
//! | `exfiltration` | a response above `median + exfil_mad_k·1.4826·MAD`, `exfil_min_ratio`·median and `exfil_min_bytes` for its endpoint | 30 size samples of the endpoint |
//! | `privilege_probing` | `probe_denials` 401/403 on admin routes from one client, then a 2xx on an admin route, within `probe_window_secs` | no |
//! | `error_shift`, `latency_shift`, `volume_shift` | a closed bucket of a service is more than `shift_mad_k` scaled MADs above the median of the previous buckets | 10 closed buckets of the service |
//!
//! Warm-up is by evidence, per baseline, never by a clock from process start. A service is
//! warm once it has shown `warmup_min_spans` spans from `warmup_min_sources` distinct
//! traces, covering `warmup_secs` of span time ([`evidence`]); the tenant as a whole is
//! warm by the same rule over all its spans. The state of every baseline, its evidence
//! included, can be taken out as a [`BaselineSnapshot`] and put back after a restart
//! ([`Baselines::restore`]), so a restarted server reports a new edge at once.
//!
//! An authentication failure is a 401, or a 400/403 on a login-like route. After a finding,
//! the same detector stays quiet for the same key for `cooldown_secs`.

mod bounded;
mod config;
pub mod evidence;
mod snapshot;

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use sentrace_core::TenantId;
use sentrace_core::proto::trace::v1::ResourceSpans;
use sentrace_core::proto::trace::v1::span::SpanKind;

pub use bounded::Bounded;
pub use config::BehaviorConfig;
pub use evidence::WarmupEvidence;
pub use snapshot::{BASELINE_FORMAT, BASELINE_FORMAT_MIN, BaselineSnapshot, SnapshotError};

use crate::detector::{Compiled, Draft, make_finding};
use crate::finding::{Evidence, Finding};
use crate::span::{self, SpanRef};

/// Names of the builtin behavioral detectors.
pub const BEHAVIORAL_MATCHERS: &[&str] = &[
    "new_edge",
    "new_endpoint",
    "brute_force",
    "credential_stuffing",
    "enumeration",
    "exfiltration",
    "privilege_probing",
    "error_shift",
    "latency_shift",
    "volume_shift",
];

/// Most tenants tracked at once.
pub const MAX_TENANTS: usize = 4_096;
/// Response sizes kept per endpoint.
pub const SIZE_SAMPLES: usize = 256;
/// Events kept per key in a sliding window.
pub const MAX_WINDOW_EVENTS: usize = 1_024;
/// Closed buckets needed before shifts are judged.
pub const MIN_SHIFT_HISTORY: usize = 10;
/// Response sizes needed before exfiltration is judged.
pub const MIN_SIZE_SAMPLES: usize = 30;

const NANOS: u64 = 1_000_000_000;

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Bucket {
    index: u64,
    count: u64,
    errors: u64,
    latency_sum_ms: f64,
}

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Series {
    current: Bucket,
    history: VecDeque<(f64, f64, f64)>,
}

/// Recent response sizes of one endpoint, with a cached median and MAD.
#[derive(Debug, Default)]
struct Sizes {
    ring: VecDeque<u64>,
    stats: Option<(f64, f64)>,
    since_stats: u32,
}

/// New samples after which the cached median and MAD are recomputed.
const STATS_REFRESH: u32 = 16;

#[derive(Debug)]
struct TenantState {
    /// Evidence over all the tenant's spans.
    tenant_ev: WarmupEvidence,
    /// Evidence per service.
    services: Bounded<String, WarmupEvidence>,
    /// Latest span time observed.
    last_seen: u64,
    /// Changed since the last snapshot.
    dirty: bool,
    edges: Bounded<(String, String), ()>,
    endpoints: Bounded<(String, String), ()>,
    auth_by_client: Bounded<String, VecDeque<(u64, String)>>,
    auth_by_user: Bounded<String, VecDeque<u64>>,
    denied_ids: Bounded<String, VecDeque<(u64, String)>>,
    admin_denials: Bounded<String, VecDeque<u64>>,
    sizes: Bounded<(String, String), Sizes>,
    series: Bounded<String, Series>,
    fired: Bounded<(&'static str, String), u64>,
}

impl TenantState {
    fn new(cap: usize) -> Self {
        Self {
            tenant_ev: WarmupEvidence::default(),
            services: Bounded::new(cap),
            last_seen: 0,
            dirty: false,
            edges: Bounded::new(cap),
            endpoints: Bounded::new(cap),
            auth_by_client: Bounded::new(cap),
            auth_by_user: Bounded::new(cap),
            denied_ids: Bounded::new(cap),
            admin_denials: Bounded::new(cap),
            sizes: Bounded::new(cap),
            series: Bounded::new(cap),
            fired: Bounded::new(cap),
        }
    }
}

/// Per-tenant baselines. Interior mutability: one lock per [`Baselines::observe`] call.
#[derive(Debug)]
pub struct Baselines {
    tenants: Mutex<Bounded<TenantId, TenantState>>,
}

impl Default for Baselines {
    fn default() -> Self {
        Self::new()
    }
}

/// A segment that names one object: a number, a UUID, or a long token with digits.
fn is_id_segment(seg: &str) -> bool {
    !seg.is_empty()
        && (seg.bytes().all(|b| b.is_ascii_digit())
            || (seg.len() >= 16 && seg.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
            || (seg.len() >= 8
                && seg.bytes().any(|b| b.is_ascii_digit())
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')))
}

/// The route template of a path (`/orders/123` -> `/orders/{id}`) and its first object id.
pub fn route_of(path: &str) -> (String, Option<String>) {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let mut id = None;
    let segs: Vec<&str> = path
        .split('/')
        .take(16)
        .map(|s| {
            if is_id_segment(s) {
                if id.is_none() {
                    id = Some(s.to_string());
                }
                "{id}"
            } else {
                s
            }
        })
        .collect();
    (segs.join("/"), id)
}

/// Median by selection (linear time; no full sort).
fn median(v: &mut [f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    let (lower, mid, _) = v.select_nth_unstable_by(n / 2, |a, b| a.total_cmp(b));
    let mid = *mid;
    if n % 2 == 1 {
        mid
    } else {
        // The other middle value is the largest of the lower part.
        let below = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (below + mid) / 2.0
    }
}

/// Median and median absolute deviation.
pub fn median_mad(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let mut v: Vec<f64> = values.collect();
    let m = median(&mut v);
    let mut dev: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
    (m, median(&mut dev))
}

fn prune<T>(q: &mut VecDeque<(u64, T)>, now: u64, window: u64) {
    while q
        .front()
        .is_some_and(|(t, _)| now.saturating_sub(*t) > window)
    {
        q.pop_front();
    }
    while q.len() > MAX_WINDOW_EVENTS {
        q.pop_front();
    }
}

fn prune_times(q: &mut VecDeque<u64>, now: u64, window: u64) {
    while q.front().is_some_and(|t| now.saturating_sub(*t) > window) {
        q.pop_front();
    }
    while q.len() > MAX_WINDOW_EVENTS {
        q.pop_front();
    }
}

struct Emitter<'a> {
    tenant: &'a TenantId,
    rules: &'a Compiled,
    cooldown: u64,
    out: &'a mut Vec<Finding>,
}

impl Emitter<'_> {
    #[allow(clippy::too_many_arguments)]
    fn fire(
        &mut self,
        fired: &mut Bounded<(&'static str, String), u64>,
        matcher: &'static str,
        key: &str,
        t: u64,
        s: Option<&SpanRef<'_>>,
        service: &str,
        attribute: &str,
        snippet: String,
    ) {
        let Some(rule) = self.rules.rule_for(matcher) else {
            return;
        };
        let last = fired.entry((matcher, key.to_string()), || 0);
        if *last != 0 && t.saturating_sub(*last) < self.cooldown {
            return;
        }
        *last = t.max(1);
        let evidence = Evidence {
            trace_id: s.and_then(|s| s.trace_id()),
            span_id: s.and_then(|s| s.span_id()),
            attribute: attribute.to_string(),
            snippet: snippet.clone(),
            reason: matcher.to_string(),
        };
        let draft = Draft {
            time_unix_nanos: t,
            service,
            subject: s.map(|s| s.subject()).unwrap_or_default(),
            evidences: vec![evidence],
            message: format!("{}: {snippet}", rule.name),
        };
        self.out.push(make_finding(
            self.tenant,
            rule,
            &self.rules.ruleset.version,
            draft,
        ));
    }
}

impl Baselines {
    /// Empty baselines.
    pub fn new() -> Self {
        Self {
            tenants: Mutex::new(Bounded::new(MAX_TENANTS)),
        }
    }

    /// Feeds a batch to the tenant's baselines and appends behavioral findings to `out`.
    pub(crate) fn observe(
        &self,
        tenant: &TenantId,
        rules: &Compiled,
        rs: &[ResourceSpans],
        now: u64,
        out: &mut Vec<Finding>,
    ) {
        let cfg = &rules.ruleset.behavior;
        let has_behavioral = rules
            .ruleset
            .rules
            .iter()
            .any(|r| r.kind == crate::RuleKind::Behavioral);
        if !has_behavioral {
            return;
        }
        let Ok(mut tenants) = self.tenants.lock() else {
            return;
        };
        let spans: Vec<SpanRef<'_>> = span::spans(rs).collect();
        if spans.is_empty() {
            return;
        }
        let st = tenants.entry(tenant.clone(), || TenantState::new(cfg.max_keys));
        st.dirty = true;
        let mut em = Emitter {
            tenant,
            rules,
            cooldown: cfg.cooldown_secs.saturating_mul(NANOS),
            out,
        };
        let service_of: HashMap<&[u8], &str> = spans
            .iter()
            .map(|s| (s.span.span_id.as_slice(), s.service))
            .collect();
        for s in &spans {
            let t = if s.span.start_time_unix_nano == 0 {
                now
            } else {
                s.span.start_time_unix_nano
            };
            st.last_seen = st.last_seen.max(t);
            // Evidence, judged before this span counts.
            let src = (!s.span.trace_id.is_empty()).then(|| evidence::source_of(&s.span.trace_id));
            let svc_key = s.service.to_string();
            let new_service = !st.services.contains(&svc_key) && st.tenant_ev.is_warm(cfg);
            st.tenant_ev.observe(t, src, cfg);
            let ev = st.services.entry(svc_key, WarmupEvidence::default);
            let svc_warm = ev.is_warm(cfg);
            ev.observe(t, src, cfg);
            // Service edges.
            let mut edges: Vec<(String, String)> = Vec::new();
            if let Some(ps) = service_of.get(s.span.parent_span_id.as_slice())
                && *ps != s.service
            {
                edges.push((ps.to_string(), s.service.to_string()));
            }
            if s.kind() == SpanKind::Client
                && let Some(peer) = s.str("peer.service")
                && peer != s.service
            {
                edges.push((s.service.to_string(), peer.to_string()));
            }
            for e in edges {
                if !st.edges.contains(&e) {
                    st.edges.entry(e.clone(), || ());
                    let caller_warm = if e.0 == s.service {
                        svc_warm
                    } else {
                        st.services.get_mut(&e.0).is_some_and(|ev| ev.is_warm(cfg))
                    };
                    if caller_warm {
                        let snip = format!("{} -> {}", e.0, e.1);
                        em.fire(
                            &mut st.fired,
                            "new_edge",
                            &snip,
                            t,
                            Some(s),
                            &e.0,
                            "service edge",
                            snip.clone(),
                        );
                    }
                } else {
                    st.edges.entry(e, || ());
                }
            }
            if !s.is_entry() {
                continue;
            }
            let Some(path) = s.route() else { continue };
            let (route, object_id) = if s.str("http.route").is_some() {
                (
                    path.to_string(),
                    s.str("url.path").and_then(|p| route_of(p).1),
                )
            } else {
                route_of(path)
            };
            let ep = (s.service.to_string(), route.clone());
            if !st.endpoints.contains(&ep) {
                st.endpoints.entry(ep.clone(), || ());
                if svc_warm || new_service {
                    let snip = format!("{} {}", s.service, route);
                    em.fire(
                        &mut st.fired,
                        "new_endpoint",
                        &snip,
                        t,
                        Some(s),
                        s.service,
                        "http.route",
                        snip.clone(),
                    );
                }
            } else {
                st.endpoints.entry(ep, || ());
            }
            let status = s.status().unwrap_or(0);
            let subject = s.subject();
            let client = subject.client_address.clone().unwrap_or_default();
            let route_l = route.to_ascii_lowercase();
            let loginish = [
                "login", "signin", "sign-in", "auth", "token", "session", "password",
            ]
            .iter()
            .any(|m| route_l.contains(m));
            let auth_failure = status == 401 || (loginish && matches!(status, 400 | 403));
            if auth_failure {
                let win = cfg.auth_window_secs.saturating_mul(NANOS);
                let user = subject.user.clone().unwrap_or_default();
                if !client.is_empty() {
                    let q = st.auth_by_client.entry(client.clone(), VecDeque::new);
                    q.push_back((t, user.clone()));
                    prune(q, t, win);
                    let n = q.len();
                    let mut users: Vec<&str> = q
                        .iter()
                        .map(|(_, u)| u.as_str())
                        .filter(|u| !u.is_empty())
                        .collect();
                    users.sort_unstable();
                    users.dedup();
                    let distinct = users.len();
                    if distinct >= cfg.stuffing_distinct_users as usize {
                        let snip = format!(
                            "{n} auth failures over {distinct} users from one client in {}s",
                            cfg.auth_window_secs
                        );
                        em.fire(
                            &mut st.fired,
                            "credential_stuffing",
                            &client,
                            t,
                            Some(s),
                            s.service,
                            "client.address",
                            snip,
                        );
                    } else if n >= cfg.brute_force_failures as usize {
                        let snip = format!(
                            "{n} auth failures from one client in {}s",
                            cfg.auth_window_secs
                        );
                        em.fire(
                            &mut st.fired,
                            "brute_force",
                            &client,
                            t,
                            Some(s),
                            s.service,
                            "client.address",
                            snip,
                        );
                    }
                }
                if !user.is_empty() {
                    let q = st.auth_by_user.entry(user.clone(), VecDeque::new);
                    q.push_back(t);
                    prune_times(q, t, win);
                    if q.len() >= cfg.brute_force_failures as usize {
                        let snip = format!(
                            "{} auth failures against one user in {}s",
                            q.len(),
                            cfg.auth_window_secs
                        );
                        em.fire(
                            &mut st.fired,
                            "brute_force",
                            &format!("user:{user}"),
                            t,
                            Some(s),
                            s.service,
                            "enduser.id",
                            snip,
                        );
                    }
                }
            }
            if matches!(status, 403 | 404)
                && !client.is_empty()
                && let Some(id) = object_id.clone()
            {
                let win = cfg.enumeration_window_secs.saturating_mul(NANOS);
                let q = st.denied_ids.entry(client.clone(), VecDeque::new);
                q.push_back((t, id));
                prune(q, t, win);
                let mut ids: Vec<&str> = q.iter().map(|(_, i)| i.as_str()).collect();
                ids.sort_unstable();
                ids.dedup();
                if ids.len() >= cfg.enumeration_distinct_ids as usize {
                    let snip = format!(
                        "{} distinct ids denied or missing on {route} in {}s",
                        ids.len(),
                        cfg.enumeration_window_secs
                    );
                    em.fire(
                        &mut st.fired,
                        "enumeration",
                        &client,
                        t,
                        Some(s),
                        s.service,
                        "url.path",
                        snip,
                    );
                }
            }
            let admin = route_l
                .split('/')
                .any(|seg| cfg.admin_markers.iter().any(|m| seg.contains(m.as_str())));
            if admin && !client.is_empty() {
                let win = cfg.probe_window_secs.saturating_mul(NANOS);
                let q = st.admin_denials.entry(client.clone(), VecDeque::new);
                prune_times(q, t, win);
                if matches!(status, 401 | 403) {
                    q.push_back(t);
                } else if (200..300).contains(&status) && q.len() >= cfg.probe_denials as usize {
                    let snip = format!("{} admin denials then success on {route}", q.len());
                    em.fire(
                        &mut st.fired,
                        "privilege_probing",
                        &client,
                        t,
                        Some(s),
                        s.service,
                        "http.route",
                        snip,
                    );
                }
            }
            let size = s
                .int("http.response.body.size")
                .or_else(|| s.int("http.response_content_length"))
                .or_else(|| s.int("http.response.header.content-length"))
                .and_then(|v| u64::try_from(v).ok());
            if let Some(size) = size {
                let sz = st
                    .sizes
                    .entry((s.service.to_string(), route.clone()), Sizes::default);
                if sz.stats.is_none() || sz.since_stats >= STATS_REFRESH {
                    sz.stats = (sz.ring.len() >= MIN_SIZE_SAMPLES)
                        .then(|| median_mad(sz.ring.iter().map(|v| *v as f64)));
                    sz.since_stats = 0;
                }
                if let Some((m, mad)) = sz.stats {
                    let x = size as f64;
                    if x > m + cfg.exfil_mad_k * 1.4826 * mad.max(1.0)
                        && x >= cfg.exfil_min_ratio * m
                        && size >= cfg.exfil_min_bytes
                    {
                        let snip =
                            format!("response of {size} bytes on {route}; baseline median {m:.0}");
                        em.fire(
                            &mut st.fired,
                            "exfiltration",
                            &format!("{} {route}", s.service),
                            t,
                            Some(s),
                            s.service,
                            "http.response.body.size",
                            snip,
                        );
                    }
                }
                sz.ring.push_back(size);
                sz.since_stats = sz.since_stats.saturating_add(1);
                if sz.ring.len() > SIZE_SAMPLES {
                    sz.ring.pop_front();
                }
            }
            // Per-service series.
            let bucket_nanos = cfg.shift_bucket_secs.saturating_mul(NANOS).max(1);
            let idx = t / bucket_nanos;
            let series = st.series.entry(s.service.to_string(), Series::default);
            if series.current.count == 0 {
                series.current.index = idx;
            }
            if idx > series.current.index {
                let closed = std::mem::take(&mut series.current);
                series.current.index = idx;
                let c = closed.count as f64;
                let point = (
                    c,
                    closed.errors as f64 / c.max(1.0),
                    closed.latency_sum_ms / c.max(1.0),
                );
                let bucket_t = closed.index.saturating_add(1).saturating_mul(bucket_nanos);
                if series.history.len() >= MIN_SHIFT_HISTORY && closed.count >= cfg.shift_min_count
                {
                    let k = cfg.shift_mad_k;
                    let (mc, madc) = median_mad(series.history.iter().map(|p| p.0));
                    let (me, made) = median_mad(series.history.iter().map(|p| p.1));
                    let (ml, madl) = median_mad(series.history.iter().map(|p| p.2));
                    let mut shifts: Vec<(&'static str, String)> = Vec::new();
                    if point.0 > mc + k * (1.4826 * madc).max(0.1 * mc).max(1.0) {
                        shifts.push((
                            "volume_shift",
                            format!(
                                "{} spans in {}s, median {mc:.0}",
                                closed.count, cfg.shift_bucket_secs
                            ),
                        ));
                    }
                    if point.1 > me + k * (1.4826 * made).max(0.01) && closed.errors >= 5 {
                        shifts.push((
                            "error_shift",
                            format!(
                                "error rate {:.1}%, median {:.1}%",
                                point.1 * 100.0,
                                me * 100.0
                            ),
                        ));
                    }
                    if point.2 > ml + k * (1.4826 * madl).max(0.1 * ml) {
                        shifts.push((
                            "latency_shift",
                            format!("mean latency {:.0} ms, median {ml:.0} ms", point.2),
                        ));
                    }
                    for (m, snip) in shifts {
                        em.fire(
                            &mut st.fired,
                            m,
                            s.service,
                            bucket_t,
                            None,
                            s.service,
                            "service",
                            snip,
                        );
                    }
                }
                series.history.push_back(point);
                while series.history.len() > cfg.shift_history {
                    series.history.pop_front();
                }
            }
            let series = st.series.entry(s.service.to_string(), Series::default);
            series.current.count += 1;
            if status >= 500 {
                series.current.errors += 1;
            }
            series.current.latency_sum_ms += s.duration_nanos() as f64 / 1e6;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_ids() {
        assert_eq!(
            route_of("/api/orders/123"),
            ("/api/orders/{id}".into(), Some("123".into()))
        );
        assert_eq!(
            route_of("/u/3f2504e0-4f89-11d3-9a0c-0305e82c3301/x?y=1").0,
            "/u/{id}/x"
        );
        assert_eq!(route_of("/products/shoes").0, "/products/shoes");
    }

    #[test]
    fn robust_stats() {
        let (m, mad) = median_mad([1.0, 2.0, 3.0, 4.0, 100.0].into_iter());
        assert_eq!(m, 3.0);
        assert_eq!(mad, 1.0);
    }
}
