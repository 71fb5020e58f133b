//! `renkei._core.ledger`: the provision ledger (情報提供等記録), its Merkle proofs and signed
//! checkpoints. Batch appends take packed bytes (or a numpy uint8 array) and release the GIL.

use numpy::PyArray1;
use pyo3::buffer::PyBuffer;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::arrays::{contiguous, readonly_u64};
use super::errors::invalid_argument;
use crate::error::Error;
use crate::ledger::merkle::{self, Hash, MemTree};
use crate::ledger::note::{self, Checkpoint, NoteSigner, NoteVerifier};
use crate::ledger::record::{self, Outcome, Provision, Record};
use crate::ledger::{tiles, Ledger};

fn fixed<const N: usize>(b: &[u8], what: &str) -> PyResult<[u8; N]> {
    b.try_into().map_err(|_| invalid_argument(format!("{what} must be {N} bytes, got {}", b.len())))
}

fn hashes_out<'py>(py: Python<'py>, v: &[Hash]) -> Vec<Bound<'py, PyBytes>> {
    v.iter().map(|h| PyBytes::new(py, h)).collect()
}

fn buffer_bytes(py: Python<'_>, obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    let buf = PyBuffer::<u8>::get(obj).map_err(|_| invalid_argument(format!("{what} must be bytes or a uint8 array")))?;
    buf.to_vec(py)
}

/// What makes a record a 提供 record: (outcome code, the 照会's sequence, ciphertext SHA-256).
type ProvisionFields<'a> = Option<(u16, u64, &'a [u8])>;

/// A record from its Python fields, checked as `encode_record` checks them (the layout's rules
/// included). `denied_code` 0 means permitted; with `provision` it is a 提供 record (its detail
/// in `reason`).
#[allow(clippy::too_many_arguments)]
fn build_record(
    seq: u64,
    time_us: i64,
    requester: u32,
    provider: u32,
    affair: String,
    items: Vec<String>,
    table_hash: &[u8],
    denied_code: u16,
    reason: String,
    permit_id: &[u8],
    pseudonym: &[u8],
    withheld: bool,
    disclose_after: Option<u32>,
    delegator: Option<u32>,
    provision: ProvisionFields<'_>,
) -> PyResult<Record> {
    let outcome = if let Some((code, inquiry_seq, digest)) = provision {
        if denied_code != 0 {
            return Err(invalid_argument("a provision record has no denial code"));
        }
        Outcome::Provision(Provision {
            code,
            detail: reason,
            inquiry_seq,
            ciphertext_sha256: fixed(digest, "ciphertext_sha256")?,
        })
    } else if denied_code == 0 {
        if !reason.is_empty() {
            return Err(invalid_argument("a permitted record has no reason text"));
        }
        Outcome::Permitted
    } else {
        Outcome::Denied { code: denied_code, reason }
    };
    let r = Record {
        seq,
        time_us,
        requester,
        provider,
        affair,
        items,
        table_hash: fixed(table_hash, "table_hash")?,
        outcome,
        permit_id: fixed(permit_id, "permit_id")?,
        pseudonym: fixed(pseudonym, "pseudonym")?,
        withheld,
        disclose_after,
        delegator,
    };
    r.validate()?;
    Ok(r)
}

/// Encode one record in layout v1. `denied_code` 0 means permitted; `provision` (outcome code,
/// 照会 sequence, ciphertext SHA-256) makes it a 提供 record.
#[pyfunction]
#[pyo3(signature = (*, seq, time_us, requester, provider, affair, items, table_hash, denied_code, reason, permit_id, pseudonym, withheld, disclose_after, delegator=None, provision=None))]
#[allow(clippy::too_many_arguments)]
fn encode_record<'py>(
    py: Python<'py>,
    seq: u64,
    time_us: i64,
    requester: u32,
    provider: u32,
    affair: String,
    items: Vec<String>,
    table_hash: &[u8],
    denied_code: u16,
    reason: String,
    permit_id: &[u8],
    pseudonym: &[u8],
    withheld: bool,
    disclose_after: Option<u32>,
    delegator: Option<u32>,
    provision: ProvisionFields<'_>,
) -> PyResult<Bound<'py, PyBytes>> {
    let r = build_record(
        seq, time_us, requester, provider, affair, items, table_hash, denied_code, reason, permit_id, pseudonym, withheld,
        disclose_after, delegator, provision,
    )?;
    Ok(PyBytes::new(py, &r.encode()?))
}

/// One provision record (情報提供等記録, layout v1), immutable. Built from keyword arguments
/// (checked as the layout requires) or decoded from the ledger; `encode()` gives its bytes.
#[pyclass(frozen, eq, hash, module = "renkei._core.ledger", name = "Record")]
#[derive(PartialEq, Eq, Hash)]
pub(crate) struct PyRecord {
    pub(crate) inner: Record,
}

