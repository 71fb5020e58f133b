use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::*;

fn doc(label: &str, from: &str, until: Option<&str>, extra_item_for_a1: bool) -> Document {
    let items = if extra_item_for_a1 { r#"["tax","resident"]"# } else { r#"["tax"]"# };
    let until = until.map(|u| format!(r#""effective_until":"{u}","#)).unwrap_or_default();
    let json = format!(
        r#"{{"format":"renkei-permissions/1","label":"{label}","effective_from":"{from}",{until}
        "agency_types":[{{"id":"mhlw","name":"厚生労働大臣"}},{{"id":"mayor","name":"市町村長"}},{{"id":"gov","name":"都道府県知事"}}],
        "affairs":[{{"id":"a1","code":"B2-1","ko":"1","name":"健康保険","codes":["JT00000000000001"]}},
                   {{"id":"local","code":"L-1","name":"条例事務"}}],
        "items":[{{"id":"tax","code":"I1","name":"地方税関係情報","codes":["TM00000000000001"]}},{{"id":"resident","code":"I2","name":"住民票関係情報"}}],
        "rows":[{{"ref":"1-1","ko":"1","affair":"a1","requesters":["mhlw"],"providers":["mayor"],"items":{items}}},
                {{"ref":"O-1","affair":"local","requesters":["mayor"],"providers":["mayor","gov"],"items":["resident"],"municipality":"131016"}}]}}"#
    );
    Document::from_json(json.as_bytes()).unwrap()
}

fn t(s: &str) -> i64 {
    parse_instant(s).unwrap()
}

#[test]
fn allow_and_deny_reasons() {
    let e = Engine::new();
    e.load(&doc("v1", "2017-11-13T00:00:00+09:00", None, true)).unwrap();
    let s = e.snapshot();
    let v = s.in_force(t("2020-01-01T00:00:00Z")).unwrap();
    let (mhlw, mayor, gov) = (v.type_id("mhlw"), v.type_id("mayor"), v.type_id("gov"));
    let a1 = v.affair_id("a1");
    assert_eq!(v.affair_id("JT00000000000001"), a1);
    assert_eq!(v.affair_id("B2-1"), a1);
    let tax = v.item_id("TM00000000000001");
    let res = v.item_id("resident");
    let d = v.check(&[mhlw], 0, a1, &[mayor], &[tax, res]);
    assert_eq!(d.outcome, Outcome::Allowed);
    assert_eq!(d.matched, vec![0, 0]);
    assert_eq!(v.check(&[gov], 0, a1, &[mayor], &[tax]).outcome, Outcome::RequesterNotEntitled);
    assert_eq!(v.check(&[mhlw], 0, a1, &[gov], &[tax]).outcome, Outcome::ProviderNotListed);
    let local = v.affair_id("local");
    assert_eq!(v.check(&[mayor], 0, local, &[gov], &[res]).outcome, Outcome::OtherMunicipality);
    assert_eq!(v.check(&[mayor], 131024, local, &[gov], &[res]).outcome, Outcome::OtherMunicipality);
    assert_eq!(v.check(&[mayor], 131016, local, &[gov], &[res]).outcome, Outcome::Allowed);
    let d = v.check(&[mayor], 131016, local, &[gov], &[tax]);
    assert_eq!((d.outcome, d.nearest, d.failed_item), (Outcome::ItemNotListed, Some(1), Some(0)));
    assert_eq!(v.check(&[mayor], 0, UNKNOWN, &[gov], &[tax]).outcome, Outcome::UnknownAffair);
    assert!(s.in_force(t("2017-11-12T14:59:59.999999Z")).is_none());
}

#[test]
fn batch_matches_single() {
    let e = Engine::new();
    e.load(&doc("v1", "2017-11-13T00:00:00+09:00", None, true)).unwrap();
    let s = e.snapshot();
    let v = s.in_force(t("2020-01-01T00:00:00Z")).unwrap();
    let mut qs = Vec::new();
    let mut flat = Vec::new();
    for rq in [0, 1, 2, UNKNOWN] {
        for af in [0, 1, 7] {
            for pv in [0, 1, 2] {
                for it in [0, 1, 5] {
                    for m in [0, 131016, 131024] {
                        qs.push([rq, af, pv, it, m]);
                        flat.extend([rq, af, pv, it, m]);
                    }
                }
            }
        }
    }
    let mut out = vec![9u8; qs.len()];
    let mut rows = vec![0u32; qs.len()];
    v.check_batch(&flat, &mut out, &mut rows);
    for (i, q) in qs.iter().enumerate() {
        let d = v.check(&[q[0]], q[4], q[1], &[q[2]], &[q[3]]);
        assert_eq!(out[i], d.outcome as u8, "{q:?}");
        let r = if d.outcome == Outcome::Allowed { d.matched[0] } else { d.nearest.unwrap_or(NO_ROW) };
        assert_eq!(rows[i], r);
    }
}

#[test]
fn versions_switch_at_instant_and_hash_is_canonical() {
    let e = Engine::new();
    e.load(&doc("v1", "2017-11-13T00:00:00+09:00", None, false)).unwrap();
    e.load(&doc("v2", "2019-05-01T00:00:00+09:00", Some("2030-01-01T00:00:00Z"), true)).unwrap();
    let s = e.snapshot();
    let edge = t("2019-05-01T00:00:00+09:00");
    assert_eq!(s.in_force(edge - 1).unwrap().label, "v1");
    assert_eq!(s.in_force(edge).unwrap().label, "v2");
    assert!(s.in_force(t("2030-01-01T00:00:00Z")).is_none());
    let a = doc("v1", "2017-11-13T00:00:00+09:00", None, false);
    let b = doc("v1", "2017-11-12T15:00:00Z", None, false);
    let fa = t(&a.effective_from);
    assert_eq!(a.content_hash(fa, None), b.content_hash(fa, None));
    let c = doc("v1", "2017-11-13T00:00:00+09:00", None, true);
    assert_ne!(a.content_hash(fa, None), c.content_hash(fa, None));
    assert!(e.load(&doc("v3", "2019-05-01T00:00:00+09:00", None, true)).is_err());
}

#[test]
fn bad_documents_are_refused() {
    let base = r#"{"format":"renkei-permissions/1","label":"x","effective_from":"2017-11-13T00:00:00Z","agency_types":[{"id":"a","name":"A"}],"affairs":[{"id":"f","code":"F","name":"F"}],"items":[{"id":"i","code":"I","name":"I"}],"rows":[ROW]}"#;
    for row in [
        r#"{"ref":"1","affair":"nope","requesters":["a"],"providers":["a"],"items":["i"]}"#,
        r#"{"ref":"1","affair":"f","requesters":[],"providers":["a"],"items":["i"]}"#,
        r#"{"ref":"1","affair":"f","requesters":["a"],"providers":["b"],"items":["i"]}"#,
        r#"{"ref":"1","affair":"f","requesters":["a"],"providers":["a"],"items":["i"],"municipality":"12"}"#,
    ] {
        let d = Document::from_json(base.replace("ROW", row).as_bytes()).unwrap();
        assert!(Version::compile(&d, &mut Interner::default()).is_err(), "{row}");
    }
    assert!(Document::from_json(b"{").is_err());
    assert!(Document::from_json(base.replace("renkei-permissions/1", "v0").as_bytes()).is_err());
}

#[test]
fn reload_under_concurrent_checks_is_never_mixed() {
    // v1 allows item "tax" only, v2 allows both; a mixed view would allow "resident" with v1's hash.
    let e = Arc::new(Engine::new());
    e.load(&doc("live", "2017-11-13T00:00:00Z", None, false)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let now = t("2020-01-01T00:00:00Z");
    let h1 = doc("live", "2017-11-13T00:00:00Z", None, false).content_hash(t("2017-11-13T00:00:00Z"), None);
    let checks = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (e, stop, checks) = (e.clone(), stop.clone(), checks.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let s = e.snapshot();
                let v = s.in_force(now).unwrap();
                let d = v.check(&[v.type_id("mhlw")], 0, v.affair_id("a1"), &[v.type_id("mayor")], &[v.item_id("resident")]);
                assert_eq!(d.outcome == Outcome::Allowed, v.hash != h1);
                checks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    for k in 0..200 {
        // Interleave: let the reader check between reloads.
        let before = checks.load(Ordering::Relaxed);
        while checks.load(Ordering::Relaxed) == before {
            std::thread::yield_now();
        }
        e.load(&doc("live", "2017-11-13T00:00:00Z", None, k % 2 == 0)).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    assert!(checks.load(Ordering::Relaxed) >= 200);
}
