//! Inference walks a JSON record once, handing nested objects and arrays their bytes as
//! it goes: each value must end where the next member starts, at every depth.

use serde_json::{json, Value};

use super::*;
use crate::format::{Certainty, Detected, Encoding, Format};

fn report(records: &[&str]) -> Value {
    let mut inferrer = Inferrer::default();
    for (i, record) in records.iter().enumerate() {
        inferrer.observe_json(i as u64 + 1, record.as_bytes());
    }
    let detected = Detected {
        format: Format::Ndjson,
        gzip: false,
        encoding: Encoding::UTF_8,
        certainty: Certainty::Certain,
        dialect: None,
    };
    serde_json::to_value(inferrer.report(&detected)).unwrap()
}

fn named<'a>(columns: &'a Value, name: &str) -> &'a Value {
    columns
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no column {name}: {columns}"))
}

#[test]
fn every_member_after_a_nested_value_is_still_its_own() {
    let deep = r#"{"e":{"f":{"g":{"h":{"i":1}}}}}"#;
    let records = [
        format!(
            r#"{{"a":{{}},"b":[],"c":[[1,[]],[{{"x":"]}},"}}]],"d":{deep},"k\"ey":[1,2],"z":"last"}}"#
        ),
        r#"{"a":{"y":"2026-01-02"},"b":[{}],"z":"end"}"#.to_owned(),
    ];
    let records: Vec<&str> = records.iter().map(String::as_str).collect();
    let report = report(&records);
    let columns = &report["columns"];
    assert_eq!(report["records"], 2);
    assert_eq!(named(columns, "z")["examples"], json!(["last", "end"]));
    assert_eq!(named(columns, "k\"ey")["items"]["type"], "integer");
    assert_eq!(named(columns, "k\"ey")["items"]["count"], 2);
    let a = named(columns, "a");
    assert_eq!(a["type"], "object");
    assert_eq!(named(&a["fields"], "y")["type"], "date");
    assert_eq!(named(&a["fields"], "y")["count"], 1);
    assert_eq!(named(columns, "b")["items"]["type"], "object");
    let inner = &named(columns, "c")["items"]["items"];
    assert_eq!(inner["type"], "mixed");
    assert_eq!(named(&inner["fields"], "x")["examples"], json!(["]},"]));
    // Past the deepest level described, an object counts but is not read into.
    let mut level = named(columns, "d");
    for name in ["e", "f", "g", "h"] {
        level = named(&level["fields"], name);
    }
    assert_eq!(level["type"], "object");
    assert!(level["fields"].is_null(), "{level}");
}
