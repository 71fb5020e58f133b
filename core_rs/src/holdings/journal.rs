//! The holdings journal, format 2: append-only records, each
//!
//! ```text
//!   magic   4  b"RKJ2"
//!   len     4  u32 LE, payload bytes (≤ MAX_PAYLOAD)
//!   seq     8  u64 LE, strictly increasing
//!   op      1  1 = acquire, 2 = release, 3 = assign (new persons only)
//!   pad     3  zero
//!   hcrc    4  CRC-32 (IEEE) of the 20 header bytes above
//!   payload
//!     new     4  u32 LE: persons this record assigns (0 for a release)
//!     first   4  u32 LE: the index of the first of them (= persons assigned before it)
//!     links   new × 16 bytes: their link ids, by index (first, first + 1, …)
//!     groups  (agency u32, count u32, count × person u32)…, all LE; none for an assign
//!   crc     4  CRC-32 (IEEE) over header and payload
//! ```
//!
//! A person's index is assigned in the same record as the acquisition that first needs it, so
//! one fsync makes both durable. Format 1 (`RKJ1`, persons as raw ids, no header checksum) is
//! refused with an error naming the file.
//!
//! ## What a crash may leave, and what is damage
//!
//! A change is acknowledged only after an fsync that covers its record, and records are only
//! ever appended. So everything a crash can leave unacknowledged sits at the end of the newest
//! journal, and only there is anything dropped. Reading a journal, the first record that does
//! not check is, in the newest journal:
//!
//! * **cut short** — fewer than 24 header bytes left, or a header whose own checksum holds but
//!   whose length runs past the end of the file: an append the crash interrupted. Dropped (the
//!   file is truncated at the record's start).
//! * **complete in length but failing its checksum** (header or body) — dropped only when
//!   nothing but zero bytes follows it (a header failing its checksum: nothing but zeros after
//!   its 24 bytes). Rule and argument: an fsynced record is on disk with its length, so one that
//!   fails its checksum while being the last thing in the file is either an append whose size
//!   reached the disk before all of its data (file systems may persist the size first and
//!   expose the missing blocks as zeros) — never acknowledged — or media damage after
//!   acknowledgement, which checksums cannot tell apart from the former. The size-first case
//!   is the common one after power loss, so the last record is taken to be torn. Anything else
//!   after it (a further record, non-zero bytes) means the file went on past it, which an
//!   unacknowledged tail cannot explain unless the file system wrote later blocks of one
//!   interrupted group commit before earlier ones; since that cannot be told from damage to
//!   an acknowledged record, it is refused: `Error::Storage` naming the file and byte offset,
//!   for an operator to decide.
//! * a record whose checksums hold but whose content is malformed or contradicts the state
//!   (a person index out of order, a link id assigned twice) — damage, refused.
//!
//! In an older journal (one a checkpoint has closed and fsynced) every one of these is damage.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::Path;

use super::links::LinkId;
use crate::error::{Error, Result};

pub const MAGIC: [u8; 4] = *b"RKJ2";
/// The first bytes of a format-1 journal (refused with a clear error).
const MAGIC_V1: [u8; 4] = *b"RKJ1";
pub const HEADER: usize = 24;
/// No single record is larger than this (a corrupted length must not make us allocate GiBs).
pub const MAX_PAYLOAD: usize = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Acquire = 1,
    Release = 2,
    /// Only assigns persons (J-LIS registers link ids before any agency holds them).
    Assign = 3,
}

/// (agency, persons) groups of one record.
pub type Groups = Vec<(u32, Vec<u32>)>;

/// One change: what a record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub op: Op,
    /// Index of the first person in `new_links` (= persons assigned before the change).
    pub first_new: u32,
    pub new_links: Vec<LinkId>,
    pub groups: Groups,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub change: Change,
}

fn payload_len(change: &Change) -> usize {
    8 + 16 * change.new_links.len() + change.groups.iter().map(|(_, ps)| 8 + 4 * ps.len()).sum::<usize>()
}

