//! The two halves of a commit as pure functions, for a ledger whose durable write is elsewhere
//! (the PostgreSQL store, docs/arch/store.md):
//!
//! * [`prepare`]: layout-1 records (packed) + their first sequence number + the clock → the
//!   public leaves (layout 2: sequence number and time written, the person committed under a
//!   fresh salt) and their private openings. What the sequencing transaction stores.
//! * [`integrate`]: the tree's right edge ([`Edge`]: the partial tile of each level and the
//!   partial entry bundle) + a run of public leaves → every hash tile and entry bundle the
//!   growth completes or changes (C2SP tlog-tiles paths, partial ones `.p/<W>`), the new edge
//!   and its root. What the elected integrator writes create-once.
//!
//! Neither touches a file; the file store (`store/commit.rs`) uses the same [`prepare_into`].

use aes::cipher::{BlockEncrypt, KeyInit};

use super::merkle::{empty_root, leaf_hash, node_hash, Hash};
use super::record::{self, OPENING_LEN};
use super::tiles::{self, bundle_path, level_tiles, tile_path, TILE_HEIGHT, TILE_WIDTH};
use crate::error::{Error, Result};

/// The per-record salts of one commit: AES-256 under a key drawn for this commit alone and then
/// dropped, over the sequence numbers (distinct inputs, so the salts are as good as random and
/// nobody, the core included, can recompute them later: the openings are their only record).
pub struct Salts(aes::Aes256);

impl Salts {
    pub fn new() -> Result<Salts> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| Error::Storage(format!("no randomness for record salts: {e}")))?;
        Ok(Salts(aes::Aes256::new(&key.into())))
    }

    pub fn salt(&self, seq: u64) -> [u8; record::SALT_LEN] {
        let mut b = aes::Block::from((seq as u128).to_be_bytes());
        self.0.encrypt_block(&mut b);
        b.into()
    }
}

/// Append the public leaves of `entries` (checked layout-1 records; the first is number `first`)
/// to `packed` (uint16-BE length-prefixed, as in entry bundles) and their openings to
/// `openings`: each record gets its sequence number, `now_us` when its time is 0, and its
/// pseudonym replaced by the commitment under its salt.
pub fn prepare_into(entries: &[&[u8]], first: u64, now_us: i64, salts: &Salts, packed: &mut Vec<u8>, openings: &mut Vec<u8>) {
    packed.reserve(entries.iter().map(|e| e.len() + 2).sum());
    openings.reserve(entries.len() * OPENING_LEN);
    for (i, e) in entries.iter().enumerate() {
        let seq = first + i as u64;
        packed.extend_from_slice(&(e.len() as u16).to_be_bytes());
        let start = packed.len();
        packed.extend_from_slice(e);
        let rec = &mut packed[start..];
        rec[record::SEQ_OFFSET..record::SEQ_OFFSET + 8].copy_from_slice(&seq.to_be_bytes());
        if record::time_of(rec) == 0 {
            rec[record::TIME_OFFSET..record::TIME_OFFSET + 8].copy_from_slice(&now_us.to_be_bytes());
        }
        openings.extend_from_slice(&record::commit_in_place(rec, &salts.salt(seq)));
    }
}

/// The public leaves and openings of packed layout-1 `records` numbered from `first`, under
/// salts drawn for this call alone. Every record is checked first (`InvalidRecord` naming it).
pub fn prepare(records: &[u8], first: u64, now_us: i64) -> Result<(Vec<u8>, Vec<u8>)> {
    let entries = tiles::split_bundle(records)
        .map_err(|off| Error::InvalidRecord(format!("packed records are malformed at byte {off}")))?;
    for (i, e) in entries.iter().enumerate() {
        record::check_encoded(e).map_err(|err| Error::InvalidRecord(format!("record {i} of the batch: {err}")))?;
    }
    let salts = Salts::new()?;
    let (mut packed, mut openings) = (Vec::new(), Vec::new());
    prepare_into(&entries, first, now_us, &salts, &mut packed, &mut openings);
    Ok((packed, openings))
}

const EDGE_MAGIC: &[u8; 8] = b"rkedge1\n";
const LEVELS: usize = 8;

