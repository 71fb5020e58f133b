//! Provision permits: PASETO v4.public tokens (Ed25519 over PAE) that the core signs for an
//! allowed inquiry and a provider's 中間サーバー verifies offline with the core's public key.
//!
//! Wire form: `v4.public.` b64url(m ‖ sig) `.` b64url(kid). `m` is a compact JSON object with
//! one-letter claims (docs/arch/permissions.md), `kid` the 6-byte key id of the signing key, so a
//! verifier tells "signed by another key" from "altered after signing". A batch permit carries
//! the RFC 6962 Merkle root of its items instead of the items; each item is checked against it
//! with an inclusion proof.

pub mod merkle;

use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, PermitDefect, Result};

pub const HEADER: &str = "v4.public.";
/// Size of the table-version hash prefix carried in a permit.
pub const VERSION_PREFIX: usize = 16;
/// Size of the key id in the footer: tells keys apart, the signature does the security.
pub const KID_LEN: usize = 6;

/// PASETO Pre-Authentication Encoding: LE64(count) ‖ for each piece LE64(len) ‖ piece.
pub fn pae(pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + pieces.iter().map(|p| 8 + p.len()).sum::<usize>());
    out.extend_from_slice(&((pieces.len() as u64) & (u64::MAX >> 1)).to_le_bytes());
    for p in pieces {
        out.extend_from_slice(&((p.len() as u64) & (u64::MAX >> 1)).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// The key id of a public key: the first 6 bytes of SHA-256("renkei-permit-kid\0" ‖ key).
pub fn key_id(public_key: &[u8; 32]) -> [u8; KID_LEN] {
    let mut h = Sha256::new();
    h.update(b"renkei-permit-kid\0");
    h.update(public_key);
    let d = h.finalize();
    d[..KID_LEN].try_into().expect("KID_LEN bytes")
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// 16 bytes as 26 Crockford base32 characters (the bytes read as one big-endian 128-bit number).
pub fn crockford_encode(b: &[u8; 16]) -> String {
    let v = u128::from_be_bytes(*b);
    (0..26).rev().map(|i| CROCKFORD[((v >> (5 * i)) & 31) as usize] as char).collect()
}

pub fn crockford_decode(s: &str) -> Option<[u8; 16]> {
    if s.len() != 26 {
        return None;
    }
    let mut v: u128 = 0;
    for (n, c) in s.bytes().enumerate() {
        let d = CROCKFORD.iter().position(|&x| x == c)? as u128;
        if n == 0 && d > 7 {
            return None; // above 2^128
        }
        v = (v << 5) | d;
    }
    Some(v.to_be_bytes())
}

/// The signed content of a permit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub permit_id: [u8; 12],
    pub requester: String,
    pub provider: String,
    pub affair: String,
    pub table_version: [u8; VERSION_PREFIX],
    pub ledger_seq: u64,
    /// Unix seconds.
    pub issued_at: i64,
    pub expires_at: i64,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// One inquiry: the provider's 機関別符号 for the person and the items.
    Single { person: [u8; 16], items: Vec<String> },
    /// A batch: `count` items whose RFC 6962 Merkle root is `root`.
    Batch { count: u64, root: [u8; 32] },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    j: String,
    r: String,
    p: String,
    a: String,
    v: String,
    s: u64,
    i: i64,
    /// Lifetime in seconds: expiry = i + t (saves bytes against a second timestamp).
    t: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    c: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    m: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    n: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    h: Option<String>,
}

fn check_text(what: &str, s: &str) -> Result<()> {
    if s.is_empty() || s.len() > 32 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::InvalidArgument(format!("permit {what} must be 1–32 printable ASCII characters")));
    }
    Ok(())
}

impl Claims {
    fn to_wire(&self) -> Result<Wire> {
        check_text("requester", &self.requester)?;
        check_text("provider", &self.provider)?;
        check_text("affair", &self.affair)?;
        let lifetime = self.expires_at.checked_sub(self.issued_at).filter(|&t| t > 0 && t <= 86_400);
        let lifetime = lifetime.ok_or_else(|| Error::InvalidArgument("permit lifetime must be 1 s to 1 day".into()))?;
        let (c, m, n, h) = match &self.body {
            Body::Single { person, items } => {
                if items.is_empty() || items.len() > 255 {
                    return Err(Error::InvalidArgument("a permit names 1–255 items".into()));
                }
                for it in items {
                    check_text("item", it)?;
                }
                (Some(crockford_encode(person)), Some(items.clone()), None, None)
            }
            Body::Batch { count, root } => {
                if *count == 0 {
                    return Err(Error::InvalidArgument("an empty batch gets no permit".into()));
                }
                (None, None, Some(*count), Some(B64.encode(root)))
            }
        };
        Ok(Wire {
            j: B64.encode(self.permit_id),
            r: self.requester.clone(),
            p: self.provider.clone(),
            a: self.affair.clone(),
            v: B64.encode(self.table_version),
            s: self.ledger_seq,
            i: self.issued_at,
            t: lifetime as u32,
            c,
            m,
            n,
            h,
        })
    }

    fn from_wire(w: Wire) -> Option<Claims> {
        let fixed = |s: &str| B64.decode(s).ok();
        let body = match (w.c, w.m, w.n, w.h) {
            (Some(c), Some(m), None, None) if !m.is_empty() => Body::Single { person: crockford_decode(&c)?, items: m },
            (None, None, Some(n), Some(h)) if n > 0 => Body::Batch { count: n, root: fixed(&h)?.try_into().ok()? },
            _ => return None,
        };
        Some(Claims {
            permit_id: fixed(&w.j)?.try_into().ok()?,
            requester: w.r,
            provider: w.p,
            affair: w.a,
            table_version: fixed(&w.v)?.try_into().ok()?,
            ledger_seq: w.s,
            issued_at: w.i,
            expires_at: w.i.checked_add(w.t as i64)?,
            body,
        })
    }
}

