//! Retention (施行令 第30条): bodies of old records (bundles) and their openings are dropped,
//! tiles (and so every proof) stay.

use super::*;

impl Store {
    /// Drop the bodies (entry bundles) of full bundles whose records are all older than
    /// `cutoff_us`, from the front. Tiles stay, so the tree and every proof stay valid. The new
    /// minimum index is published atomically before any bundle is deleted; an interrupted run
    /// leaves only already-retired bundles behind, which the next run deletes.
    pub fn retain(&mut self, cutoff_us: i64) -> Result<u64> {
        let (full, _) = level_tiles(self.size, 0);
        let mut b = self.min_index / TILE_WIDTH;
        while b < full {
            let p = self.dir.join(bundle_path(b, TILE_WIDTH));
            let data = fs::read(&p).map_err(|e| io_err(&p, e))?;
            let entries = tiles::split_bundle(&data).map_err(|_| Error::Storage(format!("{}: malformed", p.display())))?;
            if entries.iter().any(|e| e.len() < record::HEADER_LEN || record::time_of(e) >= cutoff_us) {
                break;
            }
            b += 1;
        }
        let new_min = b * TILE_WIDTH;
        if new_min > self.min_index {
            durable::write_atomic(&self.dir, RETENTION, format!("{new_min}\n").as_bytes(), PUBLIC_MODE)?;
            self.min_index = new_min;
        }
        self.retire_openings()?;
        // Delete retired bundles, newest first, so an interruption leaves a contiguous run.
        let mut i = self.min_index / TILE_WIDTH;
        let mut dropped = 0;
        while i > 0 {
            i -= 1;
            let p = self.dir.join(bundle_path(i, TILE_WIDTH));
            match fs::remove_file(&p) {
                Ok(()) => dropped += 1,
                Err(e) if e.kind() == ErrorKind::NotFound => break,
                Err(e) => return Err(io_err(&p, e)),
            }
        }
        Ok(dropped * TILE_WIDTH)
    }

    /// Openings below the minimum index are personal data past retention: a fully retired
    /// segment's openings file and index run are deleted, the retired slots of a partly retired
    /// one are zeroed (durably).
    fn retire_openings(&self) -> Result<()> {
        let m = self.min_index;
        for k in 0..m / SEGMENT {
            remove_opt(&self.dir.join(open_path(k)))?;
        }
        // Runs wholly below the minimum (their entries are of retired records only).
        let (runs, _, _) = covering_runs(&self.dir, m / SEGMENT).map_err(|e| io_err(&self.dir, e))?;
        for (first, count) in runs.into_iter().filter(|&(f, c)| f + c <= m / SEGMENT) {
            remove_opt(&self.dir.join(run_path(first, count)))?;
        }
        if m % SEGMENT != 0 {
            let k = m / SEGMENT;
            let p = self.dir.join(open_path(k));
            let f = fs::OpenOptions::new().write(true).open(&p).map_err(|e| io_err(&p, e))?;
            let zeros = vec![0u8; (m % SEGMENT) as usize * OPENING_LEN];
            self.io.write_at(&f, &zeros, 0).and_then(|_| self.io.fdatasync(&f)).map_err(|e| io_err(&p, e))?;
        }
        durable::fsync_dir(&self.dir.join(OPEN_DIR))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::rec;
    use super::*;

    #[test]
    fn retention_keeps_proofs() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), "o", &[4; 32]).unwrap();
        let recs: Vec<Vec<u8>> = (0..1000).map(rec).collect();
        let refs: Vec<&[u8]> = recs.iter().map(|r| &r[..]).collect();
        s.append(&refs).unwrap();
        let before = s.inclusion_proof(3, 1000).unwrap();
        assert_eq!(s.retain(1_000 + 600).unwrap(), 512);
        assert_eq!(s.min_index(), 512);
        assert_eq!(s.entry(3).unwrap(), None);
        assert!(s.entry(700).unwrap().is_some());
        assert_eq!(s.inclusion_proof(3, 1000).unwrap(), before);
        let rep = s.verify().unwrap();
        assert_eq!(rep.records_retained_away, 512);
        drop(s);
        Store::open(dir.path(), "o", &[4; 32]).unwrap().verify().unwrap();
    }
}
