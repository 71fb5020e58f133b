//! The per-person index (private): segments of `SEGMENT` records; the current segment's
//! pseudonym prefixes in memory (from its openings file), a sorted run per full segment;
//! loading (runs of segments beyond the base removed, missing runs rebuilt from the openings),
//! look-ups, the per-person view, and the check `verify` runs on runs.

use super::recovery::prefix_of_opening;
use super::*;

/// Records per index segment; offsets within one fit a u16.
pub const SEGMENT: u64 = 1 << 16;
/// A run: 257 u32 BE bucket starts by the prefix's top byte, then per record (prefix's low 24
/// bits, offset u16), sorted by (prefix, offset).
pub(super) const RUN_HEADER: usize = 257 * 4;
pub(super) const RUN_ENTRY: usize = 5;
pub(super) const RUN_LEN: usize = RUN_HEADER + SEGMENT as usize * RUN_ENTRY;

pub(super) fn run_path(k: u64) -> String {
    format!("index/run/{k}")
}

/// The sorted run of one full segment from its records' pseudonym prefixes (by offset).
pub(super) fn encode_run(prefixes: &[u32]) -> Vec<u8> {
    debug_assert_eq!(prefixes.len() as u64, SEGMENT);
    let mut order: Vec<(u32, u16)> = prefixes.iter().enumerate().map(|(i, &p)| (p, i as u16)).collect();
    order.sort_unstable();
    let mut starts = [0u32; 257];
    for &(p, _) in &order {
        starts[(p >> 24) as usize + 1] += 1;
    }
    for b in 1..257 {
        starts[b] += starts[b - 1];
    }
    let mut out = Vec::with_capacity(RUN_LEN);
    for v in starts {
        out.extend_from_slice(&v.to_be_bytes());
    }
    for (p, off) in order {
        out.extend_from_slice(&p.to_be_bytes()[1..]);
        out.extend_from_slice(&off.to_be_bytes());
    }
    out
}

/// Prefixes by offset as a run file states them (for records whose bodies were retired), or
/// why the file is not a well-formed run.
pub(super) fn decode_run(b: &[u8]) -> std::result::Result<Vec<u32>, String> {
    if b.len() != RUN_LEN {
        return Err(format!("{} bytes, expected {RUN_LEN}", b.len()));
    }
    let starts: Vec<usize> = b[..RUN_HEADER].chunks_exact(4).map(|c| u32::from_be_bytes(c.try_into().expect("4")) as usize).collect();
    if starts[0] != 0 || starts[256] != SEGMENT as usize || starts.windows(2).any(|w| w[0] > w[1]) {
        return Err("bucket directory is not a partition of the segment".into());
    }
    let mut out = vec![None; SEGMENT as usize];
    for top in 0..256 {
        for i in starts[top]..starts[top + 1] {
            let e = &b[RUN_HEADER + i * RUN_ENTRY..RUN_HEADER + (i + 1) * RUN_ENTRY];
            let p = (top as u32) << 24 | u32::from_be_bytes([0, e[0], e[1], e[2]]);
            let off = u16::from_be_bytes([e[3], e[4]]) as usize;
            if out[off].replace(p).is_some() {
                return Err(format!("offset {off} appears twice"));
            }
        }
    }
    Ok(out.into_iter().map(|p| p.expect("a partition of SEGMENT distinct offsets covers all")).collect())
}

/// The pseudonym prefixes of full segment `k` from its openings file.
pub(super) fn segment_prefixes(dir: &Path, k: u64) -> Result<Vec<u32>> {
    let rel = open_path(k);
    let b = read_opt(&dir.join(&rel))?.ok_or_else(|| Error::from(damage(&rel, Some(k * SEGMENT), "openings file is missing")))?;
    if b.len() != SEGMENT as usize * OPENING_LEN {
        return Err(damage(&rel, None, format!("{} bytes, a full segment's openings are {}", b.len(), SEGMENT as usize * OPENING_LEN)).into());
    }
    Ok(b.chunks_exact(OPENING_LEN).map(prefix_of_opening).collect())
}