/// The first bytes of a value as hex, for `repr` (never a whole pseudonym).
fn short_hex(b: &[u8]) -> String {
    let h: String = b.iter().take(4).map(|x| format!("{x:02x}")).collect();
    format!("{h}…")
}

#[pymethods]
impl PyRecord {
    #[new]
    #[pyo3(signature = (*, requester, provider, affair, items, table_hash, pseudonym, permit_id=None, denied_code=0, reason=String::new(), withheld=false, disclose_after=None, time_us=0, seq=0, delegator=None, provision=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        requester: u32,
        provider: u32,
        affair: String,
        items: Vec<String>,
        table_hash: &[u8],
        pseudonym: &[u8],
        permit_id: Option<&[u8]>,
        denied_code: u16,
        reason: String,
        withheld: bool,
        disclose_after: Option<u32>,
        time_us: i64,
        seq: u64,
        delegator: Option<u32>,
        provision: ProvisionFields<'_>,
    ) -> PyResult<Self> {
        let inner = build_record(
            seq,
            time_us,
            requester,
            provider,
            affair,
            items,
            table_hash,
            denied_code,
            reason,
            permit_id.unwrap_or(&[0; 16]),
            pseudonym,
            withheld,
            disclose_after,
            delegator,
            provision,
        )?;
        Ok(PyRecord { inner })
    }

    /// Sequence number (= leaf index) once in the ledger; 0 on a record not yet appended.
    #[getter]
    fn seq(&self) -> u64 {
        self.inner.seq
    }
    /// Time, µs since 1970-01-01 UTC; 0 on append means the ledger's clock.
    #[getter]
    fn time_us(&self) -> i64 {
        self.inner.time_us
    }
    /// 情報照会者: the requesting agency's id.
    #[getter]
    fn requester(&self) -> u32 {
        self.inner.requester
    }
    /// 情報提供者: the providing agency's id.
    #[getter]
    fn provider(&self) -> u32 {
        self.inner.provider
    }
    #[getter]
    fn affair(&self) -> &str {
        &self.inner.affair
    }
    #[getter]
    fn items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.inner.items)
    }
    /// The permission-table version hash (32 bytes).
    #[getter]
    fn table_hash<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.table_hash)
    }
    /// 0 when permitted (and on a 提供 record), else the denial reason code.
    #[getter]
    fn denied_code(&self) -> u16 {
        match self.inner.outcome {
            Outcome::Permitted | Outcome::Provision(_) => 0,
            Outcome::Denied { code, .. } => code,
        }
    }
    /// A denial's reason; a 提供 record's failure detail.
    #[getter]
    fn reason(&self) -> &str {
        match &self.inner.outcome {
            Outcome::Permitted => "",
            Outcome::Denied { reason, .. } => reason,
            Outcome::Provision(p) => &p.detail,
        }
    }
    /// A 提供 record: (outcome code, the 照会 record's sequence, ciphertext SHA-256); None on a
    /// 照会 record.
    #[getter]
    fn provision<'py>(&self, py: Python<'py>) -> Option<(u16, u64, Bound<'py, PyBytes>)> {
        match &self.inner.outcome {
            Outcome::Provision(p) => Some((p.code, p.inquiry_seq, PyBytes::new(py, &p.ciphertext_sha256))),
            _ => None,
        }
    }
    /// 委任元: the agency the requester acted for, or None.
    #[getter]
    fn delegator(&self) -> Option<u32> {
        self.inner.delegator
    }
    #[getter]
    fn permitted(&self) -> bool {
        self.inner.outcome == Outcome::Permitted
    }
    /// The permit id (16 bytes; zero for a denial).
    #[getter]
    fn permit_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.permit_id)
    }
    /// The person's 32-byte portal pseudonym.
    #[getter]
    fn pseudonym<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.pseudonym)
    }
    /// 不開示: withheld from the person's view (until `disclose_after`, if set).
    #[getter]
    fn withheld(&self) -> bool {
        self.inner.withheld
    }
    /// Days since 1970-01-01 from which a withheld record is shown, or None.
    #[getter]
    fn disclose_after(&self) -> Option<u32> {
        self.inner.disclose_after
    }

    /// The record in binary layout v1.
    fn encode<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.inner.encode()?))
    }

    /// Its RFC 9162 leaf hash (of `encode()`).
    fn leaf_hash<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &merkle::leaf_hash(&self.inner.encode()?)))
    }

    fn __repr__(&self) -> String {
        let r = &self.inner;
        format!(
            "Record(seq={}, time_us={}, requester={}, provider={}, affair={:?}, items={:?}, table_hash={}, \
             denied_code={}, reason={:?}, permit_id={}, pseudonym={}, withheld={}, disclose_after={}, delegator={}, \
             provision={})",
            r.seq,
            r.time_us,
            r.requester,
            r.provider,
            r.affair,
            r.items,
            short_hex(&r.table_hash),
            self.denied_code(),
            self.reason(),
            short_hex(&r.permit_id),
            short_hex(&r.pseudonym),
            if r.withheld { "True" } else { "False" },
            r.disclose_after.map_or("None".to_string(), |d| d.to_string()),
            r.delegator.map_or("None".to_string(), |d| d.to_string()),
            match &r.outcome {
                Outcome::Provision(p) => format!("({}, {}, {})", p.code, p.inquiry_seq, short_hex(&p.ciphertext_sha256)),
                _ => "None".to_string(),
            },
        )
    }
}

