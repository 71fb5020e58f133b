//! C2SP `signed-note` (Ed25519, signature type 0x01) and C2SP `tlog-checkpoint` bodies.
//!
//! A note is UTF-8 text ending in `\n`, a blank line, then signature lines
//! `— <name> base64(keyID[4] ‖ sig[64])\n`. The key ID is SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pubkey)[:4].
//! Verifier keys are `name+hex(keyID)+base64(0x01 ‖ pubkey)`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use super::merkle::Hash;
use crate::error::{Error, Result};

pub const ALG_ED25519: u8 = 0x01;
/// Go's note package refuses more signatures than this; C2SP requires accepting ≥ 16.
pub const MAX_SIGNATURES: usize = 100;

fn bad(msg: impl Into<String>) -> Error {
    Error::NoteInvalid(msg.into())
}

/// Names are non-empty, without spaces or '+' (they separate vkey fields) and printable.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+' || c.is_control()) {
        return Err(bad(format!("invalid key name {name:?}")));
    }
    Ok(())
}

pub fn key_id(name: &str, alg: u8, public: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', alg]);
    h.update(public);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A parsed Ed25519 note verifier key.
#[derive(Clone, Debug)]
pub struct NoteVerifier {
    pub name: String,
    pub key_id: u32,
    pub key: VerifyingKey,
}

impl NoteVerifier {
    /// Parse `name+hexid+base64(alg‖key)`; split on the first two '+' only.
    pub fn parse(vkey: &str) -> Result<Self> {
        let mut parts = vkey.splitn(3, '+');
        let (name, id, key) = match (parts.next(), parts.next(), parts.next()) {
            (Some(n), Some(i), Some(k)) => (n, i, k),
            _ => return Err(bad("verifier key must be name+keyid+key")),
        };
        check_name(name)?;
        if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            return Err(bad("verifier key id must be 8 lower-case hex digits"));
        }
        let id = u32::from_str_radix(id, 16).map_err(|_| bad("bad key id"))?;
        let raw = B64.decode(key).map_err(|_| bad("verifier key is not valid base64"))?;
        if raw.first() != Some(&ALG_ED25519) {
            return Err(bad("verifier key has an unknown algorithm"));
        }
        if raw.len() != 33 {
            return Err(bad("Ed25519 verifier key must be 32 bytes"));
        }
        if key_id(name, ALG_ED25519, &raw[1..]) != id {
            return Err(bad("verifier key id does not match the key"));
        }
        let key = VerifyingKey::from_bytes(raw[1..].try_into().expect("32 bytes"))
            .map_err(|_| bad("verifier key is not a valid Ed25519 point"))?;
        Ok(NoteVerifier { name: name.to_string(), key_id: id, key })
    }

    /// The note `text` with this key's signature line carrying `sig`, byte for byte as
    /// `NoteSigner::sign` writes it (the ledger stores only the raw signature).
    pub fn note_with(&self, text: &str, sig: &[u8; 64]) -> String {
        let mut raw = self.key_id.to_be_bytes().to_vec();
        raw.extend_from_slice(sig);
        format!("{text}\n\u{2014} {} {}\n", self.name, B64.encode(raw))
    }

    pub fn vkey(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.key_id, B64.encode(raw))
    }
}

/// An Ed25519 note signer.
#[derive(Clone)]
pub struct NoteSigner {
    pub name: String,
    key: SigningKey,
    id: u32,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NoteSigner({:?}, key hidden)", self.name)
    }
}

impl NoteSigner {
    pub fn from_seed(name: &str, seed: &[u8]) -> Result<Self> {
        check_name(name)?;
        let seed: [u8; 32] = seed.try_into().map_err(|_| Error::BadKey("Ed25519 seed must be 32 bytes".into()))?;
        let key = SigningKey::from_bytes(&seed);
        let id = key_id(name, ALG_ED25519, key.verifying_key().as_bytes());
        Ok(NoteSigner { name: name.to_string(), key, id })
    }

