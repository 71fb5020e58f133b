//! `renkei._core.permits`: PASETO v4.public provision permits, batch item trees, replay cache.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::errors::invalid_argument;
use crate::permits::{self, merkle, Body, Claims, PermitSigner, PermitVerifier, ReplayCache, VERSION_PREFIX};

fn fixed<const N: usize>(b: &[u8], what: &str) -> PyResult<[u8; N]> {
    b.try_into().map_err(|_| invalid_argument(format!("{what} must be {N} bytes, got {}", b.len())))
}

fn version_prefix(b: &[u8]) -> PyResult<[u8; VERSION_PREFIX]> {
    if b.len() < VERSION_PREFIX {
        return Err(invalid_argument(format!("table version hash must be at least {VERSION_PREFIX} bytes")));
    }
    fixed(&b[..VERSION_PREFIX], "table version hash")
}

fn permit_id(id: Option<&[u8]>) -> PyResult<[u8; 12]> {
    match id {
        Some(b) => fixed(b, "permit id"),
        None => Ok(permits::new_permit_id()?),
    }
}

fn claims_dict<'py>(py: Python<'py>, c: &Claims) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("permit_id", PyBytes::new(py, &c.permit_id))?;
    d.set_item("requester", &c.requester)?;
    d.set_item("provider", &c.provider)?;
    d.set_item("affair", &c.affair)?;
    d.set_item("table_version", PyBytes::new(py, &c.table_version))?;
    d.set_item("ledger_seq", c.ledger_seq)?;
    d.set_item("issued_at", c.issued_at)?;
    d.set_item("expires_at", c.expires_at)?;
    match &c.body {
        Body::Single { person, items } => {
            d.set_item("person", PyBytes::new(py, person))?;
            d.set_item("items", items.clone())?;
        }
        Body::Batch { count, root } => {
            d.set_item("count", *count)?;
            d.set_item("root", PyBytes::new(py, root))?;
        }
    }
    Ok(d)
}

/// The core's signer; `seed` is the 32-byte key file `keys/permit-signing.key`.
#[pyclass(module = "renkei._core.permits", name = "Signer", frozen)]
pub(crate) struct PySigner {
    pub(crate) inner: PermitSigner,
}

#[pymethods]
impl PySigner {
    #[new]
    fn new(seed: &[u8]) -> PyResult<Self> {
        Ok(PySigner { inner: PermitSigner::from_seed(seed)? })
    }

    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.public_key())
    }

    #[getter]
    fn key_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.key_id())
    }

    /// Sign a single-inquiry permit; returns (token, permit id).
    #[pyo3(signature = (requester, provider, affair, items, person, table_version, ledger_seq, issued_at, expires_at, permit_id=None))]
    #[allow(clippy::too_many_arguments)]
    fn sign<'py>(
        &self,
        py: Python<'py>,
        requester: String,
        provider: String,
        affair: String,
        items: Vec<String>,
        person: &[u8],
        table_version: &[u8],
        ledger_seq: u64,
        issued_at: i64,
        expires_at: i64,
        permit_id: Option<&[u8]>,
    ) -> PyResult<(String, Bound<'py, PyBytes>)> {
        let claims = Claims {
            permit_id: self::permit_id(permit_id)?,
            requester,
            provider,
            affair,
            table_version: version_prefix(table_version)?,
            ledger_seq,
            issued_at,
            expires_at,
            body: Body::Single { person: fixed(person, "person code")?, items },
        };
        Ok((self.inner.sign(&claims)?, PyBytes::new(py, &claims.permit_id)))
    }

    /// Sign a batch permit over a `BatchTree`; returns (token, permit id).
    #[pyo3(signature = (requester, provider, affair, tree, table_version, ledger_seq, issued_at, expires_at, permit_id=None))]
    #[allow(clippy::too_many_arguments)]
    fn sign_batch<'py>(
        &self,
        py: Python<'py>,
        requester: String,
        provider: String,
        affair: String,
        tree: &PyBatchTree,
        table_version: &[u8],
        ledger_seq: u64,
        issued_at: i64,
        expires_at: i64,
        permit_id: Option<&[u8]>,
    ) -> PyResult<(String, Bound<'py, PyBytes>)> {
        let claims = Claims {
            permit_id: self::permit_id(permit_id)?,
            requester,
            provider,
            affair,
            table_version: version_prefix(table_version)?,
            ledger_seq,
            issued_at,
            expires_at,
            body: Body::Batch { count: tree.size as u64, root: tree.root },
        };
        Ok((self.inner.sign(&claims)?, PyBytes::new(py, &claims.permit_id)))
    }

    fn __repr__(&self) -> &'static str {
        "<permits.Signer (key hidden)>"
    }
}

/// The items of a batch: `persons` packs n 16-byte 機関別符号; every person is asked for `items`.
#[pyclass(module = "renkei._core.permits", name = "BatchTree", frozen)]
struct PyBatchTree {
    levels: Vec<Vec<[u8; 32]>>,
    root: [u8; 32],
    size: usize,
}