/// The right edge of a tree: its size, the hashes of the partial tile at each of the 8 tile
/// levels, and the partial entry bundle. Enough to grow the tree and write every tile the
/// growth touches without reading one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    size: u64,
    tails: Vec<Vec<Hash>>,
    bundle: Vec<u8>,
}

impl Default for Edge {
    fn default() -> Self {
        Edge { size: 0, tails: vec![Vec::new(); LEVELS], bundle: Vec::new() }
    }
}

/// What one integration step produced.
#[derive(Debug, Default)]
pub struct Growth {
    /// (tlog-tiles path, bytes): completed tiles and bundles, and the new partial ones.
    pub tiles: Vec<(String, Vec<u8>)>,
    /// Leaf hashes of the integrated leaves, in order.
    pub leaf_hashes: Vec<Hash>,
}

impl Edge {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// `rkedge1\n` ‖ size u64 ‖ 8 × (n u8 ‖ n hashes) ‖ bundle length u32 ‖ partial bundle.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + LEVELS + self.tails.iter().map(|t| t.len() * 32).sum::<usize>() + 4 + self.bundle.len());
        out.extend_from_slice(EDGE_MAGIC);
        out.extend_from_slice(&self.size.to_be_bytes());
        for t in &self.tails {
            out.push(t.len() as u8);
            for h in t {
                out.extend_from_slice(h);
            }
        }
        out.extend_from_slice(&(self.bundle.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.bundle);
        out
    }

    /// Decode and check an encoded edge: each level's partial tile as wide as the size says,
    /// the partial bundle holding exactly the size's last partial run of leaves, whose hashes
    /// are the level-0 tail. Empty input is the empty tree.
    pub fn decode(b: &[u8]) -> Result<Edge> {
        if b.is_empty() {
            return Ok(Edge::default());
        }
        let bad = |what: &str| Error::LedgerDamage { path: "edge".into(), record: None, message: format!("the stored tree edge is damaged: {what}") };
        if b.len() < 16 || &b[..8] != EDGE_MAGIC {
            return Err(bad("no rkedge1 header"));
        }
        let size = u64::from_be_bytes(b[8..16].try_into().expect("8"));
        let mut at = 16;
        let mut tails = Vec::with_capacity(LEVELS);
        for level in 0..LEVELS as u32 {
            let n = *b.get(at).ok_or_else(|| bad("cut short"))? as usize;
            at += 1;
            if n as u64 != level_tiles(size, level).1 {
                return Err(bad(&format!("level {level} holds {n} hashes, not {}", level_tiles(size, level).1)));
            }
            let end = at + n * 32;
            let raw = b.get(at..end).ok_or_else(|| bad("cut short"))?;
            tails.push(raw.chunks_exact(32).map(|c| c.try_into().expect("32")).collect::<Vec<Hash>>());
            at = end;
        }
        let len = u32::from_be_bytes(b.get(at..at + 4).ok_or_else(|| bad("cut short"))?.try_into().expect("4")) as usize;
        at += 4;
        let bundle = b.get(at..at + len).ok_or_else(|| bad("cut short"))?.to_vec();
        if at + len != b.len() {
            return Err(bad("trailing bytes"));
        }
        let leaves = tiles::split_bundle(&bundle).map_err(|off| bad(&format!("partial bundle malformed at byte {off}")))?;
        if leaves.len() != tails[0].len() || leaves.iter().zip(&tails[0]).any(|(l, h)| &leaf_hash(l) != h) {
            return Err(bad("the partial bundle does not hash to the level-0 tail"));
        }
        Ok(Edge { size, tails, bundle })
    }

    /// The tree's root (RFC 9162 MTH) from the edge alone.
    pub fn root(&self) -> Hash {
        let mut acc: Option<Hash> = None;
        for tail in &self.tails {
            let w = tail.len();
            let mut at = 0;
            let mut peaks = Vec::new();
            for bit in (0..TILE_HEIGHT).rev() {
                let sz = 1usize << bit;
                if w & sz != 0 {
                    peaks.push(subtree(&tail[at..at + sz]));
                    at += sz;
                }
            }
            for p in peaks.into_iter().rev() {
                acc = Some(match acc {
                    None => p,
                    Some(a) => node_hash(&p, &a),
                });
            }
        }
        acc.unwrap_or_else(empty_root)
    }

