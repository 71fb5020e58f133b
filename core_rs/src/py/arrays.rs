//! Borrowing numpy arrays without per-item Python objects.

use std::borrow::Cow;

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::prelude::*;

use super::errors::invalid_argument;

/// Borrow a 1-D uint64 array read-only; anything else is a clear `InvalidArgumentError`.
pub(crate) fn readonly_u64<'py>(a: &Bound<'py, PyAny>, what: &str) -> PyResult<PyReadonlyArray1<'py, u64>> {
    match a.cast::<PyArray1<u64>>() {
        Ok(arr) => arr.try_readonly().map_err(|e| invalid_argument(format!("{what}: {e}"))),
        Err(_) => {
            let found = match a.getattr("dtype") {
                Ok(dtype) => format!("an array of dtype {dtype} with ndim {}", a.getattr("ndim").map(|n| n.to_string()).unwrap_or_default()),
                Err(_) => format!("a {}", a.get_type().name().map(|n| n.to_string()).unwrap_or_default()),
            };
            Err(invalid_argument(format!("{what} must be a 1-D numpy array of dtype uint64, got {found}")))
        }
    }
}

/// The elements as one contiguous slice: borrowed when the array is contiguous, else copied.
pub(crate) fn contiguous<'a>(arr: &'a PyReadonlyArray1<'_, u64>) -> Cow<'a, [u64]> {
    match arr.as_slice() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(arr.as_array().iter().copied().collect()),
    }
}

