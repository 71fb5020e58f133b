use std::fs::OpenOptions;
use std::io::Write;

use super::*;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("renkei-holdings-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

fn newest_journal(dir: &Path) -> PathBuf {
    journal_path(dir, *journals(dir).unwrap().last().unwrap())
}

/// A change by raw person id (no new persons).
fn raw(op: Op, groups: Groups) -> Change {
    Change { op, first_new: 0, new_links: vec![], groups }
}

fn storage_error<T>(r: Result<T>) -> String {
    match r {
        Err(Error::Storage(m)) => m,
        Err(e) => panic!("expected a storage error, got {e}"),
        Ok(_) => panic!("expected a storage error, got success"),
    }
}

#[test]
fn torn_tail_is_dropped_and_acknowledged_records_kept() {
    let dir = tmp("torn");
    {
        let s = HoldingsStore::create(&dir, u64::MAX).unwrap();
        s.acquire(vec![(1, vec![1, 2, 3])]).unwrap();
        s.acquire(vec![(2, vec![4])]).unwrap();
    }
    // A half-written third record, as a crash in the middle of a write leaves it.
    let full = journal::encode(3, &raw(Op::Acquire, vec![(3, vec![5, 6, 7, 8])])).unwrap();
    let path = newest_journal(&dir);
    let before = fs::metadata(&path).unwrap().len();
    OpenOptions::new().append(true).open(&path).unwrap().write_all(&full[..full.len() - 5]).unwrap();
    let s = HoldingsStore::create(&dir, u64::MAX).unwrap();
    assert_eq!(s.open_report().torn_bytes_dropped, (full.len() - 5) as u64);
    assert_eq!(fs::metadata(&path).unwrap().len(), before);
    assert_eq!(s.read().counts(), vec![(1, 3), (2, 1)]);
    // Appending after the cut works and survives another reopen.
    s.acquire(vec![(3, vec![9])]).unwrap();
    drop(s);
    let s = HoldingsStore::create(&dir, u64::MAX).unwrap();
    assert_eq!(s.open_report().torn_bytes_dropped, 0);
    assert_eq!(s.read().counts(), vec![(1, 3), (2, 1), (3, 1)]);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn corrupted_checksum_at_tail_is_dropped_but_mid_file_damage_is_refused() {
    let dir = tmp("crc");
    {
        let s = HoldingsStore::create(&dir, u64::MAX).unwrap();
        s.acquire(vec![(1, vec![1])]).unwrap();
        s.acquire(vec![(1, vec![2])]).unwrap();
    }
    let path = newest_journal(&dir);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    fs::write(&path, &bytes).unwrap();
    let s = HoldingsStore::create(&dir, u64::MAX).unwrap();
    assert_eq!(s.read().count(1), 1);
    s.acquire(vec![(1, vec![3])]).unwrap();
    drop(s);
    // A complete record failing its checksum with another record after it: damage, named.
    let good = fs::read(&path).unwrap();
    let first_len = journal::encode(1, &raw(Op::Acquire, vec![(1, vec![1])])).unwrap().len();
    let mut bad = good.clone();
    bad[first_len - 6] ^= 1;
    fs::write(&path, &bad).unwrap();
    let msg = storage_error(HoldingsStore::create(&dir, u64::MAX));
    assert!(msg.contains(&path.display().to_string()) && msg.contains("at byte 0"), "{msg}");
    assert_eq!(fs::read(&path).unwrap(), bad, "nothing is cut");
    // The same for the second record: its offset is named.
    let mut bad = good.clone();
    bad[first_len + 30] ^= 1;
    bad.extend(journal::encode(3, &raw(Op::Acquire, vec![(1, vec![4])])).unwrap());
    fs::write(&path, &bad).unwrap();
    let msg = storage_error(HoldingsStore::create(&dir, u64::MAX));
    assert!(msg.contains(&format!("at byte {first_len}")), "{msg}");
    // A torn-looking tail in a journal that a later one follows (as a checkpoint interrupted
    // after creating the next journal leaves them) is damage too.
    fs::write(&path, &good[..good.len() - 3]).unwrap();
    fs::write(journal_path(&dir, 2), b"").unwrap();
    let msg = storage_error(HoldingsStore::create(&dir, u64::MAX));
    assert!(msg.contains(&path.display().to_string()) && msg.contains("a later one follows"), "{msg}");
    // Whole, it opens and continues in the newest journal.
    fs::write(&path, &good).unwrap();
    let s = HoldingsStore::create(&dir, u64::MAX).unwrap();
    assert_eq!(s.read().count(1), 2);
    assert_eq!(newest_journal(&dir), journal_path(&dir, 2));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn automatic_checkpoints_keep_the_state() {
    let dir = tmp("auto");
    let s = HoldingsStore::create(&dir, 4096).unwrap();
    for i in 0..50u32 {
        s.acquire(vec![(i % 3, (i * 100..i * 100 + 100).collect())]).unwrap();
    }
    s.release(vec![(0, (0..50).collect())]).unwrap();
    let counts = s.read().counts();
    drop(s);
    assert!(dir.join(snapshot::FILE).exists());
    assert_eq!(journals(&dir).unwrap().len(), 1);
    let s = HoldingsStore::create(&dir, 4096).unwrap();
    assert!(s.open_report().snapshot_loaded);
    assert_eq!(s.read().counts(), counts);
    assert_eq!(s.read().total(), 5000 - 50);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn damaged_snapshot_is_refused() {
    let dir = tmp("snapdamage");
    {
        let s = HoldingsStore::create(&dir, u64::MAX).unwrap();
        s.acquire(vec![(7, (0..70_000).collect())]).unwrap();
        s.checkpoint().unwrap();
    }
    let p = dir.join(snapshot::FILE);
    let mut b = fs::read(&p).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 4;
    fs::write(&p, &b).unwrap();
    assert!(matches!(HoldingsStore::create(&dir, u64::MAX), Err(Error::Storage(_))));
    b.truncate(mid);
    fs::write(&p, &b).unwrap();
    assert!(matches!(HoldingsStore::create(&dir, u64::MAX), Err(Error::Storage(_))));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn concurrent_acquisitions_share_fsyncs_and_all_land() {
    let dir = tmp("group");
    let s = std::sync::Arc::new(HoldingsStore::create(&dir, u64::MAX).unwrap());
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..50u32 {
                    s.acquire(vec![(t, vec![i])]).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(s.read().total(), 400);
    drop(s);
    let s = HoldingsStore::create(&dir, u64::MAX).unwrap();
    assert_eq!(s.read().total(), 400);
    assert_eq!(s.open_report().records_replayed, 400);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn one_store_per_directory_until_closed() {
    let dir = tmp("lock");
    let s = HoldingsStore::create(&dir, u64::MAX).unwrap();
    s.acquire(vec![(1, vec![1])]).unwrap();
    match HoldingsStore::create(&dir, u64::MAX) {
        Err(Error::Storage(m)) => assert_eq!(m, format!("{} is in use by another process", dir.display())),
        _ => panic!("a second store on the same directory must be refused"),
    }
    s.close();
    assert!(matches!(s.acquire(vec![(1, vec![2])]), Err(Error::Storage(m)) if m.contains("closed")));
    assert!(s.read().holds(1, 1), "reads still answer from memory");
    let s2 = HoldingsStore::create(&dir, u64::MAX).unwrap();
    assert_eq!(s2.read().total(), 1);
    drop(s2);
    drop(s);
    let _ = fs::remove_dir_all(&dir);
}

// -- person link ids ---------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn link(&mut self) -> LinkId {
        let mut l = [0u8; 16];
        l[..8].copy_from_slice(&self.next().to_le_bytes());
        l[8..].copy_from_slice(&self.next().to_le_bytes());
        l
    }
}

fn acquire_links(s: &HoldingsStore, agency: u32, links: &[LinkId]) -> Vec<u32> {
    s.acquire_links(links, |ps| vec![(agency, ps.to_vec())]).unwrap().0
}

#[test]
fn link_ids_round_trip_through_journal_and_snapshot() {
    let dir = tmp("links");
    let mut rng = Rng(11);
    let a: Vec<LinkId> = (0..1000).map(|_| rng.link()).collect();
    let b: Vec<LinkId> = (0..500).map(|_| rng.link()).collect();
    let (pa, pb, codes_of);
    {
        let s = HoldingsStore::create(&dir, u64::MAX).unwrap();
        // The same new link twice in one call gets one index; indices dense from 0 in order
        // of first appearance.
        let mut first = a[..10].to_vec();
        first.push(a[3]);
        let p = acquire_links(&s, 1, &first);
        assert_eq!(p, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 3]);
        pa = acquire_links(&s, 1, &a);
        assert_eq!(pa, (0..1000).collect::<Vec<u32>>());
        assert_eq!(s.read().count(1), 1000);
        // Known and new links mixed, another agency: the known keep their index.
        let mut mixed = b.clone();
        mixed.extend_from_slice(&a[..100]);
        pb = acquire_links(&s, 2, &mixed);
        assert_eq!(&pb[..500], (1000..1500).collect::<Vec<u32>>());
        assert_eq!(&pb[500..], &pa[..100]);
        assert_eq!(s.read().person_count(), 1500);
        codes_of = s.read().holders_of(pa[50]);
        assert_eq!(codes_of, [1, 2]);
    }
    let check = |s: &HoldingsStore| {
        let h = s.read();
        assert_eq!(h.person_count(), 1500);
        for (i, l) in a.iter().chain(&b).enumerate() {
            let want = if i < 1000 { pa[i] } else { pb[i - 1000] };
            assert_eq!(h.person_of_link(l), Some(want));
            assert_eq!(h.link_of(want), Some(*l));
        }
        assert_eq!(h.link_of(1500), None);
        assert_eq!(h.holders_of(pa[50]), codes_of);
        assert_eq!(h.count(2), 600);
    };
    let s = HoldingsStore::create(&dir, u64::MAX).unwrap();
    assert!(!s.open_report().snapshot_loaded);
    check(&s);
    s.checkpoint().unwrap();
    drop(s);
    let s = HoldingsStore::create(&dir, u64::MAX).unwrap();
    assert!(s.open_report().snapshot_loaded && s.open_report().records_replayed == 0);
    check(&s);
    // After the snapshot, more persons go to the journal; both together on reopen.
    let c = rng.link();
    assert_eq!(s.persons_of_links(&[c, a[0]], true).unwrap(), [Some(1500), Some(0)]);
    drop(s);
    let s = HoldingsStore::create(&dir, u64::MAX).unwrap();
    assert_eq!(s.open_report().records_replayed, 1);
    check_extra(&s, &c);
    let _ = fs::remove_dir_all(&dir);

    fn check_extra(s: &HoldingsStore, c: &LinkId) {
        assert_eq!(s.read().person_of_link(c), Some(1500));
        assert_eq!(s.read().person_count(), 1501);
        assert!(s.read().holders_of(1500).is_empty(), "assigned, held by nobody");
    }
}

#[test]
fn indices_are_never_reused() {
    let dir = tmp("reuse");
    let mut rng = Rng(5);
    let s = HoldingsStore::create(&dir, u64::MAX).unwrap();
    let a: Vec<LinkId> = (0..10).map(|_| rng.link()).collect();
    acquire_links(&s, 1, &a);
    // Releasing every holding of a person keeps the person's index (and link id).
    assert_eq!(s.release(vec![(1, (0..10).collect())]).unwrap(), 10);
    assert_eq!(s.read().total(), 0);
    // Looking up unknown links assigns nothing.
    let unknown = rng.link();
    assert_eq!(s.persons_of_links(&[unknown, a[4]], false).unwrap(), [None, Some(4)]);
    assert_eq!(s.read().person_count(), 10);
    assert_eq!(acquire_links(&s, 1, &[unknown]), [10]);
    assert_eq!(acquire_links(&s, 3, &a[4..5]), [4]);
    s.checkpoint().unwrap();
    drop(s);
    let s = HoldingsStore::create(&dir, u64::MAX).unwrap();
    assert_eq!(acquire_links(&s, 1, &[rng.link()]), [11]);
    assert_eq!(s.read().person_of_link(&a[4]), Some(4));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn concurrent_acquisitions_of_the_same_new_links_get_one_index_each() {
    let dir = tmp("linkrace");
    let mut rng = Rng(77);
    let links: Vec<LinkId> = (0..400).map(|_| rng.link()).collect();
    let s = std::sync::Arc::new(HoldingsStore::create(&dir, u64::MAX).unwrap());
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let (s, links) = (s.clone(), links.clone());
            std::thread::spawn(move || {
                // Each thread walks the same links in its own order, a few at a time.
                let mut order: Vec<usize> = (0..links.len()).collect();
                order.rotate_left(t as usize * 50);
                if t % 2 == 1 {
                    order.reverse();
                }
                let mut seen = Vec::new();
                for chunk in order.chunks(7) {
                    let batch: Vec<LinkId> = chunk.iter().map(|&i| links[i]).collect();
                    let ps = s.acquire_links(&batch, |ps| vec![(t, ps.to_vec())]).unwrap().0;
                    seen.extend(chunk.iter().copied().zip(ps));
                }
                seen
            })
        })
        .collect();
    let mut index_of: std::collections::HashMap<usize, u32> = std::collections::HashMap::new();
    for t in threads {
        for (i, p) in t.join().unwrap() {
            assert_eq!(*index_of.entry(i).or_insert(p), p, "link {i} got two indices");
        }
    }
    let mut all: Vec<u32> = index_of.values().copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..400).collect::<Vec<u32>>(), "dense, each once");
    assert_eq!(s.read().total(), 8 * 400);
    drop(s);
    let s = HoldingsStore::create(&dir, u64::MAX).unwrap();
    for (&i, &p) in &index_of {
        assert_eq!(s.read().person_of_link(&links[i]), Some(p));
    }
    let _ = fs::remove_dir_all(&dir);
}

/// Random calls against a plain model (a HashMap of link ids, a set of holdings), with
/// checkpoints and reopens in between.
#[test]
fn links_agree_with_a_plain_model() {
    use std::collections::{BTreeSet, HashMap};
    for seed in [1u64, 2, 3, 4] {
        let dir = tmp(&format!("model{seed}"));
        let mut rng = Rng(seed * 0x9E37_79B9 + 1);
        let mut model: HashMap<LinkId, u32> = HashMap::new();
        let mut by_index: Vec<LinkId> = Vec::new();
        let mut held: BTreeSet<(u32, u32)> = BTreeSet::new();
        let mut s = HoldingsStore::create(&dir, 1 << 14).unwrap();
        for step in 0..300 {
            match rng.below(10) {
                0..=5 => {
                    let agency = rng.below(4) as u32;
                    let n = 1 + rng.below(40) as usize;
                    let links: Vec<LinkId> = (0..n)
                        .map(|_| if !by_index.is_empty() && rng.below(2) == 0 {
                            by_index[rng.below(by_index.len() as u64) as usize]
                        } else {
                            rng.link()
                        })
                        .collect();
                    let (ps, new) = s.acquire_links(&links, |ps| vec![(agency, ps.to_vec())]).unwrap();
                    let mut want_new = 0;
                    for (l, p) in links.iter().zip(&ps) {
                        let next = model.len() as u32;
                        let w = *model.entry(*l).or_insert_with(|| {
                            by_index.push(*l);
                            next
                        });
                        assert_eq!(*p, w, "seed {seed} step {step}");
                        want_new += held.insert((agency, w)) as u64;
                    }
                    assert_eq!(new, want_new);
                }
                6 => {
                    let links: Vec<LinkId> = (0..5).map(|_| rng.link()).chain(by_index.iter().take(3).copied()).collect();
                    let assign = rng.below(2) == 0;
                    let got = s.persons_of_links(&links, assign).unwrap();
                    for (l, g) in links.iter().zip(got) {
                        if assign {
                            let next = model.len() as u32;
                            model.entry(*l).or_insert_with(|| {
                                by_index.push(*l);
                                next
                            });
                        }
                        assert_eq!(g, model.get(l).copied());
                    }
                }
                7 => {
                    let agency = rng.below(4) as u32;
                    let victims: Vec<u32> = held.iter().filter(|(a, _)| *a == agency).map(|(_, p)| *p).step_by(3).collect();
                    let n = s.release(vec![(agency, victims.clone())]).unwrap();
                    assert_eq!(n, victims.len() as u64);
                    for p in victims {
                        held.remove(&(agency, p));
                    }
                }
                8 => s.checkpoint().unwrap(),
                _ => {
                    drop(s);
                    s = HoldingsStore::create(&dir, 1 << 14).unwrap();
                }
            }
            let h = s.read();
            assert_eq!(h.person_count(), model.len() as u64);
            assert_eq!(h.total(), held.len() as u64);
        }
        let h = s.read();
        for (i, l) in by_index.iter().enumerate() {
            assert_eq!(h.person_of_link(l), Some(i as u32));
            assert_eq!(h.link_of(i as u32), Some(*l));
        }
        for &(a, p) in &held {
            assert!(h.holds(a, p));
        }
        drop(h);
        drop(s);
        let _ = fs::remove_dir_all(&dir);
    }
}

#[test]
fn raw_person_ids_and_link_ids_do_not_mix() {
    let dir = tmp("mix");
    let mut rng = Rng(3);
    let s = HoldingsStore::create(&dir, u64::MAX).unwrap();
    acquire_links(&s, 1, &[rng.link(), rng.link()]);
    assert!(s.acquire(vec![(2, vec![1])]).is_ok(), "an assigned index may be held directly");
    assert!(matches!(s.acquire(vec![(2, vec![2])]), Err(Error::InvalidArgument(_))));
    drop(s);
    let _ = fs::remove_dir_all(&dir);
    let s = HoldingsStore::create(&dir, u64::MAX).unwrap();
    s.acquire(vec![(1, vec![0, 1])]).unwrap();
    assert!(matches!(s.acquire_links(&[rng.link()], |_| vec![]), Err(Error::InvalidArgument(_))));
    drop(s);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn missing_files_and_old_formats_are_named() {
    let dir = tmp("missing");
    let mut rng = Rng(9);
    {
        let s = HoldingsStore::create(&dir, u64::MAX).unwrap();
        acquire_links(&s, 1, &[rng.link()]);
        s.checkpoint().unwrap(); // snapshot of generation 2, journal.2
        acquire_links(&s, 1, &[rng.link()]);
    }
    let snap = dir.join(snapshot::FILE);
    let snap_bytes = fs::read(&snap).unwrap();
    let j2 = journal_path(&dir, 2);
    let j2_bytes = fs::read(&j2).unwrap();
    // Snapshot gone, a later-generation journal present: not silently empty.
    fs::remove_file(&snap).unwrap();
    let msg = storage_error(HoldingsStore::create(&dir, u64::MAX));
    assert!(msg.contains(&snap.display().to_string()) && msg.contains("missing"), "{msg}");
    fs::write(&snap, &snap_bytes).unwrap();
    // The journal the snapshot continues in, gone.
    fs::remove_file(&j2).unwrap();
    let msg = storage_error(HoldingsStore::create(&dir, u64::MAX));
    assert!(msg.contains(&j2.display().to_string()) && msg.contains("missing"), "{msg}");
    // A gap between journals.
    fs::write(journal_path(&dir, 3), b"").unwrap();
    let msg = storage_error(HoldingsStore::create(&dir, u64::MAX));
    assert!(msg.contains(&j2.display().to_string()) && msg.contains("missing"), "{msg}");
    fs::remove_file(journal_path(&dir, 3)).unwrap();
    fs::write(&j2, &j2_bytes).unwrap();
    assert_eq!(HoldingsStore::create(&dir, u64::MAX).unwrap().read().person_count(), 2);
    // The earlier formats are refused by name, never misread.
    let mut old = snap_bytes.clone();
    old[..8].copy_from_slice(b"RKHSNAP1");
    fs::write(&snap, &old).unwrap();
    let msg = storage_error(HoldingsStore::create(&dir, u64::MAX));
    assert!(msg.contains(&snap.display().to_string()) && msg.contains("format 1"), "{msg}");
    fs::write(&snap, &snap_bytes).unwrap();
    let mut old = j2_bytes.clone();
    old[..4].copy_from_slice(b"RKJ1");
    fs::write(&j2, &old).unwrap();
    let msg = storage_error(HoldingsStore::create(&dir, u64::MAX));
    assert!(msg.contains(&j2.display().to_string()) && msg.contains("format 1"), "{msg}");
    // A snapshot whose person count is damaged is refused before any large allocation.
    fs::write(&j2, &j2_bytes).unwrap();
    let mut bad = snap_bytes.clone();
    bad[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(&snap, &bad).unwrap();
    assert!(storage_error(HoldingsStore::create(&dir, u64::MAX)).contains("damaged"));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn messages_never_carry_a_link_id() {
    let dir = tmp("nolink");
    let mut rng = Rng(21);
    let l = rng.link();
    let s = HoldingsStore::create(&dir, u64::MAX).unwrap();
    acquire_links(&s, 1, &[l]);
    drop(s);
    // A record replayed twice (a duplicate assignment) is damage; its message names the file
    // and offset, not the link id.
    let j = newest_journal(&dir);
    let mut b = fs::read(&j).unwrap();
    let dup = journal::encode(2, &Change { op: Op::Assign, first_new: 1, new_links: vec![l], groups: vec![] }).unwrap();
    b.extend(&dup);
    b.extend(journal::encode(3, &raw(Op::Acquire, vec![(1, vec![0])])).unwrap());
    fs::write(&j, &b).unwrap();
    let msg = storage_error(HoldingsStore::create(&dir, u64::MAX));
    assert!(msg.contains("already has an index"), "{msg}");
    let hex: String = l.iter().map(|x| format!("{x:02x}")).collect();
    assert!(!msg.contains(&hex) && !msg.as_bytes().windows(16).any(|w| w == l));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn an_emptied_or_missing_store_is_refused_by_open() {
    let dir = tmp("emptied");
    drop(HoldingsStore::create(&dir, u64::MAX).unwrap());
    assert!(HoldingsStore::open(&dir, u64::MAX).is_ok());
    for f in fs::read_dir(&dir).unwrap() {
        fs::remove_file(f.unwrap().path()).unwrap();
    }
    let msg = storage_error(HoldingsStore::open(&dir, u64::MAX));
    assert!(msg.contains(&dir.display().to_string()) && msg.contains("is empty"), "{msg}");
    fs::remove_dir(&dir).unwrap();
    let msg = storage_error(HoldingsStore::open(&dir, u64::MAX));
    assert!(msg.contains("does not exist"), "{msg}");
    assert!(!dir.exists(), "open never creates");
}

/// Every write, fsync, rename, truncate, create and unlink of the holdings fails in turn
/// (EIO, ENOSPC) while acquisitions and checkpoints run: the failing call gets a clear
/// storage error, no call that failed was acknowledged, every acknowledged change is there
/// after reopening, `verify` is clean, and the reopened store takes changes again.
#[test]
fn injected_io_faults_never_lose_or_invent_acknowledged_changes() {
    use crate::durable::{faults, IoOp};
    let ops = [IoOp::Create, IoOp::Write, IoOp::Fsync, IoOp::FsyncDir, IoOp::Rename, IoOp::Truncate, IoOp::Remove];
    let mut rng = Rng(77);
    let mut scenarios = 0;
    // Stopping at the first failure is what a crash right after it leaves; going on checks
    // that the store stays usable (or refuses) after a failure.
    for (op, stop) in ops.into_iter().flat_map(|op| [(op, true), (op, false)]) {
        for errno in [libc::EIO, libc::ENOSPC] {
            for nth in 0.. {
                let dir = tmp(&format!("fault-{op:?}-{stop}-{errno}-{nth}"));
                let mut acked: Vec<(LinkId, u32)> = Vec::new();
                let mut failed = 0;
                let fired = {
                    let s = HoldingsStore::create(&dir, 600).unwrap();
                    // A write failure is followed by the cut-back; make that fail too.
                    let _truncate = (op == IoOp::Truncate).then(|| faults::plan(IoOp::Write, nth, errno));
                    let _g = faults::plan(op, if op == IoOp::Truncate { 0 } else { nth }, errno);
                    for i in 0..12u32 {
                        if stop && failed > 0 {
                            break;
                        }
                        let l = rng.link();
                        let agency = 1 + i % 3;
                        match s.acquire_links(&[l], |p| vec![(agency, p.to_vec())]) {
                            Ok(_) => acked.push((l, agency)),
                            Err(Error::Storage(m)) => {
                                failed += 1;
                                let errtext = std::io::Error::from_raw_os_error(errno).to_string();
                                assert!(
                                    m.contains(&errtext) || m.contains("unusable after an earlier failure") || m.contains("fsync failed"),
                                    "{op:?}/{errno}/{nth}: {m}"
                                );
                                assert!(m.contains("holdings") || m.contains(&dir.display().to_string()), "{m}");
                            }
                            Err(e) => panic!("{op:?}/{errno}/{nth}: not a storage error: {e}"),
                        }
                        if i == 5 {
                            if let Err(e) = s.checkpoint() {
                                assert!(matches!(e, Error::Storage(_)), "{e}");
                                failed += 1;
                            }
                        }
                    }
                    faults::fired(op)
                };
                // Reopened without faults: clean, every acknowledged change present.
                let v = super::verify(&dir).unwrap_or_else(|e| panic!("{op:?}/{errno}/{nth}: verify: {e}"));
                let s = HoldingsStore::open(&dir, 600).unwrap_or_else(|e| panic!("{op:?}/{errno}/{nth}: open: {e}"));
                assert_eq!(v.persons, s.read().person_count());
                {
                    let h = s.read();
                    for (l, agency) in &acked {
                        let p = h.person_of_link(l).unwrap_or_else(|| panic!("{op:?}/{errno}/{nth}: an acknowledged person is lost"));
                        assert!(h.holds(*agency, p), "{op:?}/{errno}/{nth}: an acknowledged holding is lost");
                    }
                    // Indices stay dense and unique: nothing half-applied.
                    let n = h.person_count() as u32;
                    for i in 0..n {
                        assert_eq!(h.person_of_link(&h.link_of(i).unwrap()), Some(i));
                    }
                }
                // (A fault inside an automatic checkpoint fails no call: the change it follows
                // is durable already, and the journal still holds everything.)
                let _ = failed;
                let l = rng.link();
                s.acquire_links(&[l], |p| vec![(9, p.to_vec())]).unwrap();
                drop(s);
                assert!(HoldingsStore::open(&dir, 600).unwrap().read().person_of_link(&l).is_some());
                let _ = fs::remove_dir_all(&dir);
                scenarios += 1;
                if !fired {
                    break;
                }
            }
        }
    }
    assert!(scenarios > 80, "only {scenarios} fault scenarios ran");
}
