//! Repairing a damaged holdings directory: every record that can be read is kept.
//!
//! Opening refuses damage (naming file and offset) because guessing would be worse: a dropped
//! acknowledged record loses holdings, and a lost person assignment would let the next person
//! take that index — and with it another person's agency codes and record pseudonyms. Repair
//! is the operator's deliberate step (`renkei core holdings repair`, the core stopped):
//!
//! 1. The snapshot is loaded if it checks; otherwise its holdings are lost (reported).
//! 2. Every journal is read with [`journal::salvage`]: every record whose checksums hold, in
//!    order; the stretches between them that do not read are reported by file and offset. A
//!    torn tail of the newest journal (never acknowledged) is dropped as opening would.
//! 3. Records are applied in sequence order. A person index whose assigning record was lost
//!    is **reserved** (a placeholder that no link id can equal), never given to someone else:
//!    every record says how many persons were assigned before it, so gaps are exact; after a
//!    damaged stretch that no readable record follows, as many indices are reserved as that
//!    stretch could have assigned (16 bytes a person). Holdings in lost records are lost; the
//!    agency acquires those codes again (codes are deterministic).
//! 4. Unless it is a dry run: the original files are hard-linked into `damaged-<stamp>/` (kept,
//!    never deleted), a new journal generation is created, the salvaged state is written as the
//!    new `snapshot.bin` (atomically: a crash before this leaves the directory as it was), and
//!    the old journals are unlinked from the directory (their links in `damaged-<stamp>/` stay).
//!
//! If nothing readable tells how many persons were assigned (no snapshot and no readable
//! record, e.g. an emptied directory), repair refuses: only a backup can help then.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::journal::{self, Change, Damaged, Record};
use super::links::LinkId;
use super::{journal_path, journals, snapshot, Holdings};
use crate::durable::{self, fsync_dir, DirLock};
use crate::error::{Error, Result};

/// A record that reads but cannot be applied (it contradicts what was salvaged before it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub file: PathBuf,
    pub offset: u64,
    pub why: String,
}

/// What one journal gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalReport {
    pub file: PathBuf,
    pub records: u64,
    pub damaged: Vec<Damaged>,
    pub torn_tail: u64,
}

#[derive(Debug, Clone, Default)]
pub struct RepairReport {
    /// `None`: loaded; `Some(why)`: missing or damaged (its holdings are lost).
    pub snapshot_problem: Option<String>,
    pub journals: Vec<JournalReport>,
    pub records_salvaged: u64,
    pub skipped: Vec<Skipped>,
    pub persons: u64,
    /// Person indices reserved because the record that assigned them is lost.
    pub persons_reserved: u64,
    pub holdings: u64,
    /// Whether anything was damaged (false: the directory opens as it is; nothing written).
    pub needed: bool,
    /// Where the original files were kept (`None` on a dry run or when nothing was needed).
    pub kept_in: Option<PathBuf>,
    /// The generation of the new snapshot and journal.
    pub generation: u64,
}

/// The placeholder link id of a person index whose link id is lost: unique per index, its
/// first 8 bytes spread like a real link id's (they choose the hash slot), and no HMAC output
/// equals it but with probability 2^-128.
pub fn reserved_link(index: u32) -> LinkId {
    let h = Sha256::digest([b"renkei-lost-person-v1\0".as_slice(), &index.to_le_bytes()].concat());
    let mut l = [0u8; 16];
    l[..8].copy_from_slice(&h[..8]);
    l[8..12].copy_from_slice(&index.to_le_bytes());
    l[12..].copy_from_slice(b"LOST");
    l
}

struct Salvage {
    h: Holdings,
    reserved: u64,
    /// The store names persons by link id (else by raw person id: tests and benchmarks).
    linked: bool,
}

impl Salvage {
    fn reserve_to(&mut self, count: usize) {
        let from = self.h.links.len();
        if self.linked && count > from {
            let placeholders: Vec<LinkId> = (from..count).map(|i| reserved_link(i as u32)).collect();
            self.h.links.extend(&placeholders).expect("placeholders are unique per index");
            self.reserved += (count - from) as u64;
        }
    }

    /// Apply a record that checks; `Err` when it contradicts the state (nothing applied).
    fn apply(&mut self, c: &Change) -> std::result::Result<(), String> {
        let first = c.first_new as usize;
        let have = self.h.links.len();
        // Indices the record assigns that are already assigned must name the same link ids.
        for (j, link) in c.new_links.iter().enumerate() {
            let idx = first + j;
            if idx < have {
                if self.h.links.link(idx as u32) != Some(link) {
                    return Err(format!("assigns person index {idx}, which holds another link id"));
                }
            } else if let Some(other) = self.h.links.get(link) {
                if other as usize != idx {
                    return Err(format!("new person {idx} has a link id that already has index {other}"));
                }
            }
        }
        self.reserve_to(first);
        let fresh: Vec<LinkId> = c.new_links.iter().skip(self.h.links.len().saturating_sub(first)).copied().collect();
        if !fresh.is_empty() {
            self.h.links.extend(&fresh).map_err(|k| format!("new person {k} of the record has a link id that already has an index"))?;
        }
        if let Some(max) = c.groups.iter().flat_map(|(_, ps)| ps).max() {
            self.reserve_to(*max as usize + 1);
        }
        self.h.apply_groups(c.op, &c.groups);
        Ok(())
    }
}

