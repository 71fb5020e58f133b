//! `renkei._core.permissions`: the permission engine (番号法 別表第二 and ordinance rows).

use std::sync::Arc;

use numpy::{PyArray1, PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::errors::invalid_argument;
use crate::permissions::{parse_instant, parse_municipality, Document, Engine, Outcome, Snapshot, Version, NO_ROW, UNKNOWN};

fn municipality(m: Option<&str>) -> PyResult<u32> {
    Ok(match m {
        None => 0,
        Some(s) => parse_municipality(s)?,
    })
}

fn version_dict<'py>(py: Python<'py>, v: &Version) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("label", &v.label)?;
    d.set_item("hash", PyBytes::new(py, &v.hash))?;
    d.set_item("effective_from_us", v.effective_from)?;
    d.set_item("effective_until_us", v.effective_until)?;
    d.set_item("rows", v.rows.len())?;
    d.set_item("keys", v.key_count())?;
    Ok(d)
}

/// The permission engine. Loads are atomic; every check reads one snapshot.
#[pyclass(module = "renkei._core.permissions", name = "Engine", frozen)]
pub(crate) struct PyEngine {
    pub(crate) inner: Arc<Engine>,
}

#[pymethods]
impl PyEngine {
    #[new]
    fn new() -> Self {
        PyEngine { inner: Arc::new(Engine::new()) }
    }

    /// Parse, validate and compile a table document (JSON bytes), then publish it. The work
    /// runs without the GIL; checks in other threads continue on the old snapshot meanwhile.
    fn load_json<'py>(&self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyDict>> {
        let engine = self.inner.clone();
        let v = py.detach(|| Document::from_json(data).and_then(|doc| engine.load(&doc)))?;
        version_dict(py, &v)
    }

    fn unload(&self, label: &str) -> bool {
        self.inner.unload(label)
    }

    fn versions<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.inner.snapshot().versions.iter().map(|v| version_dict(py, v)).collect()
    }

    /// One check. Returns (outcome, matched row indices, failed item index, nearest row index,
    /// version): the version is the one the answer came from (None when none was in force), so
    /// rows are read from exactly that table even if a reload happens meanwhile.
    #[pyo3(signature = (requester_types, requester_municipality, affair, provider_types, items, at_us))]
    #[allow(clippy::type_complexity, clippy::too_many_arguments)]
    fn check(
        &self,
        requester_types: Vec<String>,
        requester_municipality: Option<&str>,
        affair: &str,
        provider_types: Vec<String>,
        items: Vec<String>,
        at_us: i64,
    ) -> PyResult<(&'static str, Vec<u32>, Option<usize>, Option<u32>, Option<PyVersion>)> {
        if items.is_empty() {
            return Err(invalid_argument("a check names at least one item"));
        }
        if requester_types.is_empty() || provider_types.is_empty() {
            return Err(invalid_argument("requester and provider need at least one agency type each"));
        }
        let muni = municipality(requester_municipality)?;
        let snap = self.inner.snapshot();
        let Some(v) = snap.in_force(at_us).cloned() else {
            return Ok((Outcome::NoVersionInForce.token(), Vec::new(), None, None, None));
        };
        let req: Vec<u32> = requester_types.iter().map(|t| v.type_id(t)).collect();
        let prov: Vec<u32> = provider_types.iter().map(|t| v.type_id(t)).collect();
        let its: Vec<u32> = items.iter().map(|i| v.item_id(i)).collect();
        let d = v.check(&req, muni, v.affair_id(affair), &prov, &its);
        Ok((d.outcome.token(), d.matched, d.failed_item, d.nearest, Some(PyVersion { snap, v })))
    }

    /// The loaded version `label`.
    fn version(&self, label: &str) -> PyResult<PyVersion> {
        let snap = self.inner.snapshot();
        let v = find(&snap, label)?.clone();
        Ok(PyVersion { snap, v })
    }

    /// Dense ids (uint32, 0xFFFFFFFF = unknown) of agency types; stable for the engine's life.
    fn type_ids<'py>(&self, py: Python<'py>, names: Vec<String>) -> Bound<'py, PyArray1<u32>> {
        let snap = self.inner.snapshot();
        PyArray1::from_vec(py, names.iter().map(|n| snap.type_id(n)).collect())
    }

    /// Dense ids of affairs (ids, codes or 事務手続コード) as the version in force at `at_us` names them.
    fn affair_ids<'py>(&self, py: Python<'py>, names: Vec<String>, at_us: i64) -> Bound<'py, PyArray1<u32>> {
        let snap = self.inner.snapshot();
        let ids = match snap.in_force(at_us) {
            Some(v) => names.iter().map(|n| v.affair_id(n)).collect(),
            None => vec![UNKNOWN; names.len()],
        };
        PyArray1::from_vec(py, ids)
    }

    /// Dense ids of items (ids, codes or 特定個人情報名コード).
    fn item_ids<'py>(&self, py: Python<'py>, names: Vec<String>, at_us: i64) -> Bound<'py, PyArray1<u32>> {
        let snap = self.inner.snapshot();
        let ids = match snap.in_force(at_us) {
            Some(v) => names.iter().map(|n| v.item_id(n)).collect(),
            None => vec![UNKNOWN; names.len()],
        };
        PyArray1::from_vec(py, ids)
    }

    /// Batch check: `queries` is a C-contiguous uint32 array of shape (n, 5), columns
    /// requester type, affair, provider type, item, municipality (0 = none). Returns
    /// (outcome uint8, row uint32, version): outcome 0 = allowed, else the deny code;
    /// row = matched (allowed) or nearest (denied) row, 0xFFFFFFFF = none.
    #[allow(clippy::type_complexity)]
    fn check_batch<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        at_us: i64,
    ) -> PyResult<(Bound<'py, PyArray1<u8>>, Bound<'py, PyArray1<u32>>, Option<PyVersion>)> {
        let arr = queries
            .cast::<PyArray2<u32>>()
            .map_err(|_| invalid_argument("queries must be a 2-D numpy array of dtype uint32 with 5 columns"))?;
        if arr.shape()[1] != 5 {
            return Err(invalid_argument(format!("queries must have 5 columns, got {}", arr.shape()[1])));
        }
        let ro = arr.try_readonly().map_err(|e| invalid_argument(format!("queries: {e}")))?;
        let flat = ro.as_slice().map_err(|_| invalid_argument("queries must be C-contiguous"))?;
        let n = flat.len() / 5;
        let snap = self.inner.snapshot();
        let Some(v) = snap.in_force(at_us).cloned() else {
            return Ok((PyArray1::from_vec(py, vec![Outcome::NoVersionInForce as u8; n]), PyArray1::from_vec(py, vec![NO_ROW; n]), None));
        };
        let (out, rows) = py.detach(|| {
            let mut out = vec![0u8; n];
            let mut rows = vec![0u32; n];
            v.check_batch(flat, &mut out, &mut rows);
            (out, rows)
        });
        Ok((PyArray1::from_vec(py, out), PyArray1::from_vec(py, rows), Some(PyVersion { snap, v })))
    }

    fn __repr__(&self) -> String {
        let snap = self.inner.snapshot();
        format!("<permissions.Engine versions={:?}>", snap.versions.iter().map(|v| v.label.as_str()).collect::<Vec<_>>())
    }
}

