//! The object store that offline readers (`verify`, `proof`) read blocks and log objects
//! from: the bucket of the server's `[store] url` when `--config` names a configuration
//! that sets one, else the data directory's `blocks/` (opened read-only: nothing is
//! created).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use sentrace_server::Config;

/// Opens the blocks' object store for `data_dir`, as the server configured by `config`
/// does. A bucket that does not answer is an error naming its URL.
pub fn open(
    config: Option<&Path>,
    data_dir: &Path,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let store = match config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading config {}", p.display()))?;
            Config::from_toml(&text, &p.display().to_string())?.store
        }
        None => Default::default(),
    };
    store
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid configuration: [store] {e}"))?;
    if store.url.is_none() {
        let blocks = data_dir.join("blocks");
        let local = LocalFileSystem::new_with_prefix(&blocks)
            .with_context(|| format!("opening {}", blocks.display()))?;
        return Ok(Arc::new(local));
    }
    let objects = sentrace_store::open_objects(data_dir, &store)?;
    rt.block_on(sentrace_store::objects::probe(objects.as_ref(), &store))?;
    Ok(objects)
}
