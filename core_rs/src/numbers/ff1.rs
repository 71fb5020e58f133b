//! FF1 format-preserving encryption (NIST SP 800-38G, Algorithms 7 and 8) over AES.
//!
//! Why not the `fpe` crate directly: it converts every half through a big integer, which costs
//! microseconds per number, and J-LIS must assign a country's numbers in seconds. The numeral
//! strings here are short (the halves fit in 96 bits), so the halves are plain `u128`s and each
//! round is exactly one AES block: the first CBC-MAC block `AES(P)` and the fixed tweak blocks of
//! Q are computed once per key and tweak. AES itself is the `aes` crate (AES-NI when present).
//! The tests check NIST's published samples and agree with the `fpe` crate on random inputs.

use aes::cipher::generic_array::GenericArray;
use aes::cipher::consts::U16;
use aes::cipher::{BlockEncrypt, BlockSizeUser, KeyInit};

use crate::error::{Error, Result};

/// FF1 for a fixed key, radix, numeral-string length and tweak.
#[derive(Clone)]
pub struct Ff1<C> {
    cipher: C,
    radix: u32,
    n: usize,
    u: usize,
    v: usize,
    b: usize,
    /// CBC-MAC state after P and every Q block but the last.
    prefix_state: [u8; 16],
    /// The last Q block with zeros where the round number and NUM(B) go.
    last_block: [u8; 16],
    radix_pow_u: u128,
    radix_pow_v: u128,
}

fn pow(radix: u32, e: usize) -> u128 {
    (0..e).fold(1u128, |acc, _| acc.saturating_mul(radix as u128))
}

