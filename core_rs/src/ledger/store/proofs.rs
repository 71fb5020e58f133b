//! Proofs and roots from the tiles: complete-subtree hashes (`NodeSource`) of the open store and
//! of a directory being verified.

use super::*;

pub(super) const CACHE_TILES: usize = 4096;

/// A tile with all 8 of its internal levels (256, 128, …, 1 hashes).
pub(super) struct Expanded {
    pub(super) levels: Vec<Vec<Hash>>,
}

impl Expanded {
    pub(super) fn new(hashes: Vec<Hash>) -> Self {
        let mut levels = vec![hashes];
        while levels.len() < 8 && levels.last().expect("one").len() > 1 {
            let l = levels.last().expect("one");
            let next = l.chunks_exact(2).map(|p| node_hash(&p[0], &p[1])).collect();
            levels.push(next);
        }
        Expanded { levels }
    }
}

impl Store {
    pub(super) fn expanded(&self, level: u32, index: u64) -> Result<Arc<Expanded>> {
        if let Some(t) = self.cache.lock().expect("cache lock").get(&(level, index)) {
            return Ok(t.clone());
        }
        let p = self.dir.join(tile_path(level, index, TILE_WIDTH));
        let b = fs::read(&p).map_err(|e| io_err(&p, e))?;
        if b.len() != 8192 {
            return Err(Error::Storage(format!("{}: {} bytes, expected 8192", p.display(), b.len())));
        }
        let t = Arc::new(Expanded::new(hashes_of(&b)));
        let mut c = self.cache.lock().expect("cache lock");
        if c.len() >= CACHE_TILES {
            c.clear();
        }
        c.insert((level, index), t.clone());
        Ok(t)
    }

    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        if index >= self.size {
            return Err(Error::NotFound(format!("record {index} does not exist (ledger size {})", self.size)));
        }
        self.check_size(size)?;
        merkle::inclusion_proof(self, index, size)
    }

    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>> {
        self.check_size(size2)?;
        merkle::consistency_proof(self, size1, size2)
    }

    pub fn root_at(&self, size: u64) -> Result<Hash> {
        self.check_size(size)?;
        merkle::root(self, size)
    }

    pub(super) fn check_size(&self, size: u64) -> Result<()> {
        if size > self.size {
            return Err(Error::NotFound(format!("tree size {size} is beyond the ledger's {}", self.size)));
        }
        Ok(())
    }
}

impl NodeSource for Store {
    fn node(&self, level: u32, index: u64) -> Result<Hash> {
        let row = level / 8;
        let j = level % 8;
        let first = index << j;
        let (t, pos) = (first / TILE_WIDTH, (first % TILE_WIDTH) as usize);
        let (full, _) = level_tiles(self.size, row);
        if t < full {
            return Ok(self.expanded(row, t)?.levels[j as usize][pos >> j]);
        }
        if t == full {
            let tails = {
                let mut c = self.tail_cache.lock().expect("cache lock");
                c.get_or_insert_with(|| Arc::new(self.tails.iter().map(|t| Expanded::new(t.clone())).collect())).clone()
            };
            if let Some(h) = tails[row as usize].levels.get(j as usize).and_then(|l| l.get(pos >> j)) {
                return Ok(*h);
            }
        }
        Err(Error::NotFound(format!("no complete subtree at level {level} index {index}")))
    }
}

/// Complete-subtree hashes read from the tiles of a tree of size `n` (for the roots of
/// historical checkpoints during `verify`, once the tiles have been checked).
pub(super) struct DirNodes<'a> {
    pub(super) dir: &'a Path,
    pub(super) n: u64,
    pub(super) cache: std::cell::RefCell<HashMap<(u32, u64), Arc<Expanded>>>,
}

impl NodeSource for DirNodes<'_> {
    fn node(&self, level: u32, index: u64) -> Result<Hash> {
        let row = level / 8;
        let j = level % 8;
        let first = index << j;
        let (t, pos) = (first / TILE_WIDTH, (first % TILE_WIDTH) as usize);
        let (full, width) = level_tiles(self.n, row);
        let w = if t < full { TILE_WIDTH } else if t == full { width } else { 0 };
        let missing = || Error::NotFound(format!("no complete subtree at level {level} index {index}"));
        if w == 0 {
            return Err(missing());
        }
        let cached = self.cache.borrow().get(&(row, t)).cloned();
        let tile = match cached {
            Some(x) => x,
            None => {
                let (_, b) = read_prefix(self.dir, Some(row), t, w)
                    .map_err(|d| Error::Storage(d.to_string()))?
                    .ok_or_else(|| Error::Storage(format!("{}: missing", tile_path(row, t, w))))?;
                if b.len() as u64 != w * 32 {
                    return Err(Error::Storage(format!("{}: wrong size", tile_path(row, t, w))));
                }
                let x = Arc::new(Expanded::new(hashes_of(&b)));
                let mut c = self.cache.borrow_mut();
                if c.len() >= CACHE_TILES {
                    c.clear();
                }
                c.insert((row, t), x.clone());
                x
            }
        };
        tile.levels.get(j as usize).and_then(|l| l.get(pos >> j)).copied().ok_or_else(missing)
    }
}
