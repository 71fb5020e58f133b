//! `renkei._core.numbers`: check digits, batch validation and the J-LIS number map.

use numpy::PyArray1;
use pyo3::prelude::*;

use super::arrays::{contiguous, readonly_u64};
use crate::error::NumberKind;
use crate::numbers::{self, assign::NumberMap};

fn kind_from(name: &str) -> PyResult<NumberKind> {
    Ok(match name {
        "individual" => NumberKind::Individual,
        "corporate" => NumberKind::Corporate,
        "resident_code" => NumberKind::ResidentCode,
        other => return Err(super::errors::invalid_argument(format!("unknown number kind {other:?}"))),
    })
}

/// Parse a number of `kind` as people write it (digits, spaces, hyphens) without checking its
/// check digit.
#[pyfunction]
#[pyo3(signature = (kind, s, digits=None))]
fn parse_digits(kind: &str, s: &str, digits: Option<usize>) -> PyResult<u64> {
    let kind = kind_from(kind)?;
    Ok(numbers::parse_digits_len(kind, s, digits.unwrap_or(kind.digits()))?)
}

/// Parse a number of `kind` and check its check digit.
#[pyfunction]
fn parse_valid(kind: &str, s: &str) -> PyResult<u64> {
    Ok(numbers::parse_valid(kind_from(kind)?, s)?)
}

#[pyfunction]
fn individual_check_digit(body: u64) -> PyResult<u8> {
    Ok(numbers::individual_check_digit(body)?)
}

#[pyfunction]
fn corporate_check_digit(base: u64) -> PyResult<u8> {
    Ok(numbers::corporate_check_digit(base)?)
}

#[pyfunction]
fn resident_check_digit(body: u64) -> PyResult<u8> {
    Ok(numbers::resident_check_digit(body)?)
}

#[pyfunction]
fn is_valid(kind: &str, n: u64) -> PyResult<bool> {
    Ok(match kind_from(kind)? {
        NumberKind::Individual => numbers::is_valid_individual(n),
        NumberKind::Corporate => numbers::is_valid_corporate(n),
        NumberKind::ResidentCode => numbers::is_valid_resident_code(n),
    })
}

/// Validate a uint64 array of numbers of `kind`; returns a bool array of the same length.
#[pyfunction]
fn validate_batch<'py>(py: Python<'py>, kind: &str, a: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArray1<bool>>> {
    let kind = kind_from(kind)?;
    let arr = readonly_u64(a, "numbers")?;
    let items = contiguous(&arr);
    let items: &[u64] = &items;
    let out = py.detach(|| {
        let mut out = vec![false; items.len()];
        numbers::validate_batch(kind, items, &mut out);
        out
    });
    Ok(PyArray1::from_vec(py, out))
}

/// The keyed resident-code → My Number map of J-LIS (FF1 over AES-256, tweak = generation).
#[pyclass(module = "renkei._core.numbers", name = "NumberMap", frozen)]
struct PyNumberMap {
    inner: NumberMap,
}

#[pymethods]
impl PyNumberMap {
    #[new]
    fn new(key: &[u8]) -> PyResult<Self> {
        Ok(PyNumberMap { inner: NumberMap::new(key)? })
    }

    fn number_for(&self, resident: u64, generation: u32) -> PyResult<u64> {
        Ok(self.inner.number_for(resident, generation)?)
    }

    fn resident_for(&self, number: u64, generation: u32) -> PyResult<Option<u64>> {
        Ok(self.inner.resident_for(number, generation)?)
    }

    fn numbers_for_batch<'py>(
        &self,
        py: Python<'py>,
        residents: &Bound<'py, PyAny>,
        generation: u32,
    ) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let arr = readonly_u64(residents, "resident codes")?;
        let items = contiguous(&arr);
        let items: &[u64] = &items;
        let out = py.detach(|| {
            let mut out = vec![0u64; items.len()];
            self.inner.numbers_for_batch(items, generation, &mut out).map(|_| out)
        })?;
        Ok(PyArray1::from_vec(py, out))
    }

    fn __repr__(&self) -> &'static str {
        "<NumberMap (key hidden)>"
    }
}

pub(super) fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(parse_digits, m)?)?;
    m.add_function(wrap_pyfunction!(parse_valid, m)?)?;
    m.add_function(wrap_pyfunction!(individual_check_digit, m)?)?;
    m.add_function(wrap_pyfunction!(corporate_check_digit, m)?)?;
    m.add_function(wrap_pyfunction!(resident_check_digit, m)?)?;
    m.add_function(wrap_pyfunction!(is_valid, m)?)?;
    m.add_function(wrap_pyfunction!(validate_batch, m)?)?;
    m.add_class::<PyNumberMap>()?;
    Ok(())
}
