//! Appending: the batch's public leaves, openings and new checkpoint go to the write-ahead log
//! in one frame made durable by one `fdatasync`; while that runs, the derived files (bundles,
//! tiles, openings, index run, history entry, `checkpoint.tmp`) are written without any sync;
//! once the frame is durable the checkpoint is renamed into place and the records acknowledged.

use super::wal::{self, Base};
use crate::ledger::integrate::{prepare_into, Salts};
use super::*;

/// What one commit derives from its leaves: files to write whole, openings to write at their
/// slots, and the partial files it supersedes.
#[derive(Default)]
pub(super) struct Built {
    pub files: Vec<(String, Vec<u8>)>,
    /// Per file of `files`, the end of the records whose bodies or persons it holds (entry
    /// bundles, index runs), 0 for hashes: such a file is not re-derived below the retention
    /// minimum.
    pub holds_until: Vec<u64>,
    /// (segment, first slot, openings)
    pub open_writes: Vec<(u64, u64, Vec<u8>)>,
    pub old_partials: Vec<String>,
    pub new_partials: Vec<String>,
    /// Index segments this batch filled (their runs are among `files`).
    pub sealed: Vec<u64>,
}

/// A failed commit, and whether its write-ahead frame is durable (then it must not be cut).
pub(super) struct Failed {
    pub error: Error,
    pub frame_durable: bool,
}

fn fail(error: Error) -> Failed {
    Failed { error, frame_durable: false }
}

impl Store {
    /// Append already-encoded records (each a complete layout-1 record; their sequence numbers
    /// are overwritten, a zero time becomes now, the pseudonym is committed). Returns the first
    /// sequence number once the records and a checkpoint covering them are durable.
    pub fn append(&mut self, entries: &[&[u8]]) -> Result<u64> {
        for (i, e) in entries.iter().enumerate() {
            tiles::check_entry_len(e.len())?;
            record::check_encoded(e).map_err(|err| Error::InvalidRecord(format!("record {i} of the batch: {err}")))?;
        }
        self.append_trusted(entries)
    }

    /// `append` for records already checked with `record::check_encoded`.
    pub(crate) fn append_trusted(&mut self, entries: &[&[u8]]) -> Result<u64> {
        if let Some(p) = &self.poisoned {
            return Err(Error::Storage(format!("the ledger must be reopened after a failed commit ({p})")));
        }
        if entries.is_empty() {
            return Ok(self.size);
        }
        let first = self.size;
        let wal_len = self.wal_len;
        match self.commit(entries) {
            Ok(()) => Ok(first),
            Err(f) => {
                // Back to what is durable; a failed batch is never acknowledged.
                let back = (|| -> Result<()> {
                    if !f.frame_durable {
                        let p = self.dir.join(wal::segment_path(self.wal_base));
                        let w = self.wal.as_ref().ok_or_else(|| Error::Storage("no write-ahead log open".into()))?;
                        self.io.set_len(w, wal_len).and_then(|_| self.io.fdatasync(w)).map_err(|e| io_err(&p, e))?;
                    }
                    self.recover()
                })();
                match back {
                    Ok(()) => Err(f.error),
                    Err(r) => {
                        self.poisoned = Some(format!("{}; and recovery failed: {r}", f.error));
                        Err(Error::Storage(format!("{}; and recovery failed: {r}", f.error)))
                    }
                }
            }
        }
    }