impl<C: BlockEncrypt + KeyInit + BlockSizeUser<BlockSize = U16>> Ff1<C> {
    /// Prepare FF1 with `key`, over numeral strings of `n` digits in `radix`, under `tweak`.
    pub fn new(key: &[u8], radix: u32, n: usize, tweak: &[u8]) -> Result<Self> {
        let cipher = C::new_from_slice(key).map_err(|_| Error::BadKey("wrong AES key length".into()))?;
        if !(2..=1 << 16).contains(&radix) {
            return Err(Error::InvalidArgument("FF1 radix must be in 2..=65536".into()));
        }
        // SP 800-38G rev.1: radix^minlen ≥ 1,000,000 and minlen ≥ 2.
        if n < 2 || pow(radix, n.min(40)) < 1_000_000 {
            return Err(Error::InvalidArgument("FF1 domain too small (radix^n < 10^6)".into()));
        }
        let u = n / 2;
        let v = n - u;
        let bits = (v as f64 * (radix as f64).log2()).ceil() as usize;
        let b = bits.div_ceil(8);
        // Halves up to 96 bits keep every intermediate value inside u128 and d ≤ 16.
        if b > 12 {
            return Err(Error::InvalidArgument("FF1 numeral string too long for this implementation".into()));
        }
        let mut p = [0u8; 16];
        p[0] = 1;
        p[1] = 2;
        p[2] = 1;
        p[3..6].copy_from_slice(&radix.to_be_bytes()[1..4]);
        p[6] = 10;
        p[7] = (u % 256) as u8;
        p[8..12].copy_from_slice(&(n as u32).to_be_bytes());
        p[12..16].copy_from_slice(&(tweak.len() as u32).to_be_bytes());

        let t = tweak.len();
        let pad = (16 - ((t + b + 1) % 16)) % 16;
        let mut q = Vec::with_capacity(t + pad + 1 + b);
        q.extend_from_slice(tweak);
        q.resize(t + pad + 1 + b, 0);
        debug_assert_eq!(q.len() % 16, 0);

        let mut state = GenericArray::clone_from_slice(&p);
        cipher.encrypt_block(&mut state);
        let blocks = q.len() / 16;
        for blk in q.chunks(16).take(blocks - 1) {
            for (s, x) in state.iter_mut().zip(blk) {
                *s ^= x;
            }
            cipher.encrypt_block(&mut state);
        }
        let mut last_block = [0u8; 16];
        last_block.copy_from_slice(&q[q.len() - 16..]);
        let mut prefix_state = [0u8; 16];
        prefix_state.copy_from_slice(&state);
        Ok(Ff1 {
            cipher,
            radix,
            n,
            u,
            v,
            b,
            prefix_state,
            last_block,
            radix_pow_u: pow(radix, u),
            radix_pow_v: pow(radix, v),
        })
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// y = NUM(first d bytes of PRF(P‖Q)) for round `i` with the half `x`.
    #[inline(always)]
    fn round_value(&self, i: u8, x: u128) -> u128 {
        let mut block = self.last_block;
        block[15 - self.b] = i;
        let xb = x.to_be_bytes();
        block[16 - self.b..].copy_from_slice(&xb[16 - self.b..]);
        for (blk, s) in block.iter_mut().zip(self.prefix_state.iter()) {
            *blk ^= s;
        }
        let mut ga = GenericArray::from(block);
        self.cipher.encrypt_block(&mut ga);
        let d = 4 * self.b.div_ceil(4) + 4; // ≤ 16 because b ≤ 12
        let mut y = 0u128;
        for &byte in &ga[..d] {
            y = (y << 8) | byte as u128;
        }
        y
    }

    #[inline(always)]
    fn modulus(&self, i: u8) -> u128 {
        if i % 2 == 0 {
            self.radix_pow_u
        } else {
            self.radix_pow_v
        }
    }

    /// Encrypt the numeral string given as its two halves' values (A: u digits, B: v digits).
    #[inline]
    pub fn encrypt_halves(&self, mut a: u128, mut b: u128) -> (u128, u128) {
        for i in 0..10u8 {
            let m = self.modulus(i);
            let y = self.round_value(i, b) % m;
            let c = (a + y) % m;
            a = b;
            b = c;
        }
        (a, b)
    }

    /// Decrypt, the inverse of [`Ff1::encrypt_halves`].
    #[inline]
    pub fn decrypt_halves(&self, mut a: u128, mut b: u128) -> (u128, u128) {
        for i in (0..10u8).rev() {
            let m = self.modulus(i);
            let y = self.round_value(i, a) % m;
            let c = (b + m - y) % m;
            b = a;
            a = c;
        }
        (a, b)
    }

    /// Encrypt many integers (as [`Ff1::encrypt_int`]) in place. Eight numbers go through each
    /// round together so the AES unit pipelines eight independent blocks instead of waiting on
    /// one: FF1's ten rounds are a dependency chain within one number, not across numbers.
    pub fn encrypt_ints(&self, xs: &mut [u128]) {
        const LANES: usize = 8;
        let d = 4 * self.b.div_ceil(4) + 4;
        let mut chunks = xs.chunks_exact_mut(LANES);
        for chunk in &mut chunks {
            let mut a = [0u128; LANES];
            let mut b = [0u128; LANES];
            for (k, x) in chunk.iter().enumerate() {
                a[k] = *x / self.radix_pow_v;
                b[k] = *x % self.radix_pow_v;
            }
            for i in 0..10u8 {
                let m = self.modulus(i);
                let mut blocks = [GenericArray::<u8, U16>::default(); LANES];
                for (blk, &bk) in blocks.iter_mut().zip(&b) {
                    let mut block = self.last_block;
                    block[15 - self.b] = i;
                    block[16 - self.b..].copy_from_slice(&bk.to_be_bytes()[16 - self.b..]);
                    for (x, s) in block.iter_mut().zip(self.prefix_state.iter()) {
                        *x ^= s;
                    }
                    *blk = GenericArray::from(block);
                }
                self.cipher.encrypt_blocks(&mut blocks);
                for k in 0..LANES {
                    let mut y = 0u128;
                    for &byte in &blocks[k][..d] {
                        y = (y << 8) | byte as u128;
                    }
                    let c = (a[k] + y % m) % m;
                    a[k] = b[k];
                    b[k] = c;
                }
            }
            for (k, x) in chunk.iter_mut().enumerate() {
                *x = a[k] * self.radix_pow_v + b[k];
            }
        }
        for x in chunks.into_remainder() {
            *x = self.encrypt_int(*x);
        }
    }

    /// Encrypt an integer in `0..radix^n` read as an n-digit numeral string (most significant
    /// digit first), giving another integer in the same range.
    #[inline]
    pub fn encrypt_int(&self, x: u128) -> u128 {
        let (a, b) = self.encrypt_halves(x / self.radix_pow_v, x % self.radix_pow_v);
        a * self.radix_pow_v + b
    }

    #[inline]
    pub fn decrypt_int(&self, x: u128) -> u128 {
        let (a, b) = self.decrypt_halves(x / self.radix_pow_v, x % self.radix_pow_v);
        a * self.radix_pow_v + b
    }

    fn check_digits(&self, x: &[u16]) -> Result<()> {
        if x.len() != self.n || x.iter().any(|&d| d as u32 >= self.radix) {
            return Err(Error::InvalidArgument("numeral string of the wrong length or radix".into()));
        }
        Ok(())
    }

    fn num(&self, digits: &[u16]) -> u128 {
        digits.iter().fold(0u128, |acc, &d| acc * self.radix as u128 + d as u128)
    }

    fn str_m(&self, mut x: u128, m: usize) -> Vec<u16> {
        let mut out = vec![0u16; m];
        for slot in out.iter_mut().rev() {
            *slot = (x % self.radix as u128) as u16;
            x /= self.radix as u128;
        }
        out
    }

    /// Encrypt a numeral string given digit by digit (any radix, e.g. NIST's radix-36 samples).
    pub fn encrypt_digits(&self, x: &[u16]) -> Result<Vec<u16>> {
        self.check_digits(x)?;
        let (a, b) = self.encrypt_halves(self.num(&x[..self.u]), self.num(&x[self.u..]));
        let mut out = self.str_m(a, self.u);
        out.extend(self.str_m(b, self.v));
        Ok(out)
    }

    pub fn decrypt_digits(&self, x: &[u16]) -> Result<Vec<u16>> {
        self.check_digits(x)?;
        let (a, b) = self.decrypt_halves(self.num(&x[..self.u]), self.num(&x[self.u..]));
        let mut out = self.str_m(a, self.u);
        out.extend(self.str_m(b, self.v));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::{Aes128, Aes192, Aes256};

    fn digits(s: &str) -> Vec<u16> {
        s.chars().map(|c| c.to_digit(36).unwrap() as u16).collect()
    }

    fn text(d: &[u16]) -> String {
        d.iter().map(|&x| std::char::from_digit(x as u32, 36).unwrap()).collect()
    }

    const K128: &str = "2B7E151628AED2A6ABF7158809CF4F3C";
    const K192: &str = "2B7E151628AED2A6ABF7158809CF4F3CEF4359D8D580AA4F";
    const K256: &str = "2B7E151628AED2A6ABF7158809CF4F3CEF4359D8D580AA4F7F036D6F04FC6A94";
    const T_10: &str = "39383736353433323130";
    const T_36: &str = "3737373770717273373737";

    fn sample<C: BlockEncrypt + KeyInit + BlockSizeUser<BlockSize = U16>>(key: &str, radix: u32, tweak: &str, pt: &str, ct: &str) {
        let key = hex::decode(key).unwrap();
        let tweak = hex::decode(tweak).unwrap();
        let f = Ff1::<C>::new(&key, radix, pt.len(), &tweak).unwrap();
        let got = f.encrypt_digits(&digits(pt)).unwrap();
        assert_eq!(text(&got), ct);
        assert_eq!(text(&f.decrypt_digits(&got).unwrap()), pt);
    }

    /// NIST's FF1 samples (csrc.nist.gov, "FF1samples.pdf"), all nine.
    #[test]
    fn nist_samples() {
        sample::<Aes128>(K128, 10, "", "0123456789", "2433477484");
        sample::<Aes128>(K128, 10, T_10, "0123456789", "6124200773");
        sample::<Aes128>(K128, 36, T_36, "0123456789abcdefghi", "a9tv40mll9kdu509eum");
        sample::<Aes192>(K192, 10, "", "0123456789", "2830668132");
        sample::<Aes192>(K192, 10, T_10, "0123456789", "2496655549");
        sample::<Aes192>(K192, 36, T_36, "0123456789abcdefghi", "xbj3kv35jrawxv32ysr");
        sample::<Aes256>(K256, 10, "", "0123456789", "6657667009");
        sample::<Aes256>(K256, 10, T_10, "0123456789", "1001623463");
        sample::<Aes256>(K256, 36, T_36, "0123456789abcdefghi", "xs8a0azh2avyalyzuwd");
    }

    /// Agreement with the `fpe` crate (an independent FF1) on random 11-digit inputs and tweaks.
    #[test]
    fn agrees_with_fpe_crate() {
        use fpe::ff1::{FlexibleNumeralString, FF1};
        let key = hex::decode(K256).unwrap();
        let other = FF1::<Aes256>::new(&key, 10).unwrap();
        let mut x: u64 = 12345;
        for gen in 0u32..4 {
            let tweak = gen.to_be_bytes();
            let ours = Ff1::<Aes256>::new(&key, 10, 11, &tweak).unwrap();
            for _ in 0..500 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let v = (x >> 20) % 100_000_000_000;
                let s: Vec<u16> = format!("{v:011}").bytes().map(|b| (b - b'0') as u16).collect();
                let theirs: Vec<u16> =
                    other.encrypt(&tweak, &FlexibleNumeralString::from(s.clone())).unwrap().into();
                let mine = ours.encrypt_int(v as u128);
                let mine_s: Vec<u16> = format!("{mine:011}").bytes().map(|b| (b - b'0') as u16).collect();
                assert_eq!(mine_s, theirs);
                assert_eq!(ours.decrypt_int(mine), v as u128);
            }
        }
    }

    #[test]
    fn batch_equals_single() {
        let key = hex::decode(K256).unwrap();
        let f = Ff1::<Aes256>::new(&key, 10, 11, b"JLIS\0\0\0\x01").unwrap();
        for len in [0usize, 1, 7, 8, 9, 31, 1000] {
            let xs: Vec<u128> = (0..len as u128).map(|i| (i * 7_919_191_919) % 100_000_000_000).collect();
            let mut ys = xs.clone();
            f.encrypt_ints(&mut ys);
            for (x, y) in xs.iter().zip(&ys) {
                assert_eq!(f.encrypt_int(*x), *y);
            }
        }
    }

    #[test]
    fn rejects_bad_parameters() {
        let key = [7u8; 32];
        assert!(Ff1::<Aes256>::new(&key[..5], 10, 11, b"").is_err());
        assert!(Ff1::<Aes256>::new(&key, 10, 5, b"").is_err());
        assert!(Ff1::<Aes256>::new(&key, 10, 60, b"").is_err());
        let f = Ff1::<Aes256>::new(&key, 10, 11, b"").unwrap();
        assert!(f.encrypt_digits(&[1, 2, 3]).is_err());
        assert!(f.encrypt_digits(&[10; 11]).is_err());
    }
}
