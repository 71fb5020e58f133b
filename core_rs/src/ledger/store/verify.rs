//! `verify`: every record, tile, and stored checkpoint recomputed from the files, from the log's
//! public key alone. Any C2SP tlog-tiles log verifies (its entries are opaque); a renkei ledger
//! (the `format` file, or asked for) also has its records' layout and sequence numbers checked,
//! and, where its private files are present (the operator's directory), every opening against
//! its commitment, every index run, the checkpoint history and every write-ahead log frame.

use super::wal::{self, Parsed};
use super::*;

/// What `verify` checks beyond the C2SP files.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// Check the entries as renkei records; `None`: when the directory has the `format` file.
    pub renkei: Option<bool>,
    /// Require the private files (openings, index, write-ahead log, history): the operator's
    /// check of its own directory. Without it they are checked when present.
    pub private: bool,
    /// The checkpoint's origin line (default: the verifier key's name).
    pub origin: Option<String>,
}

impl VerifyOptions {
    pub fn operator() -> Self {
        VerifyOptions { renkei: Some(true), private: true, origin: None }
    }
}

impl Store {
    /// Recompute everything from the files: every record (layout, sequence number, leaf hash,
    /// opening), every tile (full and partial), the index, the history, the write-ahead log and
    /// the signed checkpoint.
    pub fn verify(&self) -> std::result::Result<VerifyReport, Damage> {
        verify_dir(&self.dir, &self.verifier)
    }
}

/// The operator's check of a ledger directory, without opening (and so without recovering)
/// it. Safe to run while a writer appends: a failure seen while the checkpoint moved on is
/// retried on the new one.
pub fn verify_dir(dir: &Path, verifier: &NoteVerifier) -> std::result::Result<VerifyReport, Damage> {
    verify_public(dir, verifier, &VerifyOptions::operator())
}