/// Decode a layout-1 record, or a public leaf (layout 2) with its opening (checked).
#[pyfunction]
#[pyo3(signature = (b, opening=None))]
fn decode_record(b: &[u8], opening: Option<&[u8]>) -> PyResult<PyRecord> {
    let inner = match (b.first(), opening) {
        (Some(&record::VERSION_PUBLIC), Some(o)) => record::open_leaf(b, o)?,
        (Some(&record::VERSION_PUBLIC), None) => {
            return Err(Error::InvalidRecord("a public leaf (layout 2) names its person only by a commitment: \
                pass its opening, or use decode_public_record".into()).into())
        }
        (_, Some(_)) => return Err(invalid_argument("an opening belongs to a public leaf (layout 2)")),
        _ => Record::decode(b)?,
    };
    Ok(PyRecord { inner })
}

/// A public leaf (layout 2) without its opening: (the record with an all-zero pseudonym, the
/// 32-byte person commitment).
#[pyfunction]
fn decode_public_record<'py>(py: Python<'py>, leaf: &[u8]) -> PyResult<(PyRecord, Bound<'py, PyBytes>)> {
    let (inner, c) = record::decode_public(leaf)?;
    Ok((PyRecord { inner }, PyBytes::new(py, &c)))
}

/// Whether `opening` (salt 16 B ‖ pseudonym 32 B) opens the public leaf's person commitment.
#[pyfunction]
fn opens(leaf: &[u8], opening: &[u8]) -> bool {
    record::opens(leaf, opening)
}

/// The 提供 records answering packed 照会 records (layout 1, uint16-BE length-prefixed, the
/// first at sequence `first_seq`): one per permitted inquiry, packed the same way, each with
/// `time_us`, outcome `code`, `detail` and the relayed ciphertext's SHA-256 (all zero: none).
#[pyfunction]
fn provision_records<'py>(
    py: Python<'py>,
    inquiries: &[u8],
    first_seq: u64,
    time_us: i64,
    code: u16,
    detail: &str,
    ciphertext_sha256: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let digest = fixed::<32>(ciphertext_sha256, "ciphertext_sha256")?;
    let out = py.detach(|| record::provisions_of_packed(inquiries, first_seq, time_us, code, detail, digest))?;
    Ok(PyBytes::new(py, &out))
}

/// The sequencing half of a commit (for a ledger whose durable write is a database's): packed
/// layout-1 `records` numbered from `first` → (public leaves, packed as in entry bundles;
/// openings, 48 bytes each). A zero record time becomes `time_us`; each person is committed
/// under a salt drawn for this call alone. Every record is checked first. The GIL is released.
#[pyfunction]
fn prepare_records<'py>(py: Python<'py>, records: &[u8], first: u64, time_us: i64) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    let (leaves, openings) = py.detach(|| crate::ledger::integrate::prepare(records, first, time_us))?;
    Ok((PyBytes::new(py, &leaves), PyBytes::new(py, &openings)))
}

/// The integrator's step: grow the tree whose right edge is `edge` (as this function returned
/// it; empty: the empty tree) by the packed public `leaves`. Returns (new edge, new size, new
/// root, [(tlog-tiles path, bytes)] of every tile and bundle completed and the partial ones
/// whose width changed). The stored edge is checked; the GIL is released.
#[pyfunction]
fn integrate_leaves<'py>(py: Python<'py>, edge: &[u8], leaves: &[u8]) -> PyResult<Growth<'py>> {
    let (edge, growth, root) = py.detach(|| -> crate::Result<_> {
        let mut e = crate::ledger::integrate::Edge::decode(edge)?;
        let g = crate::ledger::integrate::integrate(&mut e, leaves)?;
        let root = e.root();
        Ok((e, g, root))
    })?;
    let tiles = growth.tiles.iter().map(|(p, d)| (p.clone(), PyBytes::new(py, d))).collect();
    Ok((PyBytes::new(py, &edge.encode()), edge.size(), PyBytes::new(py, &root), tiles))
}

