//! The write-ahead log: the one durable write of a commit.
//!
//! ```text
//! wal/<base, 20 digits>   one segment: a header (the tree's edge at `base`), then frames
//!
//! header  "rkwal01\n" ‖ base u64 ‖ root 32 ‖ signature 64 (the checkpoint of size base)
//!         ‖ last stored history size u64 ‖ 8 × (n u8 ‖ n × 32-byte hash: the partial tile of
//!         each level) ‖ partial bundle length u32 ‖ the partial bundle ‖ SHA-256 of all before
//! frame   "RKWF" ‖ body length u32 ‖ body
//! body    first u64 ‖ count u32 ‖ count × (u16 length ‖ public leaf) ‖ count × 48-byte opening
//!         ‖ size u64 (= first + count) ‖ root 32 ‖ signature 64 (the new checkpoint)
//! ```
//!
//! A frame needs no checksum of its own: the leaves hash to the signed root and every opening
//! must open its leaf's commitment, so replay checks each frame cryptographically.

use sha2::{Digest, Sha256};

use super::super::merkle::Hash;
use super::super::record::OPENING_LEN;

pub(super) const WAL_DIR: &str = "wal";
pub(super) const HEADER_MAGIC: &[u8; 8] = b"rkwal01\n";
pub(super) const FRAME_MAGIC: &[u8; 4] = b"RKWF";
/// A segment is rotated (its derived files flushed, a new segment started) past this size.
pub const WAL_LIMIT: u64 = 64 << 20;

pub(super) fn segment_path(base: u64) -> String {
    format!("{WAL_DIR}/{base:020}")
}

/// The bases of the segments in `wal_dir`, ascending (other names are ignored).
pub(super) fn list_segments(wal_dir: &std::path::Path) -> std::io::Result<Vec<u64>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(wal_dir)? {
        let e = e?;
        if let Some(n) = e.file_name().to_str().filter(|n| n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit())) {
            v.push(n.parse().expect("20 digits"));
        }
    }
    v.sort_unstable();
    Ok(v)
}

/// The tree's edge where a segment starts: everything a replay needs beyond the files below
/// `size`, which were made durable before the segment began.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Base {
    pub size: u64,
    pub root: Hash,
    pub sig: [u8; 64],
    pub history_last: u64,
    pub tails: Vec<Vec<Hash>>,
    pub bundle: Vec<u8>,
}

pub(super) fn encode_header(b: &Base) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + b.bundle.len() + b.tails.iter().map(|t| t.len() * 32).sum::<usize>());
    out.extend_from_slice(HEADER_MAGIC);
    out.extend_from_slice(&b.size.to_be_bytes());
    out.extend_from_slice(&b.root);
    out.extend_from_slice(&b.sig);
    out.extend_from_slice(&b.history_last.to_be_bytes());
    for t in &b.tails {
        out.push(t.len() as u8);
        for h in t {
            out.extend_from_slice(h);
        }
    }
    out.extend_from_slice(&(b.bundle.len() as u32).to_be_bytes());
    out.extend_from_slice(&b.bundle);
    let sum: [u8; 32] = Sha256::digest(&out).into();
    out.extend_from_slice(&sum);
    out
}

/// The header and its length, or why it is not one.
pub(super) fn decode_header(data: &[u8]) -> std::result::Result<(Base, usize), String> {
    let mut at = 0usize;
    let mut take = |n: usize| -> std::result::Result<&[u8], String> {
        let s = data.get(at..at + n).ok_or_else(|| "segment header is truncated".to_string())?;
        at += n;
        Ok(s)
    };
    if take(8)? != HEADER_MAGIC {
        return Err("not a write-ahead log segment (bad magic)".into());
    }
    let size = u64::from_be_bytes(take(8)?.try_into().expect("8"));
    let root: Hash = take(32)?.try_into().expect("32");
    let sig: [u8; 64] = take(64)?.try_into().expect("64");
    let history_last = u64::from_be_bytes(take(8)?.try_into().expect("8"));
    let mut tails = Vec::with_capacity(8);
    for _ in 0..8 {
        let n = take(1)?[0] as usize;
        tails.push(take(n * 32)?.chunks_exact(32).map(|c| c.try_into().expect("32")).collect());
    }
    let blen = u32::from_be_bytes(take(4)?.try_into().expect("4")) as usize;
    let bundle = take(blen)?.to_vec();
    let end = at;
    let sum = data.get(end..end + 32).ok_or_else(|| "segment header is truncated".to_string())?;
    if Sha256::digest(&data[..end])[..] != sum[..] {
        return Err("segment header checksum does not match".into());
    }
    Ok((Base { size, root, sig, history_last, tails, bundle }, end + 32))
}

