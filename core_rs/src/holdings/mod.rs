//! Holdings: which agency holds which person (acquired a code and not released it), and the
//! core's own person indices for J-LIS's person link ids (`links.rs`).
//!
//! In memory: one [`PersonSet`] per agency (compressed, see `set.rs`) and the link-id ↔ index
//! map. On disk, in one directory (one process at a time: `LOCK`, see `durable::DirLock`):
//!
//! * `journal.<gen>`: an append-only log of acquisitions, releases and person assignments,
//!   one checksummed record per call (`journal.rs`). A person index is assigned in the same
//!   record as the acquisition that first needs it. An operation returns only after its record
//!   is fsynced; concurrent callers share one fsync (group commit).
//! * `snapshot.bin`: the whole state (link ids by index, then the sets) as of the start of
//!   journal `<gen>` (a checkpoint), written atomically; older journals are then deleted.
//!
//! Opening loads the snapshot and replays the journals from its generation on. Only an
//! unacknowledged tail of the newest journal is dropped (the exact rule is in `journal.rs`);
//! anything else that does not check refuses to open with `Error::Storage` naming the file
//! (and byte offset): damage in an older journal, a journal missing from the generations the
//! snapshot and the other journals imply, a snapshot missing while journals of a later
//! generation exist, files in the earlier formats.
//!
//! A record is applied to memory in journal order under the journal lock and acknowledged only
//! once durable; in the fsync window another thread may already see it (see ARCHITECTURE).

pub mod dense;
pub mod index;
pub mod journal;
pub mod links;
pub mod repair;
pub mod set;
pub mod snapshot;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard};

pub use links::{LinkId, PersonLinks};
pub use set::PersonSet;

use crate::durable::{self, fsync_dir, DirLock};
use crate::error::{Error, Result};
use journal::{Change, Record};
pub use journal::{Groups, Op};
pub use index::HoldingsIndex;
use rustc_hash::FxHashMap;

/// The in-memory holdings of every agency.
#[derive(Default, Clone)]
pub struct Holdings {
    agencies: BTreeMap<u32, PersonSet>,
    dense: dense::DenseRows,
    links: PersonLinks,
}

impl Holdings {
    #[inline(always)]
    pub fn holds(&self, agency: u32, person: u32) -> bool {
        self.agencies.get(&agency).is_some_and(|s| s.contains(person))
    }

    pub fn set(&self, agency: u32) -> Option<&PersonSet> {
        self.agencies.get(&agency)
    }

    pub fn count(&self, agency: u32) -> u64 {
        self.agencies.get(&agency).map_or(0, |s| s.len())
    }

    /// (agency, number of persons held), ascending by agency, agencies holding nobody omitted.
    pub fn counts(&self) -> Vec<(u32, u64)> {
        self.agencies.iter().filter(|(_, s)| !s.is_empty()).map(|(&a, s)| (a, s.len())).collect()
    }

    pub fn total(&self) -> u64 {
        self.agencies.values().map(|s| s.len()).sum()
    }

    /// The agencies holding `person`, ascending.
    pub fn holders_of(&self, person: u32) -> Vec<u32> {
        self.agencies.iter().filter(|(_, s)| s.contains(person)).map(|(&a, _)| a).collect()
    }

    pub fn heap_bytes(&self) -> usize {
        self.agencies.values().map(|s| s.heap_bytes()).sum::<usize>() + self.dense.heap_bytes() + self.links.heap_bytes()
    }

    /// The person index assigned to `link`, if any.
    pub fn person_of_link(&self, link: &LinkId) -> Option<u32> {
        self.links.get(link)
    }

    /// The link id of person index `person`, if one is assigned.
    pub fn link_of(&self, person: u32) -> Option<LinkId> {
        self.links.link(person).copied()
    }

    /// Person indices assigned so far (they are `0..person_count`).
    pub fn person_count(&self) -> u64 {
        self.links.len() as u64
    }

    pub(crate) fn links(&self) -> &PersonLinks {
        &self.links
    }