/// A fresh random permit id.
pub fn new_permit_id() -> Result<[u8; 12]> {
    let mut id = [0u8; 12];
    getrandom::fill(&mut id).map_err(|e| Error::InvalidArgument(format!("no randomness for a permit id: {e}")))?;
    Ok(id)
}

/// The core's permit signer (key: `DataDir.secret_key("permit-signing")`, a 32-byte seed).
pub struct PermitSigner {
    key: SigningKey,
    kid: [u8; KID_LEN],
}

impl PermitSigner {
    pub fn from_seed(seed: &[u8]) -> Result<PermitSigner> {
        let seed: [u8; 32] = seed.try_into().map_err(|_| Error::BadKey(format!("permit signing seed has {} bytes, expected 32", seed.len())))?;
        let key = SigningKey::from_bytes(&seed);
        let kid = key_id(key.verifying_key().as_bytes());
        Ok(PermitSigner { key, kid })
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    pub fn key_id(&self) -> [u8; KID_LEN] {
        self.kid
    }

    pub fn sign(&self, claims: &Claims) -> Result<String> {
        let m = serde_json::to_vec(&claims.to_wire()?).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let sig = self.key.sign(&pae(&[HEADER.as_bytes(), &m, &self.kid, b""]));
        let mut body = m;
        body.extend_from_slice(&sig.to_bytes());
        Ok(format!("{HEADER}{}.{}", B64.encode(&body), B64.encode(self.kid)))
    }
}

/// Offline verification with the core's public key.
pub struct PermitVerifier {
    key: VerifyingKey,
    kid: [u8; KID_LEN],
}

fn reject(defect: PermitDefect) -> Error {
    Error::PermitRejected(defect)
}

impl PermitVerifier {
    pub fn new(public_key: &[u8]) -> Result<PermitVerifier> {
        let pk: [u8; 32] = public_key.try_into().map_err(|_| Error::BadKey(format!("public key has {} bytes, expected 32", public_key.len())))?;
        let key = VerifyingKey::from_bytes(&pk).map_err(|_| Error::BadKey("not an Ed25519 public key".into()))?;
        Ok(PermitVerifier { key, kid: key_id(&pk) })
    }

    /// Signature and expiry (`now` in Unix seconds); replay is the cache's business.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims> {
        let rest = token.strip_prefix(HEADER).ok_or(reject(PermitDefect::Malformed))?;
        let (payload, footer) = rest.split_once('.').ok_or(reject(PermitDefect::Malformed))?;
        let footer = B64.decode(footer).map_err(|_| reject(PermitDefect::Malformed))?;
        let body = B64.decode(payload).map_err(|_| reject(PermitDefect::Malformed))?;
        if body.len() < 64 + 2 || footer.len() != KID_LEN {
            return Err(reject(PermitDefect::Malformed));
        }
        if footer != self.kid {
            return Err(reject(PermitDefect::WrongKey));
        }
        let (m, sig) = body.split_at(body.len() - 64);
        let sig = Signature::from_slice(sig).map_err(|_| reject(PermitDefect::Tampered))?;
        self.key
            .verify(&pae(&[HEADER.as_bytes(), m, &footer, b""]), &sig)
            .map_err(|_| reject(PermitDefect::Tampered))?;
        let wire: Wire = serde_json::from_slice(m).map_err(|_| reject(PermitDefect::Malformed))?;
        let claims = Claims::from_wire(wire).ok_or(reject(PermitDefect::Malformed))?;
        if now >= claims.expires_at {
            return Err(reject(PermitDefect::Expired));
        }
        Ok(claims)
    }

    /// Verify a batch permit and that `leaf` (see `merkle::batch_leaf`) is item `index` of it.
    pub fn verify_batch_item(&self, token: &str, now: i64, index: u64, leaf: &[u8], proof: &[[u8; 32]]) -> Result<Claims> {
        let claims = self.verify(token, now)?;
        match &claims.body {
            Body::Batch { count, root } if index < *count && merkle::verify_inclusion(leaf, index, *count, proof, root) => Ok(claims),
            _ => Err(reject(PermitDefect::NotInBatch)),
        }
    }
}

/// (permit id, batch item index or u64::MAX) → expiry.
type Seen = FxHashMap<([u8; 12], u64), i64>;

/// The provider's memory of permits already honoured, until they expire.
#[derive(Default)]
pub struct ReplayCache {
    inner: Mutex<(Seen, usize)>,
}

impl ReplayCache {
    pub fn new() -> ReplayCache {
        ReplayCache::default()
    }

    /// Record the use of (permit id, item index); a second use before expiry is a replay.
    pub fn admit(&self, claims: &Claims, index: u64, now: i64) -> Result<()> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (map, high_water) = &mut *g;
        if map.len() > (*high_water).max(1024) {
            map.retain(|_, &mut exp| exp > now);
            *high_water = map.len() * 2;
        }
        match map.get(&(claims.permit_id, index)) {
            Some(&exp) if exp > now => Err(reject(PermitDefect::Replayed)),
            _ => {
                map.insert((claims.permit_id, index), claims.expires_at);
                Ok(())
            }
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;
