//! The provision record (情報提供等記録), binary layout version 1. All integers big-endian.
//!
//! ```text
//! off  size  field
//!   0     1  layout version = 1
//!   1     8  sequence number (u64) = the leaf index; the ledger writes it
//!   9     8  time, µs since 1970-01-01T00:00:00Z (i64)
//!  17     4  requester agency id (u32)   情報照会者
//!  21     4  provider agency id (u32)    情報提供者
//!  25     1  kind/outcome: 0 照会 permitted, 1 照会 denied, 2 提供 (a provision)
//!  26     2  denial reason code (u16), 0 when permitted; for a 提供, its outcome code
//!             (0 provided, 1 no data, 2 provider unavailable, 3 timed out, 4 refused)
//!  28     1  flags: bit 0 不開示 (withheld from the person), bit 1 disclose-after present,
//!             bit 2 委任元 present
//!  29     4  disclose-after date, days since 1970-01-01 (u32), 0 when absent
//!  33    32  permission-table version hash
//!  65    16  permit id (all zero for a denial)
//!  81    32  portal pseudonym of the person (keyed value, never a My Number or code)
//! 113     1  affair length a (1..=64), then a bytes (printable ASCII, e.g. "1-3", "JT…")
//!   …     1  item count c (0..=255), then c × (1-byte length 1..=64, printable ASCII)
//!   …     2  reason text length r (0..=1024), then r bytes UTF-8 (empty when permitted; for a
//!             提供, the failure's detail, empty when provided or no data)
//!   …     8  (提供 only) the sequence number of the 照会 record it answers (u64)
//!   …    32  (提供 only) SHA-256 of the relayed ciphertext, all zero when none was relayed
//!   …     4  (flag bit 2 only) 委任元: the agency the requester acted for (u32, non-zero)
//! ```
//! Nothing follows; a record is at most 113 + 65 + 1 + 255·65 + 2 + 1024 + 44 bytes (< 64 KiB,
//! the tlog-tiles entry limit).
//!
//! A 照会 (inquiry) record's time is 照会日時; the 提供 record that answers it carries the same
//! parties, affair, items, table version, permit id, person, 不開示 and 委任元, and its own time
//! is 提供日時 (番号法 第23条 names both).
//!
//! **Layout 2, the public leaf.** What the ledger stores in its public entry bundles (and so what
//! the tree hashes) is layout 2: layout 1 byte for byte except the version byte (2) and the 32
//! bytes at offset 81, which hold a **person commitment** instead of the pseudonym:
//! `SHA-256("rkprs2:" ‖ salt ‖ pseudonym)` with a fresh random 16-byte salt per record. The
//! commitment hides the person (no value repeats across a person's records) and binds the
//! record to one pseudonym; its **opening** (salt ‖ pseudonym, 48 bytes) is private and shown
//! only to whom may see it (the person, for their records; the commission).

use crate::error::{Error, Result};

