//! `verify`: every record, tile, index file and stored checkpoint recomputed from the files.

use super::*;

impl Store {
    /// Recompute everything from the files: every record (layout, sequence number, leaf hash),
    /// every tile (full and partial), the index, and the signed checkpoint.
    pub fn verify(&self) -> std::result::Result<VerifyReport, Damage> {
        verify_dir(&self.dir, &self.verifier)
    }
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

pub(super) fn verify_at(dir: &Path, verifier: &NoteVerifier, note: &[u8]) -> std::result::Result<VerifyReport, Damage> {
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
