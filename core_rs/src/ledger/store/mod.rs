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

mod commit;
mod history;
mod index;
mod proofs;
mod recovery;
mod retention;
mod verify;

use history::*;
use index::*;
use proofs::*;
use verify::*;

pub use history::HISTORY_SPACING;
pub use index::SEGMENT;
pub use verify::verify_dir;

const CHECKPOINT: &str = "checkpoint";
const CHECKPOINT_TMP: &str = "checkpoint.tmp";

const RETENTION: &str = "retention";
/// Left by versions that wrote `retention` under this fixed temporary name; removed on open.
const RETENTION_TMP: &str = "retention.tmp";
/// The ledger's files are public data (tlog-tiles readers fetch them); the directory is 0700.
/// Every file a service writes is 0600 (the checkpoint is public, but it is served over gRPC,
/// not read from this directory).
const PUBLIC_MODE: u32 = 0o600;

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
            durable::create_dir_private(&dir.join(sub))?;
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
        let index_file = durable::open_append_private(&index_path).map_err(|e| io_err(&index_path, e))?;
        let history_path = dir.join(HISTORY);
        let history_file = durable::open_append_private(&history_path).map_err(|e| io_err(&history_path, e))?;
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

    /// Every file the ledger writes is 0600 and every folder 0700, whatever the umask (the
    /// old `File::create` / `create_dir_all` gave 0644 / 0755 under the usual 022).
    #[test]
    fn files_are_private_whatever_the_umask() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ledger");
        let mut s = Store::open(&root, "renkei.test/ledger", &[4; 32]).unwrap();
        // Past a segment and a stored checkpoint: tiles, partial tiles, index runs, history.
        let recs: Vec<Vec<u8>> = (0..(SEGMENT + 300)).map(rec).collect();
        for chunk in recs.chunks(1000) {
            let refs: Vec<&[u8]> = chunk.iter().map(|r| r.as_slice()).collect();
            s.append(&refs).unwrap();
        }
        drop(s);
        let mut seen = 0;
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            assert_eq!(fs::metadata(&d).unwrap().mode() & 0o777, 0o700, "{}", d.display());
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600, "{}", p.display());
                    seen += 1;
                }
            }
        }
        assert!(seen > 5, "{seen} files");
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