    /// Parse Go's `PRIVATE+KEY+name+id+base64(alg‖seed)` (split on the first four '+').
    pub fn parse(skey: &str) -> Result<Self> {
        let parts: Vec<&str> = skey.splitn(5, '+').collect();
        if parts.len() != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
            return Err(bad("signer key must be PRIVATE+KEY+name+keyid+key"));
        }
        let raw = B64.decode(parts[4]).map_err(|_| bad("signer key is not valid base64"))?;
        if raw.len() != 33 || raw[0] != ALG_ED25519 {
            return Err(bad("signer key must be an Ed25519 seed"));
        }
        let s = Self::from_seed(parts[2], &raw[1..])?;
        if format!("{:08x}", s.id) != parts[3] {
            return Err(bad("signer key id does not match the key"));
        }
        Ok(s)
    }

    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier { name: self.name.clone(), key_id: self.id, key: self.key.verifying_key() }
    }

    /// The signature line for `text`.
    pub fn signature_line(&self, text: &str) -> String {
        let sig = self.key.sign(text.as_bytes());
        let mut raw = self.id.to_be_bytes().to_vec();
        raw.extend_from_slice(&sig.to_bytes());
        format!("\u{2014} {} {}\n", self.name, B64.encode(raw))
    }

    pub fn sign(&self, text: &str) -> Result<String> {
        check_text(text)?;
        Ok(format!("{text}\n{}", self.signature_line(text)))
    }
}

/// The raw Ed25519 signature on the last signature line of a note this ledger signed.
pub fn last_signature(note: &str) -> Result<[u8; 64]> {
    let line = note.strip_suffix('\n').and_then(|n| n.rsplit('\n').next()).ok_or_else(|| bad("note has no signature line"))?;
    let b64 = line.rsplit(' ').next().ok_or_else(|| bad("malformed signature line"))?;
    let raw = B64.decode(b64).map_err(|_| bad("signature is not valid base64"))?;
    raw.get(4..).and_then(|s| s.try_into().ok()).ok_or_else(|| bad("not an Ed25519 signature"))
}

fn check_text(text: &str) -> Result<()> {
    if !text.ends_with('\n') {
        return Err(bad("note text must end in a newline"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(bad("note text contains a control character"));
    }
    Ok(())
}

/// Open a signed note: returns the text when at least one known key signed it and no known
/// key's signature fails. Signatures by unknown keys are ignored.
pub fn open<'a>(note: &'a [u8], known: &[NoteVerifier]) -> Result<&'a str> {
    let note = std::str::from_utf8(note).map_err(|_| bad("note is not UTF-8"))?;
    let split = note.rfind("\n\n").ok_or_else(|| bad("note has no signature block"))?;
    let text = &note[..split + 1];
    let sigs = &note[split + 2..];
    check_text(text)?;
    if !sigs.ends_with('\n') {
        return Err(bad("signature block must end in a newline"));
    }
    let lines: Vec<&str> = sigs[..sigs.len() - 1].split('\n').collect();
    if lines.len() > MAX_SIGNATURES {
        return Err(bad("note has too many signatures"));
    }
    let mut verified = 0;
    for line in lines {
        let rest = line.strip_prefix("\u{2014} ").ok_or_else(|| bad("malformed signature line"))?;
        let (name, b64) = rest.split_once(' ').ok_or_else(|| bad("malformed signature line"))?;
        check_name(name)?;
        let raw = B64.decode(b64).map_err(|_| bad("signature is not valid base64"))?;
        if raw.len() < 5 {
            return Err(bad("signature is too short"));
        }
        let id = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let Some(v) = known.iter().find(|v| v.name == name && v.key_id == id) else { continue };
        let sig = Signature::from_slice(&raw[4..])
            .map_err(|_| bad(format!("invalid signature for key {}+{:08x}", v.name, v.key_id)))?;
        v.key
            .verify(text.as_bytes(), &sig)
            .map_err(|_| bad(format!("invalid signature for key {}+{:08x}", v.name, v.key_id)))?;
        verified += 1;
    }
    if verified == 0 {
        return Err(bad("note has no verifiable signatures"));
    }
    Ok(text)
}

