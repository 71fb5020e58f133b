//! Durable file operations, in one place for every store of the engine (holdings, ledger) and,
//! through `renkei._core.fs`, for Python.
//!
//! * [`write_atomic`] / [`write_atomic_with`]: a new file's content replaces `dir/name` whole or
//!   not at all: a temporary file created exclusively (`O_EXCL`) with the final mode, written,
//!   fsynced, renamed over the target, and the directory fsynced. After a crash the target is
//!   either the old file or the new one, never a mix, and never a file with looser permissions.
//! * [`fsync_dir`]: make the directory entries (creates, renames, unlinks) in `dir` durable.
//! * [`DirLock`]: one writer per directory: an exclusive, non-blocking `flock` on `dir/LOCK`
//!   (created 0600), released when the lock is dropped or the process dies.
//! * [`create_dir_private`]: `mkdir` with mode 0700 whatever the umask.
//! * [`create_private`] / [`open_append_private`]: a store's own files, mode 0600 whatever the
//!   umask (every file a service writes is 0600 in a 0700 directory).
//! * [`fault`]: the fault-injection seam. Every write, fsync, rename, truncate, create and
//!   unlink of the stores passes through it; in `cargo test` builds a test can make the n-th
//!   such operation fail with an errno (EIO, ENOSPC) on its own thread ([`faults`]), in other
//!   builds it is an inlined `Ok(())`.
//!
//! Errors are [`Error::Storage`] naming the path; none carries file contents.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The lock file a [`DirLock`] holds in its directory.
pub const LOCK_FILE: &str = "LOCK";

fn storage(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Storage(format!("{what} {}: {e}", path.display()))
}

/// The file-system operations of the stores, as the fault-injection seam names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOp {
    Create,
    Write,
    Fsync,
    FsyncDir,
    Rename,
    Truncate,
    Remove,
}

/// Called before each operation `op` on `path`: `Err` is the fault a test planned (see
/// [`faults`]); outside `cargo test` builds this is always `Ok(())` and compiles away.
#[inline(always)]
pub fn fault(op: IoOp, path: &Path) -> std::io::Result<()> {
    #[cfg(test)]
    {
        faults::check(op, path)
    }
    #[cfg(not(test))]
    {
        let _ = (op, path);
        Ok(())
    }
}

/// Planned I/O faults for tests, per thread (the stores do their I/O on the calling thread, so
/// parallel tests do not see each other's faults).
#[cfg(test)]
pub mod faults {
    use super::IoOp;
    use std::cell::RefCell;
    use std::path::Path;

    #[derive(Debug, Clone)]
    struct Fault {
        op: IoOp,
        /// Fail the operation after this many of its kind went through.
        after: usize,
        errno: i32,
        seen: usize,
        fired: bool,
    }

    thread_local! {
        static PLAN: RefCell<Vec<Fault>> = const { RefCell::new(Vec::new()) };
    }

    /// Make the `after`-th (0-based) operation `op` on this thread fail with `errno`, until
    /// the returned guard is dropped. Several plans may be active at once.
    pub fn plan(op: IoOp, after: usize, errno: i32) -> Guard {
        PLAN.with(|p| p.borrow_mut().push(Fault { op, after, errno, seen: 0, fired: false }));
        Guard
    }

    /// Whether any planned fault of `op` has fired.
    pub fn fired(op: IoOp) -> bool {
        PLAN.with(|p| p.borrow().iter().any(|f| f.op == op && f.fired))
    }

    pub(super) fn check(op: IoOp, _path: &Path) -> std::io::Result<()> {
        PLAN.with(|p| {
            for f in p.borrow_mut().iter_mut().filter(|f| f.op == op) {
                if !f.fired && f.seen == f.after {
                    f.fired = true;
                    return Err(std::io::Error::from_raw_os_error(f.errno));
                }
                f.seen += 1;
            }
            Ok(())
        })
    }

    /// Clears this thread's plans when dropped.
    pub struct Guard;

    impl Drop for Guard {
        fn drop(&mut self) {
            PLAN.with(|p| p.borrow_mut().clear());
        }
    }
}

/// Make the directory entries in `dir` durable (after a create, rename or unlink in it).
pub fn fsync_dir(dir: &Path) -> Result<()> {
    fault(IoOp::FsyncDir, dir)
        .and_then(|_| File::open(dir))
        .and_then(|f| f.sync_all())
        .map_err(|e| storage("cannot fsync directory", dir, e))
}