/// (size, root) of a stored right edge (checked).
#[pyfunction]
fn edge_root<'py>(py: Python<'py>, edge: &[u8]) -> PyResult<(u64, Bound<'py, PyBytes>)> {
    let e = crate::ledger::integrate::Edge::decode(edge)?;
    Ok((e.size(), PyBytes::new(py, &e.root())))
}

type Growth<'py> = (Bound<'py, PyBytes>, u64, Bound<'py, PyBytes>, Vec<(String, Bound<'py, PyBytes>)>);

/// Nodes of the tree of `size` over tiles read by the Python callable `read(path) -> bytes |
/// None`; an exception it raises comes back as it was.
fn with_fetched<T>(
    size: u64,
    read: &Bound<'_, PyAny>,
    f: impl FnOnce(&crate::ledger::fetched::FetchedNodes<&mut dyn FnMut(&str) -> crate::Result<Option<Vec<u8>>>>) -> crate::Result<T>,
) -> PyResult<T> {
    let mut raised: Option<PyErr> = None;
    let mut call = |path: &str| -> crate::Result<Option<Vec<u8>>> {
        let got = read.call1((path,)).and_then(|r| if r.is_none() { Ok(None) } else { r.extract::<Vec<u8>>().map(Some) });
        got.map_err(|e| {
            raised = Some(e);
            Error::Storage(format!("{path}: the tile reader failed"))
        })
    };
    let out = f(&crate::ledger::fetched::FetchedNodes::new(size, &mut call as &mut dyn FnMut(&str) -> crate::Result<Option<Vec<u8>>>));
    match (out, raised) {
        (_, Some(e)) => Err(e),
        (r, None) => Ok(r?),
    }
}

/// The root of the tree of `size` from tiles read by `read(path) -> bytes | None`.
#[pyfunction]
fn tiles_root<'py>(py: Python<'py>, size: u64, read: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, &with_fetched(size, read, |n| n.root())?))
}

/// Inclusion proof of leaf `index` in the tree of `size`, from tiles read by `read`.
#[pyfunction]
fn tiles_inclusion_proof<'py>(py: Python<'py>, index: u64, size: u64, read: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    Ok(hashes_out(py, &with_fetched(size, read, |n| n.inclusion_proof(index))?))
}

/// Consistency proof from the tree of `size1` to the tree of `size2`, from tiles read by `read`.
#[pyfunction]
fn tiles_consistency_proof<'py>(py: Python<'py>, size1: u64, size2: u64, read: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    Ok(hashes_out(py, &with_fetched(size2, read, |n| n.consistency_proof(size1))?))
}

/// Pack encoded records into the batch form (uint16-BE length-prefixed, as in entry bundles).
#[pyfunction]
fn pack_records<'py>(py: Python<'py>, records: Vec<Vec<u8>>) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = Vec::with_capacity(records.iter().map(|r| r.len() + 2).sum());
    for r in &records {
        tiles::check_entry_len(r.len())?;
        out.extend_from_slice(&(r.len() as u16).to_be_bytes());
        out.extend_from_slice(r);
    }
    Ok(PyBytes::new(py, &out))
}

#[pyfunction]
fn leaf_hash<'py>(py: Python<'py>, entry: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &merkle::leaf_hash(entry))
}

#[pyfunction]
fn verify_inclusion(index: u64, size: u64, leaf_hash: &[u8], proof: Vec<Vec<u8>>, root: &[u8]) -> PyResult<()> {
    let p: Vec<&[u8]> = proof.iter().map(|h| &h[..]).collect();
    Ok(merkle::verify_inclusion(index, size, leaf_hash, &p, root)?)
}

#[pyfunction]
fn verify_consistency(size1: u64, size2: u64, root1: &[u8], root2: &[u8], proof: Vec<Vec<u8>>) -> PyResult<()> {
    let p: Vec<&[u8]> = proof.iter().map(|h| &h[..]).collect();
    Ok(merkle::verify_consistency(size1, size2, root1, root2, &p)?)
}

/// Open a signed note with the given verifier keys; returns the note text.
#[pyfunction]
fn open_note(note: &[u8], vkeys: Vec<String>) -> PyResult<String> {
    let known = vkeys.iter().map(|k| NoteVerifier::parse(k)).collect::<Result<Vec<_>, Error>>()?;
    Ok(note::open(note, &known)?.to_string())
}

/// Parse a verifier key (`name+keyid+base64`); returns (name, key id, 32-byte public key).
#[pyfunction]
fn parse_vkey<'py>(py: Python<'py>, vkey: &str) -> PyResult<(String, u32, Bound<'py, PyBytes>)> {
    let v = NoteVerifier::parse(vkey)?;
    Ok((v.name, v.key_id, PyBytes::new(py, v.key.as_bytes())))
}

