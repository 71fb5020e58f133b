use super::*;
use crate::ledger::Ledger;
use crate::codes::Epochs;
use crate::permissions::Document;
use crate::permits::{PermitVerifier, Body};

const TABLE: &str = r#"{"format":"renkei-permissions/1","label":"t1","effective_from":"2017-11-13T00:00:00+09:00",
  "agency_types":[{"id":"mhlw","name":"厚生労働大臣"},{"id":"mayor","name":"市町村長"}],
  "affairs":[{"id":"a1","code":"B2.1","ko":"1","name":"健康保険"}],
  "items":[{"id":"tax","code":"B2.1.2.1","name":"地方税関係情報"}],
  "rows":[{"ref":"B2.1.2","ko":"1","affair":"a1","requesters":["mhlw"],"providers":["mayor"],"items":["tax"]}]}"#;

struct Fixture {
    _dir: tempfile::TempDir,
    codes: CodeEngine,
    perms: PermissionEngine,
    signer: PermitSigner,
    ledger: Ledger,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let codes = CodeEngine::create(&[7u8; 32], dir.path().join("holdings"), Epochs::new(1, &[1]).unwrap(), 1 << 30).unwrap();
    let perms = PermissionEngine::new();
    perms.load(&Document::from_json(TABLE.as_bytes()).unwrap()).unwrap();
    let signer = PermitSigner::from_seed(&[9u8; 32]).unwrap();
    std::fs::create_dir(dir.path().join("ledger")).unwrap();
    let ledger = Ledger::open(dir.path().join("ledger"), "test.example/ledger", &[3u8; 32]).unwrap();
    Fixture { _dir: dir, codes, perms, signer, ledger }
}

impl Fixture {
    fn path(&self) -> InquiryPath<'_> {
        InquiryPath { codes: &self.codes, permissions: &self.perms, signer: &self.signer, ledger: &self.ledger, pseudonym_key: b"pseudonym key" }
    }
    fn acquire(&self, agency: u32, persons: &[u32]) -> Vec<u8> {
        let mut out = vec![0u8; persons.len() * CODE_LEN];
        self.codes.acquire(agency, persons, &mut out).unwrap();
        out
    }
}

fn parties() -> (Party, Party) {
    (Party { id: 1, types: vec!["mhlw".into()], municipality: 0 }, Party { id: 2, types: vec!["mayor".into()], municipality: 131016 })
}