    /// The person index of each link id, the link ids seen for the first time getting the next
    /// indices in order of first appearance (not assigned here: `assign_links` does that once
    /// the assignment is durable). Returns the indices and the new link ids, in index order.
    pub fn resolve_links(&self, links: &[LinkId]) -> Result<(Vec<u32>, Vec<LinkId>)> {
        let mut persons = vec![links::NONE; links.len()];
        self.links.get_batch(links, &mut persons);
        let first_new = self.links.len();
        let mut new_links: Vec<LinkId> = Vec::new();
        let mut fresh: FxHashMap<LinkId, u32> = FxHashMap::default();
        for (link, p) in links.iter().zip(persons.iter_mut()) {
            if *p == links::NONE {
                *p = *fresh.entry(*link).or_insert_with(|| {
                    new_links.push(*link);
                    (first_new + new_links.len() - 1) as u32
                });
            }
        }
        if !new_links.is_empty() {
            if (first_new + new_links.len()) as u64 > links::MAX_PERSONS {
                return Err(Error::InvalidArgument("the person index space (2^32 - 1 persons) is exhausted".into()));
            }
            if first_new == 0 && self.total() > 0 {
                return Err(Error::InvalidArgument(
                    "this holdings store holds persons by raw person id; person link ids cannot be mixed in".into(),
                ));
            }
        }
        Ok((persons, new_links))
    }

    /// Assign indices `first..` to `links` (the next ones: `first` must be `person_count`).
    /// Every link id must be new and distinct; otherwise nothing is assigned.
    pub fn assign_links(&mut self, first: u64, links: &[LinkId]) -> Result<()> {
        if links.is_empty() {
            return Ok(());
        }
        if first != self.links.len() as u64 {
            return Err(Error::InvalidArgument(format!(
                "assigns person indices from {first}, but {} are assigned",
                self.links.len()
            )));
        }
        self.links
            .extend(links)
            .map_err(|k| Error::InvalidArgument(format!("new person {k} has a link id that already has an index")))
    }

    /// Of `groups`, only what `op` changes (see [`effective`]).
    pub fn effective(&self, op: Op, groups: Groups) -> Groups {
        effective(self, op, groups)
    }

    /// Apply one journal record: assign its new persons, then change the holdings. A record
    /// that contradicts the state (indices out of order, a link id assigned twice) is refused
    /// with the reason, and nothing of it is applied.
    fn apply(&mut self, change: &Change) -> std::result::Result<u64, String> {
        if !change.new_links.is_empty() {
            if change.first_new as usize != self.links.len() {
                return Err(format!(
                    "assigns person indices from {}, but {} are assigned",
                    change.first_new,
                    self.links.len()
                ));
            }
            self.links
                .extend(&change.new_links)
                .map_err(|k| format!("new person {k} of the record has a link id that already has an index"))?;
        }
        Ok(self.apply_groups(change.op, &change.groups))
    }

    /// Apply `op` to each agency's persons; returns how many holdings changed.
    pub fn apply_groups(&mut self, op: Op, groups: &[(u32, Vec<u32>)]) -> u64 {
        let mut changed = 0;
        for (agency, persons) in groups {
            let column = self.dense.column(*agency);
            match op {
                Op::Acquire => {
                    let set = self.agencies.entry(*agency).or_default();
                    changed += set.extend_from(persons);
                    match column {
                        Some(c) => persons.iter().for_each(|&p| self.dense.set(c, p)),
                        None if set.is_flat() && self.dense.has_room() => self.dense.add_column(*agency, set),
                        None => {}
                    }
                }
                Op::Assign => {}
                Op::Release => {
                    if let Some(set) = self.agencies.get_mut(agency) {
                        changed += persons.iter().map(|&p| set.remove(p) as u64).sum::<u64>();
                    }
                    if let Some(c) = column {
                        persons.iter().for_each(|&p| self.dense.clear(c, p));
                    }
                }
            }
        }
        changed
    }

