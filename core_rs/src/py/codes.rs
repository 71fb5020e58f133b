//! `renkei._core.codes`: the agency-code engine (codes, key epochs, durable holdings).
//!
//! Batch calls take codes packed into one `bytes` (16 bytes each) and person ids as a uint64
//! array, return one `bytes` plus a uint8 status array, and run without the GIL.

use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::arrays::{contiguous, readonly_u64};
use super::errors::invalid_argument;
use crate::codes::engine::{person_u32, CodeEngine};
use crate::codes::{text, Code, Epochs, CODE_LEN};
use crate::holdings::{HoldingsIndex, LinkId, Op};

fn agency_u32(a: u64) -> PyResult<u32> {
    u32::try_from(a).map_err(|_| invalid_argument("agency id out of range (0..2^32)"))
}

fn persons_of(a: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u32>> {
    let arr = readonly_u64(a, what)?;
    let items = contiguous(&arr);
    items.iter().enumerate().map(|(i, &p)| person_u32(p, i).map_err(PyErr::from)).collect()
}

fn packed(codes: &[u8]) -> PyResult<usize> {
    if codes.len() % CODE_LEN != 0 {
        return Err(invalid_argument(format!("codes must be packed 16 bytes each; got {} bytes", codes.len())));
    }
    Ok(codes.len() / CODE_LEN)
}

/// Packed 16-byte person link ids, viewed in place.
fn link_ids(links: &[u8]) -> PyResult<&[LinkId]> {
    if links.len() % 16 != 0 {
        return Err(invalid_argument(format!("link ids must be packed 16 bytes each; got {} bytes", links.len())));
    }
    // SAFETY: [u8; 16] has size 16 and alignment 1, so any byte slice whose length is a
    // multiple of 16 is a valid slice of them, borrowed for the same lifetime.
    Ok(unsafe { std::slice::from_raw_parts(links.as_ptr().cast::<LinkId>(), links.len() / 16) })
}

/// Packed u32 LE person indices (the PostgreSQL driver's event format), copied out.
fn persons_u32le(data: &[u8]) -> PyResult<Vec<u32>> {
    if data.len() % 4 != 0 {
        return Err(invalid_argument(format!("person indices must be packed 4 bytes each (u32 LE); got {} bytes", data.len())));
    }
    Ok(data.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

fn u32le_bytes<'py>(py: Python<'py>, persons: &[u32]) -> Bound<'py, PyBytes> {
    PyBytes::new_with(py, persons.len() * 4, |out| {
        for (o, p) in out.chunks_exact_mut(4).zip(persons) {
            o.copy_from_slice(&p.to_le_bytes());
        }
        Ok(())
    })
    .expect("allocating bytes")
}

fn holding_op(op: &str) -> PyResult<Op> {
    match op {
        "acquire" => Ok(Op::Acquire),
        "release" => Ok(Op::Release),
        _ => Err(invalid_argument(format!("a holding event is 'acquire' or 'release', not {op:?}"))),
    }
}

fn one(code: &[u8]) -> PyResult<Code> {
    code.try_into().map_err(|_| invalid_argument(format!("an agency code is 16 bytes, got {}", code.len())))
}

/// The agency-code engine of the linkage core. It knows persons only by person id.
#[pyclass(module = "renkei._core.codes", name = "CodeEngine", frozen)]
pub(crate) struct PyCodeEngine {
    pub(crate) inner: CodeEngine,
}

impl PyCodeEngine {
    fn index(&self) -> PyResult<&HoldingsIndex> {
        self.inner.index().ok_or_else(|| invalid_argument("this engine keeps its holdings in a holdings directory, not an index fed by a store driver"))
    }
}

#[pymethods]
impl PyCodeEngine {
    #[new]
    /// `create`: make a new, empty holdings store when `holdings_dir` has none (init only);
    /// otherwise an emptied or missing store is refused as a `StorageError` naming it.
    #[pyo3(signature = (key, holdings_dir, current_epoch, live_epochs, checkpoint_bytes=crate::holdings::DEFAULT_CHECKPOINT_BYTES, *, create=false))]
    fn new(
        py: Python<'_>,
        key: &[u8],
        holdings_dir: std::path::PathBuf,
        current_epoch: u32,
        live_epochs: Vec<u32>,
        checkpoint_bytes: u64,
        create: bool,
    ) -> PyResult<Self> {
        let epochs = Epochs::new(current_epoch, &live_epochs)?;
        let key = key.to_vec();
        let inner = py.detach(|| {
            if create {
                CodeEngine::create(&key, holdings_dir, epochs, checkpoint_bytes)
            } else {
                CodeEngine::open(&key, holdings_dir, epochs, checkpoint_bytes)
            }
        })?;
        Ok(PyCodeEngine { inner })
    }

    /// An engine with no holdings directory: its index starts empty and is fed by a store
    /// driver (renkei.store.holdings) with snapshot ranges and durable events (`index_*`).
    #[staticmethod]
    fn in_memory(key: &[u8], current_epoch: u32, live_epochs: Vec<u32>) -> PyResult<Self> {
        let epochs = Epochs::new(current_epoch, &live_epochs)?;
        Ok(PyCodeEngine { inner: CodeEngine::in_memory(key, epochs)? })
    }

    /// Whether the holdings are an index fed by a store driver (no holdings directory).
    fn is_in_memory(&self) -> bool {
        self.inner.index().is_some()
    }

    /// Room for `persons` link ids at once, before a bulk load.
    fn index_reserve(&self, py: Python<'_>, persons: u64) -> PyResult<()> {
        let ix = self.index()?;
        py.detach(|| ix.reserve(persons));
        Ok(())
    }

    /// Load one snapshot range (ascending order; format in `holdings::index`); its number.
    fn index_load_range(&self, py: Python<'_>, data: &[u8]) -> PyResult<u32> {
        let ix = self.index()?;
        Ok(py.detach(|| ix.load_range(data))?)
    }

    /// Apply one patch of the range loaded last (after its base and earlier patches, in
    /// snapshot order; format in `holdings::index`); its range.
    fn index_load_patch(&self, py: Python<'_>, data: &[u8]) -> PyResult<u32> {
        let ix = self.index()?;
        Ok(py.detach(|| ix.load_patch(data))?)
    }

    /// The patch of range `hi` now: link ids from person `first` on, and for each (agency,
    /// person) pair of `agencies` / `persons` (packed u32 LE each, the same length, persons
    /// inside the range) whether it is held; `previous` patches of the range folded in.
    fn index_encode_patch<'py>(
        &self,
        py: Python<'py>,
        hi: u32,
        first: u64,
        agencies: &[u8],
        persons: &[u8],
        previous: Vec<Vec<u8>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let ix = self.index()?;
        let (agencies, persons) = (persons_u32le(agencies)?, persons_u32le(persons)?);
        if agencies.len() != persons.len() {
            return Err(invalid_argument(format!(
                "{} agencies for {} persons: one agency per person",
                agencies.len(),
                persons.len()
            )));
        }
        let touched: Vec<(u32, u32)> = agencies.into_iter().zip(persons).collect();
        let data = py.detach(|| {
            let previous: Vec<&[u8]> = previous.iter().map(Vec::as_slice).collect();
            ix.encode_patch(hi, first, &touched, &previous)
        })?;
        Ok(PyBytes::new(py, &data))
    }

    /// After the last range: flat mirrors and dense columns.
    fn index_finish_load(&self, py: Python<'_>) -> PyResult<()> {
        let ix = self.index()?;
        py.detach(|| ix.finish_load());
        Ok(())
    }

    /// The number of snapshot ranges the current state spans (either driver's holdings).
    fn index_range_count(&self) -> u32 {
        crate::holdings::index::range_count(&self.inner.holdings())
    }

    /// Range `hi` of the current state, encoded for a snapshot (either driver's holdings: a file
    /// store's state can be exported to a store driver this way).
    fn index_encode_range<'py>(&self, py: Python<'py>, hi: u32) -> PyResult<Bound<'py, PyBytes>> {
        let data = py.detach(|| crate::holdings::index::encode_range(&self.inner.holdings(), hi));
        Ok(PyBytes::new(py, &data))
    }

    /// (person index per link as packed u32 LE, the link ids seen for the first time, packed):
    /// the new ones numbered from `person_count()` in order of first appearance, not assigned.
    fn index_resolve_links<'py>(&self, py: Python<'py>, links: &[u8]) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let ix = self.index()?;
        let links = link_ids(links)?;
        let (persons, new) = py.detach(|| ix.read().resolve_links(links))?;
        Ok((u32le_bytes(py, &persons), PyBytes::new(py, new.as_flattened())))
    }

    /// Assign person indices `first..` to the link ids (made durable by the driver first).
    fn index_assign(&self, py: Python<'_>, first: u64, links: &[u8]) -> PyResult<()> {
        let ix = self.index()?;
        let links = link_ids(links)?;
        Ok(py.detach(|| ix.assign(first, links))?)
    }

    /// Of `op` ('acquire' | 'release') on `agency`'s persons (packed u32 LE), those it would
    /// change (packed u32 LE).
    fn index_effective<'py>(&self, py: Python<'py>, op: &str, agency: u64, persons: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let (ix, op, agency, persons) = (self.index()?, holding_op(op)?, agency_u32(agency)?, persons_u32le(persons)?);
        let kept = py.detach(|| ix.read().effective(op, vec![(agency, persons)]));
        Ok(u32le_bytes(py, kept.first().map_or(&[][..], |(_, ps)| ps)))
    }

    /// Apply a durable event: `op` on `agency`'s persons (packed u32 LE); holdings changed.
    fn index_apply(&self, py: Python<'_>, op: &str, agency: u64, persons: &[u8]) -> PyResult<u64> {
        let (ix, op, agency, persons) = (self.index()?, holding_op(op)?, agency_u32(agency)?, persons_u32le(persons)?);
        Ok(py.detach(|| ix.apply(op, &vec![(agency, persons)]))?)
    }

    /// `agency`'s codes for persons (packed u32 LE) under the current epoch, recording nothing.
    fn codes_for<'py>(&self, py: Python<'py>, agency: u64, persons: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let (agency, persons) = (agency_u32(agency)?, persons_u32le(persons)?);
        PyBytes::new_with(py, persons.len() * CODE_LEN, |out| {
            py.detach(|| self.inner.codes_for(agency, &persons, out)).map_err(PyErr::from)
        })
    }

    /// The persons (packed u32 LE) behind `agency`'s valid, live, held codes, and a status per
    /// code (0 ok, 1 refused: the same for every cause). Changes nothing.
    fn held_persons_of_codes<'py>(
        &self,
        py: Python<'py>,
        agency: u64,
        codes: &[u8],
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyArray1<u8>>)> {
        let agency = agency_u32(agency)?;
        let n = packed(codes)?;
        let (persons, status) = py.detach(|| {
            let mut status = vec![0u8; n];
            self.inner.held_persons_of_codes(agency, codes, &mut status).map(|p| (p, status))
        })?;
        Ok((u32le_bytes(py, &persons), PyArray1::from_vec(py, status)))
    }

    fn set_epochs(&self, current_epoch: u32, live_epochs: Vec<u32>) -> PyResult<()> {
        self.inner.set_epochs(Epochs::new(current_epoch, &live_epochs)?);
        Ok(())
    }

    /// (current epoch, live epochs).
    fn epochs(&self) -> (u32, Vec<u32>) {
        let e = self.inner.epochs();
        (e.current(), e.live().to_vec())
    }

    /// Issue `agency`'s codes for the persons and record the holdings durably.
    fn acquire<'py>(&self, py: Python<'py>, agency: u64, persons: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        let agency = agency_u32(agency)?;
        let persons = persons_of(persons, "person ids")?;
        PyBytes::new_with(py, persons.len() * CODE_LEN, |out| {
            py.detach(|| self.inner.acquire(agency, &persons, out)).map(|_| ()).map_err(PyErr::from)
        })
    }

    /// Bulk: many (agency, person) pairs in one durable record; codes in input order.
    fn acquire_pairs<'py>(
        &self,
        py: Python<'py>,
        agencies: &Bound<'py, PyAny>,
        persons: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let agencies = persons_of(agencies, "agency ids")?;
        let persons = persons_of(persons, "person ids")?;
        PyBytes::new_with(py, persons.len() * CODE_LEN, |out| {
            py.detach(|| self.inner.acquire_pairs(&agencies, &persons, out)).map(|_| ()).map_err(PyErr::from)
        })
    }

    /// Issue `agency`'s codes for the persons behind J-LIS's person link ids (16 bytes each,
    /// packed) and record the holdings durably; a link id seen for the first time gets the
    /// next person index in the same journal record. 16 bytes of code per link, in order.
    fn acquire_links<'py>(&self, py: Python<'py>, agency: u64, links: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let agency = agency_u32(agency)?;
        let links = link_ids(links)?;
        PyBytes::new_with(py, links.len() * CODE_LEN, |out| {
            py.detach(|| self.inner.acquire_links(agency, links, out)).map(|_| ()).map_err(PyErr::from)
        })
    }

    /// Bulk: many (agency, link id) pairs in one durable record; codes in input order.
    fn acquire_link_pairs<'py>(
        &self,
        py: Python<'py>,
        agencies: &Bound<'py, PyAny>,
        links: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        let agencies = persons_of(agencies, "agency ids")?;
        let links = link_ids(links)?;
        PyBytes::new_with(py, links.len() * CODE_LEN, |out| {
            py.detach(|| self.inner.acquire_link_pairs(&agencies, links, out)).map(|_| ()).map_err(PyErr::from)
        })
    }

    /// The person index of each link id as an int64 array, -1 where none is assigned. With
    /// `assign`, new link ids get the next indices, durably, before this returns.
    fn persons_of_links<'py>(&self, py: Python<'py>, links: &[u8], assign: bool) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let links = link_ids(links)?;
        let persons = py.detach(|| self.inner.persons_of_links(links, assign))?;
        Ok(PyArray1::from_vec(py, persons.into_iter().map(|p| p.map_or(-1, i64::from)).collect()))
    }

    /// The link id of person index `person` (16 bytes), or None.
    fn link_of<'py>(&self, py: Python<'py>, person: u64) -> PyResult<Option<Bound<'py, PyBytes>>> {
        Ok(u32::try_from(person).ok().and_then(|p| self.inner.link_of(p)).map(|l| PyBytes::new(py, &l)))
    }

    /// Person indices assigned so far from link ids (they are 0..person_count).
    fn person_count(&self) -> u64 {
        self.inner.person_count()
    }

    /// Release the holdings behind `agency`'s codes: (number released, per-code status).
    fn release<'py>(&self, py: Python<'py>, agency: u64, codes: &[u8]) -> PyResult<(u64, Bound<'py, PyArray1<u8>>)> {
        let agency = agency_u32(agency)?;
        let n = packed(codes)?;
        let (removed, status) = py.detach(|| {
            let mut status = vec![0u8; n];
            self.inner.release(agency, codes, &mut status).map(|r| (r, status))
        })?;
        Ok((removed, PyArray1::from_vec(py, status)))
    }

    fn release_persons(&self, py: Python<'_>, agency: u64, persons: &Bound<'_, PyAny>) -> PyResult<u64> {
        let agency = agency_u32(agency)?;
        let persons = persons_of(persons, "person ids")?;
        Ok(py.detach(|| self.inner.release_persons(agency, &persons))?)
    }

    /// Translate `from_agency`'s codes to `to_agency`'s: (codes, per-code status; 0 = ok).
    fn translate<'py>(
        &self,
        py: Python<'py>,
        from_agency: u64,
        codes: &[u8],
        to_agency: u64,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyArray1<u8>>)> {
        let (from, to) = (agency_u32(from_agency)?, agency_u32(to_agency)?);
        let n = packed(codes)?;
        let mut status = vec![0u8; n];
        let out = PyBytes::new_with(py, codes.len(), |out| {
            py.detach(|| self.inner.translate(from, codes, to, out, &mut status)).map_err(PyErr::from)
        })?;
        Ok((out, PyArray1::from_vec(py, status)))
    }

    fn translate_one<'py>(&self, py: Python<'py>, from_agency: u64, code: &[u8], to_agency: u64) -> PyResult<Bound<'py, PyBytes>> {
        let code = one(code)?;
        let out = self.inner.translate_one(agency_u32(from_agency)?, &code, agency_u32(to_agency)?)?;
        Ok(PyBytes::new(py, &out))
    }

    /// The person id behind `agency`'s own valid, live, held code.
    fn person_of(&self, agency: u64, code: &[u8]) -> PyResult<u32> {
        Ok(self.inner.person_of(agency_u32(agency)?, &one(code)?)?)
    }

    fn holders_of_code(&self, agency: u64, code: &[u8]) -> PyResult<Vec<u32>> {
        Ok(self.inner.holders_of_code(agency_u32(agency)?, &one(code)?)?)
    }

    fn holders_of_person(&self, py: Python<'_>, person: u64) -> PyResult<Vec<u32>> {
        let person = person_u32(person, 0)?;
        Ok(py.detach(|| self.inner.holders_of_person(person)))
    }

    fn holds(&self, agency: u64, person: u64) -> PyResult<bool> {
        Ok(self.inner.holds(agency_u32(agency)?, person_u32(person, 0)?))
    }

    fn count(&self, agency: u64) -> PyResult<u64> {
        Ok(self.inner.count(agency_u32(agency)?))
    }

    /// (agency ids, holdings counts) as two uint64 arrays, ascending by agency.
    fn counts<'py>(&self, py: Python<'py>) -> (Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<u64>>) {
        let c = self.inner.counts();
        let agencies: Vec<u64> = c.iter().map(|(a, _)| *a as u64).collect();
        let counts: Vec<u64> = c.iter().map(|(_, n)| *n).collect();
        (PyArray1::from_vec(py, agencies), PyArray1::from_vec(py, counts))
    }

    fn total(&self) -> u64 {
        self.inner.total()
    }

    fn heap_bytes(&self) -> usize {
        self.inner.heap_bytes()
    }

    /// Write a snapshot and start a fresh journal.
    fn checkpoint(&self, py: Python<'_>) -> PyResult<()> {
        Ok(py.detach(|| self.inner.checkpoint())?)
    }

    /// Release the holdings directory (its `LOCK`) so another engine or process may open it;
    /// later changes are refused.
    fn close(&self, py: Python<'_>) {
        py.detach(|| self.inner.close())
    }

    fn open_report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let r = self.inner.open_report();
        let d = PyDict::new(py);
        d.set_item("snapshot_loaded", r.snapshot_loaded)?;
        d.set_item("records_replayed", r.records_replayed)?;
        d.set_item("torn_bytes_dropped", r.torn_bytes_dropped)?;
        Ok(d)
    }

    fn __repr__(&self) -> &'static str {
        "<CodeEngine (key hidden)>"
    }
}