/// Verify any C2SP tlog-tiles log in `dir` with its verifier key (see `VerifyOptions`).
pub fn verify_public(dir: &Path, verifier: &NoteVerifier, opts: &VerifyOptions) -> std::result::Result<VerifyReport, Damage> {
    let mut attempts = 0;
    loop {
        let note = read_opt(&dir.join(CHECKPOINT))
            .map_err(|e| damage(CHECKPOINT, None, e.to_string()))?
            .ok_or_else(|| damage(CHECKPOINT, None, "missing"))?;
        let result = verify_at(dir, verifier, &note, opts);
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
pub(super) fn read_prefix(dir: &Path, level: Option<u32>, n: u64, w: u64) -> std::result::Result<Option<(String, Vec<u8>)>, Damage> {
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

/// The openings of records `first..first + count` (zeros where the file ends).
fn read_openings(dir: &Path, first: u64, count: u64) -> std::result::Result<Option<Vec<u8>>, Damage> {
    let rel = open_path(first / SEGMENT);
    let f = match File::open(dir.join(&rel)) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(damage(&rel, None, e.to_string())),
    };
    let mut b = vec![0u8; count as usize * OPENING_LEN];
    let mut got = 0usize;
    let off = (first % SEGMENT) * OPENING_LEN as u64;
    while got < b.len() {
        match f.read_at(&mut b[got..], off + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(damage(&rel, None, e.to_string())),
        }
    }
    if got < b.len() {
        return Err(damage(&rel, Some(first + (got / OPENING_LEN) as u64), "openings file is short"));
    }
    Ok(Some(b))
}

pub(super) fn verify_at(dir: &Path, verifier: &NoteVerifier, note: &[u8], opts: &VerifyOptions) -> std::result::Result<VerifyReport, Damage> {
    let read = |rel: &str| -> std::result::Result<Option<Vec<u8>>, Damage> {
        read_opt(&dir.join(rel)).map_err(|e| damage(rel, None, e.to_string()))
    };
    let origin = opts.origin.clone().unwrap_or_else(|| verifier.name.clone());
    let cp = Checkpoint::open_signed(note, verifier, &origin).map_err(|e| damage(CHECKPOINT, None, e.to_string()))?;
    let n = cp.size;
    let format = read(FORMAT)?;
    let renkei = opts.renkei.unwrap_or(format.is_some());
    if renkei && (format.is_some() || opts.private) && format.as_deref() != Some(FORMAT_V2) {
        return Err(damage(FORMAT, None, "missing or not a renkei ledger format this version knows"));
    }
    let private = renkei && (opts.private || dir.join(OPEN_DIR).is_dir());
    let min_index = if !renkei {
        0
    } else {
        match read(RETENTION)? {
            Some(b) => std::str::from_utf8(&b).ok().and_then(|s| s.strip_suffix('\n')).and_then(|s| s.parse::<u64>().ok())
                .filter(|m| m % TILE_WIDTH == 0 && *m <= n)
                .ok_or_else(|| damage(RETENTION, None, "not a valid minimum index"))?,
            None => 0,
        }
    };
    let mut report = VerifyReport { size: n, renkei, ..Default::default() };
    let (full0, width0) = level_tiles(n, 0);
    let bundles = full0 + (width0 > 0) as u64;
    // The index runs covering the full segments, fed each record's prefix as we go.
    let mut index = if private { Some(IndexCheck::new(dir, n / SEGMENT)?) } else { None };
    if let Some(k) = index.as_ref().and_then(|ix| ix.uncovered(n / SEGMENT).into_iter().find(|&k| (k + 1) * SEGMENT > min_index)) {
        return Err(damage("index/run", Some(k * SEGMENT), format!("no index run covers segment {k}")));
    }
    // Phase 1: leaf hashes from the bundles (from level-0 tiles where bodies were retired),
    // compared with the level-0 tiles as we go.
    let mut row: Vec<Hash> = Vec::new(); // level-1 hashes computed from the bodies
    let mut first_record_mismatch: Option<Damage> = None;
    let mut first_tile_mismatch: Option<Damage> = None;
    let mut first_index_mismatch: Option<Damage> = None;
    // An opening that does not open its record: blamed only once the records agree with the
    // signed root (else the record is to blame).
    let mut first_opening_mismatch: Option<Damage> = None;
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
            if private {
                if let Some(o) = read_openings(dir, b * TILE_WIDTH, width)? {
                    if o.iter().any(|&x| x != 0) {
                        return Err(damage(open_path(b * TILE_WIDTH / SEGMENT), Some(b * TILE_WIDTH), "openings of retired records are kept"));
                    }
                }
                if let Some(ix) = index.as_mut() {
                    (b * TILE_WIDTH..b * TILE_WIDTH + width).for_each(|s| ix.add(s, None));
                }
            }
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
            let opens = if private {
                Some(read_openings(dir, b * TILE_WIDTH, width)?
                    .ok_or_else(|| damage(open_path(b * TILE_WIDTH / SEGMENT), Some(b * TILE_WIDTH), "openings file is missing"))?)
            } else {
                None
            };
            let mut leaves = Vec::with_capacity(entries.len());
            for (k, e) in entries.iter().enumerate() {
                let seq = b * TILE_WIDTH + k as u64;
                if renkei {
                    record::check_public(e).map_err(|err| damage(&bpath, Some(seq), err.to_string()))?;
                    let s = u64::from_be_bytes(e[record::SEQ_OFFSET..record::SEQ_OFFSET + 8].try_into().expect("8"));
                    if s != seq {
                        return Err(damage(&bpath, Some(seq), format!("carries sequence number {s}")));
                    }
                }
                let h = leaf_hash(e);
                if first_record_mismatch.is_none() && tile_hashes.as_ref().is_some_and(|t| t[k] != h) {
                    first_record_mismatch = Some(damage(&bpath, Some(seq), "leaf hash differs from the level-0 tile"));
                }
                if let Some(o) = &opens {
                    let o = &o[k * OPENING_LEN..(k + 1) * OPENING_LEN];
                    if seq < min_index {
                        if o.iter().any(|&x| x != 0) {
                            return Err(damage(open_path(seq / SEGMENT), Some(seq), "opening of a retired record is kept"));
                        }
                        if let Some(ix) = index.as_mut() {
                            ix.add(seq, None);
                        }
                    } else {
                        if !record::opens(e, o) && first_opening_mismatch.is_none() {
                            first_opening_mismatch = Some(damage(open_path(seq / SEGMENT), Some(seq), "opening does not open the record's person commitment"));
                        }
                        report.openings_checked += 1;
                        if let Some(ix) = index.as_mut() {
                            ix.add(seq, Some(super::recovery::prefix_of_opening(o)));
                        }
                    }
                }
                leaves.push(h);
            }
            report.records_checked += width;
            leaves
        };
        if first_tile_mismatch.is_none() && tile_hashes.as_ref() != Some(&leaves) {
            first_tile_mismatch = Some(damage(&tpath, None, "level-0 tile differs from the records' hashes"));
        }
        report.tiles_checked += 1;
        if width == TILE_WIDTH {
            row.push(subtree(&leaves));
        } else {
            level0_all = leaves;
        }
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
    if let Some(ix) = &index {
        first_index_mismatch = ix.finish(dir, min_index)?;
    }
    let root = edge_root_of(&rows);
    if root != cp.root {
        // The signed root authenticates the data: a record that disagrees with it is to blame.
        return Err(first_record_mismatch.or(first_tile_mismatch)
            .unwrap_or_else(|| damage(CHECKPOINT, None, "the records do not hash to the signed root")));
    }
    if let Some(d) = first_tile_mismatch.or(first_opening_mismatch).or(first_index_mismatch) {
        return Err(d);
    }
    if renkei && (opts.private || dir.join(HISTORY).exists()) {
        report.checkpoints_checked = verify_history(dir, verifier, &cp)?;
    }
    if renkei && (opts.private || dir.join(wal::WAL_DIR).is_dir()) {
        report.wal_frames_checked = verify_wal(dir, verifier, &cp, opts.private)?;
    }
    Ok(report)
}

/// Every write-ahead log segment: its header is the tree's edge at its base (checkpoint
/// signature, root, partial tiles and bundle), its frames up to the checkpoint hold exactly the
/// tree's records with valid openings and signed roots; past the checkpoint only a torn last
/// frame may be malformed, and the log must reach the checkpoint.
fn verify_wal(dir: &Path, verifier: &NoteVerifier, cp: &Checkpoint, required: bool) -> std::result::Result<u64, Damage> {
    let wal_dir = dir.join(wal::WAL_DIR);
    let segs = wal::list_segments(&wal_dir).map_err(|e| damage(wal::WAL_DIR, None, e.to_string()))?;
    if segs.is_empty() {
        return if required { Err(damage(wal::WAL_DIR, None, "no write-ahead log segment")) } else { Ok(0) };
    }
    let nodes = DirNodes { dir, n: cp.size, cache: Default::default() };
    let leaf = |seq: u64| nodes.node(0, seq).map_err(|e| e.to_string());
    let signed = |size: u64, root: &Hash, sig: &[u8; 64]| {
        let body = Checkpoint { origin: cp.origin.clone(), size, root: *root, extensions: vec![] }.body();
        Checkpoint::open_signed(verifier.note_with(&body, sig).as_bytes(), verifier, &cp.origin).is_ok()
    };
    let mut checked = 0u64;
    let mut expect: Option<u64> = None;
    for (i, &b) in segs.iter().enumerate() {
        let rel = wal::segment_path(b);
        let data = read_opt(&dir.join(&rel)).map_err(|e| damage(&rel, None, e.to_string()))?.unwrap_or_default();
        let (base, hlen) = wal::decode_header(&data).map_err(|w| damage(&rel, None, w))?;
        let bad = |what: String| damage(&rel, None, what);
        if base.size != b || expect.is_some_and(|e| e != b) || base.size > cp.size {
            return Err(bad(format!("segment base {} does not continue the log", base.size)));
        }
        if !signed(base.size, &base.root, &base.sig) || merkle::root(&nodes, base.size).map_err(|e| bad(e.to_string()))? != base.root {
            return Err(bad("header's checkpoint is not the tree's at its base".into()));
        }
        for (l, t) in base.tails.iter().enumerate() {
            let (full, width) = level_tiles(base.size, l as u32);
            if t.len() as u64 != width {
                return Err(bad("header's edge does not fit its base".into()));
            }
            for (j, h) in t.iter().enumerate() {
                if nodes.node(8 * l as u32, full * TILE_WIDTH + j as u64).map_err(|e| bad(e.to_string()))? != *h {
                    return Err(bad("header's edge differs from the tree".into()));
                }
            }
        }
        let entries = tiles::split_bundle(&base.bundle).map_err(|_| bad("header's partial bundle is malformed".into()))?;
        let (full0, _) = level_tiles(base.size, 0);
        for (j, e) in entries.iter().enumerate() {
            if Ok(leaf_hash(e)) != leaf(full0 * TILE_WIDTH + j as u64) {
                return Err(bad("header's partial bundle differs from the tree".into()));
            }
        }
        let mut size = base.size;
        let mut at = hlen;
        let last = i + 1 == segs.len();
        loop {
            let frame_bad = |what: String| damage(&rel, None, format!("frame at byte {at}: {what}"));
            match wal::parse_frame(&data[at..]) {
                Parsed::End => break,
                Parsed::Frame(f, len) => {
                    if f.first != size {
                        return Err(frame_bad(format!("starts at record {}, the log is at {size}", f.first)));
                    }
                    if f.size <= cp.size {
                        for (k, (e, o)) in f.leaves.iter().zip(f.openings.chunks_exact(OPENING_LEN)).enumerate() {
                            let seq = f.first + k as u64;
                            if Ok(leaf_hash(e)) != leaf(seq) {
                                return Err(damage(&rel, Some(seq), format!("frame at byte {at}: record differs from the tree")));
                            }
                            if !record::opens(e, o) {
                                return Err(damage(&rel, Some(seq), format!("frame at byte {at}: opening does not open the record")));
                            }
                        }
                        if merkle::root(&nodes, f.size).map_err(|e| frame_bad(e.to_string()))? != f.root || !signed(f.size, &f.root, &f.sig) {
                            return Err(frame_bad("its checkpoint is not the tree's".into()));
                        }
                        checked += 1;
                    } else if !(signed(f.size, &f.root, &f.sig) || (last && at + len == data.len())) {
                        return Err(frame_bad("bad signature".into()));
                    }
                    size = f.size;
                    at += len;
                }
                Parsed::Short | Parsed::Bad(_) if last && size >= cp.size => break, // a torn tail, never acknowledged
                Parsed::Short => return Err(frame_bad("incomplete".into())),
                Parsed::Bad(w) => return Err(frame_bad(w)),
            }
        }
        expect = Some(size);
    }
    if expect.unwrap_or(0) < cp.size {
        return Err(damage(wal::segment_path(*segs.last().expect("one")), None,
            format!("the log ends at record {}, before the published checkpoint's {}", expect.unwrap_or(0), cp.size)));
    }
    Ok(checked)
}