pub const VERSION: u8 = 1;
/// The public leaf: layout 1 with the pseudonym replaced by a person commitment.
pub const VERSION_PUBLIC: u8 = 2;
pub const SALT_LEN: usize = 16;
/// An opening: salt ‖ pseudonym.
pub const OPENING_LEN: usize = SALT_LEN + 32;
const COMMIT_DOMAIN: &[u8; 7] = b"rkprs2:";
pub const HEADER_LEN: usize = 113;
pub const SEQ_OFFSET: usize = 1;
pub const TIME_OFFSET: usize = 9;
pub const FLAGS_OFFSET: usize = 28;
pub const DISCLOSE_OFFSET: usize = 29;
pub const PSEUDONYM_OFFSET: usize = 81;
pub const MAX_ID_LEN: usize = 64;
pub const MAX_REASON_LEN: usize = 1024;
pub const FLAG_WITHHELD: u8 = 1;
pub const FLAG_DISCLOSE_AFTER: u8 = 2;
pub const FLAG_DELEGATED: u8 = 4;
const FLAGS_KNOWN: u8 = FLAG_WITHHELD | FLAG_DISCLOSE_AFTER | FLAG_DELEGATED;
/// The kind/outcome byte of a 提供 record.
pub const KIND_PROVISION: u8 = 2;
const PROVISION_TRAILER: usize = 8 + 32;
/// 提供 outcome codes.
pub const PROVIDED: u16 = 0;
pub const NO_DATA: u16 = 1;
pub const PROVIDER_UNAVAILABLE: u16 = 2;
pub const TIMED_OUT: u16 = 3;
pub const REFUSED: u16 = 4;
pub const MAX_PROVISION_CODE: u16 = REFUSED;
/// `index_fields`' code of a 提供 record: this bit with its outcome code (denial codes are small).
pub const INDEX_PROVISION: u16 = 0x8000;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Permitted,
    Denied { code: u16, reason: String },
    /// A 提供 record: the answer to the 照会 record `inquiry_seq`.
    Provision(Provision),
}

/// What a 提供 record adds: its outcome, the 照会 it answers and the relayed ciphertext's hash.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Provision {
    /// `PROVIDED` … `REFUSED`.
    pub code: u16,
    /// Why it failed (empty when provided or no data).
    pub detail: String,
    pub inquiry_seq: u64,
    /// SHA-256 of the ciphertext the core relayed; zero when none.
    pub ciphertext_sha256: [u8; 32],
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Record {
    pub seq: u64,
    pub time_us: i64,
    pub requester: u32,
    pub provider: u32,
    pub affair: String,
    pub items: Vec<String>,
    pub table_hash: [u8; 32],
    pub outcome: Outcome,
    pub permit_id: [u8; 16],
    pub pseudonym: [u8; 32],
    /// 不開示: withheld from the person's disclosure view.
    pub withheld: bool,
    /// With `withheld`: shown to the person from this day (days since 1970-01-01) on.
    pub disclose_after: Option<u32>,
    /// 委任元: the agency the requester acted for.
    pub delegator: Option<u32>,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidRecord(msg.into())
}

fn check_id(what: &str, s: &str) -> Result<()> {
    if s.is_empty() || s.len() > MAX_ID_LEN || !s.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(invalid(format!("{what} must be 1..={MAX_ID_LEN} printable ASCII characters without spaces")));
    }
    Ok(())
}

fn check_reason(reason: &str) -> Result<()> {
    if reason.len() > MAX_REASON_LEN || reason.chars().any(char::is_control) {
        return Err(invalid(format!("reason text must be ≤ {MAX_REASON_LEN} bytes without control characters")));
    }
    Ok(())
}

impl Record {
    /// The 提供 record answering this 照会 record (a permitted one, at `inquiry_seq`): the same
    /// parties, affair, items, table version, permit id, person, 不開示 and 委任元.
    pub fn provision(&self, inquiry_seq: u64, time_us: i64, code: u16, detail: &str, ciphertext_sha256: [u8; 32]) -> Result<Record> {
        if self.outcome != Outcome::Permitted {
            return Err(invalid("only a permitted inquiry is answered by a provision"));
        }
        let mut r = self.clone();
        r.seq = 0;
        r.time_us = time_us;
        r.outcome = Outcome::Provision(Provision { code, detail: detail.to_string(), inquiry_seq, ciphertext_sha256 });
        r.validate()?;
        Ok(r)
    }

