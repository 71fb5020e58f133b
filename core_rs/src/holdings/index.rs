//! The holdings index on its own: the link-id map and who holds whom, in memory, with no
//! files. It is fed from outside — a bulk load of snapshot ranges, then batches of events —
//! by a store driver that has made each change durable first (the PostgreSQL driver,
//! `renkei.store.holdings`). The file store (`HoldingsStore`: journal, snapshots, directory
//! lock) is the other driver and keeps its own copy of the same [`Holdings`].
//!
//! A **range** is the state of 65,536 person indices `hi·2^16 ..`: the link ids assigned in it
//! and every agency's chunk of it (the same array/bitmap chunks as the file snapshot). One
//! range is one row of the driver's snapshot, so a fresh front-end loads a national population
//! (125 M persons) from about 1,900 rows:
//!
//! ```text
//!   magic     4  b"RKR1"
//!   range     4  u32 LE: hi (persons hi·65536 ..)
//!   links     4  u32 LE: n, the link ids assigned in the range (persons hi·65536 .. +n)
//!             n × 16 bytes, in index order
//!   agencies  4  u32 LE, ascending by agency id
//!   per agency: agency u32, kind u8 (0 array, 1 bitmap), count u32,
//!               then count × u16 (array, ascending) or 1024 × u64 (bitmap), LE
//!   crc       4  CRC-32 (IEEE) over everything above
//! ```
//!
//! Ranges load in ascending order (link ids are assigned densely: a range's links follow the
//! previous range's, which must be full); [`HoldingsIndex::finish_load`] then builds the flat
//! mirrors and dense columns the file store builds when it reads its snapshot.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::links::LinkId;
use super::set::{chunk_array, chunk_from_sorted, chunk_from_words, chunk_words, CHUNK_BITS};
use super::{Groups, Holdings, Op};
use crate::error::{Error, Result};

const MAGIC: [u8; 4] = *b"RKR1";
/// Persons per range.
pub const RANGE: u64 = 1 << CHUNK_BITS;

/// The in-memory holdings of one front-end, changed only by what a driver has made durable.
#[derive(Default)]
pub struct HoldingsIndex {
    holdings: RwLock<Holdings>,
}

fn bad(what: &str) -> Error {
    Error::Storage(format!("holdings snapshot range is damaged: {what}"))
}

/// The number of ranges `h` spans: every assigned person index and every held one.
pub fn range_count(h: &Holdings) -> u32 {
    let by_links = h.person_count().div_ceil(RANGE) as u32;
    h.agencies().values().map(|s| s.ranges()).max().unwrap_or(0).max(by_links)
}