/// Sign `text` as a note with a Go-format `PRIVATE+KEY+…` key or (name, 32-byte seed).
#[pyfunction]
#[pyo3(signature = (text, skey=None, name=None, seed=None))]
fn sign_note(text: &str, skey: Option<&str>, name: Option<&str>, seed: Option<&[u8]>) -> PyResult<String> {
    let s = match (skey, name, seed) {
        (Some(k), None, None) => NoteSigner::parse(k)?,
        (None, Some(n), Some(s)) => NoteSigner::from_seed(n, s)?,
        _ => return Err(invalid_argument("give either skey or name and seed")),
    };
    Ok(s.sign(text)?)
}

/// The verifier key (`name+keyid+base64`) of the Ed25519 note key with this 32-byte seed.
#[pyfunction]
fn vkey_for(name: &str, seed: &[u8]) -> PyResult<String> {
    Ok(NoteSigner::from_seed(name, seed)?.verifier().vkey())
}

/// Parse a checkpoint body: (origin, size, root, extension lines).
#[pyfunction]
fn parse_checkpoint<'py>(py: Python<'py>, text: &str) -> PyResult<(String, u64, Bound<'py, PyBytes>, Vec<String>)> {
    let c = Checkpoint::parse(text)?;
    Ok((c.origin, c.size, PyBytes::new(py, &c.root), c.extensions))
}

/// An in-memory RFC 9162 tree, every level kept: for tests and small tools.
#[pyclass(module = "renkei._core.ledger", name = "MemTree")]
struct PyMemTree {
    inner: MemTree,
}

#[pymethods]
impl PyMemTree {
    #[new]
    fn new() -> Self {
        PyMemTree { inner: MemTree::new() }
    }
    fn push(&mut self, entry: &[u8]) {
        self.inner.push(entry)
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn root<'py>(&self, py: Python<'py>, size: u64) -> PyResult<Bound<'py, PyBytes>> {
        if size > self.inner.size() {
            return Err(invalid_argument("size beyond the tree"));
        }
        Ok(PyBytes::new(py, &merkle::root(&self.inner, size)?))
    }
    fn inclusion_proof<'py>(&self, py: Python<'py>, index: u64, size: u64) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        if size > self.inner.size() {
            return Err(invalid_argument("size beyond the tree"));
        }
        Ok(hashes_out(py, &merkle::inclusion_proof(&self.inner, index, size)?))
    }
    fn consistency_proof<'py>(&self, py: Python<'py>, size1: u64, size2: u64) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        if size2 > self.inner.size() {
            return Err(invalid_argument("size beyond the tree"));
        }
        Ok(hashes_out(py, &merkle::consistency_proof(&self.inner, size1, size2)?))
    }
}

/// The engine ledger behind a `renkei._core.ledger.Ledger` object, for other bindings (e.g.
/// the inquiry path) that append records from Rust in the same call, without the GIL.
pub(crate) fn ledger_of(obj: &Bound<'_, PyAny>) -> PyResult<Arc<Ledger>> {
    let l = obj.cast::<PyLedger>().map_err(|_| invalid_argument("expected a renkei._core.ledger.Ledger"))?;
    l.get().get()
}

/// The oversight index's columns, as `Ledger.index_columns` returns them.
type IndexColumns<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<u16>>,
    Bound<'py, PyList>,
);

#[derive(Default)]
struct Columns {
    seq: Vec<i64>,
    time: Vec<i64>,
    requester: Vec<u32>,
    provider: Vec<u32>,
    denied: Vec<u16>,
    /// Distinct affairs, and each record's position among them.
    affairs: Vec<String>,
    affair_of: Vec<u32>,
}

/// The oversight index's columns of records (seq, public leaf or None where retired).
fn columns_of<'a>(records: impl Iterator<Item = (u64, Option<&'a [u8]>)>) -> Result<Columns, Error> {
    let mut c = Columns::default();
    let mut known: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    for (seq, e) in records {
        let Some(e) = e else { continue };
        let (t, req, prov, code, affair) =
            crate::ledger::record::index_fields(e).map_err(|err| Error::Storage(format!("ledger record {seq}: {err}")))?;
        c.seq.push(seq as i64);
        c.time.push(t);
        c.requester.push(req);
        c.provider.push(prov);
        c.denied.push(code);
        let next = c.affairs.len() as u32;
        let k = *known.entry(affair.to_string()).or_insert_with(|| {
            c.affairs.push(affair.to_string());
            next
        });
        c.affair_of.push(k);
    }
    Ok(c)
}

