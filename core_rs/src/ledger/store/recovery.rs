//! Recovery on open: everything beyond the signed checkpoint is a torn tail and is removed; the
//! right edge is reloaded and checked against the checkpoint root.

use super::*;

impl Store {
    /// Remove everything beyond the checkpoint, reload the right edge, check it against the
    /// checkpoint root.
    pub(super) fn recover(&mut self) -> Result<()> {
        let n = self.size;
        for level in 0..8u32 {
            let (full, width) = level_tiles(n, level);
            self.remove_beyond(|i, w| tile_path(level, i, w), full, width)?;
        }
        let (full, width) = level_tiles(n, 0);
        self.remove_beyond(bundle_path, full, width)?;
        self.tails.clear();
        for level in 0..8u32 {
            let (full, width) = level_tiles(n, level);
            let hashes = if width == 0 {
                Vec::new()
            } else {
                let p = self.dir.join(tile_path(level, full, width));
                let b = read_opt(&p)?.ok_or_else(|| Error::Storage(format!("{}: missing", p.display())))?;
                if b.len() as u64 != width * 32 {
                    return Err(Error::Storage(format!("{}: wrong size", p.display())));
                }
                hashes_of(&b)
            };
            self.tails.push(hashes);
        }
        self.tail_bundle = if width == 0 {
            Vec::new()
        } else {
            let p = self.dir.join(bundle_path(full, width));
            read_opt(&p)?.ok_or_else(|| Error::Storage(format!("{}: missing", p.display())))?
        };
        if self.edge_root() != self.checkpoint.root {
            return Err(Error::Storage("the right-edge tiles do not match the checkpoint root; run `renkei ledger verify`".into()));
        }
        self.load_index()?;
        self.cache.lock().expect("cache lock").clear();
        *self.tail_cache.lock().expect("cache lock") = None;
        self.recover_history()
    }

    /// Delete files for tile indices ≥ `full` except the committed partial (`full`, `width`).
    pub(super) fn remove_beyond(&self, path: impl Fn(u64, u64) -> String, full: u64, width: u64) -> Result<()> {
        if full > 0 {
            // Partials superseded by the last full tile, left when a crash beat the cleanup.
            if let Ok(rd) = fs::read_dir(self.dir.join(format!("{}.p", path(full - 1, TILE_WIDTH)))) {
                for e in rd.flatten() {
                    remove_opt(&e.path())?;
                }
            }
        }
        let mut i = full;
        loop {
            let full_p = self.dir.join(path(i, TILE_WIDTH));
            let pdir = self.dir.join(format!("{}.p", path(i, TILE_WIDTH)));
            let mut any = full_p.exists();
            remove_opt(&full_p)?;
            if let Ok(rd) = fs::read_dir(&pdir) {
                any = true;
                for e in rd.flatten() {
                    let keep = i == full && e.file_name().to_str() == Some(&width.to_string());
                    if !keep {
                        remove_opt(&e.path())?;
                    }
                }
            }
            if !any {
                return Ok(());
            }
            i += 1;
        }
    }


    /// Root from the right-edge partial tiles alone.
    pub(super) fn edge_root(&self) -> Hash {
        let mut acc: Option<Hash> = None;
        for tail in &self.tails {
            // Peaks inside this tail, smallest last; fold smallest-first into the accumulator.
            let w = tail.len();
            let mut at = 0;
            let mut peaks = Vec::new();
            for bit in (0..8).rev() {
                let sz = 1usize << bit;
                if w & sz != 0 {
                    peaks.push(subtree(&tail[at..at + sz]));
                    at += sz;
                }
            }
            for p in peaks.into_iter().rev() {
                acc = Some(match acc {
                    None => p,
                    Some(r) => node_hash(&p, &r),
                });
            }
        }
        acc.unwrap_or_else(merkle::empty_root)
    }

}

#[cfg(test)]
mod tests {
    use super::super::tests::rec;
    use super::*;

