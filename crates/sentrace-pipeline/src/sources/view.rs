//! What `GET /api/sources` shows of a tenant's signed sources: the registered and seen
//! sources with their replay state (the route itself is the server's).

use std::collections::BTreeMap;

use serde::Serialize;

use sentrace_core::TenantId;

use super::Sources;

/// One source in the listing.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SourceView {
    /// The source's name.
    pub name: String,
    /// Whether it is in the tenant's registry now.
    pub registered: bool,
    /// The highest sequence accepted (absent: nothing accepted yet).
    pub last_sequence: Option<u64>,
    /// Server time of its last accepted batch, Unix ns.
    pub last_seen_unix_nanos: Option<u64>,
    /// Sequence ranges skipped, `[from, to]` inclusive, most recent last (bounded).
    pub gaps: Vec<[u64; 2]>,
    /// Sequence numbers skipped in all (not reduced when a late batch fills a gap).
    pub missing_total: u64,
}

/// What `GET /api/sources` answers.
#[derive(Debug, Clone, Serialize)]
pub struct SourcesView {
    /// The tenant.
    pub tenant: String,
    /// Whether the tenant's unsigned batches are refused.
    pub require_signatures: bool,
    /// Its sources, by name.
    pub sources: Vec<SourceView>,
}

impl Sources {
    /// The tenant's registered and seen sources.
    pub fn view(&self, tenant: &TenantId) -> anyhow::Result<SourcesView> {
        let keys = self.registry.keys(tenant)?;
        let mut out: BTreeMap<String, SourceView> = keys
            .keys()
            .map(|name| {
                (
                    name.clone(),
                    SourceView {
                        name: name.clone(),
                        registered: true,
                        last_sequence: None,
                        last_seen_unix_nanos: None,
                        gaps: Vec::new(),
                        missing_total: 0,
                    },
                )
            })
            .collect();
        let tenants = self.lock()?;
        if let Some(t) = tenants.get(tenant) {
            for (name, st) in t.guard.sources() {
                let v = out.entry(name.to_owned()).or_insert_with(|| SourceView {
                    name: name.to_owned(),
                    registered: false,
                    last_sequence: None,
                    last_seen_unix_nanos: None,
                    gaps: Vec::new(),
                    missing_total: 0,
                });
                v.last_sequence = Some(st.highest);
                v.last_seen_unix_nanos = Some(st.last_seen_unix_nanos);
                v.gaps = st.gaps.iter().map(|&(a, b)| [a, b]).collect();
                v.missing_total = st.missing_total;
            }
        }
        Ok(SourcesView {
            tenant: tenant.to_string(),
            require_signatures: self.cfg.requires(tenant),
            sources: out.into_values().collect(),
        })
    }
}
