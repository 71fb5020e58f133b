//! The table document (format `renkei-permissions/1`, see docs/arch/permissions.md), its
//! validation and its content hash.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub const FORMAT: &str = "renkei-permissions/1";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgencyTypeEntry {
    pub id: String,
    pub name: String,
}

/// One 事務: an affair of a 項, or of a municipality's ordinance (条例事務).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AffairEntry {
    pub id: String,
    /// Short code carried in permits (≤ 16 ASCII characters), e.g. `B2-1` or a `JT` code.
    pub code: String,
    #[serde(default)]
    pub ko: Option<String>,
    pub name: String,
    /// Operational aliases: 事務手続コード (`JT` + 14 digits).
    #[serde(default)]
    pub codes: Vec<String>,
}

/// One 特定個人情報 (information item).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemEntry {
    pub id: String,
    pub code: String,
    pub name: String,
    /// Operational aliases: 特定個人情報名コード (`TM` + 14 digits).
    #[serde(default)]
    pub codes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowEntry {
    #[serde(rename = "ref")]
    pub reference: String,
    #[serde(default)]
    pub ko: Option<String>,
    pub affair: String,
    pub requesters: Vec<String>,
    pub providers: Vec<String>,
    pub items: Vec<String>,
    /// 全国地方公共団体コード (6 digits) of the municipality whose ordinance adds this row.
    #[serde(default)]
    pub municipality: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub format: String,
    pub label: String,
    pub effective_from: String,
    #[serde(default)]
    pub effective_until: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    pub agency_types: Vec<AgencyTypeEntry>,
    pub affairs: Vec<AffairEntry>,
    pub items: Vec<ItemEntry>,
    pub rows: Vec<RowEntry>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::InvalidArgument(format!("permission table: {}", msg.into()))
}

impl Document {
    pub fn from_json(bytes: &[u8]) -> Result<Document> {
        let doc: Document = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if doc.format != FORMAT {
            return Err(bad(format!("format is {:?}, expected {FORMAT:?}", doc.format)));
        }
        Ok(doc)
    }

    /// SHA-256 over the canonical encoding (docs/arch/permissions.md): strings and lists are
    /// length-prefixed, instants are microseconds, dictionaries are sorted by id, the lists in
    /// a row are sorted and deduplicated; rows keep document order (the law's order decides
    /// which row is "first").
    pub fn content_hash(&self, from_us: i64, until_us: Option<i64>) -> [u8; 32] {
        let mut h = Enc(Sha256::new());
        h.str(FORMAT);
        h.str(&self.label);
        h.0.update(from_us.to_be_bytes());
        match until_us {
            None => h.0.update([0u8]),
            Some(u) => {
                h.0.update([1u8]);
                h.0.update(u.to_be_bytes());
            }
        }
        h.opt(self.source.as_deref());
        let mut types: Vec<&AgencyTypeEntry> = self.agency_types.iter().collect();
        types.sort_by(|a, b| a.id.cmp(&b.id));
        h.len(types.len());
        for t in types {
            h.str(&t.id);
            h.str(&t.name);
        }
        let mut affairs: Vec<&AffairEntry> = self.affairs.iter().collect();
        affairs.sort_by(|a, b| a.id.cmp(&b.id));
        h.len(affairs.len());
        for a in affairs {
            h.str(&a.id);
            h.str(&a.code);
            h.opt(a.ko.as_deref());
            h.str(&a.name);
            h.set(&a.codes);
        }
        let mut items: Vec<&ItemEntry> = self.items.iter().collect();
        items.sort_by(|a, b| a.id.cmp(&b.id));
        h.len(items.len());
        for i in items {
            h.str(&i.id);
            h.str(&i.code);
            h.str(&i.name);
            h.set(&i.codes);
        }
        h.len(self.rows.len());
        for r in &self.rows {
            h.str(&r.reference);
            h.opt(r.ko.as_deref());
            h.str(&r.affair);
            h.set(&r.requesters);
            h.set(&r.providers);
            h.set(&r.items);
            h.opt(r.municipality.as_deref());
        }
        h.0.finalize().into()
    }
}

