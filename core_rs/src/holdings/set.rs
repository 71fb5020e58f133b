//! A compressed set of person ids (u32), roaring-style: ids are split into chunks of 65,536 by
//! their high 16 bits; a chunk is a sorted array of low halves while it has at most 4,096
//! members (2 bytes each) and a 8 KiB bitmap beyond (1 bit per possible member). Unlike
//! roaring, the chunk of an id is found by direct indexing, not a binary search, so a membership
//! test on a dense chunk is two dependent loads — this is the inner loop of translation.
//!
//! Municipal residents (clustered ids) and national agencies (most ids) live in bitmaps at
//! about one bit per person id; small scattered agencies in arrays at two bytes per holding.

pub const CHUNK_BITS: u32 = 16;
const ARRAY_MAX: usize = 4096;
/// A bitmap shrinks back to an array only well below `ARRAY_MAX`, so a chunk at the border does
/// not flip on every insert/remove.
const ARRAY_SHRINK: u32 = 2048;
const NONE: u32 = u32::MAX;

#[derive(Clone)]
pub(crate) enum Chunk {
    Array(Vec<u16>),
    Bitmap { count: u32, bits: Box<[u64; 1024]> },
}

impl Chunk {
    #[inline(always)]
    fn contains(&self, low: u16) -> bool {
        match self {
            Chunk::Bitmap { bits, .. } => bits[(low >> 6) as usize] & (1u64 << (low & 63)) != 0,
            Chunk::Array(v) => v.binary_search(&low).is_ok(),
        }
    }

    pub(crate) fn len(&self) -> u32 {
        match self {
            Chunk::Array(v) => v.len() as u32,
            Chunk::Bitmap { count, .. } => *count,
        }
    }

    /// Insert; true when `low` was not there before.
    fn insert(&mut self, low: u16) -> bool {
        match self {
            Chunk::Bitmap { count, bits } => {
                let w = &mut bits[(low >> 6) as usize];
                let m = 1u64 << (low & 63);
                if *w & m != 0 {
                    return false;
                }
                *w |= m;
                *count += 1;
                true
            }
            Chunk::Array(v) => match v.binary_search(&low) {
                Ok(_) => false,
                Err(i) => {
                    if v.len() < ARRAY_MAX {
                        v.insert(i, low);
                    } else {
                        let mut bits = Box::new([0u64; 1024]);
                        for &x in v.iter() {
                            bits[(x >> 6) as usize] |= 1u64 << (x & 63);
                        }
                        bits[(low >> 6) as usize] |= 1u64 << (low & 63);
                        *self = Chunk::Bitmap { count: ARRAY_MAX as u32 + 1, bits };
                    }
                    true
                }
            },
        }
    }

    /// Remove; true when `low` was there.
    fn remove(&mut self, low: u16) -> bool {
        match self {
            Chunk::Bitmap { count, bits } => {
                let w = &mut bits[(low >> 6) as usize];
                let m = 1u64 << (low & 63);
                if *w & m == 0 {
                    return false;
                }
                *w &= !m;
                *count -= 1;
                if *count < ARRAY_SHRINK {
                    let v = bitmap_members(bits);
                    *self = Chunk::Array(v);
                }
                true
            }
            Chunk::Array(v) => match v.binary_search(&low) {
                Ok(i) => {
                    v.remove(i);
                    true
                }
                Err(_) => false,
            },
        }
    }

    pub(crate) fn members(&self) -> Vec<u16> {
        match self {
            Chunk::Array(v) => v.clone(),
            Chunk::Bitmap { bits, .. } => bitmap_members(bits),
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Chunk::Array(v) => v.capacity() * 2,
            Chunk::Bitmap { .. } => 8192,
        }
    }
}

fn bitmap_members(bits: &[u64; 1024]) -> Vec<u16> {
    let mut v = Vec::new();
    for (wi, &w) in bits.iter().enumerate() {
        let mut w = w;
        while w != 0 {
            v.push((wi as u32 * 64 + w.trailing_zeros()) as u16);
            w &= w - 1;
        }
    }
    v
}

