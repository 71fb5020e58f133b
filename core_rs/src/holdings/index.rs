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
//!
//! A **patch** is what changed in one range since an earlier write of it (the driver's delta
//! row, applied on top of the range's base right after it, in snapshot order): the link ids
//! assigned from person `first` on, and for every (agency, person) pair the driver names — the
//! pairs events touched since the previous snapshot — whether the agency holds the person now.
//! Its size is the change's, not the range's:
//!
//! ```text
//!   magic     4  b"RKP1"
//!   range     4  u32 LE: hi
//!   first     4  u32 LE: the person index of the first link id below (hi·65536 ≤ first ≤ hi·65536 + 65536)
//!   links     4  u32 LE: n, then n × 16 bytes (persons first .. first + n, inside the range)
//!   agencies  4  u32 LE, ascending by agency id
//!   per agency: agency u32, held u32 + held × u16, cleared u32 + cleared × u16 (low halves,
//!               each list ascending, the two disjoint, not both empty), LE
//!   crc       4  CRC-32 (IEEE) over everything above
//! ```
//!
//! Applying a patch sets each named pair to its value and appends the link ids past the ones
//! assigned (those already assigned must be the same): a base followed by its range's patches,
//! in order, is the range as the last of them encoded it. A patch may fold in earlier patches of
//! its range ([`encode_patch`]'s `previous`): the union of their pairs, valued now, and their
//! link ids — one row replacing several.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::links::LinkId;
use super::set::{chunk_array, chunk_from_sorted, chunk_from_words, chunk_words, CHUNK_BITS};
use super::{Groups, Holdings, Op};
use crate::error::{Error, Result};

const MAGIC: [u8; 4] = *b"RKR1";
const PATCH_MAGIC: [u8; 4] = *b"RKP1";
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

/// One decoded patch (see the module documentation).
pub struct Patch<'a> {
    pub hi: u32,
    pub first: u64,
    pub links: &'a [LinkId],
    /// (agency, held lows, cleared lows), ascending by agency.
    pub agencies: Vec<(u32, Vec<u16>, Vec<u16>)>,
}

fn lows_ascending(r: &mut Reader<'_>) -> Result<Vec<u16>> {
    let n = r.u32()? as usize;
    if n > RANGE as usize {
        return Err(bad("patch lists more persons than a range holds"));
    }
    let lows: Vec<u16> = r.take(n * 2)?.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    if lows.windows(2).any(|w| w[0] >= w[1]) {
        return Err(bad("patch persons not ascending"));
    }
    Ok(lows)
}

/// Decode and check a patch (checksum, bounds, order); nothing is applied.
pub fn decode_patch(data: &[u8]) -> Result<Patch<'_>> {
    if data.len() < 24 {
        return Err(bad("cut short"));
    }
    let (body, crc) = data.split_at(data.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err(bad("checksum mismatch"));
    }
    let mut r = Reader { data: body, at: 0 };
    if r.take(4)? != PATCH_MAGIC {
        return Err(bad("wrong magic (not a patch)"));
    }
    let hi = r.u32()?;
    let base = hi as u64 * RANGE;
    let first = r.u32()? as u64;
    let n = r.u32()? as u64;
    if first < base || first + n > base + RANGE {
        return Err(bad("patch link ids outside its range"));
    }
    let raw = r.take(n as usize * 16)?;
    // SAFETY: [u8; 16] has size 16 and alignment 1: a byte slice of a multiple of 16 bytes is
    // a valid slice of link ids for the same lifetime.
    let links: &[LinkId] = unsafe { std::slice::from_raw_parts(raw.as_ptr().cast::<LinkId>(), n as usize) };
    let count = r.u32()?;
    let mut agencies: Vec<(u32, Vec<u16>, Vec<u16>)> = Vec::new();
    for _ in 0..count {
        let agency = r.u32()?;
        if agencies.last().is_some_and(|(p, _, _)| *p >= agency) {
            return Err(bad("agencies out of order"));
        }
        let held = lows_ascending(&mut r)?;
        let cleared = lows_ascending(&mut r)?;
        if held.is_empty() && cleared.is_empty() {
            return Err(bad("patch names an agency with no persons"));
        }
        if held.iter().any(|l| cleared.binary_search(l).is_ok()) {
            return Err(bad("patch both holds and clears a person"));
        }
        agencies.push((agency, held, cleared));
    }
    if r.at != body.len() {
        return Err(bad("trailing bytes"));
    }
    if hi > u16::MAX as u32 && !agencies.is_empty() {
        return Err(bad("range beyond the person index space"));
    }
    Ok(Patch { hi, first, links, agencies })
}

