//! `renkei._core.inquiry`: the inquiry path (情報照会) as one call without the GIL, over the
//! engine objects the rest of the core already holds (code engine, permission engine, permit
//! signer, ledger).

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::codes::PyCodeEngine;
use super::errors::invalid_argument;
use super::ledger::ledger_of;
use super::permissions::PyEngine;
use super::permits::PySigner;
use crate::codes::{Code, CODE_LEN};
use crate::inquiry::{wire_parts, InquiryPath, Party, Refusal, Request};
use crate::ledger::{Appender, Ledger};
use crate::permissions::parse_municipality;

/// An agency of a request; `refused`: the inquiry is refused before the table, so an agency
/// the registry does not know (no types) is allowed.
fn party(id: u64, types: Vec<String>, municipality: Option<&str>, refused: bool) -> PyResult<Party> {
    let id = u32::try_from(id).map_err(|_| invalid_argument("agency id out of range (0..2^32)"))?;
    if types.is_empty() && !refused {
        return Err(invalid_argument("an agency needs at least one agency type"));
    }
    let municipality = match municipality {
        None | Some("") => 0,
        Some(m) => parse_municipality(m)?,
    };
    Ok(Party { id, types, municipality })
}

/// Where the path's records become durable: the engine ledger (files), or a Python object with
/// `append_packed(bytes) -> (first, count, note)` (renkei.store.pgledger: the PostgreSQL
/// store's sequencing transaction), called with the GIL taken back for the call.
enum LedgerHandle {
    Engine(Arc<Ledger>),
    Python(Py<PyAny>),
}

/// One call's appender over a Python object; an exception it raises is kept and re-raised as
/// it was (so a `StoreUnavailableError` stays one), the path seeing a storage error.
struct PyAppender<'a> {
    obj: &'a Py<PyAny>,
    raised: std::sync::Mutex<Option<PyErr>>,
}

impl Appender for PyAppender<'_> {
    fn append_packed(&self, packed: &[u8]) -> crate::Result<(u64, u64, String)> {
        Python::attach(|py| {
            self.obj
                .call_method1(py, "append_packed", (PyBytes::new(py, packed),))
                .and_then(|r| r.extract::<(u64, u64, String)>(py))
                .map_err(|e| {
                    let msg = format!("the ledger's store failed: {}", e.value(py));
                    *self.raised.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    crate::Error::Storage(msg)
                })
        })
    }
}

impl LedgerHandle {
    /// Run `f` with this handle's appender; an exception the Python appender raised wins over
    /// the error the path made of it.
    fn with<T>(&self, f: impl FnOnce(&dyn Appender) -> PyResult<T>) -> PyResult<T> {
        match self {
            LedgerHandle::Engine(l) => f(l.as_ref()),
            LedgerHandle::Python(obj) => {
                let a = PyAppender { obj, raised: std::sync::Mutex::new(None) };
                let out = f(&a);
                match a.raised.into_inner().unwrap_or_else(|p| p.into_inner()) {
                    Some(e) => Err(e),
                    None => out,
                }
            }
        }
    }
}

/// The inquiry path over shared engines. `pseudonym_key` is the portal-pseudonym key
/// (`DataDir.secret_key("portal-pseudonym")`).
#[pyclass(module = "renkei._core.inquiry", name = "InquiryPath", frozen)]
struct PyInquiryPath {
    codes: Py<PyCodeEngine>,
    permissions: Py<PyEngine>,
    signer: Py<PySigner>,
    ledger: LedgerHandle,
    pseudonym_key: Vec<u8>,
}

type Parties = (u64, Vec<String>, Option<String>);
/// (outcome byte, reason for the record) of a refusal decided before the table.
type PyRefusal = Option<(u8, String)>;

fn refusal(r: PyRefusal) -> Option<Refusal> {
    r.map(|(outcome, reason)| Refusal { outcome, reason })
}
/// (照会側不開示 until, days since 1970-01-01; 委任元 agency id).
type Terms = (Option<u32>, Option<u32>);
type WirePermit<'py> = (Bound<'py, PyBytes>, Bound<'py, PyBytes>, String);

/// The permit as gRPC wants it (body, signature, key id), made here rather than in Python.
fn wire<'py>(py: Python<'py>, token: Option<String>) -> PyResult<Option<WirePermit<'py>>> {
    token
        .map(|t| {
            let (body, sig, kid) = wire_parts(&t).ok_or_else(|| invalid_argument("the signer made a malformed permit"))?;
            Ok((PyBytes::new(py, &body), PyBytes::new(py, &sig), kid))
        })
        .transpose()
}

