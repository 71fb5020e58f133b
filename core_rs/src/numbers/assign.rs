//! J-LIS number generation (番号法 第8条): the My Number is obtained by converting the resident
//! code, differs from every other number, and has no regularity that would let anyone restore
//! the resident code.
//!
//! The conversion is FF1 (AES-256) over the 11-digit resident code, giving the 11-digit body of
//! the My Number, followed by its check digit. FF1 is a permutation for a given key and tweak,
//! so distinct resident codes give distinct numbers within one generation; the tweak is the
//! change generation (番号法 第7条第2項), and the registry above this module rejects the rare
//! collision of a new generation with an existing number by moving on to the next generation.

use aes::Aes256;

use super::ff1::Ff1;
use super::{is_valid_individual, is_valid_resident_code, mod11_check, mod11_sum, RESIDENT_LIMIT};
use crate::error::{Error, NumberKind, NumberProblem, Result};

pub const KEY_LEN: usize = 32;

/// The keyed map from resident code to My Number, for every change generation.
pub struct NumberMap {
    key: [u8; KEY_LEN],
    first: Ff1<Aes256>,
}

fn tweak(generation: u32) -> [u8; 8] {
    let mut t = *b"JLIS\0\0\0\0";
    t[4..].copy_from_slice(&generation.to_be_bytes());
    t
}

impl NumberMap {
    pub fn new(key: &[u8]) -> Result<Self> {
        let key: [u8; KEY_LEN] =
            key.try_into().map_err(|_| Error::BadKey(format!("number key must be {KEY_LEN} bytes")))?;
        let first = Ff1::new(&key, 10, 11, &tweak(0))?;
        Ok(NumberMap { key, first })
    }

    fn ff1(&self, generation: u32) -> Result<std::borrow::Cow<'_, Ff1<Aes256>>> {
        Ok(if generation == 0 {
            std::borrow::Cow::Borrowed(&self.first)
        } else {
            std::borrow::Cow::Owned(Ff1::new(&self.key, 10, 11, &tweak(generation))?)
        })
    }

    #[inline(always)]
    fn number_of(f: &Ff1<Aes256>, resident: u64) -> u64 {
        let body = f.encrypt_int(resident as u128) as u64;
        body * 10 + mod11_check(mod11_sum(body * 10)) as u64
    }

    /// The My Number of generation `generation` for a (valid) resident code.
    pub fn number_for(&self, resident: u64, generation: u32) -> Result<u64> {
        check_resident(resident, None)?;
        Ok(Self::number_of(&*self.ff1(generation)?, resident))
    }

    /// The resident code behind `number` if it was made in `generation`; `None` when the number
    /// does not decode to a valid resident code under that generation (it was not made so).
    pub fn resident_for(&self, number: u64, generation: u32) -> Result<Option<u64>> {
        if !is_valid_individual(number) {
            return Err(Error::InvalidNumber {
                kind: NumberKind::Individual,
                problem: if number >= super::INDIVIDUAL_LIMIT {
                    NumberProblem::OutOfRange
                } else {
                    NumberProblem::WrongCheckDigit
                },
            });
        }
        let resident = self.ff1(generation)?.decrypt_int((number / 10) as u128) as u64;
        Ok(is_valid_resident_code(resident).then_some(resident))
    }

    /// Numbers of one generation for many resident codes; the first invalid code is an error
    /// naming its index (and nothing is written past it).
    pub fn numbers_for_batch(&self, residents: &[u64], generation: u32, out: &mut [u64]) -> Result<()> {
        assert_eq!(residents.len(), out.len());
        let f = self.ff1(generation)?;
        for (index, &r) in residents.iter().enumerate() {
            check_resident(r, Some(index))?;
        }
        // Bounded scratch so a huge batch does not double its memory in u128s.
        let mut scratch = Vec::with_capacity(residents.len().min(1 << 16));
        for (src, dst) in residents.chunks(1 << 16).zip(out.chunks_mut(1 << 16)) {
            scratch.clear();
            scratch.extend(src.iter().map(|&r| r as u128));
            f.encrypt_ints(&mut scratch);
            for (o, &body) in dst.iter_mut().zip(&scratch) {
                let body = body as u64;
                *o = body * 10 + mod11_check(mod11_sum(body * 10)) as u64;
            }
        }
        Ok(())
    }
}

fn check_resident(resident: u64, index: Option<usize>) -> Result<()> {
    if is_valid_resident_code(resident) {
        return Ok(());
    }
    let problem =
        if resident >= RESIDENT_LIMIT { NumberProblem::OutOfRange } else { NumberProblem::WrongCheckDigit };
    let kind = NumberKind::ResidentCode;
    Err(match index {
        Some(index) => Error::InvalidNumberAt { kind, index, problem },
        None => Error::InvalidNumber { kind, problem },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numbers::resident_check_digit;
    use std::collections::HashSet;

    fn resident(body: u64) -> u64 {
        body * 10 + resident_check_digit(body).unwrap() as u64
    }

    #[test]
    fn distinct_valid_and_resolvable() {
        let map = NumberMap::new(&[42u8; 32]).unwrap();
        let residents: Vec<u64> = (0..100_000u64).map(|i| resident(i * 99_991 % 10_000_000_000)).collect();
        let mut out = vec![0u64; residents.len()];
        map.numbers_for_batch(&residents, 0, &mut out).unwrap();
        let set: HashSet<u64> = out.iter().copied().collect();
        assert_eq!(set.len(), residents.len());
        for (&r, &n) in residents.iter().zip(&out).take(2000) {
            assert!(is_valid_individual(n));
            assert_eq!(map.number_for(r, 0).unwrap(), n);
            assert_eq!(map.resident_for(n, 0).unwrap(), Some(r));
            // Another generation gives another number that resolves only under its own tweak.
            let n1 = map.number_for(r, 1).unwrap();
            assert_ne!(n1, n);
            assert_eq!(map.resident_for(n1, 1).unwrap(), Some(r));
        }
    }

    #[test]
    fn bad_resident_codes_are_refused_with_index() {
        let map = NumberMap::new(&[1u8; 32]).unwrap();
        let good = resident(1234567890);
        let mut out = [0u64; 3];
        let err = map.numbers_for_batch(&[good, good + 1, good], 0, &mut out).unwrap_err();
        assert!(matches!(err, Error::InvalidNumberAt { index: 1, .. }));
        assert!(map.number_for(RESIDENT_LIMIT + 5, 0).is_err());
        assert!(NumberMap::new(&[0u8; 16]).is_err());
    }
}
