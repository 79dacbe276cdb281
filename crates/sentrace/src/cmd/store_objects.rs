//! The object store that offline readers (`verify`, `proof`) read blocks and log objects
//! from: the node's prefix `nodes/<[seal] node>/` of the bucket of the server's `[store]
//! url` when `--config` names a configuration that sets one (or the whole bucket, every
//! node, for `verify --store`), else the data directory's `blocks/` (opened read-only: nothing is
//! created).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use sentrace_server::Config;

/// The server configuration `config` names, if any.
pub fn config(config: Option<&Path>) -> anyhow::Result<Option<Config>> {
    let Some(p) = config else {
        return Ok(None);
    };
    let text =
        std::fs::read_to_string(p).with_context(|| format!("reading config {}", p.display()))?;
    Ok(Some(Config::from_toml(&text, &p.display().to_string())?))
}

/// The bucket several nodes share: `--store URL`, else the `[store] url` of `--config`
/// (with its `ca_file`); `None` for a data directory of its own.
pub fn bucket(
    config_path: Option<&Path>,
    url: Option<&str>,
) -> anyhow::Result<Option<sentrace_store::StoreConfig>> {
    let mut store = config(config_path)?.map(|c| c.store).unwrap_or_default();
    if let Some(u) = url {
        store.url = Some(u.to_string());
    }
    if store.url.is_none() {
        return Ok(None);
    }
    store
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid --store or [store] url: {e}"))?;
    Ok(Some(store))
}

/// Opens the bucket of `store` at its prefix (every node's objects). A bucket that does not
/// answer is an error naming its URL.
pub fn open_bucket(
    store: &sentrace_store::StoreConfig,
    data_dir: &Path,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let objects = sentrace_store::open_objects(data_dir, store)?;
    rt.block_on(sentrace_store::objects::probe(objects.as_ref(), store))?;
    Ok(objects)
}

/// Opens the blocks' object store for `data_dir`, as the server configured by `config`
/// does. A bucket that does not answer is an error naming its URL.
pub fn open(
    config_path: Option<&Path>,
    data_dir: &Path,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let cfg = config(config_path)?;
    let node = cfg.as_ref().map(|c| c.seal.node.clone());
    let store = cfg.map(|c| c.store).unwrap_or_default();
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
    // A server with a bucket writes under `nodes/<[seal] node>/` of it.
    let node = node.unwrap_or_else(|| "sentrace".into());
    Ok(Arc::new(object_store::prefix::PrefixStore::new(
        objects,
        sentrace_store::nodes::node_prefix(&node),
    )))
}
