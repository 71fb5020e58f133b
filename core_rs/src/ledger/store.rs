//! The durable ledger files: C2SP tlog-tiles layout under one directory.
//!
//! ```text
//! checkpoint                    latest signed checkpoint (the commit point)
//! tile/<L>/<N>[.p/<W>]          hash tiles
//! tile/entries/<N>[.p/<W>]      entry bundles (the encoded records)
//! index/run/<k>                 per full segment k of 65,536 records, its sorted pseudonym run
//! index/tail/<k>                the current segment k: per record, its pseudonym's first 4 bytes
//! retention                     minimum index: records below it have no body any more
//! checkpoints                   8-byte magic, then per stored checkpoint (every one at least
//!                               256 records after the previous stored one): size u64 BE,
//!                               root 32 B, Ed25519 signature 64 B
//! ```
//!
//! Group commit: a batch writes its new full bundles and tiles, the new partial ones and the
//! index tail, makes them all durable with one `syncfs` (Linux; per-file `fsync` elsewhere),
//! and only then publishes the checkpoint atomically (write tmp, fsync, rename, fsync dir).
//! Old partial files are deleted afterwards. On open, anything beyond the checkpoint is a torn
//! tail and is removed; nothing the checkpoint covers is ever touched.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::merkle::{self, leaf_hash, node_hash, Hash, NodeSource};
use super::note::{last_signature, Checkpoint, NoteSigner, NoteVerifier};
use super::record::{self, Record};
use super::tiles::{self, bundle_path, level_tiles, tile_path, TILE_WIDTH};
use crate::durable::{self, fsync_dir, DirLock};
use crate::error::{Error, Result};

const CHECKPOINT: &str = "checkpoint";
const CHECKPOINT_TMP: &str = "checkpoint.tmp";
/// The flat index of the format before segment runs; migrated on open.
const LEGACY_INDEX: &str = "index/pseudonym";
/// Records per index segment; offsets within one fit a u16.
pub const SEGMENT: u64 = 1 << 16;
/// A run: 257 u32 BE bucket starts by the prefix's top byte, then per record (prefix's low 24
/// bits, offset u16), sorted by (prefix, offset).
const RUN_HEADER: usize = 257 * 4;
const RUN_ENTRY: usize = 5;
const RUN_LEN: usize = RUN_HEADER + SEGMENT as usize * RUN_ENTRY;

fn run_path(k: u64) -> String {
    format!("index/run/{k}")
}

fn tail_path(k: u64) -> String {
    format!("index/tail/{k}")
}

/// The sorted run of one full segment from its records' pseudonym prefixes (by offset).
fn encode_run(prefixes: &[u32]) -> Vec<u8> {
    debug_assert_eq!(prefixes.len() as u64, SEGMENT);
    let mut order: Vec<(u32, u16)> = prefixes.iter().enumerate().map(|(i, &p)| (p, i as u16)).collect();
    order.sort_unstable();
    let mut starts = [0u32; 257];
    for &(p, _) in &order {
        starts[(p >> 24) as usize + 1] += 1;
    }
    for b in 1..257 {
        starts[b] += starts[b - 1];
    }
    let mut out = Vec::with_capacity(RUN_LEN);
    for v in starts {
        out.extend_from_slice(&v.to_be_bytes());
    }
    for (p, off) in order {
        out.extend_from_slice(&p.to_be_bytes()[1..]);
        out.extend_from_slice(&off.to_be_bytes());
    }
    out
}

/// Prefixes by offset as a run file states them (for records whose bodies were retired), or
/// why the file is not a well-formed run.
fn decode_run(b: &[u8]) -> std::result::Result<Vec<u32>, String> {
    if b.len() != RUN_LEN {
        return Err(format!("{} bytes, expected {RUN_LEN}", b.len()));
    }
    let starts: Vec<usize> = b[..RUN_HEADER].chunks_exact(4).map(|c| u32::from_be_bytes(c.try_into().expect("4")) as usize).collect();
    if starts[0] != 0 || starts[256] != SEGMENT as usize || starts.windows(2).any(|w| w[0] > w[1]) {
        return Err("bucket directory is not a partition of the segment".into());
    }
    let mut out = vec![None; SEGMENT as usize];
    for top in 0..256 {
        for i in starts[top]..starts[top + 1] {
            let e = &b[RUN_HEADER + i * RUN_ENTRY..RUN_HEADER + (i + 1) * RUN_ENTRY];
            let p = (top as u32) << 24 | u32::from_be_bytes([0, e[0], e[1], e[2]]);
            let off = u16::from_be_bytes([e[3], e[4]]) as usize;
            if out[off].replace(p).is_some() {
                return Err(format!("offset {off} appears twice"));
            }
        }
    }
    Ok(out.into_iter().map(|p| p.expect("a partition of SEGMENT distinct offsets covers all")).collect())
}

const RETENTION: &str = "retention";
/// Left by versions that wrote `retention` under this fixed temporary name; removed on open.
const RETENTION_TMP: &str = "retention.tmp";
/// The ledger's files are public data (tlog-tiles readers fetch them); the directory is 0700.
const PUBLIC_MODE: u32 = 0o644;
const HISTORY: &str = "checkpoints";
/// Start of the binary history; the previous format (length-prefixed notes) never starts so.
const HISTORY_MAGIC: &[u8; 8] = b"rkcph01\n";
/// One stored checkpoint: size u64 BE ‖ root ‖ signature; the note text is rebuilt from the
/// origin (which is also the key name).
const HISTORY_ENTRY: usize = 8 + 32 + 64;
/// A checkpoint is stored when at least this many records came since the last stored one, so
/// the history costs at most 104 / 256 = 0.41 B per record however small the group commits.
pub const HISTORY_SPACING: u64 = 256;
const CACHE_TILES: usize = 4096;

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Storage(format!("{}: {e}", path.display()))
}

fn read_opt(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, e)),
    }
}

fn remove_opt(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path, e)),
    }
}

fn hashes_of(data: &[u8]) -> Vec<Hash> {
    data.chunks_exact(32).map(|c| c.try_into().expect("32")).collect()
}

/// MTH of a power-of-two run of hashes.
fn subtree(hashes: &[Hash]) -> Hash {
    let mut level: Vec<Hash> = hashes.to_vec();
    while level.len() > 1 {
        level = level.chunks_exact(2).map(|p| node_hash(&p[0], &p[1])).collect();
    }
    level[0]
}

/// A tile with all 8 of its internal levels (256, 128, …, 1 hashes).
struct Expanded {
    levels: Vec<Vec<Hash>>,
}

impl Expanded {
    fn new(hashes: Vec<Hash>) -> Self {
        let mut levels = vec![hashes];
        while levels.len() < 8 && levels.last().expect("one").len() > 1 {
            let l = levels.last().expect("one");
            let next = l.chunks_exact(2).map(|p| node_hash(&p[0], &p[1])).collect();
            levels.push(next);
        }
        Expanded { levels }
    }
}

/// Why `verify` failed: the first damaged file, and the record when one is to blame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub path: String,
    pub record: Option<u64>,
    pub what: String,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.record {
            Some(r) => write!(f, "record {r} in {}: {}", self.path, self.what),
            None => write!(f, "{}: {}", self.path, self.what),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub size: u64,
    pub records_checked: u64,
    pub records_retained_away: u64,
    pub tiles_checked: u64,
    pub checkpoints_checked: u64,
}

/// One page of a person's records: (seq, encoded record, inclusion proof).
pub struct PersonPage {
    pub records: Vec<(u64, Vec<u8>, Vec<Hash>)>,
    pub next_before: Option<u64>,
    pub checkpoint: String,
}

pub struct Store {
    dir: PathBuf,
    signer: NoteSigner,
    verifier: NoteVerifier,
    size: u64,
    /// Per tile level, the hashes of the partial tile on the right edge (fewer than 256).
    tails: Vec<Vec<Hash>>,
    /// The partial entry bundle on the right edge, length-prefixed entries.
    tail_bundle: Vec<u8>,
    checkpoint: Checkpoint,
    checkpoint_note: String,
    /// Pseudonym prefixes of the current (not yet full) index segment.
    tail_index: Vec<u32>,
    /// `index/tail/<size / SEGMENT>`, append-only.
    index_file: File,
    /// The checkpoint history file (append-only) and the size of each stored checkpoint
    /// (entry i at `HISTORY_MAGIC.len() + i * HISTORY_ENTRY`).
    history_file: File,
    history: Vec<u64>,
    min_index: u64,
    cache: Mutex<HashMap<(u32, u64), Arc<Expanded>>>,
    /// The right-edge partial tiles, expanded; rebuilt lazily after each append.
    tail_cache: Mutex<Option<Arc<Vec<Expanded>>>>,
    /// Held (flock) while open: one writer per ledger directory.
    _lock: DirLock,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({}, size {})", self.dir.display(), self.size)
    }
}

fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

impl Store {
    /// Open (creating if needed) the ledger in `dir`, signing checkpoints as `origin` with the
    /// Ed25519 key derived from `seed`. Recovers a torn tail left by a crash.
    pub fn open(dir: impl AsRef<Path>, origin: &str, seed: &[u8]) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        durable::create_dir_private(&dir)?;
        for sub in ["index/run", "index/tail"] {
            fs::create_dir_all(dir.join(sub)).map_err(|e| io_err(&dir, e))?;
        }
        let signer = NoteSigner::from_seed(origin, seed)?;
        let verifier = signer.verifier();
        let lock = DirLock::acquire(&dir)?;
        durable::remove_temps(&dir)?;
        remove_opt(&dir.join(CHECKPOINT_TMP))?;
        remove_opt(&dir.join(RETENTION_TMP))?;
        let existing = read_opt(&dir.join(CHECKPOINT))?;
        let fresh = existing.is_none();
        let (checkpoint, checkpoint_note) = match existing {
            Some(note) => {
                let cp = Checkpoint::open_signed(&note, &verifier, origin)
                    .map_err(|e| Error::Storage(format!("{}: {e}", dir.join(CHECKPOINT).display())))?;
                (cp, String::from_utf8(note).expect("opened notes are UTF-8"))
            }
            None => {
                let cp = Checkpoint { origin: origin.to_string(), size: 0, root: merkle::empty_root(), extensions: vec![] };
                let note = signer.sign(&cp.body())?;
                (cp, note)
            }
        };
        let index_path = dir.join(tail_path(checkpoint.size / SEGMENT));
        let index_file = OpenOptions::new().create(true).read(true).append(true).open(&index_path)
            .map_err(|e| io_err(&index_path, e))?;
        let history_path = dir.join(HISTORY);
        let history_file = OpenOptions::new().create(true).read(true).append(true).open(&history_path)
            .map_err(|e| io_err(&history_path, e))?;
        let min_index = match read_opt(&dir.join(RETENTION))? {
            Some(b) => std::str::from_utf8(&b).ok().and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| Error::Storage(format!("{}: not a record number", dir.join(RETENTION).display())))?,
            None => 0,
        };
        let mut s = Store {
            dir,
            signer,
            verifier,
            size: checkpoint.size,
            tails: Vec::new(),
            tail_bundle: Vec::new(),
            checkpoint,
            checkpoint_note,
            tail_index: Vec::new(),
            index_file,
            history_file,
            history: Vec::new(),
            min_index,
            cache: Mutex::new(HashMap::new()),
            tail_cache: Mutex::new(None),
            _lock: lock,
        };
        s.recover()?;
        if fresh {
            // A new log publishes its empty tree, so every ledger directory has a checkpoint.
            durable::write_atomic(&s.dir, CHECKPOINT, s.checkpoint_note.as_bytes(), PUBLIC_MODE)?;
        }
        Ok(s)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }
    pub fn checkpoint_note(&self) -> &str {
        &self.checkpoint_note
    }
    pub fn verifier(&self) -> &NoteVerifier {
        &self.verifier
    }
    pub fn min_index(&self) -> u64 {
        self.min_index
    }

    /// A stored entry is made durable before its checkpoint is renamed into place, so trailing
    /// entries beyond the checkpoint (validly signed: batches whose checkpoint never got
    /// published) and a partial entry are a torn tail and are cut. Anything else is left for
    /// `verify` to name.
    fn recover_history(&mut self) -> Result<()> {
        let p = self.dir.join(HISTORY);
        let mut b = Vec::new();
        File::open(&p).and_then(|mut f| f.read_to_end(&mut b)).map_err(|e| io_err(&p, e))?;
        if b.len() < HISTORY_MAGIC.len() && HISTORY_MAGIC.starts_with(&b) {
            // New (or torn while being created).
            self.history_file.set_len(0).and_then(|_| self.history_file.write_all(HISTORY_MAGIC))
                .and_then(|_| self.history_file.sync_all()).map_err(|e| io_err(&p, e))?;
            b = HISTORY_MAGIC.to_vec();
        }
        check_history_magic(&b).map_err(Error::from)?;
        let mut n = (b.len() - HISTORY_MAGIC.len()) / HISTORY_ENTRY;
        while n > 0 {
            let e = history_at(&b, n - 1);
            if entry_size(e) <= self.checkpoint.size || self.open_entry(e).is_err() {
                break;
            }
            n -= 1;
        }
        let keep = HISTORY_MAGIC.len() + n * HISTORY_ENTRY;
        if keep < b.len() {
            self.history_file.set_len(keep as u64).and_then(|_| self.history_file.sync_all()).map_err(|e| io_err(&p, e))?;
        }
        // The in-memory size index for `checkpoint_at`: entries in order up to the first one
        // out of order (only damage stops it early).
        self.history.clear();
        for i in 0..n {
            let size = entry_size(history_at(&b, i));
            if self.history.last().is_some_and(|&s| s >= size) {
                break;
            }
            self.history.push(size);
        }
        Ok(())
    }

    fn open_entry(&self, e: &[u8]) -> Result<(Checkpoint, String)> {
        open_history_entry(e, &self.verifier)
    }

    fn read_entry(&self, i: usize) -> Result<String> {
        let p = self.dir.join(HISTORY);
        let mut f = File::open(&p).map_err(|e| io_err(&p, e))?;
        use std::io::{Seek, SeekFrom};
        let mut e = [0u8; HISTORY_ENTRY];
        let off = (HISTORY_MAGIC.len() + i * HISTORY_ENTRY) as u64;
        f.seek(SeekFrom::Start(off)).and_then(|_| f.read_exact(&mut e)).map_err(|e| io_err(&p, e))?;
        let (_, note) = self.open_entry(&e).map_err(|err| Error::from(damage(HISTORY, None, format!("entry at byte {off}: {err}"))))?;
        Ok(note)
    }

    /// The stored checkpoints (every one at least `HISTORY_SPACING` records after the
    /// previous stored one) plus the latest, as signed notes, oldest first.
    pub fn checkpoints(&self) -> Result<Vec<String>> {
        let mut out = (0..self.history.len()).map(|i| self.read_entry(i)).collect::<Result<Vec<_>>>()?;
        if self.history.last() != Some(&self.checkpoint.size) {
            out.push(self.checkpoint_note.clone());
        }
        Ok(out)
    }

    /// The checkpoint of tree size `size`, when it is stored or the latest.
    pub fn checkpoint_at(&self, size: u64) -> Result<String> {
        if size == self.checkpoint.size {
            return Ok(self.checkpoint_note.clone());
        }
        match self.history.binary_search(&size) {
            Ok(i) => self.read_entry(i),
            Err(_) => Err(Error::NotFound(format!("no checkpoint of tree size {size} is stored"))),
        }
    }

    /// Remove everything beyond the checkpoint, reload the right edge, check it against the
    /// checkpoint root.
    fn recover(&mut self) -> Result<()> {
        let n = self.size;
        for level in 0..8u32 {
            let (full, width) = level_tiles(n, level);
            self.remove_beyond(|i, w| tile_path(level, i, w), full, width)?;
        }
        let (full, width) = level_tiles(n, 0);
        self.remove_beyond(bundle_path, full, width)?;
        self.tails.clear();
        for level in 0..8u32 {
            let (full, width) = level_tiles(n, level);
            let hashes = if width == 0 {
                Vec::new()
            } else {
                let p = self.dir.join(tile_path(level, full, width));
                let b = read_opt(&p)?.ok_or_else(|| Error::Storage(format!("{}: missing", p.display())))?;
                if b.len() as u64 != width * 32 {
                    return Err(Error::Storage(format!("{}: wrong size", p.display())));
                }
                hashes_of(&b)
            };
            self.tails.push(hashes);
        }
        self.tail_bundle = if width == 0 {
            Vec::new()
        } else {
            let p = self.dir.join(bundle_path(full, width));
            read_opt(&p)?.ok_or_else(|| Error::Storage(format!("{}: missing", p.display())))?
        };
        if self.edge_root() != self.checkpoint.root {
            return Err(Error::Storage("the right-edge tiles do not match the checkpoint root; run `renkei ledger verify`".into()));
        }
        self.load_index()?;
        self.cache.lock().expect("cache lock").clear();
        *self.tail_cache.lock().expect("cache lock") = None;
        self.recover_history()
    }

    /// Pseudonym prefixes of records `start..end` from their bodies; retired bodies from the
    /// legacy flat index when there is one, else 0 (they are never served).
    fn prefixes(&self, start: u64, end: u64, legacy: Option<&[u8]>) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity((end - start) as usize);
        let mut seq = start;
        while seq < end {
            let stop = end.min(seq + 16 * TILE_WIDTH);
            for (k, e) in self.entries(seq, stop)?.into_iter().enumerate() {
                let at = (seq as usize + k) * 4;
                out.push(match e {
                    Some(e) => u32::from_be_bytes(record::pseudonym_of(&e)[..4].try_into().expect("4")),
                    None => legacy.and_then(|l| l.get(at..at + 4)).map(|c| u32::from_be_bytes(c.try_into().expect("4"))).unwrap_or(0),
                });
            }
            seq = stop;
        }
        Ok(out)
    }

    /// Delete files for tile indices ≥ `full` except the committed partial (`full`, `width`).
    fn remove_beyond(&self, path: impl Fn(u64, u64) -> String, full: u64, width: u64) -> Result<()> {
        if full > 0 {
            // Partials superseded by the last full tile, left when a crash beat the cleanup.
            if let Ok(rd) = fs::read_dir(self.dir.join(format!("{}.p", path(full - 1, TILE_WIDTH)))) {
                for e in rd.flatten() {
                    remove_opt(&e.path())?;
                }
            }
        }
        let mut i = full;
        loop {
            let full_p = self.dir.join(path(i, TILE_WIDTH));
            let pdir = self.dir.join(format!("{}.p", path(i, TILE_WIDTH)));
            let mut any = full_p.exists();
            remove_opt(&full_p)?;
            if let Ok(rd) = fs::read_dir(&pdir) {
                any = true;
                for e in rd.flatten() {
                    let keep = i == full && e.file_name().to_str() == Some(&width.to_string());
                    if !keep {
                        remove_opt(&e.path())?;
                    }
                }
            }
            if !any {
                return Ok(());
            }
            i += 1;
        }
    }

    /// The index is derived data: runs of full segments beyond the checkpoint and tails of
    /// other segments are a torn tail (removed), missing runs and the current tail's missing
    /// entries are rebuilt from the records, and a legacy flat index is migrated.
    fn load_index(&mut self) -> Result<()> {
        let cur = self.size / SEGMENT;
        let legacy = read_opt(&self.dir.join(LEGACY_INDEX))?;
        let run_dir = self.dir.join("index/run");
        let mut have = std::collections::HashSet::new();
        for e in fs::read_dir(&run_dir).map_err(|e| io_err(&run_dir, e))?.flatten() {
            match e.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) {
                Some(k) if k < cur => {
                    have.insert(k);
                }
                _ => remove_opt(&e.path())?,
            }
        }
        let mut wrote = false;
        for k in (0..cur).filter(|k| !have.contains(k)) {
            let run = encode_run(&self.prefixes(k * SEGMENT, (k + 1) * SEGMENT, legacy.as_deref())?);
            let p = self.dir.join(run_path(k));
            File::create(&p).and_then(|mut f| f.write_all(&run).and_then(|_| f.sync_all())).map_err(|e| io_err(&p, e))?;
            wrote = true;
        }
        if wrote {
            fsync_dir(&run_dir)?;
        }
        let tail_dir = self.dir.join("index/tail");
        for e in fs::read_dir(&tail_dir).map_err(|e| io_err(&tail_dir, e))?.flatten() {
            if e.file_name().to_str() != Some(&cur.to_string()) {
                remove_opt(&e.path())?;
            }
        }
        let p = self.dir.join(tail_path(cur));
        self.index_file = OpenOptions::new().create(true).read(true).append(true).open(&p).map_err(|e| io_err(&p, e))?;
        let mut b = Vec::new();
        File::open(&p).and_then(|mut f| f.read_to_end(&mut b)).map_err(|e| io_err(&p, e))?;
        let want = (self.size % SEGMENT) as usize * 4;
        if b.len() > want {
            self.index_file.set_len(want as u64).map_err(|e| io_err(&p, e))?;
            b.truncate(want);
        }
        self.tail_index = b.chunks_exact(4).map(|c| u32::from_be_bytes(c.try_into().expect("4"))).collect();
        let have_to = cur * SEGMENT + self.tail_index.len() as u64;
        if have_to < self.size {
            let add = self.prefixes(have_to, self.size, legacy.as_deref())?;
            let bytes: Vec<u8> = add.iter().flat_map(|p| p.to_be_bytes()).collect();
            self.index_file.write_all(&bytes).and_then(|_| self.index_file.sync_all()).map_err(|e| io_err(&p, e))?;
            self.tail_index.extend(add);
        }
        fsync_dir(&tail_dir)?;
        if legacy.is_some() {
            remove_opt(&self.dir.join(LEGACY_INDEX))?;
            fsync_dir(&self.dir.join("index"))?;
        }
        Ok(())
    }

    /// Offsets (ascending) of the records of full segment `k` whose pseudonym starts `prefix`.
    fn run_lookup(&self, k: u64, prefix: u32) -> Result<Vec<u64>> {
        use std::io::{Seek, SeekFrom};
        let p = self.dir.join(run_path(k));
        let bad = || Error::Storage(format!("{}: malformed index run; run `renkei ledger verify`", p.display()));
        let mut f = File::open(&p).map_err(|e| io_err(&p, e))?;
        let top = (prefix >> 24) as u64;
        let mut se = [0u8; 8];
        f.seek(SeekFrom::Start(top * 4)).and_then(|_| f.read_exact(&mut se)).map_err(|e| io_err(&p, e))?;
        let lo = u32::from_be_bytes(se[..4].try_into().expect("4")) as u64;
        let hi = u32::from_be_bytes(se[4..].try_into().expect("4")) as u64;
        if lo > hi || hi > SEGMENT {
            return Err(bad());
        }
        let mut b = vec![0u8; ((hi - lo) as usize) * RUN_ENTRY];
        f.seek(SeekFrom::Start(RUN_HEADER as u64 + lo * RUN_ENTRY as u64)).and_then(|_| f.read_exact(&mut b))
            .map_err(|e| io_err(&p, e))?;
        let low = prefix & 0x00ff_ffff;
        let entries: Vec<&[u8]> = b.chunks_exact(RUN_ENTRY).collect();
        let key = |e: &[u8]| u32::from_be_bytes([0, e[0], e[1], e[2]]);
        let first = entries.partition_point(|e| key(e) < low);
        Ok(entries[first..].iter().take_while(|e| key(e) == low).map(|e| u16::from_be_bytes([e[3], e[4]]) as u64).collect())
    }

    /// Root from the right-edge partial tiles alone.
    fn edge_root(&self) -> Hash {
        let mut acc: Option<Hash> = None;
        for tail in &self.tails {
            // Peaks inside this tail, smallest last; fold smallest-first into the accumulator.
            let w = tail.len();
            let mut at = 0;
            let mut peaks = Vec::new();
            for bit in (0..8).rev() {
                let sz = 1usize << bit;
                if w & sz != 0 {
                    peaks.push(subtree(&tail[at..at + sz]));
                    at += sz;
                }
            }
            for p in peaks.into_iter().rev() {
                acc = Some(match acc {
                    None => p,
                    Some(r) => node_hash(&p, &r),
                });
            }
        }
        acc.unwrap_or_else(merkle::empty_root)
    }

    /// Append already-encoded records (each a complete v1 record; their sequence numbers are
    /// overwritten, a zero time becomes now). Returns the first sequence number once the
    /// records, their tiles and a checkpoint covering them are durable.
    pub fn append(&mut self, entries: &[&[u8]]) -> Result<u64> {
        if entries.is_empty() {
            return Ok(self.size);
        }
        for (i, e) in entries.iter().enumerate() {
            tiles::check_entry_len(e.len())?;
            record::check_encoded(e).map_err(|err| Error::InvalidRecord(format!("record {i} of the batch: {err}")))?;
        }
        self.append_trusted(entries)
    }

    /// `append` for records already checked with `record::check_encoded`.
    pub(crate) fn append_trusted(&mut self, entries: &[&[u8]]) -> Result<u64> {
        if entries.is_empty() {
            return Ok(self.size);
        }
        let first = self.size;
        match self.append_checked(entries) {
            Ok(()) => Ok(first),
            Err(e) => {
                // Back to what is on disk; a failed batch is never acknowledged.
                let cp_size = self.checkpoint.size;
                self.size = cp_size;
                self.recover().map_err(|r| Error::Storage(format!("{e}; and recovery failed: {r}")))?;
                Err(e)
            }
        }
    }

    fn append_checked(&mut self, entries: &[&[u8]]) -> Result<()> {
        let now = now_us();
        let old_size = self.size;
        let old_partials: Vec<String> = self.partial_paths(old_size);
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut index_add = Vec::with_capacity(entries.len() * 4);
        let mut sealed = false;
        let mut seq = self.size;
        let mut bundle = std::mem::take(&mut self.tail_bundle);
        bundle.reserve(entries.iter().map(|e| e.len() + 2).sum());
        for e in entries {
            bundle.extend_from_slice(&(e.len() as u16).to_be_bytes());
            let start = bundle.len();
            bundle.extend_from_slice(e);
            // The record as stored: its sequence number, and the ledger's clock if it had none.
            let rec = &mut bundle[start..];
            rec[record::SEQ_OFFSET..record::SEQ_OFFSET + 8].copy_from_slice(&seq.to_be_bytes());
            if record::time_of(rec) == 0 {
                rec[record::TIME_OFFSET..record::TIME_OFFSET + 8].copy_from_slice(&now.to_be_bytes());
            }
            let rec = &bundle[start..];
            let prefix: [u8; 4] = record::pseudonym_of(rec)[..4].try_into().expect("4");
            self.tail_index.push(u32::from_be_bytes(prefix));
            index_add.extend_from_slice(&prefix);
            let h = leaf_hash(rec);
            self.push_hash(0, h, &mut files);
            seq += 1;
            if seq % SEGMENT == 0 {
                // A full segment: its sorted run is committed with the batch; the next
                // segment's records go to a new tail file.
                files.push((run_path(seq / SEGMENT - 1), encode_run(&self.tail_index)));
                self.tail_index.clear();
                index_add.clear();
                sealed = true;
            }
            if seq % TILE_WIDTH == 0 {
                files.push((bundle_path(seq / TILE_WIDTH - 1, TILE_WIDTH), std::mem::take(&mut bundle)));
            }
        }
        self.size = seq;
        self.tail_bundle = bundle;
        let new_partials = self.partial_paths(seq);
        let (full0, width0) = level_tiles(seq, 0);
        if width0 > 0 {
            files.push((bundle_path(full0, width0), self.tail_bundle.clone()));
        }
        for level in 0..8u32 {
            let (full, width) = level_tiles(seq, level);
            let p = tile_path(level, full, width);
            if width > 0 && !old_partials.contains(&p) {
                files.push((p, self.tails[level as usize].concat()));
            }
        }
        let mut opened: Vec<(PathBuf, File)> = Vec::with_capacity(files.len());
        for (p, data) in &files {
            let path = self.dir.join(p);
            let f = match File::create(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    fs::create_dir_all(path.parent().expect("tile paths have parents")).map_err(|e| io_err(&path, e))?;
                    File::create(&path).map_err(|e| io_err(&path, e))?
                }
                Err(e) => return Err(io_err(&path, e)),
            };
            let mut f = f;
            f.write_all(data).map_err(|e| io_err(&path, e))?;
            opened.push((path, f));
        }
        if sealed {
            let p = self.dir.join(tail_path(seq / SEGMENT));
            let mut f = File::create(&p).map_err(|e| io_err(&p, e))?;
            f.write_all(&index_add).map_err(|e| io_err(&p, e))?;
            opened.push((p, f));
        } else {
            let ip = self.dir.join(tail_path(seq / SEGMENT));
            self.index_file.write_all(&index_add).map_err(|e| io_err(&ip, e))?;
        }
        let root = self.edge_root();
        let cp = Checkpoint { origin: self.signer.name.clone(), size: seq, root, extensions: vec![] };
        let note = self.signer.sign(&cp.body())?;
        // The new checkpoint goes to a temporary name now, so the one flush below makes it
        // durable together with the records and tiles; only then is it renamed into place.
        let tmp_path = self.dir.join(CHECKPOINT_TMP);
        let mut tmp = File::create(&tmp_path).map_err(|e| io_err(&tmp_path, e))?;
        tmp.write_all(note.as_bytes()).map_err(|e| io_err(&tmp_path, e))?;
        opened.push((tmp_path.clone(), tmp));
        // The history entry (if this checkpoint is stored) is flushed by the same syncfs;
        // recovery drops it if the rename below never happens.
        let stored = seq - self.history.last().copied().unwrap_or(0) >= HISTORY_SPACING;
        if stored {
            let hentry = history_entry(&cp, &note)?;
            let hp = self.dir.join(HISTORY);
            self.history_file.write_all(&hentry).map_err(|e| io_err(&hp, e))?;
        }
        self.make_durable(&opened)?;
        drop(opened);
        fs::rename(&tmp_path, self.dir.join(CHECKPOINT)).map_err(|e| io_err(&tmp_path, e))?;
        fsync_dir(&self.dir)?;
        if stored {
            self.history.push(seq);
        }
        self.checkpoint = cp;
        self.checkpoint_note = note;
        *self.tail_cache.lock().expect("cache lock") = None;
        if sealed {
            let p = self.dir.join(tail_path(seq / SEGMENT));
            self.index_file = OpenOptions::new().read(true).append(true).open(&p).map_err(|e| io_err(&p, e))?;
            // The old segment's tail is superseded by its run.
            let _ = fs::remove_file(self.dir.join(tail_path(old_size / SEGMENT)));
        }
        for p in old_partials {
            if !new_partials.contains(&p) {
                // Superseded partial tiles: garbage, not needed for any committed state.
                let _ = fs::remove_file(self.dir.join(p));
            }
        }
        Ok(())
    }

    #[cfg(target_os = "linux")]
    fn make_durable(&self, _files: &[(PathBuf, File)]) -> Result<()> {
        use std::os::fd::AsRawFd;
        // One syncfs flushes every file and directory entry of the batch: the group commit.
        // Since Linux 5.8 it reports writeback errors of the filesystem.
        let rc = unsafe { libc::syncfs(self.index_file.as_raw_fd()) };
        if rc != 0 {
            return Err(io_err(&self.dir, std::io::Error::last_os_error()));
        }
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    fn make_durable(&self, files: &[(PathBuf, File)]) -> Result<()> {
        let mut dirs = std::collections::BTreeSet::new();
        for (p, f) in files {
            f.sync_all().map_err(|e| io_err(p, e))?;
            let mut d = p.parent();
            while let Some(x) = d {
                if x == self.dir {
                    break;
                }
                dirs.insert(x.to_path_buf());
                d = x.parent();
            }
        }
        self.index_file.sync_all().map_err(|e| io_err(&self.dir, e))?;
        self.history_file.sync_all().map_err(|e| io_err(&self.dir, e))?;
        for d in dirs {
            fsync_dir(&d)?;
        }
        fsync_dir(&self.dir)
    }

    fn partial_paths(&self, size: u64) -> Vec<String> {
        let mut v = Vec::new();
        for level in 0..8u32 {
            let (full, width) = level_tiles(size, level);
            if width > 0 {
                v.push(tile_path(level, full, width));
                if level == 0 {
                    v.push(bundle_path(full, width));
                }
            }
        }
        v
    }

    fn push_hash(&mut self, level: u32, h: Hash, files: &mut Vec<(String, Vec<u8>)>) {
        let l = level as usize;
        self.tails[l].push(h);
        if self.tails[l].len() as u64 == TILE_WIDTH {
            let full = std::mem::take(&mut self.tails[l]);
            // Full tiles already written at this level = hashes one level up.
            let index = if level < 7 { self.tails_len_total(level + 1) } else { 0 };
            let top = subtree(&full);
            files.push((tile_path(level, index, TILE_WIDTH), full.concat()));
            if level < 7 {
                self.push_hash(level + 1, top, files);
            }
        }
    }

    fn tails_len_total(&self, level: u32) -> u64 {
        // Hashes at `level` = (full tiles at level) * 256 + tail; full tiles = hashes one up.
        let up = if level < 7 { self.tails_len_total(level + 1) } else { 0 };
        up * TILE_WIDTH + self.tails[level as usize].len() as u64
    }

    fn expanded(&self, level: u32, index: u64) -> Result<Arc<Expanded>> {
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

    fn check_size(&self, size: u64) -> Result<()> {
        if size > self.size {
            return Err(Error::NotFound(format!("tree size {size} is beyond the ledger's {}", self.size)));
        }
        Ok(())
    }

    /// The encoded record `seq`; `None` when retention has dropped its body.
    pub fn entry(&self, seq: u64) -> Result<Option<Vec<u8>>> {
        if seq >= self.size {
            return Err(Error::NotFound(format!("record {seq} does not exist (ledger size {})", self.size)));
        }
        let b = seq / TILE_WIDTH;
        let (full, width) = level_tiles(self.size, 0);
        let data = if b == full {
            self.tail_bundle.clone()
        } else {
            if seq < self.min_index {
                return Ok(None);
            }
            let p = self.dir.join(bundle_path(b, TILE_WIDTH));
            let _ = width;
            fs::read(&p).map_err(|e| io_err(&p, e))?
        };
        let entries = tiles::split_bundle(&data).map_err(|_| Error::Storage(format!("bundle {b} is malformed")))?;
        entries
            .get((seq % TILE_WIDTH) as usize)
            .map(|e| Some(e.to_vec()))
            .ok_or_else(|| Error::Storage(format!("bundle {b} is short")))
    }

    /// Records `start..end` in order (each bundle read once); `None` where retention dropped
    /// the body. For readers that scan the ledger (the oversight index).
    pub fn entries(&self, start: u64, end: u64) -> Result<Vec<Option<Vec<u8>>>> {
        if start > end || end > self.size {
            return Err(Error::NotFound(format!("records {start}..{end} are not all in the ledger (size {})", self.size)));
        }
        let mut out = Vec::with_capacity((end - start) as usize);
        let mut seq = start;
        while seq < end {
            let b = seq / TILE_WIDTH;
            let stop = end.min((b + 1) * TILE_WIDTH);
            let (full, _) = level_tiles(self.size, 0);
            if b != full && stop <= self.min_index {
                out.extend((seq..stop).map(|_| None));
                seq = stop;
                continue;
            }
            let data = if b == full {
                self.tail_bundle.clone()
            } else {
                let p = self.dir.join(bundle_path(b, TILE_WIDTH));
                fs::read(&p).map_err(|e| io_err(&p, e))?
            };
            let entries = tiles::split_bundle(&data).map_err(|_| Error::Storage(format!("bundle {b} is malformed")))?;
            for k in seq..stop {
                let e = entries.get((k % TILE_WIDTH) as usize).ok_or_else(|| Error::Storage(format!("bundle {b} is short")))?;
                out.push(if k < self.min_index { None } else { Some(e.to_vec()) });
            }
            seq = stop;
        }
        Ok(out)
    }

    /// A person's records, newest first, below `before` (exclusive), at most `limit`, each with
    /// an inclusion proof against the current checkpoint. 不開示 records are held back unless
    /// their disclose-after date is on or before `today` (days since 1970-01-01).
    pub fn records_for_pseudonym(&self, pseudonym: &[u8; 32], before: Option<u64>, limit: usize, today: u32) -> Result<PersonPage> {
        let prefix = u32::from_be_bytes(pseudonym[..4].try_into().expect("4"));
        let start = before.unwrap_or(self.size).min(self.size);
        let cur = self.size / SEGMENT;
        let mut records = Vec::new();
        let mut next_before = None;
        let mut seg = start.div_ceil(SEGMENT);
        'segments: while seg > self.min_index / SEGMENT {
            seg -= 1;
            // Candidates in this segment, newest first: the in-memory tail, else the sorted run.
            let offsets: Vec<u64> = if seg == cur {
                (0..self.tail_index.len() as u64).filter(|&o| self.tail_index[o as usize] == prefix).collect()
            } else {
                self.run_lookup(seg, prefix)?
            };
            for &off in offsets.iter().rev() {
                let seq = seg * SEGMENT + off;
                if seq >= start {
                    continue;
                }
                if seq < self.min_index {
                    break 'segments;
                }
                let Some(e) = self.entry(seq)? else { continue };
                if record::pseudonym_of(&e) != pseudonym {
                    continue;
                }
                let r = Record::decode(&e)?;
                if r.withheld && r.disclose_after.is_none_or(|d| d > today) {
                    continue;
                }
                if records.len() == limit {
                    next_before = Some(seq + 1);
                    break 'segments;
                }
                let proof = self.inclusion_proof(seq, self.size)?;
                records.push((seq, e, proof));
            }
        }
        Ok(PersonPage { records, next_before, checkpoint: self.checkpoint_note.clone() })
    }

    /// Drop the bodies (entry bundles) of full bundles whose records are all older than
    /// `cutoff_us`, from the front. Tiles stay, so the tree and every proof stay valid. The new
    /// minimum index is published atomically before any bundle is deleted; an interrupted run
    /// leaves only already-retired bundles behind, which the next run deletes.
    pub fn retain(&mut self, cutoff_us: i64) -> Result<u64> {
        let (full, _) = level_tiles(self.size, 0);
        let mut b = self.min_index / TILE_WIDTH;
        while b < full {
            let p = self.dir.join(bundle_path(b, TILE_WIDTH));
            let data = fs::read(&p).map_err(|e| io_err(&p, e))?;
            let entries = tiles::split_bundle(&data).map_err(|_| Error::Storage(format!("{}: malformed", p.display())))?;
            if entries.iter().any(|e| e.len() < record::HEADER_LEN || record::time_of(e) >= cutoff_us) {
                break;
            }
            b += 1;
        }
        let new_min = b * TILE_WIDTH;
        if new_min > self.min_index {
            durable::write_atomic(&self.dir, RETENTION, format!("{new_min}\n").as_bytes(), PUBLIC_MODE)?;
            self.min_index = new_min;
        }
        // Delete retired bundles, newest first, so an interruption leaves a contiguous run.
        let mut i = self.min_index / TILE_WIDTH;
        let mut dropped = 0;
        while i > 0 {
            i -= 1;
            let p = self.dir.join(bundle_path(i, TILE_WIDTH));
            match fs::remove_file(&p) {
                Ok(()) => dropped += 1,
                Err(e) if e.kind() == ErrorKind::NotFound => break,
                Err(e) => return Err(io_err(&p, e)),
            }
        }
        Ok(dropped * TILE_WIDTH)
    }

    /// Recompute everything from the files: every record (layout, sequence number, leaf hash),
    /// every tile (full and partial), the index, and the signed checkpoint.
    pub fn verify(&self) -> std::result::Result<VerifyReport, Damage> {
        verify_dir(&self.dir, &self.verifier)
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

impl From<Damage> for Error {
    fn from(d: Damage) -> Error {
        Error::LedgerDamage { message: d.to_string(), path: d.path, record: d.record }
    }
}

fn damage(path: impl Into<String>, record: Option<u64>, what: impl Into<String>) -> Damage {
    Damage { path: path.into(), record, what: what.into() }
}

/// The run of full segment `k` against its records' prefixes (None: body retired, so the
/// run's own statement is taken, which must still be a well-formed sorted run).
fn check_run(dir: &Path, k: u64, prefixes: &[Option<u32>]) -> std::result::Result<Option<Damage>, Damage> {
    let rel = run_path(k);
    let Some(b) = read_opt(&dir.join(&rel)).map_err(|e| damage(&rel, None, e.to_string()))? else {
        return Ok(Some(damage(&rel, None, "index run is missing")));
    };
    let stated = if prefixes.iter().all(Option::is_some) {
        None
    } else {
        match decode_run(&b) {
            Ok(v) => Some(v),
            Err(what) => return Ok(Some(damage(&rel, None, what))),
        }
    };
    let merged: Vec<u32> = prefixes.iter().enumerate()
        .map(|(i, p)| p.unwrap_or_else(|| stated.as_ref().map_or(0, |s| s[i]))).collect();
    if encode_run(&merged) != b {
        return Ok(Some(damage(&rel, None, "index run differs from the records' pseudonyms")));
    }
    Ok(None)
}

/// The current segment's flat tail index against its records' prefixes. Bytes beyond are a
/// torn tail that the next open truncates.
fn check_tail(dir: &Path, k: u64, prefixes: &[Option<u32>]) -> std::result::Result<Option<Damage>, Damage> {
    let rel = tail_path(k);
    let b = read_opt(&dir.join(&rel)).map_err(|e| damage(&rel, None, e.to_string()))?.unwrap_or_default();
    if b.len() < prefixes.len() * 4 {
        return Ok(Some(damage(&rel, None, format!("holds {} entries, the checkpoint covers {}", b.len() / 4, prefixes.len()))));
    }
    for (i, p) in prefixes.iter().enumerate() {
        if p.is_some_and(|p| b[i * 4..i * 4 + 4] != p.to_be_bytes()) {
            return Ok(Some(damage(&rel, Some(k * SEGMENT + i as u64), "pseudonym index entry differs from the record")));
        }
    }
    Ok(None)
}

/// One history entry: size u64 BE, root, the note's Ed25519 signature.
fn history_entry(cp: &Checkpoint, note: &str) -> Result<[u8; HISTORY_ENTRY]> {
    let mut e = [0u8; HISTORY_ENTRY];
    e[..8].copy_from_slice(&cp.size.to_be_bytes());
    e[8..40].copy_from_slice(&cp.root);
    e[40..].copy_from_slice(&last_signature(note)?);
    Ok(e)
}

fn history_at(b: &[u8], i: usize) -> &[u8] {
    let at = HISTORY_MAGIC.len() + i * HISTORY_ENTRY;
    &b[at..at + HISTORY_ENTRY]
}

fn entry_size(e: &[u8]) -> u64 {
    u64::from_be_bytes(e[..8].try_into().expect("8 bytes"))
}

/// Rebuild a stored entry's signed note and check its signature exactly as for any note.
fn open_history_entry(e: &[u8], verifier: &NoteVerifier) -> Result<(Checkpoint, String)> {
    let root: Hash = e[8..40].try_into().expect("32 bytes");
    let sig: [u8; 64] = e[40..HISTORY_ENTRY].try_into().expect("64 bytes");
    let body = Checkpoint { origin: verifier.name.clone(), size: entry_size(e), root, extensions: vec![] }.body();
    let note = verifier.note_with(&body, &sig);
    let cp = Checkpoint::open_signed(note.as_bytes(), verifier, &verifier.name)?;
    Ok((cp, note))
}

fn check_history_magic(b: &[u8]) -> std::result::Result<(), Damage> {
    if !b.starts_with(HISTORY_MAGIC) {
        return Err(damage(HISTORY, None, "not a binary checkpoint history (written by an older ledger format, \
            which this version does not read, or damaged)"));
    }
    Ok(())
}

/// Complete-subtree hashes read from the tiles of a tree of size `n` (for the roots of
/// historical checkpoints during `verify`, once the tiles have been checked).
struct DirNodes<'a> {
    dir: &'a Path,
    n: u64,
    cache: std::cell::RefCell<HashMap<(u32, u64), Arc<Expanded>>>,
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

/// Check every stored checkpoint up to the verified one `cp`: signature, increasing sizes,
/// its root equal to the root recomputed from the (already verified) tiles at its size.
/// Entries beyond `cp` must still carry a valid signature (a writer published them since, or
/// they are a torn tail the next open cuts). Counts the latest checkpoint (checked by the
/// caller) when it is not stored.
fn verify_history(dir: &Path, verifier: &NoteVerifier, cp: &Checkpoint) -> std::result::Result<u64, Damage> {
    let b = read_opt(&dir.join(HISTORY)).map_err(|e| damage(HISTORY, None, e.to_string()))?
        .ok_or_else(|| damage(HISTORY, None, "missing"))?;
    check_history_magic(&b)?;
    let nodes = DirNodes { dir, n: cp.size, cache: Default::default() };
    let mut last = None::<u64>;
    let mut found = false;
    let mut checked = 0u64;
    for i in 0..(b.len() - HISTORY_MAGIC.len()) / HISTORY_ENTRY {
        let e = history_at(&b, i);
        let off = HISTORY_MAGIC.len() + i * HISTORY_ENTRY;
        let bad = |what: String| damage(HISTORY, None, format!("checkpoint #{i} (byte {off}): {what}"));
        let (h, _) = open_history_entry(e, verifier).map_err(|e| bad(e.to_string()))?;
        if h.size > cp.size {
            break;
        }
        if last.is_some_and(|l| h.size <= l) {
            return Err(bad(format!("tree size {} is not above the previous {}", h.size, last.unwrap_or(0))));
        }
        last = Some(h.size);
        let root = merkle::root(&nodes, h.size).map_err(|e| bad(e.to_string()))?;
        if root != h.root {
            return Err(bad(format!("root differs from the tree recomputed at size {}", h.size)));
        }
        found |= h.size == cp.size;
        checked += 1;
    }
    Ok(checked + u64::from(!found))
}

/// `Store::verify` without opening (and so without recovering) the store. Safe to run while
/// a writer appends: a failure seen while the checkpoint moved on is retried on the new one.
pub fn verify_dir(dir: &Path, verifier: &NoteVerifier) -> std::result::Result<VerifyReport, Damage> {
    let mut attempts = 0;
    loop {
        let note = read_opt(&dir.join(CHECKPOINT))
            .map_err(|e| damage(CHECKPOINT, None, e.to_string()))?
            .ok_or_else(|| damage(CHECKPOINT, None, "missing"))?;
        let result = verify_at(dir, verifier, &note);
        attempts += 1;
        let moved = result.is_err() && read_opt(&dir.join(CHECKPOINT)).ok().flatten().as_deref() != Some(&note[..]);
        if !moved || attempts >= 20 {
            return result;
        }
    }
}

/// Tile (or bundle, `level` None) `n` of width `w` as of the checkpoint being verified: the
/// exact file or, when a writer has since moved on and deleted that partial, the full tile or
/// a wider partial, whose first `w` hashes / entries are the same by construction.
/// Returns the path read and its first `w` items.
fn read_prefix(dir: &Path, level: Option<u32>, n: u64, w: u64) -> std::result::Result<Option<(String, Vec<u8>)>, Damage> {
    let path = |width: u64| match level {
        Some(l) => tile_path(l, n, width),
        None => bundle_path(n, width),
    };
    let mut candidates = vec![path(w)];
    if w < TILE_WIDTH {
        candidates.push(path(TILE_WIDTH));
        let pdir = dir.join(format!("{}.p", path(TILE_WIDTH)));
        let mut wider: Vec<u64> = fs::read_dir(&pdir)
            .map(|rd| rd.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).filter(|&x| x > w).collect())
            .unwrap_or_default();
        wider.sort_unstable();
        candidates.extend(wider.into_iter().map(path));
    }
    for rel in candidates {
        let Some(mut b) = read_opt(&dir.join(&rel)).map_err(|e| damage(&rel, None, e.to_string()))? else { continue };
        if rel != path(w) {
            let cut = match level {
                Some(_) => (w * 32) as usize,
                None => {
                    let mut at = 0usize;
                    for _ in 0..w {
                        if at + 2 > b.len() {
                            break;
                        }
                        at += 2 + u16::from_be_bytes([b[at], b[at + 1]]) as usize;
                    }
                    at
                }
            };
            b.truncate(cut);
        }
        return Ok(Some((rel, b)));
    }
    Ok(None)
}

fn verify_at(dir: &Path, verifier: &NoteVerifier, note: &[u8]) -> std::result::Result<VerifyReport, Damage> {
    let read = |rel: &str| -> std::result::Result<Option<Vec<u8>>, Damage> {
        read_opt(&dir.join(rel)).map_err(|e| damage(rel, None, e.to_string()))
    };
    let cp = Checkpoint::open_signed(note, verifier, &verifier.name).map_err(|e| damage(CHECKPOINT, None, e.to_string()))?;
    let n = cp.size;
    let min_index = match read(RETENTION)? {
        Some(b) => std::str::from_utf8(&b).ok().and_then(|s| s.strip_suffix('\n')).and_then(|s| s.parse::<u64>().ok())
            .filter(|m| m % TILE_WIDTH == 0 && *m <= n)
            .ok_or_else(|| damage(RETENTION, None, "not a valid minimum index"))?,
        None => 0,
    };
    let mut report = VerifyReport { size: n, ..Default::default() };
    let (full0, width0) = level_tiles(n, 0);
    let bundles = full0 + (width0 > 0) as u64;
    // Pseudonym prefixes of the current index segment (None where a body was retired).
    let mut seg_prefixes: Vec<Option<u32>> = Vec::with_capacity(SEGMENT as usize);
    // Phase 1: leaf hashes from the bundles (from level-0 tiles where bodies were retired),
    // compared with the level-0 tiles as we go.
    let mut row: Vec<Hash> = Vec::new(); // level-1 hashes computed from the bodies
    let mut first_record_mismatch: Option<Damage> = None;
    let mut first_tile_mismatch: Option<Damage> = None;
    let mut first_index_mismatch: Option<Damage> = None;
    let mut level0_all: Vec<Hash> = Vec::new(); // only the last (partial) tile's leaves are kept
    for b in 0..bundles {
        let width = if b < full0 { TILE_WIDTH } else { width0 };
        let (tpath, tile) = match read_prefix(dir, Some(0), b, width)? {
            Some((p, t)) => (p, Some(t)),
            None => (tile_path(0, b, width), None),
        };
        let tile_hashes = match &tile {
            Some(t) if t.len() as u64 == width * 32 => Some(hashes_of(t)),
            _ => None,
        };
        let bundle = read_prefix(dir, None, b, width)?;
        let bpath = bundle.as_ref().map(|(p, _)| p.clone()).unwrap_or_else(|| bundle_path(b, width));
        let leaves: Vec<Hash> = if b * TILE_WIDTH < min_index && bundle.is_none() {
            report.records_retained_away += width;
            seg_prefixes.extend((0..width).map(|_| None));
            match &tile_hashes {
                Some(h) => h.clone(),
                None => return Err(damage(tpath, None, "missing or wrong size, and the records' bodies were retired")),
            }
        } else {
            let data = bundle.map(|(_, d)| d).ok_or_else(|| damage(&bpath, Some(b * TILE_WIDTH), "bundle is missing"))?;
            let entries = tiles::split_bundle(&data).map_err(|off| {
                let rec = tiles::split_bundle(&data[..off]).map(|v| v.len() as u64).unwrap_or(0);
                damage(&bpath, Some(b * TILE_WIDTH + rec), format!("bundle is malformed at byte {off}"))
            })?;
            if entries.len() as u64 != width {
                return Err(damage(&bpath, Some(b * TILE_WIDTH + (entries.len() as u64).min(width.saturating_sub(1))),
                    format!("bundle holds {} records, expected {width}", entries.len())));
            }
            let mut leaves = Vec::with_capacity(entries.len());
            for (k, e) in entries.iter().enumerate() {
                let seq = b * TILE_WIDTH + k as u64;
                let rec = Record::decode(e).map_err(|err| damage(&bpath, Some(seq), err.to_string()))?;
                if rec.seq != seq {
                    return Err(damage(&bpath, Some(seq), format!("carries sequence number {}", rec.seq)));
                }
                let h = leaf_hash(e);
                if first_record_mismatch.is_none() && tile_hashes.as_ref().is_some_and(|t| t[k] != h) {
                    first_record_mismatch = Some(damage(&bpath, Some(seq), "leaf hash differs from the level-0 tile"));
                }
                seg_prefixes.push(Some(u32::from_be_bytes(record::pseudonym_of(e)[..4].try_into().expect("4"))));
                leaves.push(h);
            }
            report.records_checked += width;
            leaves
        };
        if first_tile_mismatch.is_none() && tile_hashes.as_ref() != Some(&leaves) {
            first_tile_mismatch = Some(damage(&tpath, None, "level-0 tile differs from the records' hashes"));
        }
        report.tiles_checked += 1;
        if seg_prefixes.len() as u64 == SEGMENT {
            let k = (b + 1) * TILE_WIDTH / SEGMENT - 1;
            if first_index_mismatch.is_none() {
                first_index_mismatch = check_run(dir, k, &seg_prefixes)?;
            }
            seg_prefixes.clear();
        }
        if width == TILE_WIDTH {
            row.push(subtree(&leaves));
        } else {
            level0_all = leaves;
        }
    }
    if first_index_mismatch.is_none() {
        first_index_mismatch = check_tail(dir, n / SEGMENT, &seg_prefixes)?;
    }
    // Phase 2: upper levels, computed, compared with their tiles; the root from the same rows.
    let mut rows: Vec<Vec<Hash>> = vec![level0_all];
    let mut level = 1u32;
    let mut current = row;
    while level < 8 && !current.is_empty() {
        let (full, width) = level_tiles(n, level);
        let mut next = Vec::new();
        for t in 0..full + (width > 0) as u64 {
            let w = if t < full { TILE_WIDTH } else { width };
            let chunk = &current[(t * TILE_WIDTH) as usize..(t * TILE_WIDTH + w) as usize];
            let (tpath, tile) = match read_prefix(dir, Some(level), t, w)? {
                Some((p, t)) => (p, Some(t)),
                None => (tile_path(level, t, w), None),
            };
            if first_tile_mismatch.is_none() && tile.as_deref() != Some(&chunk.concat()[..]) {
                first_tile_mismatch = Some(damage(&tpath, None, format!("level-{level} tile differs from the hashes below it")));
            }
            report.tiles_checked += 1;
            if w == TILE_WIDTH {
                next.push(subtree(chunk));
            }
        }
        rows.push(current[(full * TILE_WIDTH) as usize..].to_vec());
        current = next;
        level += 1;
    }
    let root = {
        let mut acc: Option<Hash> = None;
        for tail in &rows {
            let mut at = 0;
            let mut peaks = Vec::new();
            for bit in (0..8).rev() {
                let sz = 1usize << bit;
                if tail.len() & sz != 0 {
                    peaks.push(subtree(&tail[at..at + sz]));
                    at += sz;
                }
            }
            for p in peaks.into_iter().rev() {
                acc = Some(match acc { None => p, Some(r) => node_hash(&p, &r) });
            }
        }
        acc.unwrap_or_else(merkle::empty_root)
    };
    if root != cp.root {
        // The signed root authenticates the data: a record that disagrees with it is to blame.
        return Err(first_record_mismatch.or(first_tile_mismatch)
            .unwrap_or_else(|| damage(CHECKPOINT, None, "the records do not hash to the signed root")));
    }
    if let Some(d) = first_tile_mismatch.or(first_index_mismatch) {
        return Err(d);
    }
    report.checkpoints_checked = verify_history(dir, verifier, &cp)?;
    // Index bytes beyond 4·size are a torn tail that the next open truncates.
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::record::{Outcome, Record};

    fn rec(i: u64) -> Vec<u8> {
        Record {
            seq: 0,
            time_us: 1_000 + i as i64,
            requester: 1,
            provider: 2,
            affair: "1-3".into(),
            items: vec!["TM00000000000001".into()],
            table_hash: [1; 32],
            outcome: Outcome::Permitted,
            permit_id: [2; 16],
            pseudonym: [(i % 7) as u8; 32],
            withheld: false,
            disclose_after: None,
        }
        .encode()
        .unwrap()
    }

    #[test]
    fn append_prove_reopen_verify() {
        let dir = tempfile::tempdir().unwrap();
        let mut mem = merkle::MemTree::new();
        let mut s = Store::open(dir.path(), "renkei.test/ledger", &[4; 32]).unwrap();
        let mut sizes = vec![];
        let mut notes = vec![];
        for batch in [1usize, 5, 250, 600, 7, 65536 + 3] {
            let recs: Vec<Vec<u8>> = (0..batch).map(|i| rec(s.size() + i as u64)).collect();
            let refs: Vec<&[u8]> = recs.iter().map(|r| &r[..]).collect();
            let first = s.append(&refs).unwrap();
            for i in 0..batch as u64 {
                mem.push(&s.entry(first + i).unwrap().unwrap());
            }
            assert_eq!(s.checkpoint().root, mem.root());
            sizes.push(s.size());
            notes.push(s.checkpoint_note().to_string());
        }
        let n = s.size();
        for i in [0, 1, 255, 256, 1000, n - 1] {
            assert_eq!(s.inclusion_proof(i, n).unwrap(), merkle::inclusion_proof(&mem, i, n).unwrap());
        }
        for &a in &sizes {
            assert_eq!(s.consistency_proof(a, n).unwrap(), merkle::consistency_proof(&mem, a, n).unwrap());
        }
        assert!(Store::open(dir.path(), "renkei.test/ledger", &[4; 32]).is_err(), "one writer at a time");
        drop(s);
        let s = Store::open(dir.path(), "renkei.test/ledger", &[4; 32]).unwrap();
        assert_eq!(s.size(), n);
        let rep = s.verify().unwrap();
        assert_eq!(rep.records_checked, n);
        // Stored: every checkpoint at least 256 records after the previous stored one, rebuilt
        // byte for byte as published; the others are not found.
        assert_eq!(sizes, [1, 6, 256, 856, 863, 66402]);
        let stored = [256u64, 856, 66402];
        let hist = s.checkpoints().unwrap();
        let want: Vec<&String> = sizes.iter().zip(&notes).filter(|(a, _)| stored.contains(a)).map(|(_, n)| n).collect();
        assert_eq!(hist.iter().collect::<Vec<_>>(), want);
        assert_eq!(hist.last().unwrap(), s.checkpoint_note());
        assert_eq!(fs::metadata(dir.path().join(HISTORY)).unwrap().len(), 8 + 3 * 104);
        for (&a, note) in sizes.iter().zip(&notes) {
            if stored.contains(&a) {
                assert_eq!(&s.checkpoint_at(a).unwrap(), note);
                let cp = Checkpoint::open_signed(note.as_bytes(), s.verifier(), "renkei.test/ledger").unwrap();
                assert_eq!((cp.size, cp.root), (a, s.root_at(a).unwrap()));
            } else {
                assert!(matches!(s.checkpoint_at(a), Err(Error::NotFound(_))), "{a}");
            }
        }
        assert!(s.checkpoint_at(2).is_err());
        assert_eq!(rep.checkpoints_checked, 3);
        let page = s.records_for_pseudonym(&[3; 32], None, 5, 0).unwrap();
        assert_eq!(page.records.len(), 5);
        assert!(page.records.windows(2).all(|w| w[0].0 > w[1].0));
        drop(s);
        // Wrong key: refuse to open rather than trust an unverifiable checkpoint.
        assert!(Store::open(dir.path(), "renkei.test/ledger", &[5; 32]).is_err());
    }

    #[test]
    fn torn_tail_is_rolled_back_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), "o", &[4; 32]).unwrap();
        let recs: Vec<Vec<u8>> = (0..300).map(rec).collect();
        let refs: Vec<&[u8]> = recs.iter().map(|r| &r[..]).collect();
        s.append(&refs).unwrap();
        drop(s);
        // A crash after writing the next batch's files but before its checkpoint.
        fs::create_dir_all(dir.path().join("tile/0/001.p")).unwrap();
        fs::write(dir.path().join("tile/0/001.p/99"), [0u8; 99 * 32]).unwrap();
        fs::write(dir.path().join("tile/0/002"), [0u8; 8192]).unwrap();
        // ... and its history entry, signed, beyond the checkpoint, then a partial entry.
        let signer = NoteSigner::from_seed("o", &[4; 32]).unwrap();
        let ahead_cp = Checkpoint { origin: "o".into(), size: 599, root: [7; 32], extensions: vec![] };
        let ahead = signer.sign(&ahead_cp.body()).unwrap();
        let hp = dir.path().join(HISTORY);
        let before = fs::read(&hp).unwrap();
        assert_eq!(before.len(), 8 + 104);
        let mut torn = before.clone();
        torn.extend(history_entry(&ahead_cp, &ahead).unwrap());
        torn.extend([0, 200, b'o']);
        fs::write(&hp, torn).unwrap();
        let mut s = Store::open(dir.path(), "o", &[4; 32]).unwrap();
        assert_eq!(s.size(), 300);
        assert!(!dir.path().join("tile/0/002").exists());
        assert_eq!(fs::read(&hp).unwrap(), before);
        assert_eq!(s.checkpoints().unwrap(), [s.checkpoint_note()]);
        s.verify().unwrap();
        s.append(&refs[..10]).unwrap();
        assert_eq!(s.verify().unwrap().checkpoints_checked, 2, "the stored 300 and the latest 310");
        assert_eq!(fs::read(&hp).unwrap(), before, "310 is not stored: only 10 records after 300");
        let p = dir.path().join("tile/entries/000");
        let mut b = fs::read(&p).unwrap();
        b[500] ^= 1;
        fs::write(&p, &b).unwrap();
        let d = s.verify().unwrap_err();
        assert_eq!(d.path, "tile/entries/000");
        assert!(d.record.is_some());
        b[500] ^= 1;
        fs::write(&p, &b).unwrap();
        s.verify().unwrap();
        // A history entry whose root is not the tree's at its size is named.
        let good = fs::read(&hp).unwrap();
        let forged_cp = Checkpoint { origin: "o".into(), size: 5, root: [7; 32], extensions: vec![] };
        let forged = signer.sign(&forged_cp.body()).unwrap();
        let mut bad = good[..8].to_vec();
        bad.extend(history_entry(&forged_cp, &forged).unwrap());
        bad.extend(&good[8..]);
        fs::write(&hp, bad).unwrap();
        let d = s.verify().unwrap_err();
        assert_eq!(d.path, HISTORY);
        assert!(d.what.contains("root differs"), "{d}");
        // Damage before the current checkpoint's entry is never cut by recovery.
        drop(s);
        let damaged = fs::read(&hp).unwrap();
        let s = Store::open(dir.path(), "o", &[4; 32]).unwrap();
        assert_eq!(fs::read(&hp).unwrap(), damaged);
        assert_eq!(s.verify().unwrap_err().path, HISTORY);
        // A flipped size byte in the last entry (making it look ahead) is named, not skipped.
        let mut flipped = good.clone();
        flipped[8] ^= 0x80;
        fs::write(&hp, &flipped).unwrap();
        assert_eq!(s.verify().unwrap_err().path, HISTORY);
        drop(s);
        // The previous format (length-prefixed full notes) is refused with the file named.
        let mut old = (ahead.len() as u16).to_be_bytes().to_vec();
        old.extend(ahead.as_bytes());
        fs::write(&hp, &old).unwrap();
        match Store::open(dir.path(), "o", &[4; 32]).unwrap_err() {
            Error::LedgerDamage { path, message, .. } => assert!(path == HISTORY && message.contains("older ledger format"), "{message}"),
            e => panic!("{e}"),
        }
        assert_eq!(fs::read(&hp).unwrap(), old, "nothing is cut");
        assert_eq!(verify_dir(dir.path(), &signer.verifier()).unwrap_err().path, HISTORY);
    }

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
        assert!(dir.path().join("index/run/1").exists() && !dir.path().join("index/tail/0").exists());
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
        fs::write(dir.path().join("index/run/2"), b"torn").unwrap();
        fs::write(dir.path().join("index/tail/3"), b"torn").unwrap();
        fs::remove_file(dir.path().join("index/run/0")).unwrap();
        let s = Store::open(dir.path(), "o", &[4; 32]).unwrap();
        assert!(!dir.path().join("index/run/2").exists() && !dir.path().join("index/tail/3").exists());
        check(&s);
        s.verify().unwrap();
        // Damage in a run or the tail is named.
        for (rel, at) in [("index/run/1", 3usize), ("index/run/0", RUN_HEADER + 17), ("index/tail/2", 40)] {
            let p = dir.path().join(rel);
            let good = fs::read(&p).unwrap();
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            fs::write(&p, &bad).unwrap();
            assert_eq!(s.verify().unwrap_err().path, rel);
            fs::write(&p, &good).unwrap();
        }
        s.verify().unwrap();
        drop(s);
        // A ledger from before segment runs (one flat index) is migrated on open.
        for sub in ["index/run", "index/tail"] {
            fs::remove_dir_all(dir.path().join(sub)).unwrap();
        }
        let flat: Vec<u8> = (0..n).flat_map(|i| person(owner(i))[..4].to_vec()).collect();
        fs::write(dir.path().join(LEGACY_INDEX), flat).unwrap();
        let s = Store::open(dir.path(), "o", &[4; 32]).unwrap();
        assert!(!dir.path().join(LEGACY_INDEX).exists() && dir.path().join("index/run/1").exists());
        check(&s);
        s.verify().unwrap();
    }

    #[test]
    fn retention_keeps_proofs() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), "o", &[4; 32]).unwrap();
        let recs: Vec<Vec<u8>> = (0..1000).map(rec).collect();
        let refs: Vec<&[u8]> = recs.iter().map(|r| &r[..]).collect();
        s.append(&refs).unwrap();
        let before = s.inclusion_proof(3, 1000).unwrap();
        assert_eq!(s.retain(1_000 + 600).unwrap(), 512);
        assert_eq!(s.min_index(), 512);
        assert_eq!(s.entry(3).unwrap(), None);
        assert!(s.entry(700).unwrap().is_some());
        assert_eq!(s.inclusion_proof(3, 1000).unwrap(), before);
        let rep = s.verify().unwrap();
        assert_eq!(rep.records_retained_away, 512);
        drop(s);
        Store::open(dir.path(), "o", &[4; 32]).unwrap().verify().unwrap();
    }
}
