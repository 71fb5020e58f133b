//! The Merkle tree of RFC 6962 §2.1 / RFC 9162 §2.1: SHA-256, leaf = H(0x00‖d), node =
//! H(0x01‖l‖r), no padding. Proof generation works over any source of complete-subtree
//! hashes (`NodeSource`), so the same code serves the in-memory tree and the tile store.
//! Verification follows RFC 9162 §2.1.3.2 / §2.1.4.2 plus the extra checks the conformance
//! vectors demand (32-byte hashes, size1 == size2, size1 == 0 rejected).

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub type Hash = [u8; 32];

/// SHA-256 of the empty string: the root of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest(b"").into()
}

pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = 1;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    Sha256::digest(buf).into()
}

/// Largest power of two strictly below `n` (n ≥ 2).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Hash of the complete subtree at `level` (2^level leaves) number `index`.
pub trait NodeSource {
    fn node(&self, level: u32, index: u64) -> Result<Hash>;
}

/// MTH(D[lo:hi]) from complete-subtree hashes, where [lo, hi) is a range the RFC recursion
/// produces (lo aligned to the largest power of two ≤ hi − lo).
pub fn range_hash<S: NodeSource + ?Sized>(src: &S, lo: u64, hi: u64) -> Result<Hash> {
    if hi <= lo {
        return Err(Error::InvalidArgument("empty range has no subtree hash".into()));
    }
    // Decompose into aligned power-of-two pieces, largest first, then fold right to left.
    let mut pieces: Vec<Hash> = Vec::with_capacity(64);
    let mut at = lo;
    while at < hi {
        let rem = hi - at;
        let mut level = 63 - rem.leading_zeros();
        if at != 0 {
            level = level.min(at.trailing_zeros());
        }
        pieces.push(src.node(level, at >> level)?);
        at += 1u64 << level;
    }
    let mut acc = pieces.pop().expect("non-empty range");
    while let Some(left) = pieces.pop() {
        acc = node_hash(&left, &acc);
    }
    Ok(acc)
}

/// Root hash of the first `size` leaves.
pub fn root<S: NodeSource + ?Sized>(src: &S, size: u64) -> Result<Hash> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(src, 0, size)
}

/// Inclusion proof (RFC 9162 §2.1.3.1) of leaf `index` in the tree of `size` leaves.
pub fn inclusion_proof<S: NodeSource + ?Sized>(src: &S, index: u64, size: u64) -> Result<Vec<Hash>> {
    if index >= size {
        return Err(Error::InvalidArgument(format!("leaf {index} is not in a tree of size {size}")));
    }
    let mut path = Vec::with_capacity(64);
    let (mut lo, mut n, mut m) = (0u64, size, index);
    while n > 1 {
        let k = split_point(n);
        if m < k {
            path.push(range_hash(src, lo + k, lo + n)?);
            n = k;
        } else {
            path.push(src.node(k.trailing_zeros(), lo >> k.trailing_zeros())?);
            lo += k;
            m -= k;
            n -= k;
        }
    }
    path.reverse();
    Ok(path)
}