    fn commit(&mut self, entries: &[&[u8]]) -> std::result::Result<(), Failed> {
        let now = now_us();
        let first = self.size;
        let salts = Salts::new().map_err(fail)?;
        let (mut packed, mut openings) = (Vec::new(), Vec::new());
        prepare_into(entries, first, now, &salts, &mut packed, &mut openings);
        let built = self.build(&packed, &openings);
        let root = self.edge_root();
        let cp = Checkpoint { origin: self.signer.name.clone(), size: self.size, root, extensions: vec![] };
        let note = self.signer.sign(&cp.body()).map_err(fail)?;
        let sig = last_signature(&note).map_err(fail)?;
        let stored = self.size - self.history.last().copied().unwrap_or(0) >= HISTORY_SPACING;
        let frame = wal::encode_frame(first, entries.len(), &packed, &openings, self.size, &root, &sig);
        let wal_path = self.dir.join(wal::segment_path(self.wal_base));
        let mut w = self.wal.take().ok_or_else(|| fail(Error::Storage("no write-ahead log open".into())))?;
        let wrote = self.io.write_all(&mut w, &frame);
        let (synced, derived) = if wrote.is_ok() {
            // The one durable write; the derived files are written meanwhile (none is trusted
            // after a crash until replay has checked it, and none is published before the
            // checkpoint rename below).
            std::thread::scope(|sc| {
                let io = &self.io;
                let wr = &w;
                let h = sc.spawn(move || io.fdatasync(wr));
                let d = self.write_derived(&built, false).and_then(|()| {
                    let tmp = self.dir.join(CHECKPOINT_TMP);
                    self.io.create(&tmp, note.as_bytes()).map_err(|e| io_err(&tmp, e))?;
                    if stored {
                        self.write_history_entry(&history_entry(&cp, &note)?)?;
                    }
                    Ok(())
                });
                (h.join().expect("fdatasync thread"), d)
            })
        } else {
            (Ok(()), Ok(()))
        };
        self.wal = Some(w);
        wrote.map_err(|e| fail(io_err(&wal_path, e)))?;
        synced.map_err(|e| fail(io_err(&wal_path, e)))?;
        self.wal_len += frame.len() as u64;
        // The frame is durable: from here on the batch survives a crash (replay re-derives).
        let durable = |error: Error| Failed { error, frame_durable: true };
        derived.map_err(durable)?;
        let tmp = self.dir.join(CHECKPOINT_TMP);
        self.io.rename(&tmp, &self.dir.join(CHECKPOINT)).map_err(|e| durable(io_err(&tmp, e)))?;
        if stored {
            self.history.push(self.size);
        }
        self.checkpoint = cp;
        self.checkpoint_note = note;
        *self.tail_cache.lock().expect("cache lock") = None;
        for &k in &built.sealed {
            self.register_run(k, 1).map_err(durable)?;
        }
        for p in &built.old_partials {
            if !built.new_partials.contains(p) {
                // Superseded partial tiles, deleted only now: until the new checkpoint was
                // published, readers following the old one fetched exactly these.
                self.io.remove(&self.dir.join(p)).map_err(|e| durable(io_err(&self.dir.join(p), e)))?;
            }
        }
        if self.wal_len > self.wal_limit {
            self.rotate();
        }
        Ok(())
    }

    /// Fold public leaves (packed) and their openings into the in-memory tree state; return the
    /// files they derive.
    pub(super) fn build(&mut self, packed: &[u8], openings: &[u8]) -> Built {
        let old_size = self.size;
        let mut built = Built { old_partials: self.partial_paths(old_size), ..Default::default() };
        let mut seq = old_size;
        let mut bundle = std::mem::take(&mut self.tail_bundle);
        bundle.reserve(packed.len().min(TILE_WIDTH as usize * 256));
        let mut at = 0usize;
        let mut op = 0usize;
        let mut seg_start = (seq, 0usize);
        while at < packed.len() {
            let len = u16::from_be_bytes([packed[at], packed[at + 1]]) as usize;
            let leaf = &packed[at + 2..at + 2 + len];
            bundle.extend_from_slice(&packed[at..at + 2 + len]);
            at += 2 + len;
            let prefix = u32::from_be_bytes(openings[op + record::SALT_LEN..op + record::SALT_LEN + 4].try_into().expect("4"));
            op += OPENING_LEN;
            self.tail_index.push(prefix);
            let h = leaf_hash(leaf);
            self.push_hash(0, h, &mut built.files);
            seq += 1;
            if seq % SEGMENT == 0 {
                // A full segment: its openings and sorted run are derived with the batch.
                built.open_writes.push((seq / SEGMENT - 1, seg_start.0 % SEGMENT, openings[seg_start.1..op].to_vec()));
                seg_start = (seq, op);
                built.holds_until.resize(built.files.len(), 0);
                built.files.push((run_path(seq / SEGMENT - 1, 1), encode_run(&self.tail_index)));
                built.holds_until.push(seq);
                built.sealed.push(seq / SEGMENT - 1);
                self.tail_index.clear();
            }
            if seq % TILE_WIDTH == 0 {
                built.holds_until.resize(built.files.len(), 0);
                built.files.push((bundle_path(seq / TILE_WIDTH - 1, TILE_WIDTH), std::mem::take(&mut bundle)));
                built.holds_until.push(seq);
            }
        }
        if seg_start.1 < op {
            built.open_writes.push((seq / SEGMENT, seg_start.0 % SEGMENT, openings[seg_start.1..op].to_vec()));
        }
        self.size = seq;
        self.tail_bundle = bundle;
        built.new_partials = self.partial_paths(seq);
        let (full0, width0) = level_tiles(seq, 0);
        if width0 > 0 {
            built.files.push((bundle_path(full0, width0), self.tail_bundle.clone()));
        }
        for level in 0..8u32 {
            let (full, width) = level_tiles(seq, level);
            let p = tile_path(level, full, width);
            if width > 0 && !built.old_partials.contains(&p) {
                built.files.push((p, self.tails[level as usize].concat()));
            }
        }
        built
    }

