//! The legal permission engine: may this requester ask this provider for these items for this
//! affair? (番号法 第十九条第七号 and 別表第二; ordinance rows under 第九条第二項 / 第十九条.)
//!
//! A table version is compiled at load time: every name (agency type, affair, item, and the
//! operational 事務手続コード / 特定個人情報名コード aliases) is interned to a dense id, and every
//! (affair, requester type, provider type, item) tuple a row permits becomes one `u64` key of a
//! hash map. A check is therefore one hash lookup per (type pair, item), whatever the table
//! size. Only a denial walks the rows of its affair to name the failed component and the
//! nearest row.
//!
//! Dense ids are engine-wide and only ever grow, so ids obtained for a batch stay valid across
//! reloads. The engine publishes an immutable `Snapshot` through an `ArcSwap`: a check loads
//! one snapshot and answers from it alone, so a reload is seen entirely or not at all.

pub mod document;

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustc_hash::FxHashMap;

pub use document::{parse_instant, parse_municipality, Document};
use document::is_operational_code;

use crate::error::{Error, Result};

/// Dense ids are packed into one u64 key: affair and item 20 bits each, types 12 bits each.
const AFFAIR_BITS: u32 = 20;
const ITEM_BITS: u32 = 20;
const TYPE_BITS: u32 = 12;
/// Marks an unknown name in the dense (batch) interface.
pub const UNKNOWN: u32 = u32::MAX;
/// Map value flag: the key's rows include ordinance rows; the rest is an index into `lists`.
const LIST_FLAG: u32 = 1 << 31;
pub const NO_ROW: u32 = u32::MAX;

#[inline]
fn key(affair: u32, req: u32, prov: u32, item: u32) -> u64 {
    ((affair as u64) << (ITEM_BITS + 2 * TYPE_BITS))
        | ((req as u64) << (ITEM_BITS + TYPE_BITS))
        | ((prov as u64) << ITEM_BITS)
        | item as u64
}

/// Why a check was denied. The numeric values are the batch outcome codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Outcome {
    Allowed = 0,
    /// No table version is in force at the requested instant.
    NoVersionInForce = 1,
    /// The affair is not in the version in force.
    UnknownAffair = 2,
    /// None of the requester's types is entitled to the affair (情報照会者 not listed).
    RequesterNotEntitled = 3,
    /// The requester is entitled, but none of the provider's types is listed (情報提供者).
    ProviderNotListed = 4,
    /// Requester and provider fit, but the item is not listed (特定個人情報).
    ItemNotListed = 5,
    /// Only an ordinance row (条例事務) of another municipality would permit this.
    OtherMunicipality = 6,
}

impl Outcome {
    pub fn token(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::NoVersionInForce => "no_version_in_force",
            Outcome::UnknownAffair => "unknown_affair",
            Outcome::RequesterNotEntitled => "requester_not_entitled",
            Outcome::ProviderNotListed => "provider_not_listed",
            Outcome::ItemNotListed => "item_not_listed",
            Outcome::OtherMunicipality => "other_municipality",
        }
    }
}

/// A compiled row.
#[derive(Debug, Clone)]
pub struct Row {
    pub reference: String,
    pub ko: Option<String>,
    pub affair: u32,
    pub requesters: Vec<u32>,
    pub providers: Vec<u32>,
    pub items: Vec<u32>,
    /// 0 for a national row, else the municipality code of the ordinance.
    pub municipality: u32,
}

impl Row {
    #[inline]
    fn in_scope(&self, muni: u32) -> bool {
        self.municipality == 0 || self.municipality == muni
    }
}

/// Engine-wide name → dense id maps (append-only).
#[derive(Debug, Clone, Default)]
pub struct Interner {
    types: FxHashMap<String, u32>,
    type_names: Vec<String>,
    affairs: FxHashMap<String, u32>,
    affair_names: Vec<String>,
    items: FxHashMap<String, u32>,
    item_names: Vec<String>,
}