/// Consistency proof (RFC 9162 §2.1.4.1) between trees of `size1` and `size2` leaves.
pub fn consistency_proof<S: NodeSource + ?Sized>(src: &S, size1: u64, size2: u64) -> Result<Vec<Hash>> {
    if size1 == 0 || size1 > size2 {
        return Err(Error::InvalidArgument(format!(
            "no consistency proof from size {size1} to size {size2}: need 0 < size1 <= size2"
        )));
    }
    let mut path = Vec::with_capacity(64);
    if size1 == size2 {
        return Ok(path);
    }
    let (mut lo, mut n, mut m, mut whole) = (0u64, size2, size1, true);
    loop {
        if m == n {
            if !whole {
                path.push(range_hash(src, lo, lo + n)?);
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            path.push(range_hash(src, lo + k, lo + n)?);
            n = k;
        } else {
            path.push(src.node(k.trailing_zeros(), lo >> k.trailing_zeros())?);
            lo += k;
            m -= k;
            n -= k;
            whole = false;
        }
    }
    path.reverse();
    Ok(path)
}

fn as_hash(bytes: &[u8], what: &str) -> Result<Hash> {
    bytes
        .try_into()
        .map_err(|_| Error::ProofInvalid(format!("{what} is {} bytes, expected 32", bytes.len())))
}

/// Verify an inclusion proof; `Ok(())` only when it proves `leaf` at `index` under `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &[u8], proof: &[&[u8]], root: &[u8]) -> Result<()> {
    let leaf = as_hash(leaf, "leaf hash")?;
    let root = as_hash(root, "root hash")?;
    if index >= size {
        return Err(Error::ProofInvalid(format!("index {index} is not below tree size {size}")));
    }
    let (mut fnode, mut snode, mut r) = (index, size - 1, leaf);
    for p in proof {
        let p = as_hash(p, "proof node")?;
        if snode == 0 {
            return Err(Error::ProofInvalid("inclusion proof is too long".into()));
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(&p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, &p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(Error::ProofInvalid("inclusion proof is too short".into()));
    }
    if r != root {
        return Err(Error::ProofInvalid("inclusion proof does not lead to the root".into()));
    }
    Ok(())
}

/// Verify a consistency proof between (size1, root1) and (size2, root2).
pub fn verify_consistency(size1: u64, size2: u64, root1: &[u8], root2: &[u8], proof: &[&[u8]]) -> Result<()> {
    if size1 == 0 {
        return Err(Error::ProofInvalid("a consistency proof from the empty tree is meaningless".into()));
    }
    if size1 > size2 {
        return Err(Error::ProofInvalid(format!("size1 {size1} is larger than size2 {size2}")));
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(Error::ProofInvalid("proof between equal sizes must be empty".into()));
        }
        if root1 != root2 {
            return Err(Error::ProofInvalid("equal sizes with different roots".into()));
        }
        return Ok(());
    }
    let h1 = as_hash(root1, "root1")?;
    let h2 = as_hash(root2, "root2")?;
    if proof.is_empty() {
        return Err(Error::ProofInvalid("consistency proof is empty".into()));
    }
    let mut nodes: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        nodes.push(h1);
    }
    for p in proof {
        nodes.push(as_hash(p, "proof node")?);
    }
    let (mut fnode, mut snode) = (size1 - 1, size2 - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (nodes[0], nodes[0]);
    for c in &nodes[1..] {
        if snode == 0 {
            return Err(Error::ProofInvalid("consistency proof is too long".into()));
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(Error::ProofInvalid("consistency proof is too short".into()));
    }
    if fr != h1 || sr != h2 {
        return Err(Error::ProofInvalid("consistency proof does not lead to both roots".into()));
    }
    Ok(())
}

/// An in-memory tree: every level kept. For tests, tools and small logs.
#[derive(Default, Clone)]
pub struct MemTree {
    levels: Vec<Vec<Hash>>,
}

impl MemTree {
    pub fn new() -> Self {
        MemTree { levels: vec![Vec::new()] }
    }

    pub fn size(&self) -> u64 {
        self.levels[0].len() as u64
    }

    pub fn push_leaf_hash(&mut self, h: Hash) {
        self.levels[0].push(h);
        let mut level = 0;
        while self.levels[level].len() % 2 == 0 {
            let n = self.levels[level].len();
            let parent = node_hash(&self.levels[level][n - 2], &self.levels[level][n - 1]);
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[level + 1].push(parent);
            level += 1;
        }
    }

    pub fn push(&mut self, entry: &[u8]) {
        self.push_leaf_hash(leaf_hash(entry));
    }

    pub fn root(&self) -> Hash {
        root(self, self.size()).expect("complete nodes are all present")
    }
}

impl NodeSource for MemTree {
    fn node(&self, level: u32, index: u64) -> Result<Hash> {
        self.levels
            .get(level as usize)
            .and_then(|l| l.get(index as usize))
            .copied()
            .ok_or_else(|| Error::InvalidArgument(format!("no complete node at level {level} index {index}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recursive definition, straight from the RFC.
    fn mth(d: &[Vec<u8>]) -> Hash {
        match d.len() {
            0 => empty_root(),
            1 => leaf_hash(&d[0]),
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&mth(&d[..k]), &mth(&d[k..]))
            }
        }
    }

    fn leaves(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| (i as u32).to_be_bytes().to_vec()).collect()
    }

    #[test]
    fn reference_root_size_8() {
        let d: Vec<Vec<u8>> = vec![
            vec![],
            vec![0x00],
            vec![0x10],
            vec![0x20, 0x21],
            vec![0x30, 0x31],
            vec![0x40, 0x41, 0x42, 0x43],
            vec![0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            (0x60..=0x6f).collect(),
        ];
        let mut t = MemTree::new();
        for e in &d {
            t.push(e);
        }
        assert_eq!(hex::encode(t.root()), "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328");
        assert_eq!(hex::encode(empty_root()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn proofs_round_trip_against_recursive_definition() {
        let d = leaves(70);
        let mut t = MemTree::new();
        for e in &d {
            t.push(e);
        }
        for size in 1..=70u64 {
            let r = mth(&d[..size as usize]);
            assert_eq!(root(&t, size).unwrap(), r);
            for i in 0..size {
                let p = inclusion_proof(&t, i, size).unwrap();
                let refs: Vec<&[u8]> = p.iter().map(|h| &h[..]).collect();
                verify_inclusion(i, size, &leaf_hash(&d[i as usize]), &refs, &r).unwrap();
                assert!(verify_inclusion(i, size, &leaf_hash(b"other"), &refs, &r).is_err());
            }
            for s1 in 1..=size {
                let p = consistency_proof(&t, s1, size).unwrap();
                let refs: Vec<&[u8]> = p.iter().map(|h| &h[..]).collect();
                let r1 = mth(&d[..s1 as usize]);
                verify_consistency(s1, size, &r1, &r, &refs).unwrap();
                if s1 < size {
                    assert!(verify_consistency(s1, size, &r, &r1, &refs).is_err());
                }
            }
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        let h = [0u8; 32];
        assert!(verify_inclusion(0, 1, &h[..31], &[], &h).is_err());
        assert!(verify_inclusion(1, 1, &h, &[], &h).is_err());
        assert!(verify_consistency(0, 0, &h, &h, &[]).is_err());
        assert!(verify_consistency(1, 1, b"a", b"a", &[]).is_ok());
        let t = MemTree::new();
        assert!(inclusion_proof(&t, 0, 0).is_err());
        assert!(consistency_proof(&t, 0, 1).is_err());
        // u64 boundary: proof of the last leaf of a huge tree is only shape-checked.
        assert!(verify_inclusion(u64::MAX - 1, u64::MAX, &h, &[], &h).is_err());
    }
}
