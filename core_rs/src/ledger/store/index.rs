//! The per-person index (private). Records are grouped in segments of `SEGMENT`; the current
//! segment's pseudonym prefixes are in memory (from its openings file); each full segment gets a
//! sorted run, and a background thread merges runs like a binary counter (two runs of 2^k
//! segments, the first aligned to 2^(k+1), become one), so a ledger of S full segments has at
//! most popcount(S) ≤ log2(S) + 1 runs and a look-up reads one bucket of each: logarithmic in the
//! ledger's size.
//!
//! A run of 2^k segments (`index/run/<first>-<2^k>`): 2^(8+k) + 1 u32 BE bucket starts by the
//! prefix's top 8 + k bits, then per record 5 bytes: the prefix's low 24 − k bits ‖ its offset
//! in the run (16 + k bits), sorted by (prefix, offset). 5 B per record and 1,028 B per segment
//! whatever k. Merged runs are written to a temporary name, fsynced and renamed, so a run file
//! is complete or absent; on open the largest runs covering the full segments are kept, others
//! removed, and missing segments' runs rebuilt from the openings.

use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Seek, SeekFrom, Write};
use std::sync::Condvar;

use super::recovery::prefix_of_opening;
use super::*;

/// Records per index segment.
pub const SEGMENT: u64 = 1 << 16;
pub(super) const RUN_ENTRY: usize = 5;
/// Runs stop merging at 2^15 segments (2^31 records).
pub(super) const MAX_RUN_LOG: u32 = 15;

pub(super) fn run_path(first: u64, count: u64) -> String {
    format!("index/run/{first}-{count}")
}

fn bucket_bits(k: u32) -> u32 {
    8 + k
}

/// (first segment, segments) of a run file name.
fn parse_run_name(name: &str) -> Option<(u64, u64)> {
    let (a, b) = name.split_once('-')?;
    let (first, count): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
    (count.is_power_of_two() && count.trailing_zeros() <= MAX_RUN_LOG && first % count == 0).then_some((first, count))
}

/// Encode a run of 2^k segments from its (prefix, offset) pairs sorted by (prefix, offset).
fn write_run(out: &mut impl Write, k: u32, pairs: impl Iterator<Item = (u32, u64)>, header: &mut Vec<u32>) -> std::io::Result<()> {
    let b = bucket_bits(k);
    let low_bits = 32 - b;
    let mut counts = vec![0u32; (1usize << b) + 1];
    for (p, off) in pairs {
        counts[(p >> low_bits) as usize + 1] += 1;
        let v = (((p as u64) & ((1u64 << low_bits) - 1)) << (16 + k)) | off;
        out.write_all(&v.to_be_bytes()[3..])?;
    }
    for i in 1..counts.len() {
        counts[i] += counts[i - 1];
    }
    *header = counts;
    Ok(())
}