    pub fn validate(&self) -> Result<()> {
        check_id("affair", &self.affair)?;
        if self.items.len() > 255 {
            return Err(invalid("at most 255 items per record"));
        }
        for it in &self.items {
            check_id("item", it)?;
        }
        match &self.outcome {
            Outcome::Permitted => {
                if self.permit_id == [0; 16] {
                    return Err(invalid("a permitted record needs a non-zero permit id"));
                }
            }
            Outcome::Denied { code, reason } => {
                if *code == 0 {
                    return Err(invalid("a denial needs a non-zero reason code"));
                }
                if self.permit_id != [0; 16] {
                    return Err(invalid("a denial carries no permit id (must be all zero)"));
                }
                check_reason(reason)?;
            }
            Outcome::Provision(p) => {
                if p.code > MAX_PROVISION_CODE {
                    return Err(invalid(format!("unknown provision outcome {}", p.code)));
                }
                if self.permit_id == [0; 16] {
                    return Err(invalid("a provision record needs the permit id of its inquiry"));
                }
                check_reason(&p.detail)?;
            }
        }
        if self.disclose_after.is_some() && !self.withheld {
            return Err(invalid("a disclose-after date only applies to a 不開示 record"));
        }
        if self.delegator == Some(0) {
            return Err(invalid("委任元 (delegator) agency id must be non-zero"));
        }
        Ok(())
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        self.validate()?;
        let (outcome, code, reason) = match &self.outcome {
            Outcome::Permitted => (0u8, 0u16, ""),
            Outcome::Denied { code, reason } => (1, *code, reason.as_str()),
            Outcome::Provision(p) => (KIND_PROVISION, p.code, p.detail.as_str()),
        };
        let flags = (self.withheld as u8) * FLAG_WITHHELD
            + (self.disclose_after.is_some() as u8) * FLAG_DISCLOSE_AFTER
            + (self.delegator.is_some() as u8) * FLAG_DELEGATED;
        out.push(VERSION);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.time_us.to_be_bytes());
        out.extend_from_slice(&self.requester.to_be_bytes());
        out.extend_from_slice(&self.provider.to_be_bytes());
        out.push(outcome);
        out.extend_from_slice(&code.to_be_bytes());
        out.push(flags);
        out.extend_from_slice(&self.disclose_after.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&self.table_hash);
        out.extend_from_slice(&self.permit_id);
        out.extend_from_slice(&self.pseudonym);
        out.push(self.affair.len() as u8);
        out.extend_from_slice(self.affair.as_bytes());
        out.push(self.items.len() as u8);
        for it in &self.items {
            out.push(it.len() as u8);
            out.extend_from_slice(it.as_bytes());
        }
        out.extend_from_slice(&(reason.len() as u16).to_be_bytes());
        out.extend_from_slice(reason.as_bytes());
        if let Outcome::Provision(p) = &self.outcome {
            out.extend_from_slice(&p.inquiry_seq.to_be_bytes());
            out.extend_from_slice(&p.ciphertext_sha256);
        }
        if let Some(d) = self.delegator {
            out.extend_from_slice(&d.to_be_bytes());
        }
        Ok(())
    }

    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut v = Vec::with_capacity(HEADER_LEN + 64);
        self.encode_into(&mut v)?;
        Ok(v)
    }

    pub fn decode(b: &[u8]) -> Result<Self> {
        if b.len() < HEADER_LEN + 4 {
            return Err(invalid(format!("record of {} bytes is shorter than the minimum", b.len())));
        }
        if b[0] != VERSION {
            return Err(invalid(format!("unknown record layout version {}", b[0])));
        }
        let u32_at = |o: usize| u32::from_be_bytes(b[o..o + 4].try_into().expect("4"));
        let u64_at = |o: usize| u64::from_be_bytes(b[o..o + 8].try_into().expect("8"));
        let code = u16::from_be_bytes([b[26], b[27]]);
        let flags = b[FLAGS_OFFSET];
        if flags & !FLAGS_KNOWN != 0 {
            return Err(invalid("unknown flag bits"));
        }
        let mut at = HEADER_LEN;
        let mut take = |n: usize| -> Result<&[u8]> {
            let s = b.get(at..at + n).ok_or_else(|| invalid("record is truncated"))?;
            at += n;
            Ok(s)
        };
        let text = |s: &[u8]| -> Result<String> {
            String::from_utf8(s.to_vec()).map_err(|_| invalid("text is not UTF-8"))
        };
        let alen = take(1)?[0] as usize;
        let affair = text(take(alen)?)?;
        let count = take(1)?[0] as usize;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            let l = take(1)?[0] as usize;
            items.push(text(take(l)?)?);
        }
        let rl = take(2)?;
        let rl = u16::from_be_bytes([rl[0], rl[1]]) as usize;
        let reason = text(take(rl)?)?;
        let outcome = match b[25] {
            0 if code == 0 && reason.is_empty() => Outcome::Permitted,
            1 => Outcome::Denied { code, reason },
            KIND_PROVISION => {
                let t = take(PROVISION_TRAILER)?;
                Outcome::Provision(Provision {
                    code,
                    detail: reason,
                    inquiry_seq: u64::from_be_bytes(t[..8].try_into().expect("8")),
                    ciphertext_sha256: t[8..].try_into().expect("32"),
                })
            }
            _ => return Err(invalid("bad outcome field")),
        };
        let delegator = if flags & FLAG_DELEGATED != 0 {
            Some(u32::from_be_bytes(take(4)?.try_into().expect("4")))
        } else {
            None
        };
        if at != b.len() {
            return Err(invalid("trailing bytes after the record"));
        }
        let r = Record {
            seq: u64_at(SEQ_OFFSET),
            time_us: u64_at(TIME_OFFSET) as i64,
            requester: u32_at(17),
            provider: u32_at(21),
            affair,
            items,
            table_hash: b[33..65].try_into().expect("32"),
            outcome,
            permit_id: b[65..81].try_into().expect("16"),
            pseudonym: b[81..113].try_into().expect("32"),
            withheld: flags & FLAG_WITHHELD != 0,
            disclose_after: (flags & FLAG_DISCLOSE_AFTER != 0).then(|| u32_at(DISCLOSE_OFFSET)),
            delegator,
        };
        if r.disclose_after.is_none() && u32_at(DISCLOSE_OFFSET) != 0 {
            return Err(invalid("disclose-after date without its flag"));
        }
        r.validate()?;
        Ok(r)
    }
}

