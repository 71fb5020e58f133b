//! The code engine: the code key, the key epochs and the durable holdings, together. This is
//! the core side of acquisition (番号法 第21条の2) and of translation. It knows persons by the
//! person link id J-LIS hands it (連携用符号, 16 opaque bytes) and by its own dense person
//! index, assigned to each link id on first sight (`holdings::links`); it never sees a My
//! Number or a resident code. The person-index calls (`acquire`, `acquire_pairs`, …) address
//! indices directly: for tests and benchmarks of the holdings themselves.

use std::path::Path;
use std::sync::{RwLock, RwLockReadGuard};

use super::{Code, CodeCipher, Decoded, Epochs, CODE_LEN, STATUS_OK, STATUS_REFUSED};
use crate::error::{Error, Result};
use crate::holdings::{self, Holdings, HoldingsIndex, HoldingsStore, LinkId, OpenReport};

/// How many items ahead translation prefetches holdings look-ups (≤ one cipher chunk).
const PREFETCH_AHEAD: usize = 128;

pub struct CodeEngine {
    cipher: CodeCipher,
    epochs: RwLock<Epochs>,
    store: Backing,
}

/// Where the holdings live: the file store (journal + snapshots, the embedded default), or
/// an index in memory whose changes a store driver outside the engine made durable first
/// (PostgreSQL: `renkei.store.holdings`).
enum Backing {
    File(HoldingsStore),
    Memory(HoldingsIndex),
}

impl Backing {
    fn read(&self) -> RwLockReadGuard<'_, Holdings> {
        match self {
            Backing::File(s) => s.read(),
            Backing::Memory(ix) => ix.read(),
        }
    }

    fn file(&self) -> Result<&HoldingsStore> {
        match self {
            Backing::File(s) => Ok(s),
            Backing::Memory(_) => Err(Error::InvalidArgument(
                "the holdings are kept by a store driver: changes go through it, not through the engine".into(),
            )),
        }
    }
}

/// The open report of an engine without a file store: nothing was opened.
static NO_REPORT: OpenReport = OpenReport { snapshot_loaded: false, records_replayed: 0, torn_bytes_dropped: 0 };

/// Person ids arrive as u64 (numpy, SQLite); the holdings index them as u32.
pub fn person_u32(p: u64, index: usize) -> Result<u32> {
    u32::try_from(p).map_err(|_| Error::InvalidArgument(format!("person id at index {index} is out of range (0..2^32)")))
}

/// (agency, item) pairs grouped by agency: `order` sorts item positions by agency (input order
/// within an agency), `spans` are (agency, start, end) ranges of `order`.
struct Pairs {
    order: Vec<u32>,
    spans: Vec<(u32, usize, usize)>,
}

impl Pairs {
    fn new(agencies: &[u32]) -> Self {
        let mut order: Vec<u32> = (0..agencies.len() as u32).collect();
        order.sort_unstable_by_key(|&i| ((agencies[i as usize] as u64) << 32) | i as u64);
        let mut spans: Vec<(u32, usize, usize)> = Vec::new();
        for (k, &i) in order.iter().enumerate() {
            let a = agencies[i as usize];
            match spans.last_mut() {
                Some((sa, _, end)) if *sa == a => *end = k + 1,
                _ => spans.push((a, k, k + 1)),
            }
        }
        Pairs { order, spans }
    }

    /// Per agency, its items' persons (`persons` by input position).
    fn groups(&self, persons: &[u32]) -> Vec<(u32, Vec<u32>)> {
        self.spans.iter().map(|&(a, s, e)| (a, self.order[s..e].iter().map(|&i| persons[i as usize]).collect())).collect()
    }
}

impl CodeEngine {
    /// The engine over the existing holdings store in `holdings_dir` (see [`HoldingsStore::open`]:
    /// an emptied or missing store is refused).
    pub fn open(key: &[u8], holdings_dir: impl AsRef<Path>, epochs: Epochs, checkpoint_bytes: u64) -> Result<Self> {
        let cipher = CodeCipher::new(key)?;
        let store = Backing::File(HoldingsStore::open(holdings_dir, checkpoint_bytes)?);
        Ok(CodeEngine { cipher, epochs: RwLock::new(epochs), store })
    }