#[pymethods]
impl PyBatchTree {
    #[new]
    fn new(py: Python<'_>, persons: &[u8], items: Vec<String>) -> PyResult<Self> {
        if persons.is_empty() || persons.len() % 16 != 0 {
            return Err(invalid_argument("persons must be a non-empty multiple of 16 bytes"));
        }
        let refs: Vec<&str> = items.iter().map(|s| s.as_str()).collect();
        let size = persons.len() / 16;
        let levels = py.detach(|| -> PyResult<_> {
            let mut hashes = Vec::with_capacity(size);
            for (i, p) in persons.chunks_exact(16).enumerate() {
                let leaf = merkle::batch_leaf(i as u64, p.try_into().expect("16"), &refs)
                    .ok_or_else(|| invalid_argument("batch items: 1–255 codes of 1–32 bytes"))?;
                hashes.push(merkle::leaf_hash(&leaf));
            }
            Ok(merkle::levels(hashes))
        })?;
        let root = merkle::root(&levels).expect("non-empty");
        Ok(PyBatchTree { levels, root, size })
    }

    #[getter]
    fn root<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.root)
    }

    fn __len__(&self) -> usize {
        self.size
    }

    /// The inclusion proof of item `index`: 32-byte hashes concatenated, leaf side first.
    fn proof<'py>(&self, py: Python<'py>, index: usize) -> PyResult<Bound<'py, PyBytes>> {
        if index >= self.size {
            return Err(invalid_argument(format!("index {index} outside a batch of {}", self.size)));
        }
        Ok(PyBytes::new(py, &merkle::proof(&self.levels, index).concat()))
    }
}

/// The canonical leaf bytes of batch item `index` (for independent checks).
#[pyfunction]
fn batch_leaf<'py>(py: Python<'py>, index: u64, person: &[u8], items: Vec<String>) -> PyResult<Bound<'py, PyBytes>> {
    let refs: Vec<&str> = items.iter().map(|s| s.as_str()).collect();
    let leaf = merkle::batch_leaf(index, &fixed(person, "person code")?, &refs).ok_or_else(|| invalid_argument("batch items: 1–255 codes of 1–32 bytes"))?;
    Ok(PyBytes::new(py, &leaf))
}

/// A provider's verifier: the core's public key, and optionally a replay cache.
#[pyclass(module = "renkei._core.permits", name = "Verifier", frozen)]
struct PyVerifier {
    inner: PermitVerifier,
    cache: Option<ReplayCache>,
}

#[pymethods]
impl PyVerifier {
    #[new]
    #[pyo3(signature = (public_key, replay_cache=true))]
    fn new(public_key: &[u8], replay_cache: bool) -> PyResult<Self> {
        Ok(PyVerifier { inner: PermitVerifier::new(public_key)?, cache: replay_cache.then(ReplayCache::new) })
    }

    /// Verify a single permit at `now` (Unix seconds); a second use is refused as replayed.
    fn verify<'py>(&self, py: Python<'py>, token: &str, now: i64) -> PyResult<Bound<'py, PyDict>> {
        let claims = self.inner.verify(token, now)?;
        if !matches!(claims.body, Body::Single { .. }) {
            return Err(invalid_argument("a batch permit is verified item by item (verify_batch_item)"));
        }
        if let Some(c) = &self.cache {
            c.admit(&claims, u64::MAX, now)?;
        }
        claims_dict(py, &claims)
    }

    /// Verify item `index` (person code + items) of a batch permit with its inclusion proof.
    #[allow(clippy::too_many_arguments)]
    fn verify_batch_item<'py>(
        &self,
        py: Python<'py>,
        token: &str,
        now: i64,
        index: u64,
        person: &[u8],
        items: Vec<String>,
        proof: &[u8],
    ) -> PyResult<Bound<'py, PyDict>> {
        if proof.len() % 32 != 0 {
            return Err(invalid_argument("proof must be a multiple of 32 bytes"));
        }
        let refs: Vec<&str> = items.iter().map(|s| s.as_str()).collect();
        let leaf = merkle::batch_leaf(index, &fixed(person, "person code")?, &refs).ok_or_else(|| invalid_argument("batch items: 1–255 codes of 1–32 bytes"))?;
        let proof: Vec<[u8; 32]> = proof.chunks_exact(32).map(|c| c.try_into().expect("32")).collect();
        let claims = self.inner.verify_batch_item(token, now, index, &leaf, &proof)?;
        if let Some(c) = &self.cache {
            c.admit(&claims, index, now)?;
        }
        let d = claims_dict(py, &claims)?;
        d.set_item("index", index)?;
        d.set_item("person", PyBytes::new(py, person))?;
        d.set_item("items", items)?;
        Ok(d)
    }

    /// Permits remembered by the replay cache (until they expire).
    fn remembered(&self) -> usize {
        self.cache.as_ref().map(|c| c.len()).unwrap_or(0)
    }
}

#[pyfunction]
fn crockford(code: &[u8]) -> PyResult<String> {
    Ok(permits::crockford_encode(&fixed(code, "agency code")?))
}

#[pyfunction]
fn key_id<'py>(py: Python<'py>, public_key: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, &permits::key_id(&fixed(public_key, "public key")?)))
}

pub(super) fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySigner>()?;
    m.add_class::<PyVerifier>()?;
    m.add_class::<PyBatchTree>()?;
    m.add_function(wrap_pyfunction!(batch_leaf, m)?)?;
    m.add_function(wrap_pyfunction!(crockford, m)?)?;
    m.add_function(wrap_pyfunction!(key_id, m)?)?;
    Ok(())
}