/// Check an encoded record without building it (no allocation): the same rules as
/// `Record::decode`, for the append hot path.
pub fn check_encoded(b: &[u8]) -> Result<()> {
    check_layout(b, VERSION)
}

/// `check_encoded` for a public leaf (layout 2).
pub fn check_public(b: &[u8]) -> Result<()> {
    check_layout(b, VERSION_PUBLIC)
}

fn check_layout(b: &[u8], version: u8) -> Result<()> {
    if b.len() < HEADER_LEN + 4 {
        return Err(invalid(format!("record of {} bytes is shorter than the minimum", b.len())));
    }
    if b[0] != version {
        return Err(invalid(format!("unknown record layout version {} (expected {version})", b[0])));
    }
    let code = u16::from_be_bytes([b[26], b[27]]);
    let flags = b[FLAGS_OFFSET];
    if flags & !FLAGS_KNOWN != 0 {
        return Err(invalid("unknown flag bits"));
    }
    if flags & FLAG_DISCLOSE_AFTER != 0 && flags & FLAG_WITHHELD == 0 {
        return Err(invalid("a disclose-after date only applies to a 不開示 record"));
    }
    if flags & FLAG_DISCLOSE_AFTER == 0 && b[DISCLOSE_OFFSET..DISCLOSE_OFFSET + 4] != [0; 4] {
        return Err(invalid("disclose-after date without its flag"));
    }
    let permit_zero = b[65..81].iter().all(|&x| x == 0);
    let id_ok = |s: &[u8]| !s.is_empty() && s.len() <= MAX_ID_LEN && s.iter().all(|c| (0x21..=0x7e).contains(c));
    let mut at = HEADER_LEN;
    let alen = b[at] as usize;
    at += 1;
    if !b.get(at..at + alen).is_some_and(id_ok) {
        return Err(invalid("affair must be 1..=64 printable ASCII characters without spaces (or record is truncated)"));
    }
    at += alen;
    let count = *b.get(at).ok_or_else(|| invalid("record is truncated"))? as usize;
    at += 1;
    for _ in 0..count {
        let l = *b.get(at).ok_or_else(|| invalid("record is truncated"))? as usize;
        at += 1;
        if !b.get(at..at + l).is_some_and(id_ok) {
            return Err(invalid("item must be 1..=64 printable ASCII characters without spaces (or record is truncated)"));
        }
        at += l;
    }
    let rl = b.get(at..at + 2).ok_or_else(|| invalid("record is truncated"))?;
    let rl = u16::from_be_bytes([rl[0], rl[1]]) as usize;
    at += 2;
    let reason = b.get(at..at + rl).ok_or_else(|| invalid("record is truncated"))?;
    at += rl;
    if b[25] == KIND_PROVISION {
        at += PROVISION_TRAILER;
    }
    let delegator_at = at;
    if flags & FLAG_DELEGATED != 0 {
        at += 4;
    }
    if at > b.len() {
        return Err(invalid("record is truncated"));
    }
    if at != b.len() {
        return Err(invalid("trailing bytes after the record"));
    }
    if flags & FLAG_DELEGATED != 0 && b[delegator_at..delegator_at + 4] == [0; 4] {
        return Err(invalid("委任元 (delegator) agency id must be non-zero"));
    }
    let reason = std::str::from_utf8(reason).map_err(|_| invalid("text is not UTF-8"))?;
    match b[25] {
        0 => {
            if code != 0 || !reason.is_empty() {
                return Err(invalid("bad outcome field"));
            }
            if permit_zero {
                return Err(invalid("a permitted record needs a non-zero permit id"));
            }
        }
        1 => {
            if code == 0 {
                return Err(invalid("a denial needs a non-zero reason code"));
            }
            if !permit_zero {
                return Err(invalid("a denial carries no permit id (must be all zero)"));
            }
            check_reason(reason)?;
        }
        KIND_PROVISION => {
            if code > MAX_PROVISION_CODE {
                return Err(invalid(format!("unknown provision outcome {code}")));
            }
            if permit_zero {
                return Err(invalid("a provision record needs the permit id of its inquiry"));
            }
            check_reason(reason)?;
        }
        _ => return Err(invalid("bad outcome field")),
    }
    Ok(())
}