/// The 26-character Crockford base32 text of a 16-byte code.
#[pyfunction]
fn code_to_text(code: &[u8]) -> PyResult<String> {
    Ok(text::encode(&one(code)?))
}

/// The 16 bytes of a code written in Crockford base32 (case-insensitive, hyphens ignored).
#[pyfunction]
fn code_from_text<'py>(py: Python<'py>, s: &str) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, &text::decode(s)?))
}

/// Check a holdings directory without changing it: the state it opens to, or the
/// `StorageError` opening would give (file and byte offset).
#[pyfunction]
fn verify_holdings<'py>(py: Python<'py>, holdings_dir: std::path::PathBuf) -> PyResult<Bound<'py, PyDict>> {
    let r = py.detach(|| crate::holdings::verify(&holdings_dir))?;
    let d = PyDict::new(py);
    d.set_item("snapshot_loaded", r.open.snapshot_loaded)?;
    d.set_item("records", r.open.records_replayed)?;
    d.set_item("torn_tail_bytes", r.open.torn_bytes_dropped)?;
    d.set_item("persons", r.persons)?;
    d.set_item("holdings", r.holdings)?;
    d.set_item("agencies", r.agencies)?;
    Ok(d)
}

/// Salvage every readable record into a new snapshot, keeping the originals in
/// `damaged-<stamp>/` (see `holdings::repair`); `dry_run` reports without changing anything.
#[pyfunction]
#[pyo3(signature = (holdings_dir, stamp, *, dry_run=true))]
fn repair_holdings<'py>(
    py: Python<'py>,
    holdings_dir: std::path::PathBuf,
    stamp: &str,
    dry_run: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let stamp = stamp.to_string();
    let r = py.detach(|| crate::holdings::repair::repair(&holdings_dir, dry_run, &stamp))?;
    let d = PyDict::new(py);
    d.set_item("needed", r.needed)?;
    d.set_item("snapshot_problem", r.snapshot_problem)?;
    let journals = pyo3::types::PyList::empty(py);
    for j in &r.journals {
        let jd = PyDict::new(py);
        jd.set_item("file", j.file.display().to_string())?;
        jd.set_item("records", j.records)?;
        jd.set_item("torn_tail_bytes", j.torn_tail)?;
        let damaged: Vec<(u64, u64, String)> = j.damaged.iter().map(|x| (x.offset, x.bytes, x.why.clone())).collect();
        jd.set_item("damaged", damaged)?;
        journals.append(jd)?;
    }
    d.set_item("journals", journals)?;
    d.set_item("records_salvaged", r.records_salvaged)?;
    let skipped: Vec<(String, u64, String)> =
        r.skipped.iter().map(|x| (x.file.display().to_string(), x.offset, x.why.clone())).collect();
    d.set_item("skipped", skipped)?;
    d.set_item("persons", r.persons)?;
    d.set_item("persons_reserved", r.persons_reserved)?;
    d.set_item("holdings", r.holdings)?;
    d.set_item("generation", r.generation)?;
    d.set_item("kept_in", r.kept_in.map(|p| p.display().to_string()))?;
    Ok(d)
}

pub(super) fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCodeEngine>()?;
    m.add_function(wrap_pyfunction!(verify_holdings, m)?)?;
    m.add_function(wrap_pyfunction!(repair_holdings, m)?)?;
    m.add_function(wrap_pyfunction!(code_to_text, m)?)?;
    m.add_function(wrap_pyfunction!(code_from_text, m)?)?;
    m.add("CODE_LEN", CODE_LEN)?;
    m.add("STATUS_OK", crate::codes::STATUS_OK)?;
    m.add("STATUS_REFUSED", crate::codes::STATUS_REFUSED)?;
    Ok(())
}