impl Store {
    /// Runs of segments at or beyond `cur` are removed (never durable); a missing run of a full
    /// segment is rebuilt from its openings.
    pub(super) fn load_runs(&mut self, cur: u64) -> Result<()> {
        let run_dir = self.dir.join("index/run");
        let mut have = std::collections::HashSet::new();
        for e in fs::read_dir(&run_dir).map_err(|e| io_err(&run_dir, e))?.flatten() {
            match e.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) {
                Some(k) if k < cur => {
                    have.insert(k);
                }
                _ => remove_opt(&e.path())?,
            }
        }
        for k in (0..cur).filter(|k| !have.contains(k)) {
            if (k + 1) * SEGMENT <= self.min_index {
                continue;
            }
            let run = encode_run(&segment_prefixes(&self.dir, k)?);
            durable::write_atomic(&run_dir, &k.to_string(), &run, 0o600)?;
        }
        Ok(())
    }

    /// Offsets (ascending) of the records of full segment `k` whose pseudonym starts `prefix`.
    pub(super) fn run_lookup(&self, k: u64, prefix: u32) -> Result<Vec<u64>> {
        use std::io::{Seek, SeekFrom};
        let p = self.dir.join(run_path(k));
        let bad = || Error::Storage(format!("{}: malformed index run; run `renkei ledger verify`", p.display()));
        let mut f = File::open(&p).map_err(|e| io_err(&p, e))?;
        let top = (prefix >> 24) as u64;
        let mut se = [0u8; 8];
        f.seek(SeekFrom::Start(top * 4)).and_then(|_| f.read_exact(&mut se)).map_err(|e| io_err(&p, e))?;
        let lo = u32::from_be_bytes(se[..4].try_into().expect("4")) as u64;
        let hi = u32::from_be_bytes(se[4..].try_into().expect("4")) as u64;
        if lo > hi || hi > SEGMENT {
            return Err(bad());
        }
        let mut b = vec![0u8; ((hi - lo) as usize) * RUN_ENTRY];
        f.seek(SeekFrom::Start(RUN_HEADER as u64 + lo * RUN_ENTRY as u64)).and_then(|_| f.read_exact(&mut b))
            .map_err(|e| io_err(&p, e))?;
        let low = prefix & 0x00ff_ffff;
        let entries: Vec<&[u8]> = b.chunks_exact(RUN_ENTRY).collect();
        let key = |e: &[u8]| u32::from_be_bytes([0, e[0], e[1], e[2]]);
        let first = entries.partition_point(|e| key(e) < low);
        Ok(entries[first..].iter().take_while(|e| key(e) == low).map(|e| u16::from_be_bytes([e[3], e[4]]) as u64).collect())
    }

    /// A person's records, newest first, below `before` (exclusive), at most `limit`, each with
    /// its opening and an inclusion proof against the current checkpoint. 不開示 records are held
    /// back unless their disclose-after date is on or before `today` (days since 1970-01-01).
    pub fn records_for_pseudonym(&self, pseudonym: &[u8; 32], before: Option<u64>, limit: usize, today: u32) -> Result<PersonPage> {
        let prefix = u32::from_be_bytes(pseudonym[..4].try_into().expect("4"));
        let start = before.unwrap_or(self.size).min(self.size);
        let cur = self.size / SEGMENT;
        let mut records = Vec::new();
        let mut next_before = None;
        let mut seg = start.div_ceil(SEGMENT);
        'segments: while seg > self.min_index / SEGMENT {
            seg -= 1;
            // Candidates in this segment, newest first: the in-memory tail, else the sorted run.
            let offsets: Vec<u64> = if seg == cur {
                (0..self.tail_index.len() as u64).filter(|&o| self.tail_index[o as usize] == prefix).collect()
            } else {
                self.run_lookup(seg, prefix)?
            };
            for &off in offsets.iter().rev() {
                let seq = seg * SEGMENT + off;
                if seq >= start {
                    continue;
                }
                if seq < self.min_index {
                    break 'segments;
                }
                let Some(o) = self.openings(seq, seq + 1)?.pop().flatten() else { continue };
                if o[record::SALT_LEN..] != pseudonym[..] {
                    continue;
                }
                let Some(leaf) = self.entry(seq)? else { continue };
                let r = record::open_leaf(&leaf, &o).map_err(|e| Error::from(damage(open_path(seg), Some(seq), e.to_string())))?;
                if r.withheld && r.disclose_after.is_none_or(|d| d > today) {
                    continue;
                }
                if records.len() == limit {
                    next_before = Some(seq + 1);
                    break 'segments;
                }
                let proof = self.inclusion_proof(seq, self.size)?;
                records.push((seq, leaf, o, proof));
            }
        }
        Ok(PersonPage { records, next_before, checkpoint: self.checkpoint_note.clone() })
    }

}

