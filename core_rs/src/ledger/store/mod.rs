//! The durable ledger files: a write-ahead log (the one durable write of a commit) and, derived
//! from it, the C2SP tlog-tiles layout and the private files beside it.
//!
//! ```text
//! format                        "renkei-ledger 2\n" (public)
//! checkpoint                    latest signed checkpoint (public)
//! tile/<L>/<N>[.p/<W>]          hash tiles (public)
//! tile/entries/<N>[.p/<W>]      entry bundles of public leaves: records with the person committed (public)
//! checkpoints                   8-byte magic, then per stored checkpoint (every one at least
//!                               256 records after the previous stored one): size u64 BE,
//!                               root 32 B, Ed25519 signature 64 B (public)
//! wal/<base>                    write-ahead log segments (private)
//! open/<k>                      per index segment k of 65,536 records, the records' openings:
//!                               48 B each (salt ‖ pseudonym) (private)
//! index/run/<k>                 per full segment k, its sorted pseudonym run (private)
//! retention                     minimum index: records below it have no body any more
//! ```
//!
//! A commit appends one frame (the batch's public leaves, their openings and the new signed
//! checkpoint) to the write-ahead log and makes it durable with one `fdatasync`; the bundles,
//! tiles, openings, index and history are then written without any sync (while the
//! `fdatasync` runs), and the checkpoint is renamed into place. Nothing is acknowledged before
//! the frame is durable. When a segment passes `WAL_LIMIT` the derived files are flushed
//! (`syncfs`), a new segment starts with the tree's edge in its header, and the old one is
//! deleted. On open the segments are replayed over the durable files: every derived file
//! after the oldest segment's base is rewritten where it differs, and a torn last frame (never
//! acknowledged) is cut.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::merkle::{self, leaf_hash, node_hash, Hash, NodeSource};
use super::note::{last_signature, Checkpoint, NoteSigner, NoteVerifier};
use super::record::{self, Record, OPENING_LEN};
use super::tiles::{self, bundle_path, level_tiles, tile_path, TILE_WIDTH};
use crate::durable::{self, DirLock};
use crate::error::{Error, Result};

mod commit;
#[cfg(test)]
mod faults;
mod history;
mod index;
pub mod io;
mod proofs;
mod recovery;
mod retention;
mod verify;
mod wal;

use history::*;
use index::*;
use io::Io;
use proofs::*;
use verify::*;

pub use history::HISTORY_SPACING;
pub use index::SEGMENT;
pub use verify::{verify_dir, verify_public, VerifyOptions};
pub use wal::WAL_LIMIT;

const CHECKPOINT: &str = "checkpoint";
const CHECKPOINT_TMP: &str = "checkpoint.tmp";
pub(crate) const FORMAT: &str = "format";
pub(crate) const FORMAT_V2: &[u8] = b"renkei-ledger 2\n";

const RETENTION: &str = "retention";
/// Left by versions that wrote `retention` under this fixed temporary name; removed on open.
const RETENTION_TMP: &str = "retention.tmp";
/// The public files' mode. They are public data (tlog-tiles readers fetch copies of them), but
/// every file a service writes is 0600 in a 0700 directory whatever the umask: publishing is an
/// explicit copy, never the service's own directory.
const PUBLIC_MODE: u32 = 0o600;
const OPEN_DIR: &str = "open";

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

