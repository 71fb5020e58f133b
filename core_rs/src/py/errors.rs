//! The one place where engine errors become Python exceptions. The exception classes are
//! defined in Python (`renkei/errors.py`) so they can carry documentation and multiple bases.

use pyo3::prelude::*;

use crate::error::{Error, NumberKind, NumberProblem, PermitDefect};

pyo3::import_exception!(renkei.errors, InvalidNumberError);
pyo3::import_exception!(renkei.errors, InvalidArgumentError);
pyo3::import_exception!(renkei.errors, KeyFileError);
pyo3::import_exception!(renkei.errors, InvalidRecordError);
pyo3::import_exception!(renkei.errors, ProofError);
pyo3::import_exception!(renkei.errors, NoteError);
pyo3::import_exception!(renkei.errors, NotFoundError);
pyo3::import_exception!(renkei.errors, StorageError);
pyo3::import_exception!(renkei.errors, LedgerDamageError);
pyo3::import_exception!(renkei.errors, PermitMalformedError);
pyo3::import_exception!(renkei.errors, PermitWrongKeyError);
pyo3::import_exception!(renkei.errors, PermitTamperedError);
pyo3::import_exception!(renkei.errors, PermitExpiredError);
pyo3::import_exception!(renkei.errors, PermitReplayedError);
pyo3::import_exception!(renkei.errors, PermitNotInBatchError);
pyo3::import_exception!(renkei.errors, CodeRefusedError);
pyo3::import_exception!(renkei.errors, RateLimitedError);

pub(crate) fn kind_name(kind: NumberKind) -> &'static str {
    match kind {
        NumberKind::Individual => "individual",
        NumberKind::Corporate => "corporate",
        NumberKind::ResidentCode => "resident_code",
    }
}

fn problem_name(problem: &NumberProblem) -> &'static str {
    match problem {
        NumberProblem::Empty => "empty",
        NumberProblem::WrongLength { .. } => "wrong_length",
        NumberProblem::NotADigit { .. } => "not_a_digit",
        NumberProblem::WrongCheckDigit => "wrong_check_digit",
        NumberProblem::OutOfRange => "out_of_range",
    }
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        let message = err.to_string();
        match err {
            Error::InvalidNumber { kind, problem } => {
                InvalidNumberError::new_err((message, kind_name(kind), problem_name(&problem), None::<usize>))
            }
            Error::InvalidNumberAt { kind, index, problem } => {
                InvalidNumberError::new_err((message, kind_name(kind), problem_name(&problem), Some(index)))
            }
            Error::BadKey(_) => KeyFileError::new_err(message),
            Error::InvalidArgument(_) => InvalidArgumentError::new_err(message),
            Error::InvalidRecord(_) => InvalidRecordError::new_err(message),
            Error::ProofInvalid(_) => ProofError::new_err(message),
            Error::NoteInvalid(_) => NoteError::new_err(message),
            Error::NotFound(_) => NotFoundError::new_err(message),
            Error::Storage(_) => StorageError::new_err(message),
            Error::LedgerDamage { path, record, .. } => LedgerDamageError::new_err((message, path, record)),
            Error::PermitRejected(defect) => match defect {
                PermitDefect::Malformed => PermitMalformedError::new_err(message),
                PermitDefect::WrongKey => PermitWrongKeyError::new_err(message),
                PermitDefect::Tampered => PermitTamperedError::new_err(message),
                PermitDefect::Expired => PermitExpiredError::new_err(message),
                PermitDefect::Replayed => PermitReplayedError::new_err(message),
                PermitDefect::NotInBatch => PermitNotInBatchError::new_err(message),
            },
            Error::CodeRefused => CodeRefusedError::new_err(message),
            Error::RateLimited(_) => RateLimitedError::new_err(message),
        }
    }
}

pub(crate) fn invalid_argument(message: impl Into<String>) -> PyErr {
    InvalidArgumentError::new_err(message.into())
}
