//! Learned context per route and field: the shape of the values each field normally
//! carries, so that a payload hit matching that shape is downgraded instead of raised.
//!
//! A CI service whose `script` body field always carries shell, or a CMS whose `html` field
//! always carries markup with iframes, is not under attack every time a command-injection
//! or XSS rule matches there. For each tenant, service, route (template, as
//! [`crate::behavior::route_of`] makes it) and field (`query.<name>`, `body.<json path>`,
//! `header.<name>`, `cookie.<name>`, `path`, `body`), a [`FieldProfile`] records the
//! [`shape`] of the values seen: character classes, token structures (shell, SQL, HTML,
//! active HTML, path, system path, dot-dot, JSON, template, code) and length.
//!
//! **Downgrade.** A payload hit of a family with a normal carrier ([`shape::structure_of`]:
//! cmdi→shell, xss→html, sqli→sql, path_traversal→path, code_injection→code) is
//! *explained* when the value
//! carries that structure, the field learned it (or an operator pinned it), every class
//! and structure of the value was learned by the field, and the value is no longer than
//! `length_factor`× the longest learned value plus 64 bytes. An explained hit becomes a
//! finding with `downgraded_confidence` (OCSF Low) and severity low, which the server
//! stores but does not send to sinks or response by default. The same content in a field
//! that never carried it keeps its rule's confidence, and so does an XSS with `<script>`
//! or an event handler in a field that learned only inert markup (active HTML is its own
//! structure).
//!
//! **Poisoning.** A field learns a bit (a class or a structure) only when values carrying
//! it came from `min_sources` distinct sources, over `min_secs` of span time, and made
//! `min_share_percent` of the field's values. A source is the request's client address
//! (`client.address`, `source.address`, `net.sock.peer.addr`, `http.client_ip`), else its
//! end user (`enduser.id`, `user.id`, `user.name`); a span with neither is counted in the
//! field's values but is no source, so one client, however many times it sends, never
//! teaches a field anything. A value is never learned from when it was flagged at high
//! confidence: when one of its payload hits is not explained by a structure the value
//! itself carries (a JNDI lookup, an SSRF target, a template probe, an XSS hit on a
//! value with no markup, a code-injection hit on a value that is no program), whatever
//! the field learned. Pins with `never` keep a structure
//! out of a field for good.
//!
//! Memory is bounded: `max_fields` fields per tenant (least recently seen evicted), and
//! per field one evidence record per bit holding at most `min_sources` source hashes,
//! dropped once the bit is learned. The profiles are part of the tenant's
//! [`crate::behavior::BaselineSnapshot`] (format 2), so they survive a restart.

pub mod config;
pub mod shape;

use std::sync::Mutex;

use sentrace_core::TenantId;
use serde::{Deserialize, Serialize};

pub use config::{ContextConfig, Pin};

use crate::behavior::{Bounded, MAX_TENANTS};
use crate::rules::Family;

const NANOS: u64 = 1_000_000_000;
/// Longest field name kept (longer JSON paths or parameter names are cut).
pub const MAX_FIELD_NAME: usize = 128;

/// FNV-1a over parts separated by a zero byte (stable across builds: source hashes are
/// persisted while a field learns).
pub fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Which field of which route of which service.
#[derive(Clone, Copy, Debug)]
pub struct FieldRef<'a> {
    /// `service.name`.
    pub service: &'a str,
    /// Route template.
    pub route: &'a str,
    /// Where in the request: `query`, `body`, `header`, `cookie`, `path`.
    pub location: &'static str,
    /// Parameter name, JSON path or header name (empty for a whole path or body).
    pub name: &'a str,
}

