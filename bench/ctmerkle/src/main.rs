//! Reads packed records (u16 big-endian length, then the bytes; the ledger's packed form) and
//! proof indices (u64 little-endian) from two files, builds ct-merkle's in-memory RFC 6962 tree
//! of the records and prints one JSON line: append and proof rates and the root, so the caller
//! can check that both implementations built the same tree.
use std::time::Instant;

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use sha2::Sha256;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: renkei-ctmerkle-bench <packed records> <u64 indices>");
        std::process::exit(2);
    }
    let packed = std::fs::read(&args[1]).expect("read records");
    let raw_idx = std::fs::read(&args[2]).expect("read indices");
    let mut records: Vec<Vec<u8>> = Vec::new();
    let mut off = 0;
    while off + 2 <= packed.len() {
        let n = u16::from_be_bytes([packed[off], packed[off + 1]]) as usize;
        records.push(packed[off + 2..off + 2 + n].to_vec());
        off += 2 + n;
    }
    let indices: Vec<usize> = raw_idx
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()) as usize)
        .collect();

    let count = records.len();
    let start = Instant::now();
    let mut tree = MemoryBackedTree::<Sha256, Vec<u8>>::new();
    for r in records {
        tree.push(r);
    }
    let root = tree.root();
    let append_s = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let mut bytes = 0usize;
    for &i in &indices {
        bytes += tree.prove_inclusion(i).as_bytes().len();
    }
    let proof_s = start.elapsed().as_secs_f64();
    let hex: String = root.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    println!(
        "{{\"records\": {count}, \"append_rate\": {:.1}, \"proofs\": {}, \"proof_rate\": {:.1}, \"proof_bytes\": {bytes}, \"root\": \"{hex}\"}}",
        count as f64 / append_s,
        indices.len(),
        indices.len() as f64 / proof_s
    );
}
