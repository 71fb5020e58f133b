//! `renkei._core.fs`: the engine's durable file operations (`crate::durable`) for Python, so
//! the Python side writes keys, certificates and notes exactly as the stores do.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use pyo3::prelude::*;

use super::errors::invalid_argument;
use crate::durable::{self, DirLock};

fn split(path: &Path) -> PyResult<(&Path, &str)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| invalid_argument(format!("{} does not name a file", path.display())))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Ok((dir, name))
}

/// Replace the file at `path` with `data` atomically and durably: a temporary file created
/// exclusively with exactly `mode`, written, fsynced, renamed over `path`, directory fsynced.
#[pyfunction]
#[pyo3(signature = (path, data, mode=0o600))]
fn write_atomic(py: Python<'_>, path: PathBuf, data: &[u8], mode: u32) -> PyResult<()> {
    let (dir, name) = split(&path)?;
    Ok(py.detach(|| durable::write_atomic(dir, name, data, mode))?)
}

/// Make the directory entries in `path` (creates, renames, unlinks) durable.
#[pyfunction]
fn fsync_dir(py: Python<'_>, path: PathBuf) -> PyResult<()> {
    Ok(py.detach(|| durable::fsync_dir(&path))?)
}

/// The exclusive writer lock of a directory (`flock` on `<path>/LOCK`, created 0600), taken
/// without waiting: `StorageError("<path> is in use by another process")` when held elsewhere.
/// Released by `release()`, on leaving a `with` block, when the object is collected, or when
/// the process dies.
#[pyclass(module = "renkei._core.fs", name = "DirLock", frozen)]
struct PyDirLock {
    inner: Mutex<DirLock>,
}

#[pymethods]
impl PyDirLock {
    #[new]
    fn new(path: PathBuf) -> PyResult<Self> {
        Ok(PyDirLock { inner: Mutex::new(DirLock::acquire(path)?) })
    }

    /// Release the lock now (idempotent).
    fn release(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).release();
    }

    /// Whether this object still holds the lock.
    #[getter]
    fn held(&self) -> bool {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).is_held()
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).dir().to_path_buf()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.release();
        false
    }

    fn __repr__(&self) -> String {
        let l = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        format!("<DirLock {} {}>", l.dir().display(), if l.is_held() { "held" } else { "released" })
    }
}

pub(super) fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(write_atomic, m)?)?;
    m.add_function(wrap_pyfunction!(fsync_dir, m)?)?;
    m.add_class::<PyDirLock>()?;
    m.add("LOCK_FILE", durable::LOCK_FILE)?;
    Ok(())
}
