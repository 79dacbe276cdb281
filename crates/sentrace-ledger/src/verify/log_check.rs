//! Steps 3 and 4: hash tiles and entry bundles against the signed root.

use std::collections::HashMap;

use super::{Ctx, FindingKind, ObjectKind};
use crate::checkpoint::Checkpoint;
use crate::manifest::BatchManifest;
use crate::merkle::{Hash, Tree, leaf_hash};
use crate::tiles::{
    LogReader, TILE_HEIGHT, TILE_WIDTH, bundle_path, bundles_for_size, decode_hash_tile, read_tile,
    tile_path, tiles_for_size,
};

/// What the rest of the verification may rely on.
#[derive(Debug, Default)]
pub(crate) struct Authentic {
    /// The tree of authentic leaf hashes (reproduces the signed root), if established.
    pub(crate) tree: Option<Tree>,
    /// The authentic manifest at each index, where the entry is intact and decodes.
    pub(crate) manifests: Vec<Option<BatchManifest>>,
}

/// Splits a bundle into entries without knowing its width (framing only).
fn split_bundle(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (len, tail) = rest.split_at_checked(2)?;
        let len = u16::from_be_bytes([len[0], len[1]]) as usize;
        let (entry, tail) = tail.split_at_checked(len)?;
        out.push(entry);
        rest = tail;
        if out.len() as u64 > TILE_WIDTH + 1 {
            return None;
        }
    }
    Some(out)
}

fn read(
    ctx: &mut Ctx,
    reader: &dyn LogReader,
    path: &str,
    object: ObjectKind,
    index: u64,
) -> Option<Vec<u8>> {
    // A partial tile that a full one replaced may be gone: read_tile falls back to the
    // full tile's prefix.
    match read_tile(reader, path) {
        Ok(Some(b)) => {
            ctx.report.bytes_hashed += b.len() as u64;
            Some(b)
        }
        Ok(None) => {
            let f = ctx.add(FindingKind::Deleted, object, format!("{path} is missing"));
            f.path = Some(path.to_owned());
            f.index = Some(index);
            None
        }
        Err(e) => {
            let f = ctx.add(
                FindingKind::Unreadable,
                object,
                format!("reading {path}: {e}"),
            );
            f.path = Some(path.to_owned());
            f.index = Some(index);
            None
        }
    }
}