pub fn encode(seq: u64, change: &Change) -> Result<Vec<u8>> {
    let payload = payload_len(change);
    if payload > MAX_PAYLOAD {
        return Err(Error::InvalidArgument(format!(
            "one change of {payload} bytes is beyond a journal record's {MAX_PAYLOAD}; split the batch"
        )));
    }
    let mut b = Vec::with_capacity(HEADER + payload + 4);
    b.extend_from_slice(&MAGIC);
    b.extend_from_slice(&(payload as u32).to_le_bytes());
    b.extend_from_slice(&seq.to_le_bytes());
    b.extend_from_slice(&[change.op as u8, 0, 0, 0]);
    let hcrc = crc32fast::hash(&b);
    b.extend_from_slice(&hcrc.to_le_bytes());
    b.extend_from_slice(&(change.new_links.len() as u32).to_le_bytes());
    b.extend_from_slice(&change.first_new.to_le_bytes());
    b.extend_from_slice(change.new_links.as_flattened());
    for (agency, persons) in &change.groups {
        b.extend_from_slice(&agency.to_le_bytes());
        b.extend_from_slice(&(persons.len() as u32).to_le_bytes());
        for p in persons {
            b.extend_from_slice(&p.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    Ok(b)
}

pub fn append(mut file: &File, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Err(e) = crate::durable::fault(crate::durable::IoOp::Write, path) {
        // An injected failure behaves like a full disk: part of the record reaches the file.
        let _ = file.write_all(&bytes[..bytes.len() / 2]);
        return Err(e);
    }
    file.write_all(bytes)
}

fn header_ok(h: &[u8; HEADER]) -> bool {
    h[0..4] == MAGIC && h[17..20] == [0, 0, 0] && crc32fast::hash(&h[..20]) == u32::from_le_bytes(h[20..24].try_into().expect("4"))
}

fn decode_payload(op: u8, payload: &[u8]) -> std::result::Result<Change, &'static str> {
    let op = match op {
        1 => Op::Acquire,
        2 => Op::Release,
        3 => Op::Assign,
        _ => return Err("unknown operation"),
    };
    if payload.len() < 8 {
        return Err("payload shorter than its person section");
    }
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4"));
    let new = u32_at(payload, 0) as usize;
    let first_new = u32_at(payload, 4);
    let mut rest = &payload[8..];
    if rest.len() < new * 16 {
        return Err("new persons run past the payload");
    }
    let new_links: Vec<LinkId> = rest[..new * 16].chunks_exact(16).map(|c| c.try_into().expect("16")).collect();
    rest = &rest[new * 16..];
    let mut groups = Vec::new();
    while !rest.is_empty() {
        if rest.len() < 8 {
            return Err("a group header is cut short");
        }
        let agency = u32_at(rest, 0);
        let count = u32_at(rest, 4) as usize;
        rest = &rest[8..];
        if rest.len() < count * 4 {
            return Err("a group runs past the payload");
        }
        let persons = rest[..count * 4].chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().expect("4"))).collect();
        rest = &rest[count * 4..];
        groups.push((agency, persons));
    }
    match op {
        Op::Release if !new_links.is_empty() => return Err("a release assigns persons"),
        Op::Assign if !groups.is_empty() || new_links.is_empty() => return Err("an assign record must carry only new persons"),
        Op::Acquire if groups.is_empty() => return Err("an acquire record without holdings"),
        _ => {}
    }
    Ok(Change { op, first_new, new_links, groups })
}

pub struct ReplayResult {
    pub records: u64,
    pub torn_bytes: u64,
}

