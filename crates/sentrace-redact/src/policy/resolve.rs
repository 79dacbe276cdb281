//! Effective rules for one tenant and service, after layering.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::file::{KeyRules, Options};
use crate::keys::{self, KeyClass};
use crate::kind::{Action, Kind};

/// The rules the minimizer applies to one resource's spans.
#[derive(Debug, Clone)]
pub struct Rules {
    actions: [Action; Kind::COUNT],
    /// Characters kept by `truncate`.
    pub truncate_keep: usize,
    /// Longest string value minimized normally.
    pub max_value_bytes: usize,
    /// Whether SQL literals are replaced.
    pub sanitize_sql: bool,
    sensitive: HashMap<String, Kind>,
    ignored: HashSet<String>,
    allowed: Option<HashSet<String>>,
}

impl Rules {
    /// The bottom of the stack: every kind masked (fail closed if a layer is missing).
    pub(crate) fn masking_everything() -> Self {
        Self {
            actions: [Action::Mask; Kind::COUNT],
            truncate_keep: 4,
            max_value_bytes: 256 << 10,
            sanitize_sql: true,
            sensitive: HashMap::new(),
            ignored: HashSet::new(),
            allowed: None,
        }
    }

    pub(crate) fn apply_layer(
        &mut self,
        actions: &BTreeMap<Kind, Action>,
        options: &Options,
        keys: &KeyRules,
    ) {
        for (k, a) in actions {
            self.actions[k.index()] = *a;
        }
        if let Some(v) = &options.truncate_keep {
            self.truncate_keep = *v.get_ref();
        }
        if let Some(v) = &options.max_value_bytes {
            self.max_value_bytes = *v.get_ref();
        }
        if let Some(v) = options.sanitize_sql {
            self.sanitize_sql = v;
        }
        for (k, kind) in &keys.sensitive {
            self.sensitive.insert(keys::normalize(k), *kind);
        }
        for k in &keys.ignored {
            self.ignored.insert(k.get_ref().clone());
        }
        if let Some(allowed) = &keys.allowed {
            self.allowed = Some(allowed.iter().map(|k| k.get_ref().clone()).collect());
        }
    }

    /// The action for a kind.
    pub fn action(&self, kind: Kind) -> Action {
        self.actions[kind.index()]
    }

    /// Sets the action of every kind (used by the scan, which masks everything).
    pub(crate) fn set_all(&mut self, action: Action) {
        self.actions = [action; Kind::COUNT];
    }

    /// Turns allowlist mode off (used by the scan).
    pub(crate) fn clear_allowlist(&mut self) {
        self.allowed = None;
        self.ignored.clear();
    }

    /// Whether a key is never minimized.
    pub fn is_ignored(&self, key: &str) -> bool {
        !self.ignored.is_empty() && self.ignored.contains(key)
    }

    /// Whether a span, event or link attribute key survives allowlist mode.
    pub fn is_allowed(&self, key: &str) -> bool {
        self.allowed.as_ref().is_none_or(|a| a.contains(key))
    }

    /// Classifies an already normalized key: policy's extra sensitive keys first, then the
    /// built-in rules.
    pub fn classify(&self, normalized: &str) -> KeyClass {
        if !self.sensitive.is_empty()
            && let Some(kind) = self.sensitive.get(normalized)
        {
            return KeyClass::Sensitive(*kind);
        }
        keys::classify_normalized(normalized)
    }
}