    /// Write what `build` derived. On replay (`replay`), files already holding the right bytes
    /// are left alone and others are replaced atomically (readers may be reading them), and
    /// partial files are left to `finish_files`.
    pub(super) fn write_derived(&self, built: &Built, replay: bool) -> Result<()> {
        for (i, (rel, data)) in built.files.iter().enumerate() {
            let path = self.dir.join(rel);
            if replay {
                if built.holds_until.get(i).is_some_and(|&e| e != 0 && e <= self.min_index) {
                    continue;
                }
                if rel.starts_with("index/run/") && built.sealed.iter().any(|&k| rel == &run_path(k, 1) && self.merger.covers(k)) {
                    continue;
                }
                if built.new_partials.contains(rel) || rel.contains(".p/") {
                    continue;
                }
                self.replace_if_different(&path, data)?;
            } else {
                self.io.create(&path, data).map_err(|e| io_err(&path, e))?;
            }
        }
        for (k, slot, data) in &built.open_writes {
            let first = k * SEGMENT + slot;
            let skip = self.min_index.saturating_sub(first).min(data.len() as u64 / OPENING_LEN as u64);
            if replay && (k + 1) * SEGMENT <= self.min_index {
                continue;
            }
            let (slot, data) = if replay { (slot + skip, &data[skip as usize * OPENING_LEN..]) } else { (*slot, &data[..]) };
            let path = self.dir.join(open_path(*k));
            let f = io::open_rw(&path).map_err(|e| io_err(&path, e))?;
            if slot == 0 && !replay {
                // A new segment: nothing of an earlier, never committed attempt stays behind.
                self.io.set_len(&f, 0).map_err(|e| io_err(&path, e))?;
            }
            self.io.write_at(&f, data, slot * OPENING_LEN as u64).map_err(|e| io_err(&path, e))?;
        }
        Ok(())
    }

    /// Replace `path` with `data` unless it already holds exactly that (tmp + rename, no sync).
    pub(super) fn replace_if_different(&self, path: &Path, data: &[u8]) -> Result<()> {
        if read_opt(path)?.as_deref() == Some(data) {
            return Ok(());
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("f");
        let tmp = path.with_file_name(format!(".{name}.replay.tmp"));
        self.io.create(&tmp, data).map_err(|e| io_err(&tmp, e))?;
        self.io.rename(&tmp, path).map_err(|e| io_err(path, e))
    }

    /// Start a new write-ahead segment at the current size once the derived files are durable,
    /// then delete the older ones. A failure before the new segment is in place changes nothing
    /// (retried after the next commit); one after it poisons the store until it is reopened.
    fn rotate(&mut self) {
        let Some(w) = self.wal.as_ref() else { return };
        if self.io.syncfs(w).is_err() {
            return;
        }
        let Ok(sig) = last_signature(&self.checkpoint_note) else { return };
        let base = Base {
            size: self.size,
            root: self.checkpoint.root,
            sig,
            history_last: self.history.last().copied().unwrap_or(0),
            tails: self.tails.clone(),
            bundle: self.tail_bundle.clone(),
        };
        let wal_dir = self.dir.join(wal::WAL_DIR);
        let rel = wal::segment_path(self.size);
        let tmp = wal_dir.join(format!(".{:020}.tmp", self.size));
        let header = wal::encode_header(&base);
        let made = self.io.create(&tmp, &header).and_then(|_| {
            let f = File::open(&tmp)?;
            self.io.fdatasync(&f)
        });
        if made.is_err() || self.io.rename(&tmp, &self.dir.join(&rel)).is_err() {
            let _ = fs::remove_file(&tmp);
            return;
        }
        let switched = self.io.fsync_dir(&wal_dir).and_then(|_| self.io.open_append(&self.dir.join(&rel), false));
        match switched {
            Ok(f) => {
                self.wal = Some(f);
                self.wal_base = self.size;
                self.wal_len = header.len() as u64;
                // Older segments are covered by the durable files now.
                let mut removed = false;
                for b in wal::list_segments(&wal_dir).unwrap_or_default() {
                    if b < self.wal_base && self.io.remove(&wal_dir.join(format!("{b:020}"))).is_ok() {
                        removed = true;
                    }
                }
                if removed {
                    let _ = self.io.fsync_dir(&wal_dir);
                }
            }
            Err(e) => {
                self.poisoned = Some(format!("{}: the new write-ahead log segment is not durable: {e}", rel));
            }
        }
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

    /// Root from the right-edge partial tiles alone.
    pub(super) fn edge_root(&self) -> Hash {
        edge_root_of(&self.tails)
    }
}
