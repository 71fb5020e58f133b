//! Appending: a batch's bundles, tiles, index entries and checkpoint history entry made durable
//! together (group commit), then the checkpoint published.

use super::*;

impl Store {
    /// Append already-encoded records (each a complete v1 record; their sequence numbers are
    /// overwritten, a zero time becomes now). Returns the first sequence number once the
    /// records, their tiles and a checkpoint covering them are durable.
    pub fn append(&mut self, entries: &[&[u8]]) -> Result<u64> {
        if entries.is_empty() {
            return Ok(self.size);
        }
        for (i, e) in entries.iter().enumerate() {
            tiles::check_entry_len(e.len())?;
            record::check_encoded(e).map_err(|err| Error::InvalidRecord(format!("record {i} of the batch: {err}")))?;
        }
        self.append_trusted(entries)
    }

    /// `append` for records already checked with `record::check_encoded`.
    pub(crate) fn append_trusted(&mut self, entries: &[&[u8]]) -> Result<u64> {
        if entries.is_empty() {
            return Ok(self.size);
        }
        let first = self.size;
        match self.append_checked(entries) {
            Ok(()) => Ok(first),
            Err(e) => {
                // Back to what is on disk; a failed batch is never acknowledged.
                let cp_size = self.checkpoint.size;
                self.size = cp_size;
                self.recover().map_err(|r| Error::Storage(format!("{e}; and recovery failed: {r}")))?;
                Err(e)
            }
        }
    }