    /// After a load: give the largest flat agencies their dense columns.
    pub(crate) fn assign_dense(&mut self) {
        let mut flat: Vec<(u64, u32)> =
            self.agencies.iter().filter(|(_, s)| s.is_flat()).map(|(&a, s)| (s.len(), a)).collect();
        flat.sort_unstable_by(|x, y| y.cmp(x));
        for (_, a) in flat.into_iter().take(dense::MAX_COLUMNS) {
            if self.dense.has_room() && self.dense.column(a).is_none() {
                self.dense.add_column(a, &self.agencies[&a]);
            }
        }
    }

    /// Rows and mask when both agencies have dense columns (one memory access per test).
    pub fn dense_pair(&self, a: u32, b: u32) -> Option<(&[u8], u8)> {
        self.dense.pair(a, b)
    }

    pub(crate) fn agencies(&self) -> &BTreeMap<u32, PersonSet> {
        &self.agencies
    }

    pub(crate) fn agencies_mut(&mut self) -> &mut BTreeMap<u32, PersonSet> {
        &mut self.agencies
    }
}

struct LogState {
    file: Arc<File>,
    generation: u64,
    /// Bytes in the current journal file.
    bytes: u64,
    /// Sequence number of the last record written.
    appended: u64,
    /// Sequence number of the last record known durable.
    durable: u64,
    syncing: bool,
    /// Set when an fsync failed: the page cache can no longer be trusted to reach the disk, so
    /// the store refuses everything until it is reopened (and replays what really is on disk).
    failed: Option<String>,
    /// Set by `close`: the directory lock is released, so nothing may be written any more.
    closed: bool,
}

impl LogState {
    /// Whether a change may be written now.
    fn writable(&self) -> Result<()> {
        if self.closed {
            return Err(Error::Storage("the holdings store is closed".into()));
        }
        if let Some(e) = &self.failed {
            return Err(Error::Storage(format!("holdings journal unusable after an earlier failure: {e}")));
        }
        Ok(())
    }
}

/// What opening found on disk.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    pub snapshot_loaded: bool,
    pub records_replayed: u64,
    pub torn_bytes_dropped: u64,
}

/// The durable holdings store.
pub struct HoldingsStore {
    dir: PathBuf,
    holdings: RwLock<Holdings>,
    log: Mutex<LogState>,
    synced: Condvar,
    /// Checkpoint automatically once the journal grows past this many bytes.
    checkpoint_bytes: u64,
    report: OpenReport,
    /// The directory's writer lock (`LOCK`), held from open until drop or `close`.
    lock: Mutex<DirLock>,
}

fn storage(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Storage(format!("{what} {}: {e}", path.display()))
}

fn journal_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("journal.{generation:020}"))
}

fn journals(dir: &Path) -> Result<Vec<u64>> {
    let mut gens = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| storage("cannot list", dir, e))? {
        let entry = entry.map_err(|e| storage("cannot list", dir, e))?;
        let name = entry.file_name();
        if let Some(g) = name.to_str().and_then(|n| n.strip_prefix("journal.")).and_then(|g| g.parse::<u64>().ok()) {
            gens.push(g);
        }
    }
    gens.sort_unstable();
    Ok(gens)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the state half-updated in a way the journal
    // does not describe, so keep going rather than poisoning every later call.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub const DEFAULT_CHECKPOINT_BYTES: u64 = 1 << 30;

/// Only what changes: re-acquiring held persons or releasing unheld ones costs no disk.
fn effective(h: &Holdings, op: Op, groups: Groups) -> Groups {
    groups
        .into_iter()
        .map(|(a, ps)| {
            let keep: Vec<u32> = match (op, h.set(a)) {
                (Op::Acquire, Some(s)) => ps.into_iter().filter(|&p| !s.contains(p)).collect(),
                (Op::Acquire, None) => ps,
                (Op::Release, Some(s)) => ps.into_iter().filter(|&p| s.contains(p)).collect(),
                (Op::Release, None) | (Op::Assign, _) => Vec::new(),
            };
            (a, keep)
        })
        .filter(|(_, ps)| !ps.is_empty())
        .collect()
}