    #[test]
    fn torn_tail_is_rolled_back_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), "o", &[4; 32]).unwrap();
        let recs: Vec<Vec<u8>> = (0..300).map(rec).collect();
        let refs: Vec<&[u8]> = recs.iter().map(|r| &r[..]).collect();
        s.append(&refs).unwrap();
        drop(s);
        // A crash after writing the next batch's files but before its checkpoint.
        fs::create_dir_all(dir.path().join("tile/0/001.p")).unwrap();
        fs::write(dir.path().join("tile/0/001.p/99"), [0u8; 99 * 32]).unwrap();
        fs::write(dir.path().join("tile/0/002"), [0u8; 8192]).unwrap();
        // ... and its history entry, signed, beyond the checkpoint, then a partial entry.
        let signer = NoteSigner::from_seed("o", &[4; 32]).unwrap();
        let ahead_cp = Checkpoint { origin: "o".into(), size: 599, root: [7; 32], extensions: vec![] };
        let ahead = signer.sign(&ahead_cp.body()).unwrap();
        let hp = dir.path().join(HISTORY);
        let before = fs::read(&hp).unwrap();
        assert_eq!(before.len(), 8 + 104);
        let mut torn = before.clone();
        torn.extend(history_entry(&ahead_cp, &ahead).unwrap());
        torn.extend([0, 200, b'o']);
        fs::write(&hp, torn).unwrap();
        let mut s = Store::open(dir.path(), "o", &[4; 32]).unwrap();
        assert_eq!(s.size(), 300);
        assert!(!dir.path().join("tile/0/002").exists());
        assert_eq!(fs::read(&hp).unwrap(), before);
        assert_eq!(s.checkpoints().unwrap(), [s.checkpoint_note()]);
        s.verify().unwrap();
        s.append(&refs[..10]).unwrap();
        assert_eq!(s.verify().unwrap().checkpoints_checked, 2, "the stored 300 and the latest 310");
        assert_eq!(fs::read(&hp).unwrap(), before, "310 is not stored: only 10 records after 300");
        let p = dir.path().join("tile/entries/000");
        let mut b = fs::read(&p).unwrap();
        b[500] ^= 1;
        fs::write(&p, &b).unwrap();
        let d = s.verify().unwrap_err();
        assert_eq!(d.path, "tile/entries/000");
        assert!(d.record.is_some());
        b[500] ^= 1;
        fs::write(&p, &b).unwrap();
        s.verify().unwrap();
        // A history entry whose root is not the tree's at its size is named.
        let good = fs::read(&hp).unwrap();
        let forged_cp = Checkpoint { origin: "o".into(), size: 5, root: [7; 32], extensions: vec![] };
        let forged = signer.sign(&forged_cp.body()).unwrap();
        let mut bad = good[..8].to_vec();
        bad.extend(history_entry(&forged_cp, &forged).unwrap());
        bad.extend(&good[8..]);
        fs::write(&hp, bad).unwrap();
        let d = s.verify().unwrap_err();
        assert_eq!(d.path, HISTORY);
        assert!(d.what.contains("root differs"), "{d}");
        // Damage before the current checkpoint's entry is never cut by recovery.
        drop(s);
        let damaged = fs::read(&hp).unwrap();
        let s = Store::open(dir.path(), "o", &[4; 32]).unwrap();
        assert_eq!(fs::read(&hp).unwrap(), damaged);
        assert_eq!(s.verify().unwrap_err().path, HISTORY);
        // A flipped size byte in the last entry (making it look ahead) is named, not skipped.
        let mut flipped = good.clone();
        flipped[8] ^= 0x80;
        fs::write(&hp, &flipped).unwrap();
        assert_eq!(s.verify().unwrap_err().path, HISTORY);
        drop(s);
        // The previous format (length-prefixed full notes) is refused with the file named.
        let mut old = (ahead.len() as u16).to_be_bytes().to_vec();
        old.extend(ahead.as_bytes());
        fs::write(&hp, &old).unwrap();
        match Store::open(dir.path(), "o", &[4; 32]).unwrap_err() {
            Error::LedgerDamage { path, message, .. } => assert!(path == HISTORY && message.contains("older ledger format"), "{message}"),
            e => panic!("{e}"),
        }
        assert_eq!(fs::read(&hp).unwrap(), old, "nothing is cut");
        assert_eq!(verify_dir(dir.path(), &signer.verifier()).unwrap_err().path, HISTORY);
    }
}
