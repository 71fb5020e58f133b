//! The holdings snapshot (`snapshot.bin`), format 2:
//!
//! ```text
//!   magic       8  b"RKHSNAP2"
//!   generation  8  u64 LE: replay journals from this generation on
//!   last_seq    8  u64 LE: the last journal record the snapshot includes
//!   persons     4  u32 LE: person indices assigned (0..persons)
//!   links       persons × 16 bytes: the link id of each person index, in index order
//!   agencies    4  u32 LE
//!   per agency:  agency u32, chunks u32
//!     per chunk: key u16, kind u8 (0 array, 1 bitmap), count u32,
//!                then count × u16 (array) or 1024 × u64 (bitmap), LE
//!   crc         4  CRC-32 (IEEE) over everything above
//! ```
//!
//! Written to a temporary file, fsynced, renamed over the old one, directory fsynced: a crash
//! leaves either the old or the new snapshot, never a mix.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use super::set::{chunk_array, chunk_from_sorted, chunk_from_words, chunk_words, PersonSet};
use super::links::PersonLinks;
use super::Holdings;
use crate::durable;
use crate::error::{Error, Result};

pub const FILE: &str = "snapshot.bin";
const MAGIC: [u8; 8] = *b"RKHSNAP2";
const MAGIC_V1: [u8; 8] = *b"RKHSNAP1";

pub struct Snapshot {
    pub holdings: Holdings,
    pub generation: u64,
    pub last_seq: u64,
}

struct CrcWriter<W: Write> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

struct CrcReader<R: Read> {
    inner: R,
    crc: crc32fast::Hasher,
}

impl<R: Read> Read for CrcReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Storage(format!("holdings snapshot {}: {e}", path.display()))
}

/// Write `snapshot.bin` atomically; the error says whether the rename had happened.
pub fn write(
    dir: &Path,
    h: &Holdings,
    generation: u64,
    last_seq: u64,
) -> std::result::Result<(), durable::AtomicWriteError> {
    durable::write_atomic_reporting(dir, FILE, 0o600, |out| {
        let mut w = CrcWriter { inner: out, crc: crc32fast::Hasher::new() };
        w.write_all(&MAGIC)?;
        w.write_all(&generation.to_le_bytes())?;
        w.write_all(&last_seq.to_le_bytes())?;
        let links = h.links();
        w.write_all(&(links.len() as u32).to_le_bytes())?;
        for slice in links.slices() {
            w.write_all(slice.as_flattened())?;
        }
        let agencies: Vec<(&u32, &PersonSet)> = h.agencies().iter().filter(|(_, s)| !s.is_empty()).collect();
        w.write_all(&(agencies.len() as u32).to_le_bytes())?;
        let mut buf: Vec<u8> = Vec::with_capacity(8192);
        for (agency, set) in agencies {
            let chunks = set.sorted_chunks();
            w.write_all(&agency.to_le_bytes())?;
            w.write_all(&(chunks.len() as u32).to_le_bytes())?;
            for (key, chunk) in chunks {
                buf.clear();
                buf.extend_from_slice(&key.to_le_bytes());
                if let Some(words) = chunk_words(chunk) {
                    buf.push(1);
                    buf.extend_from_slice(&chunk.len().to_le_bytes());
                    for word in words.iter() {
                        buf.extend_from_slice(&word.to_le_bytes());
                    }
                } else if let Some(lows) = chunk_array(chunk) {
                    buf.push(0);
                    buf.extend_from_slice(&(lows.len() as u32).to_le_bytes());
                    for low in lows {
                        buf.extend_from_slice(&low.to_le_bytes());
                    }
                }
                w.write_all(&buf)?;
            }
        }
        let crc = w.crc.clone().finalize();
        w.inner.write_all(&crc.to_le_bytes())
    })
}