pub(super) struct Frame<'a> {
    pub first: u64,
    /// The packed leaves (u16 length-prefixed), as in an entry bundle.
    pub packed: &'a [u8],
    pub leaves: Vec<&'a [u8]>,
    pub openings: &'a [u8],
    pub size: u64,
    pub root: Hash,
    pub sig: [u8; 64],
}

pub(super) fn encode_frame(first: u64, count: usize, packed: &[u8], openings: &[u8], size: u64, root: &Hash, sig: &[u8; 64]) -> Vec<u8> {
    let body = 8 + 4 + packed.len() + openings.len() + 8 + 32 + 64;
    let mut out = Vec::with_capacity(8 + body);
    out.extend_from_slice(FRAME_MAGIC);
    out.extend_from_slice(&(body as u32).to_be_bytes());
    out.extend_from_slice(&first.to_be_bytes());
    out.extend_from_slice(&(count as u32).to_be_bytes());
    out.extend_from_slice(packed);
    out.extend_from_slice(openings);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(root);
    out.extend_from_slice(sig);
    out
}

pub(super) enum Parsed<'a> {
    /// Nothing left.
    End,
    /// A well-formed frame and its length in bytes.
    Frame(Frame<'a>, usize),
    /// The frame runs past the end of the file (a write that did not finish).
    Short,
    /// Malformed.
    Bad(String),
}

pub(super) fn parse_frame(data: &[u8]) -> Parsed<'_> {
    if data.is_empty() {
        return Parsed::End;
    }
    if data.len() < 8 {
        return Parsed::Short;
    }
    if &data[..4] != FRAME_MAGIC {
        return Parsed::Bad("bad frame magic".into());
    }
    let blen = u32::from_be_bytes(data[4..8].try_into().expect("4")) as usize;
    if blen < 8 + 4 + 8 + 32 + 64 {
        return Parsed::Bad("frame too short".into());
    }
    let Some(body) = data.get(8..8 + blen) else { return Parsed::Short };
    let first = u64::from_be_bytes(body[..8].try_into().expect("8"));
    let count = u32::from_be_bytes(body[8..12].try_into().expect("4")) as usize;
    let tail = blen - (8 + 32 + 64);
    let mut at = 12usize;
    let mut leaves = Vec::with_capacity(count);
    for _ in 0..count {
        if at + 2 > tail {
            return Parsed::Bad("frame leaves overrun".into());
        }
        let l = u16::from_be_bytes([body[at], body[at + 1]]) as usize;
        if at + 2 + l > tail {
            return Parsed::Bad("frame leaves overrun".into());
        }
        leaves.push(&body[at + 2..at + 2 + l]);
        at += 2 + l;
    }
    let packed = &body[12..at];
    if at + count * OPENING_LEN != tail {
        return Parsed::Bad("frame openings do not fill the frame".into());
    }
    let openings = &body[at..tail];
    let size = u64::from_be_bytes(body[tail..tail + 8].try_into().expect("8"));
    let root: Hash = body[tail + 8..tail + 40].try_into().expect("32");
    let sig: [u8; 64] = body[tail + 40..tail + 104].try_into().expect("64");
    if count == 0 || first.checked_add(count as u64) != Some(size) {
        return Parsed::Bad("frame size is not first + count".into());
    }
    Parsed::Frame(Frame { first, packed, leaves, openings, size, root, sig }, 8 + blen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_frame_round_trip() {
        let b = Base { size: 300, root: [1; 32], sig: [2; 64], history_last: 256, tails: vec![vec![[3; 32]; 44], vec![[4; 32]], vec![], vec![], vec![], vec![], vec![], vec![]], bundle: vec![0, 1, 9] };
        let mut h = encode_header(&b);
        let n = h.len();
        h.extend_from_slice(b"rest");
        assert_eq!(decode_header(&h).unwrap(), (b, n));
        for i in 0..n {
            let mut bad = h.clone();
            bad[i] ^= 1;
            assert!(decode_header(&bad).is_err(), "{i}");
        }
        let packed = [0u8, 2, 7, 7, 0, 1, 5];
        let f = encode_frame(10, 2, &packed, &[6; 96], 12, &[8; 32], &[9; 64]);
        match parse_frame(&f) {
            Parsed::Frame(fr, len) => {
                assert_eq!((fr.first, fr.leaves, fr.size, len), (10, vec![&[7u8, 7][..], &[5][..]], 12, f.len()));
            }
            _ => panic!(),
        }
        assert!(matches!(parse_frame(&f[..f.len() - 1]), Parsed::Short));
        assert!(matches!(parse_frame(&[]), Parsed::End));
    }
}
