//! The identifiers of the My Number system and their check digits.
//!
//! * 個人番号 (individual number, "My Number"): 12 digits, the last is a check digit
//!   (平成26年総務省令第85号 第5条): `11 − (Σ Pn·Qn mod 11)`, 0 when the remainder is ≤ 1, where Pn is
//!   the n-th body digit counted from the right and Qn = n+1 (n ≤ 6), n−5 (n ≥ 7).
//! * 法人番号 (corporate number): 13 digits, the FIRST is a check digit (平成26年財務省令第70号
//!   第2条): `9 − (Σ Pn·Qn mod 9)` over the 12-digit base, Qn = 1 for odd n and 2 for even n.
//! * 住民票コード (resident code): 11 digits, the last is a check digit. The official formula
//!   (平成14年総務省告示第436号) could not be checked; we implement the mod-11 rule that every
//!   secondary source agrees on: the My Number rule over a 10-digit body.
//!
//! Numbers are carried as `u64`; leading zeros are implicit (a 12-digit individual number may
//! start with 0). Batch validation uses per-chunk weight tables so that one number costs two
//! divisions by constants and three table look-ups.

pub mod assign;
pub mod ff1;

use crate::error::{Error, NumberKind, NumberProblem, Result};

pub const INDIVIDUAL_LIMIT: u64 = 1_000_000_000_000; // 10^12
pub const CORPORATE_LIMIT: u64 = 10_000_000_000_000; // 10^13
pub const RESIDENT_LIMIT: u64 = 100_000_000_000; // 10^11

/// Weight of the digit at position `k` (0 = rightmost) of a full individual number or resident
/// code: the check digit itself weighs 0, body digit n (= k) weighs n+1 up to 6, then n−5.
const fn mod11_weight(k: usize) -> u32 {
    if k == 0 {
        0
    } else if k <= 6 {
        k as u32 + 1
    } else {
        k as u32 - 5
    }
}

/// Weight of the digit at position `k` (0 = rightmost) of a corporate base number: n = k+1,
/// 1 for odd n and 2 for even n.
const fn mod9_weight(k: usize) -> u32 {
    if k % 2 == 0 {
        1
    } else {
        2
    }
}

/// `table[x]` = Σ digit_i(x)·w(4·chunk + i) mod m for every 4-digit chunk value x.
const fn chunk_table(chunk: usize, modulus: u32, mod9: bool) -> [u8; 10_000] {
    let mut t = [0u8; 10_000];
    let mut x = 0;
    while x < 10_000 {
        let mut v = x;
        let mut s = 0u32;
        let mut i = 0;
        while i < 4 {
            let k = chunk * 4 + i;
            let w = if mod9 { mod9_weight(k) } else { mod11_weight(k) };
            s += (v % 10) as u32 * w;
            v /= 10;
            i += 1;
        }
        t[x] = (s % modulus) as u8;
        x += 1;
    }
    t
}

static MOD11_T0: [u8; 10_000] = chunk_table(0, 11, false);
static MOD11_T1: [u8; 10_000] = chunk_table(1, 11, false);
static MOD11_T2: [u8; 10_000] = chunk_table(2, 11, false);
static MOD9_T0: [u8; 10_000] = chunk_table(0, 9, true);
static MOD9_T1: [u8; 10_000] = chunk_table(1, 9, true);
static MOD9_T2: [u8; 10_000] = chunk_table(2, 9, true);

#[inline(always)]
fn mod11_sum(n: u64) -> u32 {
    let c = (n % 10_000) as usize;
    let b = ((n / 10_000) % 10_000) as usize;
    let a = (n / 100_000_000) as usize; // < 10^4 because n < 10^12
    MOD11_T0[c] as u32 + MOD11_T1[b] as u32 + MOD11_T2[a] as u32
}

#[inline(always)]
fn mod11_check(sum: u32) -> u8 {
    // 11 − r, with r ∈ {0, 1} mapping to 0.
    let r = sum % 11;
    if r <= 1 {
        0
    } else {
        (11 - r) as u8
    }
}

/// Check digit of an individual number from its 11-digit body (`body < 10^11`).
pub fn individual_check_digit(body: u64) -> Result<u8> {
    if body >= RESIDENT_LIMIT {
        return Err(Error::InvalidNumber { kind: NumberKind::Individual, problem: NumberProblem::OutOfRange });
    }
    Ok(mod11_check(mod11_sum(body * 10)))
}

/// Whether `n` (as a 12-digit number with implicit leading zeros) is a valid individual number.
#[inline]
pub fn is_valid_individual(n: u64) -> bool {
    n < INDIVIDUAL_LIMIT && (n % 10) as u8 == mod11_check(mod11_sum(n))
}

/// Check digit of a resident code from its 10-digit body (`body < 10^10`).
pub fn resident_check_digit(body: u64) -> Result<u8> {
    if body >= RESIDENT_LIMIT / 10 {
        return Err(Error::InvalidNumber { kind: NumberKind::ResidentCode, problem: NumberProblem::OutOfRange });
    }
    Ok(mod11_check(mod11_sum(body * 10)))
}

