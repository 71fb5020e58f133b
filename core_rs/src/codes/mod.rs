//! 機関別符号 (agency codes; legally 情報提供用個人識別符号, 番号法 第21条の2).
//!
//! A code is ONE AES-256 block under the core's code key over the plaintext
//!
//! ```text
//!   bytes 0..4   person id  (u32 LE, the core's dense 連携用符号 side id)
//!   bytes 4..8   agency id  (u32 LE)
//!   bytes 8..12  key epoch  (u32 LE)
//!   bytes 12..16 tag        b"RKC1"
//! ```
//!
//! AES is a pseudo-random permutation, so the codes of one person at two agencies are two
//! unrelated-looking blocks: nobody without the key can link them. Translation from agency A's
//! code to agency B's is decrypt, check, encrypt: no table, O(1), any population size. A
//! forged or corrupted code decrypts to a random block, which passes the 32-bit tag, the 32-bit
//! agency check and the live-epoch check with probability about 2^-64 · (live epochs / 2^32).
//!
//! Key epochs: the epoch is part of the plaintext, so rotating (a new current epoch) changes
//! every code that is issued or translated from then on, while codes of older epochs still
//! decode until their epoch is retired. Every refusal — forged, corrupted, another agency's
//! code, a retired epoch, a person not held — is the same [`Refusal`], so the answer carries
//! no oracle about whether a person exists or is held elsewhere.
//!
//! The batch paths run `encrypt_blocks`/`decrypt_blocks` over many blocks, which the `aes`
//! crate pipelines across AES-NI units.

pub mod engine;
pub mod text;

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::Aes256;

use crate::error::{Error, Result};

pub const CODE_LEN: usize = 16;
pub const KEY_LEN: usize = 32;
pub const TAG: [u8; 4] = *b"RKC1";

/// A 16-byte agency code as the agency sees it.
pub type Code = [u8; CODE_LEN];

/// The decoded contents of a valid code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    pub person: u32,
    pub agency: u32,
    pub epoch: u32,
}

/// The key epochs in force: codes are issued under `current`; codes of the `live` epochs
/// (which include `current`) decode; all others are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Epochs {
    current: u32,
    live: Vec<u32>,
}

impl Epochs {
    pub fn new(current: u32, live: &[u32]) -> Result<Self> {
        if !live.contains(&current) {
            return Err(Error::InvalidArgument(format!("the current key epoch {current} must be live")));
        }
        let mut live = live.to_vec();
        live.sort_unstable();
        live.dedup();
        Ok(Epochs { current, live })
    }

    pub fn current(&self) -> u32 {
        self.current
    }

    pub fn live(&self) -> &[u32] {
        &self.live
    }

    #[inline(always)]
    pub fn is_live(&self, epoch: u32) -> bool {
        // A handful of live epochs at most: a linear scan beats any set.
        self.live.contains(&epoch)
    }
}

#[inline(always)]
fn plaintext(person: u32, agency: u32, epoch: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0..4].copy_from_slice(&person.to_le_bytes());
    b[4..8].copy_from_slice(&agency.to_le_bytes());
    b[8..12].copy_from_slice(&epoch.to_le_bytes());
    b[12..16].copy_from_slice(&TAG);
    b
}

#[inline(always)]
fn parse(b: &[u8; 16]) -> Option<Decoded> {
    if b[12..16] != TAG {
        return None;
    }
    Some(Decoded {
        person: u32::from_le_bytes(b[0..4].try_into().unwrap()),
        agency: u32::from_le_bytes(b[4..8].try_into().unwrap()),
        epoch: u32::from_le_bytes(b[8..12].try_into().unwrap()),
    })
}

/// Blocks handed to the cipher at once: enough for the AES-NI pipeline, small enough for L1.
const CHUNK: usize = 256;

/// The code key: one AES-256 key; encrypts and decrypts agency codes.
pub struct CodeCipher {
    aes: Aes256,
}

impl CodeCipher {
    pub fn new(key: &[u8]) -> Result<Self> {
        if key.len() != KEY_LEN {
            return Err(Error::BadKey(format!("the agency-code key must be {KEY_LEN} bytes")));
        }
        Ok(CodeCipher { aes: Aes256::new(GenericArray::from_slice(key)) })
    }

    /// The code of `person` at `agency` under `epoch`.
    pub fn encode(&self, person: u32, agency: u32, epoch: u32) -> Code {
        let mut block = GenericArray::from(plaintext(person, agency, epoch));
        self.aes.encrypt_block(&mut block);
        block.into()
    }