struct Enc(Sha256);

impl Enc {
    fn len(&mut self, n: usize) {
        self.0.update((n as u32).to_be_bytes());
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.update(s.as_bytes());
    }
    fn opt(&mut self, s: Option<&str>) {
        match s {
            None => self.0.update([0u8]),
            Some(s) => {
                self.0.update([1u8]);
                self.str(s);
            }
        }
    }
    fn set(&mut self, xs: &[String]) {
        let mut v: Vec<&str> = xs.iter().map(|s| s.as_str()).collect();
        v.sort_unstable();
        v.dedup();
        self.len(v.len());
        for s in v {
            self.str(s);
        }
    }
}

/// `JT` + 14 digits (事務手続コード) or `TM` + 14 digits (特定個人情報名コード).
pub fn is_operational_code(prefix: &str, s: &str) -> bool {
    s.len() == 16 && s.starts_with(prefix) && s.as_bytes()[2..].iter().all(u8::is_ascii_digit)
}

/// A 全国地方公共団体コード: six digits.
pub fn parse_municipality(s: &str) -> Result<u32> {
    if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::InvalidArgument(format!("municipality code must be 6 digits, got {s:?}")));
    }
    let v: u32 = s.parse().map_err(|_| Error::InvalidArgument(format!("bad municipality code {s:?}")))?;
    if v == 0 {
        return Err(Error::InvalidArgument("municipality code 000000 is not a municipality".into()));
    }
    Ok(v)
}

/// Microseconds since the Unix epoch of an RFC 3339 timestamp with an explicit offset
/// (`2017-11-13T00:00:00+09:00`, `…Z`, optional fraction up to microseconds).
pub fn parse_instant(s: &str) -> Result<i64> {
    let err = || Error::InvalidArgument(format!("not an RFC 3339 timestamp with offset: {s:?}"));
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't') || b[13] != b':' || b[16] != b':' {
        return Err(err());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64> {
        let part = &s[r];
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse::<i64>().map_err(|_| err())
        } else {
            Err(err())
        }
    };
    let (y, mo, d, hh, mi, ss) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let mut pos = 19;
    let mut micros = 0i64;
    if b[pos] == b'.' {
        let start = pos + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        if end == start || end - start > 6 {
            return Err(err());
        }
        micros = num(start..end)? * 10i64.pow(6 - (end - start) as u32);
        pos = end;
    }
    let offset_s = match &s[pos..] {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) && rest.as_bytes()[3] == b':' => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let oh = num(pos + 1..pos + 3)?;
            let om = num(pos + 4..pos + 6)?;
            if oh > 23 || om > 59 {
                return Err(err());
            }
            sign * (oh * 3600 + om * 60)
        }
        _ => return Err(err()),
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mdays = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&mo) || d < 1 || d > mdays[(mo - 1) as usize] || hh > 23 || mi > 59 || ss > 59 {
        return Err(err());
    }
    // Days from civil (H. Hinnant).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(((days * 86_400 + hh * 3600 + mi * 60 + ss - offset_s) * 1_000_000) + micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants() {
        assert_eq!(parse_instant("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_instant("1970-01-01T09:00:00+09:00").unwrap(), 0);
        assert_eq!(parse_instant("2017-11-13T00:00:00+09:00").unwrap(), 1_510_498_800_000_000);
        assert_eq!(parse_instant("2000-02-29T00:00:00.5Z").unwrap(), 951_782_400_500_000);
        for bad in ["2017-11-13", "2017-02-30T00:00:00Z", "2017-11-13T00:00:00", "2017-11-13T25:00:00Z", "x"] {
            assert!(parse_instant(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn codes() {
        assert!(is_operational_code("JT", "JT00000000000123"));
        assert!(!is_operational_code("JT", "TM00000000000123"));
        assert!(!is_operational_code("TM", "TM0000000000012"));
        assert_eq!(parse_municipality("131016").unwrap(), 131016);
        assert!(parse_municipality("13101").is_err());
    }
}