fn intern(map: &mut FxHashMap<String, u32>, names: &mut Vec<String>, s: &str, bits: u32, what: &str) -> Result<u32> {
    if let Some(&id) = map.get(s) {
        return Ok(id);
    }
    let id = names.len() as u32;
    if id >= (1 << bits) {
        return Err(Error::InvalidArgument(format!("permission table: more than {} {what}", 1u32 << bits)));
    }
    map.insert(s.to_owned(), id);
    names.push(s.to_owned());
    Ok(id)
}

/// One compiled table version.
#[derive(Debug)]
pub struct Version {
    pub label: String,
    pub effective_from: i64,
    pub effective_until: Option<i64>,
    pub hash: [u8; 32],
    pub rows: Vec<Row>,
    map: FxHashMap<u64, u32>,
    lists: Vec<Vec<u32>>,
    by_affair: FxHashMap<u32, Vec<u32>>,
    /// id, code and operational aliases → dense id, for this version.
    affair_names: FxHashMap<String, u32>,
    item_names: FxHashMap<String, u32>,
    type_names: FxHashMap<String, u32>,
    affair_code: FxHashMap<u32, String>,
    item_code: FxHashMap<u32, String>,
}

/// A decision on one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    /// Allowed: the row permitting each item, in item order. Denied: empty.
    pub matched: Vec<u32>,
    /// Denied: the index (in the request) of the first item that failed, when an item did.
    pub failed_item: Option<usize>,
    /// Denied: the nearest row of the affair (see `explain`).
    pub nearest: Option<u32>,
}