#[test]
fn hmac_matches_rfc4231_case_2() {
    let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
    assert_eq!(hex::encode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

#[test]
fn permitted_inquiry_records_then_signs() {
    let f = fixture();
    let (rq, pv) = parties();
    let code: Code = f.acquire(1, &[42]).try_into().unwrap();
    let theirs: Code = f.acquire(2, &[42]).try_into().unwrap();
    let items = vec!["tax".to_string()];
    let req = Request { requester: &rq, provider: &pv, affair: "a1", items: &items, lifetime_s: 300, refusal: None, withheld_until: None, delegator: None };
    let a = f.path().inquire(&req, &code).unwrap();
    assert_eq!(a.outcome, PERMITTED);
    assert_eq!(a.provider_code, theirs);
    let claims = PermitVerifier::new(&f.signer.public_key()).unwrap().verify(a.permit.as_deref().unwrap(), a.expires_at - 1).unwrap();
    assert_eq!(claims.ledger_seq, a.record_seq);
    assert_eq!(claims.affair, "B2.1");
    assert_eq!(claims.body, Body::Single { person: theirs, items: vec!["B2.1.2.1".into()] });
    let rec = f.ledger.store().record(a.record_seq).unwrap().unwrap();
    assert_eq!(rec.outcome, RecordOutcome::Permitted);
    assert_eq!(&rec.permit_id[..12], &claims.permit_id);
    assert_eq!(rec.pseudonym, pseudonym(b"pseudonym key", 42));
    assert_eq!((rec.requester, rec.provider, rec.affair.as_str()), (1, 2, "B2.1"));
    let (body, sig, kid) = wire_parts(a.permit.as_deref().unwrap()).unwrap();
    use ed25519_dalek::Verifier as _;
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&f.signer.public_key()).unwrap();
    vk.verify(&body, &ed25519_dalek::Signature::from_slice(&sig).unwrap()).unwrap();
    assert!(a.permit.as_deref().unwrap().ends_with(&format!(".{kid}")));
}

#[test]
fn refusals_are_uniform_and_recorded() {
    let f = fixture();
    let (rq, pv) = parties();
    let mine = f.acquire(1, &[1, 2]);
    let other_agency = f.acquire(3, &[1]);
    f.acquire(2, &[1]);
    let mut forged = mine[..16].to_vec();
    forged[5] ^= 1;
    let items = vec!["tax".to_string()];
    let req = Request { requester: &rq, provider: &pv, affair: "a1", items: &items, lifetime_s: 300, refusal: None, withheld_until: None, delegator: None };
    // forged, another agency's, provider not holding person 2, permitted
    let codes = [forged.as_slice(), &other_agency, &mine[16..32], &mine[..16]].concat();
    let b = f.path().batch_inquire(&req, &codes, usize::MAX).unwrap();
    assert_eq!(b.outcomes, vec![CODE_REFUSED, CODE_REFUSED, PROVIDER_NOT_HOLDING, PERMITTED]);
    assert!(b.provider_codes[..48].iter().all(|&x| x == 0));
    assert_eq!(f.ledger.store().size(), 4);
    for (i, want) in [CODE_REFUSED, CODE_REFUSED, PROVIDER_NOT_HOLDING].into_iter().enumerate() {
        let rec = f.ledger.store().record(b.first_seq + i as u64).unwrap().unwrap();
        assert!(matches!(rec.outcome, RecordOutcome::Denied { code, .. } if code == want as u16));
    }
    // released code: refused the same way
    let mut st = [0u8; 1];
    f.codes.release(1, &mine[..16], &mut st).unwrap();
    let a = f.path().inquire(&req, mine[..16].try_into().unwrap()).unwrap();
    assert_eq!((a.outcome, a.permit.is_none()), (CODE_REFUSED, true));
    assert_eq!(a.reason, "CODE_REFUSED");
}

#[test]
fn row_not_in_table_is_denied_and_recorded() {
    let f = fixture();
    let (rq, pv) = parties();
    let code: Code = f.acquire(2, &[5]).try_into().unwrap();
    f.acquire(1, &[5]);
    let items = vec!["tax".to_string()];
    // the mayor may not ask the minister under a1
    let req = Request { requester: &pv, provider: &rq, affair: "a1", items: &items, lifetime_s: 300, refusal: None, withheld_until: None, delegator: None };
    let a = f.path().inquire(&req, &code).unwrap();
    assert_eq!(a.outcome, ROW_NOT_PERMITTED);
    assert!(a.reason.starts_with("requester_not_entitled"), "{}", a.reason);
    let rec = f.ledger.store().record(a.record_seq).unwrap().unwrap();
    assert_eq!(rec.pseudonym, pseudonym(b"pseudonym key", 5));
    assert!(matches!(rec.outcome, RecordOutcome::Denied { code: 4, .. }));
}

#[test]
fn batch_permit_covers_every_item() {
    let f = fixture();
    let (rq, pv) = parties();
    let persons: Vec<u32> = (0..300).collect();
    let mine = f.acquire(1, &persons);
    let theirs = f.acquire(2, &persons);
    let items = vec!["B2.1.2.1".to_string()];
    let req = Request { requester: &rq, provider: &pv, affair: "B2.1", items: &items, lifetime_s: 60, refusal: None, withheld_until: None, delegator: None };
    let b = f.path().batch_inquire(&req, &mine, usize::MAX).unwrap();
    assert!(b.outcomes.iter().all(|&o| o == PERMITTED));
    assert_eq!(b.provider_codes, theirs);
    let tok = b.permit.unwrap();
    let v = PermitVerifier::new(&f.signer.public_key()).unwrap();
    let claims = v.verify(&tok, b.expires_at - 1).unwrap();
    assert_eq!(claims.ledger_seq, b.first_seq);
    let leaves: Vec<[u8; 32]> = theirs
        .chunks_exact(16)
        .enumerate()
        .map(|(i, c)| merkle::leaf_hash(&merkle::batch_leaf(i as u64, c.try_into().unwrap(), &["B2.1.2.1"]).unwrap()))
        .collect();
    let levels = merkle::levels(leaves);
    let leaf = merkle::batch_leaf(7, theirs[7 * 16..8 * 16].try_into().unwrap(), &["B2.1.2.1"]).unwrap();
    v.verify_batch_item(&tok, b.expires_at - 1, 7, &leaf, &merkle::proof(&levels, 7)).unwrap();
    assert_eq!(f.ledger.store().size(), 300);
    let store = f.ledger.store();
    let scanned = store.entries(3, 300).unwrap();
    assert_eq!(scanned.len(), 297);
    for (i, e) in scanned.iter().enumerate() {
        assert_eq!(e.as_ref(), store.entry(3 + i as u64).unwrap().as_ref());
    }
    assert!(store.entries(0, 301).is_err());
}

#[test]
fn bad_requests_are_refused_before_recording() {
    let f = fixture();
    let (rq, pv) = parties();
    let items: Vec<String> = vec![];
    let req = Request { requester: &rq, provider: &pv, affair: "a1", items: &items, lifetime_s: 60, refusal: None, withheld_until: None, delegator: None };
    assert!(f.path().batch_inquire(&req, &[0u8; 16], usize::MAX).is_err());
    let items = vec!["tax".to_string()];
    let req = Request { requester: &rq, provider: &pv, affair: "a1", items: &items, lifetime_s: 60, refusal: None, withheld_until: None, delegator: None };
    assert!(f.path().batch_inquire(&req, &[0u8; 15], usize::MAX).is_err());
    assert!(f.path().batch_inquire(&req, &[], usize::MAX).is_err());
    assert_eq!(f.ledger.store().size(), 0);
}

#[test]
fn many_inquiries_share_one_commit_and_keep_their_own_answers() {
    let f = fixture();
    let (rq, pv) = parties();
    let mine = f.acquire(1, &[1, 2, 3]);
    f.acquire(2, &[1, 3]);
    let items = vec!["tax".to_string()];
    let none: Vec<String> = vec![];
    let ok = Request { requester: &rq, provider: &pv, affair: "a1", items: &items, lifetime_s: 300, refusal: None, withheld_until: None, delegator: None };
    let bad = Request { requester: &rq, provider: &pv, affair: "a1", items: &none, lifetime_s: 300, refusal: None, withheld_until: None, delegator: None };
    let code = |i: usize| -> Code { mine[i * 16..(i + 1) * 16].try_into().unwrap() };
    let answers = f.path().inquire_many(&[(ok.clone(), code(0)), (bad, code(0)), (ok.clone(), code(1)), (ok, code(2))]);
    let a0 = answers[0].as_ref().unwrap();
    assert!(answers[1].is_err());
    let a2 = answers[2].as_ref().unwrap();
    let a3 = answers[3].as_ref().unwrap();
    assert_eq!((a0.outcome, a2.outcome, a3.outcome), (PERMITTED, PROVIDER_NOT_HOLDING, PERMITTED));
    assert_eq!((a0.record_seq, a2.record_seq, a3.record_seq), (0, 1, 2));
    assert_eq!(f.ledger.store().size(), 3);
    let v = PermitVerifier::new(&f.signer.public_key()).unwrap();
    assert_eq!(v.verify(a3.permit.as_deref().unwrap(), a3.expires_at - 1).unwrap().ledger_seq, 2);
}


#[test]
fn refusals_before_the_table_are_recorded_for_every_item() {
    let f = fixture();
    let (rq, _) = parties();
    let code: Code = f.acquire(1, &[42]).try_into().unwrap();
    let items = vec!["tax".to_string()];
    // An unknown provider: no types, refused before the table, recorded all the same.
    let unknown = Party { id: 77, types: vec![], municipality: 0 };
    let why = Refusal { outcome: PROVIDER_UNAVAILABLE, reason: "provider 77: no such agency".into() };
    let req = Request { requester: &rq, provider: &unknown, affair: "a1", items: &items, lifetime_s: 60, refusal: Some(&why), withheld_until: None, delegator: None };
    let before = f.ledger.store().size();
    let a = f.path().inquire(&req, &code).unwrap();
    assert_eq!((a.outcome, a.reason.as_str(), a.permit.is_none()), (PROVIDER_UNAVAILABLE, "PROVIDER_UNAVAILABLE", true));
    assert_eq!(a.provider_code, [0; 16]);
    assert_eq!(f.ledger.store().size(), before + 1);
    let rec = f.ledger.store().records(a.record_seq, a.record_seq + 1).unwrap().remove(0).unwrap();
    assert_eq!(rec.outcome, RecordOutcome::Denied { code: PROVIDER_UNAVAILABLE as u16, reason: "provider 77: no such agency".into() });
    assert_eq!(rec.pseudonym, pseudonym(b"pseudonym key", 42), "the person is named when the code is valid");
    // A batch refused the same way: every item recorded with the refusal, no permit.
    let codes = [code, [5u8; 16]].concat();
    let b = f.path().batch_inquire(&req, &codes, usize::MAX).unwrap();
    assert_eq!(b.outcomes, vec![PROVIDER_UNAVAILABLE; 2]);
    assert!(b.permit.is_none());
    // Without a refusal an agency without types is malformed; a refusal must be one of the three.
    let plain = Request { refusal: None, ..req.clone() };
    assert!(matches!(f.path().inquire(&plain, &code), Err(Error::InvalidArgument(_))));
    let odd = Refusal { outcome: PERMITTED, reason: String::new() };
    let bad = Request { refusal: Some(&odd), ..req.clone() };
    assert!(matches!(f.path().inquire(&bad, &code), Err(Error::InvalidArgument(_))));
}

#[test]
fn a_batch_beyond_the_denial_budget_records_nothing() {
    let f = fixture();
    let (rq, pv) = parties();
    let mine = f.acquire(1, &[1, 2, 3]);
    f.acquire(2, &[1]);
    let items = vec!["tax".to_string()];
    let req = Request { requester: &rq, provider: &pv, affair: "a1", items: &items, lifetime_s: 60, refusal: None, withheld_until: None, delegator: None };
    let forged = vec![9u8; 16 * 5];
    let codes = [mine.clone(), forged].concat();
    let before = f.ledger.store().size();
    // 2 not held by the provider + 5 forged = 7 denials.
    match f.path().batch_inquire(&req, &codes, 6) {
        Err(Error::RateLimited(m)) => assert!(m.contains("7 denials") && m.contains("6 more"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(f.ledger.store().size(), before, "nothing recorded");
    let b = f.path().batch_inquire(&req, &codes, 7).unwrap();
    assert_eq!(b.outcomes.iter().filter(|&&o| o != PERMITTED).count(), 7);
    assert_eq!(f.ledger.store().size(), before + 8);
}

#[test]
fn terms_are_recorded_and_the_inquiry_record_comes_back_for_its_provision() {
    let f = fixture();
    let (rq, pv) = parties();
    let code: Code = f.acquire(1, &[42]).try_into().unwrap();
    f.acquire(2, &[42]);
    let items = vec!["tax".to_string()];
    let req = Request {
        requester: &rq, provider: &pv, affair: "a1", items: &items, lifetime_s: 300, refusal: None,
        withheld_until: Some(20_500), delegator: Some(131_024),
    };
    let a = f.path().inquire(&req, &code).unwrap();
    let rec = f.ledger.store().record(a.record_seq).unwrap().unwrap();
    assert_eq!((rec.withheld, rec.disclose_after, rec.delegator), (true, Some(20_500), Some(131_024)));
    // The returned packed record is the one in the ledger; its 提供 copies the person and terms.
    assert_eq!(Record::decode(&a.records[2..]).unwrap(), Record { seq: 0, ..rec.clone() });
    let p = crate::ledger::record::provisions_of_packed(&a.records, a.record_seq, 5, 0, "", [7; 32]).unwrap();
    let p = Record::decode(&p[2..]).unwrap();
    assert_eq!((p.pseudonym, p.permit_id, p.delegator, p.withheld), (rec.pseudonym, rec.permit_id, rec.delegator, true));
}
