//! The text form of an agency code: the 16 bytes as one big-endian 128-bit number in Crockford
//! base32, 26 characters (the first is 0–7, since 26·5 = 130 bits).
//!
//! Decoding follows Crockford: case-insensitive, `I`/`L` read as 1, `O` as 0, hyphens ignored
//! (people group long codes); `U` and anything else is refused.

use super::{Code, CODE_LEN};
use crate::error::{Error, Result};

pub const TEXT_LEN: usize = 26;
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

pub fn encode(code: &Code) -> String {
    let mut v = u128::from_be_bytes(*code);
    let mut out = [0u8; TEXT_LEN];
    for o in out.iter_mut().rev() {
        *o = ALPHABET[(v & 31) as usize];
        v >>= 5;
    }
    // ALPHABET is ASCII.
    String::from_utf8(out.to_vec()).expect("ascii")
}

fn value(ch: char) -> Option<u128> {
    let c = ch.to_ascii_uppercase();
    Some(match c {
        '0'..='9' => c as u128 - '0' as u128,
        'O' => 0,
        'I' | 'L' => 1,
        'A'..='Z' if c != 'U' => ALPHABET.iter().position(|&a| a == c as u8)? as u128,
        _ => return None,
    })
}

pub fn decode(s: &str) -> Result<Code> {
    let mut v: u128 = 0;
    let mut count = 0usize;
    for (position, ch) in s.chars().enumerate() {
        if ch == '-' {
            continue;
        }
        let d = value(ch).ok_or_else(|| {
            Error::InvalidArgument(format!("an agency code has a character outside Crockford base32 at position {position}"))
        })?;
        if count == 0 && d > 7 {
            return Err(Error::InvalidArgument("an agency code's first character must be 0-7".into()));
        }
        count += 1;
        if count > TEXT_LEN {
            break;
        }
        v = (v << 5) | d;
    }
    if count != TEXT_LEN {
        return Err(Error::InvalidArgument(format!("an agency code has {TEXT_LEN} characters (hyphens aside)")));
    }
    let mut out = [0u8; CODE_LEN];
    out.copy_from_slice(&v.to_be_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_edges() {
        for code in [[0u8; 16], [0xFF; 16], *b"0123456789abcdef"] {
            let t = encode(&code);
            assert_eq!(t.len(), 26);
            assert_eq!(decode(&t).unwrap(), code);
            assert_eq!(decode(&t.to_lowercase()).unwrap(), code);
        }
        assert_eq!(encode(&[0xFF; 16]), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
        assert_eq!(encode(&[0; 16]), "0".repeat(26));
    }

    #[test]
    fn crockford_aliases_and_hyphens() {
        let code = [0x12u8; 16];
        let t = encode(&code);
        let grouped = format!("{}-{}-{}", &t[..8], &t[8..16], &t[16..]);
        assert_eq!(decode(&grouped).unwrap(), code);
        assert_eq!(decode(&"O".repeat(26)).unwrap(), [0; 16]);
        assert_eq!(decode(&format!("0{}", "l".repeat(25))).unwrap(), decode(&format!("0{}", "1".repeat(25))).unwrap());
    }

    #[test]
    fn refusals() {
        assert!(decode("").is_err());
        assert!(decode(&"0".repeat(25)).is_err());
        assert!(decode(&"0".repeat(27)).is_err());
        assert!(decode(&format!("8{}", "0".repeat(25))).is_err());
        assert!(decode(&format!("7{}", "0".repeat(25))).is_ok());
        assert!(decode(&format!("0{}U", "0".repeat(24))).is_err());
        assert!(decode(&format!("0{}é", "0".repeat(24))).is_err());
    }
}