/// Create (or truncate) `path` for writing with mode 0600 exactly, whatever the umask.
pub fn create_private(path: &Path) -> std::io::Result<File> {
    fault(IoOp::Create, path)?;
    let f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    Ok(f)
}

/// Open `path` for appending (and reading), creating it with mode 0600 exactly if missing.
pub fn open_append_private(path: &Path) -> std::io::Result<File> {
    let created = !path.exists();
    if created {
        fault(IoOp::Create, path)?;
    }
    let f = OpenOptions::new().read(true).append(true).create(true).mode(0o600).open(path)?;
    if created {
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
}

/// A temporary name in the target's directory that no other writer picks: hidden, ending in
/// `.tmp` (so [`remove_temps`] finds what a crash left), random in between.
fn temp_name(name: &str) -> String {
    let mut r = [0u8; 8];
    // getrandom only fails without an OS entropy source; a fixed suffix then still works under
    // O_EXCL (a clash is an error, never an overwrite).
    let _ = getrandom::fill(&mut r);
    let hex: String = r.iter().map(|b| format!("{b:02x}")).collect();
    format!(".{name}.{hex}.tmp")
}

/// Replace `dir/name` with `data` atomically and durably; the file gets exactly `mode`.
pub fn write_atomic(dir: &Path, name: &str, data: &[u8], mode: u32) -> Result<()> {
    write_atomic_with(dir, name, mode, |w| w.write_all(data))
}

/// [`write_atomic`] for content produced by `fill` into a buffered writer (snapshots of GiBs).
pub fn write_atomic_with(
    dir: &Path,
    name: &str,
    mode: u32,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    write_atomic_reporting(dir, name, mode, fill).map_err(|e| e.error)
}

/// A failed atomic write, and whether the new file had already been renamed into place (only
/// the directory fsync failed: a crash may leave either the old or the new file).
#[derive(Debug)]
pub struct AtomicWriteError {
    pub error: Error,
    pub renamed: bool,
}

/// [`write_atomic_with`], telling a failure after the rename apart from one before it (where
/// the old file stands, untouched).
pub fn write_atomic_reporting(
    dir: &Path,
    name: &str,
    mode: u32,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::result::Result<(), AtomicWriteError> {
    let before = |error| AtomicWriteError { error, renamed: false };
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(before(Error::InvalidArgument("write_atomic needs a plain file name".into())));
    }
    let tmp = dir.join(temp_name(name));
    let file = fault(IoOp::Create, &tmp)
        .and_then(|_| OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp))
        .map_err(|e| before(storage("cannot create", &tmp, e)))?;
    let written = (|| -> std::io::Result<()> {
        // The umask may have cleared bits of `mode` at creation; the file gets `mode` itself.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        let mut w = BufWriter::with_capacity(8 << 20, file);
        fill(&mut w)?;
        fault(IoOp::Write, &tmp)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        fault(IoOp::Fsync, &tmp)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(before(storage("cannot write", &tmp, e)));
    }
    let target = dir.join(name);
    if let Err(e) = fault(IoOp::Rename, &target).and_then(|_| fs::rename(&tmp, &target)) {
        let _ = fs::remove_file(&tmp);
        return Err(before(storage("cannot rename into place", &target, e)));
    }
    fsync_dir(dir).map_err(|error| AtomicWriteError { error, renamed: true })
}

/// Remove what an interrupted [`write_atomic`] left in `dir` (hidden `*.tmp` files). Call
/// only while holding the directory's [`DirLock`], so no writer's live temporary is removed.
pub fn remove_temps(dir: &Path) -> Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir).map_err(|e| storage("cannot list", dir, e))? {
        let entry = entry.map_err(|e| storage("cannot list", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') && name.ends_with(".tmp") && name.len() > 5 {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(storage("cannot remove", &entry.path(), e)),
            }
        }
    }
    if removed > 0 {
        fsync_dir(dir)?;
    }
    Ok(removed)
}

/// Create `dir` (and missing parents) with mode 0700, whatever the umask: each directory this
/// call creates is chmod-ed to 0700 after `mkdir`. An existing directory is left as it is.
/// Returns whether `dir` itself was created.
pub fn create_dir_private(dir: &Path) -> Result<bool> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(false),
        Ok(_) => return Err(Error::Storage(format!("{} exists and is not a directory", dir.display()))),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(storage("cannot stat", dir, e)),
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_private(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        // Another process created it between the check and here: theirs stands.
        Err(e) if e.kind() == ErrorKind::AlreadyExists && dir.is_dir() => return Ok(false),
        Err(e) => return Err(storage("cannot create", dir, e)),
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| storage("cannot chmod", dir, e))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fsync_dir(parent)?;
    }
    Ok(true)
}