/// `name` cut to [`MAX_FIELD_NAME`] bytes (on a character boundary).
fn short(name: &str) -> &str {
    let mut end = name.len().min(MAX_FIELD_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

impl FieldRef<'_> {
    fn key(&self) -> u64 {
        fnv(&[self.service, self.route, self.location, short(self.name)])
    }

    /// The field as profiles show it (`body.script`).
    pub fn field(&self) -> String {
        let name = short(self.name);
        if name.is_empty() {
            self.location.to_string()
        } else {
            format!("{}.{name}", self.location)
        }
    }
}

/// Where an input was found, as a profile's location and name: `query.<name>`,
/// `body.<json path or form name>`, `header.<name>`, `cookie.<name>`, `path`.
pub fn location<'a>(attribute: &'a str, field: &'a str) -> (&'static str, &'a str) {
    match attribute {
        "url.query" => ("query", field),
        "url.path" => ("path", ""),
        "url.full" | "http.url" | "http.target" if field.is_empty() => ("path", ""),
        "url.full" | "http.url" | "http.target" => ("query", field),
        "user_agent.original" | "http.user_agent" => ("header", "user-agent"),
        "http.request.header.cookie" => ("cookie", field),
        a => match a.strip_prefix("http.request.header.") {
            Some(h) => ("header", h),
            None => ("body", field),
        },
    }
}

/// Hash of a span's source: its client address, else its end user (see the module
/// documentation); `None` when the span names neither.
pub fn source_of(s: &crate::span::SpanRef<'_>) -> Option<u64> {
    [
        "client.address",
        "source.address",
        "net.sock.peer.addr",
        "http.client_ip",
    ]
    .iter()
    .find_map(|k| s.str(k))
    .map(|a| fnv(&["addr", a]))
    .or_else(|| {
        ["enduser.id", "user.id", "user.name"]
            .iter()
            .find_map(|k| s.str(k))
            .map(|u| fnv(&["user", u]))
    })
}

/// Evidence for one bit of a field's shape.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitEvidence {
    /// The bit ([`shape`]).
    pub bit: u32,
    /// Learnable values that carried it.
    pub values: u64,
    /// Distinct sources counted (frozen once learned).
    pub sources: u32,
    /// Span time of the first and the latest such value, Unix ns.
    pub first_unix_nanos: u64,
    /// Span time of the latest such value, Unix ns.
    pub last_unix_nanos: u64,
    /// Source hashes counted so far (at most `min_sources`; emptied once learned).
    #[serde(default)]
    pending: Vec<u64>,
}

/// What one field of one route normally carries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldProfile {
    /// Service.
    pub service: String,
    /// Route template.
    pub route: String,
    /// Field (`body.script`, `query.q`, `header.referer`).
    pub field: String,
    /// Values observed.
    pub values: u64,
    /// Values learned from (not flagged at high confidence, from a known source or not).
    pub learnable: u64,
    /// Longest learnable value, bytes.
    pub max_len: u32,
    /// Sum of the lengths of learnable values (mean = this / learnable).
    pub total_len: u64,
    /// Span time of the first and latest value, Unix ns.
    pub first_unix_nanos: u64,
    /// Span time of the latest value, Unix ns.
    pub last_unix_nanos: u64,
    /// Bits learned ([`shape`]).
    pub learned: u32,
    /// Evidence per bit seen.
    pub bits: Vec<BitEvidence>,
}

impl FieldProfile {
    fn new(f: &FieldRef<'_>) -> Self {
        Self {
            service: f.service.to_string(),
            route: f.route.to_string(),
            field: f.field(),
            values: 0,
            learnable: 0,
            max_len: 0,
            total_len: 0,
            first_unix_nanos: 0,
            last_unix_nanos: 0,
            learned: 0,
            bits: Vec::new(),
        }
    }