    /// Decrypt and parse a code; `None` when the tag does not match (forged or corrupted).
    /// The caller still has to check the agency, the epoch and the holding.
    pub fn decode(&self, code: &Code) -> Option<Decoded> {
        let mut block = GenericArray::from(*code);
        self.aes.decrypt_block(&mut block);
        parse(&block.into())
    }

    /// Codes of many persons at one agency and epoch, written into `out` (16 bytes each).
    pub fn encode_batch(&self, persons: &[u32], agency: u32, epoch: u32, out: &mut [u8]) {
        assert_eq!(out.len(), persons.len() * CODE_LEN);
        for (ps, os) in persons.chunks(CHUNK).zip(out.chunks_mut(CHUNK * CODE_LEN)) {
            let mut blocks = [GenericArray::from([0u8; 16]); CHUNK];
            let blocks = &mut blocks[..ps.len()];
            for (b, &p) in blocks.iter_mut().zip(ps) {
                *b = GenericArray::from(plaintext(p, agency, epoch));
            }
            self.aes.encrypt_blocks(blocks);
            for (o, b) in os.chunks_exact_mut(CODE_LEN).zip(blocks.iter()) {
                o.copy_from_slice(b);
            }
        }
    }

    /// Decrypt many codes into `out` (`None` where the tag does not match).
    pub fn decode_batch(&self, codes: &[u8], out: &mut [Option<Decoded>]) {
        assert_eq!(codes.len(), out.len() * CODE_LEN);
        for (cs, os) in codes.chunks(CHUNK * CODE_LEN).zip(out.chunks_mut(CHUNK)) {
            let mut blocks = [GenericArray::from([0u8; 16]); CHUNK];
            let blocks = &mut blocks[..os.len()];
            for (b, c) in blocks.iter_mut().zip(cs.chunks_exact(CODE_LEN)) {
                b.copy_from_slice(c);
            }
            self.aes.decrypt_blocks(blocks);
            for (o, b) in os.iter_mut().zip(blocks.iter()) {
                *o = parse(&(*b).into());
            }
        }
    }

    /// Re-encrypt many codes from one agency to another, software-pipelined over chunks of
    /// blocks: chunk k+1 is decrypted before chunk k is handed to `admit`, together with chunk
    /// k+1 so that it can prefetch item j of k+1 while it tests item j of k (a steady stream
    /// of memory fetches, each well ahead of its use). `admit` writes, per item of chunk k,
    /// the person to re-encode or `None` to refuse; then chunk k is encrypted. Refused items
    /// get zero bytes and `ok[i] = false`.
    pub fn translate_batch(
        &self,
        codes: &[u8],
        (to_agency, to_epoch): (u32, u32),
        out: &mut [u8],
        ok: &mut [bool],
        mut admit: impl FnMut(&[Option<Decoded>], &[Option<Decoded>], &mut [Option<u32>]),
    ) {
        assert_eq!(codes.len(), out.len());
        assert_eq!(codes.len(), ok.len() * CODE_LEN);
        let zero = GenericArray::from([0u8; 16]);
        let mut decoded = [[None; CHUNK]; 2];
        let mut admitted = [None; CHUNK];
        let mut blocks = [zero; CHUNK];
        let n_chunks = ok.len().div_ceil(CHUNK);
        let decode_chunk = |k: usize, into: &mut [Option<Decoded>; CHUNK]| {
            let cs = &codes[k * CHUNK * CODE_LEN..codes.len().min((k + 1) * CHUNK * CODE_LEN)];
            let mut bl = [zero; CHUNK];
            let bl = &mut bl[..cs.len() / CODE_LEN];
            for (b, c) in bl.iter_mut().zip(cs.chunks_exact(CODE_LEN)) {
                b.copy_from_slice(c);
            }
            self.aes.decrypt_blocks(bl);
            for (d, b) in into.iter_mut().zip(bl.iter()) {
                *d = parse(&(*b).into());
            }
            bl.len()
        };
        if n_chunks == 0 {
            return;
        }
        let mut len = [0usize; 2];
        len[0] = decode_chunk(0, &mut decoded[0]);
        for k in 0..n_chunks {
            let (cur, next) = (k % 2, (k + 1) % 2);
            len[next] = if k + 1 < n_chunks { decode_chunk(k + 1, &mut decoded[next]) } else { 0 };
            let n = len[cur];
            admit(&decoded[cur][..n], &decoded[next][..len[next]], &mut admitted[..n]);
            let oks = &mut ok[k * CHUNK..k * CHUNK + n];
            let os = &mut out[k * CHUNK * CODE_LEN..(k * CHUNK + n) * CODE_LEN];
            let bl = &mut blocks[..n];
            for ((b, okay), a) in bl.iter_mut().zip(oks.iter_mut()).zip(&admitted[..n]) {
                *okay = a.is_some();
                *b = GenericArray::from(plaintext(a.unwrap_or(0), to_agency, to_epoch));
            }
            self.aes.encrypt_blocks(bl);
            for ((o, b), &okay) in os.chunks_exact_mut(CODE_LEN).zip(bl.iter()).zip(oks.iter()) {
                if okay {
                    o.copy_from_slice(b);
                } else {
                    o.fill(0);
                }
            }
        }
    }
}

