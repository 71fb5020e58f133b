//! Fault injection: every file operation of an append (the write-ahead frame, its fdatasync,
//! every derived file, the checkpoint rename, the cleanup, the segment rotation) made to fail
//! in turn, with EIO and ENOSPC, torn or "failed but persisted".

use super::io::Fault;
use super::tests::rec;
use super::*;

const SEED: [u8; 32] = [4; 32];

fn batch(from: u64, n: u64) -> Vec<Vec<u8>> {
    (from..from + n).map(rec).collect()
}

fn append(s: &mut Store, recs: &[Vec<u8>]) -> Result<u64> {
    let refs: Vec<&[u8]> = recs.iter().map(|r| &r[..]).collect();
    s.append(&refs)
}

/// Records `0..n` are the ones appended (sequence numbers 0..n of `rec`).
fn check_records(s: &Store, n: u64) {
    assert_eq!(s.size(), n);
    for (i, r) in s.records(0, n).unwrap().into_iter().enumerate() {
        let mut want = Record::decode(&rec(i as u64)).unwrap();
        want.seq = i as u64;
        assert_eq!(r.unwrap(), want, "record {i}");
    }
}

#[test]
fn every_failing_operation_of_an_append_is_survived() {
    let mut total = 0;
    for (errno, persist) in [(libc::EIO, false), (libc::ENOSPC, false), (libc::EIO, true)] {
        let mut n = 1u64;
        loop {
            let dir = tempfile::tempdir().unwrap();
            let mut s = Store::open(dir.path(), "o", &SEED).unwrap();
            append(&mut s, &batch(0, 300)).unwrap();
            // This append also fills segment 0's first bundles, stores a history entry and
            // rotates the write-ahead log (limit 1 byte).
            s.set_wal_limit(1);
            let fault = Fault::new(n, errno, persist);
            s.set_fault(Some(fault.clone()));
            let r = append(&mut s, &batch(300, 600));
            s.set_fault(None);
            if !fault.fired() {
                assert_eq!(r.unwrap(), 300);
                break;
            }
            let acked = match &r {
                Ok(first) => {
                    assert_eq!(*first, 300);
                    true
                }
                Err(e) => {
                    // A clear error: the file and the OS's reason.
                    let m = e.to_string();
                    let why = std::io::Error::from_raw_os_error(errno).to_string();
                    assert!(m.contains(&why) && m.contains(&dir.path().display().to_string()), "op {n}: {m}");
                    false
                }
            };
            // The same store goes on (after rolling back to what is durable), or refuses until
            // reopened; either way nothing it acknowledged is lost.
            let size_after = s.size();
            assert!(size_after == 300 || size_after == 900, "op {n}: size {size_after}");
            if acked {
                assert_eq!(size_after, 900);
            }
            let went_on = append(&mut s, &batch(size_after, 10)).is_ok();
            let want = if went_on { size_after + 10 } else { size_after };
            if went_on {
                s.verify().unwrap_or_else(|d| panic!("op {n} ({errno}, {persist}): {d}"));
            }
            drop(s);
            let s = Store::open(dir.path(), "o", &SEED).unwrap();
            assert!(s.size() == want || (!went_on && s.size() >= 300), "op {n}: {} vs {want}", s.size());
            assert!(s.size() >= if acked { 900 } else { 300 });
            let got = s.size();
            check_records(&s, got);
            s.verify().unwrap_or_else(|d| panic!("op {n} ({errno}, {persist}) after reopen: {d}"));
            let last = s.checkpoint().clone();
            drop(s);
            // Reopening again changes nothing.
            let s = Store::open(dir.path(), "o", &SEED).unwrap();
            assert_eq!(s.checkpoint(), &last);
            n += 1;
        }
        assert!(n > 20, "only {n} operations in an append");
        total += n;
    }
    assert!(total > 60);
}

