//! The holdings journal: append-only records, each
//!
//! ```text
//!   magic   4  b"RKJ1"
//!   len     4  u32 LE, payload bytes
//!   seq     8  u64 LE, strictly increasing
//!   op      1  1 = acquire, 2 = release
//!   pad     3
//!   payload    groups of (agency u32, count u32, count × person u32), all LE
//!   crc     4  CRC-32 (IEEE) over everything above
//! ```

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::Path;

use crate::error::{Error, Result};

pub const MAGIC: [u8; 4] = *b"RKJ1";
const HEADER: usize = 20;
/// No single record is larger than this (a corrupted length must not make us allocate GiBs).
pub const MAX_PAYLOAD: usize = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Acquire = 1,
    Release = 2,
}

/// (agency, persons) groups of one record.
pub type Groups = Vec<(u32, Vec<u32>)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub op: Op,
    pub groups: Groups,
}

pub fn encode(seq: u64, op: Op, groups: &[(u32, Vec<u32>)]) -> Vec<u8> {
    let payload: usize = groups.iter().map(|(_, ps)| 8 + 4 * ps.len()).sum();
    let mut b = Vec::with_capacity(HEADER + payload + 4);
    b.extend_from_slice(&MAGIC);
    b.extend_from_slice(&(payload as u32).to_le_bytes());
    b.extend_from_slice(&seq.to_le_bytes());
    b.extend_from_slice(&[op as u8, 0, 0, 0]);
    for (agency, persons) in groups {
        b.extend_from_slice(&agency.to_le_bytes());
        b.extend_from_slice(&(persons.len() as u32).to_le_bytes());
        for p in persons {
            b.extend_from_slice(&p.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

pub fn append(mut file: &File, bytes: &[u8]) -> std::io::Result<()> {
    file.write_all(bytes)
}

fn decode_payload(op: u8, payload: &[u8]) -> Option<(Op, Groups)> {
    let op = match op {
        1 => Op::Acquire,
        2 => Op::Release,
        _ => return None,
    };
    let mut groups = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        if rest.len() < 8 {
            return None;
        }
        let agency = u32::from_le_bytes(rest[0..4].try_into().unwrap());
        let count = u32::from_le_bytes(rest[4..8].try_into().unwrap()) as usize;
        rest = &rest[8..];
        if rest.len() < count * 4 {
            return None;
        }
        let persons = rest[..count * 4].chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
        rest = &rest[count * 4..];
        groups.push((agency, persons));
    }
    Some((op, groups))
}

pub struct ReplayResult {
    pub records: u64,
    pub torn_bytes: u64,
}

/// Read every record of `path` in order into `apply`. A bad or cut-short record ends the
/// replay: at the tail of the newest journal (`tail_ok`) the file is truncated there, anywhere
/// else it is an error.
pub fn replay(path: &Path, tail_ok: bool, mut apply: impl FnMut(Record) -> Result<()>) -> Result<ReplayResult> {
    let file = File::open(path).map_err(|e| Error::Storage(format!("cannot open journal {}: {e}", path.display())))?;
    let total = file.metadata().map_err(|e| Error::Storage(format!("cannot stat {}: {e}", path.display())))?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut offset: u64 = 0;
    let mut records = 0u64;
    let mut header = [0u8; HEADER];
    let mut payload = Vec::new();
    let bad_at = loop {
        if offset == total {
            break None;
        }
        if total - offset < (HEADER + 4) as u64 || r.read_exact(&mut header).is_err() {
            break Some(offset);
        }
        let len = u32::from_le_bytes(header[4..8].try_into().unwrap()) as usize;
        if header[0..4] != MAGIC || len > MAX_PAYLOAD || (total - offset) < (HEADER + len + 4) as u64 {
            break Some(offset);
        }
        payload.resize(len + 4, 0);
        if r.read_exact(&mut payload).is_err() {
            break Some(offset);
        }
        let mut h = crc32fast::Hasher::new();
        h.update(&header);
        h.update(&payload[..len]);
        let crc = u32::from_le_bytes(payload[len..].try_into().unwrap());
        if h.finalize() != crc {
            break Some(offset);
        }
        let Some((op, groups)) = decode_payload(header[16], &payload[..len]) else {
            break Some(offset);
        };
        let seq = u64::from_le_bytes(header[8..16].try_into().unwrap());
        apply(Record { seq, op, groups })?;
        records += 1;
        offset += (HEADER + len + 4) as u64;
    };
    let torn_bytes = match bad_at {
        None => 0,
        Some(at) if tail_ok => {
            let f = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| Error::Storage(format!("cannot open journal {}: {e}", path.display())))?;
            f.set_len(at).and_then(|_| f.sync_all()).map_err(|e| {
                Error::Storage(format!("cannot truncate the torn tail of {}: {e}", path.display()))
            })?;
            total - at
        }
        Some(at) => {
            return Err(Error::Storage(format!(
                "holdings journal {} is damaged at byte {at} (not at its tail)",
                path.display()
            )))
        }
    };
    Ok(ReplayResult { records, torn_bytes })
}
