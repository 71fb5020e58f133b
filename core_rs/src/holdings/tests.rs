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

#[test]
fn torn_tail_is_dropped_and_acknowledged_records_kept() {
    let dir = tmp("torn");
    {
        let s = HoldingsStore::open(&dir, u64::MAX).unwrap();
        s.acquire(vec![(1, vec![1, 2, 3])]).unwrap();
        s.acquire(vec![(2, vec![4])]).unwrap();
    }
    // A half-written third record, as a crash in the middle of a write leaves it.
    let full = journal::encode(3, Op::Acquire, &[(3, vec![5, 6, 7, 8])]);
    let path = newest_journal(&dir);
    let before = fs::metadata(&path).unwrap().len();
    OpenOptions::new().append(true).open(&path).unwrap().write_all(&full[..full.len() - 5]).unwrap();
    let s = HoldingsStore::open(&dir, u64::MAX).unwrap();
    assert_eq!(s.open_report().torn_bytes_dropped, (full.len() - 5) as u64);
    assert_eq!(fs::metadata(&path).unwrap().len(), before);
    assert_eq!(s.read().counts(), vec![(1, 3), (2, 1)]);
    // Appending after the cut works and survives another reopen.
    s.acquire(vec![(3, vec![9])]).unwrap();
    drop(s);
    let s = HoldingsStore::open(&dir, u64::MAX).unwrap();
    assert_eq!(s.open_report().torn_bytes_dropped, 0);
    assert_eq!(s.read().counts(), vec![(1, 3), (2, 1), (3, 1)]);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn corrupted_checksum_at_tail_is_dropped_but_mid_file_damage_is_refused() {
    let dir = tmp("crc");
    {
        let s = HoldingsStore::open(&dir, u64::MAX).unwrap();
        s.acquire(vec![(1, vec![1])]).unwrap();
        s.acquire(vec![(1, vec![2])]).unwrap();
    }
    let path = newest_journal(&dir);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    fs::write(&path, &bytes).unwrap();
    let s = HoldingsStore::open(&dir, u64::MAX).unwrap();
    assert_eq!(s.read().count(1), 1);
    drop(s);
    // Damage the first (only) record while a later, closed journal exists: refuse.
    let s = HoldingsStore::open(&dir, u64::MAX).unwrap();
    s.acquire(vec![(1, vec![3])]).unwrap();
    drop(s);
    let mut bytes = fs::read(&path).unwrap();
    bytes[21] ^= 1;
    fs::write(&path, &bytes).unwrap();
    fs::write(journal_path(&dir, 99), journal::encode(50, Op::Acquire, &[(1, vec![4])])).unwrap();
    assert!(matches!(HoldingsStore::open(&dir, u64::MAX), Err(Error::Storage(_))));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn automatic_checkpoints_keep_the_state() {
    let dir = tmp("auto");
    let s = HoldingsStore::open(&dir, 4096).unwrap();
    for i in 0..50u32 {
        s.acquire(vec![(i % 3, (i * 100..i * 100 + 100).collect())]).unwrap();
    }
    s.release(vec![(0, (0..50).collect())]).unwrap();
    let counts = s.read().counts();
    drop(s);
    assert!(dir.join(snapshot::FILE).exists());
    assert_eq!(journals(&dir).unwrap().len(), 1);
    let s = HoldingsStore::open(&dir, 4096).unwrap();
    assert!(s.open_report().snapshot_loaded);
    assert_eq!(s.read().counts(), counts);
    assert_eq!(s.read().total(), 5000 - 50);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn damaged_snapshot_is_refused() {
    let dir = tmp("snapdamage");
    {
        let s = HoldingsStore::open(&dir, u64::MAX).unwrap();
        s.acquire(vec![(7, (0..70_000).collect())]).unwrap();
        s.checkpoint().unwrap();
    }
    let p = dir.join(snapshot::FILE);
    let mut b = fs::read(&p).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 4;
    fs::write(&p, &b).unwrap();
    assert!(matches!(HoldingsStore::open(&dir, u64::MAX), Err(Error::Storage(_))));
    b.truncate(mid);
    fs::write(&p, &b).unwrap();
    assert!(matches!(HoldingsStore::open(&dir, u64::MAX), Err(Error::Storage(_))));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn concurrent_acquisitions_share_fsyncs_and_all_land() {
    let dir = tmp("group");
    let s = std::sync::Arc::new(HoldingsStore::open(&dir, u64::MAX).unwrap());
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
    let s = HoldingsStore::open(&dir, u64::MAX).unwrap();
    assert_eq!(s.read().total(), 400);
    assert_eq!(s.open_report().records_replayed, 400);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn one_store_per_directory_until_closed() {
    let dir = tmp("lock");
    let s = HoldingsStore::open(&dir, u64::MAX).unwrap();
    s.acquire(vec![(1, vec![1])]).unwrap();
    match HoldingsStore::open(&dir, u64::MAX) {
        Err(Error::Storage(m)) => assert_eq!(m, format!("{} is in use by another process", dir.display())),
        _ => panic!("a second store on the same directory must be refused"),
    }
    s.close();
    assert!(matches!(s.acquire(vec![(1, vec![2])]), Err(Error::Storage(m)) if m.contains("closed")));
    assert!(s.read().holds(1, 1), "reads still answer from memory");
    let s2 = HoldingsStore::open(&dir, u64::MAX).unwrap();
    assert_eq!(s2.read().total(), 1);
    drop(s2);
    drop(s);
    let _ = fs::remove_dir_all(&dir);
}