    fn push_hash(&mut self, level: usize, h: Hash, full: &mut Vec<(String, Vec<u8>)>) {
        self.tails[level].push(h);
        if self.tails[level].len() as u64 == TILE_WIDTH {
            let hashes = std::mem::take(&mut self.tails[level]);
            // The size already counts the leaf that completed this tile.
            let index = (self.size >> (TILE_HEIGHT as usize * level)) / TILE_WIDTH - 1;
            full.push((tile_path(level as u32, index, TILE_WIDTH), hashes.concat()));
            if level + 1 < LEVELS {
                self.push_hash(level + 1, subtree(&hashes), full);
            }
        }
    }
}

/// MTH of a power-of-two run of hashes.
fn subtree(hashes: &[Hash]) -> Hash {
    let mut level: Vec<Hash> = hashes.to_vec();
    while level.len() > 1 {
        level = level.chunks_exact(2).map(|p| node_hash(&p[0], &p[1])).collect();
    }
    level[0]
}

/// Grow the tree at `edge` by the public leaves `leaves` (packed, uint16-BE length-prefixed):
/// returns every hash tile and entry bundle the growth completes, and the partial ones at the
/// new size whose width changed (a partial tile whose level did not grow is left as it was).
/// The leaves are not checked as records here (the sequencer prepared them); each must be
/// 1..65,535 bytes.
pub fn integrate(edge: &mut Edge, leaves: &[u8]) -> Result<Growth> {
    let entries = tiles::split_bundle(leaves)
        .map_err(|off| Error::InvalidArgument(format!("packed leaves are malformed at byte {off}")))?;
    if let Some(i) = entries.iter().position(|e| e.is_empty()) {
        return Err(Error::InvalidArgument(format!("leaf {i} of the run is empty")));
    }
    let old = edge.size;
    let mut out = Growth { leaf_hashes: Vec::with_capacity(entries.len()), ..Default::default() };
    let mut at = 0usize;
    for e in &entries {
        let h = leaf_hash(e);
        out.leaf_hashes.push(h);
        edge.bundle.extend_from_slice(&leaves[at..at + 2 + e.len()]);
        at += 2 + e.len();
        edge.size += 1;
        edge.push_hash(0, h, &mut out.tiles);
        if edge.size % TILE_WIDTH == 0 {
            out.tiles.push((bundle_path(edge.size / TILE_WIDTH - 1, TILE_WIDTH), std::mem::take(&mut edge.bundle)));
        }
    }
    let new = edge.size;
    if new == old {
        return Ok(out);
    }
    let (full0, width0) = level_tiles(new, 0);
    if width0 > 0 {
        out.tiles.push((bundle_path(full0, width0), edge.bundle.clone()));
    }
    for level in 0..LEVELS as u32 {
        let (full, width) = level_tiles(new, level);
        if width > 0 && tiles::level_count(new, level) != tiles::level_count(old, level) {
            out.tiles.push((tile_path(level, full, width), edge.tails[level as usize].concat()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::merkle::{self, MemTree};
    use crate::ledger::record::tests::sample;
    use crate::ledger::store::Store;
    use std::collections::BTreeMap;

    fn packed(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut p = Vec::new();
        for e in entries {
            p.extend_from_slice(&(e.len() as u16).to_be_bytes());
            p.extend_from_slice(e);
        }
        p
    }

    fn leaf(i: u64) -> Vec<u8> {
        format!("leaf {i} {}", "x".repeat((i % 7) as usize)).into_bytes()
    }

    /// Every file a sequence of growths wrote, the latest bytes per path.
    fn grow_all(steps: &[u64]) -> (Edge, BTreeMap<String, Vec<u8>>, MemTree) {
        let mut edge = Edge::default();
        let mut files = BTreeMap::new();
        let mut mem = MemTree::new();
        let mut n = 0;
        for &k in steps {
            let batch: Vec<Vec<u8>> = (n..n + k).map(leaf).collect();
            batch.iter().for_each(|e| mem.push(e));
            let g = integrate(&mut edge, &packed(&batch)).unwrap();
            assert_eq!(g.leaf_hashes.len() as u64, k);
            for (p, d) in g.tiles {
                if let Some(old) = files.get(&p) {
                    assert_eq!(old, &d, "{p} rewritten with other bytes");
                }
                files.insert(p, d);
            }
            n += k;
            assert_eq!(edge.size(), n);
            assert_eq!(edge.root(), merkle::root(&mem, n).unwrap(), "root at {n}");
            assert_eq!(Edge::decode(&edge.encode()).unwrap(), edge);
        }
        (edge, files, mem)
    }

    #[test]
    fn roots_match_the_memory_tree_across_tile_levels() {
        grow_all(&[1, 1, 3, 250, 1, 256, 300, 65_536 - 812, 1, 513]);
        assert_eq!(Edge::default().root(), empty_root());
    }

    #[test]
    fn tiles_are_what_the_file_store_writes() {
        // The same records through the file store and through prepare + integrate: same tiles.
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), "o", &[1; 32]).unwrap();
        let mut edge = Edge::default();
        let mut written = BTreeMap::new();
        let rec = sample(false).encode().unwrap();
        for k in [1usize, 255, 1, 300, 70_000] {
            let entries: Vec<&[u8]> = vec![&rec; k];
            let first = store.append(&entries).unwrap();
            // Leaves as the store made them (its salts are its own): read back its bundles.
            let leaves: Vec<Vec<u8>> = store.entries(first, first + k as u64).unwrap().into_iter().map(Option::unwrap).collect();
            for (p, d) in integrate(&mut edge, &packed(&leaves)).unwrap().tiles {
                written.insert(p, d);
            }
        }
        assert_eq!(edge.root(), store.checkpoint().root);
        for (p, d) in &written {
            if p.contains(".p/") && !dir.path().join(p).exists() {
                continue; // a partial superseded since (the store deletes those)
            }
            assert_eq!(&std::fs::read(dir.path().join(p)).unwrap(), d, "{p}");
        }
        // Every full tile and the final partials of the store were produced.
        for level in 0..3u32 {
            let (full, width) = level_tiles(store.size(), level);
            for t in 0..full {
                assert!(written.contains_key(&tile_path(level, t, TILE_WIDTH)), "level {level} tile {t}");
            }
            if width > 0 {
                assert!(written.contains_key(&tile_path(level, full, width)));
            }
        }
    }

    #[test]
    fn prepare_commits_each_person_and_numbers_the_records() {
        let r = sample(false);
        let mut rs = Vec::new();
        for _ in 0..3 {
            rs.push(r.encode().unwrap());
        }
        let (leaves, openings) = prepare(&packed(&rs), 41, 1_700_000_000_000_000).unwrap();
        let got = tiles::split_bundle(&leaves).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(openings.len(), 3 * OPENING_LEN);
        let mut commitments = Vec::new();
        for (i, l) in got.iter().enumerate() {
            let o = &openings[i * OPENING_LEN..(i + 1) * OPENING_LEN];
            let opened = record::open_leaf(l, o).unwrap();
            assert_eq!(opened.seq, 41 + i as u64);
            assert_eq!(opened.pseudonym, r.pseudonym);
            let (_, c) = record::decode_public(l).unwrap();
            commitments.push(c);
        }
        commitments.dedup();
        assert_eq!(commitments.len(), 3, "a fresh salt per record");
        // A bad record is named; nothing is prepared.
        let mut bad = rs.clone();
        bad[1][0] = 9;
        let e = prepare(&packed(&bad), 0, 0).unwrap_err();
        assert!(e.to_string().contains("record 1"), "{e}");
        assert!(prepare(&[0, 5, 1], 0, 0).is_err());
    }

    #[test]
    fn a_damaged_edge_is_refused() {
        let (edge, _, _) = grow_all(&[300]);
        let b = edge.encode();
        assert!(Edge::decode(&b[..b.len() - 1]).is_err());
        let mut flipped = b.clone();
        flipped[20] ^= 1; // a level-0 hash: no longer the bundle's
        assert!(Edge::decode(&flipped).is_err());
        let mut size = b.clone();
        size[15] ^= 1;
        assert!(Edge::decode(&size).is_err());
        let mut longer = b;
        longer.push(0);
        assert!(Edge::decode(&longer).is_err());
        assert!(integrate(&mut Edge::default(), &[0, 0]).is_err());
    }
}
