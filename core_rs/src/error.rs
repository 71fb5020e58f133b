//! The one error type of the engine. The Python bindings map it to exceptions in one place
//! (`py::errors`); nothing else in the engine knows about Python.

use std::fmt;

/// Which identifier a number error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberKind {
    /// 個人番号, 12 digits, check digit last.
    Individual,
    /// 法人番号, 13 digits, check digit first.
    Corporate,
    /// 住民票コード, 11 digits, check digit last.
    ResidentCode,
}

impl NumberKind {
    pub fn digits(self) -> usize {
        match self {
            NumberKind::Individual => 12,
            NumberKind::Corporate => 13,
            NumberKind::ResidentCode => 11,
        }
    }
}

impl fmt::Display for NumberKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NumberKind::Individual => "individual number (個人番号)",
            NumberKind::Corporate => "corporate number (法人番号)",
            NumberKind::ResidentCode => "resident code (住民票コード)",
        })
    }
}

/// Why a number was refused. The messages never repeat the number itself: a My Number or a
/// resident code must not end up in a log line through an exception message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberProblem {
    #[error("is empty")]
    Empty,
    #[error("has {found} digits, expected {expected}")]
    WrongLength { found: usize, expected: usize },
    #[error("contains a character that is not a digit, space or hyphen at position {position}")]
    NotADigit { position: usize },
    #[error("has a wrong check digit")]
    WrongCheckDigit,
    #[error("is out of range for its kind")]
    OutOfRange,
}

/// Why a provider refused a permit (each is a distinct Python exception and gRPC reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PermitDefect {
    #[error("malformed: not a v4.public permit of renkei")]
    Malformed,
    #[error("signed with another key")]
    WrongKey,
    #[error("tampered: the signature does not verify")]
    Tampered,
    #[error("expired")]
    Expired,
    #[error("replayed: this permit was already used")]
    Replayed,
    #[error("the item is not part of this batch permit")]
    NotInBatch,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Input that is not a well-formed identifier of the expected kind.
    #[error("invalid {kind}: {problem}")]
    InvalidNumber { kind: NumberKind, problem: NumberProblem },
    /// An element of a batch was invalid; `index` says which.
    #[error("invalid {kind} at index {index}: {problem}")]
    InvalidNumberAt { kind: NumberKind, index: usize, problem: NumberProblem },
    /// A key file or key material that cannot be used.
    #[error("bad key: {0}")]
    BadKey(String),
    /// Arguments that are malformed in a way other than a number's digits.
    #[error("{0}")]
    InvalidArgument(String),
    /// A provision record (情報提供等記録) that does not follow the record layout.
    #[error("invalid ledger record: {0}")]
    InvalidRecord(String),
    /// An inclusion or consistency proof that does not verify.
    #[error("proof does not verify: {0}")]
    ProofInvalid(String),
    /// A signed note, verifier key or checkpoint that is malformed or not validly signed.
    #[error("invalid signed note: {0}")]
    NoteInvalid(String),
    /// Something asked for that does not exist (a record or tree size beyond the ledger).
    #[error("{0}")]
    NotFound(String),
    /// A data-directory file that cannot be read, written or trusted.
    #[error("storage: {0}")]
    Storage(String),
    /// `verify` found a file of the ledger that does not match: `path` (relative to the
    /// ledger directory) and, when one is to blame, the record's sequence number.
    #[error("ledger damaged: {message}")]
    LedgerDamage { path: String, record: Option<u64>, message: String },
    /// A provision permit (提供許可) that a provider must not honour.
    #[error("permit rejected: {0}")]
    PermitRejected(PermitDefect),
    /// An agency code was refused. Deliberately one variant with one message for every cause
    /// (forged, corrupted, another agency's, retired epoch, not held) so that the answer is no
    /// oracle about a person.
    #[error("agency code (機関別符号) refused")]
    CodeRefused,
    /// A caller's budget (e.g. an agency's denial records) does not cover the request now.
    #[error("{0}")]
    RateLimited(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