/// One table version, held alive with the snapshot it came from.
#[pyclass(module = "renkei._core.permissions", name = "Version", frozen)]
struct PyVersion {
    snap: Arc<Snapshot>,
    v: Arc<Version>,
}

#[pymethods]
impl PyVersion {
    #[getter]
    fn label(&self) -> &str {
        &self.v.label
    }

    #[getter]
    fn hash<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.v.hash)
    }

    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        version_dict(py, &self.v)
    }

    /// Row `index` as a dict (names, not ids).
    fn row<'py>(&self, py: Python<'py>, index: u32) -> PyResult<Bound<'py, PyDict>> {
        let (snap, v) = (&self.snap, &self.v);
        let row = v.rows.get(index as usize).ok_or_else(|| invalid_argument(format!("no row {index} in {:?}", v.label)))?;
        let names = |ids: &[u32], f: &dyn Fn(u32) -> Option<String>| ids.iter().filter_map(|&i| f(i)).collect::<Vec<_>>();
        let d = PyDict::new(py);
        d.set_item("index", index)?;
        d.set_item("ref", &row.reference)?;
        d.set_item("ko", &row.ko)?;
        d.set_item("affair", snap.affair_name(row.affair))?;
        d.set_item("affair_code", v.affair_code(row.affair))?;
        d.set_item("requesters", names(&row.requesters, &|i| snap.type_name(i).map(str::to_owned)))?;
        d.set_item("providers", names(&row.providers, &|i| snap.type_name(i).map(str::to_owned)))?;
        d.set_item("items", names(&row.items, &|i| snap.item_name(i).map(str::to_owned)))?;
        d.set_item("municipality", if row.municipality == 0 { None } else { Some(format!("{:06}", row.municipality)) })?;
        Ok(d)
    }

    /// The permit code (≤ 16 ASCII) of an affair name in this version.
    fn affair_code(&self, name: &str) -> Option<String> {
        self.v.affair_code(self.v.affair_id(name)).map(str::to_owned)
    }

    fn item_code(&self, name: &str) -> Option<String> {
        self.v.item_code(self.v.item_id(name)).map(str::to_owned)
    }
}

fn find<'a>(snap: &'a Snapshot, label: &str) -> PyResult<&'a Arc<Version>> {
    snap.versions.iter().find(|v| v.label == label).ok_or_else(|| invalid_argument(format!("no table version {label:?} loaded")))
}

/// Microseconds since the epoch of an RFC 3339 timestamp with offset.
#[pyfunction]
fn instant_us(s: &str) -> PyResult<i64> {
    Ok(parse_instant(s)?)
}

/// SHA-256 content hash of a table document (JSON bytes), as the engine computes it.
#[pyfunction]
fn content_hash<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let doc = Document::from_json(data)?;
    let from = parse_instant(&doc.effective_from)?;
    let until = doc.effective_until.as_deref().map(parse_instant).transpose()?;
    Ok(PyBytes::new(py, &doc.content_hash(from, until)))
}

pub(super) fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEngine>()?;
    m.add_class::<PyVersion>()?;
    m.add_function(wrap_pyfunction!(instant_us, m)?)?;
    m.add_function(wrap_pyfunction!(content_hash, m)?)?;
    m.add("UNKNOWN", UNKNOWN)?;
    m.add("NO_ROW", NO_ROW)?;
    let codes = PyDict::new(m.py());
    for o in [
        Outcome::Allowed,
        Outcome::NoVersionInForce,
        Outcome::UnknownAffair,
        Outcome::RequesterNotEntitled,
        Outcome::ProviderNotListed,
        Outcome::ItemNotListed,
        Outcome::OtherMunicipality,
    ] {
        codes.set_item(o as u8, o.token())?;
    }
    m.add("OUTCOMES", codes)?;
    Ok(())
}