/// Why reading stopped before the end of the file.
enum Stop {
    /// The last record is cut short (torn if this is the newest journal).
    CutShort(&'static str),
    /// A record complete in length fails a checksum; torn only if nothing but zeros follows
    /// byte `after` (and this is the newest journal).
    BadChecksum { after: u64, what: &'static str },
}

/// Whether every byte the reader has left is zero.
fn rest_is_zero(r: &mut impl Read) -> std::io::Result<bool> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(true);
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}

/// Read every record of `path` in order into `apply` (which may refuse a record as damage
/// with a reason). `newest`: this is the newest journal, whose torn tail (see the module
/// documentation) is truncated when `cut` (with `cut` false it is only counted: `verify`);
/// anywhere else the same is damage. Damage is `Error::Storage` naming the file and the
/// record's byte offset.
pub fn replay(
    path: &Path,
    newest: bool,
    cut: bool,
    mut apply: impl FnMut(Record) -> std::result::Result<(), String>,
) -> Result<ReplayResult> {
    let io = |what: &str, e: std::io::Error| Error::Storage(format!("{what} holdings journal {}: {e}", path.display()));
    let damaged = |at: u64, what: &str| {
        Error::Storage(format!("holdings journal {} is damaged at byte {at}: {what}", path.display()))
    };
    let file = File::open(path).map_err(|e| io("cannot open", e))?;
    let total = file.metadata().map_err(|e| io("cannot stat", e))?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut offset: u64 = 0;
    let mut records = 0u64;
    let mut header = [0u8; HEADER];
    let mut payload = Vec::new();
    let stop = loop {
        if offset == total {
            break None;
        }
        let left = total - offset;
        if left < HEADER as u64 {
            break Some(Stop::CutShort("a record header is cut short"));
        }
        r.read_exact(&mut header).map_err(|e| io("cannot read", e))?;
        if offset == 0 && header[0..4] == MAGIC_V1 {
            return Err(Error::Storage(format!(
                "holdings journal {} is in format 1 (RKJ1, persons by raw id), which this version does not read; \
                 rebuild the holdings from the acquisitions or restore the version that wrote them",
                path.display()
            )));
        }
        if !header_ok(&header) {
            break Some(Stop::BadChecksum { after: offset + HEADER as u64, what: "a record header fails its checksum" });
        }
        let len = u32::from_le_bytes(header[4..8].try_into().expect("4")) as usize;
        if len > MAX_PAYLOAD {
            return Err(damaged(offset, "a record claims more than the largest payload"));
        }
        let end = offset + (HEADER + len + 4) as u64;
        if end > total {
            break Some(Stop::CutShort("a record is cut short"));
        }
        payload.resize(len + 4, 0);
        r.read_exact(&mut payload).map_err(|e| io("cannot read", e))?;
        let mut h = crc32fast::Hasher::new();
        h.update(&header);
        h.update(&payload[..len]);
        if h.finalize() != u32::from_le_bytes(payload[len..].try_into().expect("4")) {
            break Some(Stop::BadChecksum { after: end, what: "a record fails its checksum" });
        }
        let change = decode_payload(header[16], &payload[..len]).map_err(|what| damaged(offset, what))?;
        let seq = u64::from_le_bytes(header[8..16].try_into().expect("8"));
        apply(Record { seq, change }).map_err(|what| damaged(offset, &what))?;
        records += 1;
        offset = end;
    };
    let torn_bytes = match stop {
        None => 0,
        Some(Stop::CutShort(what)) if !newest => {
            return Err(damaged(offset, &format!("{what} in a journal that a later one follows")))
        }
        Some(Stop::CutShort(_)) if !cut => total - offset,
        Some(Stop::CutShort(_)) => truncate(path, offset, total)?,
        Some(Stop::BadChecksum { after, what }) => {
            // The reader stands at `after`: the end of the failing header or record.
            debug_assert!(after > offset);
            if !newest {
                return Err(damaged(offset, &format!("{what} in a journal that a later one follows")));
            }
            if !rest_is_zero(&mut r).map_err(|e| io("cannot read", e))? {
                return Err(damaged(offset, &format!("{what} and the file goes on after it")));
            }
            if cut {
                truncate(path, offset, total)?
            } else {
                total - offset
            }
        }
    };
    Ok(ReplayResult { records, torn_bytes })
}

/// Cut `path` back to `at` (a torn tail of `total - at` bytes) durably.
fn truncate(path: &Path, at: u64, total: u64) -> Result<u64> {
    use crate::durable::{fault, IoOp};
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::Storage(format!("cannot open holdings journal {}: {e}", path.display())))?;
    fault(IoOp::Truncate, path)
        .and_then(|_| f.set_len(at))
        .and_then(|_| fault(IoOp::Fsync, path))
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::Storage(format!("cannot truncate the torn tail of {}: {e}", path.display())))?;
    Ok(total - at)
}

/// A stretch of a journal in which no record could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    pub offset: u64,
    pub bytes: u64,
    pub why: String,
}

/// What [`salvage`] read from one journal.
#[derive(Debug, Default)]
pub struct Salvaged {
    /// Every record that checks, with its byte offset, in file order.
    pub records: Vec<(u64, Record)>,
    /// The stretches between them that hold no readable record.
    pub damaged: Vec<Damaged>,
    /// Bytes at the end that [`replay`] would drop as an unacknowledged tail (newest only).
    pub torn_tail: u64,
}