/// The fields an index of the ledger needs, read in place without building the record:
/// (time µs, requester, provider, code, affair): the code is the denial code of a 照会 (0 =
/// permitted), `INDEX_PROVISION | outcome` of a 提供. Checks only what it
/// reads (layout version, header length, the affair's bounds and characters).
pub fn index_fields(b: &[u8]) -> Result<(i64, u32, u32, u16, &str)> {
    if b.len() < HEADER_LEN + 4 {
        return Err(invalid(format!("record of {} bytes is shorter than the minimum", b.len())));
    }
    if b[0] != VERSION && b[0] != VERSION_PUBLIC {
        return Err(invalid(format!("unknown record layout version {}", b[0])));
    }
    let u32_at = |o: usize| u32::from_be_bytes(b[o..o + 4].try_into().expect("4"));
    let alen = b[HEADER_LEN] as usize;
    let affair = b
        .get(HEADER_LEN + 1..HEADER_LEN + 1 + alen)
        .filter(|a| !a.is_empty() && a.iter().all(|c| (0x21..=0x7e).contains(c)))
        .ok_or_else(|| invalid("affair must be 1..=64 printable ASCII characters without spaces (or record is truncated)"))?;
    let affair = std::str::from_utf8(affair).expect("printable ASCII");
    let code = u16::from_be_bytes([b[26], b[27]]);
    let code = if b[25] == KIND_PROVISION { INDEX_PROVISION | code } else { code };
    Ok((time_of(b), u32_at(17), u32_at(21), code, affair))
}