fn columns_out(py: Python<'_>, c: Columns) -> PyResult<IndexColumns<'_>> {
    let names: Vec<Bound<'_, PyString>> = c.affairs.iter().map(|a| PyString::new(py, a)).collect();
    let affairs = PyList::new(py, c.affair_of.iter().map(|&k| names[k as usize].clone()))?;
    Ok((
        PyArray1::from_vec(py, c.seq),
        PyArray1::from_vec(py, c.time),
        PyArray1::from_vec(py, c.requester),
        PyArray1::from_vec(py, c.provider),
        PyArray1::from_vec(py, c.denied),
        affairs,
    ))
}

/// The oversight index's columns (as `Ledger.index_columns`) of packed public leaves numbered
/// from `first` (a ledger whose bundles come from a database). The GIL is released.
#[pyfunction]
fn leaf_columns<'py>(py: Python<'py>, leaves: &[u8], first: u64) -> PyResult<IndexColumns<'py>> {
    let c = py.detach(|| -> Result<Columns, Error> {
        let es = tiles::split_bundle(leaves).map_err(|off| Error::InvalidArgument(format!("packed leaves are malformed at byte {off}")))?;
        columns_of((first..).zip(es.into_iter().map(Some)))
    })?;
    columns_out(py, c)
}

/// The durable ledger: tlog-tiles files, group commit, signed checkpoints.
#[pyclass(module = "renkei._core.ledger", name = "Ledger", frozen)]
struct PyLedger {
    inner: std::sync::Mutex<Option<Arc<Ledger>>>,
}

impl PyLedger {
    fn get(&self) -> PyResult<Arc<Ledger>> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| Error::Storage("the ledger is closed".into()).into())
    }
}

#[pymethods]
impl PyLedger {
    /// `wal_limit`: rotate the write-ahead log past this many bytes (default 64 MiB).
    #[new]
    #[pyo3(signature = (path, origin, seed, wal_limit=None))]
    fn new(py: Python<'_>, path: std::path::PathBuf, origin: &str, seed: &[u8], wal_limit: Option<u64>) -> PyResult<Self> {
        let seed = seed.to_vec();
        let origin = origin.to_string();
        let l = py.detach(|| Ledger::open(path, &origin, &seed))?;
        if let Some(w) = wal_limit {
            l.store().set_wal_limit(w);
        }
        Ok(PyLedger { inner: std::sync::Mutex::new(Some(Arc::new(l))) })
    }

    /// Append packed records (uint16-BE length-prefixed v1 records, from `bytes` or a uint8
    /// array). Returns (first sequence number, count, checkpoint note) once durable.
    fn append_packed(&self, py: Python<'_>, packed: &Bound<'_, PyAny>) -> PyResult<(u64, u64, String)> {
        let data = buffer_bytes(py, packed, "packed records")?;
        let l = self.get()?;
        Ok(py.detach(|| l.append_packed(&data))?)
    }

    /// Append one encoded record; returns (sequence number, checkpoint note) once durable.
    fn append_one(&self, py: Python<'_>, record: Vec<u8>) -> PyResult<(u64, String)> {
        let l = self.get()?;
        Ok(py.detach(|| l.append(vec![record]))?)
    }

    fn size(&self) -> PyResult<u64> {
        Ok(self.get()?.store().size())
    }

    fn checkpoint(&self) -> PyResult<String> {
        Ok(self.get()?.store().checkpoint_note().to_string())
    }

    /// Every published checkpoint (signed notes), oldest first.
    fn checkpoints(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let l = self.get()?;
        Ok(py.detach(|| l.store().checkpoints())?)
    }

    /// The stored checkpoint of tree size `size`.
    fn checkpoint_at(&self, py: Python<'_>, size: u64) -> PyResult<String> {
        let l = self.get()?;
        Ok(py.detach(|| l.store().checkpoint_at(size))?)
    }

    fn vkey(&self) -> PyResult<String> {
        Ok(self.get()?.store().verifier().vkey())
    }

    fn min_index(&self) -> PyResult<u64> {
        Ok(self.get()?.store().min_index())
    }

