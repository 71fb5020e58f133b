//! The batch permit's item tree: RFC 6962 / RFC 9162 Merkle hashing (SHA-256, 0x00 leaf and
//! 0x01 node prefixes), built bottom-up (an unpaired last node moves up unchanged, which gives
//! the RFC's left-balanced tree), with inclusion proofs verified by RFC 9162 §2.1.3.2.

use sha2::{Digest, Sha256};

pub fn leaf_hash(leaf: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

pub fn node_hash(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(l);
    h.update(r);
    h.finalize().into()
}

/// The canonical leaf of batch item `index`: u64be(index) ‖ person code (16 bytes) ‖
/// u8(item count) ‖ per item u8(len) ‖ ASCII code.
pub fn batch_leaf(index: u64, person: &[u8; 16], items: &[&str]) -> Option<Vec<u8>> {
    if items.is_empty() || items.len() > 255 {
        return None;
    }
    let mut out = Vec::with_capacity(25 + items.iter().map(|s| s.len() + 1).sum::<usize>());
    out.extend_from_slice(&index.to_be_bytes());
    out.extend_from_slice(person);
    out.push(items.len() as u8);
    for it in items {
        if it.is_empty() || it.len() > 32 {
            return None;
        }
        out.push(it.len() as u8);
        out.extend_from_slice(it.as_bytes());
    }
    Some(out)
}

/// All levels of the tree over `leaf_hashes` (level 0 = the leaves); the last level is the root.
pub fn levels(leaf_hashes: Vec<[u8; 32]>) -> Vec<Vec<[u8; 32]>> {
    let mut levels = vec![leaf_hashes];
    while levels.last().map(|l| l.len()).unwrap_or(0) > 1 {
        let prev = levels.last().expect("non-empty");
        let next: Vec<[u8; 32]> = prev.chunks(2).map(|c| if c.len() == 2 { node_hash(&c[0], &c[1]) } else { c[0] }).collect();
        levels.push(next);
    }
    levels
}

pub fn root(levels: &[Vec<[u8; 32]>]) -> Option<[u8; 32]> {
    levels.last().and_then(|l| l.first()).copied()
}

/// The inclusion proof of leaf `index`, leaf side first.
pub fn proof(levels: &[Vec<[u8; 32]>], mut index: usize) -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    for level in &levels[..levels.len().saturating_sub(1)] {
        let sib = index ^ 1;
        if sib < level.len() {
            out.push(level[sib]);
        }
        index >>= 1;
    }
    out
}

pub fn verify_inclusion(leaf: &[u8], index: u64, size: u64, proof: &[[u8; 32]], root: &[u8; 32]) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = leaf_hash(leaf);
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && &r == root
}