fn header_bytes(h: &[u32]) -> Vec<u8> {
    h.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// The run of one full segment (k = 0) from its records' prefixes (by offset), in memory.
pub(super) fn encode_run(prefixes: &[u32]) -> Vec<u8> {
    debug_assert_eq!(prefixes.len() as u64, SEGMENT);
    let mut order: Vec<(u32, u64)> = prefixes.iter().enumerate().map(|(i, &p)| (p, i as u64)).collect();
    order.sort_unstable();
    let mut body = Vec::with_capacity(order.len() * RUN_ENTRY);
    let mut header = Vec::new();
    write_run(&mut body, 0, order.into_iter(), &mut header).expect("in memory");
    let mut out = header_bytes(&header);
    out.extend_from_slice(&body);
    out
}

/// Reads a run's entries in order: (prefix, offset in the run).
struct RunReader<R: Read> {
    starts: Vec<u32>,
    r: R,
    k: u32,
    i: u64,
    bucket: usize,
}

impl<R: Read> RunReader<R> {
    fn new(mut r: R, k: u32) -> std::result::Result<Self, String> {
        let n = (1usize << bucket_bits(k)) + 1;
        let mut h = vec![0u8; n * 4];
        r.read_exact(&mut h).map_err(|e| format!("bucket directory: {e}"))?;
        let starts: Vec<u32> = h.chunks_exact(4).map(|c| u32::from_be_bytes(c.try_into().expect("4"))).collect();
        let total = SEGMENT << k;
        if starts[0] != 0 || starts[n - 1] as u64 != total || starts.windows(2).any(|w| w[0] > w[1]) {
            return Err("bucket directory is not a partition of the run".into());
        }
        Ok(RunReader { starts, r, k, i: 0, bucket: 0 })
    }

    fn next(&mut self) -> std::result::Result<Option<(u32, u64)>, String> {
        if self.i == (SEGMENT << self.k) {
            return Ok(None);
        }
        while self.starts[self.bucket + 1] as u64 <= self.i {
            self.bucket += 1;
        }
        let mut e = [0u8; 8];
        self.r.read_exact(&mut e[3..]).map_err(|e| format!("entries: {e}"))?;
        let v = u64::from_be_bytes(e);
        let low_bits = 32 - bucket_bits(self.k);
        let off = v & ((1u64 << (16 + self.k)) - 1);
        let p = ((self.bucket as u32) << low_bits) | (v >> (16 + self.k)) as u32;
        self.i += 1;
        Ok(Some((p, off)))
    }
}

/// One run of the index, open for look-ups.
#[derive(Clone)]
pub(super) struct Run {
    pub count: u64,
    pub file: Arc<File>,
}

impl Run {
    fn k(&self) -> u32 {
        self.count.trailing_zeros()
    }

    /// Offsets (ascending, relative to the run's first record) of the records whose pseudonym
    /// starts with `prefix`.
    fn lookup(&self, prefix: u32, path: &Path) -> Result<Vec<u64>> {
        let k = self.k();
        let low_bits = 32 - bucket_bits(k);
        let bucket = (prefix >> low_bits) as u64;
        let bad = || Error::Storage(format!("{}: malformed index run; run `renkei ledger verify`", path.display()));
        let mut se = [0u8; 8];
        self.file.read_exact_at(&mut se, bucket * 4).map_err(|e| io_err(path, e))?;
        let lo = u32::from_be_bytes(se[..4].try_into().expect("4")) as u64;
        let hi = u32::from_be_bytes(se[4..].try_into().expect("4")) as u64;
        if lo > hi || hi > SEGMENT << k {
            return Err(bad());
        }
        let hdr = ((1u64 << bucket_bits(k)) + 1) * 4;
        let mut b = vec![0u8; ((hi - lo) as usize) * RUN_ENTRY];
        self.file.read_exact_at(&mut b, hdr + lo * RUN_ENTRY as u64).map_err(|e| io_err(path, e))?;
        let low = (prefix as u64) & ((1u64 << low_bits) - 1);
        let entry = |e: &[u8]| u64::from_be_bytes([0, 0, 0, e[0], e[1], e[2], e[3], e[4]]);
        let entries: Vec<&[u8]> = b.chunks_exact(RUN_ENTRY).collect();
        let first = entries.partition_point(|e| entry(e) >> (16 + k) < low);
        Ok(entries[first..].iter().map(|e| entry(e)).take_while(|v| v >> (16 + k) == low).map(|v| v & ((1u64 << (16 + k)) - 1)).collect())
    }
}

/// The runs (by first segment), shared with the merging thread.
pub(super) struct IndexShared {
    dir: PathBuf,
    runs: Mutex<BTreeMap<u64, Run>>,
    cv: Condvar,
    stop: std::sync::atomic::AtomicBool,
}

/// The background merger: started with the store, stopped (and joined) when it is dropped.
pub(super) struct Merger {
    pub shared: Arc<IndexShared>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Merger {
    pub(super) fn start(dir: &Path) -> Merger {
        let shared = Arc::new(IndexShared {
            dir: dir.to_path_buf(),
            runs: Mutex::new(BTreeMap::new()),
            cv: Condvar::new(),
            stop: std::sync::atomic::AtomicBool::new(false),
        });
        let s = shared.clone();
        let handle = std::thread::Builder::new().name("ledger-index-merge".into()).spawn(move || merge_loop(&s)).ok();
        Merger { shared, handle }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Run>> {
        self.shared.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The runs, newest first.
    pub(super) fn snapshot(&self) -> Vec<(u64, Run)> {
        self.lock().iter().rev().map(|(&f, r)| (f, r.clone())).collect()
    }

    pub(super) fn add(&self, first: u64, run: Run) {
        self.lock().insert(first, run);
        self.shared.cv.notify_all();
    }

    /// Whether a run covers full segment `k`.
    pub(super) fn covers(&self, k: u64) -> bool {
        self.lock().range(..=k).next_back().is_some_and(|(&f, r)| k < f + r.count)
    }

    pub(super) fn clear(&self) {
        self.lock().clear();
    }

    /// Wait until no two runs can be merged (tests, benches).
    pub(super) fn settle(&self) {
        let mut g = self.lock();
        while mergeable(&g).is_some() && self.handle.is_some() && !self.shared.stop.load(std::sync::atomic::Ordering::SeqCst) {
            g = self.shared.cv.wait_timeout(g, std::time::Duration::from_millis(20)).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

impl Drop for Merger {
    fn drop(&mut self) {
        self.shared.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.shared.cv.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Two adjacent runs of 2^k segments, the first aligned to 2^(k+1).
fn mergeable(runs: &BTreeMap<u64, Run>) -> Option<(u64, Run, Run)> {
    let v: Vec<(&u64, &Run)> = runs.iter().collect();
    v.windows(2).find_map(|w| {
        let ((&a, ra), (&b, rb)) = (w[0], w[1]);
        (ra.count == rb.count && a % (2 * ra.count) == 0 && a + ra.count == b && ra.k() < MAX_RUN_LOG)
            .then(|| (a, ra.clone(), rb.clone()))
    })
}

fn merge_loop(s: &IndexShared) {
    use std::sync::atomic::Ordering;
    loop {
        let job = {
            let mut g = s.runs.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if s.stop.load(Ordering::SeqCst) {
                    return;
                }
                if let Some(j) = mergeable(&g) {
                    break j;
                }
                g = s.cv.wait(g).unwrap_or_else(|p| p.into_inner());
            }
        };
        let (first, left, right) = job;
        let count = left.count * 2;
        let rel = run_path(first, count);
        let run_dir = s.dir.join("index/run");
        let tmp = run_dir.join(format!(".{first}-{count}.tmp"));
        // Renamed into place and registered under the lock, so `trim_runs` (which holds it)
        // never sees a merged run that is not registered yet.
        let merged = merge_files(&left, &right, &tmp).and_then(|_| {
            let mut g = s.runs.lock().unwrap_or_else(|p| p.into_inner());
            let same = |g: &BTreeMap<u64, Run>, f0: u64, r: &Run| g.get(&f0).is_some_and(|x| Arc::ptr_eq(&x.file, &r.file));
            if !(same(&g, first, &left) && same(&g, first + left.count, &right)) {
                let _ = fs::remove_file(&tmp);
                return Ok(false);
            }
            fs::rename(&tmp, s.dir.join(&rel)).map_err(|e| e.to_string())?;
            let f = File::open(s.dir.join(&rel)).map_err(|e| e.to_string())?;
            g.remove(&(first + left.count));
            g.insert(first, Run { count, file: Arc::new(f) });
            Ok(true)
        });
        match merged {
            Ok(replaced) => {
                if replaced {
                    let _ = fs::remove_file(s.dir.join(run_path(first, left.count)));
                    let _ = fs::remove_file(s.dir.join(run_path(first + left.count, right.count)));
                }
                s.cv.notify_all();
            }
            Err(_) => {
                // Runs are derived data: a merge that fails leaves the smaller runs in use; it is
                // tried again when the runs change.
                let _ = fs::remove_file(&tmp);
                let g = s.runs.lock().unwrap_or_else(|p| p.into_inner());
                let _ = s.cv.wait_timeout(g, std::time::Duration::from_secs(1));
            }
        }
    }
}

/// Merge two runs of 2^k segments into one of 2^(k+1) at `tmp` (written, fsynced).
fn merge_files(left: &Run, right: &Run, tmp: &Path) -> std::result::Result<(), String> {
    let k = left.k();
    let reader = |r: &Run| RunReader::new(BufReader::with_capacity(1 << 20, PosReader { file: r.file.clone(), pos: 0 }), k);
    let mut a = reader(left)?;
    let mut b = reader(right)?;
    let shift = SEGMENT << k;
    let f = File::create(tmp).map_err(|e| e.to_string())?;
    let hdr_len = ((1u64 << bucket_bits(k + 1)) + 1) * 4;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    w.seek(SeekFrom::Start(hdr_len)).map_err(|e| e.to_string())?;
    let mut x = a.next()?;
    let mut y = b.next()?.map(|(p, o)| (p, o + shift));
    let mut err: Option<String> = None;
    let pairs = std::iter::from_fn(|| {
        let take_a = match (x, y) {
            (Some(l), Some(r)) => l <= r,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        let out = if take_a { x } else { y };
        let next = if take_a { a.next() } else { b.next().map(|o| o.map(|(p, o)| (p, o + shift))) };
        match next {
            Ok(n) => {
                if take_a {
                    x = n
                } else {
                    y = n
                }
            }
            Err(e) => {
                err = Some(e);
                return None;
            }
        }
        out
    });
    let mut header = Vec::new();
    write_run(&mut w, k + 1, pairs, &mut header).map_err(|e| e.to_string())?;
    if let Some(e) = err {
        return Err(e);
    }
    let mut f = w.into_inner().map_err(|e| e.to_string())?;
    f.seek(SeekFrom::Start(0)).and_then(|_| f.write_all(&header_bytes(&header))).and_then(|_| f.sync_all()).map_err(|e| e.to_string())
}

/// Sequential reads of a shared file by `pread` (its descriptor's offset is never moved).
struct PosReader {
    file: Arc<File>,
    pos: u64,
}

impl Read for PosReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// The pseudonym prefixes of full segment `k` from its openings file.
pub(super) fn segment_prefixes(dir: &Path, k: u64) -> Result<Vec<u32>> {
    let rel = open_path(k);
    let b = read_opt(&dir.join(&rel))?.ok_or_else(|| Error::from(damage(&rel, Some(k * SEGMENT), "openings file is missing")))?;
    if b.len() != SEGMENT as usize * OPENING_LEN {
        return Err(damage(&rel, None, format!("{} bytes, a full segment's openings are {}", b.len(), SEGMENT as usize * OPENING_LEN)).into());
    }
    Ok(b.chunks_exact(OPENING_LEN).map(prefix_of_opening).collect())
}

/// The run files of `dir` that cover full segments from 0 (largest first at each position) up
/// to `cur`, and beyond it while merged runs (always written durably, from committed segments
/// only) continue; the segments `0..cur` no run covers; every other run file, to remove.
/// (kept runs as (first, segments), uncovered segments, files to remove).
pub(super) type Cover = (Vec<(u64, u64)>, Vec<u64>, Vec<PathBuf>);

pub(super) fn covering_runs(dir: &Path, cur: u64) -> std::io::Result<Cover> {
    let run_dir = dir.join("index/run");
    let mut found: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut remove = Vec::new();
    for e in fs::read_dir(&run_dir)? {
        let e = e?;
        match e.file_name().to_str().and_then(parse_run_name) {
            Some((first, count)) if first + count <= cur || count > 1 => found.entry(first).or_default().push(count),
            _ => remove.push(e.path()),
        }
    }
    let mut keep = Vec::new();
    let mut missing = Vec::new();
    let mut at = 0;
    loop {
        if at >= cur {
            // Beyond the durable segments only a merged run continues the cover.
            match found.get(&at).and_then(|c| c.iter().copied().filter(|&c| c > 1).max()) {
                Some(c) => {
                    keep.push((at, c));
                    at += c;
                    continue;
                }
                None => break,
            }
        }
        match found.get(&at).and_then(|c| c.iter().max()) {
            Some(&c) => {
                keep.push((at, c));
                at += c;
            }
            None => {
                missing.push(at);
                at += 1;
            }
        }
    }
    for (first, counts) in &found {
        for c in counts {
            if !keep.contains(&(*first, *c)) {
                remove.push(run_dir.join(format!("{first}-{c}")));
            }
        }
    }
    Ok((keep, missing, remove))
}

impl Store {
    /// The index runs of full segments `0..cur`: the largest present runs are kept, others
    /// removed (superseded by a merge, or beyond the log), missing ones rebuilt from the
    /// openings (fully retired segments need none). Starts the merger on them.
    pub(super) fn load_runs(&mut self, cur: u64) -> Result<()> {
        let run_dir = self.dir.join("index/run");
        // Nothing is removed before the replay has re-derived what it covers (a reader may be
        // verifying meanwhile): superseded and torn run files go in `trim_runs`.
        let (keep, missing, _) = covering_runs(&self.dir, cur).map_err(|e| io_err(&run_dir, e))?;
        self.merger.clear();
        for k in missing {
            if (k + 1) * SEGMENT <= self.min_index {
                continue;
            }
            let run = encode_run(&segment_prefixes(&self.dir, k)?);
            durable::write_atomic(&run_dir, &format!("{k}-1"), &run, 0o600)?;
            self.register_run(k, 1)?;
        }
        for (first, count) in keep {
            self.register_run(first, count)?;
        }
        Ok(())
    }

    /// After the replay: drop runs that reach beyond the full segments (a replay that stopped
    /// short) and remove run files the covering set does not use (superseded by a merge, torn).
    pub(super) fn trim_runs(&self) -> Result<()> {
        let cur = self.size / SEGMENT;
        for (first, run) in self.merger.snapshot() {
            if first + run.count > cur {
                self.merger.lock().remove(&first);
            }
        }
        let g = self.merger.lock();
        let registered: Vec<(u64, u64)> = g.iter().map(|(f, r)| (*f, r.count)).collect();
        let run_dir = self.dir.join("index/run");
        for e in fs::read_dir(&run_dir).map_err(|e| io_err(&run_dir, e))?.flatten() {
            let name = e.file_name();
            let used = name.to_str().and_then(parse_run_name).is_some_and(|r| registered.contains(&r));
            if !used && !name.to_str().is_some_and(|n| n.ends_with(".tmp")) {
                remove_opt(&e.path())?;
            }
        }
        Ok(())
    }

    pub(super) fn register_run(&self, first: u64, count: u64) -> Result<()> {
        let p = self.dir.join(run_path(first, count));
        let f = File::open(&p).map_err(|e| io_err(&p, e))?;
        self.merger.add(first, Run { count, file: Arc::new(f) });
        Ok(())
    }

    /// Wait for the background merges to finish (tests, benches).
    #[doc(hidden)]
    pub fn settle_index(&self) {
        self.merger.settle();
    }

    /// The number of index runs (tests, benches).
    #[doc(hidden)]
    pub fn index_runs(&self) -> usize {
        self.merger.snapshot().len()
    }

    /// A person's records, newest first, below `before` (exclusive), at most `limit`, each with
    /// its opening and an inclusion proof against the current checkpoint. 不開示 records are held
    /// back unless their disclose-after date is on or before `today` (days since 1970-01-01).
    pub fn records_for_pseudonym(&self, pseudonym: &[u8; 32], before: Option<u64>, limit: usize, today: u32) -> Result<PersonPage> {
        let prefix = u32::from_be_bytes(pseudonym[..4].try_into().expect("4"));
        let start = before.unwrap_or(self.size).min(self.size);
        let cur = self.size / SEGMENT;
        let mut records = Vec::new();
        let mut next_before = None;
        // Candidate sequence numbers, newest first: the in-memory tail, then each run.
        let tail: Vec<u64> =
            (0..self.tail_index.len() as u64).rev().filter(|&o| self.tail_index[o as usize] == prefix).map(|o| cur * SEGMENT + o).collect();
        let runs = self.merger.snapshot();
        let mut sources = std::iter::once(Ok::<Vec<u64>, Error>(tail)).chain(runs.iter().map(|(first, run)| {
            if (first + run.count) * SEGMENT <= self.min_index || first * SEGMENT >= start {
                return Ok(Vec::new());
            }
            let offs = run.lookup(prefix, &self.dir.join(run_path(*first, run.count)))?;
            Ok(offs.into_iter().rev().map(|o| first * SEGMENT + o).collect())
        }));
        'sources: for seqs in sources.by_ref() {
            for seq in seqs? {
                if seq >= start {
                    continue;
                }
                if seq < self.min_index {
                    break 'sources;
                }
                let Some(o) = self.openings(seq, seq + 1)?.pop().flatten() else { continue };
                if o[record::SALT_LEN..] != pseudonym[..] {
                    continue;
                }
                let Some(leaf) = self.entry(seq)? else { continue };
                let r = record::open_leaf(&leaf, &o).map_err(|e| Error::from(damage(open_path(seq / SEGMENT), Some(seq), e.to_string())))?;
                if r.withheld && r.disclose_after.is_none_or(|d| d > today) {
                    continue;
                }
                if records.len() == limit {
                    next_before = Some(seq + 1);
                    break 'sources;
                }
                let proof = self.inclusion_proof(seq, self.size)?;
                records.push((seq, leaf, o, proof));
            }
        }
        Ok(PersonPage { records, next_before, checkpoint: self.checkpoint_note.clone() })
    }
}

/// A multiset hash of (prefix, sequence number) pairs: a damaged entry changes it.
fn pair_hash(p: u32, seq: u64) -> u128 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(p.to_be_bytes());
    h.update(seq.to_be_bytes());
    u128::from_be_bytes(h.finalize()[..16].try_into().expect("16"))
}

/// The index as `verify` sees it: every run covering the full segments must be well formed,
/// sorted, and hold exactly the pairs (prefix, sequence number) of its records' openings
/// (records retired from the openings are taken as the run states them). Runs beyond the
/// covering set are ignored (superseded by a merge; the next open removes them).
pub(super) struct IndexCheck {
    runs: Vec<(u64, u64)>,
    /// Per run: the multiset hash of the openings' pairs so far, and whether any was retired.
    acc: BTreeMap<u64, (u128, bool)>,
}

impl IndexCheck {
    pub(super) fn new(dir: &Path, cur: u64) -> std::result::Result<IndexCheck, Damage> {
        let (mut runs, _, _) = covering_runs(dir, cur).map_err(|e| damage("index/run", None, e.to_string()))?;
        runs.retain(|&(f, c)| f + c <= cur);
        Ok(IndexCheck { runs, acc: BTreeMap::new() })
    }

    /// Full segments no run covers.
    pub(super) fn uncovered(&self, cur: u64) -> Vec<u64> {
        (0..cur).filter(|&s| !self.runs.iter().any(|&(f, c)| f <= s && s < f + c)).collect()
    }

    /// Record `seq`'s prefix from its opening (`None`: retired).
    pub(super) fn add(&mut self, seq: u64, prefix: Option<u32>) {
        let seg = seq / SEGMENT;
        if let Some(&(f, _)) = self.runs.iter().find(|&&(f, c)| f <= seg && seg < f + c) {
            let e = self.acc.entry(f).or_insert((0, false));
            match prefix {
                Some(p) => e.0 = e.0.wrapping_add(pair_hash(p, seq)),
                None => e.1 = true,
            }
        }
    }

    /// Check every run against what was added; the first damaged run, if any.
    pub(super) fn finish(&self, dir: &Path, min_index: u64) -> std::result::Result<Option<Damage>, Damage> {
        for &(first, count) in &self.runs {
            let rel = run_path(first, count);
            let (want, retired) = self.acc.get(&first).copied().unwrap_or((0, true));
            let f = File::open(dir.join(&rel)).map_err(|e| damage(&rel, None, e.to_string()))?;
            let mut r = match RunReader::new(BufReader::with_capacity(1 << 20, f), count.trailing_zeros()) {
                Ok(r) => r,
                Err(w) => return Ok(Some(damage(&rel, None, w))),
            };
            let mut got = 0u128;
            let mut last: Option<(u32, u64)> = None;
            loop {
                match r.next() {
                    Ok(Some((p, off))) => {
                        if last.is_some_and(|l| l >= (p, off)) {
                            return Ok(Some(damage(&rel, None, "entries are not sorted or repeat a record")));
                        }
                        last = Some((p, off));
                        let seq = first * SEGMENT + off;
                        if !retired || seq >= min_index {
                            got = got.wrapping_add(pair_hash(p, seq));
                        }
                    }
                    Ok(None) => break,
                    Err(w) => return Ok(Some(damage(&rel, None, w))),
                }
            }
            let mut trailing = [0u8; 1];
            if r.r.read(&mut trailing).map_err(|e| damage(&rel, None, e.to_string()))? != 0 {
                return Ok(Some(damage(&rel, None, "bytes after the last entry")));
            }
            let fully_retired = (first + count) * SEGMENT <= min_index;
            if !fully_retired && got != want {
                return Ok(Some(damage(&rel, None, "index run differs from the records' pseudonyms")));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::rec;
    use super::*;
    use crate::ledger::record::Record;

    /// Persons whose pseudonyms share all 4 prefix bytes, only the top byte, or nothing.
    fn person(p: u64) -> [u8; 32] {
        let mut x = [0u8; 32];
        x[0] = (p % 3) as u8;
        x[1..4].copy_from_slice(&[(p % 5) as u8, 0, 0]);
        x[31] = p as u8;
        x
    }

    fn rec_of(i: u64, p: u64) -> Vec<u8> {
        let mut r = Record::decode(&rec(i)).unwrap();
        r.pseudonym = person(p);
        r.withheld = i % 11 == 0;
        r.disclose_after = (i % 22 == 0).then_some(100);
        r.encode().unwrap()
    }

    #[test]
    fn segment_runs_agree_with_a_plain_scan() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), "o", &[4; 32]).unwrap();
        let n = 2 * SEGMENT + 700;
        let owner = |i: u64| (i * 7919 + i / 13) % 17;
        for chunk in [SEGMENT - 5, 10, SEGMENT + 695] {
            let recs: Vec<Vec<u8>> = (s.size()..s.size() + chunk).map(|i| rec_of(i, owner(i))).collect();
            let refs: Vec<&[u8]> = recs.iter().map(|r| &r[..]).collect();
            s.append(&refs).unwrap();
        }
        assert_eq!(s.size(), n);
        // The runs of segments 0 and 1 are merged in the background into one.
        s.settle_index();
        assert_eq!(s.index_runs(), 1);
        assert!(dir.path().join("index/run/0-2").exists() && !dir.path().join("index/run/1-1").exists());
        let check = |s: &Store| {
            for p in [0u64, 3, 15, 16] {
                for today in [0u32, 200] {
                    let want: Vec<u64> = (0..n).rev()
                        .filter(|&i| owner(i) == p && !(i % 11 == 0 && (i % 22 != 0 || today < 100))).collect();
                    let mut got = vec![];
                    let mut before = None;
                    loop {
                        let page = s.records_for_pseudonym(&person(p), before, 997, today).unwrap();
                        got.extend(page.records.iter().map(|r| r.0));
                        match page.next_before {
                            Some(b) => before = Some(b),
                            None => break,
                        }
                    }
                    assert_eq!(got, want, "person {p} today {today}");
                }
            }
        };
        check(&s);
        s.verify().unwrap();
        drop(s);
        // Torn index files beyond the checkpoint are removed; a missing run is rebuilt.
        fs::write(dir.path().join("index/run/2-1"), b"torn").unwrap();
        fs::write(dir.path().join("index/run/0-1"), b"superseded by 0-2").unwrap();
        fs::write(dir.path().join("open/3"), b"torn").unwrap();
        let s = Store::open(dir.path(), "o", &[4; 32]).unwrap();
        for gone in ["index/run/2-1", "index/run/0-1", "open/3"] {
            assert!(!dir.path().join(gone).exists(), "{gone}");
        }
        check(&s);
        s.verify().unwrap();
        drop(s);
        fs::remove_file(dir.path().join("index/run/0-2")).unwrap();
        let s = Store::open(dir.path(), "o", &[4; 32]).unwrap();
        s.settle_index();
        assert!(dir.path().join("index/run/0-2").exists(), "rebuilt and merged again");
        check(&s);
        s.verify().unwrap();
        // Damage in a run or an openings file is named.
        for (rel, at) in [("index/run/0-2", 3usize), ("index/run/0-2", 513 * 4 + 17), ("index/run/0-2", 513 * 4 + 5 * 70_000 + 3), ("open/2", 40), ("open/0", 7)] {
            let p = dir.path().join(rel);
            let good = fs::read(&p).unwrap();
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            fs::write(&p, &bad).unwrap();
            assert_eq!(s.verify().unwrap_err().path, rel);
            fs::write(&p, &good).unwrap();
        }
        s.verify().unwrap();
    }

    #[test]
    fn runs_merge_like_a_binary_counter() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), "o", &[4; 32]).unwrap();
        // 7 full segments: runs of 4, 2 and 1 segments (popcount 7 = 3), then a tail.
        let owner = |i: u64| i % 1001;
        for _ in 0..7 {
            let recs: Vec<Vec<u8>> = (s.size()..s.size() + SEGMENT).map(|i| rec_of(i, owner(i))).collect();
            let refs: Vec<&[u8]> = recs.iter().map(|r| &r[..]).collect();
            s.append(&refs).unwrap();
        }
        let recs: Vec<Vec<u8>> = (s.size()..s.size() + 100).map(|i| rec_of(i, owner(i))).collect();
        let refs: Vec<&[u8]> = recs.iter().map(|r| &r[..]).collect();
        s.append(&refs).unwrap();
        s.settle_index();
        let mut names: Vec<String> = fs::read_dir(dir.path().join("index/run")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["0-4", "4-2", "6-1"]);
        let n = s.size();
        for p in [5u64, 1000] {
            let want: Vec<u64> = (0..n).rev().filter(|&i| owner(i) == p && !(i % 11 == 0 && i % 22 != 0)).collect();
            let page = s.records_for_pseudonym(&person(p), None, 10_000, 200).unwrap();
            assert_eq!(page.records.iter().map(|r| r.0).collect::<Vec<_>>(), want);
        }
        assert!(s.records_for_pseudonym(&[0xee; 32], None, 10, 0).unwrap().records.is_empty());
        s.verify().unwrap();
    }
}