    fn root_at<'py>(&self, py: Python<'py>, size: u64) -> PyResult<Bound<'py, PyBytes>> {
        let l = self.get()?;
        let r = py.detach(|| l.store().root_at(size))?;
        Ok(PyBytes::new(py, &r))
    }

    fn entry<'py>(&self, py: Python<'py>, seq: u64) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let l = self.get()?;
        let e = py.detach(|| l.store().entry(seq))?;
        Ok(e.map(|e| PyBytes::new(py, &e)))
    }

    /// Records `start..end` opened (with the pseudonym; None where retention dropped the body),
    /// each leaf checked against the tree and each opening against its commitment; read and
    /// decoded without the GIL.
    fn records(&self, py: Python<'_>, start: u64, end: u64) -> PyResult<Vec<Option<PyRecord>>> {
        let l = self.get()?;
        let recs = py.detach(|| l.store().records(start, end))?;
        Ok(recs.into_iter().map(|r| r.map(|inner| PyRecord { inner })).collect())
    }

    /// Record `seq` opened (see `records`).
    fn record(&self, py: Python<'_>, seq: u64) -> PyResult<Option<PyRecord>> {
        let l = self.get()?;
        Ok(py.detach(|| l.store().record(seq))?.map(|inner| PyRecord { inner }))
    }

    /// The openings (salt ‖ pseudonym, 48 bytes) of records `start..end`; None where retired.
    fn openings<'py>(&self, py: Python<'py>, start: u64, end: u64) -> PyResult<Vec<Option<Bound<'py, PyBytes>>>> {
        let l = self.get()?;
        let os = py.detach(|| l.store().openings(start, end))?;
        Ok(os.into_iter().map(|o| o.map(|o| PyBytes::new(py, &o))).collect())
    }

    /// The oversight index's columns for records `start..end` whose bodies are kept: (seq
    /// int64, time_us int64, requester uint32, provider uint32, denied_code uint16, affairs
    /// list of str). Read without the GIL; equal affairs share one str object.
    fn index_columns<'py>(&self, py: Python<'py>, start: u64, end: u64) -> PyResult<IndexColumns<'py>> {
        let l = self.get()?;
        let c = py.detach(|| -> Result<Columns, Error> {
            let es = l.store().entries(start, end)?;
            columns_of((start..).zip(es.iter().map(|e| e.as_deref())))
        })?;
        columns_out(py, c)
    }

    /// Records `start..end` (None where retention dropped the body), each bundle read once.
    fn entries<'py>(&self, py: Python<'py>, start: u64, end: u64) -> PyResult<Vec<Option<Bound<'py, PyBytes>>>> {
        let l = self.get()?;
        let es = py.detach(|| l.store().entries(start, end))?;
        Ok(es.into_iter().map(|e| e.map(|e| PyBytes::new(py, &e))).collect())
    }

    fn inclusion_proof<'py>(&self, py: Python<'py>, index: u64, size: u64) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let l = self.get()?;
        let p = py.detach(|| l.store().inclusion_proof(index, size))?;
        Ok(hashes_out(py, &p))
    }

    /// Inclusion proofs of many leaves in the tree of `size`: (concatenated hashes, uint32
    /// number of hashes per proof).
    fn inclusion_proofs<'py>(
        &self,
        py: Python<'py>,
        indices: &Bound<'py, PyAny>,
        size: u64,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyArray1<u32>>)> {
        let arr = readonly_u64(indices, "indices")?;
        let idx = contiguous(&arr);
        let idx: &[u64] = &idx;
        let l = self.get()?;
        let (flat, counts) = py.detach(|| -> Result<(Vec<u8>, Vec<u32>), Error> {
            let s = l.store();
            let mut flat = Vec::with_capacity(idx.len() * 32 * 24);
            let mut counts = Vec::with_capacity(idx.len());
            for &i in idx {
                let p = s.inclusion_proof(i, size)?;
                counts.push(p.len() as u32);
                for h in &p {
                    flat.extend_from_slice(h);
                }
            }
            Ok((flat, counts))
        })?;
        Ok((PyBytes::new(py, &flat), PyArray1::from_vec(py, counts)))
    }

    fn consistency_proof<'py>(&self, py: Python<'py>, size1: u64, size2: u64) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let l = self.get()?;
        let p = py.detach(|| l.store().consistency_proof(size1, size2))?;
        Ok(hashes_out(py, &p))
    }

    /// (list of (seq, public leaf, opening, proof), next `before` cursor or None, checkpoint note).
    #[allow(clippy::type_complexity)]
    fn records_for_pseudonym<'py>(
        &self,
        py: Python<'py>,
        pseudonym: &[u8],
        before: Option<u64>,
        limit: usize,
        today: u32,
    ) -> PyResult<(Vec<(u64, Bound<'py, PyBytes>, Bound<'py, PyBytes>, Vec<Bound<'py, PyBytes>>)>, Option<u64>, String)> {
        let p: [u8; 32] = fixed(pseudonym, "pseudonym")?;
        let l = self.get()?;
        let page = py.detach(|| l.store().records_for_pseudonym(&p, before, limit, today))?;
        let recs = page
            .records
            .iter()
            .map(|(s, e, o, proof)| (*s, PyBytes::new(py, e), PyBytes::new(py, o), hashes_out(py, proof)))
            .collect();
        Ok((recs, page.next_before, page.checkpoint))
    }

    /// The number of runs of the per-person index (at most popcount of the full segments once
    /// merged).
    fn index_runs(&self) -> PyResult<usize> {
        Ok(self.get()?.store().index_runs())
    }

    /// Wait until the background merges of the per-person index are done (benches, tests).
    fn settle_index(&self, py: Python<'_>) -> PyResult<()> {
        let l = self.get()?;
        py.detach(|| l.store().settle_index());
        Ok(())
    }

    /// Drop bodies of records older than `cutoff_us`; returns how many were dropped now.
    fn retain(&self, py: Python<'_>, cutoff_us: i64) -> PyResult<u64> {
        let l = self.get()?;
        Ok(py.detach(|| l.store().retain(cutoff_us))?)
    }

    /// Recheck every file; a dict of counts, or `LedgerDamageError` naming the first damage.
    fn verify<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let l = self.get()?;
        let r = py.detach(|| l.store().verify().map_err(Error::from))?;
        report_dict(py, &r)
    }

    /// Release the directory (its writer lock) once in-flight calls finish.
    fn close(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    fn __repr__(&self) -> String {
        match self.get() {
            Ok(l) => format!("<Ledger size={}>", l.store().size()),
            Err(_) => "<Ledger closed>".into(),
        }
    }
}

