//! The inquiry path (情報照会, DESIGN §3) as one call: decode the requester's agency code and
//! check the requester holds the person, check the permission table (別表第二), check the
//! provider holds the person and translate to the provider's code, append the provision
//! records (情報提供等記録) to the ledger durably, then sign the permit.
//!
//! Every item is recorded, permitted or denied. A refused code — forged, corrupted, another
//! agency's, of a retired epoch, released or not held — gets one outcome, `CODE_REFUSED`, the
//! same whatever the cause (no oracle towards the requester).
//!
//! The person appears in a record only as the portal pseudonym HMAC-SHA256(key, person id as
//! u32 big-endian), computed here; a refused code has no person and an all-zero pseudonym.

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::codes::engine::CodeEngine;
use crate::codes::{Code, CODE_LEN};
use crate::error::{Error, Result};
use crate::ledger::Appender;
use crate::ledger::record::{Outcome as RecordOutcome, Record, MAX_ID_LEN};
use crate::permissions::{self, Engine as PermissionEngine};
use crate::permits::{self, merkle, Body, Claims, PermitSigner};

/// The gRPC `Permit` parts of a token (as `renkei.permits.to_wire`): the exact signed bytes
/// PAE("v4.public.", claims, key id, ""), the 64-byte signature and the base64url key id.
pub fn wire_parts(token: &str) -> Option<(Vec<u8>, Vec<u8>, String)> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine as _;
    let rest = token.strip_prefix(permits::HEADER)?;
    let (payload, footer) = rest.split_once('.')?;
    let raw = B64.decode(payload).ok()?;
    let kid = B64.decode(footer).ok()?;
    if raw.len() <= 64 {
        return None;
    }
    let (claims, sig) = raw.split_at(raw.len() - 64);
    Some((permits::pae(&[permits::HEADER.as_bytes(), claims, &kid, b""]), sig.to_vec(), footer.to_string()))
}

/// Outcome bytes (the values of the proto's `DenialCode`).
pub const PERMITTED: u8 = 0;
pub const CODE_REFUSED: u8 = 1;
pub const ROW_NOT_PERMITTED: u8 = 4;
pub const PROVIDER_NOT_HOLDING: u8 = 5;
/// The provider cannot be asked now: unknown, not active, or without an approved PIA. The
/// requester learns no more than that; the record's reason names the cause for oversight.
pub const PROVIDER_UNAVAILABLE: u8 = 6;
/// The requester itself may not inquire now (not active, no approved PIA).
pub const REQUESTER_NOT_ELIGIBLE: u8 = 7;
/// The request reused the request id of a different inquiry within the retry window.
pub const REQUEST_ID_REUSED: u8 = 8;

/// The documented maximum items of one batch inquiry.
pub const MAX_BATCH_ITEMS: usize = 100_000;

/// The token of an outcome byte (the `google.rpc.ErrorInfo` reason of a refusal).
pub fn outcome_token(outcome: u8) -> &'static str {
    match outcome {
        PERMITTED => "PERMITTED",
        CODE_REFUSED => "CODE_REFUSED",
        ROW_NOT_PERMITTED => "ROW_NOT_PERMITTED",
        PROVIDER_NOT_HOLDING => "PROVIDER_NOT_HOLDING",
        PROVIDER_UNAVAILABLE => "PROVIDER_UNAVAILABLE",
        REQUESTER_NOT_ELIGIBLE => "REQUESTER_NOT_ELIGIBLE",
        REQUEST_ID_REUSED => "REQUEST_ID_REUSED",
        _ => "UNKNOWN",
    }
}

/// HMAC-SHA256 (RFC 2104) with the key's inner and outer states computed once: a record's
/// pseudonym then costs two compressions instead of four.
#[derive(Clone)]
pub struct Hmac {
    inner: Sha256,
    outer: Sha256,
}