/// The root of a tree from its right-edge partial tiles (level 0 first).
fn edge_root_of(tails: &[Vec<Hash>]) -> Hash {
    let mut acc: Option<Hash> = None;
    for tail in tails {
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

pub(super) fn open_path(k: u64) -> String {
    format!("{OPEN_DIR}/{k}")
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
    /// Whether the entries were checked as renkei records (layout, sequence numbers).
    pub renkei: bool,
    /// Openings checked against their records' commitments (0 on a public copy).
    pub openings_checked: u64,
    /// Write-ahead log frames checked against the tree.
    pub wal_frames_checked: u64,
}

/// One of a person's records: (seq, public leaf, opening, inclusion proof).
pub type PersonRecord = (u64, Vec<u8>, [u8; OPENING_LEN], Vec<Hash>);

/// One page of a person's records.
pub struct PersonPage {
    pub records: Vec<PersonRecord>,
    pub next_before: Option<u64>,
    pub checkpoint: String,
}

pub struct Store {
    dir: PathBuf,
    signer: NoteSigner,
    verifier: NoteVerifier,
    io: Io,
    size: u64,
    /// Per tile level, the hashes of the partial tile on the right edge (fewer than 256).
    tails: Vec<Vec<Hash>>,
    /// The partial entry bundle on the right edge, length-prefixed entries.
    tail_bundle: Vec<u8>,
    checkpoint: Checkpoint,
    checkpoint_note: String,
    /// Pseudonym prefixes of the current (not yet full) index segment.
    tail_index: Vec<u32>,
    /// The size of each stored checkpoint of the history file (entry i at
    /// `HISTORY_MAGIC.len() + i * HISTORY_ENTRY`).
    history: Vec<u64>,
    /// The active write-ahead log segment, its base and length.
    wal: Option<File>,
    wal_base: u64,
    wal_len: u64,
    wal_limit: u64,
    min_index: u64,
    /// Set when a failed commit could not be rolled back: the store refuses work until reopened.
    poisoned: Option<String>,
    cache: Mutex<HashMap<(u32, u64), Arc<Expanded>>>,
    /// The right-edge partial tiles, expanded; rebuilt lazily after each append.
    tail_cache: Mutex<Option<Arc<Vec<Expanded>>>>,
    /// The per-person index's runs and their background merger.
    merger: Merger,
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

/// Refuse a directory written by the previous format (no write-ahead log, the person's
/// pseudonym in the public bundles), naming what to do.
fn refuse_old_format(dir: &Path, size: u64) -> Error {
    Error::LedgerDamage {
        path: FORMAT.into(),
        record: None,
        message: format!(
            "{}: this ledger ({size} records) was written by an earlier ledger format (no `format` file: \
             record layout 1 with the person's pseudonym in the public entry bundles, no write-ahead log), \
             which this version does not open. Keep the directory as that log's archive (`renkei ledger \
             verify --dir <it> --vkey <its vkey>` still checks it), move it aside (e.g. to ledger.v1) and \
             let the core start a new ledger under a new origin (RENKEI_LEDGER_ORIGIN); see \
             docs/arch/ledger.md, \"Earlier formats\"",
            dir.display()
        ),
    }
}

impl Store {
    /// Open (creating if needed) the ledger in `dir`, signing checkpoints as `origin` with the
    /// Ed25519 key derived from `seed`. Replays the write-ahead log over the derived files.
    pub fn open(dir: impl AsRef<Path>, origin: &str, seed: &[u8]) -> Result<Self> {
        Self::open_with(dir.as_ref(), origin, seed, Io::default())
    }

    /// `open` with a fault injected into the store's file operations (tests).
    #[doc(hidden)]
    pub fn open_with_fault(dir: impl AsRef<Path>, origin: &str, seed: &[u8], fault: Arc<io::Fault>) -> Result<Self> {
        Self::open_with(dir.as_ref(), origin, seed, Io::with_fault(Some(fault)))
    }

    /// Install (or clear) a fault for the following operations (tests).
    #[doc(hidden)]
    pub fn set_fault(&mut self, fault: Option<Arc<io::Fault>>) {
        self.io = Io::with_fault(fault);
    }

    /// Rotate the write-ahead log past `limit` bytes instead of `WAL_LIMIT` (tests, benches).
    #[doc(hidden)]
    pub fn set_wal_limit(&mut self, limit: u64) {
        self.wal_limit = limit;
    }

    fn open_with(dir: &Path, origin: &str, seed: &[u8], io: Io) -> Result<Self> {
        let dir = dir.to_path_buf();
        durable::create_dir_private(&dir)?;
        // The private parts 0700 whatever the umask; `tile/` is public.
        for sub in ["index/run", OPEN_DIR, wal::WAL_DIR] {
            durable::create_dir_private(&dir.join(sub))?;
        }
        durable::create_dir_private(&dir.join("tile"))?;
        let signer = NoteSigner::from_seed(origin, seed)?;
        let verifier = signer.verifier();
        let lock = DirLock::acquire(&dir)?;
        durable::remove_temps(&dir)?;
        durable::remove_temps(&dir.join(wal::WAL_DIR))?;
        remove_opt(&dir.join(CHECKPOINT_TMP))?;
        remove_opt(&dir.join(RETENTION_TMP))?;
        match read_opt(&dir.join(FORMAT))? {
            Some(f) if f == FORMAT_V2 => {}
            Some(_) => return Err(damage(FORMAT, None, "unknown ledger format").into()),
            None => {
                if let Some(note) = read_opt(&dir.join(CHECKPOINT))? {
                    let cp = Checkpoint::open_signed(&note, &verifier, origin)
                        .map_err(|e| Error::Storage(format!("{}: {e}", dir.join(CHECKPOINT).display())))?;
                    if cp.size > 0 {
                        return Err(refuse_old_format(&dir, cp.size));
                    }
                }
                durable::write_atomic(&dir, FORMAT, FORMAT_V2, PUBLIC_MODE)?;
            }
        }
        let dir_for_merger = dir.clone();
        let empty = Checkpoint { origin: origin.to_string(), size: 0, root: merkle::empty_root(), extensions: vec![] };
        let note = signer.sign(&empty.body())?;
        let mut s = Store {
            dir,
            signer,
            verifier,
            io,
            size: 0,
            tails: vec![Vec::new(); 8],
            tail_bundle: Vec::new(),
            checkpoint: empty,
            checkpoint_note: note,
            tail_index: Vec::new(),
            history: Vec::new(),
            wal: None,
            wal_base: 0,
            wal_len: 0,
            wal_limit: WAL_LIMIT,
            min_index: 0,
            poisoned: None,
            cache: Mutex::new(HashMap::new()),
            tail_cache: Mutex::new(None),
            merger: Merger::start(&dir_for_merger),
            _lock: lock,
        };
        s.recover()?;
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

    /// The leaf hash of record `seq` as the tree holds it (level-0 tile or the right edge).
    pub(super) fn leaf_at(&self, seq: u64) -> Result<Hash> {
        merkle::NodeSource::node(self, 0, seq)
    }

    /// Bundle `b`'s entries, each checked against its leaf hash in the tree (and the bundle's
    /// record count), as `(path, data)`; readers never get a record the tree does not hold.
    fn checked_bundle(&self, b: u64) -> Result<(String, Vec<u8>)> {
        let (full, width) = level_tiles(self.size, 0);
        let (rel, data) = if b == full {
            (bundle_path(full, width), self.tail_bundle.clone())
        } else {
            let rel = bundle_path(b, TILE_WIDTH);
            let p = self.dir.join(&rel);
            match fs::read(&p) {
                Ok(d) => (rel, d),
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    return Err(damage(&rel, Some(b * TILE_WIDTH), "entry bundle is missing").into())
                }
                Err(e) => return Err(io_err(&p, e)),
            }
        };
        let want = if b == full { width } else { TILE_WIDTH };
        let entries = tiles::split_bundle(&data)
            .map_err(|off| Error::from(damage(&rel, Some(b * TILE_WIDTH), format!("bundle is malformed at byte {off}"))))?;
        if entries.len() as u64 != want {
            return Err(damage(&rel, Some(b * TILE_WIDTH + (entries.len() as u64).min(want.saturating_sub(1))),
                format!("bundle holds {} records, the tree {want}", entries.len())).into());
        }
        for (k, e) in entries.iter().enumerate() {
            let seq = b * TILE_WIDTH + k as u64;
            if leaf_hash(e) != self.leaf_at(seq)? {
                return Err(damage(&rel, Some(seq), "record does not match its leaf hash in the tree").into());
            }
        }
        Ok((rel, data))
    }

    /// The public leaf of record `seq` (checked against the tree); `None` when retention has
    /// dropped its body.
    pub fn entry(&self, seq: u64) -> Result<Option<Vec<u8>>> {
        if seq >= self.size {
            return Err(Error::NotFound(format!("record {seq} does not exist (ledger size {})", self.size)));
        }
        Ok(self.entries(seq, seq + 1)?.pop().expect("one"))
    }

    /// Public leaves `start..end` in order (each bundle read once and checked against the tree);
    /// `None` where retention dropped the body.
    pub fn entries(&self, start: u64, end: u64) -> Result<Vec<Option<Vec<u8>>>> {
        if start > end || end > self.size {
            return Err(Error::NotFound(format!("records {start}..{end} are not all in the ledger (size {})", self.size)));
        }
        let mut out = Vec::with_capacity((end - start) as usize);
        let mut seq = start;
        let (full, _) = level_tiles(self.size, 0);
        while seq < end {
            let b = seq / TILE_WIDTH;
            let stop = end.min((b + 1) * TILE_WIDTH);
            if b != full && stop <= self.min_index {
                out.extend((seq..stop).map(|_| None));
                seq = stop;
                continue;
            }
            let (_, data) = self.checked_bundle(b)?;
            let entries = tiles::split_bundle(&data).expect("checked");
            for k in seq..stop {
                out.push(if k < self.min_index { None } else { Some(entries[(k % TILE_WIDTH) as usize].to_vec()) });
            }
            seq = stop;
        }
        Ok(out)
    }

    /// The openings of records `start..end` (`None` where retired), from the open files.
    pub fn openings(&self, start: u64, end: u64) -> Result<Vec<Option<[u8; OPENING_LEN]>>> {
        if start > end || end > self.size {
            return Err(Error::NotFound(format!("records {start}..{end} are not all in the ledger (size {})", self.size)));
        }
        let mut out = Vec::with_capacity((end - start) as usize);
        let mut seq = start;
        while seq < end {
            let k = seq / SEGMENT;
            let stop = end.min((k + 1) * SEGMENT);
            if stop <= self.min_index {
                out.extend((seq..stop).map(|_| None));
                seq = stop;
                continue;
            }
            let rel = open_path(k);
            let p = self.dir.join(&rel);
            let f = File::open(&p).map_err(|e| io_err(&p, e))?;
            let mut buf = vec![0u8; ((stop - seq) as usize) * OPENING_LEN];
            f.read_exact_at(&mut buf, (seq % SEGMENT) * OPENING_LEN as u64).map_err(|e| match e.kind() {
                ErrorKind::UnexpectedEof => Error::from(damage(&rel, Some(seq), "openings file is short")),
                _ => io_err(&p, e),
            })?;
            for (i, c) in buf.chunks_exact(OPENING_LEN).enumerate() {
                let s = seq + i as u64;
                out.push(if s < self.min_index { None } else { Some(c.try_into().expect("48")) });
            }
            seq = stop;
        }
        Ok(out)
    }

    /// Records `start..end` opened (layout 1, with the pseudonym), each leaf checked against the
    /// tree and each opening against its leaf's commitment; `None` where retired.
    pub fn records(&self, start: u64, end: u64) -> Result<Vec<Option<Record>>> {
        let leaves = self.entries(start, end)?;
        let opens = self.openings(start, end)?;
        leaves
            .into_iter()
            .zip(opens)
            .enumerate()
            .map(|(i, (l, o))| match (l, o) {
                (Some(l), Some(o)) => record::open_leaf(&l, &o).map(Some).map_err(|e| {
                    let seq = start + i as u64;
                    damage(open_path(seq / SEGMENT), Some(seq), e.to_string()).into()
                }),
                _ => Ok(None),
            })
            .collect()
    }

    /// Record `seq` opened (see `records`).
    pub fn record(&self, seq: u64) -> Result<Option<Record>> {
        if seq >= self.size {
            return Err(Error::NotFound(format!("record {seq} does not exist (ledger size {})", self.size)));
        }
        Ok(self.records(seq, seq + 1)?.pop().expect("one"))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::record::{Outcome, Record};

    pub(super) fn rec(i: u64) -> Vec<u8> {
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
}