    pub(super) fn append_checked(&mut self, entries: &[&[u8]]) -> Result<()> {
        let now = now_us();
        let old_size = self.size;
        let old_partials: Vec<String> = self.partial_paths(old_size);
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut index_add = Vec::with_capacity(entries.len() * 4);
        let mut sealed = false;
        let mut seq = self.size;
        let mut bundle = std::mem::take(&mut self.tail_bundle);
        bundle.reserve(entries.iter().map(|e| e.len() + 2).sum());
        for e in entries {
            bundle.extend_from_slice(&(e.len() as u16).to_be_bytes());
            let start = bundle.len();
            bundle.extend_from_slice(e);
            // The record as stored: its sequence number, and the ledger's clock if it had none.
            let rec = &mut bundle[start..];
            rec[record::SEQ_OFFSET..record::SEQ_OFFSET + 8].copy_from_slice(&seq.to_be_bytes());
            if record::time_of(rec) == 0 {
                rec[record::TIME_OFFSET..record::TIME_OFFSET + 8].copy_from_slice(&now.to_be_bytes());
            }
            let rec = &bundle[start..];
            let prefix: [u8; 4] = record::pseudonym_of(rec)[..4].try_into().expect("4");
            self.tail_index.push(u32::from_be_bytes(prefix));
            index_add.extend_from_slice(&prefix);
            let h = leaf_hash(rec);
            self.push_hash(0, h, &mut files);
            seq += 1;
            if seq % SEGMENT == 0 {
                // A full segment: its sorted run is committed with the batch; the next
                // segment's records go to a new tail file.
                files.push((run_path(seq / SEGMENT - 1), encode_run(&self.tail_index)));
                self.tail_index.clear();
                index_add.clear();
                sealed = true;
            }
            if seq % TILE_WIDTH == 0 {
                files.push((bundle_path(seq / TILE_WIDTH - 1, TILE_WIDTH), std::mem::take(&mut bundle)));
            }
        }
        self.size = seq;
        self.tail_bundle = bundle;
        let new_partials = self.partial_paths(seq);
        let (full0, width0) = level_tiles(seq, 0);
        if width0 > 0 {
            files.push((bundle_path(full0, width0), self.tail_bundle.clone()));
        }
        for level in 0..8u32 {
            let (full, width) = level_tiles(seq, level);
            let p = tile_path(level, full, width);
            if width > 0 && !old_partials.contains(&p) {
                files.push((p, self.tails[level as usize].concat()));
            }
        }
        let mut opened: Vec<(PathBuf, File)> = Vec::with_capacity(files.len());
        for (p, data) in &files {
            let path = self.dir.join(p);
            let f = match durable::create_private(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    durable::create_dir_private(path.parent().expect("tile paths have parents"))?;
                    durable::create_private(&path).map_err(|e| io_err(&path, e))?
                }
                Err(e) => return Err(io_err(&path, e)),
            };
            let mut f = f;
            f.write_all(data).map_err(|e| io_err(&path, e))?;
            opened.push((path, f));
        }
        if sealed {
            let p = self.dir.join(tail_path(seq / SEGMENT));
            let mut f = durable::create_private(&p).map_err(|e| io_err(&p, e))?;
            f.write_all(&index_add).map_err(|e| io_err(&p, e))?;
            opened.push((p, f));
        } else {
            let ip = self.dir.join(tail_path(seq / SEGMENT));
            self.index_file.write_all(&index_add).map_err(|e| io_err(&ip, e))?;
        }
        let root = self.edge_root();
        let cp = Checkpoint { origin: self.signer.name.clone(), size: seq, root, extensions: vec![] };
        let note = self.signer.sign(&cp.body())?;
        // The new checkpoint goes to a temporary name now, so the one flush below makes it
        // durable together with the records and tiles; only then is it renamed into place.
        let tmp_path = self.dir.join(CHECKPOINT_TMP);
        let mut tmp = durable::create_private(&tmp_path).map_err(|e| io_err(&tmp_path, e))?;
        tmp.write_all(note.as_bytes()).map_err(|e| io_err(&tmp_path, e))?;
        opened.push((tmp_path.clone(), tmp));
        // The history entry (if this checkpoint is stored) is flushed by the same syncfs;
        // recovery drops it if the rename below never happens.
        let stored = seq - self.history.last().copied().unwrap_or(0) >= HISTORY_SPACING;
        if stored {
            let hentry = history_entry(&cp, &note)?;
            let hp = self.dir.join(HISTORY);
            self.history_file.write_all(&hentry).map_err(|e| io_err(&hp, e))?;
        }
        self.make_durable(&opened)?;
        drop(opened);
        fs::rename(&tmp_path, self.dir.join(CHECKPOINT)).map_err(|e| io_err(&tmp_path, e))?;
        fsync_dir(&self.dir)?;
        if stored {
            self.history.push(seq);
        }
        self.checkpoint = cp;
        self.checkpoint_note = note;
        *self.tail_cache.lock().expect("cache lock") = None;
        if sealed {
            let p = self.dir.join(tail_path(seq / SEGMENT));
            self.index_file = OpenOptions::new().read(true).append(true).open(&p).map_err(|e| io_err(&p, e))?;
            // The old segment's tail is superseded by its run.
            let _ = fs::remove_file(self.dir.join(tail_path(old_size / SEGMENT)));
        }
        for p in old_partials {
            if !new_partials.contains(&p) {
                // Superseded partial tiles: garbage, not needed for any committed state.
                let _ = fs::remove_file(self.dir.join(p));
            }
        }
        Ok(())
    }

    #[cfg(target_os = "linux")]
    pub(super) fn make_durable(&self, _files: &[(PathBuf, File)]) -> Result<()> {
        use std::os::fd::AsRawFd;
        // One syncfs flushes every file and directory entry of the batch: the group commit.
        // Since Linux 5.8 it reports writeback errors of the filesystem.
        let rc = unsafe { libc::syncfs(self.index_file.as_raw_fd()) };
        if rc != 0 {
            return Err(io_err(&self.dir, std::io::Error::last_os_error()));
        }
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn make_durable(&self, files: &[(PathBuf, File)]) -> Result<()> {
        let mut dirs = std::collections::BTreeSet::new();
        for (p, f) in files {
            f.sync_all().map_err(|e| io_err(p, e))?;
            let mut d = p.parent();
            while let Some(x) = d {
                if x == self.dir {
                    break;
                }
                dirs.insert(x.to_path_buf());
                d = x.parent();
            }
        }
        self.index_file.sync_all().map_err(|e| io_err(&self.dir, e))?;
        self.history_file.sync_all().map_err(|e| io_err(&self.dir, e))?;
        for d in dirs {
            fsync_dir(&d)?;
        }
        fsync_dir(&self.dir)
    }

    pub(super) fn partial_paths(&self, size: u64) -> Vec<String> {
        let mut v = Vec::new();
        for level in 0..8u32 {
            let (full, width) = level_tiles(size, level);
            if width > 0 {
                v.push(tile_path(level, full, width));
                if level == 0 {
                    v.push(bundle_path(full, width));
                }
            }
        }
        v
    }

    pub(super) fn push_hash(&mut self, level: u32, h: Hash, files: &mut Vec<(String, Vec<u8>)>) {
        let l = level as usize;
        self.tails[l].push(h);
        if self.tails[l].len() as u64 == TILE_WIDTH {
            let full = std::mem::take(&mut self.tails[l]);
            // Full tiles already written at this level = hashes one level up.
            let index = if level < 7 { self.tails_len_total(level + 1) } else { 0 };
            let top = subtree(&full);
            files.push((tile_path(level, index, TILE_WIDTH), full.concat()));
            if level < 7 {
                self.push_hash(level + 1, top, files);
            }
        }
    }

    pub(super) fn tails_len_total(&self, level: u32) -> u64 {
        // Hashes at `level` = (full tiles at level) * 256 + tail; full tiles = hashes one up.
        let up = if level < 7 { self.tails_len_total(level + 1) } else { 0 };
        up * TILE_WIDTH + self.tails[level as usize].len() as u64
    }
}