pub(super) fn check_log(
    ctx: &mut Ctx,
    reader: &dyn LogReader,
    cp: &Checkpoint,
    progress: &mut dyn FnMut(&'static str, u64, u64),
) -> Authentic {
    let size = cp.size;
    let n_bundles = size.div_ceil(TILE_WIDTH);

    // Level-0 hash tiles.
    let mut tile_leaves: Vec<Option<Vec<Hash>>> = Vec::new();
    for (n, width) in bundles_for_size(size) {
        let path = tile_path(0, n, width);
        let leaves = read(ctx, reader, &path, ObjectKind::HashTile, n * TILE_WIDTH).and_then(|b| {
            match decode_hash_tile(&path, &b, width) {
                Ok(h) => Some(h),
                Err(e) => {
                    let f = ctx.add(FindingKind::Modified, ObjectKind::HashTile, e.to_string());
                    f.path = Some(path.clone());
                    f.index = Some(n * TILE_WIDTH);
                    None
                }
            }
        });
        tile_leaves.push(leaves);
        progress("tiles", n + 1, n_bundles);
    }
    let tile_tree = tile_leaves
        .iter()
        .all(Option::is_some)
        .then(|| Tree::from_leaf_hashes(tile_leaves.iter().flatten().flatten().copied()));
    let tiles_ok = tile_tree.as_ref().is_some_and(|t| t.root() == cp.root);

    // Entry bundles.
    let mut bundles: Vec<Option<Vec<Vec<u8>>>> = Vec::new();
    for (n, width) in bundles_for_size(size) {
        let path = bundle_path(n, width);
        let entries =
            read(ctx, reader, &path, ObjectKind::EntryBundle, n * TILE_WIDTH).and_then(|b| {
                match split_bundle(&b) {
                    Some(e) => Some(e.into_iter().map(<[u8]>::to_vec).collect()),
                    None => {
                        let f = ctx.add(
                            FindingKind::Modified,
                            ObjectKind::EntryBundle,
                            format!("{path}: the entry framing is broken"),
                        );
                        f.path = Some(path.clone());
                        f.index = Some(n * TILE_WIDTH);
                        None
                    }
                }
            });
        bundles.push(entries);
        progress("entries", n + 1, n_bundles);
    }

    let mut out = Authentic {
        tree: None,
        manifests: vec![None; usize::try_from(size).unwrap_or(0)],
    };
    if tiles_ok {
        out.tree = tile_tree;
        compare_entries(ctx, &mut out, &bundles);
    } else {
        // Tiles missing or altered: are the entries authentic?
        let entry_tree = bundles
            .iter()
            .zip(bundles_for_size(size))
            .all(|(b, (_, w))| b.as_ref().is_some_and(|e| e.len() as u64 == w))
            .then(|| {
                Tree::from_leaf_hashes(bundles.iter().flatten().flatten().map(|e| leaf_hash(e)))
            });
        if entry_tree.as_ref().is_some_and(|t| t.root() == cp.root) {
            let tree = entry_tree.unwrap_or_default();
            for (n, leaves) in tile_leaves.iter().enumerate() {
                let Some(leaves) = leaves else { continue };
                let base = n * TILE_WIDTH as usize;
                if let Some(i) =
                    (0..leaves.len()).find(|&i| tree.leaf((base + i) as u64) != Some(leaves[i]))
                {
                    let path = tile_path(0, n as u64, leaves.len() as u64);
                    let f = ctx.add(
                        FindingKind::Modified,
                        ObjectKind::HashTile,
                        format!("{path}: leaf hash {} differs from its entry", base + i),
                    );
                    f.path = Some(path);
                    f.index = Some((base + i) as u64);
                }
            }
            out.tree = Some(tree);
            compare_entries(ctx, &mut out, &bundles);
        } else {
            ctx.add(
                FindingKind::Modified,
                ObjectKind::Log,
                "neither the hash tiles nor the entries reproduce the signed root: both were rewritten".into(),
            );
        }
    }
    if let Some(tree) = &out.tree {
        check_upper_tiles(ctx, reader, tree);
        ctx.report.entries_checked = size;
    }
    check_duplicate_sources(ctx, &out);
    out
}

/// Compares the stored entries with the authentic leaves, bundle by bundle, and keeps the
/// manifests of intact entries.
fn compare_entries(ctx: &mut Ctx, out: &mut Authentic, bundles: &[Option<Vec<Vec<u8>>>]) {
    let Some(tree) = out.tree.as_ref() else {
        return;
    };
    let leaves = tree.leaves();
    let index_of: HashMap<Hash, u64> = leaves
        .iter()
        .enumerate()
        .rev()
        .map(|(i, h)| (*h, i as u64))
        .collect();
    // found[i]: the leaf hash of the entry stored at position i (same-width bundles).
    let mut found: Vec<Option<Hash>> = vec![None; leaves.len()];
    let mut mismatched = Vec::new();
    for (n, bundle) in bundles.iter().enumerate() {
        let Some(entries) = bundle else { continue };
        let base = n * TILE_WIDTH as usize;
        let width = (leaves.len() - base).min(TILE_WIDTH as usize);
        let expected = &leaves[base..base + width];
        let path = bundle_path(n as u64, width as u64);
        let hashes: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
        if hashes.len() == width {
            for (k, h) in hashes.iter().enumerate() {
                found[base + k] = Some(*h);
                if *h == expected[k] {
                    out.manifests[base + k] = BatchManifest::decode(&entries[k]).ok();
                } else {
                    mismatched.push(base + k);
                }
            }
            continue;
        }
        // Entries were removed or added. If some stored entry is not a leaf of the log at
        // all, the bundle's bytes were altered (its framing shifted): report the bundle.
        if hashes.iter().any(|h| !index_of.contains_key(h)) {
            let f = ctx.add(
                FindingKind::Modified,
                ObjectKind::EntryBundle,
                format!(
                    "{path}: holds {} entries instead of {width}, not all from the log",
                    hashes.len()
                ),
            );
            f.index = Some(base as u64);
            f.path = Some(path.clone());
            continue;
        }
        // Entries were removed or added: align the two sequences.
        let (mut i, mut j) = (0usize, 0usize);
        while i < width || j < hashes.len() {
            if i < width && j < hashes.len() && hashes[j] == expected[i] {
                out.manifests[base + i] = BatchManifest::decode(&entries[j]).ok();
                i += 1;
                j += 1;
            } else if hashes.len() - j > width - i {
                let f = match index_of.get(&hashes[j]) {
                    Some(&k) => {
                        let f = ctx.add(
                            FindingKind::Replayed,
                            ObjectKind::Entry,
                            format!(
                                "{path}: entry {k} was inserted again at position {}",
                                base + i
                            ),
                        );
                        f.other_index = Some(k);
                        f
                    }
                    None => ctx.add(
                        FindingKind::Modified,
                        ObjectKind::Entry,
                        format!(
                            "{path}: an unknown entry was inserted at position {}",
                            base + i
                        ),
                    ),
                };
                f.index = Some((base + i) as u64);
                f.path = Some(path.clone());
                j += 1;
            } else if hashes.len() - j < width - i {
                let f = ctx.add(
                    FindingKind::Deleted,
                    ObjectKind::Entry,
                    format!("{path}: entry {} was removed", base + i),
                );
                f.index = Some((base + i) as u64);
                f.path = Some(path.clone());
                i += 1;
            } else {
                found[base + i] = Some(hashes[j]);
                mismatched.push(base + i);
                i += 1;
                j += 1;
            }
        }
    }
    for i in mismatched {
        let Some(h) = found[i] else { continue };
        let path = bundle_path(
            i as u64 / TILE_WIDTH,
            (leaves.len() - i / 256 * 256).min(256) as u64,
        );
        let (kind, other, detail) = match index_of.get(&h) {
            Some(&k) if found.get(k as usize).copied().flatten() == Some(leaves[i]) => {
                if (k as usize) < i {
                    continue; // reported with the lower index
                }
                (
                    FindingKind::Reordered,
                    Some(k),
                    format!("entries {i} and {k} were swapped"),
                )
            }
            Some(&k) => (
                FindingKind::Replayed,
                Some(k),
                format!("entry {i} was replaced by a copy of entry {k}"),
            ),
            None => (
                FindingKind::Modified,
                None,
                format!("entry {i} differs from the signed log"),
            ),
        };
        let f = ctx.add(kind, ObjectKind::Entry, detail);
        f.index = Some(i as u64);
        f.other_index = other;
        f.path = Some(path);
    }
}

/// Hash tiles above level 0 must hold the authentic tree's subtree hashes.
fn check_upper_tiles(ctx: &mut Ctx, reader: &dyn LogReader, tree: &Tree) {
    for (level, n, width) in tiles_for_size(tree.size()) {
        if level == 0 {
            continue;
        }
        let path = tile_path(level, n, width);
        let Some(bytes) = read(
            ctx,
            reader,
            &path,
            ObjectKind::HashTile,
            n << (level * TILE_HEIGHT),
        ) else {
            continue;
        };
        let height = (level * TILE_HEIGHT) as usize;
        let want: Vec<u8> = (n * TILE_WIDTH..n * TILE_WIDTH + width)
            .filter_map(|k| tree.complete_node(height, k))
            .flatten()
            .collect();
        if bytes != want {
            let f = ctx.add(
                FindingKind::Modified,
                ObjectKind::HashTile,
                format!("{path} differs from the hashes of the signed tree"),
            );
            f.path = Some(path);
            f.index = Some((n * TILE_WIDTH) << (level * TILE_HEIGHT));
        }
    }
}

/// A (source, sequence) pair appearing twice in the signed log means the log accepted a
/// replayed batch.
fn check_duplicate_sources(ctx: &mut Ctx, out: &Authentic) {
    let mut seen: HashMap<(&str, u64), u64> = HashMap::new();
    for (i, m) in out.manifests.iter().enumerate() {
        let Some(m) = m else { continue };
        if m.source_signature.is_none() && m.sequence == 0 {
            continue; // unsigned, unsequenced clients
        }
        if let Some(&first) = seen.get(&(m.source.as_str(), m.sequence)) {
            let f = ctx.add(
                FindingKind::Replayed,
                ObjectKind::Entry,
                format!(
                    "entry {i} repeats source {:?} sequence {} of entry {first}: the log accepted a replay",
                    m.source, m.sequence
                ),
            );
            f.index = Some(i as u64);
            f.other_index = Some(first);
        } else {
            seen.insert((m.source.as_str(), m.sequence), i as u64);
        }
    }
}