/// The person commitment of a record: `SHA-256("rkprs2:" ‖ salt ‖ pseudonym)` (55 bytes, one
/// SHA-256 block).
pub fn commitment(salt: &[u8; SALT_LEN], pseudonym: &[u8; 32]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(COMMIT_DOMAIN);
    h.update(salt);
    h.update(pseudonym);
    h.finalize().into()
}

/// Turn a layout-1 record into its public leaf in place: version 2, the pseudonym replaced by
/// its commitment under `salt`. Returns the opening (salt ‖ pseudonym).
pub fn commit_in_place(rec: &mut [u8], salt: &[u8; SALT_LEN]) -> [u8; OPENING_LEN] {
    let pseudonym: [u8; 32] = rec[PSEUDONYM_OFFSET..PSEUDONYM_OFFSET + 32].try_into().expect("32");
    let c = commitment(salt, &pseudonym);
    rec[0] = VERSION_PUBLIC;
    rec[PSEUDONYM_OFFSET..PSEUDONYM_OFFSET + 32].copy_from_slice(&c);
    let mut o = [0u8; OPENING_LEN];
    o[..SALT_LEN].copy_from_slice(salt);
    o[SALT_LEN..].copy_from_slice(&pseudonym);
    o
}

/// Whether `opening` (salt ‖ pseudonym) opens the public leaf's person commitment.
pub fn opens(leaf: &[u8], opening: &[u8]) -> bool {
    if leaf.len() < HEADER_LEN || opening.len() != OPENING_LEN || leaf[0] != VERSION_PUBLIC {
        return false;
    }
    let salt: [u8; SALT_LEN] = opening[..SALT_LEN].try_into().expect("16");
    let p: [u8; 32] = opening[SALT_LEN..].try_into().expect("32");
    commitment(&salt, &p)[..] == leaf[PSEUDONYM_OFFSET..PSEUDONYM_OFFSET + 32]
}

/// The layout-1 record behind a public leaf and its opening (checked).
pub fn open_leaf(leaf: &[u8], opening: &[u8]) -> Result<Record> {
    check_public(leaf)?;
    if !opens(leaf, opening) {
        return Err(invalid("the opening does not open this record's person commitment"));
    }
    let mut b = leaf.to_vec();
    b[0] = VERSION;
    b[PSEUDONYM_OFFSET..PSEUDONYM_OFFSET + 32].copy_from_slice(&opening[SALT_LEN..]);
    Record::decode(&b)
}

/// A public leaf decoded without its opening: the record with an all-zero pseudonym, and the
/// person commitment.
pub fn decode_public(leaf: &[u8]) -> Result<(Record, [u8; 32])> {
    check_public(leaf)?;
    let c: [u8; 32] = leaf[PSEUDONYM_OFFSET..PSEUDONYM_OFFSET + 32].try_into().expect("32");
    let mut b = leaf.to_vec();
    b[0] = VERSION;
    b[PSEUDONYM_OFFSET..PSEUDONYM_OFFSET + 32].fill(0);
    Ok((Record::decode(&b)?, c))
}

/// The 提供 records answering packed 照会 records (uint16-BE length-prefixed layout-1 records,
/// the first at `first_seq`): one per permitted inquiry, packed the same way.
pub fn provisions_of_packed(packed: &[u8], first_seq: u64, time_us: i64, code: u16, detail: &str, digest: [u8; 32]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(packed.len() + packed.len() / 3);
    let mut buf = Vec::with_capacity(256);
    let (mut at, mut seq) = (0usize, first_seq);
    while at < packed.len() {
        let n = packed.get(at..at + 2).ok_or_else(|| invalid("packed records are truncated"))?;
        let n = u16::from_be_bytes([n[0], n[1]]) as usize;
        let b = packed.get(at + 2..at + 2 + n).ok_or_else(|| invalid("packed records are truncated"))?;
        at += 2 + n;
        let r = Record::decode(b)?;
        if r.outcome == Outcome::Permitted {
            buf.clear();
            r.provision(seq, time_us, code, detail, digest)?.encode_into(&mut buf)?;
            out.extend_from_slice(&(buf.len() as u16).to_be_bytes());
            out.extend_from_slice(&buf);
        }
        seq += 1;
    }
    Ok(out)
}