/// What `inquire` returns (see there).
type Single<'py> = (u8, String, Bound<'py, PyBytes>, u64, Option<WirePermit<'py>>, i64, Bound<'py, PyBytes>);
/// What `batch_inquire` returns (see there).
type Batch<'py> = (Bound<'py, PyBytes>, Bound<'py, PyBytes>, u64, Option<WirePermit<'py>>, i64, Bound<'py, PyBytes>);

fn single(py: Python<'_>, a: crate::inquiry::SingleAnswer) -> PyResult<Single<'_>> {
    Ok((
        a.outcome,
        a.reason,
        PyBytes::new(py, &a.provider_code),
        a.record_seq,
        wire(py, a.permit)?,
        a.expires_at,
        PyBytes::new(py, &a.records),
    ))
}

impl PyInquiryPath {
    #[allow(clippy::too_many_arguments)]
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        requester: Parties,
        provider: Parties,
        affair: String,
        items: Vec<String>,
        lifetime_s: u32,
        refused: Option<Refusal>,
        terms: Terms,
        f: impl FnOnce(&InquiryPath<'_>, &Request<'_>) -> crate::Result<T> + Send,
    ) -> PyResult<T> {
        let rq = party(requester.0, requester.1, requester.2.as_deref(), refused.is_some())?;
        let pv = party(provider.0, provider.1, provider.2.as_deref(), refused.is_some())?;
        let (codes, perms, signer) = (self.codes.get(), self.permissions.get(), self.signer.get());
        let req = Request {
            requester: &rq,
            provider: &pv,
            affair: &affair,
            items: &items,
            lifetime_s,
            refusal: refused.as_ref(),
            withheld_until: terms.0,
            delegator: terms.1,
        };
        self.ledger.with(|ledger| {
            let path = InquiryPath {
                codes: &codes.inner,
                permissions: &perms.inner,
                signer: &signer.inner,
                ledger,
                pseudonym_key: &self.pseudonym_key,
            };
            Ok(py.detach(|| f(&path, &req))?)
        })
    }
}

#[pymethods]
impl PyInquiryPath {
    #[new]
    fn new(
        codes: Py<PyCodeEngine>,
        permissions: Py<PyEngine>,
        signer: Py<PySigner>,
        ledger: &Bound<'_, PyAny>,
        pseudonym_key: Vec<u8>,
    ) -> PyResult<Self> {
        if pseudonym_key.len() < 32 {
            return Err(invalid_argument("the pseudonym key needs at least 32 bytes"));
        }
        let ledger = match ledger_of(ledger) {
            Ok(l) => LedgerHandle::Engine(l),
            Err(_) if ledger.hasattr("append_packed")? => LedgerHandle::Python(ledger.clone().unbind()),
            Err(e) => return Err(e),
        };
        Ok(PyInquiryPath { codes, permissions, signer, ledger, pseudonym_key })
    }