impl Hmac {
    pub fn new(key: &[u8]) -> Hmac {
        let mut block = [0u8; 64];
        if key.len() > 64 {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let mut inner = Sha256::new();
        inner.update(block.map(|b| b ^ 0x36));
        let mut outer = Sha256::new();
        outer.update(block.map(|b| b ^ 0x5c));
        Hmac { inner, outer }
    }

    pub fn mac(&self, msg: &[u8]) -> [u8; 32] {
        let mut inner = self.inner.clone();
        inner.update(msg);
        let mut outer = self.outer.clone();
        outer.update(inner.finalize());
        outer.finalize().into()
    }
}

pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    Hmac::new(key).mac(msg)
}

/// The portal pseudonym of a person (never a My Number or an agency code).
pub fn pseudonym(key: &[u8], person: u32) -> [u8; 32] {
    hmac_sha256(key, &person.to_be_bytes())
}

/// What the check needs to know of an agency: id, 別表第二 types and municipality code (0: none).
#[derive(Debug, Clone)]
pub struct Party {
    pub id: u32,
    pub types: Vec<String>,
    pub municipality: u32,
}

/// A refusal the core decided before the table check (an ineligible party, a reused request
/// id): the inquiry is still recorded, every item with this outcome and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub outcome: u8,
    /// For the record (oversight); at most 1,024 bytes.
    pub reason: String,
}

/// One inquiry's fixed part (the same for every item of a batch).
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub requester: &'a Party,
    pub provider: &'a Party,
    pub affair: &'a str,
    pub items: &'a [String],
    /// Permit lifetime in seconds (1..=86,400).
    pub lifetime_s: u32,
    /// Refused before the table check (recorded all the same); `None` for a normal inquiry.
    pub refusal: Option<&'a Refusal>,
    /// 照会側不開示 (番号法 第23条): the person is not shown the records before this day
    /// (days since 1970-01-01).
    pub withheld_until: Option<u32>,
    /// 委任元: the agency the requester acts for.
    pub delegator: Option<u32>,
}

