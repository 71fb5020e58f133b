//! Person-major rows for the densest agencies (national ones: 日本年金機構, 厚生労働大臣 …).
//!
//! A translation between two agencies tests two holdings. With per-agency bitmaps those are two
//! random DRAM accesses per code at national scale (each bitmap is 16 MiB). For up to
//! `MAX_COLUMNS` dense agencies, this index keeps one byte per person whose bit `c` says
//! whether the agency of column `c` holds the person, so a translation between two of them
//! tests both holdings with one access. It is derived from the person sets (kept in step by
//! every change, rebuilt on load), never stored.

use super::set::{advise_huge, prefetch_read, PersonSet};

pub const MAX_COLUMNS: usize = 8;

#[derive(Clone, Default)]
pub struct DenseRows {
    columns: Vec<u32>,
    rows: Vec<u8>,
}

impl DenseRows {
    pub fn column(&self, agency: u32) -> Option<u8> {
        self.columns.iter().position(|&a| a == agency).map(|c| c as u8)
    }

    pub fn has_room(&self) -> bool {
        self.columns.len() < MAX_COLUMNS
    }

    fn ensure(&mut self, person: u32) {
        let need = person as usize + 1;
        if need > self.rows.len() {
            let len = need.max(self.rows.len() + self.rows.len() / 8);
            let mut rows = vec![0u8; len];
            advise_huge(rows.as_ptr(), len);
            rows[..self.rows.len()].copy_from_slice(&self.rows);
            self.rows = rows;
        }
    }

    /// Give `agency` a column filled from its (flat) set.
    pub fn add_column(&mut self, agency: u32, set: &PersonSet) {
        debug_assert!(self.has_room() && self.column(agency).is_none());
        let c = self.columns.len() as u8;
        self.columns.push(agency);
        let words = set.flat_words();
        if let Some(last) = words.iter().rposition(|&w| w != 0) {
            self.ensure((last as u32 + 1) * 64 - 1);
        }
        for (i, &w) in words.iter().enumerate() {
            let mut w = w;
            while w != 0 {
                let p = i * 64 + w.trailing_zeros() as usize;
                self.rows[p] |= 1 << c;
                w &= w - 1;
            }
        }
        debug_assert_eq!(self.rows.iter().filter(|&&r| r & (1 << c) != 0).count() as u64, set.len());
    }

    pub fn set(&mut self, c: u8, person: u32) {
        self.ensure(person);
        self.rows[person as usize] |= 1 << c;
    }

    pub fn clear(&mut self, c: u8, person: u32) {
        if let Some(r) = self.rows.get_mut(person as usize) {
            *r &= !(1 << c);
        }
    }

    /// The rows and the mask of both agencies' columns, when both have one.
    pub fn pair(&self, a: u32, b: u32) -> Option<(&[u8], u8)> {
        Some((&self.rows, (1u8 << self.column(a)?) | (1u8 << self.column(b)?)))
    }

    pub fn heap_bytes(&self) -> usize {
        self.rows.capacity()
    }
}

/// Whether `person` is held by every agency in `mask`.
#[inline(always)]
pub fn all_hold(rows: &[u8], mask: u8, person: u32) -> bool {
    rows.get(person as usize).is_some_and(|&r| r & mask == mask)
}

#[inline(always)]
pub fn prefetch(rows: &[u8], person: u32) {
    if let Some(r) = rows.get(person as usize) {
        prefetch_read((r as *const u8).cast());
    }
}
