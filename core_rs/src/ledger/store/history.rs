//! The checkpoint history (`checkpoints`): every stored checkpoint (at least
//! `HISTORY_SPACING` records after the previous stored one), its torn-tail recovery and its check
//! in `verify`.

use super::*;

pub(super) const HISTORY: &str = "checkpoints";
/// Start of the binary history; the previous format (length-prefixed notes) never starts so.
pub(super) const HISTORY_MAGIC: &[u8; 8] = b"rkcph01\n";
/// One stored checkpoint: size u64 BE ‖ root ‖ signature; the note text is rebuilt from the
/// origin (which is also the key name).
pub(super) const HISTORY_ENTRY: usize = 8 + 32 + 64;
/// A checkpoint is stored when at least this many records came since the last stored one, so
/// the history costs at most 104 / 256 = 0.41 B per record however small the group commits.
pub const HISTORY_SPACING: u64 = 256;

impl Store {
    /// The history as of the write-ahead log's base: the leading entries up to the base size
    /// (made durable before the base); the replay writes the later ones again.
    /// The last kept entry must be the one the log's header says was stored last.
    pub(super) fn recover_history(&mut self, history_last: u64) -> Result<()> {
        let p = self.dir.join(HISTORY);
        let mut b = read_opt(&p)?.unwrap_or_default();
        if b.len() < HISTORY_MAGIC.len() && HISTORY_MAGIC.starts_with(&b) {
            // New (or torn while being created).
            durable::write_atomic(&self.dir, HISTORY, HISTORY_MAGIC, PUBLIC_MODE)?;
            b = HISTORY_MAGIC.to_vec();
        }
        check_history_magic(&b).map_err(Error::from)?;
        let total = (b.len() - HISTORY_MAGIC.len()) / HISTORY_ENTRY;
        let mut n = 0;
        while n < total && entry_size(history_at(&b, n)) <= self.size {
            n += 1;
        }
        // The in-memory size index for `checkpoint_at`: entries in order up to the first one
        // out of order (only damage stops it early).
        let mut sizes = Vec::with_capacity(n);
        for i in 0..n {
            let size = entry_size(history_at(&b, i));
            if sizes.last().is_some_and(|&s| s >= size) {
                break;
            }
            sizes.push(size);
        }
        if sizes.last().copied().unwrap_or(0) != history_last {
            return Err(damage(HISTORY, None, format!(
                "does not end with the checkpoint of tree size {history_last} that the write-ahead log says was stored last")).into());
        }
        // Entries beyond are rewritten by the replay and cut after it (`finish_files`).
        self.history = sizes;
        Ok(())
    }

    /// Write the next history entry (no sync: the write-ahead log holds its signature).
    pub(super) fn write_history_entry(&self, e: &[u8; HISTORY_ENTRY]) -> Result<()> {
        let p = self.dir.join(HISTORY);
        let f = fs::OpenOptions::new().write(true).open(&p).map_err(|e| io_err(&p, e))?;
        let off = (HISTORY_MAGIC.len() + self.history.len() * HISTORY_ENTRY) as u64;
        self.io.write_at(&f, e, off).map_err(|e| io_err(&p, e))
    }

    pub(super) fn open_entry(&self, e: &[u8]) -> Result<(Checkpoint, String)> {
        open_history_entry(e, &self.verifier)
    }

    pub(super) fn read_entry(&self, i: usize) -> Result<String> {
        let p = self.dir.join(HISTORY);
        let mut f = File::open(&p).map_err(|e| io_err(&p, e))?;
        use std::io::{Seek, SeekFrom};
        let mut e = [0u8; HISTORY_ENTRY];
        let off = (HISTORY_MAGIC.len() + i * HISTORY_ENTRY) as u64;
        f.seek(SeekFrom::Start(off)).and_then(|_| f.read_exact(&mut e)).map_err(|e| io_err(&p, e))?;
        let (_, note) = self.open_entry(&e).map_err(|err| Error::from(damage(HISTORY, None, format!("entry at byte {off}: {err}"))))?;
        Ok(note)
    }

    /// The stored checkpoints (every one at least `HISTORY_SPACING` records after the
    /// previous stored one) plus the latest, as signed notes, oldest first.
    pub fn checkpoints(&self) -> Result<Vec<String>> {
        let mut out = (0..self.history.len()).map(|i| self.read_entry(i)).collect::<Result<Vec<_>>>()?;
        if self.history.last() != Some(&self.checkpoint.size) {
            out.push(self.checkpoint_note.clone());
        }
        Ok(out)
    }

