//! Learned field context settings and operator pins (the `[context]` table of a ruleset).

use serde::{Deserialize, Serialize};

use super::shape;

/// Most pins in one `[context]` table.
pub const MAX_PINS: usize = 1_000;
/// Largest `min_sources` (distinct sources held per structure while a field learns).
pub const MAX_MIN_SOURCES: u32 = 1_000;
/// Largest `max_fields`.
pub const MAX_FIELDS: usize = 100_000;

/// How fields learn the shape of their normal values, and when a payload hit that matches
/// that shape is downgraded. See [`crate::context`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContextConfig {
    /// Learn field profiles and downgrade hits that match a field's learned shape (off:
    /// every payload hit keeps its rule's confidence; pins still apply).
    pub learn: bool,
    /// A field learns a structure or character class only once values carrying it came
    /// from at least this many distinct sources (client addresses; see `context`) ...
    pub min_sources: u32,
    /// ... spread over at least this many seconds of span time ...
    pub min_secs: u64,
    /// ... and made at least this percentage of the field's values.
    pub min_share_percent: u8,
    /// Most fields profiled per tenant (service, route, field); beyond it the least
    /// recently seen field is forgotten.
    pub max_fields: usize,
    /// Confidence of a downgraded finding (0..=39, OCSF "Low"); its severity becomes low.
    pub downgraded_confidence: u8,
    /// A value longer than `length_factor` times the longest learned value of its field
    /// (plus 64 bytes) is never downgraded.
    pub length_factor: u32,
    /// Operator pins: what a field carries, or never carries, whatever was learned.
    #[serde(rename = "pin")]
    pub pins: Vec<Pin>,
}

impl Default for ContextConfig {
    fn default() -> Self {
        Self {
            learn: true,
            min_sources: 20,
            min_secs: 3_600,
            min_share_percent: 5,
            max_fields: 5_000,
            downgraded_confidence: 20,
            length_factor: 2,
            pins: Vec::new(),
        }
    }
}

/// An operator's statement about one field: `[[context.pin]] service = "ci" route =
/// "/api/v4/projects/{id}/pipelines" field = "body.script" carries = ["shell"]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    /// Service name (`service.name`), or `*` for any.
    pub service: String,
    /// Route template as the profiles show it (`/orders/{id}`), or `*` for any.
    #[serde(default = "any")]
    pub route: String,
    /// Field as the profiles show it: `body.<json path>`, `query.<name>`,
    /// `header.<name>`, `cookie.<name>`, `path`, `body`.
    pub field: String,
    /// Structures the field carries normally (treated as learned): names from
    /// `shell`, `sql`, `html`, `active_html`, `path`, `dotdot`, `json`, `template`,
    /// `system_path`, `code`.
    #[serde(default)]
    pub carries: Vec<String>,
    /// Structures the field never carries: never learned, never downgraded.
    #[serde(default)]
    pub never: Vec<String>,
}

fn any() -> String {
    "*".into()
}

impl Pin {
    /// Whether the pin is about this field.
    pub fn matches(&self, service: &str, route: &str, field: &str) -> bool {
        (self.service == "*" || self.service == service)
            && (self.route == "*" || self.route == route)
            && self.field == field
    }

    /// The structure bits of `carries` and of `never`.
    pub fn bits(&self) -> (u32, u32) {
        let fold = |v: &[String]| {
            v.iter()
                .filter_map(|n| shape::bit_of(n))
                .fold(0, |a, b| a | b)
        };
        (fold(&self.carries), fold(&self.never))
    }
}

impl ContextConfig {
    /// Checks ranges and pins; returns what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.min_sources == 0 || self.min_sources > MAX_MIN_SOURCES {
            return Err(format!(
                "min_sources must be between 1 and {MAX_MIN_SOURCES}"
            ));
        }
        if self.min_share_percent > 100 {
            return Err("min_share_percent must be at most 100".into());
        }
        if self.max_fields == 0 || self.max_fields > MAX_FIELDS {
            return Err(format!("max_fields must be between 1 and {MAX_FIELDS}"));
        }
        if self.downgraded_confidence > 39 {
            return Err("downgraded_confidence must be at most 39 (OCSF Low)".into());
        }
        if self.length_factor == 0 || self.length_factor > 1_000 {
            return Err("length_factor must be between 1 and 1000".into());
        }
        if self.pins.len() > MAX_PINS {
            return Err(format!(
                "{} pins is over the limit of {MAX_PINS}",
                self.pins.len()
            ));
        }
        for (i, p) in self.pins.iter().enumerate() {
            if p.service.is_empty() || p.field.is_empty() || p.route.is_empty() {
                return Err(format!(
                    "pin {i}: service, route and field must not be empty (use \"*\" for any service or route)"
                ));
            }
            for n in p.carries.iter().chain(&p.never) {
                if !shape::STRUCTURE_NAMES.contains(&n.as_str()) {
                    return Err(format!(
                        "pin {i} ({}): unknown structure {n:?}; known: {:?}",
                        p.field,
                        shape::STRUCTURE_NAMES
                    ));
                }
            }
        }
        Ok(())
    }
}