impl Version {
    pub fn compile(doc: &Document, interner: &mut Interner) -> Result<Version> {
        let bad = |m: String| Error::InvalidArgument(format!("permission table {:?}: {m}", doc.label));
        let effective_from = parse_instant(&doc.effective_from)?;
        let effective_until = doc.effective_until.as_deref().map(parse_instant).transpose()?;
        if let Some(u) = effective_until {
            if u <= effective_from {
                return Err(bad("effective_until is not after effective_from".into()));
            }
        }
        let hash = doc.content_hash(effective_from, effective_until);
        let mut type_names = FxHashMap::default();
        for t in &doc.agency_types {
            let id = intern(&mut interner.types, &mut interner.type_names, &t.id, TYPE_BITS, "agency types")?;
            if type_names.insert(t.id.clone(), id).is_some() {
                return Err(bad(format!("agency type {:?} twice", t.id)));
            }
        }
        let mut affair_names = FxHashMap::default();
        let mut affair_code = FxHashMap::default();
        for a in &doc.affairs {
            let id = intern(&mut interner.affairs, &mut interner.affair_names, &a.id, AFFAIR_BITS, "affairs")?;
            check_code(&a.code).map_err(|m| bad(format!("affair {:?}: {m}", a.id)))?;
            for c in &a.codes {
                if !is_operational_code("JT", c) {
                    return Err(bad(format!("affair {:?}: {c:?} is not a 事務手続コード (JT + 14 digits)", a.id)));
                }
            }
            for name in std::iter::once(&a.id).chain(std::iter::once(&a.code)).chain(a.codes.iter()) {
                if let Some(prev) = affair_names.insert(name.clone(), id) {
                    if prev != id {
                        return Err(bad(format!("affair name {name:?} used twice")));
                    }
                }
            }
            affair_code.insert(id, a.code.clone());
        }
        let mut item_names = FxHashMap::default();
        let mut item_code = FxHashMap::default();
        for it in &doc.items {
            let id = intern(&mut interner.items, &mut interner.item_names, &it.id, ITEM_BITS, "items")?;
            check_code(&it.code).map_err(|m| bad(format!("item {:?}: {m}", it.id)))?;
            for c in &it.codes {
                if !is_operational_code("TM", c) {
                    return Err(bad(format!("item {:?}: {c:?} is not a 特定個人情報名コード (TM + 14 digits)", it.id)));
                }
            }
            for name in std::iter::once(&it.id).chain(std::iter::once(&it.code)).chain(it.codes.iter()) {
                if let Some(prev) = item_names.insert(name.clone(), id) {
                    if prev != id {
                        return Err(bad(format!("item name {name:?} used twice")));
                    }
                }
            }
            item_code.insert(id, it.code.clone());
        }
        let mut rows = Vec::with_capacity(doc.rows.len());
        let mut refs = std::collections::HashSet::new();
        for r in &doc.rows {
            if !refs.insert(r.reference.as_str()) {
                return Err(bad(format!("row ref {:?} twice", r.reference)));
            }
            let affair = *affair_names
                .get(&r.affair)
                .ok_or_else(|| bad(format!("row {:?}: unknown affair {:?}", r.reference, r.affair)))?;
            let resolve = |names: &[String], map: &FxHashMap<String, u32>, what: &str| -> Result<Vec<u32>> {
                if names.is_empty() {
                    return Err(bad(format!("row {:?}: no {what}", r.reference)));
                }
                let mut v = names
                    .iter()
                    .map(|n| map.get(n).copied().ok_or_else(|| bad(format!("row {:?}: unknown {what} {n:?}", r.reference))))
                    .collect::<Result<Vec<u32>>>()?;
                v.sort_unstable();
                v.dedup();
                Ok(v)
            };
            let requesters = resolve(&r.requesters, &type_names, "requester type")?;
            let providers = resolve(&r.providers, &type_names, "provider type")?;
            let items = resolve(&r.items, &item_names, "item")?;
            let municipality = match &r.municipality {
                None => 0,
                Some(m) => parse_municipality(m)?,
            };
            rows.push(Row { reference: r.reference.clone(), ko: r.ko.clone(), affair, requesters, providers, items, municipality });
        }
        if rows.len() >= LIST_FLAG as usize {
            return Err(bad("too many rows".into()));
        }
        let tuples: usize = rows.iter().map(|r| r.requesters.len() * r.providers.len() * r.items.len()).sum();
        let mut map: FxHashMap<u64, u32> = FxHashMap::with_capacity_and_hasher(tuples, Default::default());
        let mut multi: FxHashMap<u64, Vec<u32>> = FxHashMap::default();
        let mut by_affair: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
        for (idx, row) in rows.iter().enumerate() {
            let idx = idx as u32;
            by_affair.entry(row.affair).or_default().push(idx);
            for &q in &row.requesters {
                for &p in &row.providers {
                    for &i in &row.items {
                        let k = key(row.affair, q, p, i);
                        match map.get(&k) {
                            None if row.municipality == 0 => {
                                map.insert(k, idx);
                            }
                            // A national row earlier in the table decides for every requester.
                            Some(&first) if first & LIST_FLAG == 0 && rows[first as usize].municipality == 0 => {}
                            _ => {
                                map.insert(k, LIST_FLAG);
                                multi.entry(k).or_default().push(idx);
                            }
                        }
                    }
                }
            }
        }
        // Keys with ordinance rows: every row of the key in table order, resolved per request.
        let mut lists = Vec::with_capacity(multi.len());
        for (k, mut v) in multi {
            v.sort_unstable();
            v.dedup();
            map.insert(k, LIST_FLAG | lists.len() as u32);
            lists.push(v);
        }
        Ok(Version {
            label: doc.label.clone(),
            effective_from,
            effective_until,
            hash,
            rows,
            map,
            lists,
            by_affair,
            affair_names,
            item_names,
            type_names,
            affair_code,
            item_code,
        })
    }

    pub fn affair_id(&self, name: &str) -> u32 {
        self.affair_names.get(name).copied().unwrap_or(UNKNOWN)
    }
    pub fn item_id(&self, name: &str) -> u32 {
        self.item_names.get(name).copied().unwrap_or(UNKNOWN)
    }
    pub fn type_id(&self, name: &str) -> u32 {
        self.type_names.get(name).copied().unwrap_or(UNKNOWN)
    }
    pub fn affair_code(&self, id: u32) -> Option<&str> {
        self.affair_code.get(&id).map(|s| s.as_str())
    }
    pub fn item_code(&self, id: u32) -> Option<&str> {
        self.item_code.get(&id).map(|s| s.as_str())
    }
    pub fn key_count(&self) -> usize {
        self.map.len()
    }