/// A set of person ids.
#[derive(Clone, Default)]
pub struct PersonSet {
    /// `index[high]` = position in `chunks`, or `NONE`.
    index: Vec<u32>,
    chunks: Vec<(u16, Chunk)>,
    len: u64,
    /// For a dense set (a national agency), a flat bitmap mirror of the chunks over the whole
    /// id range: one load per test instead of three dependent ones, in one allocation that can
    /// sit on huge pages (fewer TLB misses on a 16 MiB map). Empty while the set is sparse.
    flat: Vec<u64>,
}

/// A set goes flat once it holds at least one id in `FLAT_DENSITY` of its range; the mirror
/// then costs at most as many bits again as the chunks (2 bytes per member in arrays).
const FLAT_DENSITY: u64 = 32;

/// A zeroed bitmap of `words` words, advised onto transparent huge pages before first touch.
fn alloc_flat(words: usize) -> Vec<u64> {
    let v = vec![0u64; words];
    advise_huge(v.as_ptr().cast(), words * 8);
    v
}

/// Ask for transparent huge pages on the 2 MiB-aligned interior of a fresh (untouched,
/// calloc'ed) allocation: large random-access tables then cost far fewer TLB misses.
pub(crate) fn advise_huge(ptr: *const u8, bytes: usize) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = ptr as usize;
        let end = start + bytes;
        let first = start.div_ceil(HUGE) * HUGE;
        if end > first + HUGE {
            let len = (end - first) / HUGE * HUGE;
            // SAFETY: the range lies inside the caller's live allocation; the advice changes
            // only how the kernel backs it, never its contents.
            unsafe {
                libc::madvise(first as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, bytes);
}

impl PersonSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline(always)]
    pub fn contains(&self, person: u32) -> bool {
        if !self.flat.is_empty() {
            return self.flat.get((person >> 6) as usize).is_some_and(|w| (w >> (person & 63)) & 1 != 0);
        }
        let high = (person >> CHUNK_BITS) as usize;
        match self.index.get(high) {
            Some(&slot) if slot != NONE => self.chunks[slot as usize].1.contains(person as u16),
            _ => false,
        }
    }

    /// Hint the CPU to fetch the bitmap word of `person` (no effect on array chunks).
    #[inline(always)]
    pub fn prefetch(&self, person: u32) {
        if !self.flat.is_empty() {
            if let Some(w) = self.flat.get((person >> 6) as usize) {
                prefetch_read((w as *const u64).cast());
            }
            return;
        }
        let high = (person >> CHUNK_BITS) as usize;
        if let Some(&slot) = self.index.get(high) {
            if slot != NONE {
                if let Chunk::Bitmap { bits, .. } = &self.chunks[slot as usize].1 {
                    let word: *const u64 = &bits[((person as u16) >> 6) as usize];
                    prefetch_read(word.cast());
                }
            }
        }
    }

    fn chunk_mut(&mut self, high: u16) -> &mut Chunk {
        let h = high as usize;
        if self.index.len() <= h {
            // Grow by an eighth at least, so a set filling up id by id copies its flat mirror
            // a logarithmic number of times, not once per chunk.
            self.index.resize((h + 1).max(self.index.len() + self.index.len() / 8), NONE);
            if !self.flat.is_empty() {
                let mut flat = alloc_flat(self.index.len() << (CHUNK_BITS - 6));
                flat[..self.flat.len()].copy_from_slice(&self.flat);
                self.flat = flat;
            }
        }
        if self.index[h] == NONE {
            self.index[h] = self.chunks.len() as u32;
            self.chunks.push((high, Chunk::Array(Vec::new())));
        }
        &mut self.chunks[self.index[h] as usize].1
    }

    /// Insert; true when `person` was not in the set before.
    pub fn insert(&mut self, person: u32) -> bool {
        let added = self.chunk_mut((person >> CHUNK_BITS) as u16).insert(person as u16);
        self.len += added as u64;
        if added && !self.flat.is_empty() {
            self.flat[(person >> 6) as usize] |= 1u64 << (person & 63);
        }
        added
    }

    /// Remove; true when `person` was in the set.
    pub fn remove(&mut self, person: u32) -> bool {
        let high = (person >> CHUNK_BITS) as usize;
        let removed = match self.index.get(high) {
            Some(&slot) if slot != NONE => self.chunks[slot as usize].1.remove(person as u16),
            _ => false,
        };
        self.len -= removed as u64;
        if removed && !self.flat.is_empty() {
            self.flat[(person >> 6) as usize] &= !(1u64 << (person & 63));
        }
        removed
    }

    /// Build the flat mirror once the set is dense enough (see `FLAT_DENSITY`).
    pub(crate) fn maybe_flatten(&mut self) {
        let range = (self.index.len() as u64) << CHUNK_BITS;
        if !self.flat.is_empty() || self.len == 0 || self.len * FLAT_DENSITY < range {
            return;
        }
        let mut flat = alloc_flat(self.index.len() << (CHUNK_BITS - 6));
        for (high, chunk) in &self.chunks {
            let base = (*high as usize) << (CHUNK_BITS - 6);
            match chunk {
                Chunk::Bitmap { bits, .. } => flat[base..base + 1024].copy_from_slice(&bits[..]),
                Chunk::Array(v) => {
                    for &low in v {
                        flat[base + (low >> 6) as usize] |= 1u64 << (low & 63);
                    }
                }
            }
        }
        self.flat = flat;
    }

    pub fn is_flat(&self) -> bool {
        !self.flat.is_empty()
    }

    /// The flat mirror's words (empty while the set is sparse).
    pub(crate) fn flat_words(&self) -> &[u64] {
        &self.flat
    }

    /// Insert many ids at once. Sorted input fills bitmaps directly; returns how many were new.
    pub fn extend_from(&mut self, persons: &[u32]) -> u64 {
        let added = persons.iter().map(|&p| self.insert(p) as u64).sum();
        self.maybe_flatten();
        added
    }

    /// Non-empty chunks in ascending key order (for snapshots and iteration).
    pub(crate) fn sorted_chunks(&self) -> Vec<(u16, &Chunk)> {
        let mut v: Vec<(u16, &Chunk)> = self.chunks.iter().filter(|(_, c)| c.len() > 0).map(|(k, c)| (*k, c)).collect();
        v.sort_unstable_by_key(|(k, _)| *k);
        v
    }

    /// The chunk of ids `high << 16 ..`, if the set has a non-empty one.
    pub(crate) fn chunk(&self, high: u16) -> Option<&Chunk> {
        match self.index.get(high as usize) {
            Some(&slot) if slot != NONE => Some(&self.chunks[slot as usize].1).filter(|c| c.len() > 0),
            _ => None,
        }
    }

    /// The number of 65,536-id ranges the set spans (its highest chunk + 1).
    pub(crate) fn ranges(&self) -> u32 {
        self.chunks.iter().filter(|(_, c)| c.len() > 0).map(|(k, _)| *k as u32 + 1).max().unwrap_or(0)
    }

    /// Add a whole chunk read from a snapshot (the key must not be present yet).
    pub(crate) fn put_chunk(&mut self, high: u16, chunk: Chunk) {
        self.len += chunk.len() as u64;
        *self.chunk_mut(high) = chunk;
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.sorted_chunks()
            .into_iter()
            .flat_map(|(k, c)| c.members().into_iter().map(move |low| ((k as u32) << CHUNK_BITS) | low as u32))
    }

    /// Approximate heap use, for reports.
    pub fn heap_bytes(&self) -> usize {
        self.index.capacity() * 4
            + self.flat.capacity() * 8
            + self.chunks.capacity() * std::mem::size_of::<(u16, Chunk)>()
            + self.chunks.iter().map(|(_, c)| c.heap_bytes()).sum::<usize>()
    }
}

