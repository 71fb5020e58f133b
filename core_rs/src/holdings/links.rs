//! Person link ids (連携用符号) and the core's own dense person indices.
//!
//! J-LIS hands the core an opaque 16-byte link id per person (a keyed PRF of the resident
//! code, never reused). The core assigns each link id, on first sight, the next dense `u32`
//! person index; holdings and agency codes use the index. Indices start at 0, are assigned in
//! order and never reused.
//!
//! In memory, at national scale (125 M persons):
//!
//! * the link ids by index, in chunks of 2^20 (16 MiB each, zeroed allocations advised onto
//!   huge pages, touched only as filled): 16 B per person, 2.0 GB; no reallocation copies as
//!   the population grows;
//! * an open-addressing table of `u32` slots holding index + 1 (0 = empty), linear probing,
//!   the slot chosen by a multiplicative hash of the link id's first 8 bytes, load kept ≤ 0.5
//!   (power-of-two size): 2^28 slots = 1 GiB at 125 M. A probe compares the whole link id, read
//!   from the chunks (one more memory access per occupied slot probed: ≈ 1.5 per hit, ≈ 2.5
//!   slots and ≈ 1.5 comparisons per miss at load 0.5).
//!
//! Batch look-ups and inserts prefetch the table slot and then the candidate link id a few
//! items ahead, so a national-scale batch costs close to memory bandwidth, not to latency.
//! The first 8 bytes of a link id are uniformly random PRF output, so they are the hash key;
//! the multiplication (Fibonacci hashing) only guards against non-random test inputs.

use super::set::{advise_huge, prefetch_read};

/// A person link id: 16 opaque bytes from J-LIS. Never logged, never in an error message.
pub type LinkId = [u8; 16];

const CHUNK_BITS: u32 = 20;
const CHUNK: usize = 1 << CHUNK_BITS;
const MIN_TABLE_BITS: u32 = 10;
/// Index + 1 is stored in a `u32` slot (0 = empty), so the largest index is `u32::MAX - 1`.
pub const MAX_PERSONS: u64 = u32::MAX as u64;
/// "No index" in batch results (never an index: the largest is `u32::MAX - 1`).
pub const NONE: u32 = u32::MAX;
/// How many items ahead batch operations prefetch.
const AHEAD: usize = 16;

#[derive(Clone)]
pub struct PersonLinks {
    chunks: Vec<Box<[LinkId]>>,
    len: usize,
    /// index + 1 per slot, 0 = empty; length a power of two, at least twice `len`.
    table: Vec<u32>,
    shift: u32,
}

impl Default for PersonLinks {
    fn default() -> Self {
        PersonLinks { chunks: Vec::new(), len: 0, table: vec![0; 1 << MIN_TABLE_BITS], shift: 64 - MIN_TABLE_BITS }
    }
}

fn new_chunk() -> Box<[LinkId]> {
    // Zeroed, so the allocator hands out untouched pages (RSS grows only as they fill).
    let c = vec![[0u8; 16]; CHUNK].into_boxed_slice();
    advise_huge(c.as_ptr().cast(), CHUNK * 16);
    c
}

fn new_table(bits: u32) -> Vec<u32> {
    let t = vec![0u32; 1 << bits];
    advise_huge(t.as_ptr().cast(), t.len() * 4);
    t
}

#[inline(always)]
fn key(link: &LinkId) -> u64 {
    u64::from_le_bytes(link[..8].try_into().expect("8 bytes"))
}

