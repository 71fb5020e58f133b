//! Recovery (on open, and after a failed commit): the oldest write-ahead segment's header gives
//! the tree's edge at its base, below which every derived file was made durable; the frames are
//! replayed over the derived files (each checked: leaves hash to the signed root, openings open
//! their commitments); a torn last frame that was never acknowledged is cut.

use super::commit::Built;
use super::wal::{self, Base, Parsed};
use super::*;

impl Store {
    pub(super) fn recover(&mut self) -> Result<()> {
        self.poisoned = None;
        self.wal = None;
        self.cache.lock().expect("cache lock").clear();
        *self.tail_cache.lock().expect("cache lock") = None;
        remove_opt(&self.dir.join(CHECKPOINT_TMP))?;
        let wal_dir = self.dir.join(wal::WAL_DIR);
        let mut segs = wal::list_segments(&wal_dir).map_err(|e| io_err(&wal_dir, e))?;
        let published = self.published_size();
        if segs.is_empty() && published > 0 {
            return Err(damage(wal::WAL_DIR, None, format!(
                "no write-ahead log segment, but the published checkpoint covers {published} records; \
                 restore wal/ from a backup (the ledger is not opened, nothing is changed)")).into());
        }
        if segs.is_empty() {
            // A new ledger: the empty tree's edge.
            let base = Base {
                size: 0,
                root: merkle::empty_root(),
                sig: last_signature(&self.checkpoint_note)?,
                history_last: 0,
                tails: vec![Vec::new(); 8],
                bundle: Vec::new(),
            };
            durable::write_atomic(&wal_dir, &format!("{:020}", 0), &wal::encode_header(&base), 0o600)?;
            segs.push(0);
        }
        let first_rel = wal::segment_path(segs[0]);
        let data = fs::read(self.dir.join(&first_rel)).map_err(|e| io_err(&self.dir.join(&first_rel), e))?;
        let (base, _) = wal::decode_header(&data).map_err(|w| damage(&first_rel, None, w))?;
        if base.size != segs[0] {
            return Err(damage(&first_rel, None, format!("header says base {}", base.size)).into());
        }
        self.apply_base(&base, &first_rel)?;
        self.min_index = read_retention(&self.dir)?;
        self.check_durable_edge()?;
        self.load_base_files(&base)?;
        let last = segs.len() - 1;
        'segments: for (i, &b) in segs.iter().enumerate() {
            let rel = wal::segment_path(b);
            let owned;
            let data = if i == 0 {
                &data
            } else {
                owned = fs::read(self.dir.join(&rel)).map_err(|e| io_err(&self.dir.join(&rel), e))?;
                &owned
            };
            let (h, hlen) = wal::decode_header(data).map_err(|w| damage(&rel, None, w))?;
            if i > 0 && (h.size != self.size || h.root != self.checkpoint.root || h.tails != self.tails || h.bundle != self.tail_bundle) {
                return Err(damage(&rel, None, format!("segment base {} does not continue the log replayed to {}", h.size, self.size)).into());
            }
            let mut at = hlen;
            loop {
                let why = match wal::parse_frame(&data[at..]) {
                    Parsed::End => break,
                    Parsed::Frame(f, n) => match self.replay_frame(&f) {
                        Ok(()) => {
                            at += n;
                            continue;
                        }
                        Err(why) => why,
                    },
                    Parsed::Short => "the last frame is incomplete".to_string(),
                    Parsed::Bad(w) => w,
                };
                // Only an unacknowledged tail may be cut: the last segment's last frame, beyond
                // every checkpoint ever published.
                if i != last || published > self.size {
                    return Err(damage(&rel, None, format!("frame at byte {at}: {why}")).into());
                }
                let p = self.dir.join(&rel);
                let f = fs::OpenOptions::new().write(true).open(&p).map_err(|e| io_err(&p, e))?;
                self.io.set_len(&f, at as u64).and_then(|_| self.io.fdatasync(&f)).map_err(|e| io_err(&p, e))?;
                break 'segments;
            }
        }
        if published > self.size {
            // The log is the truth, and it ends before what was published: a segment is missing
            // or cut. Refuse rather than remove the derived files of acknowledged records.
            return Err(damage(wal::segment_path(segs[last]), None, format!(
                "the write-ahead log ends at record {}, before the published checkpoint's {published}; \
                 restore the missing segment (the ledger is not opened, nothing is changed)", self.size)).into());
        }
        let active = self.dir.join(wal::segment_path(segs[last]));
        let w = self.io.open_append(&active, false).map_err(|e| io_err(&active, e))?;
        self.wal_len = w.metadata().map_err(|e| io_err(&active, e))?.len();
        self.wal = Some(w);
        self.wal_base = segs[last];
        self.finish_files(base.size)?;
        self.trim_runs()?;
        if read_opt(&self.dir.join(CHECKPOINT))?.as_deref() != Some(self.checkpoint_note.as_bytes()) {
            durable::write_atomic(&self.dir, CHECKPOINT, self.checkpoint_note.as_bytes(), PUBLIC_MODE)?;
        }
        Ok(())
    }

    /// The tree state of a segment header, checked (signature, root, partial bundle).
    fn apply_base(&mut self, base: &Base, rel: &str) -> Result<()> {
        let bad = |what: &str| Error::from(damage(rel, None, what.to_string()));
        if base.tails.len() != 8 || edge_root_of(&base.tails) != base.root {
            return Err(bad("header's edge does not hash to its root"));
        }
        for (l, t) in base.tails.iter().enumerate() {
            if t.len() as u64 != level_tiles(base.size, l as u32).1 {
                return Err(bad("header's edge does not fit its size"));
            }
        }
        let cp = Checkpoint { origin: self.signer.name.clone(), size: base.size, root: base.root, extensions: vec![] };
        let note = self.verifier.note_with(&cp.body(), &base.sig);
        Checkpoint::open_signed(note.as_bytes(), &self.verifier, &self.signer.name).map_err(|e| bad(&format!("header checkpoint: {e}")))?;
        let entries = tiles::split_bundle(&base.bundle).map_err(|_| bad("header's partial bundle is malformed"))?;
        if entries.len() != base.tails[0].len() || entries.iter().zip(&base.tails[0]).any(|(e, h)| leaf_hash(e) != *h) {
            return Err(bad("header's partial bundle does not match its edge"));
        }
        self.size = base.size;
        self.tails = base.tails.clone();
        self.tail_bundle = base.bundle.clone();
        self.checkpoint = cp;
        self.checkpoint_note = note;
        Ok(())
    }

    /// The size of the published `checkpoint` when it verifies (0 otherwise).
    fn published_size(&self) -> u64 {
        read_opt(&self.dir.join(CHECKPOINT))
            .ok()
            .flatten()
            .and_then(|n| Checkpoint::open_signed(&n, &self.verifier, &self.signer.name).ok())
            .map_or(0, |c| c.size)
    }

    /// The durable files the replay builds on: the newest full bundle below the base against its
    /// level-0 tile (a bundle cut short or edited is refused, naming it), the current segment's
    /// openings (cut to the base), the index runs of full segments and the checkpoint history.
    fn check_durable_edge(&self) -> Result<()> {
        let (full, _) = level_tiles(self.size, 0);
        if full == 0 {
            return Ok(());
        }
        let b = full - 1;
        let trel = tile_path(0, b, TILE_WIDTH);
        let tile = read_opt(&self.dir.join(&trel))?.ok_or_else(|| Error::from(damage(&trel, None, "level-0 tile is missing")))?;
        if tile.len() != 8192 {
            return Err(damage(&trel, None, format!("{} bytes, expected 8192", tile.len())).into());
        }
        if (b + 1) * TILE_WIDTH <= self.min_index {
            return Ok(());
        }
        let brel = bundle_path(b, TILE_WIDTH);
        let data = read_opt(&self.dir.join(&brel))?.ok_or_else(|| Error::from(damage(&brel, Some(b * TILE_WIDTH), "entry bundle is missing")))?;
        let entries = tiles::split_bundle(&data).map_err(|off| Error::from(damage(&brel, Some(b * TILE_WIDTH), format!("bundle is malformed at byte {off}"))))?;
        if entries.len() as u64 != TILE_WIDTH {
            return Err(damage(&brel, Some(b * TILE_WIDTH + (entries.len() as u64).min(255)), format!("bundle holds {} records, its tile 256", entries.len())).into());
        }
        for (k, e) in entries.iter().enumerate() {
            if leaf_hash(e)[..] != tile[k * 32..k * 32 + 32] {
                return Err(damage(&brel, Some(b * TILE_WIDTH + k as u64), "record does not match its leaf hash in the level-0 tile").into());
            }
        }
        Ok(())
    }

    /// Nothing is cut here (a replay that stops at damage must leave the files as it found
    /// them); `finish_files` trims what replay did not rewrite.
    fn load_base_files(&mut self, base: &Base) -> Result<()> {
        let cur = self.size / SEGMENT;
        let rel = open_path(cur);
        let want = (self.size % SEGMENT) * OPENING_LEN as u64;
        let p = self.dir.join(&rel);
        let mut b = vec![0u8; want as usize];
        if want > 0 {
            let f = File::open(&p).map_err(|e| match e.kind() {
                ErrorKind::NotFound => Error::from(damage(&rel, Some(cur * SEGMENT), "openings file is missing")),
                _ => io_err(&p, e),
            })?;
            let have = f.metadata().map_err(|e| io_err(&p, e))?.len();
            if have < want {
                return Err(damage(&rel, Some(cur * SEGMENT + have / OPENING_LEN as u64),
                    format!("holds {} openings, the durable log {}", have / OPENING_LEN as u64, want / OPENING_LEN as u64)).into());
            }
            f.read_exact_at(&mut b, 0).map_err(|e| io_err(&p, e))?;
        }
        self.tail_index = b.chunks_exact(OPENING_LEN).map(prefix_of_opening).collect();
        self.load_runs(cur)?;
        self.recover_history(base.history_last)
    }

    /// Replay one frame: check it, fold it in, rewrite what it derives where that differs.
    fn replay_frame(&mut self, f: &wal::Frame<'_>) -> std::result::Result<(), String> {
        if f.first != self.size {
            return Err(format!("frame starts at {}, the log is at {}", f.first, self.size));
        }
        for (i, (leaf, o)) in f.leaves.iter().zip(f.openings.chunks_exact(OPENING_LEN)).enumerate() {
            record::check_public(leaf).map_err(|e| format!("record {}: {e}", f.first + i as u64))?;
            if u64::from_be_bytes(leaf[record::SEQ_OFFSET..record::SEQ_OFFSET + 8].try_into().expect("8")) != f.first + i as u64 {
                return Err(format!("record {} carries another sequence number", f.first + i as u64));
            }
            if !record::opens(leaf, o) {
                return Err(format!("record {}: the opening does not open its commitment", f.first + i as u64));
            }
        }
        let saved = (self.tails.clone(), self.tail_bundle.clone(), self.tail_index.clone(), self.size);
        let built: Built = self.build(f.packed, f.openings);
        let root = self.edge_root();
        let cp = Checkpoint { origin: self.signer.name.clone(), size: self.size, root, extensions: vec![] };
        let note = self.verifier.note_with(&cp.body(), &f.sig);
        let ok = root == f.root && f.size == self.size && Checkpoint::open_signed(note.as_bytes(), &self.verifier, &self.signer.name).is_ok();
        if !ok {
            (self.tails, self.tail_bundle, self.tail_index, self.size) = saved;
            return Err("its records do not hash to its signed checkpoint".into());
        }
        self.write_derived(&built, true).map_err(|e| e.to_string())?;
        for &k in &built.sealed {
            if (k + 1) * SEGMENT > self.min_index && !self.merger.covers(k) {
                self.register_run(k, 1).map_err(|e| e.to_string())?;
            }
        }
        if self.size - self.history.last().copied().unwrap_or(0) >= HISTORY_SPACING {
            self.write_history_entry(&history_entry(&cp, &note).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
            self.history.push(self.size);
        }
        self.checkpoint = cp;
        self.checkpoint_note = note;
        *self.tail_cache.lock().expect("cache lock") = None;
        Ok(())
    }

    /// After replay: the partial files of the final size written, nothing beyond it left (tiles,
    /// bundles, openings, history entries).
    fn finish_files(&mut self, base_size: u64) -> Result<()> {
        let n = self.size;
        let cur = n / SEGMENT;
        let open_dir = self.dir.join(OPEN_DIR);
        for e in fs::read_dir(&open_dir).map_err(|e| io_err(&open_dir, e))?.flatten() {
            if e.file_name().to_str().and_then(|n| n.parse::<u64>().ok()).is_none_or(|k| k > cur) {
                remove_opt(&e.path())?;
            }
        }
        let p = self.dir.join(open_path(cur));
        let f = io::open_rw(&p).map_err(|e| io_err(&p, e))?;
        let want = (n % SEGMENT) * OPENING_LEN as u64;
        if f.metadata().map_err(|e| io_err(&p, e))?.len() != want {
            self.io.set_len(&f, want).map_err(|e| io_err(&p, e))?;
        }
        let hp = self.dir.join(HISTORY);
        let keep = (HISTORY_MAGIC.len() + self.history.len() * HISTORY_ENTRY) as u64;
        let hf = fs::OpenOptions::new().write(true).open(&hp).map_err(|e| io_err(&hp, e))?;
        if hf.metadata().map_err(|e| io_err(&hp, e))?.len() > keep {
            self.io.set_len(&hf, keep).map_err(|e| io_err(&hp, e))?;
        }
        for level in 0..8u32 {
            let (full, width) = level_tiles(n, level);
            let (from, _) = level_tiles(base_size, level);
            self.remove_beyond(|i, w| tile_path(level, i, w), from, full, width)?;
            if width > 0 {
                self.replace_if_different(&self.dir.join(tile_path(level, full, width)), &self.tails[level as usize].concat())?;
            }
        }
        let (full, width) = level_tiles(n, 0);
        let (from, _) = level_tiles(base_size, 0);
        self.remove_beyond(bundle_path, from, full, width)?;
        if width > 0 {
            self.replace_if_different(&self.dir.join(bundle_path(full, width)), &self.tail_bundle)?;
        }
        Ok(())
    }

    /// Delete partials of tiles `from..=full` other than the committed (`full`, `width`), and
    /// every file of tiles beyond `full`.
    pub(super) fn remove_beyond(&self, path: impl Fn(u64, u64) -> String, from: u64, full: u64, width: u64) -> Result<()> {
        for i in from.saturating_sub(1)..full {
            if let Ok(rd) = fs::read_dir(self.dir.join(format!("{}.p", path(i, TILE_WIDTH)))) {
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
            // At `full` and beyond there is no full tile yet.
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
            if !any && i > full {
                return Ok(());
            }
            i += 1;
        }
    }
}

pub(super) fn read_retention(dir: &Path) -> Result<u64> {
    match read_opt(&dir.join(RETENTION))? {
        Some(b) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| Error::Storage(format!("{}: not a record number", dir.join(RETENTION).display()))),
        None => Ok(0),
    }
}

pub(super) fn prefix_of_opening(o: &[u8]) -> u32 {
    u32::from_be_bytes(o[record::SALT_LEN..record::SALT_LEN + 4].try_into().expect("4"))
}