fn report_dict<'py>(py: Python<'py>, r: &crate::ledger::store::VerifyReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("size", r.size)?;
    d.set_item("records_checked", r.records_checked)?;
    d.set_item("records_retained_away", r.records_retained_away)?;
    d.set_item("tiles_checked", r.tiles_checked)?;
    d.set_item("checkpoints_checked", r.checkpoints_checked)?;
    d.set_item("renkei", r.renkei)?;
    d.set_item("openings_checked", r.openings_checked)?;
    d.set_item("wal_frames_checked", r.wal_frames_checked)?;
    Ok(d)
}

/// The operator's check of its ledger directory (every public and private file), without
/// opening it for writing (no recovery runs).
#[pyfunction]
fn verify_dir<'py>(py: Python<'py>, path: std::path::PathBuf, vkey: &str) -> PyResult<Bound<'py, PyDict>> {
    let v = NoteVerifier::parse(vkey)?;
    let r = py.detach(|| crate::ledger::store::verify_dir(&path, &v).map_err(Error::from))?;
    report_dict(py, &r)
}

/// Verify any C2SP tlog-tiles log from its verifier key alone. `renkei`: check the entries as
/// renkei records (None: when the directory has renkei's `format` file); `origin`: the
/// checkpoint's origin line (default: the key's name). Private files are checked when present.
#[pyfunction]
#[pyo3(signature = (path, vkey, origin=None, renkei=None))]
fn verify_public<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
    vkey: &str,
    origin: Option<String>,
    renkei: Option<bool>,
) -> PyResult<Bound<'py, PyDict>> {
    let v = NoteVerifier::parse(vkey)?;
    let opts = crate::ledger::store::VerifyOptions { renkei, private: false, origin };
    let r = py.detach(|| crate::ledger::store::verify_public(&path, &v, &opts).map_err(Error::from))?;
    report_dict(py, &r)
}

pub(super) fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_record, m)?)?;
    m.add_function(wrap_pyfunction!(decode_record, m)?)?;
    m.add_function(wrap_pyfunction!(decode_public_record, m)?)?;
    m.add_function(wrap_pyfunction!(opens, m)?)?;
    m.add_function(wrap_pyfunction!(verify_public, m)?)?;
    m.add_function(wrap_pyfunction!(pack_records, m)?)?;
    m.add_function(wrap_pyfunction!(prepare_records, m)?)?;
    m.add_function(wrap_pyfunction!(integrate_leaves, m)?)?;
    m.add_function(wrap_pyfunction!(edge_root, m)?)?;
    m.add_function(wrap_pyfunction!(leaf_columns, m)?)?;
    m.add_function(wrap_pyfunction!(tiles_root, m)?)?;
    m.add_function(wrap_pyfunction!(tiles_inclusion_proof, m)?)?;
    m.add_function(wrap_pyfunction!(tiles_consistency_proof, m)?)?;
    m.add_function(wrap_pyfunction!(provision_records, m)?)?;
    m.add_function(wrap_pyfunction!(leaf_hash, m)?)?;
    m.add_function(wrap_pyfunction!(verify_inclusion, m)?)?;
    m.add_function(wrap_pyfunction!(verify_consistency, m)?)?;
    m.add_function(wrap_pyfunction!(open_note, m)?)?;
    m.add_function(wrap_pyfunction!(parse_vkey, m)?)?;
    m.add_function(wrap_pyfunction!(sign_note, m)?)?;
    m.add_function(wrap_pyfunction!(parse_checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(vkey_for, m)?)?;
    m.add_function(wrap_pyfunction!(verify_dir, m)?)?;
    m.add_class::<PyMemTree>()?;
    m.add_class::<PyRecord>()?;
    m.add_class::<PyLedger>()?;
    Ok(())
}
