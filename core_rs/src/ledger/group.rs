//! Group commit over a `Store`: callers that append at the same time share one durable
//! commit (one syncfs, one checkpoint). A caller returns only after the commit covering its
//! records has published its checkpoint.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard};

use super::store::Store;
use crate::error::{Error, Result};

#[derive(Default)]
struct Queue {
    /// Pending records, packed as in entry bundles (uint16-BE length prefixes).
    packed: Vec<u8>,
    /// (ticket, number of records) in queue order.
    batches: Vec<(u64, usize)>,
    next_ticket: u64,
    leader: bool,
    /// ticket → (first sequence number, checkpoint note) or the error of its commit.
    done: HashMap<u64, Result<(u64, String)>>,
}

/// Where a caller's records become durable: the file ledger's group commit here, or another
/// driver's (the PostgreSQL store's sequencing transaction, bound from Python). The inquiry path
/// appends through this.
pub trait Appender: Sync {
    /// Append packed layout-1 records (uint16-BE length-prefixed); (first sequence number,
    /// count, checkpoint note covering them) once durable.
    fn append_packed(&self, packed: &[u8]) -> Result<(u64, u64, String)>;
}

impl Appender for Ledger {
    fn append_packed(&self, packed: &[u8]) -> Result<(u64, u64, String)> {
        Ledger::append_packed(self, packed)
    }
}

pub struct Ledger {
    store: Mutex<Store>,
    queue: Mutex<Queue>,
    cv: Condvar,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ledger")
    }
}

impl Ledger {
    pub fn open(dir: impl AsRef<Path>, origin: &str, seed: &[u8]) -> Result<Self> {
        Ok(Ledger { store: Mutex::new(Store::open(dir, origin, seed)?), queue: Mutex::new(Queue::default()), cv: Condvar::new() })
    }

    /// The store, for reads and maintenance. Appends go through `append`.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append encoded records; returns (first sequence number, checkpoint note covering them).
    pub fn append(&self, entries: Vec<Vec<u8>>) -> Result<(u64, String)> {
        let mut packed = Vec::with_capacity(entries.iter().map(|e| e.len() + 2).sum());
        for e in &entries {
            super::tiles::check_entry_len(e.len())?;
            packed.extend_from_slice(&(e.len() as u16).to_be_bytes());
            packed.extend_from_slice(e);
        }
        self.append_packed(&packed).map(|(first, _, note)| (first, note))
    }

    /// Append packed records (uint16-BE length-prefixed); returns (first sequence number,
    /// count, checkpoint note covering them) once durable.
    pub fn append_packed(&self, packed: &[u8]) -> Result<(u64, u64, String)> {
        // Refuse bad records before they can fail a commit shared with other callers.
        let entries = super::tiles::split_bundle(packed)
            .map_err(|off| Error::InvalidRecord(format!("packed records are malformed at byte {off}")))?;
        for (i, e) in entries.iter().enumerate() {
            super::record::check_encoded(e).map_err(|err| Error::InvalidRecord(format!("record {i} of the batch: {err}")))?;
        }
        let count = entries.len();
        if count == 0 {
            let s = self.store();
            return Ok((s.size(), 0, s.checkpoint_note().to_string()));
        }
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if !q.leader && q.batches.is_empty() {
            // Nobody else is committing or waiting: commit straight from the caller's buffer.
            q.leader = true;
            drop(q);
            let result = {
                let mut s = self.store();
                s.append_trusted(&entries).map(|first| (first, count as u64, s.checkpoint_note().to_string()))
            };
            let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            q.leader = false;
            self.cv.notify_all();
            return result;
        }
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.batches.push((ticket, count));
        q.packed.extend_from_slice(packed);
        loop {
            if let Some(r) = q.done.remove(&ticket) {
                return r.map(|(first, note)| (first, count as u64, note));
            }
            if !q.leader {
                q.leader = true;
                let packed = std::mem::take(&mut q.packed);
                let batches = std::mem::take(&mut q.batches);
                drop(q);
                let refs = super::tiles::split_bundle(&packed).expect("checked on entry");
                let result = {
                    let mut s = self.store();
                    s.append_trusted(&refs).map(|first| (first, s.checkpoint_note().to_string()))
                };
                q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                let mut offset = 0u64;
                for (t, n) in batches {
                    let r = match &result {
                        Ok((first, note)) => Ok((first + offset, note.clone())),
                        Err(e) => Err(e.clone()),
                    };
                    offset += n as u64;
                    q.done.insert(t, r);
                }
                q.leader = false;
                self.cv.notify_all();
            } else {
                q = self.cv.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::record::{Outcome, Record};
    use std::sync::Arc;

    #[test]
    fn concurrent_appenders_get_distinct_durable_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let l = Arc::new(Ledger::open(dir.path(), "o", &[1; 32]).unwrap());
        let rec = Record {
            seq: 0, time_us: 0, requester: 1, provider: 2, affair: "1-3".into(), items: vec![],
            table_hash: [0; 32], outcome: Outcome::Denied { code: 3, reason: "x".into() }, permit_id: [0; 16],
            pseudonym: [9; 32], withheld: false, disclose_after: None, delegator: None,
        }.encode().unwrap();
        let hs: Vec<_> = (0..4).map(|_| {
            let l = l.clone();
            let rec = rec.clone();
            std::thread::spawn(move || (0..20).map(|_| l.append(vec![rec.clone(); 3]).unwrap().0).collect::<Vec<_>>())
        }).collect();
        let mut firsts: Vec<u64> = hs.into_iter().flat_map(|h| h.join().unwrap()).collect();
        firsts.sort();
        assert_eq!(firsts, (0..80).map(|i| i * 3).collect::<Vec<_>>());
        assert_eq!(l.store().size(), 240);
        l.store().verify().unwrap();
        assert!(l.append(vec![vec![1, 2, 3]]).is_err());
    }
}