    /// One inquiry. Returns (outcome byte, reason, provider code, record sequence, permit as
    /// (body, signature, key id) or None, expiry in Unix seconds, its packed 照会 record); the
    /// record is durable when this returns. `refusal`: (outcome, reason) decided before the
    /// table (still recorded); `withheld_until` (days since 1970-01-01) and `delegator` are
    /// recorded with it (照会側不開示, 委任元).
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    #[pyo3(signature = (requester, provider, code, affair, items, lifetime_s=300, *, refusal=None, withheld_until=None, delegator=None))]
    fn inquire<'py>(
        &self,
        py: Python<'py>,
        requester: Parties,
        provider: Parties,
        code: &[u8],
        affair: String,
        items: Vec<String>,
        lifetime_s: u32,
        refusal: PyRefusal,
        withheld_until: Option<u32>,
        delegator: Option<u32>,
    ) -> PyResult<Single<'py>> {
        let code: Code = code.try_into().map_err(|_| invalid_argument(format!("an agency code is {CODE_LEN} bytes")))?;
        let terms = (withheld_until, delegator);
        let a = self.run(py, requester, provider, affair, items, lifetime_s, self::refusal(refusal), terms, |p, r| {
            p.inquire(r, &code)
        })?;
        single(py, a)
    }

    /// Independent single inquiries, recorded in one durable commit: `requests` holds
    /// (requester, provider, code, affair, items, refusal, withheld_until, delegator) tuples
    /// (as in `inquire`).
    /// Returns, per request, the tuple `inquire` returns or the exception it would raise (as a
    /// value, not raised).
    #[allow(clippy::type_complexity)]
    #[pyo3(signature = (requests, lifetime_s=300))]
    fn inquire_many<'py>(
        &self,
        py: Python<'py>,
        requests: Vec<(Parties, Parties, Vec<u8>, String, Vec<String>, PyRefusal, Option<u32>, Option<u32>)>,
        lifetime_s: u32,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        type Parsed = (Party, Party, Code, String, Vec<String>, Option<Refusal>, Terms);
        // Malformed requests are answered without reaching the path.
        let mut parsed: Vec<Result<Parsed, PyErr>> = Vec::with_capacity(requests.len());
        for (rq, pv, code, affair, items, refused, withheld_until, delegator) in requests {
            parsed.push((|| {
                let code: Code =
                    code.as_slice().try_into().map_err(|_| invalid_argument(format!("an agency code is {CODE_LEN} bytes")))?;
                let r = refused.is_some();
                let (rq, pv) = (party(rq.0, rq.1, rq.2.as_deref(), r)?, party(pv.0, pv.1, pv.2.as_deref(), r)?);
                Ok((rq, pv, code, affair, items, refusal(refused), (withheld_until, delegator)))
            })());
        }
        let ok: Vec<&Parsed> = parsed.iter().filter_map(|p| p.as_ref().ok()).collect();
        let (codes, perms, signer) = (self.codes.get(), self.permissions.get(), self.signer.get());
        let answers = self.ledger.with(|ledger| {
            let path = InquiryPath {
                codes: &codes.inner,
                permissions: &perms.inner,
                signer: &signer.inner,
                ledger,
                pseudonym_key: &self.pseudonym_key,
            };
            Ok(py.detach(|| {
                let reqs: Vec<(Request<'_>, Code)> = ok
                    .iter()
                    .map(|(rq, pv, code, affair, items, refused, terms)| {
                        let req = Request {
                            requester: rq,
                            provider: pv,
                            affair,
                            items,
                            lifetime_s,
                            refusal: refused.as_ref(),
                            withheld_until: terms.0,
                            delegator: terms.1,
                        };
                        (req, *code)
                    })
                    .collect();
                path.inquire_many(&reqs)
            }))
        })?;
        let mut answers = answers.into_iter();
        let mut out = Vec::with_capacity(parsed.len());
        for p in parsed {
            let item = match p {
                Err(e) => e.into_value(py).into_any().into_bound(py),
                Ok(_) => match answers.next().expect("one answer per parsed request") {
                    Err(e) => PyErr::from(e).into_value(py).into_any().into_bound(py),
                    Ok(a) => single(py, a)?.into_pyobject(py)?.into_any(),
                },
            };
            out.push(item);
        }
        Ok(out)
    }

    /// Many inquiries (codes packed 16 bytes each). Returns (outcome bytes, provider codes,
    /// first record sequence, batch permit as (body, signature, key id) or None, expiry, the
    /// packed 照会 records); every record is durable. A batch that would record more than
    /// `max_denials` denials is refused whole (`RateLimitedError`), recording nothing.
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    #[pyo3(signature = (requester, provider, codes, affair, items, lifetime_s=300, *, refusal=None, max_denials=None, withheld_until=None, delegator=None))]
    fn batch_inquire<'py>(
        &self,
        py: Python<'py>,
        requester: Parties,
        provider: Parties,
        codes: &[u8],
        affair: String,
        items: Vec<String>,
        lifetime_s: u32,
        refusal: PyRefusal,
        max_denials: Option<usize>,
        withheld_until: Option<u32>,
        delegator: Option<u32>,
    ) -> PyResult<Batch<'py>> {
        let max = max_denials.unwrap_or(usize::MAX);
        let terms = (withheld_until, delegator);
        let a = self.run(py, requester, provider, affair, items, lifetime_s, self::refusal(refusal), terms, |p, r| {
            p.batch_inquire(r, codes, max)
        })?;
        Ok((
            PyBytes::new(py, &a.outcomes),
            PyBytes::new(py, &a.provider_codes),
            a.first_seq,
            wire(py, a.permit)?,
            a.expires_at,
            PyBytes::new(py, &a.records),
        ))
    }

    fn __repr__(&self) -> &'static str {
        "<inquiry.InquiryPath>"
    }
}

/// The portal pseudonym of a person id (for tests and the disclosure login).
#[pyfunction]
fn pseudonym<'py>(py: Python<'py>, key: &[u8], person: u32) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &crate::inquiry::pseudonym(key, person))
}

pub(super) fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyInquiryPath>()?;
    m.add_function(wrap_pyfunction!(pseudonym, m)?)?;
    m.add("MAX_BATCH_ITEMS", crate::inquiry::MAX_BATCH_ITEMS)?;
    m.add("PROVIDER_UNAVAILABLE", crate::inquiry::PROVIDER_UNAVAILABLE)?;
    m.add("REQUESTER_NOT_ELIGIBLE", crate::inquiry::REQUESTER_NOT_ELIGIBLE)?;
    m.add("REQUEST_ID_REUSED", crate::inquiry::REQUEST_ID_REUSED)?;
    Ok(())
}
