//! Time cedar-policy on the 別表第二 rows: one `permit` policy per row, agencies as entities
//! with a `types` set, the item in the context. Prints one line of `key=value` for the Python
//! bench to read. Usage: renkei-cedar-bench TABLE.json [N]
use std::str::FromStr;
use std::time::Instant;

use cedar_policy::{Authorizer, Context, Decision, Entities, EntityUid, PolicySet, Request};
use serde_json::{json, Value};

fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("string")
}

fn set(v: &Value) -> String {
    let xs: Vec<String> = v.as_array().expect("list").iter().map(|s| quote(s.as_str().expect("str"))).collect();
    format!("[{}]", xs.join(", "))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let table: Value = serde_json::from_slice(&std::fs::read(&args[1]).expect("read table")).expect("json");
    let n: usize = args.get(2).map(|s| s.parse().expect("N")).unwrap_or(200_000);
    let rows = table["rows"].as_array().expect("rows");

    let mut text = String::new();
    for r in rows {
        text.push_str(&format!(
            "permit(principal, action == Action::{}, resource) when {{ principal.types.containsAny({}) && resource.types.containsAny({}) && {}.contains(context.item) }};\n",
            quote(r["affair"].as_str().unwrap()),
            set(&r["requesters"]),
            set(&r["providers"]),
            set(&r["items"]),
        ));
    }
    let t = Instant::now();
    let policies = PolicySet::from_str(&text).expect("policies parse");
    let parse_ms = t.elapsed().as_secs_f64() * 1e3;

    let types: Vec<&str> = table["agency_types"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    let ents: Vec<Value> = types
        .iter()
        .map(|t| json!({"uid": {"type": "Agency", "id": t}, "attrs": {"types": [t]}, "parents": []}))
        .collect();
    let entities = Entities::from_json_value(Value::Array(ents), None).expect("entities");
    let uid = |ty: &str, id: &str| EntityUid::from_str(&format!("{ty}::{}", quote(id))).expect("uid");

    // Queries drawn from the rows (so all are allowed), with a fixed LCG.
    let mut state: u64 = 0x2545F4914F6CDD1D;
    let mut queries = Vec::with_capacity(4096);
    for _ in 0..4096 {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let r = &rows[(state >> 33) as usize % rows.len()];
        let ctx = Context::from_json_value(json!({"item": r["items"][0]}), None).expect("context");
        queries.push((
            uid("Agency", r["requesters"][0].as_str().unwrap()),
            uid("Action", r["affair"].as_str().unwrap()),
            uid("Agency", r["providers"][0].as_str().unwrap()),
            ctx,
        ));
    }
    let auth = Authorizer::new();
    let mut allowed = 0usize;
    let t = Instant::now();
    for k in 0..n {
        let (p, a, r, c) = &queries[k % queries.len()];
        let req = Request::new(p.clone(), a.clone(), r.clone(), c.clone(), None).expect("request");
        if auth.is_authorized(&req, &policies, &entities).decision() == Decision::Allow {
            allowed += 1;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!("policies={} parse_ms={parse_ms:.1} checks={n} allowed={allowed} rate={:.1}", rows.len(), n as f64 / secs);
}