/// Encode range `hi` of `h` (see the module documentation).
pub fn encode_range(h: &Holdings, hi: u32) -> Vec<u8> {
    let base = hi as u64 * RANGE;
    let n = h.person_count().saturating_sub(base).min(RANGE) as usize;
    let mut out = Vec::with_capacity(16 + n * 16);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&hi.to_le_bytes());
    out.extend_from_slice(&(n as u32).to_le_bytes());
    for p in base..base + n as u64 {
        out.extend_from_slice(h.links().link(p as u32).expect("assigned"));
    }
    let key = u16::try_from(hi).ok();
    let chunks: Vec<(u32, &super::set::Chunk)> = match key {
        Some(k) => h.agencies().iter().filter_map(|(&a, s)| s.chunk(k).map(|c| (a, c))).collect(),
        None => Vec::new(),
    };
    out.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
    for (agency, chunk) in chunks {
        out.extend_from_slice(&agency.to_le_bytes());
        if let Some(words) = chunk_words(chunk) {
            out.push(1);
            out.extend_from_slice(&chunk.len().to_le_bytes());
            words.iter().for_each(|w| out.extend_from_slice(&w.to_le_bytes()));
        } else if let Some(lows) = chunk_array(chunk) {
            out.push(0);
            out.extend_from_slice(&(lows.len() as u32).to_le_bytes());
            lows.iter().for_each(|l| out.extend_from_slice(&l.to_le_bytes()));
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| bad("cut short"))?;
        let s = &self.data[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
}

/// Decode a range into `h` (ranges in ascending order; see the module documentation).
pub fn load_range(h: &mut Holdings, data: &[u8]) -> Result<u32> {
    if data.len() < 20 {
        return Err(bad("cut short"));
    }
    let (body, crc) = data.split_at(data.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err(bad("checksum mismatch"));
    }
    let mut r = Reader { data: body, at: 0 };
    if r.take(4)? != MAGIC {
        return Err(bad("wrong magic"));
    }
    let hi = r.u32()?;
    let n = r.u32()? as usize;
    if n as u64 > RANGE {
        return Err(bad("more link ids than a range holds"));
    }
    let base = hi as u64 * RANGE;
    if n > 0 {
        if h.person_count() != base {
            return Err(bad(&format!(
                "range {hi} assigns person indices from {base}, but {} are assigned",
                h.person_count()
            )));
        }
        let raw = r.take(n * 16)?;
        // SAFETY: [u8; 16] has size 16 and alignment 1: a byte slice of a multiple of 16 bytes
        // is a valid slice of link ids for the same lifetime.
        let links: &[LinkId] = unsafe { std::slice::from_raw_parts(raw.as_ptr().cast::<LinkId>(), n) };
        h.links.extend(links).map_err(|k| bad(&format!("person {} repeats an earlier link id", base + k as u64)))?;
    }
    let agencies = r.u32()?;
    let key = u16::try_from(hi).ok();
    let mut prev: Option<u32> = None;
    for _ in 0..agencies {
        let agency = r.u32()?;
        if prev.is_some_and(|p| p >= agency) {
            return Err(bad("agencies out of order"));
        }
        prev = Some(agency);
        let kind = r.take(1)?[0];
        let count = r.u32()?;
        let chunk = match kind {
            0 if count <= 4096 => {
                let lows: Vec<u16> =
                    r.take(count as usize * 2)?.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
                if lows.is_empty() || lows.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(bad("array chunk empty or not sorted"));
                }
                chunk_from_sorted(lows)
            }
            1 => {
                let mut words = Box::new([0u64; 1024]);
                for (w, c) in words.iter_mut().zip(r.take(8192)?.chunks_exact(8)) {
                    *w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
                }
                let chunk = chunk_from_words(words);
                if chunk.len() != count || count == 0 {
                    return Err(bad("bitmap count mismatch"));
                }
                chunk
            }
            _ => return Err(bad("unknown chunk kind")),
        };
        let key = key.ok_or_else(|| bad("range beyond the person index space"))?;
        let set = h.agencies_mut().entry(agency).or_default();
        if set.chunk(key).is_some() {
            return Err(bad(&format!("range {hi} of agency {agency} loaded twice")));
        }
        set.put_chunk(key, chunk);
    }
    if r.at != body.len() {
        return Err(bad("trailing bytes"));
    }
    Ok(hi)
}