    /// The first row in table order that permits (affair, q, p, item) for a requester of
    /// municipality `muni` (0 = none).
    #[inline]
    fn lookup(&self, affair: u32, q: u32, p: u32, item: u32, muni: u32) -> u32 {
        match self.map.get(&key(affair, q, p, item)) {
            None => NO_ROW,
            Some(&v) if v & LIST_FLAG == 0 => v,
            Some(&v) => {
                for &r in &self.lists[(v & !LIST_FLAG) as usize] {
                    if self.rows[r as usize].in_scope(muni) {
                        return r;
                    }
                }
                NO_ROW
            }
        }
    }

    /// One check on dense ids. `UNKNOWN` ids simply match nothing.
    pub fn check(&self, requesters: &[u32], muni: u32, affair: u32, providers: &[u32], items: &[u32]) -> Decision {
        let mut matched = Vec::with_capacity(items.len());
        for (n, &item) in items.iter().enumerate() {
            let mut best = NO_ROW;
            if affair < (1 << AFFAIR_BITS) && item < (1 << ITEM_BITS) {
                for &q in requesters.iter().filter(|&&q| q < (1 << TYPE_BITS)) {
                    for &p in providers.iter().filter(|&&p| p < (1 << TYPE_BITS)) {
                        best = best.min(self.lookup(affair, q, p, item, muni));
                    }
                }
            }
            if best == NO_ROW {
                let (outcome, nearest) = self.explain(requesters, muni, affair, providers, item);
                return Decision { outcome, matched: Vec::new(), failed_item: Some(n), nearest };
            }
            matched.push(best);
        }
        Decision { outcome: Outcome::Allowed, matched, failed_item: None, nearest: None }
    }

    /// Why (affair, requesters, providers, item) is not permitted, and the nearest row: among
    /// the affair's rows, the one matching most of (requester, provider, item, in scope), in
    /// that priority, first in table order on ties.
    pub fn explain(&self, requesters: &[u32], muni: u32, affair: u32, providers: &[u32], item: u32) -> (Outcome, Option<u32>) {
        let rows = match self.by_affair.get(&affair) {
            None => return (Outcome::UnknownAffair, None),
            Some(r) => r,
        };
        let meet = |a: &[u32], b: &[u32]| a.iter().any(|x| b.binary_search(x).is_ok());
        let mut nearest = (0u8, rows[0]);
        let mut any_in_scope = false;
        let (mut req_ok, mut prov_ok) = (false, false);
        let mut foreign_full = None;
        for &ri in rows {
            let row = &self.rows[ri as usize];
            let scope = row.in_scope(muni);
            let rq = meet(requesters, &row.requesters);
            let pv = meet(providers, &row.providers);
            let it = row.items.binary_search(&item).is_ok();
            if scope {
                any_in_scope = true;
                req_ok |= rq;
                prov_ok |= rq && pv;
            } else if rq && pv && it && foreign_full.is_none() {
                foreign_full = Some(ri);
            }
            let score = (rq as u8) << 3 | (pv as u8) << 2 | (it as u8) << 1 | scope as u8;
            if score > nearest.0 {
                nearest = (score, ri);
            }
        }
        if let Some(ri) = foreign_full {
            return (Outcome::OtherMunicipality, Some(ri));
        }
        let outcome = if !any_in_scope {
            Outcome::OtherMunicipality
        } else if !req_ok {
            Outcome::RequesterNotEntitled
        } else if !prov_ok {
            Outcome::ProviderNotListed
        } else {
            Outcome::ItemNotListed
        };
        (outcome, Some(nearest.1))
    }