/// Whether `n` (11 digits, implicit leading zeros) is a valid resident code.
#[inline]
pub fn is_valid_resident_code(n: u64) -> bool {
    n < RESIDENT_LIMIT && (n % 10) as u8 == mod11_check(mod11_sum(n))
}

#[inline(always)]
fn mod9_check_of_base(base: u64) -> u8 {
    let c = (base % 10_000) as usize;
    let b = ((base / 10_000) % 10_000) as usize;
    let a = (base / 100_000_000) as usize;
    let s = MOD9_T0[c] as u32 + MOD9_T1[b] as u32 + MOD9_T2[a] as u32;
    (9 - s % 9) as u8
}

/// Check digit (1–9) of a corporate number from its 12-digit base (`base < 10^12`).
pub fn corporate_check_digit(base: u64) -> Result<u8> {
    if base >= INDIVIDUAL_LIMIT {
        return Err(Error::InvalidNumber { kind: NumberKind::Corporate, problem: NumberProblem::OutOfRange });
    }
    Ok(mod9_check_of_base(base))
}

/// Whether `n` is a valid 13-digit corporate number (its first digit is the check digit).
#[inline]
pub fn is_valid_corporate(n: u64) -> bool {
    (INDIVIDUAL_LIMIT..CORPORATE_LIMIT).contains(&n)
        && (n / INDIVIDUAL_LIMIT) as u8 == mod9_check_of_base(n % INDIVIDUAL_LIMIT)
}

/// The full corporate number for a 12-digit base.
pub fn corporate_number_from_base(base: u64) -> Result<u64> {
    Ok(corporate_check_digit(base)? as u64 * INDIVIDUAL_LIMIT + base)
}

/// The full individual number for an 11-digit body.
pub fn individual_number_from_body(body: u64) -> Result<u64> {
    Ok(body * 10 + individual_check_digit(body)? as u64)
}

/// Validate many numbers of one kind at once into `out` (same length as `numbers`).
pub fn validate_batch(kind: NumberKind, numbers: &[u64], out: &mut [bool]) {
    assert_eq!(numbers.len(), out.len());
    let f: fn(u64) -> bool = match kind {
        NumberKind::Individual => is_valid_individual,
        NumberKind::Corporate => is_valid_corporate,
        NumberKind::ResidentCode => is_valid_resident_code,
    };
    for (o, &n) in out.iter_mut().zip(numbers) {
        *o = f(n);
    }
}

/// Parse a number as people write it: ASCII digits, optionally grouped with spaces or hyphens.
///
/// Full-width digits (０–９), the ideographic space and full-width / typographic hyphens are
/// accepted too, because Japanese forms and spreadsheets produce them; every other character
/// (other scripts' digits, letters, signs) is refused. The digit count must be exact.
pub fn parse_digits(kind: NumberKind, s: &str) -> Result<u64> {
    parse_digits_len(kind, s, kind.digits())
}

/// [`parse_digits`] with an explicit digit count, for the body or base of a number of `kind`.
pub fn parse_digits_len(kind: NumberKind, s: &str, expected: usize) -> Result<u64> {
    if expected > 19 {
        return Err(Error::InvalidArgument("at most 19 digits fit in a u64".into()));
    }
    let err = |problem| Error::InvalidNumber { kind, problem };
    let mut value: u64 = 0;
    let mut count = 0usize;
    for (position, ch) in s.chars().enumerate() {
        let digit = match ch {
            '0'..='9' => ch as u32 - '0' as u32,
            '０'..='９' => ch as u32 - '０' as u32,
            ' ' | '-' | '\u{3000}' | '\u{FF0D}' | '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}'
            | '\u{2212}' => continue,
            _ => return Err(err(NumberProblem::NotADigit { position })),
        };
        count += 1;
        if count > expected {
            // Keep counting cheaply so the message gives the real length, but bound the work.
            let rest = s.chars().skip(position + 1).take(1 << 16).filter(|c| c.is_ascii_digit()).count();
            return Err(err(NumberProblem::WrongLength { found: count + rest, expected }));
        }
        value = value * 10 + digit as u64;
    }
    if count == 0 {
        return Err(err(NumberProblem::Empty));
    }
    if count != expected {
        return Err(err(NumberProblem::WrongLength { found: count, expected }));
    }
    Ok(value)
}

/// Parse and check a full number of `kind`; a wrong check digit is an error.
pub fn parse_valid(kind: NumberKind, s: &str) -> Result<u64> {
    let n = parse_digits(kind, s)?;
    let ok = match kind {
        NumberKind::Individual => is_valid_individual(n),
        NumberKind::Corporate => is_valid_corporate(n),
        NumberKind::ResidentCode => is_valid_resident_code(n),
    };
    if ok {
        Ok(n)
    } else {
        Err(Error::InvalidNumber { kind, problem: NumberProblem::WrongCheckDigit })
    }
}