    /// Names of the learned structures.
    pub fn structures(&self) -> Vec<&'static str> {
        shape::names(self.learned & !shape::CLASSES)
    }

    /// Names of the learned character classes.
    pub fn classes(&self) -> Vec<&'static str> {
        shape::names(self.learned & shape::CLASSES)
    }

    fn observe(&mut self, o: &Observation, cfg: &ContextConfig, never: u32) {
        self.values = self.values.saturating_add(1);
        if self.first_unix_nanos == 0 || o.time < self.first_unix_nanos {
            self.first_unix_nanos = o.time;
        }
        self.last_unix_nanos = self.last_unix_nanos.max(o.time);
        if !o.learnable {
            return;
        }
        self.learnable = self.learnable.saturating_add(1);
        self.max_len = self.max_len.max(o.len);
        self.total_len = self.total_len.saturating_add(u64::from(o.len));
        let need = cfg.min_sources as usize;
        let mut rest = o.bits & !never;
        while rest != 0 {
            let bit = rest & rest.wrapping_neg();
            rest &= !bit;
            let i = match self.bits.iter().position(|e| e.bit == bit) {
                Some(i) => i,
                None => {
                    self.bits.push(BitEvidence {
                        bit,
                        first_unix_nanos: o.time,
                        ..Default::default()
                    });
                    self.bits.len() - 1
                }
            };
            let e = &mut self.bits[i];
            e.values = e.values.saturating_add(1);
            e.first_unix_nanos = e.first_unix_nanos.min(o.time);
            e.last_unix_nanos = e.last_unix_nanos.max(o.time);
            if self.learned & bit != 0 {
                continue;
            }
            if let Some(src) = o.source
                && e.pending.len() < need
                && let Err(at) = e.pending.binary_search(&src)
            {
                e.pending.insert(at, src);
                e.sources = e.pending.len() as u32;
            }
            let covered = e.last_unix_nanos.saturating_sub(e.first_unix_nanos);
            if e.pending.len() >= need
                && covered >= cfg.min_secs.saturating_mul(NANOS)
                && u128::from(e.values) * 100
                    >= u128::from(cfg.min_share_percent) * u128::from(self.values)
            {
                self.learned |= bit;
                e.pending = Vec::new();
            }
        }
    }

    /// Brings a restored profile within bounds.
    fn check(&mut self, cfg: &ContextConfig) -> Result<(), String> {
        if self.bits.len() > 32 {
            return Err(format!(
                "field {}: {} bit records",
                self.field,
                self.bits.len()
            ));
        }
        for e in &mut self.bits {
            if e.bit.count_ones() != 1 {
                return Err(format!("field {}: bit record {:#x}", self.field, e.bit));
            }
            e.pending.truncate(cfg.min_sources as usize);
            e.pending.sort_unstable();
            e.pending.dedup();
        }
        if self.field.len() > MAX_FIELD_NAME + 16 {
            return Err(format!("field name of {} bytes", self.field.len()));
        }
        Ok(())
    }
}

/// One value seen in a field, for learning.
#[derive(Clone, Copy, Debug)]
pub struct Observation {
    /// Its [`shape`].
    pub bits: u32,
    /// Its length in bytes.
    pub len: u32,
    /// Hash of its source (client address, else end user), if any.
    pub source: Option<u64>,
    /// Span time, Unix ns.
    pub time: u64,
    /// Not flagged at high confidence: may be learned from.
    pub learnable: bool,
}

/// Why a hit was downgraded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Explained {
    /// The field learned the structure from traffic.
    Learned,
    /// An operator pinned it.
    Pinned,
}

/// Whether a hit of `family` on a value of shape `bits` is explained by the value itself
/// (the value carries the structure the family is about). A hit that is not is a finding
/// at its rule's confidence whatever the field learned.
pub fn shape_explains(family: Family, bits: u32) -> bool {
    shape::structure_of(family).is_some_and(|s| bits & s != 0)
}

#[derive(Debug)]
struct TenantProfiles {
    fields: Bounded<u64, FieldProfile>,
    dirty: bool,
}

/// Every tenant's field profiles. One lock per call.
#[derive(Debug)]
pub struct Profiles {
    tenants: Mutex<Bounded<TenantId, TenantProfiles>>,
}

impl Default for Profiles {
    fn default() -> Self {
        Self {
            tenants: Mutex::new(Bounded::new(MAX_TENANTS)),
        }
    }
}

fn pin_bits(cfg: &ContextConfig, f: &FieldRef<'_>, field: &str) -> (u32, u32) {
    cfg.pins
        .iter()
        .filter(|p| p.matches(f.service, f.route, field))
        .map(Pin::bits)
        .fold((0, 0), |(a, b), (c, d)| (a | c, b | d))
}