    /// Batch on packed queries `[requester type, affair, provider type, item, municipality]`
    /// per row; writes the outcome code and the matched (allowed) or nearest (denied) row.
    /// `queries` holds five u32 per query; `outcome` and `row` one slot per query.
    pub fn check_batch(&self, queries: &[u32], outcome: &mut [u8], row: &mut [u32]) {
        for ((q, o), r) in queries.chunks_exact(5).zip(outcome.iter_mut()).zip(row.iter_mut()) {
            let (rq, af, pv, it, muni) = (q[0], q[1], q[2], q[3], q[4]);
            let found = if af < (1 << AFFAIR_BITS) && it < (1 << ITEM_BITS) && rq < (1 << TYPE_BITS) && pv < (1 << TYPE_BITS) {
                self.lookup(af, rq, pv, it, muni)
            } else {
                NO_ROW
            };
            if found != NO_ROW {
                *o = Outcome::Allowed as u8;
                *r = found;
            } else {
                let (out, near) = self.explain(&[rq], muni, af, &[pv], it);
                *o = out as u8;
                *r = near.unwrap_or(NO_ROW);
            }
        }
    }
}

fn check_code(code: &str) -> std::result::Result<(), String> {
    if code.is_empty() || code.len() > 16 || !code.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') {
        return Err(format!("code {code:?} must be 1–16 printable ASCII characters"));
    }
    Ok(())
}

/// Everything a check reads, published as one unit.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Sorted by `effective_from`.
    pub versions: Vec<Arc<Version>>,
    pub interner: Arc<Interner>,
}

impl Snapshot {
    /// The version in force at `at` (µs): the one with the latest `effective_from` ≤ `at`,
    /// unless its `effective_until` has passed (then none is; an expired table is not revived).
    pub fn in_force(&self, at: i64) -> Option<&Arc<Version>> {
        let idx = self.versions.partition_point(|v| v.effective_from <= at);
        let v = self.versions.get(idx.checked_sub(1)?)?;
        match v.effective_until {
            Some(u) if at >= u => None,
            _ => Some(v),
        }
    }

    pub fn type_id(&self, name: &str) -> u32 {
        self.interner.types.get(name).copied().unwrap_or(UNKNOWN)
    }
    pub fn type_name(&self, id: u32) -> Option<&str> {
        self.interner.type_names.get(id as usize).map(|s| s.as_str())
    }
    pub fn affair_name(&self, id: u32) -> Option<&str> {
        self.interner.affair_names.get(id as usize).map(|s| s.as_str())
    }
    pub fn item_name(&self, id: u32) -> Option<&str> {
        self.interner.item_names.get(id as usize).map(|s| s.as_str())
    }
}

/// The engine: an atomically swapped snapshot and a lock that serialises writers only.
#[derive(Debug, Default)]
pub struct Engine {
    current: ArcSwap<Snapshot>,
    writer: Mutex<()>,
}

impl Engine {
    pub fn new() -> Engine {
        Engine::default()
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Compile `doc` off the request path and publish it; a version with the same label is
    /// replaced, a different label with the same `effective_from` is refused.
    pub fn load(&self, doc: &Document) -> Result<Arc<Version>> {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let cur = self.current.load_full();
        let mut interner = (*cur.interner).clone();
        let version = Arc::new(Version::compile(doc, &mut interner)?);
        let mut versions: Vec<Arc<Version>> = cur.versions.iter().filter(|v| v.label != version.label).cloned().collect();
        if let Some(clash) = versions.iter().find(|v| v.effective_from == version.effective_from) {
            return Err(Error::InvalidArgument(format!(
                "permission table {:?} takes effect at the same instant as {:?}",
                version.label, clash.label
            )));
        }
        versions.push(version.clone());
        versions.sort_by_key(|v| v.effective_from);
        self.current.store(Arc::new(Snapshot { versions, interner: Arc::new(interner) }));
        Ok(version)
    }

    /// Remove the version `label`; true if there was one.
    pub fn unload(&self, label: &str) -> bool {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let cur = self.current.load_full();
        let versions: Vec<Arc<Version>> = cur.versions.iter().filter(|v| v.label != label).cloned().collect();
        let removed = versions.len() != cur.versions.len();
        self.current.store(Arc::new(Snapshot { versions, interner: cur.interner.clone() }));
        removed
    }
}

#[cfg(test)]
mod tests;