/// A C2SP tlog-checkpoint body: origin, tree size, root hash, optional extension lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    pub extensions: Vec<String>,
}

impl Checkpoint {
    pub fn body(&self) -> String {
        let mut s = format!("{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root));
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    pub fn parse(text: &str) -> Result<Self> {
        check_text(text)?;
        let mut lines = text[..text.len() - 1].split('\n');
        let origin = lines.next().filter(|o| !o.is_empty()).ok_or_else(|| bad("checkpoint has no origin"))?;
        let size = lines.next().ok_or_else(|| bad("checkpoint has no size"))?;
        if size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) || (size.len() > 1 && size.starts_with('0')) {
            return Err(bad("checkpoint size must be a decimal without leading zeros"));
        }
        let size: u64 = size.parse().map_err(|_| bad("checkpoint size out of range"))?;
        let root = B64.decode(lines.next().ok_or_else(|| bad("checkpoint has no root"))?)
            .map_err(|_| bad("checkpoint root is not base64"))?;
        let root: Hash = root.try_into().map_err(|_| bad("checkpoint root must be 32 bytes"))?;
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        if extensions.iter().any(|e| e.is_empty()) {
            return Err(bad("empty checkpoint extension line"));
        }
        Ok(Checkpoint { origin: origin.to_string(), size, root, extensions })
    }

    /// Open a signed checkpoint with `verifier`, and require its origin to be `origin`.
    pub fn open_signed(note: &[u8], verifier: &NoteVerifier, origin: &str) -> Result<Self> {
        let text = open(note, std::slice::from_ref(verifier))?;
        let cp = Self::parse(text)?;
        if cp.origin != origin {
            return Err(bad(format!("checkpoint origin {:?} is not {origin:?}", cp.origin)));
        }
        Ok(cp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PETER: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_SK: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn go_vectors() {
        let v = NoteVerifier::parse(PETER).unwrap();
        assert_eq!(v.vkey(), PETER);
        let s = NoteSigner::parse(PETER_SK).unwrap();
        assert_eq!(s.signature_line(TEXT), SIG);
        let note = format!("{TEXT}\n{SIG}");
        assert_eq!(open(note.as_bytes(), std::slice::from_ref(&v)).unwrap(), TEXT);
        let tampered = note.replace("answer", "Answer");
        assert!(open(tampered.as_bytes(), &[v]).is_err());
    }

    #[test]
    fn vkey_mangling_rejected() {
        for i in 0..PETER.len() {
            for j in i + 1..=PETER.len() {
                if (i, j) != (0, PETER.len()) {
                    assert!(NoteVerifier::parse(&PETER[i..j]).is_err(), "{}", &PETER[i..j]);
                }
            }
            let mut b = PETER.as_bytes().to_vec();
            b[i] = b[i].wrapping_add(1);
            if let Ok(s) = std::str::from_utf8(&b) {
                assert!(NoteVerifier::parse(s).is_err(), "{s}");
            }
        }
    }

    #[test]
    fn checkpoint_round_trip() {
        let s = NoteSigner::from_seed("renkei.example/ledger", &[7u8; 32]).unwrap();
        let cp = Checkpoint { origin: s.name.clone(), size: 12, root: [9u8; 32], extensions: vec![] };
        let note = s.sign(&cp.body()).unwrap();
        assert_eq!(Checkpoint::open_signed(note.as_bytes(), &s.verifier(), &s.name).unwrap(), cp);
        assert!(Checkpoint::open_signed(note.as_bytes(), &s.verifier(), "other").is_err());
        assert!(Checkpoint::parse("o\n012\nAA==\n").is_err());
    }
}