    /// [`CodeEngine::open`], making a new, empty holdings store if there is none (init only).
    pub fn create(key: &[u8], holdings_dir: impl AsRef<Path>, epochs: Epochs, checkpoint_bytes: u64) -> Result<Self> {
        let cipher = CodeCipher::new(key)?;
        let store = Backing::File(HoldingsStore::create(holdings_dir, checkpoint_bytes)?);
        Ok(CodeEngine { cipher, epochs: RwLock::new(epochs), store })
    }

    /// An engine whose holdings index starts empty and is fed by a store driver (see
    /// [`HoldingsIndex`]): it loads snapshot ranges and applies the events the driver has made
    /// durable; its translation and inquiry paths are the file store's.
    pub fn in_memory(key: &[u8], epochs: Epochs) -> Result<Self> {
        let cipher = CodeCipher::new(key)?;
        Ok(CodeEngine { cipher, epochs: RwLock::new(epochs), store: Backing::Memory(HoldingsIndex::new()) })
    }

    /// The in-memory index, when the engine has no file store.
    pub fn index(&self) -> Option<&HoldingsIndex> {
        match &self.store {
            Backing::Memory(ix) => Some(ix),
            Backing::File(_) => None,
        }
    }

    /// Read access to the holdings, whichever driver keeps them.
    pub fn holdings(&self) -> RwLockReadGuard<'_, Holdings> {
        self.store.read()
    }

    pub fn open_report(&self) -> &OpenReport {
        match &self.store {
            Backing::File(s) => s.open_report(),
            Backing::Memory(_) => &NO_REPORT,
        }
    }

    /// `agency`'s codes for `persons` under the current epoch, without recording anything
    /// (the caller's driver has recorded the holdings durably). `out` gets 16 bytes per person.
    pub fn codes_for(&self, agency: u32, persons: &[u32], out: &mut [u8]) -> Result<()> {
        if out.len() != persons.len() * CODE_LEN {
            return Err(Error::InvalidArgument("output buffer has the wrong size".into()));
        }
        let epoch = self.epochs().current();
        self.cipher.encode_batch(persons, agency, epoch, out);
        Ok(())
    }

    /// The persons behind `agency`'s codes that are valid, live and held (the first half of a
    /// release); `status[i]` refused otherwise, the same for every cause.
    pub fn held_persons_of_codes(&self, agency: u32, codes: &[u8], status: &mut [u8]) -> Result<Vec<u32>> {
        if codes.len() != status.len() * CODE_LEN {
            return Err(Error::InvalidArgument("codes must be 16 bytes each".into()));
        }
        let epochs = self.epochs();
        let mut decoded = vec![None; status.len()];
        self.cipher.decode_batch(codes, &mut decoded);
        let mut persons = Vec::with_capacity(status.len());
        let h = self.store.read();
        for (d, s) in decoded.iter().zip(status.iter_mut()) {
            match Self::valid_for(*d, agency, &epochs) {
                Some(d) if h.holds(agency, d.person) => {
                    persons.push(d.person);
                    *s = STATUS_OK;
                }
                _ => *s = STATUS_REFUSED,
            }
        }
        Ok(persons)
    }

    pub fn epochs(&self) -> Epochs {
        self.epochs.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_epochs(&self, epochs: Epochs) {
        *self.epochs.write().unwrap_or_else(|e| e.into_inner()) = epochs;
    }

    /// Issue `agency`'s codes for `persons` and record the holdings; returns once durable.
    /// `out` gets 16 bytes per person, in order.
    pub fn acquire(&self, agency: u32, persons: &[u32], out: &mut [u8]) -> Result<u64> {
        if out.len() != persons.len() * CODE_LEN {
            return Err(Error::InvalidArgument("output buffer has the wrong size".into()));
        }
        let new = self.store.file()?.acquire(vec![(agency, persons.to_vec())])?;
        let epoch = self.epochs().current();
        self.cipher.encode_batch(persons, agency, epoch, out);
        Ok(new)
    }

    /// Many (agency, person) pairs in one durable journal record (bulk onboarding).
    pub fn acquire_pairs(&self, agencies: &[u32], persons: &[u32], out: &mut [u8]) -> Result<u64> {
        if agencies.len() != persons.len() || out.len() != persons.len() * CODE_LEN {
            return Err(Error::InvalidArgument("agencies, persons and output must have matching lengths".into()));
        }
        let pairs = Pairs::new(agencies);
        let new = self.store.file()?.acquire(pairs.groups(persons))?;
        self.encode_pairs(&pairs, persons, out);
        Ok(new)
    }

    /// Issue `agency`'s codes for the persons behind `links` (J-LIS's person link ids) and
    /// record the holdings. A link id seen for the first time gets the next person index, in
    /// the same durable journal record. Returns the number of new holdings once durable; `out`
    /// gets 16 bytes per link, in order.
    pub fn acquire_links(&self, agency: u32, links: &[LinkId], out: &mut [u8]) -> Result<u64> {
        if out.len() != links.len() * CODE_LEN {
            return Err(Error::InvalidArgument("output buffer has the wrong size".into()));
        }
        let (persons, new) = self.store.file()?.acquire_links(links, |ps| vec![(agency, ps.to_vec())])?;
        let epoch = self.epochs().current();
        self.cipher.encode_batch(&persons, agency, epoch, out);
        Ok(new)
    }

    /// `acquire_links` for many (agency, link id) pairs in one durable journal record (the
    /// national build); codes in input order.
    pub fn acquire_link_pairs(&self, agencies: &[u32], links: &[LinkId], out: &mut [u8]) -> Result<u64> {
        if agencies.len() != links.len() || out.len() != links.len() * CODE_LEN {
            return Err(Error::InvalidArgument("agencies, links and output must have matching lengths".into()));
        }
        let pairs = Pairs::new(agencies);
        let (persons, new) = self.store.file()?.acquire_links(links, |persons| pairs.groups(persons))?;
        self.encode_pairs(&pairs, &persons, out);
        Ok(new)
    }

    /// The person index of each link id (`None`: never seen). With `assign`, link ids seen
    /// for the first time get the next indices, durably, before this returns (J-LIS registers
    /// a person's link id, e.g. with their card key, before any agency holds them).
    pub fn persons_of_links(&self, links: &[LinkId], assign: bool) -> Result<Vec<Option<u32>>> {
        match &self.store {
            Backing::File(s) => s.persons_of_links(links, assign),
            Backing::Memory(ix) if !assign => {
                let mut found = vec![holdings::links::NONE; links.len()];
                ix.read().links().get_batch(links, &mut found);
                Ok(found.into_iter().map(|p| (p != holdings::links::NONE).then_some(p)).collect())
            }
            Backing::Memory(_) => self.store.file().map(|_| Vec::new()),
        }
    }

    /// The link id of person index `person`, if assigned.
    pub fn link_of(&self, person: u32) -> Option<LinkId> {
        self.store.read().link_of(person)
    }

    /// Person indices assigned so far (`0..person_count`).
    pub fn person_count(&self) -> u64 {
        self.store.read().person_count()
    }

    /// The codes of (agency, person) pairs, `persons` by input position, into `out` in input
    /// order (one agency at a time, so the cipher runs in batches).
    fn encode_pairs(&self, pairs: &Pairs, persons: &[u32], out: &mut [u8]) {
        let epoch = self.epochs().current();
        let (mut ps, mut tmp) = (Vec::new(), Vec::new());
        for &(a, s, e) in &pairs.spans {
            ps.clear();
            ps.extend(pairs.order[s..e].iter().map(|&i| persons[i as usize]));
            tmp.resize(ps.len() * CODE_LEN, 0);
            self.cipher.encode_batch(&ps, a, epoch, &mut tmp);
            for (code, &i) in tmp.chunks_exact(CODE_LEN).zip(&pairs.order[s..e]) {
                let i = i as usize;
                out[i * CODE_LEN..(i + 1) * CODE_LEN].copy_from_slice(code);
            }
        }
    }

    #[inline(always)]
    fn valid_for(d: Option<Decoded>, agency: u32, epochs: &Epochs) -> Option<Decoded> {
        d.filter(|d| d.agency == agency && epochs.is_live(d.epoch))
    }

    /// The person behind `agency`'s own code, if the code is valid, live and held.
    pub fn person_of(&self, agency: u32, code: &Code) -> Result<u32> {
        let epochs = self.epochs();
        let d = Self::valid_for(self.cipher.decode(code), agency, &epochs).ok_or(Error::CodeRefused)?;
        if self.store.read().holds(agency, d.person) {
            Ok(d.person)
        } else {
            Err(Error::CodeRefused)
        }
    }

    /// Release `agency`'s holdings of the persons behind its codes. `status[i]` is refused for
    /// a code that is not a valid, live, held code of this agency (the same for every cause).
    pub fn release(&self, agency: u32, codes: &[u8], status: &mut [u8]) -> Result<u64> {
        let store = self.store.file()?;
        let persons = self.held_persons_of_codes(agency, codes, status)?;
        store.release(vec![(agency, persons)])
    }

    /// Release by person id (J-LIS reports a death or emigration; the core acts on ids only).
    pub fn release_persons(&self, agency: u32, persons: &[u32]) -> Result<u64> {
        self.store.file()?.release(vec![(agency, persons.to_vec())])
    }

    /// Translate `from`'s codes to `to`'s codes under the current epoch. An item translates only
    /// when it is a valid, live code of `from` for a person both agencies hold; every other item
    /// gets zero bytes and `STATUS_REFUSED`.
    pub fn translate(&self, from: u32, codes: &[u8], to: u32, out: &mut [u8], status: &mut [u8]) -> Result<()> {
        if codes.len() != status.len() * CODE_LEN || out.len() != codes.len() {
            return Err(Error::InvalidArgument("codes must be 16 bytes each".into()));
        }
        let epochs = self.epochs();
        let h = self.store.read();
        let (Some(sa), Some(sb)) = (h.set(from), h.set(to)) else {
            out.fill(0);
            status.fill(STATUS_REFUSED);
            return Ok(());
        };
        let mut ok = vec![false; status.len()];
        // At national scale the sets are tens of MiB: each test's memory fetch starts
        // `PREFETCH_AHEAD` items before the test (measured: without it national-scale
        // translation runs at ~0.4x the rate of a cache-resident population). Between two
        // dense agencies one row access tests both holdings; otherwise each set is tested.
        let dist = PREFETCH_AHEAD;
        let dense = h.dense_pair(from, to);
        let to_code = (to, epochs.current());
        self.cipher.translate_batch(codes, to_code, out, &mut ok, |ds, next, admitted| {
            let n = ds.len();
            for (j, (d, a)) in ds.iter().zip(admitted.iter_mut()).enumerate() {
                let ahead = if j + dist < n { ds.get(j + dist) } else { next.get(j + dist - n) };
                if let Some(Some(x)) = ahead {
                    match dense {
                        Some((rows, _)) => holdings::dense::prefetch(rows, x.person),
                        None => {
                            sa.prefetch(x.person);
                            sb.prefetch(x.person);
                        }
                    }
                }
                *a = Self::valid_for(*d, from, &epochs)
                    .filter(|d| match dense {
                        Some((rows, mask)) => holdings::dense::all_hold(rows, mask, d.person),
                        None => sa.contains(d.person) && sb.contains(d.person),
                    })
                    .map(|d| d.person);
            }
        });
        for (s, o) in status.iter_mut().zip(ok) {
            *s = if o { STATUS_OK } else { STATUS_REFUSED };
        }
        Ok(())
    }

    pub fn translate_one(&self, from: u32, code: &Code, to: u32) -> Result<Code> {
        let mut out = [0u8; CODE_LEN];
        let mut status = [0u8; 1];
        self.translate(from, code, to, &mut out, &mut status)?;
        if status[0] == STATUS_OK {
            Ok(out)
        } else {
            Err(Error::CodeRefused)
        }
    }

    /// The agencies holding the person behind `agency`'s code (for the person's own disclosure).
    pub fn holders_of_code(&self, agency: u32, code: &Code) -> Result<Vec<u32>> {
        let person = self.person_of(agency, code)?;
        Ok(self.store.read().holders_of(person))
    }

    pub fn holders_of_person(&self, person: u32) -> Vec<u32> {
        self.store.read().holders_of(person)
    }

    pub fn holds(&self, agency: u32, person: u32) -> bool {
        self.store.read().holds(agency, person)
    }

    pub fn count(&self, agency: u32) -> u64 {
        self.store.read().count(agency)
    }

    pub fn counts(&self) -> Vec<(u32, u64)> {
        self.store.read().counts()
    }

    pub fn total(&self) -> u64 {
        self.store.read().total()
    }

    pub fn heap_bytes(&self) -> usize {
        self.store.read().heap_bytes()
    }

    /// Snapshot the file store (nothing to do for an index fed by a driver: the driver writes
    /// its own snapshots).
    pub fn checkpoint(&self) -> Result<()> {
        match &self.store {
            Backing::File(s) => s.checkpoint(),
            Backing::Memory(_) => Ok(()),
        }
    }

    /// Release the holdings directory (its lock); later changes are refused. Dropping the
    /// engine does the same.
    pub fn close(&self) {
        if let Backing::File(s) = &self.store {
            s.close()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(dir: &Path) -> CodeEngine {
        CodeEngine::create(&[3u8; 32], dir, Epochs::new(1, &[1]).unwrap(), 1 << 20).unwrap()
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("renkei-codes-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn acquire(e: &CodeEngine, agency: u32, persons: &[u32]) -> Vec<u8> {
        let mut out = vec![0u8; persons.len() * 16];
        e.acquire(agency, persons, &mut out).unwrap();
        out
    }

    #[test]
    fn translate_round_trip_and_every_refusal() {
        let dir = tmp("refusals");
        let e = engine(&dir);
        let a_codes = acquire(&e, 1, &[10, 11, 12]);
        let b_codes = acquire(&e, 2, &[10, 11]);
        let a10: Code = a_codes[0..16].try_into().unwrap();
        let b10: Code = b_codes[0..16].try_into().unwrap();
        assert_eq!(e.translate_one(1, &a10, 2).unwrap(), b10);
        assert_eq!(e.translate_one(2, &b10, 1).unwrap(), a10);
        // Person 12 is not held by agency 2.
        let a12: Code = a_codes[32..48].try_into().unwrap();
        assert_eq!(e.translate_one(1, &a12, 2), Err(Error::CodeRefused));
        // Wrong agency: B's code presented as A's.
        assert_eq!(e.translate_one(1, &b10, 2), Err(Error::CodeRefused));
        // Bit flip.
        let mut f = a10;
        f[7] ^= 0x10;
        assert_eq!(e.translate_one(1, &f, 2), Err(Error::CodeRefused));
        // Agency 3 holds nobody.
        assert_eq!(e.translate_one(1, &a10, 3), Err(Error::CodeRefused));
        // Released.
        let mut st = [9u8; 1];
        assert_eq!(e.release(2, &b10, &mut st).unwrap(), 1);
        assert_eq!(st[0], STATUS_OK);
        assert_eq!(e.translate_one(1, &a10, 2), Err(Error::CodeRefused));
        assert_eq!(e.release(2, &b10, &mut st).unwrap(), 0);
        assert_eq!(st[0], STATUS_REFUSED);
        // Rotation: new codes under epoch 2, old still translate until epoch 1 is retired.
        e.set_epochs(Epochs::new(2, &[1, 2]).unwrap());
        let a11: Code = a_codes[16..32].try_into().unwrap();
        let b11_new = e.translate_one(1, &a11, 2).unwrap();
        assert_ne!(b11_new, <Code>::try_from(&b_codes[16..32]).unwrap());
        let a11_new = e.translate_one(1, &a11, 1).unwrap(); // self-translation refreshes the epoch
        e.set_epochs(Epochs::new(2, &[2]).unwrap());
        assert_eq!(e.translate_one(1, &a11, 2), Err(Error::CodeRefused));
        assert_eq!(e.translate_one(1, &a11_new, 2).unwrap(), b11_new);
        assert_eq!(e.holders_of_person(11), vec![1, 2]);
        assert_eq!(e.holders_of_code(1, &a11_new).unwrap(), vec![1, 2]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn holdings_survive_reopen() {
        let dir = tmp("reopen");
        {
            let e = engine(&dir);
            acquire(&e, 5, &(0..10_000).collect::<Vec<_>>());
            e.release_persons(5, &[3, 4]).unwrap();
            e.checkpoint().unwrap();
            acquire(&e, 6, &[1, 2, 3]);
        }
        let e = engine(&dir);
        assert!(e.open_report().snapshot_loaded);
        assert_eq!(e.open_report().records_replayed, 1);
        assert_eq!(e.count(5), 9_998);
        assert_eq!(e.counts(), vec![(5, 9_998), (6, 3)]);
        assert!(!e.holds(5, 3) && e.holds(6, 3));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn dense_rows_agree_with_the_sets() {
        let dir = tmp("dense");
        let e = engine(&dir);
        let n = 300_000u32;
        let mut x: u64 = 7;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let a: Vec<u32> = (0..n).filter(|_| rnd() % 10 < 8).collect();
        let b: Vec<u32> = (0..n).filter(|_| rnd() % 10 < 7).collect();
        let codes = acquire(&e, 1, &a);
        acquire(&e, 2, &b);
        acquire(&e, 3, &[5, 17, 250_000]); // sparse: no dense column
        let gone: Vec<u32> = b.iter().copied().filter(|p| p % 11 == 0).collect();
        e.release_persons(2, &gone).unwrap();
        acquire(&e, 2, &[n + 100_000]); // grows the rows past their range
        let check = |e: &CodeEngine| {
            let h = e.store.read();
            assert!(h.dense_pair(1, 2).is_some() && h.dense_pair(1, 3).is_none());
            drop(h);
            for to in [2u32, 3] {
                let mut out = vec![0u8; codes.len()];
                let mut status = vec![0u8; a.len()];
                e.translate(1, &codes, to, &mut out, &mut status).unwrap();
                for (i, &p) in a.iter().enumerate() {
                    assert_eq!(status[i] == STATUS_OK, e.holds(to, p), "person {p} to {to}");
                }
            }
        };
        check(&e);
        e.checkpoint().unwrap();
        drop(e);
        let e = engine(&dir); // columns rebuilt from the snapshot
        check(&e);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn pairs_match_single_acquisitions() {
        let dir = tmp("pairs");
        let e = engine(&dir);
        let agencies = [3u32, 1, 3, 2];
        let persons = [7u32, 7, 8, 9];
        let mut out = vec![0u8; 64];
        assert_eq!(e.acquire_pairs(&agencies, &persons, &mut out).unwrap(), 4);
        for i in 0..4 {
            assert_eq!(&out[i * 16..i * 16 + 16], e.cipher.encode(persons[i], agencies[i], 1));
            assert!(e.holds(agencies[i], persons[i]));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn links(n: usize, seed: u8) -> Vec<LinkId> {
        (0..n).map(|i| {
            let mut l = [seed; 16];
            l[..8].copy_from_slice(&((i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed as u64).to_le_bytes());
            l
        }).collect()
    }

    #[test]
    fn link_ids_get_indices_and_codes_that_survive_reopen() {
        let dir = tmp("links");
        let a = links(300, 1);
        let (codes_a, codes_pairs);
        {
            let e = engine(&dir);
            let mut out = vec![0u8; a.len() * 16];
            assert_eq!(e.acquire_links(7, &a, &mut out).unwrap(), 300);
            codes_a = out;
            for (i, code) in codes_a.chunks_exact(16).enumerate() {
                assert_eq!(code, e.cipher.encode(i as u32, 7, 1), "index {i} in order of first sight");
            }
            // Pairs: known and new links across agencies, one record.
            let b = links(50, 2);
            let pl: Vec<LinkId> = b.iter().chain(&a[..50]).copied().collect();
            let pa: Vec<u32> = (0..100).map(|i| [7u32, 8, 9][i % 3]).collect();
            let mut out = vec![0u8; 100 * 16];
            let new = e.acquire_link_pairs(&pa, &pl, &mut out).unwrap();
            let p = e.persons_of_links(&pl, false).unwrap();
            for i in 0..100 {
                let person = p[i].unwrap();
                assert_eq!(&out[i * 16..i * 16 + 16], e.cipher.encode(person, pa[i], 1));
                assert!(e.holds(pa[i], person));
            }
            assert_eq!(new, 100 - (0..100).filter(|&i| i >= 50 && pa[i] == 7).count() as u64);
            codes_pairs = out;
            assert_eq!(e.person_count(), 350);
            assert_eq!(e.link_of(300), Some(b[0]));
            assert_eq!(e.persons_of_links(&links(2, 3), false).unwrap(), [None, None]);
            assert_eq!(e.persons_of_links(&links(2, 3), true).unwrap(), [Some(350), Some(351)]);
            // Translation works on indices assigned from links.
            let c0: Code = codes_a[..16].try_into().unwrap();
            assert_eq!(e.translate_one(7, &c0, 8).is_ok(), e.holds(8, 0));
        }
        let e = engine(&dir);
        assert_eq!(e.person_count(), 352);
        let mut out = vec![0u8; a.len() * 16];
        assert_eq!(e.acquire_links(7, &a, &mut out).unwrap(), 0, "held already: nothing new");
        assert_eq!(out, codes_a, "same indices, same codes after reopen");
        let b = links(50, 2);
        let pl: Vec<LinkId> = b.iter().chain(&a[..50]).copied().collect();
        let pa: Vec<u32> = (0..100).map(|i| [7u32, 8, 9][i % 3]).collect();
        let mut out = vec![0u8; 100 * 16];
        assert_eq!(e.acquire_link_pairs(&pa, &pl, &mut out).unwrap(), 0);
        assert_eq!(out, codes_pairs);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