/// Format a number of `kind` with its leading zeros.
pub fn format_number(kind: NumberKind, n: u64) -> String {
    format!("{:0width$}", n, width = kind.digits())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ordinance's formula written out digit by digit, as a second opinion on the tables.
    fn slow_individual_check(body: &str) -> u8 {
        let digits: Vec<u32> = body.bytes().map(|b| (b - b'0') as u32).collect();
        let mut s = 0;
        for n in 1..=11 {
            let p = digits[11 - n];
            let q = if n <= 6 { n as u32 + 1 } else { n as u32 - 5 };
            s += p * q;
        }
        if s % 11 <= 1 {
            0
        } else {
            (11 - s % 11) as u8
        }
    }

    fn slow_corporate_check(base: &str) -> u8 {
        let digits: Vec<u32> = base.bytes().map(|b| (b - b'0') as u32).collect();
        let mut s = 0;
        for n in 1..=12 {
            let p = digits[12 - n];
            s += p * if n % 2 == 1 { 1 } else { 2 };
        }
        (9 - s % 9) as u8
    }

    #[test]
    fn reference_individual_examples() {
        for good in ["621498320257", "983205673214", "123456789018", "111111111118", "400000000050", "379474484458"] {
            assert!(is_valid_individual(good.parse().unwrap()), "{good}");
            assert!(parse_valid(NumberKind::Individual, good).is_ok());
        }
        for bad in ["621498320258", "983205673210", "123456789019"] {
            assert!(!is_valid_individual(bad.parse().unwrap()), "{bad}");
            assert_eq!(
                parse_valid(NumberKind::Individual, bad),
                Err(Error::InvalidNumber { kind: NumberKind::Individual, problem: NumberProblem::WrongCheckDigit })
            );
        }
        assert_eq!(individual_check_digit(12345678901).unwrap(), 8);
        assert_eq!(individual_check_digit(40000000005).unwrap(), 0);
    }

    #[test]
    fn reference_corporate_examples() {
        for good in [
            "5835678256246",
            "7000012050002",
            "4011001098993",
            "1180301018771",
            "3987654321098",
            "7010705000725",
            "7123456789012",
        ] {
            assert!(is_valid_corporate(good.parse().unwrap()), "{good}");
        }
        assert!(!is_valid_corporate(2835678256246));
        assert_eq!(corporate_check_digit(123456789012).unwrap(), 7);
        // A base alone (check digit 0) is never valid.
        assert!(!is_valid_corporate(835678256246));
    }

    #[test]
    fn resident_code_example() {
        assert!(is_valid_resident_code(24727059608));
        assert!(!is_valid_resident_code(24727059609));
        assert_eq!(resident_check_digit(2472705960).unwrap(), 8);
    }

    #[test]
    fn tables_agree_with_the_formula() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let body = x % RESIDENT_LIMIT;
            let s = format!("{body:011}");
            assert_eq!(individual_check_digit(body).unwrap(), slow_individual_check(&s));
            let base = x % INDIVIDUAL_LIMIT;
            let s = format!("{base:012}");
            assert_eq!(corporate_check_digit(base).unwrap(), slow_corporate_check(&s));
        }
    }

    #[test]
    fn parsing_as_people_write() {
        assert_eq!(parse_valid(NumberKind::Individual, "6214 9832 0257").unwrap(), 621498320257);
        assert_eq!(parse_valid(NumberKind::Corporate, "5-8356-7825-6246").unwrap(), 5835678256246);
        assert_eq!(parse_valid(NumberKind::Individual, "６２１４　９８３２　０２５７").unwrap(), 621498320257);
        assert_eq!(parse_valid(NumberKind::Individual, "012345678901").is_ok(), is_valid_individual(12345678901));
        let e = |p| Err(Error::InvalidNumber { kind: NumberKind::Individual, problem: p });
        assert_eq!(parse_digits(NumberKind::Individual, ""), e(NumberProblem::Empty));
        assert_eq!(parse_digits(NumberKind::Individual, " - "), e(NumberProblem::Empty));
        assert_eq!(parse_digits(NumberKind::Individual, "12345"), e(NumberProblem::WrongLength { found: 5, expected: 12 }));
        assert_eq!(
            parse_digits(NumberKind::Individual, "1234567890123"),
            e(NumberProblem::WrongLength { found: 13, expected: 12 })
        );
        assert_eq!(parse_digits(NumberKind::Individual, "12345678901a"), e(NumberProblem::NotADigit { position: 11 }));
        // Arabic-Indic digits are digits to Unicode but not to a Japanese form.
        assert_eq!(parse_digits(NumberKind::Individual, "١٢٣"), e(NumberProblem::NotADigit { position: 0 }));
        assert!(parse_digits(NumberKind::Individual, &"9".repeat(1_000_000)).is_err());
    }

    #[test]
    fn error_messages_never_repeat_the_number() {
        let msg = parse_valid(NumberKind::Individual, "621498320258").unwrap_err().to_string();
        assert!(!msg.contains("621498320258"), "{msg}");
    }
}