/// Whether `dir` holds a store: a snapshot or at least one journal.
fn has_store(dir: &Path) -> Result<bool> {
    Ok(dir.join(snapshot::FILE).exists() || !journals(dir)?.is_empty())
}

/// The state a holdings directory opens to.
struct Loaded {
    holdings: Holdings,
    /// The snapshot's generation (1 without a snapshot): journals before it are obsolete.
    generation: u64,
    last_seq: u64,
    /// The newest journal's generation.
    newest: u64,
    report: OpenReport,
}

/// Load the snapshot and replay the journals from its generation on (see the module
/// documentation for what is refused). `cut`: truncate the newest journal's torn tail (open);
/// without it nothing is modified (verify).
fn load(dir: &Path, cut: bool) -> Result<Loaded> {
    let mut report = OpenReport::default();
    let snapshot_path = dir.join(snapshot::FILE);
    let snap = snapshot::read(&snapshot_path)?;
    let gens = journals(dir)?;
    let (mut holdings, generation, mut last_seq) = match snap {
        Some(s) => {
            report.snapshot_loaded = true;
            (s.holdings, s.generation, s.last_seq)
        }
        None => {
            // Generation 1 is the first journal; a later one exists only after a checkpoint
            // wrote a snapshot, so without the snapshot its state is unknown.
            if let Some(&g) = gens.first().filter(|&&g| g > 1) {
                return Err(Error::Storage(format!(
                    "holdings snapshot {} is missing, but {} exists (generation {g}), which starts from a snapshot",
                    snapshot_path.display(),
                    journal_path(dir, g).display()
                )));
            }
            (Holdings::default(), 1, 0)
        }
    };
    let live: Vec<u64> = gens.into_iter().filter(|&g| g >= generation).collect();
    // The journals from the snapshot's generation on, without gaps: each was created (and
    // its directory entry fsynced) before anything that refers to it was written.
    for (expect, &g) in (generation..).zip(live.iter()) {
        if g != expect {
            return Err(Error::Storage(format!(
                "holdings journal {} is missing (generation {expect}; {} follows it)",
                journal_path(dir, expect).display(),
                journal_path(dir, g).display()
            )));
        }
    }
    if report.snapshot_loaded && live.is_empty() {
        return Err(Error::Storage(format!(
            "holdings journal {} is missing (the snapshot {} continues in it)",
            journal_path(dir, generation).display(),
            snapshot_path.display()
        )));
    }
    let newest = live.last().copied().unwrap_or(generation);
    for &g in &live {
        let path = journal_path(dir, g);
        let r = journal::replay(&path, g == newest, cut, |rec: Record| {
            if rec.seq <= last_seq {
                return Err(format!("repeats sequence {} (expected > {last_seq})", rec.seq));
            }
            last_seq = rec.seq;
            holdings.apply(&rec.change).map(|_| ())
        })?;
        report.records_replayed += r.records;
        report.torn_bytes_dropped += r.torn_bytes;
    }
    Ok(Loaded { holdings, generation, last_seq, newest, report })
}

/// What [`verify`] found: the state the directory opens to.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub open: OpenReport,
    pub persons: u64,
    pub holdings: u64,
    pub agencies: u64,
}

/// Check a holdings directory without changing it (no lock taken, nothing truncated: it
/// may run while the core serves, when a tail being appended is counted as torn). Damage is
/// the same `Error::Storage` opening would give, naming file and offset.
pub fn verify(dir: impl AsRef<Path>) -> Result<VerifyReport> {
    let dir = dir.as_ref();
    if !dir.is_dir() || !has_store(dir)? {
        return Err(Error::Storage(format!("holdings store {} is missing or empty", dir.display())));
    }
    let l = load(dir, false)?;
    Ok(VerifyReport {
        persons: l.holdings.person_count(),
        holdings: l.holdings.total(),
        agencies: l.holdings.counts().len() as u64,
        open: l.report,
    })
}