impl Profiles {
    /// Records the values of one span.
    pub fn observe(
        &self,
        tenant: &TenantId,
        cfg: &ContextConfig,
        obs: &[(FieldRef<'_>, Observation)],
    ) {
        if !cfg.learn || obs.is_empty() {
            return;
        }
        let Ok(mut tenants) = self.tenants.lock() else {
            return;
        };
        let t = tenants.entry(tenant.clone(), || TenantProfiles {
            fields: Bounded::new(cfg.max_fields),
            dirty: false,
        });
        t.dirty = true;
        for (f, o) in obs {
            let never = if cfg.pins.is_empty() {
                0
            } else {
                pin_bits(cfg, f, &f.field()).1
            };
            t.fields
                .entry(f.key(), || FieldProfile::new(f))
                .observe(o, cfg, never);
        }
    }

    /// Whether a hit of `family` on a value of shape `bits` and `len` bytes in field `f` is
    /// the field's normal shape (see the module documentation).
    pub fn explains(
        &self,
        tenant: &TenantId,
        cfg: &ContextConfig,
        f: &FieldRef<'_>,
        family: Family,
        bits: u32,
        len: u32,
    ) -> Option<Explained> {
        let structure = shape::structure_of(family)?;
        if bits & structure == 0 {
            return None;
        }
        let (mut carries, never) = if cfg.pins.is_empty() {
            (0, 0)
        } else {
            pin_bits(cfg, f, &f.field())
        };
        // A field pinned to carry system paths carries paths.
        if carries & shape::SYSTEM_PATH != 0 {
            carries |= shape::PATH;
        }
        // Paths and JSON make no value more dangerous for another family: not required.
        let value_structures = bits & !shape::CLASSES & !(shape::PATH | shape::JSON);
        if never & (value_structures | structure) != 0 {
            return None;
        }
        if carries & structure != 0 && value_structures & !carries == 0 {
            return Some(Explained::Pinned);
        }
        if !cfg.learn {
            return None;
        }
        let mut tenants = self.tenants.lock().ok()?;
        let p = tenants.get_mut(tenant)?.fields.get_mut(&f.key())?;
        let learned = p.learned | carries;
        let limit = u64::from(p.max_len)
            .saturating_mul(u64::from(cfg.length_factor))
            .saturating_add(64);
        let required = (bits & shape::CLASSES) | value_structures;
        (learned & structure != 0 && required & !learned == 0 && u64::from(len) <= limit)
            .then_some(Explained::Learned)
    }

    /// A tenant's profiles, least recently seen first.
    pub fn snapshot(&self, tenant: &TenantId) -> Vec<FieldProfile> {
        let Ok(mut tenants) = self.tenants.lock() else {
            return Vec::new();
        };
        match tenants.get_mut(tenant) {
            Some(t) => t
                .fields
                .oldest_first()
                .into_iter()
                .map(|(_, p)| p.clone())
                .collect(),
            None => Vec::new(),
        }
    }

    /// Tenants whose profiles changed since the last call (their flag is cleared).
    pub fn take_dirty(&self) -> Vec<TenantId> {
        let Ok(mut tenants) = self.tenants.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (t, p) in tenants.values_mut() {
            if p.dirty {
                p.dirty = false;
                out.push(t.clone());
            }
        }
        out
    }

    /// Marks a tenant's profiles as not saved.
    pub fn mark_dirty(&self, tenant: &TenantId) {
        if let Ok(mut tenants) = self.tenants.lock()
            && let Some(t) = tenants.get_mut(tenant)
        {
            t.dirty = true;
        }
    }

    /// Puts saved profiles back (replacing the tenant's), bounded by `cfg`.
    pub fn restore(
        &self,
        tenant: &TenantId,
        profiles: Vec<FieldProfile>,
        cfg: &ContextConfig,
    ) -> Result<(), String> {
        let mut fields = Bounded::new(cfg.max_fields);
        for mut p in profiles {
            p.check(cfg)?;
            let key = stored_key(&p);
            *fields.entry(key, FieldProfile::default) = p;
        }
        let mut tenants = self
            .tenants
            .lock()
            .map_err(|_| "lock poisoned".to_string())?;
        *tenants.entry(tenant.clone(), || TenantProfiles {
            fields: Bounded::new(cfg.max_fields),
            dirty: false,
        }) = TenantProfiles {
            fields,
            dirty: false,
        };
        Ok(())
    }
}

/// The key of a stored profile: its field split back into location and name.
fn stored_key(p: &FieldProfile) -> u64 {
    let (loc, name) = p.field.split_once('.').unwrap_or((p.field.as_str(), ""));
    fnv(&[&p.service, &p.route, loc, name])
}

#[cfg(test)]
mod tests;