/// Encode the patch of range `hi` of `h`: the link ids from person `first` on (clamped to the
/// range; none when it is past what is assigned) and, for every (agency, person) of `touched`
/// (any order, repeats allowed, every person inside the range), whether the agency holds the
/// person now. `previous` are earlier patches of the range to fold in: their pairs join
/// `touched` and their link ids are carried from the smallest `first` on.
pub fn encode_patch(h: &Holdings, hi: u32, first: u64, touched: &[(u32, u32)], previous: &[&[u8]]) -> Result<Vec<u8>> {
    let base = hi as u64 * RANGE;
    let mut pairs: Vec<(u32, u32)> = touched.to_vec();
    if let Some(&(_, p)) = pairs.iter().find(|&&(_, p)| (p as u64) < base || p as u64 >= base + RANGE) {
        return Err(Error::InvalidArgument(format!("person index {p} is outside range {hi}")));
    }
    let mut first = first.clamp(base, base + RANGE);
    for data in previous {
        let old = decode_patch(data)?;
        if old.hi != hi {
            return Err(Error::InvalidArgument(format!("a patch of range {} folded into range {hi}", old.hi)));
        }
        first = first.min(old.first);
        for (agency, held, cleared) in &old.agencies {
            pairs.extend(held.iter().chain(cleared).map(|&l| (*agency, (base + l as u64) as u32)));
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    let end = h.person_count().clamp(first, base + RANGE);
    let mut out = Vec::with_capacity(24 + (end - first) as usize * 16 + pairs.len() * 2);
    out.extend_from_slice(&PATCH_MAGIC);
    out.extend_from_slice(&hi.to_le_bytes());
    out.extend_from_slice(&(first as u32).to_le_bytes());
    out.extend_from_slice(&((end - first) as u32).to_le_bytes());
    for p in first..end {
        out.extend_from_slice(h.links().link(p as u32).expect("assigned"));
    }
    let agencies: Vec<&[(u32, u32)]> = pairs.chunk_by(|a, b| a.0 == b.0).collect();
    out.extend_from_slice(&(agencies.len() as u32).to_le_bytes());
    for group in agencies {
        let agency = group[0].0;
        let (held, cleared): (Vec<u16>, Vec<u16>) = {
            let (mut held, mut cleared) = (Vec::new(), Vec::new());
            for &(_, p) in group {
                if h.holds(agency, p) { &mut held } else { &mut cleared }.push((p as u64 - base) as u16);
            }
            (held, cleared)
        };
        out.extend_from_slice(&agency.to_le_bytes());
        for lows in [held, cleared] {
            out.extend_from_slice(&(lows.len() as u32).to_le_bytes());
            lows.iter().for_each(|l| out.extend_from_slice(&l.to_le_bytes()));
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Apply a patch to `h` (right after its range's base and earlier patches, see the module
/// documentation). The whole patch is checked before anything changes: its link ids must
/// continue (or repeat) the assigned ones, and every person it holds must be assigned.
pub fn load_patch(h: &mut Holdings, data: &[u8]) -> Result<u32> {
    let patch = decode_patch(data)?;
    let (hi, base) = (patch.hi, patch.hi as u64 * RANGE);
    let assigned = h.person_count();
    let links = patch.links;
    if !links.is_empty() {
        if patch.first > assigned {
            return Err(bad(&format!(
                "patch of range {hi} assigns person indices from {}, but {assigned} are assigned",
                patch.first
            )));
        }
        let overlap = (assigned - patch.first).min(links.len() as u64) as usize;
        if (0..overlap).any(|i| h.links().link((patch.first + i as u64) as u32) != Some(&links[i])) {
            return Err(bad(&format!("patch of range {hi} gives an assigned person another link id")));
        }
    }
    let after = assigned.max(patch.first + links.len() as u64);
    if let Some(l) = patch.agencies.iter().flat_map(|(_, held, _)| held).find(|&&l| base + l as u64 >= after) {
        return Err(bad(&format!("patch of range {hi} holds person {}, which is not assigned", base + *l as u64)));
    }
    if !links.is_empty() {
        let overlap = (assigned - patch.first) as usize;
        if overlap < links.len() {
            h.links.extend(&links[overlap..]).map_err(|k| {
                bad(&format!("person {} repeats an earlier link id", assigned + k as u64))
            })?;
        }
    }
    for (agency, held, cleared) in &patch.agencies {
        let column = h.dense.column(*agency);
        let set = h.agencies.entry(*agency).or_default();
        for &l in held {
            let p = (base + l as u64) as u32;
            set.insert(p);
            if let Some(c) = column {
                h.dense.set(c, p);
            }
        }
        for &l in cleared {
            let p = (base + l as u64) as u32;
            set.remove(p);
            if let Some(c) = column {
                h.dense.clear(c, p);
            }
        }
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

    /// Apply one patch of the range loaded last (after its base and earlier patches, in
    /// snapshot order). A patch that does not check is refused with nothing applied.
    pub fn load_patch(&self, data: &[u8]) -> Result<u32> {
        load_patch(&mut self.write(), data)
    }

    /// The patch of range `hi` of the current state (see [`encode_patch`]).
    pub fn encode_patch(&self, hi: u32, first: u64, touched: &[(u32, u32)], previous: &[&[u8]]) -> Result<Vec<u8>> {
        encode_patch(&self.read(), hi, first, touched, previous)
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

    /// (agency, person) pairs of `groups`, the driver's "touched" list.
    fn pairs(groups: &[(u32, Vec<u32>)]) -> Vec<(u32, u32)> {
        groups.iter().flat_map(|(a, ps)| ps.iter().map(move |&p| (*a, p))).collect()
    }

    fn in_range(touched: &[(u32, u32)], hi: u32) -> Vec<(u32, u32)> {
        touched.iter().copied().filter(|&(_, p)| p as u64 >> 16 == hi as u64).collect()
    }

    #[test]
    fn a_base_and_its_patches_load_as_the_current_state() {
        let ix = HoldingsIndex::new();
        let l = links(150_000, 21);
        ix.assign(0, &l[..100_000]).unwrap();
        let national: Vec<u32> = (0..100_000).filter(|p| p % 4 != 0).collect();
        ix.apply(Op::Acquire, &vec![(1, national), (2, (0..100_000).step_by(501).collect())]).unwrap();
        let bases: Vec<Vec<u8>> = (0..ix.range_count()).map(|hi| ix.encode_range(hi)).collect();
        let since = ix.read().person_count();
        // Round 1: scattered releases and acquisitions, new persons in range 1 and range 2.
        ix.assign(100_000, &l[100_000..140_000]).unwrap();
        let rel = vec![(1, (1..100_000).step_by(977).collect::<Vec<u32>>()), (2, vec![0, 501, 99_999])];
        let acq = vec![(3, vec![7, 65_537, 139_999]), (1, vec![120_000, 4])];
        ix.apply(Op::Release, &rel).unwrap();
        ix.apply(Op::Acquire, &acq).unwrap();
        let round1: Vec<(u32, u32)> = [pairs(&rel), pairs(&acq)].concat();
        let p1: Vec<Vec<u8>> =
            (0..2).map(|hi| ix.encode_patch(hi, since, &in_range(&round1, hi), &[]).unwrap()).collect();
        let since2 = ix.read().person_count();
        // Round 2: a pair set back, persons up to 150,000.
        ix.assign(140_000, &l[140_000..]).unwrap();
        let round2 = vec![(1, vec![1, 149_999]), (3, vec![7])];
        ix.apply(Op::Acquire, &vec![(1, vec![1, 149_999])]).unwrap();
        ix.apply(Op::Release, &vec![(3, vec![7])]).unwrap();
        let round2 = pairs(&round2);
        let p2: Vec<Vec<u8>> =
            (0..2).map(|hi| ix.encode_patch(hi, since2, &in_range(&round2, hi), &[]).unwrap()).collect();
        let tail = ix.encode_range(2); // range 2 is new: a base

        let dst = HoldingsIndex::new();
        for (hi, (base, (a, b))) in bases.iter().zip(p1.iter().zip(&p2)).enumerate() {
            dst.load_range(base).unwrap();
            assert_eq!(dst.load_patch(a).unwrap(), hi as u32);
            dst.load_patch(b).unwrap();
        }
        dst.load_range(&tail).unwrap();
        dst.finish_load();
        same(&ix.read(), &dst.read());
        // Patches are the size of the change: range 0's holds no link id and a few pairs.
        assert!(p1[0].len() < 400, "{}", p1[0].len());
        assert_eq!(decode_patch(&p1[1]).unwrap().links.len(), 65_536 - (since as usize - 65_536));

        // Folded: one patch of range 0 and 1 replacing both rounds.
        let dst = HoldingsIndex::new();
        for (hi, (base, (a, b))) in bases.iter().zip(p1.iter().zip(&p2)).enumerate() {
            let folded = ix.encode_patch(hi as u32, since2, &[], &[a, b]).unwrap();
            dst.load_range(base).unwrap();
            dst.load_patch(&folded).unwrap();
        }
        dst.load_range(&tail).unwrap();
        dst.finish_load();
        same(&ix.read(), &dst.read());
        // A patch applied after the dense columns exist keeps them true.
        let after = HoldingsIndex::new();
        for base in &bases {
            after.load_range(base).unwrap();
        }
        after.finish_load();
        assert!(after.read().dense_pair(1, 1).is_some());
        after.load_patch(&p1[0]).unwrap();
        let h = after.read();
        let (rows, mask) = h.dense_pair(1, 1).unwrap();
        assert!(!super::super::dense::all_hold(rows, mask, 1) && !h.holds(1, 1));
    }

    #[test]
    fn patches_that_do_not_fit_are_refused_with_nothing_applied() {
        let ix = HoldingsIndex::new();
        let l = links(65_536, 5);
        ix.assign(0, &l[..60_000]).unwrap();
        ix.apply(Op::Acquire, &vec![(9, vec![1, 2, 3])]).unwrap();
        let base = ix.encode_range(0);
        ix.assign(60_000, &l[60_000..]).unwrap();
        ix.apply(Op::Acquire, &vec![(9, vec![65_000])]).unwrap();
        let good = ix.encode_patch(0, 60_000, &[(9, 65_000), (9, 2)], &[]).unwrap();
        assert!(ix.encode_patch(0, 0, &[(9, 65_536)], &[]).is_err(), "a person outside the range");
        assert!(ix.encode_patch(1, 0, &[], &[&good]).is_err(), "another range's patch folded in");

        let fresh = HoldingsIndex::new();
        assert!(fresh.load_patch(&good).unwrap_err().to_string().contains("assigns person indices from 60000"));
        assert!(fresh.load_patch(&base).unwrap_err().to_string().contains("not a patch"));
        fresh.load_range(&base).unwrap();
        let mut flipped = good.clone();
        flipped[30] ^= 1;
        assert!(fresh.load_patch(&flipped).unwrap_err().to_string().contains("checksum"));
        assert!(fresh.load_patch(&good[..good.len() - 2]).is_err());
        // Another link id for an assigned person: refused, nothing applied.
        let other = HoldingsIndex::new();
        other.assign(0, &links(61_000, 6)).unwrap();
        other.apply(Op::Acquire, &vec![(9, vec![60_500])]).unwrap();
        let clash = other.encode_patch(0, 59_000, &[(9, 60_500)], &[]).unwrap();
        assert!(fresh.load_patch(&clash).unwrap_err().to_string().contains("another link id"));
        assert_eq!(fresh.read().person_count(), 60_000);
        assert!(!fresh.read().holds(9, 60_500));
        fresh.load_patch(&good).unwrap();
        fresh.load_patch(&good).unwrap(); // applying the same patch again changes nothing
        fresh.finish_load();
        same(&ix.read(), &fresh.read());
    }
}