/// The engines the path composes; all are shared with the rest of the core.
pub struct InquiryPath<'a> {
    pub codes: &'a CodeEngine,
    pub permissions: &'a PermissionEngine,
    pub signer: &'a PermitSigner,
    /// Where the records become durable (the file ledger, or another driver's appender).
    pub ledger: &'a dyn Appender,
    pub pseudonym_key: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingleAnswer {
    pub outcome: u8,
    /// Empty when permitted.
    pub reason: String,
    /// Zero when refused.
    pub provider_code: Code,
    pub record_seq: u64,
    /// The PASETO v4.public permit, when permitted.
    pub permit: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
    /// Its 照会 record (uint16-BE length-prefixed layout 1), for the 提供 record that answers it.
    pub records: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchAnswer {
    pub outcomes: Vec<u8>,
    /// 16 bytes per item, zero where refused.
    pub provider_codes: Vec<u8>,
    pub first_seq: u64,
    /// One batch permit over all items (refused items carry a zero code), when any was permitted.
    pub permit: Option<String>,
    pub expires_at: i64,
    /// Its 照会 records, packed (as `SingleAnswer::records`).
    pub records: Vec<u8>,
}

/// Per item: outcome bytes, provider codes (16 bytes each), the person when the code was valid.
type Decided = (Vec<u8>, Vec<u8>, Vec<Option<u32>>);

/// The table's verdict on (requester, affair, provider, items), once per call.
struct Verdict {
    allowed: bool,
    reason: String,
    table_hash: [u8; 32],
    /// Permit codes of the affair and items (present when allowed).
    affair_code: String,
    item_codes: Vec<String>,
    /// What the record names: the canonical codes when known, else the request's text if it
    /// fits a record, else "unknown".
    record_affair: String,
    record_items: Vec<String>,
}

fn record_id(s: &str) -> String {
    if !s.is_empty() && s.len() <= MAX_ID_LEN && s.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        s.to_string()
    } else {
        "unknown".to_string()
    }
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

impl InquiryPath<'_> {
    fn verdict(&self, req: &Request<'_>, at_us: i64) -> Result<Verdict> {
        if req.items.is_empty() || req.items.len() > 255 {
            return Err(Error::InvalidArgument("an inquiry names 1 to 255 information items".into()));
        }
        let snap = self.permissions.snapshot();
        let refused = req.refusal.is_some();
        let mut v = Verdict {
            allowed: false,
            reason: String::new(),
            table_hash: [0; 32],
            affair_code: String::new(),
            item_codes: Vec::new(),
            record_affair: record_id(req.affair),
            record_items: req.items.iter().map(|i| record_id(i)).collect(),
        };
        let Some(version) = snap.in_force(at_us) else {
            v.reason = permissions::Outcome::NoVersionInForce.token().to_string();
            return Ok(v);
        };
        v.table_hash = version.hash;
        let affair = version.affair_id(req.affair);
        let items: Vec<u32> = req.items.iter().map(|i| version.item_id(i)).collect();
        if let Some(code) = version.affair_code(affair) {
            v.record_affair = code.to_string();
        }
        for (r, &id) in v.record_items.iter_mut().zip(&items) {
            if let Some(code) = version.item_code(id) {
                *r = code.to_string();
            }
        }
        if refused {
            return Ok(v);
        }
        let types = |p: &Party| p.types.iter().map(|t| version.type_id(t)).collect::<Vec<u32>>();
        let d = version.check(&types(req.requester), req.requester.municipality, affair, &types(req.provider), &items);
        if d.outcome == permissions::Outcome::Allowed {
            v.allowed = true;
            v.affair_code = v.record_affair.clone();
            v.item_codes = v.record_items.clone();
        } else {
            v.reason = match d.failed_item {
                Some(i) => format!("{} (item {})", d.outcome.token(), v.record_items[i]),
                None => d.outcome.token().to_string(),
            };
        }
        Ok(v)
    }

    /// Decide every item: (outcome, provider code, person) per code.
    fn decide(&self, req: &Request<'_>, codes: &[u8], allowed: bool) -> Result<Decided> {
        let n = codes.len() / CODE_LEN;
        let mut provider_codes = vec![0u8; codes.len()];
        let mut status = vec![0u8; n];
        // Translation admits only valid, live codes of the requester for persons both hold.
        self.codes.translate(req.requester.id, codes, req.provider.id, &mut provider_codes, &mut status)?;
        let mut outcomes = vec![PERMITTED; n];
        let mut persons = vec![None; n];
        for i in 0..n {
            let code: &Code = codes[i * CODE_LEN..(i + 1) * CODE_LEN].try_into().expect("16 bytes");
            let person = self.codes.person_of(req.requester.id, code).ok();
            persons[i] = person;
            outcomes[i] = match (person, status[i] == crate::codes::STATUS_OK) {
                // A refusal is about the request, not the person: it wins over the code check.
                _ if req.refusal.is_some() => req.refusal.map_or(CODE_REFUSED, |r| r.outcome),
                (None, _) => CODE_REFUSED,
                (Some(_), _) if !allowed => ROW_NOT_PERMITTED,
                (Some(_), false) => PROVIDER_NOT_HOLDING,
                (Some(_), true) => PERMITTED,
            };
            if outcomes[i] != PERMITTED {
                provider_codes[i * CODE_LEN..(i + 1) * CODE_LEN].fill(0);
            }
        }
        Ok((outcomes, provider_codes, persons))
    }

    fn records(
        &self,
        req: &Request<'_>,
        v: &Verdict,
        outcomes: &[u8],
        persons: &[Option<u32>],
        permit_id: &[u8; 12],
        time_us: i64,
    ) -> Result<Vec<u8>> {
        let mut packed = Vec::with_capacity(outcomes.len() * 160);
        let mut pid16 = [0u8; 16];
        pid16[..12].copy_from_slice(permit_id);
        let mut rec = Record {
            seq: 0,
            time_us,
            requester: req.requester.id,
            provider: req.provider.id,
            affair: v.record_affair.clone(),
            items: v.record_items.clone(),
            table_hash: v.table_hash,
            outcome: RecordOutcome::Permitted,
            permit_id: pid16,
            pseudonym: [0; 32],
            withheld: req.withheld_until.is_some(),
            disclose_after: req.withheld_until,
            delegator: req.delegator,
        };
        let mut buf = Vec::with_capacity(256);
        let mac = Hmac::new(self.pseudonym_key);
        for (&o, p) in outcomes.iter().zip(persons) {
            rec.pseudonym = p.map(|p| mac.mac(&p.to_be_bytes())).unwrap_or([0; 32]);
            if o == PERMITTED {
                rec.outcome = RecordOutcome::Permitted;
                rec.permit_id = pid16;
            } else {
                let reason = match (o, req.refusal) {
                    (_, Some(r)) => r.reason.clone(),
                    (CODE_REFUSED, _) => "agency code refused".to_string(),
                    (ROW_NOT_PERMITTED, _) => v.reason.clone(),
                    _ => "the provider does not hold the person".to_string(),
                };
                rec.outcome = RecordOutcome::Denied { code: o as u16, reason };
                rec.permit_id = [0; 16];
            }
            buf.clear();
            rec.encode_into(&mut buf)?;
            packed.extend_from_slice(&(buf.len() as u16).to_be_bytes());
            packed.extend_from_slice(&buf);
        }
        Ok(packed)
    }

    fn claims(&self, req: &Request<'_>, v: &Verdict, permit_id: [u8; 12], seq: u64, now_s: i64, body: Body) -> Claims {
        let mut table_version = [0u8; permits::VERSION_PREFIX];
        table_version.copy_from_slice(&v.table_hash[..permits::VERSION_PREFIX]);
        Claims {
            permit_id,
            requester: req.requester.id.to_string(),
            provider: req.provider.id.to_string(),
            affair: v.affair_code.clone(),
            table_version,
            ledger_seq: seq,
            issued_at: now_s,
            expires_at: now_s + req.lifetime_s as i64,
            body,
        }
    }

    fn check_request(req: &Request<'_>) -> Result<()> {
        if req.lifetime_s == 0 || req.lifetime_s > 86_400 {
            return Err(Error::InvalidArgument("permit lifetime must be 1 s to 1 day".into()));
        }
        if let Some(r) = req.refusal {
            if !matches!(r.outcome, PROVIDER_UNAVAILABLE | REQUESTER_NOT_ELIGIBLE | REQUEST_ID_REUSED) {
                return Err(Error::InvalidArgument(format!("{} is not a refusal decided before the table", r.outcome)));
            }
            if r.reason.len() > crate::ledger::record::MAX_REASON_LEN {
                return Err(Error::InvalidArgument("a refusal's reason is at most 1,024 bytes".into()));
            }
        } else if req.requester.types.is_empty() || req.provider.types.is_empty() {
            return Err(Error::InvalidArgument("an agency needs at least one agency type".into()));
        }
        Ok(())
    }

    /// One inquiry: returns once its record is durable; the permit only when permitted.
    pub fn inquire(&self, req: &Request<'_>, code: &Code) -> Result<SingleAnswer> {
        self.inquire_many(&[(req.clone(), *code)]).pop().expect("one answer per inquiry")
    }

    /// Independent single inquiries (each its own requester, affair, provider, items), decided
    /// together and recorded in one durable commit, each with its own permit. An item that is
    /// malformed gets its error and no record; the others are unaffected.
    pub fn inquire_many(&self, reqs: &[(Request<'_>, Code)]) -> Vec<Result<SingleAnswer>> {
        let t = now_us();
        let now_s = t.div_euclid(1_000_000);
        let mut packed = Vec::with_capacity(reqs.len() * 180);
        // Per request: the verdict, outcome, provider code, permit id and its record's index.
        let mut decided = Vec::with_capacity(reqs.len());
        let mut recorded = 0u64;
        for (req, code) in reqs {
            let one = (|| -> Result<_> {
                Self::check_request(req)?;
                let v = self.verdict(req, t)?;
                let (outcomes, provider_codes, persons) = self.decide(req, code, v.allowed)?;
                let permit_id = permits::new_permit_id()?;
                let records = self.records(req, &v, &outcomes, &persons, &permit_id, t)?;
                packed.extend_from_slice(&records);
                let provider_code: Code = provider_codes[..CODE_LEN].try_into().expect("16 bytes");
                Ok((v, outcomes[0], provider_code, permit_id, records))
            })();
            decided.push(one.map(|d| {
                recorded += 1;
                (d, recorded - 1)
            }));
        }
        let first = match self.ledger.append_packed(&packed) {
            Ok((first, _, _)) => first,
            Err(e) => return reqs.iter().map(|_| Err(e.clone())).collect(),
        };
        reqs.iter()
            .zip(decided)
            .map(|((req, _), d)| {
                let ((v, outcome, provider_code, permit_id, records), index) = d?;
                let seq = first + index;
                if outcome != PERMITTED {
                    let reason = match outcome {
                        ROW_NOT_PERMITTED => v.reason,
                        o => outcome_token(o).to_string(),
                    };
                    return Ok(SingleAnswer {
                        outcome,
                        reason,
                        provider_code,
                        record_seq: seq,
                        permit: None,
                        expires_at: 0,
                        records,
                    });
                }
                let body = Body::Single { person: provider_code, items: v.item_codes.clone() };
                let claims = self.claims(req, &v, permit_id, seq, now_s, body);
                let token = self.signer.sign(&claims)?;
                Ok(SingleAnswer {
                    outcome,
                    reason: String::new(),
                    provider_code,
                    record_seq: seq,
                    permit: Some(token),
                    expires_at: claims.expires_at,
                    records,
                })
            })
            .collect()
    }

    /// Many inquiries of one affair: one record per item, all durable in one commit before
    /// returning; one batch permit whose Merkle tree has a leaf per item (refused items with a
    /// zero code, which no provider holds). A batch that would record more than `max_denials`
    /// denials is refused whole (`Error::RateLimited`) and records nothing: the requester's
    /// denial budget (see `renkei.linkage.inquiry`).
    pub fn batch_inquire(&self, req: &Request<'_>, codes: &[u8], max_denials: usize) -> Result<BatchAnswer> {
        Self::check_request(req)?;
        if codes.is_empty() || codes.len() % CODE_LEN != 0 {
            return Err(Error::InvalidArgument("agency codes must be a non-empty run of 16-byte codes".into()));
        }
        let n = codes.len() / CODE_LEN;
        if n > MAX_BATCH_ITEMS {
            return Err(Error::InvalidArgument(format!("{n} items, at most {MAX_BATCH_ITEMS} a batch")));
        }
        let t = now_us();
        let v = self.verdict(req, t)?;
        let (outcomes, provider_codes, persons) = self.decide(req, codes, v.allowed)?;
        let denials = outcomes.iter().filter(|&&o| o != PERMITTED).count();
        if denials > max_denials {
            return Err(Error::RateLimited(format!(
                "this batch would record {denials} denials; agency {} may record {max_denials} more now \
                 (its denial budget refills over time)",
                req.requester.id
            )));
        }
        let permit_id = permits::new_permit_id()?;
        let packed = self.records(req, &v, &outcomes, &persons, &permit_id, t)?;
        let (first_seq, _, _) = self.ledger.append_packed(&packed)?;
        let now_s = t.div_euclid(1_000_000);
        if !outcomes.contains(&PERMITTED) {
            return Ok(BatchAnswer { outcomes, provider_codes, first_seq, permit: None, expires_at: 0, records: packed });
        }
        let items: Vec<&str> = v.item_codes.iter().map(|s| s.as_str()).collect();
        let mut leaves = Vec::with_capacity(n);
        for (i, c) in provider_codes.chunks_exact(CODE_LEN).enumerate() {
            let leaf = merkle::batch_leaf(i as u64, c.try_into().expect("16 bytes"), &items)
                .ok_or_else(|| Error::InvalidArgument("permit item codes must be 1–32 bytes".into()))?;
            leaves.push(merkle::leaf_hash(&leaf));
        }
        let levels = merkle::levels(leaves);
        let root = merkle::root(&levels).expect("non-empty batch");
        let claims = self.claims(req, &v, permit_id, first_seq, now_s, Body::Batch { count: n as u64, root });
        let token = self.signer.sign(&claims)?;
        Ok(BatchAnswer {
            outcomes,
            provider_codes,
            first_seq,
            permit: Some(token),
            expires_at: claims.expires_at,
            records: packed,
        })
    }
}

#[cfg(test)]
mod tests;