/// The record starting at `at`, if one that checks does (header, length, both checksums,
/// payload layout): its end and content, or why not.
fn record_at(b: &[u8], at: usize) -> std::result::Result<(usize, Record), &'static str> {
    let Some(h) = b.get(at..at + HEADER) else { return Err("a record header is cut short") };
    let h: &[u8; HEADER] = h.try_into().expect("24 bytes");
    if !header_ok(h) {
        return Err("a record header fails its checksum");
    }
    let len = u32::from_le_bytes(h[4..8].try_into().expect("4")) as usize;
    if len > MAX_PAYLOAD {
        return Err("a record claims more than the largest payload");
    }
    let end = at + HEADER + len + 4;
    if end > b.len() {
        return Err("a record is cut short");
    }
    let crc = u32::from_le_bytes(b[end - 4..end].try_into().expect("4"));
    if crc32fast::hash(&b[at..end - 4]) != crc {
        return Err("a record fails its checksum");
    }
    let change = decode_payload(h[16], &b[at + HEADER..end - 4])?;
    Ok((end, Record { seq: u64::from_le_bytes(h[8..16].try_into().expect("8")), change }))
}

/// Whether the bytes from `at` to the end are what [`replay`] takes for an unacknowledged
/// tail: a record cut short, or one complete in length failing its checksum with only zeros
/// after it.
fn torn_from(b: &[u8], at: usize) -> bool {
    let rest = &b[at..];
    if rest.len() < HEADER {
        return true;
    }
    let h: &[u8; HEADER] = rest[..HEADER].try_into().expect("24 bytes");
    if !header_ok(h) {
        return rest[HEADER..].iter().all(|&x| x == 0);
    }
    let len = u32::from_le_bytes(h[4..8].try_into().expect("4")) as usize;
    let end = HEADER + len + 4;
    end > rest.len() || rest[end..].iter().all(|&x| x == 0)
}