/// One status value for every refusal of a code (no oracle).
pub const STATUS_OK: u8 = 0;
pub const STATUS_REFUSED: u8 = 1;

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::BlockEncrypt;

    fn cipher() -> CodeCipher {
        CodeCipher::new(&[7u8; 32]).unwrap()
    }

    #[test]
    fn round_trip_single() {
        let c = cipher();
        let code = c.encode(123_456, 42, 1);
        assert_eq!(c.decode(&code), Some(Decoded { person: 123_456, agency: 42, epoch: 1 }));
    }

    #[test]
    fn layout_is_one_aes_block_over_documented_plaintext() {
        let key = [9u8; 32];
        let c = CodeCipher::new(&key).unwrap();
        let mut pt = [0u8; 16];
        pt[0..4].copy_from_slice(&5u32.to_le_bytes());
        pt[4..8].copy_from_slice(&6u32.to_le_bytes());
        pt[8..12].copy_from_slice(&7u32.to_le_bytes());
        pt[12..].copy_from_slice(b"RKC1");
        let aes = Aes256::new(GenericArray::from_slice(&key));
        let mut b = GenericArray::from(pt);
        aes.encrypt_block(&mut b);
        assert_eq!(c.encode(5, 6, 7).as_slice(), b.as_slice());
    }

    #[test]
    fn batch_matches_single() {
        let c = cipher();
        let persons: Vec<u32> = (0..1000).map(|i| i * 7919).collect();
        let mut out = vec![0u8; persons.len() * 16];
        c.encode_batch(&persons, 3, 2, &mut out);
        for (p, code) in persons.iter().zip(out.chunks_exact(16)) {
            assert_eq!(code, c.encode(*p, 3, 2));
        }
        let mut dec = vec![None; persons.len()];
        c.decode_batch(&out, &mut dec);
        for (p, d) in persons.iter().zip(&dec) {
            assert_eq!(*d, Some(Decoded { person: *p, agency: 3, epoch: 2 }));
        }
    }

    #[test]
    fn forged_and_flipped_codes_fail_the_tag() {
        let c = cipher();
        let code = c.encode(1, 2, 1);
        for bit in 0..128 {
            let mut f = code;
            f[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(c.decode(&f), None, "bit {bit}");
        }
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..10_000 {
            let mut f = [0u8; 16];
            for b in f.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            assert_eq!(c.decode(&f), None);
        }
    }

    #[test]
    fn translate_batch_admits_and_refuses() {
        let c = cipher();
        let persons: Vec<u32> = (0..600).collect();
        let mut codes = vec![0u8; 600 * 16];
        c.encode_batch(&persons, 1, 1, &mut codes);
        codes[16 * 5] ^= 1; // corrupt item 5
        let mut out = vec![0u8; codes.len()];
        let mut ok = vec![false; 600];
        c.translate_batch(&codes, (2, 1), &mut out, &mut ok, |ds, _, admitted| {
            for (d, a) in ds.iter().zip(admitted.iter_mut()) {
                *a = match d {
                    Some(d) if d.agency == 1 && d.person % 2 == 0 => Some(d.person),
                    _ => None,
                };
            }
        });
        for i in 0..600 {
            let expect_ok = i != 5 && i % 2 == 0;
            assert_eq!(ok[i], expect_ok, "item {i}");
            if expect_ok {
                assert_eq!(&out[i * 16..i * 16 + 16], c.encode(i as u32, 2, 1));
            } else {
                assert_eq!(&out[i * 16..i * 16 + 16], [0u8; 16]);
            }
        }
    }

    #[test]
    fn epochs_require_current_live() {
        assert!(Epochs::new(2, &[1]).is_err());
        let e = Epochs::new(2, &[2, 1, 2]).unwrap();
        assert_eq!(e.live(), &[1, 2]);
        assert!(e.is_live(1) && !e.is_live(3));
    }

    #[test]
    fn bad_key_length_is_an_error() {
        assert!(matches!(CodeCipher::new(&[0u8; 16]), Err(Error::BadKey(_))));
    }
}
