//! C2SP tlog-tiles addressing: `tile/<L>/<N>[.p/<W>]` for hash tiles and
//! `tile/entries/<N>[.p/<W>]` for entry bundles. A full tile holds 256 hashes (8,192 bytes);
//! tile `n` at level `l` holds the hashes of the subtrees of 256^l leaves numbered
//! n·256 .. n·256+255. Bundles hold uint16-big-endian length-prefixed entries.

use crate::error::{Error, Result};

pub const TILE_WIDTH: u64 = 256;
pub const TILE_HEIGHT: u32 = 8;

/// `N` as 3-digit path elements, all but the last prefixed with `x` (1234067 → x001/x234/067).
pub fn index_path(n: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    let mut rest = n / 1000;
    while rest > 0 {
        groups.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

fn with_width(base: String, width: u64) -> String {
    if width == TILE_WIDTH { base } else { format!("{base}.p/{width}") }
}

/// Path of hash tile `index` at `level` with `width` hashes (256 = full).
pub fn tile_path(level: u32, index: u64, width: u64) -> String {
    with_width(format!("tile/{level}/{}", index_path(index)), width)
}

/// Path of entry bundle `index` with `width` entries (256 = full).
pub fn bundle_path(index: u64, width: u64) -> String {
    with_width(format!("tile/entries/{}", index_path(index)), width)
}

/// Number of hashes (subtrees of 256^level leaves) at `level` for a tree of `size`.
pub fn level_count(size: u64, level: u32) -> u64 {
    if level >= 8 { 0 } else { size >> (TILE_HEIGHT * level) }
}

/// (full tiles, width of the partial tile or 0) at `level` for `size`.
pub fn level_tiles(size: u64, level: u32) -> (u64, u64) {
    let n = level_count(size, level);
    (n / TILE_WIDTH, n % TILE_WIDTH)
}

/// Highest tile level that holds anything for `size` (0 for an empty tree).
pub fn top_level(size: u64) -> u32 {
    let mut l = 0;
    while level_count(size, l + 1) > 0 {
        l += 1;
    }
    l
}

/// Split a bundle into its entries; `Err(offset)` where it stops parsing.
pub fn split_bundle(data: &[u8]) -> std::result::Result<Vec<&[u8]>, usize> {
    let mut out = Vec::with_capacity(TILE_WIDTH as usize);
    let mut at = 0;
    while at < data.len() {
        if at + 2 > data.len() {
            return Err(at);
        }
        let len = u16::from_be_bytes([data[at], data[at + 1]]) as usize;
        if at + 2 + len > data.len() {
            return Err(at);
        }
        out.push(&data[at + 2..at + 2 + len]);
        at += 2 + len;
    }
    Ok(out)
}

pub fn check_entry_len(len: usize) -> Result<()> {
    if len > u16::MAX as usize {
        return Err(Error::InvalidArgument(format!("entry of {len} bytes exceeds the 65,535-byte bundle limit")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_per_spec() {
        assert_eq!(index_path(1234067), "x001/x234/067");
        assert_eq!(index_path(0), "000");
        assert_eq!(index_path(1000), "x001/000");
        assert_eq!(tile_path(0, 5, 256), "tile/0/005");
        assert_eq!(tile_path(1, 1234067, 17), "tile/1/x001/x234/067.p/17");
        assert_eq!(bundle_path(3, 12), "tile/entries/003.p/12");
    }

    #[test]
    fn spec_example_70000() {
        assert_eq!(level_tiles(70_000, 0), (273, 112));
        assert_eq!(level_tiles(70_000, 1), (1, 17));
        assert_eq!(level_tiles(70_000, 2), (0, 1));
        assert_eq!(top_level(70_000), 2);
    }

    #[test]
    fn bundle_split() {
        assert_eq!(split_bundle(&[0, 1, 9, 0, 0]).unwrap(), vec![&[9u8][..], &[][..]]);
        assert_eq!(split_bundle(&[0, 2, 9]), Err(0));
    }
}