/// The run of full segment `k` against its records' prefixes (None: body retired, so the
/// run's own statement is taken, which must still be a well-formed sorted run).
pub(super) fn check_run(dir: &Path, k: u64, prefixes: &[Option<u32>]) -> std::result::Result<Option<Damage>, Damage> {
    let rel = run_path(k);
    let Some(b) = read_opt(&dir.join(&rel)).map_err(|e| damage(&rel, None, e.to_string()))? else {
        return Ok(Some(damage(&rel, None, "index run is missing")));
    };
    let stated = if prefixes.iter().all(Option::is_some) {
        None
    } else {
        match decode_run(&b) {
            Ok(v) => Some(v),
            Err(what) => return Ok(Some(damage(&rel, None, what))),
        }
    };
    let merged: Vec<u32> = prefixes.iter().enumerate()
        .map(|(i, p)| p.unwrap_or_else(|| stated.as_ref().map_or(0, |s| s[i]))).collect();
    if encode_run(&merged) != b {
        return Ok(Some(damage(&rel, None, "index run differs from the records' pseudonyms")));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::super::tests::rec;
    use super::*;
    use crate::ledger::record::Record;

    /// Persons whose pseudonyms share all 4 prefix bytes, only the top byte, or nothing.
    fn person(p: u64) -> [u8; 32] {
        let mut x = [0u8; 32];
        x[0] = (p % 3) as u8;
        x[1..4].copy_from_slice(&[(p % 5) as u8, 0, 0]);
        x[31] = p as u8;
        x
    }

    fn rec_of(i: u64, p: u64) -> Vec<u8> {
        let mut r = Record::decode(&rec(i)).unwrap();
        r.pseudonym = person(p);
        r.withheld = i % 11 == 0;
        r.disclose_after = (i % 22 == 0).then_some(100);
        r.encode().unwrap()
    }

    #[test]
    fn segment_runs_agree_with_a_plain_scan() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), "o", &[4; 32]).unwrap();
        let n = 2 * SEGMENT + 700;
        let owner = |i: u64| (i * 7919 + i / 13) % 17;
        for chunk in [SEGMENT - 5, 10, SEGMENT + 695] {
            let recs: Vec<Vec<u8>> = (s.size()..s.size() + chunk).map(|i| rec_of(i, owner(i))).collect();
            let refs: Vec<&[u8]> = recs.iter().map(|r| &r[..]).collect();
            s.append(&refs).unwrap();
        }
        assert_eq!(s.size(), n);
        assert!(dir.path().join("index/run/1").exists() && !dir.path().join("index/run/2").exists());
        let check = |s: &Store| {
            for p in [0u64, 3, 15, 16] {
                for today in [0u32, 200] {
                    let want: Vec<u64> = (0..n).rev()
                        .filter(|&i| owner(i) == p && !(i % 11 == 0 && (i % 22 != 0 || today < 100))).collect();
                    let mut got = vec![];
                    let mut before = None;
                    loop {
                        let page = s.records_for_pseudonym(&person(p), before, 997, today).unwrap();
                        got.extend(page.records.iter().map(|r| r.0));
                        match page.next_before {
                            Some(b) => before = Some(b),
                            None => break,
                        }
                    }
                    assert_eq!(got, want, "person {p} today {today}");
                }
            }
        };
        check(&s);
        s.verify().unwrap();
        drop(s);
        // Torn index files beyond the checkpoint are removed; a missing run is rebuilt.
        fs::write(dir.path().join("index/run/2"), b"torn").unwrap();
        fs::write(dir.path().join("open/3"), b"torn").unwrap();
        fs::remove_file(dir.path().join("index/run/0")).unwrap();
        let s = Store::open(dir.path(), "o", &[4; 32]).unwrap();
        assert!(!dir.path().join("index/run/2").exists() && !dir.path().join("open/3").exists());
        check(&s);
        s.verify().unwrap();
        // Damage in a run or an openings file is named.
        for (rel, at) in [("index/run/1", 3usize), ("index/run/0", RUN_HEADER + 17), ("open/2", 40), ("open/0", 7)] {
            let p = dir.path().join(rel);
            let good = fs::read(&p).unwrap();
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            fs::write(&p, &bad).unwrap();
            assert_eq!(s.verify().unwrap_err().path, rel);
            fs::write(&p, &good).unwrap();
        }
        s.verify().unwrap();
    }
}