#[inline(always)]
pub(crate) fn prefetch_read(p: *const i8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Build a chunk from sorted, distinct low halves.
pub(crate) fn chunk_from_sorted(lows: Vec<u16>) -> Chunk {
    if lows.len() <= ARRAY_MAX {
        Chunk::Array(lows)
    } else {
        let mut bits = Box::new([0u64; 1024]);
        for &x in &lows {
            bits[(x >> 6) as usize] |= 1u64 << (x & 63);
        }
        Chunk::Bitmap { count: lows.len() as u32, bits }
    }
}

/// Build a bitmap chunk from raw words (from a snapshot).
pub(crate) fn chunk_from_words(words: Box<[u64; 1024]>) -> Chunk {
    let count: u32 = words.iter().map(|w| w.count_ones()).sum();
    Chunk::Bitmap { count, bits: words }
}

pub(crate) fn chunk_words(c: &Chunk) -> Option<&[u64; 1024]> {
    match c {
        Chunk::Bitmap { bits, .. } => Some(bits),
        Chunk::Array(_) => None,
    }
}

pub(crate) fn chunk_array(c: &Chunk) -> Option<&[u16]> {
    match c {
        Chunk::Array(v) => Some(v),
        Chunk::Bitmap { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn matches_btreeset_through_array_bitmap_transitions() {
        let mut s = PersonSet::new();
        let mut r = BTreeSet::new();
        let mut x: u64 = 12345;
        for i in 0..200_000u32 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // Mostly one dense chunk (forces bitmap), some scattered ids.
            let p = if i % 3 == 0 { (x >> 33) as u32 } else { 70_000 + ((x >> 40) as u32 % 60_000) };
            if (x >> 20) % 4 == 0 {
                assert_eq!(s.remove(p), r.remove(&p));
            } else {
                assert_eq!(s.insert(p), r.insert(p));
            }
        }
        assert_eq!(s.len(), r.len() as u64);
        assert!(s.iter().eq(r.iter().copied()));
        // Shrink the dense chunk back below the array threshold.
        for p in 70_000..130_000u32 {
            assert_eq!(s.remove(p), r.remove(&p));
        }
        assert_eq!(s.len(), r.len() as u64);
        assert!(s.iter().eq(r.iter().copied()));
        for p in [0u32, 1, 65_535, 65_536, u32::MAX] {
            assert_eq!(s.contains(p), r.contains(&p));
        }
    }

    #[test]
    fn flat_mirror_agrees_with_chunks() {
        let mut s = PersonSet::new();
        let mut r = BTreeSet::new();
        let ids: Vec<u32> = (0..300_000u32).filter(|i| i % 3 != 0).collect();
        s.extend_from(&ids);
        r.extend(ids.iter().copied());
        assert!(s.is_flat());
        // grow past the mirrored range, remove some, and compare everywhere
        for p in [1_000_000u32, 5_000_000, 299_999, 1] {
            assert_eq!(s.insert(p), r.insert(p));
        }
        for p in (0..300_000u32).step_by(7) {
            assert_eq!(s.remove(p), r.remove(&p));
        }
        for p in 0..6_000_000u32 {
            assert_eq!(s.contains(p), r.contains(&p), "{p}");
        }
        assert_eq!(s.len(), r.len() as u64);
        assert!(s.iter().eq(r.iter().copied()));
    }

    #[test]
    fn extremes() {
        let mut s = PersonSet::new();
        assert!(!s.contains(u32::MAX));
        assert!(s.insert(u32::MAX));
        assert!(s.insert(0));
        assert!(s.contains(u32::MAX) && s.contains(0));
        assert!(!s.remove(5));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, u32::MAX]);
    }
}