/// Read every record of `path` that checks, skipping over damage (after a stretch that does
/// not read, reading resumes at the next offset where a whole record checks). For repair:
/// the file is read whole and never modified.
pub fn salvage(path: &Path, newest: bool) -> Result<Salvaged> {
    let b = std::fs::read(path).map_err(|e| Error::Storage(format!("cannot read holdings journal {}: {e}", path.display())))?;
    if b.starts_with(&MAGIC_V1) {
        return Err(Error::Storage(format!(
            "holdings journal {} is in format 1 (RKJ1), which this version does not read",
            path.display()
        )));
    }
    let mut out = Salvaged::default();
    let mut at = 0usize;
    while at < b.len() {
        match record_at(&b, at) {
            Ok((end, rec)) => {
                out.records.push((at as u64, rec));
                at = end;
            }
            Err(why) => {
                if newest && torn_from(&b, at) {
                    out.torn_tail = (b.len() - at) as u64;
                    break;
                }
                // Resynchronise: the next offset holding the magic and a whole record that checks.
                let start = at;
                let mut next = at + 1;
                while next < b.len() {
                    match b[next..].windows(4).position(|w| w == MAGIC) {
                        Some(k) => next += k,
                        None => next = b.len(),
                    }
                    if next >= b.len() || record_at(&b, next).is_ok() {
                        break;
                    }
                    next += 1;
                }
                let next = next.min(b.len());
                out.damaged.push(Damaged { offset: start as u64, bytes: (next - start) as u64, why: why.to_string() });
                at = next;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(n: u32) -> Change {
        Change { op: Op::Acquire, first_new: n, new_links: vec![[n as u8; 16]], groups: vec![(7, vec![n])] }
    }

    fn replay_all(path: &Path, newest: bool) -> Result<(Vec<Record>, u64)> {
        let mut got = Vec::new();
        let r = replay(path, newest, true, |rec| {
            got.push(rec);
            Ok(())
        })?;
        Ok((got, r.torn_bytes))
    }

    #[test]
    fn round_trip_every_op() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("j");
        let changes = [
            change(0),
            Change { op: Op::Release, first_new: 1, new_links: vec![], groups: vec![(7, vec![0]), (9, vec![])] },
            Change { op: Op::Assign, first_new: 1, new_links: vec![[1; 16], [2; 16]], groups: vec![] },
            Change { op: Op::Acquire, first_new: 3, new_links: vec![], groups: vec![(1, vec![1, 2])] },
        ];
        let bytes: Vec<u8> = changes.iter().enumerate().flat_map(|(i, c)| encode(i as u64 + 1, c).unwrap()).collect();
        std::fs::write(&p, &bytes).unwrap();
        let (got, torn) = replay_all(&p, true).unwrap();
        assert_eq!(torn, 0);
        assert_eq!(got.iter().map(|r| r.change.clone()).collect::<Vec<_>>(), changes);
        assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    }

    /// Each (what is appended after two good records, newest?) → dropped bytes or damage.
    #[test]
    fn torn_tails_and_damage() {
        let d = tempfile::tempdir().unwrap();
        let good: Vec<u8> = [encode(1, &change(0)).unwrap(), encode(2, &change(1)).unwrap()].concat();
        let third = encode(3, &change(2)).unwrap();
        let fourth = encode(4, &change(3)).unwrap();
        let mut bad_crc = third.clone();
        let last = bad_crc.len() - 6;
        bad_crc[last] ^= 1;
        let mut bad_header = third.clone();
        bad_header[9] ^= 1;
        let cases: Vec<(&str, Vec<u8>, bool, Option<u64>)> = vec![
            ("header cut short", third[..10].to_vec(), true, Some(10)),
            ("record cut short", third[..third.len() - 1].to_vec(), true, Some(third.len() as u64 - 1)),
            ("last record fails its crc", bad_crc.clone(), true, Some(third.len() as u64)),
            ("bad crc then zeros", [bad_crc.clone(), vec![0; 300]].concat(), true, Some(third.len() as u64 + 300)),
            ("zeros only", vec![0; 4096], true, Some(4096)),
            ("bad header then zeros", [bad_header[..HEADER].to_vec(), vec![0; 100]].concat(), true, Some(124)),
            ("bad crc then a record", [bad_crc.clone(), fourth.clone()].concat(), true, None),
            ("bad crc then garbage", [bad_crc.clone(), vec![0, 0, 5]].concat(), true, None),
            ("bad header then data", bad_header.clone(), true, None),
            ("cut short, older journal", third[..10].to_vec(), false, None),
            ("bad crc, older journal", bad_crc.clone(), false, None),
        ];
        for (name, tail, newest, want) in cases {
            let p = d.path().join("j");
            std::fs::write(&p, [good.clone(), tail.clone()].concat()).unwrap();
            match (replay_all(&p, newest), want) {
                (Ok((recs, torn)), Some(w)) => {
                    assert_eq!((recs.len(), torn), (2, w), "{name}");
                    assert_eq!(std::fs::read(&p).unwrap(), good, "{name}: cut back to the good records");
                }
                (Err(Error::Storage(m)), None) => {
                    assert!(m.contains(&p.display().to_string()) && m.contains(&format!("byte {}", good.len())), "{name}: {m}");
                    assert_eq!(std::fs::read(&p).unwrap().len(), good.len() + tail.len(), "{name}: nothing cut");
                }
                (other, _) => panic!("{name}: {:?}", other.map(|(r, t)| (r.len(), t))),
            }
        }
    }

    #[test]
    fn format_1_and_malformed_records_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("journal.00000000000000000001");
        std::fs::write(&p, b"RKJ1\x04\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00abcdcrc!").unwrap();
        match replay_all(&p, true) {
            Err(Error::Storage(m)) => assert!(m.contains("format 1") && m.contains("journal.00000000000000000001"), "{m}"),
            other => panic!("{:?}", other.is_ok()),
        }
        // Checksums hold, content malformed: a release that assigns persons.
        let bad = Change { op: Op::Release, first_new: 0, new_links: vec![[1; 16]], groups: vec![(1, vec![0])] };
        std::fs::write(&p, encode(1, &bad).unwrap()).unwrap();
        assert!(matches!(replay_all(&p, true), Err(Error::Storage(m)) if m.contains("byte 0") && m.contains("release")));
        // The applier refusing a record is damage at that record.
        let two = [encode(1, &change(0)).unwrap(), encode(2, &change(0)).unwrap()].concat();
        std::fs::write(&p, &two).unwrap();
        let first_len = encode(1, &change(0)).unwrap().len();
        let mut n = 0;
        let r = replay(&p, true, true, |rec| {
            n += 1;
            if rec.seq == 2 { Err("assigns an index out of order".into()) } else { Ok(()) }
        });
        assert!(matches!(r, Err(Error::Storage(m)) if m.contains(&format!("byte {first_len}")) && m.contains("out of order")));
        assert_eq!(n, 2);
    }
}