impl HoldingsStore {
    /// Open the existing store in `dir`. A missing directory, or one with neither a snapshot
    /// nor a journal (emptied, or never created), is refused naming the path: starting empty
    /// would let person indices — and with them agency codes and record pseudonyms — pass to
    /// other persons. Only [`HoldingsStore::create`] (`renkei core init`) makes a new store.
    pub fn open(dir: impl AsRef<Path>, checkpoint_bytes: u64) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(Error::Storage(format!(
                "holdings store {} does not exist: `renkei core init` creates it; restore it from a backup",
                dir.display()
            )));
        }
        if !has_store(dir)? {
            return Err(Error::Storage(format!(
                "holdings store {} is empty (no {} and no journal.*): it was emptied or never created. \
                 Restore it from a backup (see `renkei core holdings repair` in docs/arch/codes.md); \
                 starting empty would give existing person indices to other persons",
                dir.display(),
                snapshot::FILE
            )));
        }
        Self::open_dir(dir, checkpoint_bytes)
    }

    /// Open the store in `dir`, or make a new, empty one if `dir` is missing or holds no store.
    pub fn create(dir: impl AsRef<Path>, checkpoint_bytes: u64) -> Result<Self> {
        Self::open_dir(dir.as_ref(), checkpoint_bytes)
    }

    fn open_dir(dir: &Path, checkpoint_bytes: u64) -> Result<Self> {
        let dir = dir.to_path_buf();
        durable::create_dir_private(&dir)?;
        // One process owns the journal: a second writer would interleave records.
        let lock = DirLock::acquire(&dir)?;
        // A snapshot cut short by a crash before its rename is garbage; the old one stands.
        durable::remove_temps(&dir)?;
        let Loaded { holdings, generation, last_seq, newest, report } = load(&dir, true)?;
        for g in journals(&dir)?.into_iter().filter(|&g| g < generation) {
            let p = journal_path(&dir, g);
            fs::remove_file(&p).map_err(|e| storage("cannot remove old journal", &p, e))?;
        }
        let path = journal_path(&dir, newest);
        let file = durable::open_append_private(&path).map_err(|e| storage("cannot open journal", &path, e))?;
        let bytes = file.metadata().map_err(|e| storage("cannot stat", &path, e))?.len();
        durable::fault(durable::IoOp::Fsync, &path)
            .and_then(|_| file.sync_all())
            .map_err(|e| storage("cannot fsync", &path, e))?;
        fsync_dir(&dir)?;
        Ok(HoldingsStore {
            dir,
            holdings: RwLock::new(holdings),
            log: Mutex::new(LogState {
                file: Arc::new(file),
                generation: newest,
                bytes,
                appended: last_seq,
                durable: last_seq,
                syncing: false,
                failed: None,
                closed: false,
            }),
            synced: Condvar::new(),
            checkpoint_bytes,
            report,
            lock: Mutex::new(lock),
        })
    }

    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// Read access to the holdings (many readers at once).
    pub fn read(&self) -> RwLockReadGuard<'_, Holdings> {
        self.holdings.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Record that each agency holds the given persons; returns how many holdings are new.
    /// Returns once the change is durable.
    pub fn acquire(&self, groups: Groups) -> Result<u64> {
        self.change(Op::Acquire, groups)
    }

    /// Remove holdings; returns how many were removed. Returns once the change is durable.
    pub fn release(&self, groups: Groups) -> Result<u64> {
        self.change(Op::Release, groups)
    }

    fn change(&self, op: Op, groups: Groups) -> Result<u64> {
        let st = lock(&self.log);
        st.writable()?;
        let change = {
            let h = self.read();
            let assigned = h.links.len();
            if op == Op::Acquire && assigned > 0 {
                // Once persons come from link ids, an index must have been assigned to be held.
                if let Some(p) = groups.iter().flat_map(|(_, ps)| ps).find(|&&p| p as usize >= assigned) {
                    return Err(Error::InvalidArgument(format!(
                        "person index {p} is not assigned (this store assigns persons from link ids; {assigned} so far)"
                    )));
                }
            }
            Change { op, first_new: assigned as u32, new_links: Vec::new(), groups: effective(&h, op, groups) }
        };
        self.commit(st, change)
    }

    /// Resolve each link id to its person index, assigning the next indices (durably) to link
    /// ids seen for the first time, in order of first appearance; then record the holdings
    /// `groups_of(persons)` gives, in the same journal record (one fsync for both). Returns the
    /// person index of each link and the number of new holdings, once durable.
    pub fn acquire_links(&self, links: &[LinkId], groups_of: impl FnOnce(&[u32]) -> Groups) -> Result<(Vec<u32>, u64)> {
        let st = lock(&self.log);
        st.writable()?;
        let (persons, change) = {
            let h = self.read();
            let first_new = h.person_count() as u32;
            let (persons, new_links) = h.resolve_links(links)?;
            let groups = effective(&h, Op::Acquire, groups_of(&persons));
            let op = if groups.is_empty() { Op::Assign } else { Op::Acquire };
            (persons, Change { op, first_new, new_links, groups })
        };
        let new = self.commit(st, change)?;
        Ok((persons, new))
    }

    /// The person index of each link id (`None`: never seen); with `assign`, link ids seen for
    /// the first time get the next indices, durably, before this returns.
    pub fn persons_of_links(&self, links: &[LinkId], assign: bool) -> Result<Vec<Option<u32>>> {
        if assign {
            let (persons, _) = self.acquire_links(links, |_| Vec::new())?;
            return Ok(persons.into_iter().map(Some).collect());
        }
        let mut found = vec![links::NONE; links.len()];
        self.read().links.get_batch(links, &mut found);
        let out: Vec<Option<u32>> = found.into_iter().map(|p| (p != links::NONE).then_some(p)).collect();
        if out.iter().any(Option::is_some) {
            // An index seen in memory may still be in the fsync window: durable before use.
            let st = lock(&self.log);
            let seq = st.appended;
            self.wait_durable(st, seq)?;
        }
        Ok(out)
    }

    /// Write `change` to the journal, apply it, and return once it is durable. Nothing to
    /// write still waits until what the caller saw is durable.
    fn commit<'a>(&'a self, mut st: MutexGuard<'a, LogState>, change: Change) -> Result<u64> {
        if change.groups.is_empty() && change.new_links.is_empty() {
            let seq = st.appended;
            return self.wait_durable(st, seq).map(|_| 0);
        }
        let seq = st.appended + 1;
        let bytes = journal::encode(seq, &change)?;
        let path = journal_path(&self.dir, st.generation);
        if let Err(e) = journal::append(&st.file, &path, &bytes) {
            // Cut back a partial write so the next record starts on a record boundary.
            let cut = durable::fault(durable::IoOp::Truncate, &path).and_then(|_| st.file.set_len(st.bytes));
            let msg = format!("cannot append to the holdings journal {}: {e}", path.display());
            if cut.is_err() {
                st.failed = Some(msg.clone());
            }
            return Err(Error::Storage(msg));
        }
        st.bytes += bytes.len() as u64;
        st.appended = seq;
        let applied = {
            let mut h = self.holdings.write().unwrap_or_else(|e| e.into_inner());
            h.apply(&change)
        };
        let changed = match applied {
            Ok(n) => n,
            Err(why) => {
                // Checked before writing, so unreachable short of a bug; the journal now holds a
                // record memory does not reflect, so stop writing until a reopen replays it.
                let msg = format!("a journal record could not be applied: {why}");
                st.failed = Some(msg.clone());
                return Err(Error::Storage(msg));
            }
        };
        let big = st.bytes > self.checkpoint_bytes;
        self.wait_durable(st, seq)?;
        if big {
            // This change is durable already; a failed checkpoint loses nothing (the journal
            // still holds everything) and is retried by the next change, so it must not turn
            // an acknowledged change into an error. A failed fsync inside it poisons the store.
            let _ = self.checkpoint();
        }
        Ok(changed)
    }

    fn wait_durable<'a>(&'a self, mut st: MutexGuard<'a, LogState>, seq: u64) -> Result<()> {
        loop {
            if let Some(e) = &st.failed {
                return Err(Error::Storage(format!("holdings journal fsync failed: {e}")));
            }
            if st.durable >= seq {
                return Ok(());
            }
            if st.syncing {
                st = self.synced.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            // Become the syncer for everything appended so far (group commit).
            st.syncing = true;
            let target = st.appended;
            let file = Arc::clone(&st.file);
            let path = journal_path(&self.dir, st.generation);
            drop(st);
            let result = durable::fault(durable::IoOp::Fsync, &path).and_then(|_| file.sync_data());
            st = lock(&self.log);
            st.syncing = false;
            match result {
                Ok(()) => st.durable = st.durable.max(target),
                Err(e) => st.failed = Some(format!("{}: {e}", path.display())),
            }
            self.synced.notify_all();
        }
    }

    /// Write a snapshot of the whole state and start a fresh journal. Blocks changes (not
    /// reads) while it runs.
    ///
    /// Every failure leaves a state that opens to the same holdings: the next journal is
    /// created (and its directory entry fsynced) before the snapshot, and appends move on to
    /// it whenever it exists, so the journals from any snapshot's generation on are complete.
    /// An fsync failure (file or directory) poisons the store until it is reopened.
    pub fn checkpoint(&self) -> Result<()> {
        let mut st = lock(&self.log);
        while st.syncing {
            st = self.synced.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.writable()?;
        let current = journal_path(&self.dir, st.generation);
        if let Err(e) = durable::fault(durable::IoOp::Fsync, &current).and_then(|_| st.file.sync_data()) {
            let msg = format!("{}: {e}", current.display());
            st.failed = Some(msg.clone());
            return Err(Error::Storage(format!("holdings journal fsync failed: {msg}")));
        }
        st.durable = st.appended;
        let next = st.generation + 1;
        let next_path = journal_path(&self.dir, next);
        // Append mode: after a failed write is cut back, the next record lands at the new end.
        let file = durable::open_append_private(&next_path).map_err(|e| storage("cannot create journal", &next_path, e))?;
        if let Err(e) = fsync_dir(&self.dir) {
            // Whether the new journal's entry is durable is unknown: stop until reopened
            // (opening finds journals up to this one, all complete).
            st.failed = Some(e.to_string());
            return Err(e);
        }
        let written = {
            let h = self.read();
            snapshot::write(&self.dir, &h, next, st.appended)
        };
        // From here on appends go to the next journal, whether the snapshot was written or not:
        // without it the old snapshot and the journals since still hold everything.
        let old = std::mem::replace(&mut st.file, Arc::new(file));
        drop(old);
        let previous = journal_path(&self.dir, st.generation);
        st.generation = next;
        st.bytes = 0;
        if let Err(e) = written {
            if e.renamed {
                st.failed = Some(e.error.to_string());
            }
            return Err(e.error);
        }
        // The snapshot covers the old journal now; a crash before this unlink is harmless
        // (open deletes journals older than the snapshot).
        durable::fault(durable::IoOp::Remove, &previous)
            .and_then(|_| fs::remove_file(&previous))
            .map_err(|e| storage("cannot remove journal", &previous, e))?;
        if let Err(e) = fsync_dir(&self.dir) {
            st.failed = Some(e.to_string());
            return Err(e);
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Release the directory lock (another process may open the store from now on); every
    /// later change is refused. Everything acknowledged is durable already. Idempotent.
    pub fn close(&self) {
        let mut st = lock(&self.log);
        while st.syncing {
            st = self.synced.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.closed = true;
        lock(&self.lock).release();
    }
}

#[cfg(test)]
mod tests;