pub fn pseudonym_of(b: &[u8]) -> &[u8] {
    &b[PSEUDONYM_OFFSET..PSEUDONYM_OFFSET + 32]
}

pub fn time_of(b: &[u8]) -> i64 {
    i64::from_be_bytes(b[TIME_OFFSET..TIME_OFFSET + 8].try_into().expect("8"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(denied: bool) -> Record {
        Record {
            seq: 0,
            time_us: 1_700_000_000_000_000,
            requester: 131_016,
            provider: 1,
            affair: "1-3".into(),
            items: vec!["TM00000000000001".into(), "2-1".into()],
            table_hash: [3; 32],
            outcome: if denied { Outcome::Denied { code: 2, reason: "別表第二に該当なし".into() } } else { Outcome::Permitted },
            permit_id: if denied { [0; 16] } else { [5; 16] },
            pseudonym: [8; 32],
            withheld: denied,
            disclose_after: denied.then_some(20_000),
            delegator: None,
        }
    }

    /// Every shape: permitted, denied, a 提供 of each outcome, with and without 委任元.
    fn shapes() -> Vec<Record> {
        let mut v = vec![sample(false), sample(true)];
        for code in [PROVIDED, NO_DATA, PROVIDER_UNAVAILABLE, TIMED_OUT, REFUSED] {
            let detail = if code > NO_DATA { "did not answer" } else { "" };
            v.push(sample(false).provision(41, 1_700_000_000_500_000, code, detail, [code as u8 + 1; 32]).unwrap());
        }
        let mut d = sample(false);
        d.delegator = Some(131_024);
        v.push(d.provision(7, 1, PROVIDED, "", [1; 32]).unwrap());
        v.push(d);
        v
    }

    #[test]
    fn provision_answers_its_inquiry() {
        let mut q = sample(false);
        q.delegator = Some(9);
        let p = q.provision(12, 99, NO_DATA, "", [4; 32]).unwrap();
        assert_eq!((p.requester, p.provider, &p.affair, &p.items, p.permit_id, p.pseudonym), (q.requester, q.provider, &q.affair, &q.items, q.permit_id, q.pseudonym));
        assert_eq!((p.withheld, p.disclose_after, p.delegator, p.time_us), (q.withheld, q.disclose_after, Some(9), 99));
        assert!(matches!(p.outcome, Outcome::Provision(Provision { code: NO_DATA, inquiry_seq: 12, .. })));
        assert!(sample(true).provision(1, 1, PROVIDED, "", [0; 32]).is_err(), "a denial is not answered");
        assert!(q.provision(1, 1, MAX_PROVISION_CODE + 1, "", [0; 32]).is_err());
        assert!(q.provision(1, 1, REFUSED, "bad\ncontrol", [0; 32]).is_err());
        // Packed: one 提供 per permitted inquiry, each naming its inquiry's sequence.
        let packed: Vec<u8> = [sample(false), sample(true), q.clone()]
            .iter()
            .flat_map(|r| {
                let b = r.encode().unwrap();
                let mut v = (b.len() as u16).to_be_bytes().to_vec();
                v.extend(b);
                v
            })
            .collect();
        let out = provisions_of_packed(&packed, 100, 5, PROVIDED, "", [3; 32]).unwrap();
        let mut seqs = vec![];
        let mut at = 0;
        while at < out.len() {
            let n = u16::from_be_bytes([out[at], out[at + 1]]) as usize;
            let r = Record::decode(&out[at + 2..at + 2 + n]).unwrap();
            if let Outcome::Provision(p) = r.outcome {
                seqs.push(p.inquiry_seq);
            }
            at += 2 + n;
        }
        assert_eq!(seqs, vec![100, 102]);
        assert!(provisions_of_packed(&packed[..packed.len() - 1], 0, 0, PROVIDED, "", [0; 32]).is_err());
    }

    #[test]
    fn round_trip() {
        for r in shapes() {
            let b = r.encode().unwrap();
            assert_eq!(Record::decode(&b).unwrap(), r);
            assert_eq!(pseudonym_of(&b), &[8u8; 32]);
            for cut in 0..b.len() {
                assert!(Record::decode(&b[..cut]).is_err());
            }
        }
    }

    #[test]
    fn fast_check_agrees_with_decode() {
        let mut seed = 0x9e3779b97f4a7c15u64;
        for r in shapes() {
            let b = r.encode().unwrap();
            for i in 0..b.len() {
                for x in [1u8, 0x80, 0xff] {
                    let mut m = b.clone();
                    m[i] ^= x;
                    assert_eq!(check_encoded(&m).is_ok(), Record::decode(&m).is_ok(), "byte {i} ^ {x}");
                }
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                let cut = (seed >> 33) as usize % b.len();
                assert_eq!(check_encoded(&b[..cut]).is_ok(), Record::decode(&b[..cut]).is_ok());
            }
        }
    }

    #[test]
    fn index_fields_agree_with_decode() {
        for r in shapes() {
            let b = r.encode().unwrap();
            let code = match &r.outcome {
                Outcome::Permitted => 0,
                Outcome::Denied { code, .. } => *code,
                Outcome::Provision(p) => INDEX_PROVISION | p.code,
            };
            assert_eq!(index_fields(&b).unwrap(), (r.time_us, r.requester, r.provider, code, "1-3"));
            assert!(index_fields(&b[..HEADER_LEN + 2]).is_err());
        }
    }

    #[test]
    fn public_leaf_hides_and_binds_the_person() {
        let b = sample(false).encode().unwrap();
        let mut leaf = b.clone();
        let o = commit_in_place(&mut leaf, &[7; SALT_LEN]);
        check_public(&leaf).unwrap();
        assert!(check_encoded(&leaf).is_err() && check_public(&b).is_err());
        assert_eq!(leaf.len(), b.len());
        assert_eq!(&leaf[1..81], &b[1..81]);
        assert_ne!(&leaf[81..113], &[8u8; 32]);
        assert!(opens(&leaf, &o));
        assert_eq!(open_leaf(&leaf, &o).unwrap(), sample(false));
        let (r, c) = decode_public(&leaf).unwrap();
        assert_eq!((r.pseudonym, &c[..]), ([0; 32], &leaf[81..113]));
        // Another salt: another commitment for the same person; any other opening fails.
        let mut other = b.clone();
        commit_in_place(&mut other, &[9; SALT_LEN]);
        assert_ne!(other[81..113], leaf[81..113]);
        for i in 0..OPENING_LEN {
            let mut bad = o;
            bad[i] ^= 1;
            assert!(!opens(&leaf, &bad) && open_leaf(&leaf, &bad).is_err());
        }
        assert_eq!(index_fields(&leaf).unwrap(), index_fields(&b).unwrap());
    }

    #[test]
    fn refuses_bad_records() {
        let mut r = sample(false);
        r.permit_id = [0; 16];
        assert!(r.encode().is_err());
        let mut r = sample(true);
        r.permit_id = [1; 16];
        assert!(r.encode().is_err());
        let mut r = sample(false);
        r.affair = "with space".into();
        assert!(r.encode().is_err());
        let mut r = sample(false);
        r.disclose_after = Some(1);
        assert!(r.encode().is_err());
    }
}