impl PersonLinks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of persons (indices `0..len` are assigned).
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline(always)]
    fn slot_of(&self, link: &LinkId) -> usize {
        (key(link).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    #[inline(always)]
    fn at(&self, index: usize) -> &LinkId {
        &self.chunks[index >> CHUNK_BITS][index & (CHUNK - 1)]
    }

    /// The link id of person `index`, if assigned.
    pub fn link(&self, index: u32) -> Option<&LinkId> {
        ((index as usize) < self.len).then(|| self.at(index as usize))
    }

    /// The person index of `link`, if it has one.
    #[inline]
    pub fn get(&self, link: &LinkId) -> Option<u32> {
        let mask = self.table.len() - 1;
        let mut s = self.slot_of(link);
        loop {
            let v = self.table[s];
            if v == 0 {
                return None;
            }
            if self.at(v as usize - 1) == link {
                return Some(v - 1);
            }
            s = (s + 1) & mask;
        }
    }

    #[inline(always)]
    fn prefetch_slot(&self, link: &LinkId) {
        prefetch_read(self.table.as_ptr().wrapping_add(self.slot_of(link)).cast());
    }

    #[inline(always)]
    fn prefetch_candidate(&self, link: &LinkId) {
        let v = self.table[self.slot_of(link)];
        if v != 0 {
            prefetch_read(self.at(v as usize - 1).as_ptr().cast());
        }
    }

    /// `get` for many links; `out[i]` for `links[i]`, [`NONE`] where there is no index.
    /// Prefetches the slot `2·AHEAD` items ahead and the first candidate's link id `AHEAD`
    /// items ahead.
    pub fn get_batch(&self, links: &[LinkId], out: &mut [u32]) {
        debug_assert_eq!(links.len(), out.len());
        let n = links.len();
        for i in 0..n {
            if i + 2 * AHEAD < n {
                self.prefetch_slot(&links[i + 2 * AHEAD]);
            }
            if i + AHEAD < n {
                self.prefetch_candidate(&links[i + AHEAD]);
            }
            out[i] = self.get(&links[i]).unwrap_or(NONE);
        }
    }

    /// Make room for `more` persons: a new chunk as needed and a table with load ≤ 0.5.
    pub(crate) fn reserve(&mut self, more: usize) {
        let want = self.len + more;
        while self.chunks.len() * CHUNK < want {
            self.chunks.push(new_chunk());
        }
        let mut bits = self.table.len().trailing_zeros();
        while (1usize << bits) < want * 2 {
            bits += 1;
        }
        if (1usize << bits) != self.table.len() {
            self.table = new_table(bits);
            self.shift = 64 - bits;
            for i in 0..self.len {
                if i + AHEAD < self.len {
                    self.prefetch_slot(self.at(i + AHEAD));
                }
                self.place(i as u32);
            }
        }
    }

    /// Put person `index` (its link already stored) into the table; its link must be absent.
    #[inline(always)]
    fn place(&mut self, index: u32) {
        let mask = self.table.len() - 1;
        let mut s = self.slot_of(self.at(index as usize));
        while self.table[s] != 0 {
            s = (s + 1) & mask;
        }
        self.table[s] = index + 1;
    }

    /// Assign the next indices to `links`, in order. Every link must be new and distinct:
    /// otherwise nothing is assigned and the position of the first offender is returned.
    pub fn extend(&mut self, links: &[LinkId]) -> Result<(), usize> {
        if (self.len + links.len()) as u64 > MAX_PERSONS {
            return Err(0);
        }
        self.reserve(links.len());
        let start = self.len;
        for (k, link) in links.iter().enumerate() {
            if k + AHEAD < links.len() {
                self.prefetch_slot(&links[k + AHEAD]);
            }
            if self.get(link).is_some() {
                // Undo: the table entries of this call, then the length.
                self.truncate_to(start);
                return Err(k);
            }
            let i = self.len;
            self.chunks[i >> CHUNK_BITS][i & (CHUNK - 1)] = *link;
            self.len += 1;
            self.place(i as u32);
        }
        Ok(())
    }

    /// Forget persons `len..` (only used to undo a refused `extend`): rebuild the table.
    fn truncate_to(&mut self, len: usize) {
        for i in len..self.len {
            self.chunks[i >> CHUNK_BITS][i & (CHUNK - 1)] = [0; 16];
        }
        self.len = len;
        self.table.fill(0);
        for i in 0..len {
            self.place(i as u32);
        }
    }

    /// The link ids by index, as contiguous slices (for the snapshot).
    pub fn slices(&self) -> impl Iterator<Item = &[LinkId]> {
        let full = self.len >> CHUNK_BITS;
        let rest = self.len & (CHUNK - 1);
        self.chunks[..full]
            .iter()
            .map(|c| &c[..])
            .chain((rest > 0).then(|| &self.chunks[full][..rest]))
    }

    /// Load `n` link ids in index order from `fill`, which gets the raw bytes of each chunk's
    /// share (the snapshot reader). The table is built once, at its final size. Returns the
    /// first duplicated index, if any (a damaged snapshot).
    pub fn load(
        n: usize,
        mut fill: impl FnMut(&mut [u8]) -> std::io::Result<()>,
    ) -> std::io::Result<Result<Self, usize>> {
        let mut p = PersonLinks::new();
        if n as u64 > MAX_PERSONS {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "too many persons"));
        }
        p.reserve(n);
        let mut left = n;
        for c in p.chunks.iter_mut() {
            if left == 0 {
                break;
            }
            let take = left.min(CHUNK);
            fill(c[..take].as_flattened_mut())?;
            left -= take;
        }
        p.len = n;
        for i in 0..n {
            if i + AHEAD < n {
                p.prefetch_slot(p.at(i + AHEAD));
            }
            if p.get(p.at(i)).is_some() {
                return Ok(Err(i));
            }
            p.place(i as u32);
        }
        Ok(Ok(p))
    }

    pub fn heap_bytes(&self) -> usize {
        self.len * 16 + self.table.len() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn rnd(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    fn link(seed: &mut u64) -> LinkId {
        let mut l = [0u8; 16];
        l[..8].copy_from_slice(&rnd(seed).to_le_bytes());
        l[8..].copy_from_slice(&rnd(seed).to_le_bytes());
        l
    }

    #[test]
    fn agrees_with_a_hash_map() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut p = PersonLinks::new();
        let mut reference: HashMap<LinkId, u32> = HashMap::new();
        let mut all = Vec::new();
        for round in 0..40 {
            let batch: Vec<LinkId> = (0..(round * 997) % 5000 + 1).map(|_| link(&mut seed)).collect();
            p.extend(&batch).unwrap();
            for l in &batch {
                let i = reference.len() as u32;
                reference.insert(*l, i);
                all.push(*l);
            }
            // Some known, some unknown, in one batch.
            let mut probe: Vec<LinkId> = all.iter().step_by(7).copied().collect();
            probe.extend((0..300).map(|_| link(&mut seed)));
            let mut out = vec![0; probe.len()];
            p.get_batch(&probe, &mut out);
            for (l, &got) in probe.iter().zip(&out) {
                assert_eq!(got, reference.get(l).copied().unwrap_or(NONE));
                assert_eq!(p.get(l).unwrap_or(NONE), got);
            }
        }
        assert_eq!(p.len(), reference.len());
        for (l, &i) in &reference {
            assert_eq!(p.link(i), Some(l));
        }
        assert_eq!(p.link(p.len() as u32), None);
        assert!(p.table.len() >= 2 * p.len());
        // A structured (non-random) key space still works: the hash spreads it.
        let mut q = PersonLinks::new();
        let seq: Vec<LinkId> = (0..20_000u64).map(|i| {
            let mut l = [0u8; 16];
            l[..8].copy_from_slice(&i.to_le_bytes());
            l
        }).collect();
        q.extend(&seq).unwrap();
        assert!(seq.iter().enumerate().all(|(i, l)| q.get(l) == Some(i as u32)));
    }

    #[test]
    fn a_duplicate_is_refused_and_nothing_assigned() {
        let mut seed = 99u64;
        let mut p = PersonLinks::new();
        let a: Vec<LinkId> = (0..100).map(|_| link(&mut seed)).collect();
        p.extend(&a).unwrap();
        let mut b: Vec<LinkId> = (0..50).map(|_| link(&mut seed)).collect();
        b.push(a[3]);
        assert_eq!(p.extend(&b), Err(50));
        assert_eq!(p.len(), 100);
        assert_eq!(p.get(&b[0]), None);
        let c = [b[0], b[0]];
        assert_eq!(p.extend(&c), Err(1));
        assert_eq!(p.len(), 100);
        assert!(a.iter().enumerate().all(|(i, l)| p.get(l) == Some(i as u32)));
    }

    #[test]
    fn load_rebuilds_the_same_map_across_chunks() {
        let mut seed = 7u64;
        let mut p = PersonLinks::new();
        let a: Vec<LinkId> = (0..CHUNK + 1234).map(|_| link(&mut seed)).collect();
        p.extend(&a).unwrap();
        let bytes: Vec<u8> = p.slices().flat_map(|s| s.as_flattened().to_vec()).collect();
        assert_eq!(bytes.len(), a.len() * 16);
        let mut at = 0;
        let q = PersonLinks::load(a.len(), |buf| {
            buf.copy_from_slice(&bytes[at..at + buf.len()]);
            at += buf.len();
            Ok(())
        })
        .unwrap()
        .unwrap();
        assert_eq!(q.len(), a.len());
        assert!(a.iter().enumerate().step_by(97).all(|(i, l)| q.get(l) == Some(i as u32)));
        let mut dup = bytes.clone();
        dup.extend_from_slice(&bytes[16 * 5..16 * 6]);
        let mut at = 0;
        let r = PersonLinks::load(a.len() + 1, |buf| {
            buf.copy_from_slice(&dup[at..at + buf.len()]);
            at += buf.len();
            Ok(())
        })
        .unwrap();
        assert_eq!(r.err(), Some(a.len()));
    }
}
