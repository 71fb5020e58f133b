//! Roots and proofs over tiles fetched by path — from a database or an object store rather
//! than the ledger's directory (the PostgreSQL store, docs/arch/store.md). The reader is given
//! C2SP tlog-tiles paths; partial tiles are read at the width the proof's tree size gives them,
//! so a store that keeps every partial tile (create-once) serves proofs at any earlier size.

use std::cell::RefCell;
use std::collections::HashMap;

use super::merkle::{self, node_hash, Hash, NodeSource};
use super::tiles::{level_tiles, tile_path, TILE_WIDTH};
use crate::error::{Error, Result};

/// A tile's hashes at each of its internal levels (256, 128, …, 1).
type Expanded = Vec<Vec<Hash>>;

/// Complete-subtree hashes of the tree of `size` leaves, read through `read(path)`.
pub struct FetchedNodes<F: FnMut(&str) -> Result<Option<Vec<u8>>>> {
    size: u64,
    read: RefCell<F>,
    /// (tile level, index) → the tile's hashes at every internal level.
    cache: RefCell<HashMap<(u32, u64), Expanded>>,
}

impl<F: FnMut(&str) -> Result<Option<Vec<u8>>>> FetchedNodes<F> {
    pub fn new(size: u64, read: F) -> Self {
        FetchedNodes { size, read: RefCell::new(read), cache: RefCell::new(HashMap::new()) }
    }

    fn tile(&self, row: u32, t: u64, width: u64) -> Result<Expanded> {
        if let Some(x) = self.cache.borrow().get(&(row, t)) {
            return Ok(x.clone());
        }
        let path = tile_path(row, t, width);
        let b = (self.read.borrow_mut())(&path)?.ok_or_else(|| Error::LedgerDamage {
            path: path.clone(),
            record: None,
            message: format!("{path} is missing"),
        })?;
        if b.len() as u64 != width * 32 {
            return Err(Error::LedgerDamage { path: path.clone(), record: None, message: format!("{path}: {} bytes, expected {}", b.len(), width * 32) });
        }
        let mut levels: Vec<Vec<Hash>> = vec![b.chunks_exact(32).map(|c| c.try_into().expect("32")).collect()];
        while levels.len() < 8 && levels.last().expect("one").len() > 1 {
            let next = levels.last().expect("one").chunks_exact(2).map(|p| node_hash(&p[0], &p[1])).collect();
            levels.push(next);
        }
        self.cache.borrow_mut().insert((row, t), levels.clone());
        Ok(levels)
    }

    pub fn root(&self) -> Result<Hash> {
        merkle::root(self, self.size)
    }

    pub fn inclusion_proof(&self, index: u64) -> Result<Vec<Hash>> {
        if index >= self.size {
            return Err(Error::NotFound(format!("record {index} is not in a tree of size {}", self.size)));
        }
        merkle::inclusion_proof(self, index, self.size)
    }

    /// Consistency proof from the tree of `size1` leaves to this one.
    pub fn consistency_proof(&self, size1: u64) -> Result<Vec<Hash>> {
        merkle::consistency_proof(self, size1, self.size)
    }
}

impl<F: FnMut(&str) -> Result<Option<Vec<u8>>>> NodeSource for FetchedNodes<F> {
    fn node(&self, level: u32, index: u64) -> Result<Hash> {
        let (row, j) = (level / 8, level % 8);
        let first = index << j;
        let (t, pos) = (first / TILE_WIDTH, (first % TILE_WIDTH) as usize);
        let (full, width) = level_tiles(self.size, row);
        let w = if t < full { TILE_WIDTH } else if t == full { width } else { 0 };
        let missing = || Error::NotFound(format!("no complete subtree at level {level} index {index}"));
        if w == 0 {
            return Err(missing());
        }
        let tile = self.tile(row, t, w)?;
        tile.get(j as usize).and_then(|l| l.get(pos >> j)).copied().ok_or_else(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::integrate::{integrate, Edge};
    use crate::ledger::merkle::MemTree;

    #[test]
    fn proofs_over_fetched_tiles_equal_the_memory_tree_at_every_size() {
        let mut tiles: HashMap<String, Vec<u8>> = HashMap::new();
        let mut edge = Edge::default();
        let mut mem = MemTree::new();
        let mut sizes = Vec::new();
        for (n, k) in [(0u64, 3u64), (3, 300), (303, 65_536), (65_839, 2)] {
            let mut packed = Vec::new();
            for i in n..n + k {
                let e = i.to_be_bytes();
                mem.push(&e);
                packed.extend_from_slice(&8u16.to_be_bytes());
                packed.extend_from_slice(&e);
            }
            tiles.extend(integrate(&mut edge, &packed).unwrap().tiles);
            sizes.push(n + k);
        }
        let mut reads = 0;
        for &size in &sizes {
            let f = FetchedNodes::new(size, |p: &str| {
                reads += 1;
                Ok(tiles.get(p).cloned())
            });
            assert_eq!(f.root().unwrap(), merkle::root(&mem, size).unwrap());
            for i in [0, size / 2, size - 1] {
                assert_eq!(f.inclusion_proof(i).unwrap(), merkle::inclusion_proof(&mem, i, size).unwrap());
            }
            for &old in sizes.iter().filter(|&&s| s <= size) {
                assert_eq!(f.consistency_proof(old).unwrap(), merkle::consistency_proof(&mem, old, size).unwrap());
            }
            assert!(f.inclusion_proof(size).is_err());
        }
        assert!(reads > 0);
        // A missing or cut tile is named.
        let f = FetchedNodes::new(3, |_: &str| Ok(None));
        assert!(f.root().unwrap_err().to_string().contains("tile/0/000.p/3"));
        let f = FetchedNodes::new(3, |_: &str| Ok(Some(vec![0; 10])));
        assert!(f.root().is_err());
    }
}