/// The exclusive writer lock of a directory: `flock(LOCK_EX | LOCK_NB)` on `dir/LOCK`.
/// Released on drop (or [`DirLock::release`]), and by the kernel if the process dies.
///
/// `flock` locks belong to an open file description, so a second `DirLock` on the same
/// directory is refused even inside the same process.
#[derive(Debug)]
pub struct DirLock {
    dir: PathBuf,
    file: Option<File>,
}

impl DirLock {
    pub fn acquire(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| storage("cannot open", &path, e))?;
        use std::os::fd::AsRawFd;
        loop {
            // SAFETY: flock on a descriptor this function owns; no memory is involved.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            match e.kind() {
                ErrorKind::Interrupted => continue,
                ErrorKind::WouldBlock => {
                    return Err(Error::Storage(format!("{} is in use by another process", dir.display())))
                }
                _ => return Err(storage("cannot lock", &path, e)),
            }
        }
        Ok(DirLock { dir, file: Some(file) })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn is_held(&self) -> bool {
        self.file.is_some()
    }

    /// Release now (closing the descriptor drops the lock). Idempotent.
    pub fn release(&mut self) {
        self.file.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn write_atomic_replaces_whole_with_the_mode() {
        let d = tempfile::tempdir().unwrap();
        write_atomic(d.path(), "a", b"one", 0o600).unwrap();
        write_atomic(d.path(), "a", b"two, longer", 0o644).unwrap();
        assert_eq!(fs::read(d.path().join("a")).unwrap(), b"two, longer");
        assert_eq!(fs::metadata(d.path().join("a")).unwrap().mode() & 0o777, 0o644);
        write_atomic(d.path(), "a", b"", 0o600).unwrap();
        assert_eq!(fs::metadata(d.path().join("a")).unwrap().mode() & 0o777, 0o600);
        // Nothing else is left behind.
        let names: Vec<_> = fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["a"]);
        assert!(matches!(write_atomic(d.path(), "x/y", b"", 0o600), Err(Error::InvalidArgument(_))));
        assert!(matches!(write_atomic(&d.path().join("missing"), "a", b"", 0o600), Err(Error::Storage(_))));
    }

    #[test]
    fn a_failed_fill_leaves_the_old_file_and_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        write_atomic(d.path(), "a", b"old", 0o600).unwrap();
        let r = write_atomic_with(d.path(), "a", 0o600, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(matches!(r, Err(Error::Storage(m)) if m.contains("disk full")));
        assert_eq!(fs::read(d.path().join("a")).unwrap(), b"old");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
        // What a crash leaves is removed by remove_temps; other files are not.
        fs::write(d.path().join(".a.0123.tmp"), b"torn").unwrap();
        fs::write(d.path().join("b.tmp"), b"not ours").unwrap();
        assert_eq!(remove_temps(d.path()).unwrap(), 1);
        assert!(d.path().join("b.tmp").exists() && d.path().join("a").exists());
    }

    #[test]
    fn dir_lock_is_exclusive_and_released_on_drop() {
        let d = tempfile::tempdir().unwrap();
        let mut l = DirLock::acquire(d.path()).unwrap();
        assert_eq!(fs::metadata(d.path().join(LOCK_FILE)).unwrap().mode() & 0o777, 0o600);
        match DirLock::acquire(d.path()) {
            Err(Error::Storage(m)) => assert_eq!(m, format!("{} is in use by another process", d.path().display())),
            other => panic!("{other:?}"),
        }
        l.release();
        assert!(!l.is_held());
        let l2 = DirLock::acquire(d.path()).unwrap();
        drop(l2);
        let _l3 = DirLock::acquire(d.path()).unwrap();
    }

    #[test]
    fn private_dirs_ignore_the_umask() {
        // `mkdir` asks for 0777 (0755 under the usual umask 022): the chmod makes it 0700.
        // (Changing the umask here would race with the other tests' threads.)
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("x/y/z");
        assert!(create_dir_private(&target).unwrap());
        for p in [d.path().join("x"), d.path().join("x/y"), target.clone()] {
            assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o700, "{}", p.display());
        }
        assert!(!create_dir_private(&target).unwrap());
        fs::write(d.path().join("f"), b"").unwrap();
        assert!(matches!(create_dir_private(&d.path().join("f")), Err(Error::Storage(_))));
    }
}