fn read_u16(r: &mut impl Read) -> std::io::Result<u16> {
    let mut b = [0u8; 2];
    r.read_exact(&mut b)?;
    Ok(u16::from_le_bytes(b))
}
fn read_u32(r: &mut impl Read) -> std::io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}
fn read_u64(r: &mut impl Read) -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// Load `path`; `Ok(None)` when there is no snapshot yet.
pub fn read(path: &Path) -> Result<Option<Snapshot>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path, e)),
    };
    let bad = |what: &str| Error::Storage(format!("holdings snapshot {} is damaged: {what}", path.display()));
    let size = file.metadata().map_err(|e| io(path, e))?.len();
    let mut r = CrcReader { inner: BufReader::with_capacity(8 << 20, file), crc: crc32fast::Hasher::new() };
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(|_| bad("too short"))?;
    if magic == MAGIC_V1 {
        return Err(Error::Storage(format!(
            "holdings snapshot {} is in format 1 (RKHSNAP1, persons by raw id), which this version does not read; \
             rebuild the holdings from the acquisitions or restore the version that wrote them",
            path.display()
        )));
    }
    if magic != MAGIC {
        return Err(bad("wrong magic"));
    }
    let rd = |e: std::io::Error| if e.kind() == std::io::ErrorKind::UnexpectedEof { bad("cut short") } else { io(path, e) };
    let generation = read_u64(&mut r).map_err(rd)?;
    let last_seq = read_u64(&mut r).map_err(rd)?;
    let persons = read_u32(&mut r).map_err(rd)? as usize;
    if persons as u64 * 16 > size {
        // A damaged count must not make us reserve GiBs before the read fails.
        return Err(bad("more persons than the file holds"));
    }
    let links = match PersonLinks::load(persons, |buf| r.read_exact(buf)).map_err(rd)? {
        Ok(l) => l,
        Err(i) => return Err(bad(&format!("person index {i} repeats an earlier link id"))),
    };
    let n_agencies = read_u32(&mut r).map_err(rd)?;
    let mut holdings = Holdings { links, ..Holdings::default() };
    let mut bytes = vec![0u8; 8192];
    for _ in 0..n_agencies {
        let agency = read_u32(&mut r).map_err(rd)?;
        let n_chunks = read_u32(&mut r).map_err(rd)?;
        if n_chunks > 65_536 {
            return Err(bad("too many chunks"));
        }
        let mut set = PersonSet::new();
        let mut prev: Option<u16> = None;
        for _ in 0..n_chunks {
            let key = read_u16(&mut r).map_err(rd)?;
            if prev.is_some_and(|p| p >= key) {
                return Err(bad("chunks out of order"));
            }
            prev = Some(key);
            let mut kind = [0u8; 1];
            r.read_exact(&mut kind).map_err(rd)?;
            let count = read_u32(&mut r).map_err(rd)?;
            let chunk = match kind[0] {
                0 if count <= 4096 => {
                    let b = &mut bytes[..count as usize * 2];
                    r.read_exact(b).map_err(rd)?;
                    let lows: Vec<u16> = b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
                    if lows.windows(2).any(|w| w[0] >= w[1]) {
                        return Err(bad("array chunk not sorted"));
                    }
                    chunk_from_sorted(lows)
                }
                1 => {
                    r.read_exact(&mut bytes).map_err(rd)?;
                    let mut words = Box::new([0u64; 1024]);
                    for (w, c) in words.iter_mut().zip(bytes.chunks_exact(8)) {
                        *w = u64::from_le_bytes(c.try_into().unwrap());
                    }
                    let chunk = chunk_from_words(words);
                    if chunk.len() != count {
                        return Err(bad("bitmap count mismatch"));
                    }
                    chunk
                }
                _ => return Err(bad("unknown chunk kind")),
            };
            set.put_chunk(key, chunk);
        }
        set.maybe_flatten();
        if holdings.agencies_mut().insert(agency, set).is_some() {
            return Err(bad("agency listed twice"));
        }
    }
    let computed = r.crc.clone().finalize();
    let stored = read_u32(&mut r.inner).map_err(rd)?;
    if computed != stored {
        return Err(bad("checksum mismatch"));
    }
    holdings.assign_dense();
    let mut extra = [0u8; 1];
    if r.inner.read(&mut extra).map_err(|e| io(path, e))? != 0 {
        return Err(bad("trailing bytes"));
    }
    Ok(Some(Snapshot { holdings, generation, last_seq }))
}
