//! Every file operation of the store's write path goes through [`Io`], so tests can make the
//! N-th one fail (EIO, ENOSPC, …), as Tessera's and Sunlight's fault tests do: the caller must
//! get a clear error, nothing not durable may be acknowledged, and the next open must recover
//! to a ledger that verifies.
//!
//! A failing write first writes half its bytes (a torn write); a failing `fdatasync` can be made
//! to persist anyway ("failed, but the data got there").

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Make operation number `at` (1-based, counted from when the fault is installed) fail with
/// `errno`. With `persist`, a failing sync or write still does its work before failing.
#[derive(Debug)]
pub struct Fault {
    at: u64,
    errno: i32,
    persist: bool,
    seen: AtomicU64,
}

impl Fault {
    pub fn new(at: u64, errno: i32, persist: bool) -> Arc<Fault> {
        Arc::new(Fault { at, errno, persist, seen: AtomicU64::new(0) })
    }

    /// Operations counted so far.
    pub fn seen(&self) -> u64 {
        self.seen.load(Ordering::SeqCst)
    }

    /// Whether the fault has fired.
    pub fn fired(&self) -> bool {
        self.seen() >= self.at
    }
}

const PRIVATE: u32 = 0o600;

/// The mode of every ledger file: 0600 whatever the umask. The C2SP files and the history are
/// public data, but a service's directory is never the publication: publishing is a copy.
pub(crate) fn mode_of(_path: &Path) -> u32 {
    PRIVATE
}

/// Open (creating with the ledger's mode when missing) for positioned writes.
pub(crate) fn open_rw(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new().create(true).read(true).write(true).truncate(false).mode(PRIVATE).open(path)?;
    f.set_permissions(fs::Permissions::from_mode(PRIVATE))?;
    Ok(f)
}

#[derive(Clone, Default, Debug)]
pub(crate) struct Io {
    fault: Option<Arc<Fault>>,
}

enum Hit {
    Pass,
    /// Fail; the flag says whether the operation does its work first.
    Fail(io::Error, bool),
}

impl Io {
    pub(crate) fn with_fault(fault: Option<Arc<Fault>>) -> Io {
        Io { fault }
    }

    fn hit(&self) -> Hit {
        match &self.fault {
            Some(f) if f.seen.fetch_add(1, Ordering::SeqCst) + 1 == f.at => {
                Hit::Fail(io::Error::from_raw_os_error(f.errno), f.persist)
            }
            _ => Hit::Pass,
        }
    }

    pub(crate) fn write_all(&self, f: &mut File, data: &[u8]) -> io::Result<()> {
        match self.hit() {
            Hit::Pass => f.write_all(data),
            Hit::Fail(e, persist) => {
                let n = if persist { data.len() } else { data.len() / 2 };
                let _ = f.write_all(&data[..n]);
                Err(e)
            }
        }
    }

    pub(crate) fn write_at(&self, f: &File, data: &[u8], off: u64) -> io::Result<()> {
        match self.hit() {
            Hit::Pass => f.write_all_at(data, off),
            Hit::Fail(e, persist) => {
                let n = if persist { data.len() } else { data.len() / 2 };
                let _ = f.write_all_at(&data[..n], off);
                Err(e)
            }
        }
    }

    pub(crate) fn fdatasync(&self, f: &File) -> io::Result<()> {
        match self.hit() {
            Hit::Pass => f.sync_data(),
            Hit::Fail(e, persist) => {
                if persist {
                    let _ = f.sync_data();
                }
                Err(e)
            }
        }
    }

    pub(crate) fn set_len(&self, f: &File, len: u64) -> io::Result<()> {
        match self.hit() {
            Hit::Pass => f.set_len(len),
            Hit::Fail(e, _) => Err(e),
        }
    }

    /// Create (or truncate) `path` and write `data` (a missing parent directory is created).
    /// The file gets `mode_of(path)`: 0600, whatever the umask.
    pub(crate) fn create(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let hit = self.hit();
        let mode = mode_of(path);
        let open = || OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(path);
        let mut f = match open() {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // Folders 0700 whatever the umask, like every folder a service writes.
                crate::durable::create_dir_private(path.parent().expect("store paths have parents"))
                    .map_err(|e| io::Error::other(e.to_string()))?;
                open()?
            }
            Err(e) => return Err(e),
        };
        // Whatever the umask.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        match hit {
            Hit::Pass => f.write_all(data),
            Hit::Fail(e, persist) => {
                let n = if persist { data.len() } else { data.len() / 2 };
                let _ = f.write_all(&data[..n]);
                Err(e)
            }
        }
    }

    /// Open for appending (created when missing), positioned at the end.
    pub(crate) fn open_append(&self, path: &Path, truncate: bool) -> io::Result<File> {
        match self.hit() {
            Hit::Pass => OpenOptions::new().create(true).read(true).write(true).truncate(truncate).open(path).map(|mut f| {
                use std::io::Seek;
                let _ = f.seek(io::SeekFrom::End(0));
                f
            }),
            Hit::Fail(e, _) => Err(e),
        }
    }

    pub(crate) fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        match self.hit() {
            Hit::Pass => fs::rename(from, to),
            Hit::Fail(e, persist) => {
                if persist {
                    let _ = fs::rename(from, to);
                }
                Err(e)
            }
        }
    }

    /// Remove a file; a missing one is not an error.
    pub(crate) fn remove(&self, path: &Path) -> io::Result<()> {
        match self.hit() {
            Hit::Pass => match fs::remove_file(path) {
                Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            Hit::Fail(e, _) => Err(e),
        }
    }

    pub(crate) fn fsync_dir(&self, dir: &Path) -> io::Result<()> {
        match self.hit() {
            Hit::Pass => File::open(dir).and_then(|f| f.sync_all()),
            Hit::Fail(e, _) => Err(e),
        }
    }

    /// Flush every dirty page of the filesystem holding `f` (Linux `syncfs`; `sync` elsewhere).
    pub(crate) fn syncfs(&self, f: &File) -> io::Result<()> {
        if let Hit::Fail(e, _) = self.hit() {
            return Err(e);
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: syncfs on a descriptor we own; no memory is passed.
            if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = f;
            // SAFETY: sync(2) takes no arguments.
            unsafe { libc::sync() };
        }
        Ok(())
    }
}