#[test]
fn a_torn_write_ahead_frame_is_cut_only_when_never_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path(), "o", &SEED).unwrap();
    append(&mut s, &batch(0, 300)).unwrap();
    append(&mut s, &batch(300, 20)).unwrap();
    drop(s);
    let seg = dir.path().join(wal::segment_path(0));
    let good = fs::read(&seg).unwrap();
    let note320 = fs::read(dir.path().join(CHECKPOINT)).unwrap();
    let mut s = Store::open(dir.path(), "o", &SEED).unwrap();
    append(&mut s, &batch(320, 5)).unwrap();
    drop(s);
    let longer = fs::read(&seg).unwrap();
    fs::write(&seg, &longer[..longer.len() - 7]).unwrap();
    // The published checkpoint covers 325 records: the torn frame was acknowledged, so the
    // ledger refuses to open, naming the segment, and cuts nothing.
    match Store::open(dir.path(), "o", &SEED).unwrap_err() {
        Error::LedgerDamage { path, message, .. } => assert!(path == wal::segment_path(0), "{message}"),
        e => panic!("{e}"),
    }
    assert_eq!(fs::read(&seg).unwrap().len(), longer.len() - 7);
    assert_eq!(verify_dir(dir.path(), &NoteSigner::from_seed("o", &SEED).unwrap().verifier()).unwrap_err().path, wal::segment_path(0));
    // Had it never been published (a crash before the rename), the torn frame is cut.
    fs::write(dir.path().join(CHECKPOINT), &note320).unwrap();
    let s = Store::open(dir.path(), "o", &SEED).unwrap();
    assert_eq!(s.size(), 320);
    assert_eq!(fs::read(&seg).unwrap(), good);
    s.verify().unwrap();
    check_records(&s, 320);
}

#[test]
fn private_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path(), "o", &SEED).unwrap();
    s.set_wal_limit(1);
    append(&mut s, &batch(0, SEGMENT + 300)).unwrap();
    append(&mut s, &batch(SEGMENT + 300, 10)).unwrap();
    drop(s);
    // Every file and folder of the store, public C2SP files included, whatever the umask.
    let mut seen = 0;
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        if d != dir.path() {
            assert_eq!(fs::metadata(&d).unwrap().permissions().mode() & 0o777, 0o700, "{}", d.display());
        }
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600, "{}", p.display());
                seen += 1;
            }
        }
    }
    assert!(seen >= 8, "{seen} files");
}

#[test]
fn a_missing_write_ahead_log_is_refused_and_nothing_is_removed() {
    let files = |d: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        let mut v: Vec<(PathBuf, Vec<u8>)> = walk(d).into_iter().map(|p| { let b = fs::read(&p).unwrap(); (p, b) }).collect();
        v.sort();
        v
    };
    // A log cut at a frame boundary (a whole acknowledged frame gone): it ends before the
    // published checkpoint.
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path(), "o", &SEED).unwrap();
    for k in 0..3 {
        append(&mut s, &batch(k * 200, 200)).unwrap();
    }
    drop(s);
    let seg = dir.path().join(wal::segment_path(0));
    let data = fs::read(&seg).unwrap();
    let (_, mut at) = wal::decode_header(&data).unwrap();
    let mut ends = vec![];
    while let wal::Parsed::Frame(_, n) = wal::parse_frame(&data[at..]) {
        at += n;
        ends.push(at);
    }
    assert_eq!(ends.len(), 3);
    let before = files(&dir.path().join("tile"));
    fs::write(&seg, &data[..ends[1]]).unwrap();
    match Store::open(dir.path(), "o", &SEED).unwrap_err() {
        Error::LedgerDamage { path, message, .. } => assert!(path == wal::segment_path(0) && message.contains("before the published"), "{message}"),
        e => panic!("{e}"),
    }
    assert_eq!(files(&dir.path().join("tile")), before, "nothing removed");
    fs::write(&seg, &data).unwrap();
    assert_eq!(Store::open(dir.path(), "o", &SEED).unwrap().size(), 600);
    // No segment at all (after rotations).
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path(), "o", &SEED).unwrap();
    s.set_wal_limit(30_000);
    for k in 0..4 {
        append(&mut s, &batch(k * 200, 200)).unwrap();
    }
    drop(s);
    let wal_dir = dir.path().join(wal::WAL_DIR);
    let segs = wal::list_segments(&wal_dir).unwrap();
    assert!(!segs.is_empty() && segs[0] > 0, "{segs:?}");
    let before = files(&dir.path().join("tile"));
    let saved: Vec<(PathBuf, Vec<u8>)> = segs.iter().map(|b| wal_dir.join(format!("{b:020}"))).map(|p| { let d = fs::read(&p).unwrap(); (p, d) }).collect();
    for (p, _) in &saved {
        fs::remove_file(p).unwrap();
    }
    match Store::open(dir.path(), "o", &SEED).unwrap_err() {
        Error::LedgerDamage { path, .. } => assert_eq!(path, "wal"),
        e => panic!("{e}"),
    }
    assert_eq!(files(&dir.path().join("tile")), before, "nothing removed");
    for (p, d) in saved {
        fs::write(p, d).unwrap();
    }
    let s = Store::open(dir.path(), "o", &SEED).unwrap();
    assert_eq!(s.size(), 800);
    s.verify().unwrap();
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