    /// The checkpoint of tree size `size`, when it is stored or the latest.
    pub fn checkpoint_at(&self, size: u64) -> Result<String> {
        if size == self.checkpoint.size {
            return Ok(self.checkpoint_note.clone());
        }
        match self.history.binary_search(&size) {
            Ok(i) => self.read_entry(i),
            Err(_) => Err(Error::NotFound(format!("no checkpoint of tree size {size} is stored"))),
        }
    }
}

/// One history entry: size u64 BE, root, the note's Ed25519 signature.
pub(super) fn history_entry(cp: &Checkpoint, note: &str) -> Result<[u8; HISTORY_ENTRY]> {
    let mut e = [0u8; HISTORY_ENTRY];
    e[..8].copy_from_slice(&cp.size.to_be_bytes());
    e[8..40].copy_from_slice(&cp.root);
    e[40..].copy_from_slice(&last_signature(note)?);
    Ok(e)
}

pub(super) fn history_at(b: &[u8], i: usize) -> &[u8] {
    let at = HISTORY_MAGIC.len() + i * HISTORY_ENTRY;
    &b[at..at + HISTORY_ENTRY]
}

pub(super) fn entry_size(e: &[u8]) -> u64 {
    u64::from_be_bytes(e[..8].try_into().expect("8 bytes"))
}

/// Rebuild a stored entry's signed note and check its signature exactly as for any note.
pub(super) fn open_history_entry(e: &[u8], verifier: &NoteVerifier) -> Result<(Checkpoint, String)> {
    let root: Hash = e[8..40].try_into().expect("32 bytes");
    let sig: [u8; 64] = e[40..HISTORY_ENTRY].try_into().expect("64 bytes");
    let body = Checkpoint { origin: verifier.name.clone(), size: entry_size(e), root, extensions: vec![] }.body();
    let note = verifier.note_with(&body, &sig);
    let cp = Checkpoint::open_signed(note.as_bytes(), verifier, &verifier.name)?;
    Ok((cp, note))
}

pub(super) fn check_history_magic(b: &[u8]) -> std::result::Result<(), Damage> {
    if !b.starts_with(HISTORY_MAGIC) {
        return Err(damage(HISTORY, None, "not a binary checkpoint history (written by an older ledger format, \
            which this version does not read, or damaged)"));
    }
    Ok(())
}

/// Check every stored checkpoint up to the verified one `cp`: signature, increasing sizes,
/// its root equal to the root recomputed from the (already verified) tiles at its size.
/// Entries beyond `cp` must still carry a valid signature (a writer published them since, or
/// they are a torn tail the next open cuts). Counts the latest checkpoint (checked by the
/// caller) when it is not stored.
pub(super) fn verify_history(dir: &Path, verifier: &NoteVerifier, cp: &Checkpoint) -> std::result::Result<u64, Damage> {
    let b = read_opt(&dir.join(HISTORY)).map_err(|e| damage(HISTORY, None, e.to_string()))?
        .ok_or_else(|| damage(HISTORY, None, "missing"))?;
    check_history_magic(&b)?;
    let nodes = DirNodes { dir, n: cp.size, cache: Default::default() };
    let mut last = None::<u64>;
    let mut found = false;
    let mut checked = 0u64;
    for i in 0..(b.len() - HISTORY_MAGIC.len()) / HISTORY_ENTRY {
        let e = history_at(&b, i);
        let off = HISTORY_MAGIC.len() + i * HISTORY_ENTRY;
        let bad = |what: String| damage(HISTORY, None, format!("checkpoint #{i} (byte {off}): {what}"));
        let (h, _) = open_history_entry(e, verifier).map_err(|e| bad(e.to_string()))?;
        if h.size > cp.size {
            break;
        }
        if last.is_some_and(|l| h.size <= l) {
            return Err(bad(format!("tree size {} is not above the previous {}", h.size, last.unwrap_or(0))));
        }
        last = Some(h.size);
        let root = merkle::root(&nodes, h.size).map_err(|e| bad(e.to_string()))?;
        if root != h.root {
            return Err(bad(format!("root differs from the tree recomputed at size {}", h.size)));
        }
        found |= h.size == cp.size;
        checked += 1;
    }
    Ok(checked + u64::from(!found))
}