/// Salvage every readable record of the holdings in `dir` (see the module documentation).
/// `dry_run`: report only, change nothing. `stamp` names the folder the originals are kept
/// in (`damaged-<stamp>`). Takes the directory lock: the core must be stopped.
pub fn repair(dir: impl AsRef<Path>, dry_run: bool, stamp: &str) -> Result<RepairReport> {
    let dir = dir.as_ref();
    if !dir.is_dir() {
        return Err(Error::Storage(format!("holdings store {} does not exist", dir.display())));
    }
    if stamp.is_empty() || !stamp.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(Error::InvalidArgument("the repair stamp must be letters, digits, '-' or '_'".into()));
    }
    if !super::has_store(dir)? {
        return Err(Error::Storage(format!(
            "holdings store {} is empty: nothing readable tells how many persons were assigned; \
             restore holdings/ from a backup",
            dir.display()
        )));
    }
    let mut lock = DirLock::acquire(dir)?;
    let mut report = RepairReport::default();
    let snapshot_path = dir.join(snapshot::FILE);
    let (snap, snap_gen) = match snapshot::read(&snapshot_path) {
        Ok(Some(s)) => {
            let g = s.generation;
            (Some(s), g)
        }
        Ok(None) => (None, 0),
        Err(e) => {
            report.snapshot_problem = Some(e.to_string());
            (None, 0)
        }
    };
    let gens = journals(dir)?;
    if snap.is_none() && gens.first().is_some_and(|&g| g > 1) && report.snapshot_problem.is_none() {
        report.snapshot_problem = Some(format!("holdings snapshot {} is missing", snapshot_path.display()));
    }
    let live: Vec<u64> = gens.iter().copied().filter(|&g| g >= snap_gen).collect();
    let newest = live.last().copied();
    let mut salvaged: Vec<(PathBuf, Vec<(u64, Record)>)> = Vec::new();
    // Every record says how many persons were assigned before it; only after a damaged
    // stretch that no readable record follows is the count unknown, and then bounded by what
    // that stretch could hold (16 bytes a person).
    let mut unbounded_tail = 0u64;
    for &g in &live {
        let path = journal_path(dir, g);
        let s = journal::salvage(&path, Some(g) == newest)?;
        let mut events: Vec<(u64, Option<u64>)> = s.records.iter().map(|(o, _)| (*o, None)).collect();
        events.extend(s.damaged.iter().map(|d| (d.offset, Some(d.bytes))));
        events.sort_unstable();
        for (_, damaged) in events {
            unbounded_tail = match damaged {
                Some(bytes) => unbounded_tail + bytes.div_ceil(16),
                None => 0,
            };
        }
        report.journals.push(JournalReport {
            file: path.clone(),
            records: s.records.len() as u64,
            damaged: s.damaged.clone(),
            torn_tail: s.torn_tail,
        });
        salvaged.push((path, s.records));
    }
    let gap = live.windows(2).any(|w| w[1] != w[0] + 1)
        || (snap.is_some() && live.first() != Some(&snap_gen))
        || (snap.is_none() && live.first().is_some_and(|&g| g > 1));
    let linked = snap.as_ref().is_some_and(|s| s.holdings.person_count() > 0)
        || salvaged.iter().flat_map(|(_, r)| r).any(|(_, r)| !r.change.new_links.is_empty());
    let (holdings, mut last_seq) = match snap {
        Some(s) => (s.holdings, s.last_seq),
        None => (Holdings::default(), 0),
    };
    let known_start = report.snapshot_problem.is_none() && !gap;
    let any_record = salvaged.iter().any(|(_, r)| !r.is_empty());
    if !known_start && !any_record {
        lock.release();
        return Err(Error::Storage(format!(
            "holdings store {}: nothing readable tells how many persons were assigned (no usable snapshot, \
             no readable journal record); restore holdings/ from a backup",
            dir.display()
        )));
    }
    let mut sv = Salvage { h: holdings, reserved: 0, linked };
    for (path, records) in &salvaged {
        for (offset, rec) in records {
            if rec.seq <= last_seq {
                report.skipped.push(Skipped {
                    file: path.clone(),
                    offset: *offset,
                    why: format!("repeats sequence {} (expected > {last_seq})", rec.seq),
                });
                continue;
            }
            match sv.apply(&rec.change) {
                Ok(()) => {
                    last_seq = rec.seq;
                    report.records_salvaged += 1;
                }
                Err(why) => report.skipped.push(Skipped { file: path.clone(), offset: *offset, why }),
            }
        }
    }
    let count = sv.h.links.len() as u64;
    sv.reserve_to((count + unbounded_tail).min(super::links::MAX_PERSONS) as usize);
    report.persons_reserved = sv.reserved;
    report.persons = sv.h.person_count();
    report.holdings = sv.h.total();
    report.needed = report.snapshot_problem.is_some()
        || gap
        || !report.skipped.is_empty()
        || report.journals.iter().any(|j| !j.damaged.is_empty());
    let max_gen = gens.iter().copied().max().unwrap_or(0).max(snap_gen);
    report.generation = max_gen + 1;
    if dry_run || !report.needed {
        return Ok(report);
    }
    sv.h.assign_dense();
    // Keep every original: hard links into damaged-<stamp>/, before anything changes.
    let aside = dir.join(format!("damaged-{stamp}"));
    if aside.exists() {
        return Err(Error::Storage(format!("{} exists already; choose another stamp", aside.display())));
    }
    durable::create_dir_private(&aside)?;
    let mut originals: Vec<PathBuf> = gens.iter().map(|&g| journal_path(dir, g)).collect();
    if snapshot_path.exists() {
        originals.push(snapshot_path.clone());
    }
    for p in &originals {
        let name = p.file_name().expect("store files have names");
        fs::hard_link(p, aside.join(name)).map_err(|e| Error::Storage(format!("cannot keep {}: {e}", p.display())))?;
    }
    fsync_dir(&aside)?;
    let next = journal_path(dir, report.generation);
    durable::create_private(&next).map_err(|e| Error::Storage(format!("cannot create journal {}: {e}", next.display())))?;
    fsync_dir(dir)?;
    snapshot::write(dir, &sv.h, report.generation, last_seq).map_err(|e| e.error)?;
    for g in gens {
        let p = journal_path(dir, g);
        fs::remove_file(&p).map_err(|e| Error::Storage(format!("cannot unlink {}: {e}", p.display())))?;
    }
    fsync_dir(dir)?;
    report.kept_in = Some(aside);
    lock.release();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::holdings::journal::Op;
    use crate::holdings::HoldingsStore;

    fn links(n: usize, seed: u8) -> Vec<LinkId> {
        (0..n).map(|i| {
            let mut l = [seed; 16];
            l[..8].copy_from_slice(&((i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(seed)).to_le_bytes());
            l
        }).collect()
    }

    /// Three acknowledged records, each 5 new persons split over agencies 1 (two) and 2
    /// (three): 152 bytes a record, a 456-byte journal — the file.
    fn three_records(dir: &Path) -> Vec<Vec<LinkId>> {
        let s = HoldingsStore::create(dir, u64::MAX).unwrap();
        let mut all = Vec::new();
        for r in 0..3u8 {
            let ls = links(5, r + 1);
            s.acquire_links(&ls, |p| vec![(1, p[..2].to_vec()), (2, p[2..].to_vec())]).unwrap();
            all.push(ls);
        }
        all
    }

    #[test]
    fn a_flipped_byte_refuses_to_open_and_repair_keeps_every_readable_record() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("holdings");
        let recs = three_records(&dir);
        let j = journal_path(&dir, 1);
        let mut b = fs::read(&j).unwrap();
        assert_eq!(b.len(), 456);
        b[40] ^= 0x01;
        fs::write(&j, &b).unwrap();
        // Opening refuses, naming the file and the record's offset; nothing is dropped.
        let msg = match HoldingsStore::open(&dir, u64::MAX) {
            Err(Error::Storage(m)) => m,
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a damaged journal opened"),
        };
        assert!(msg.contains(&j.display().to_string()) && msg.contains("byte 0"), "{msg}");
        assert_eq!(fs::read(&j).unwrap(), b);
        assert!(matches!(super::super::verify(&dir), Err(Error::Storage(m)) if m == msg));
        // A dry run changes nothing.
        let dry = repair(&dir, true, "x").unwrap();
        assert!(dry.needed && dry.kept_in.is_none());
        assert_eq!(fs::read(&j).unwrap(), b);
        let r = repair(&dir, false, "20260101T000000Z").unwrap();
        assert_eq!(r.records_salvaged, 2);
        assert_eq!(r.journals[0].damaged, vec![Damaged { offset: 0, bytes: 152, why: "a record fails its checksum".into() }]);
        assert_eq!((r.persons, r.persons_reserved, r.holdings), (15, 5, 10));
        let kept = r.kept_in.clone().unwrap();
        assert_eq!(fs::read(kept.join("journal.00000000000000000001")).unwrap(), b, "the damaged file is kept as it was");
        // The repaired store opens; the first record's persons keep their indices reserved.
        let s = HoldingsStore::open(&dir, u64::MAX).unwrap();
        let h = s.read();
        assert_eq!(h.person_count(), 15);
        for (k, ls) in recs.iter().enumerate() {
            for (i, l) in ls.iter().enumerate() {
                let idx = (5 * k + i) as u32;
                if k == 0 {
                    assert_eq!(h.person_of_link(l), None, "a lost link id is not guessed");
                    assert_eq!(h.link_of(idx), Some(reserved_link(idx)));
                } else {
                    assert_eq!(h.person_of_link(l), Some(idx));
                    assert!(h.holds(if i < 2 { 1 } else { 2 }, idx));
                }
            }
        }
        drop(h);
        // The lost persons come back under new indices, never under a reserved one.
        let (p, _) = s.acquire_links(&recs[0][..1], |p| vec![(1, p.to_vec())]).unwrap();
        assert_eq!(p, vec![15]);
        drop(s);
        assert!(super::super::verify(&dir).is_ok());
        // Nothing to repair now: repair changes nothing.
        let again = repair(&dir, false, "later").unwrap();
        assert!(!again.needed && again.kept_in.is_none());
    }

    #[test]
    fn trailing_damage_reserves_what_it_could_have_assigned() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("h");
        three_records(&dir);
        let j = journal_path(&dir, 1);
        let mut b = fs::read(&j).unwrap();
        // The last record damaged with junk after it: not a torn tail, and nothing after it
        // says how many persons it assigned.
        b[304 + 40] ^= 0xff;
        b.extend_from_slice(&[7u8; 10]);
        fs::write(&j, &b).unwrap();
        assert!(HoldingsStore::open(&dir, u64::MAX).is_err());
        let r = repair(&dir, false, "t").unwrap();
        assert_eq!(r.records_salvaged, 2);
        // 162 damaged bytes could hold 11 link ids: indices 10..21 are reserved.
        assert_eq!((r.persons, r.persons_reserved), (21, 11));
        let s = HoldingsStore::open(&dir, u64::MAX).unwrap();
        assert_eq!(s.read().person_count(), 21);
    }

    #[test]
    fn a_lost_snapshot_and_an_emptied_directory() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("h");
        {
            let s = HoldingsStore::create(&dir, u64::MAX).unwrap();
            s.acquire_links(&links(4, 1), |p| vec![(1, p.to_vec())]).unwrap();
            s.checkpoint().unwrap();
            s.acquire_links(&links(2, 2), |p| vec![(2, p.to_vec())]).unwrap();
        }
        fs::write(dir.join(snapshot::FILE), b"garbage").unwrap();
        let r = repair(&dir, false, "s").unwrap();
        assert!(r.snapshot_problem.is_some());
        // The journal's record says 4 persons came before it: they stay reserved.
        assert_eq!((r.persons, r.persons_reserved, r.holdings), (6, 4, 2));
        assert_eq!(fs::read(r.kept_in.unwrap().join(snapshot::FILE)).unwrap(), b"garbage");
        // Emptied: opening and repair both refuse; only a backup helps.
        let e = d.path().join("e");
        drop(HoldingsStore::create(&e, u64::MAX).unwrap());
        for f in fs::read_dir(&e).unwrap() {
            fs::remove_file(f.unwrap().path()).unwrap();
        }
        assert!(matches!(HoldingsStore::open(&e, u64::MAX), Err(Error::Storage(m)) if m.contains("is empty")));
        assert!(matches!(repair(&e, false, "s"), Err(Error::Storage(m)) if m.contains("nothing readable")));
        assert!(matches!(HoldingsStore::open(d.path().join("absent"), u64::MAX), Err(Error::Storage(m)) if m.contains("does not exist")));
    }

    #[test]
    fn records_that_contradict_are_skipped_and_named() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("h");
        three_records(&dir);
        let j = journal_path(&dir, 1);
        let mut b = fs::read(&j).unwrap();
        // A well-formed record assigning index 0 to another link id, appended after a damaged
        // stretch (so opening refuses, and repair reaches it).
        b.extend_from_slice(&[1, 2, 3]);
        let bad = Change { op: Op::Assign, first_new: 0, new_links: vec![[9; 16]], groups: vec![] };
        b.extend(journal::encode(9, &bad).unwrap());
        fs::write(&j, &b).unwrap();
        let r = repair(&dir, false, "c").unwrap();
        assert_eq!(r.records_salvaged, 3);
        assert_eq!(r.skipped.len(), 1);
        assert!(r.skipped[0].why.contains("holds another link id") && r.skipped[0].offset == 459);
        assert_eq!(r.persons, 15);
    }
}