impl HoldingsIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Holdings> {
        self.holdings.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Holdings> {
        self.holdings.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Make room for `persons` link ids at once (before a bulk load: the table is built at its
    /// final size instead of doubling).
    pub fn reserve(&self, persons: u64) {
        let mut h = self.write();
        let more = persons.saturating_sub(h.person_count()) as usize;
        h.links.reserve(more);
    }

    /// Load one snapshot range (ascending order). A range that does not check is refused and
    /// the index must be discarded (a half-loaded range is not undone).
    pub fn load_range(&self, data: &[u8]) -> Result<u32> {
        load_range(&mut self.write(), data)
    }

    /// After the last range: flat mirrors of dense sets and the dense columns.
    pub fn finish_load(&self) {
        let mut h = self.write();
        h.agencies_mut().values_mut().for_each(|s| s.maybe_flatten());
        h.assign_dense();
    }

    /// Range `hi` of the current state, encoded (for a snapshot).
    pub fn encode_range(&self, hi: u32) -> Vec<u8> {
        encode_range(&self.read(), hi)
    }

    pub fn range_count(&self) -> u32 {
        range_count(&self.read())
    }

    /// Assign `first..` to `links` (durable elsewhere already).
    pub fn assign(&self, first: u64, links: &[LinkId]) -> Result<()> {
        self.write().assign_links(first, links)
    }

    /// Apply durable events; returns how many holdings changed. Acquiring a person index that
    /// is not assigned is refused (nothing applied): the driver assigns persons first.
    pub fn apply(&self, op: Op, groups: &Groups) -> Result<u64> {
        let mut h = self.write();
        if op == Op::Acquire {
            let assigned = h.person_count();
            if let Some(p) = groups.iter().flat_map(|(_, ps)| ps).find(|&&p| p as u64 >= assigned) {
                return Err(Error::InvalidArgument(format!(
                    "person index {p} is not assigned ({assigned} so far): assign persons before their holdings"
                )));
            }
        }
        Ok(h.apply_groups(op, groups))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(n: usize, seed: u64) -> Vec<LinkId> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                let mut l = [0u8; 16];
                for half in l.chunks_exact_mut(8) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    half.copy_from_slice(&x.to_le_bytes());
                }
                l
            })
            .collect()
    }

    /// Load every range of `src` into a fresh index.
    fn reload(src: &HoldingsIndex) -> HoldingsIndex {
        let dst = HoldingsIndex::new();
        dst.reserve(src.read().person_count());
        for hi in 0..src.range_count() {
            assert_eq!(dst.load_range(&src.encode_range(hi)).unwrap(), hi);
        }
        dst.finish_load();
        dst
    }

    fn same(a: &Holdings, b: &Holdings) {
        assert_eq!(a.person_count(), b.person_count());
        assert_eq!(a.counts(), b.counts());
        for p in 0..a.person_count() as u32 {
            assert_eq!(a.link_of(p), b.link_of(p));
        }
        for (agency, set) in a.agencies() {
            assert!(set.iter().eq(b.set(*agency).map(|s| s.iter().collect::<Vec<_>>()).unwrap_or_default()));
        }
    }

    #[test]
    fn ranges_round_trip_through_arrays_bitmaps_and_dense_columns() {
        let ix = HoldingsIndex::new();
        let n = 200_000usize;
        let l = links(n, 7);
        ix.assign(0, &l[..70_000]).unwrap();
        ix.assign(70_000, &l[70_000..]).unwrap();
        // A dense (national) agency, a clustered one, a sparse one, and one emptied again.
        let national: Vec<u32> = (0..n as u32).filter(|p| p % 5 != 0).collect();
        let city: Vec<u32> = (65_000..140_000).collect();
        let sparse: Vec<u32> = (0..n as u32).step_by(977).collect();
        let groups = vec![(1, national.clone()), (2, city), (3, sparse), (4, vec![5, 6])];
        assert_eq!(ix.apply(Op::Acquire, &groups).unwrap(), groups.iter().map(|g| g.1.len() as u64).sum::<u64>());
        assert_eq!(ix.apply(Op::Release, &vec![(4, vec![5, 6]), (1, vec![1, 2])]).unwrap(), 4);
        assert_eq!(ix.range_count(), 4);
        let back = reload(&ix);
        same(&ix.read(), &back.read());
        let h = back.read();
        assert!(h.dense_pair(1, 2).is_some(), "dense columns rebuilt after the load");
        assert!(!h.holds(1, 1) && h.holds(1, 3) && h.holds(2, 65_000) && !h.holds(4, 5));
        assert_eq!(h.person_of_link(&l[123_456]), Some(123_456));
    }

    #[test]
    fn events_need_assigned_persons_in_order() {
        let ix = HoldingsIndex::new();
        let l = links(10, 3);
        assert!(ix.assign(1, &l[..2]).is_err(), "not the next index");
        ix.assign(0, &l[..5]).unwrap();
        assert!(ix.assign(5, &l[4..6]).is_err(), "a link id assigned twice");
        assert_eq!(ix.read().person_count(), 5);
        assert!(ix.apply(Op::Acquire, &vec![(1, vec![5])]).is_err());
        assert_eq!(ix.apply(Op::Acquire, &vec![(1, vec![4, 4, 0])]).unwrap(), 2);
        let (persons, new) = ix.read().resolve_links(&[l[7], l[2], l[7], l[8]]).unwrap();
        assert_eq!(persons, vec![5, 2, 5, 6]);
        assert_eq!(new, vec![l[7], l[8]]);
    }

    #[test]
    fn damaged_or_misordered_ranges_are_refused() {
        let ix = HoldingsIndex::new();
        let l = links(70_000, 11);
        ix.assign(0, &l).unwrap();
        ix.apply(Op::Acquire, &vec![(9, (0..70_000).step_by(3).collect())]).unwrap();
        let r0 = ix.encode_range(0);
        let r1 = ix.encode_range(1);
        let fresh = HoldingsIndex::new();
        assert!(fresh.load_range(&r1).is_err(), "range 1 before range 0");
        let mut flipped = r0.clone();
        flipped[40] ^= 1;
        assert!(fresh.load_range(&flipped).unwrap_err().to_string().contains("checksum"));
        assert!(fresh.load_range(&r0[..r0.len() - 1]).is_err());
        fresh.load_range(&r0).unwrap();
        assert!(fresh.load_range(&r0).is_err(), "the same range twice");
    }
}
