use super::merkle::*;
use super::*;

fn claims(body: Body) -> Claims {
    Claims {
        permit_id: [7u8; 12],
        requester: "6000012070001".into(),
        provider: "8000020131016".into(),
        affair: "JT01010000000101".into(),
        table_version: [0xAB; 16],
        ledger_seq: 123_456_789_012,
        issued_at: 1_764_000_000,
        expires_at: 1_764_000_300,
        body,
    }
}

fn single() -> Claims {
    claims(Body::Single { person: [0xFF; 16], items: vec!["TM01010000000101".into()] })
}

#[test]
fn pae_matches_the_spec_vectors() {
    // From the PASETO spec (docs/01-Protocol-Versions/Common.md).
    assert_eq!(pae(&[]), b"\x00\x00\x00\x00\x00\x00\x00\x00");
    assert_eq!(pae(&[b""]), b"\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00");
    assert_eq!(
        pae(&[b"test"]),
        b"\x01\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00test"
    );
}

#[test]
fn sign_verify_and_every_defect() {
    let s = PermitSigner::from_seed(&[1u8; 32]).unwrap();
    let v = PermitVerifier::new(&s.public_key()).unwrap();
    let tok = s.sign(&single()).unwrap();
    assert!(tok.len() <= 400, "{} bytes", tok.len());
    eprintln!("single-item permit: {} bytes: {tok}", tok.len());
    assert_eq!(v.verify(&tok, 1_764_000_000).unwrap(), single());
    let defect = |r: Result<Claims>| match r {
        Err(Error::PermitRejected(d)) => d,
        other => panic!("{other:?}"),
    };
    assert_eq!(defect(v.verify(&tok, 1_764_000_300)), PermitDefect::Expired);
    let other = PermitSigner::from_seed(&[2u8; 32]).unwrap();
    assert_eq!(defect(v.verify(&other.sign(&single()).unwrap(), 0)), PermitDefect::WrongKey);
    // Flip one bit anywhere in the signed part.
    let (_, rest) = tok.split_at(HEADER.len());
    let (payload, footer) = rest.split_once('.').unwrap();
    let mut body = B64.decode(payload).unwrap();
    for i in [0, body.len() / 2, body.len() - 1] {
        body[i] ^= 1;
        let t = format!("{HEADER}{}.{footer}", B64.encode(&body));
        assert_eq!(defect(v.verify(&t, 0)), PermitDefect::Tampered);
        body[i] ^= 1;
    }
    for bad in ["", "v4.public.", "v4.local.abc.def", &tok[..tok.len() - 1], &tok.replace('.', "")] {
        assert!(matches!(defect(v.verify(bad, 0)), PermitDefect::Malformed | PermitDefect::WrongKey), "{bad}");
    }
    let cache = ReplayCache::new();
    let c = v.verify(&tok, 0).unwrap();
    cache.admit(&c, 0, 0).unwrap();
    assert_eq!(defect(cache.admit(&c, 0, 1).map(|_| c.clone())), PermitDefect::Replayed);
    cache.admit(&c, 0, 1_764_000_300).unwrap(); // expired entries are forgotten
}

#[test]
fn crockford_round_trip() {
    for b in [[0u8; 16], [0xFF; 16], *b"0123456789abcdef"] {
        assert_eq!(crockford_decode(&crockford_encode(&b)), Some(b));
    }
    assert_eq!(crockford_encode(&[0xFF; 16]), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
    assert_eq!(crockford_decode("8ZZZZZZZZZZZZZZZZZZZZZZZZZ"), None);
}

fn mth(leaves: &[Vec<u8>]) -> [u8; 32] {
    if leaves.len() == 1 {
        return leaf_hash(&leaves[0]);
    }
    let k = 1usize << (usize::BITS - 1 - (leaves.len() - 1).leading_zeros());
    node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
}

#[test]
fn merkle_matches_rfc6962_and_proofs_verify() {
    for n in 1..40usize {
        let leaves: Vec<Vec<u8>> = (0..n).map(|i| batch_leaf(i as u64, &[i as u8; 16], &["TM1"]).unwrap()).collect();
        let lv = levels(leaves.iter().map(|l| leaf_hash(l)).collect());
        let r = root(&lv).unwrap();
        assert_eq!(r, mth(&leaves), "n={n}");
        for i in 0..n {
            let p = proof(&lv, i);
            assert!(verify_inclusion(&leaves[i], i as u64, n as u64, &p, &r));
            assert!(!verify_inclusion(&leaves[(i + 1) % n], i as u64, n as u64, &p, &r) || n == 1);
        }
    }
}

#[test]
fn batch_permit_items() {
    let s = PermitSigner::from_seed(&[3u8; 32]).unwrap();
    let v = PermitVerifier::new(&s.public_key()).unwrap();
    let leaves: Vec<Vec<u8>> = (0..5u64).map(|i| batch_leaf(i, &[i as u8; 16], &["TM01", "TM02"]).unwrap()).collect();
    let lv = levels(leaves.iter().map(|l| leaf_hash(l)).collect());
    let tok = s.sign(&claims(Body::Batch { count: 5, root: root(&lv).unwrap() })).unwrap();
    for (i, leaf) in leaves.iter().enumerate() {
        v.verify_batch_item(&tok, 0, i as u64, leaf, &proof(&lv, i)).unwrap();
    }
    let forged = batch_leaf(2, &[9u8; 16], &["TM01", "TM02"]).unwrap();
    assert!(matches!(v.verify_batch_item(&tok, 0, 2, &forged, &proof(&lv, 2)), Err(Error::PermitRejected(PermitDefect::NotInBatch))));
    assert!(matches!(v.verify_batch_item(&tok, 0, 5, &leaves[0], &[]), Err(Error::PermitRejected(PermitDefect::NotInBatch))));
}
