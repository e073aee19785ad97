use serde_json::{json, Value};

use super::*;
use crate::format::{Detected, Encoding, Format};

fn detected() -> Detected {
    Detected {
        format: Format::Csv,
        gzip: false,
        encoding: Encoding::UTF_8,
        certainty: crate::format::Certainty::Certain,
        dialect: None,
    }
}

/// The report as `bronze infer` prints it and a load stores it.
fn printed(report: &Report) -> Value {
    serde_json::to_value(report).unwrap()
}

/// Infers a one-column CSV from its values, one per line from line 2; the column as
/// printed.
fn column(values: &[&str]) -> Value {
    let mut inferrer = Inferrer::with_columns(&["c".to_owned()]);
    for (i, v) in values.iter().enumerate() {
        inferrer.observe_delimited(i as u64 + 2, v.as_bytes(), &[v.len()]);
    }
    printed(&inferrer.report(&detected()))["columns"][0].clone()
}

fn kind(values: &[&str]) -> String {
    column(values)["type"].as_str().unwrap().to_owned()
}

#[test]
fn null_markers_are_found_by_their_first_byte() {
    for (i, marker) in NULL_MARKERS.iter().enumerate() {
        assert_eq!(null_marker(marker), Some(i), "{marker:?}");
    }
    for text in ["na", "Null", "--", "0", "x", "N"] {
        assert_eq!(null_marker(text), None, "{text:?}");
    }
}

#[test]
fn the_type_fits_every_value() {
    assert_eq!(kind(&["true", "FALSE", "yes"]), "boolean");
    assert_eq!(kind(&["1", "-20", "300"]), "integer");
    assert_eq!(kind(&["1", "2.5", "1e5", "-0.25E-3"]), "number");
    assert_eq!(kind(&["2026-01-02", "2026-12-31"]), "date");
    assert_eq!(kind(&["09:15", "23:59"]), "time");
    assert_eq!(kind(&["2026-01-02", "2026-01-02T10:00:00Z"]), "timestamp");
    assert_eq!(kind(&["1", "2", "x"]), "string");
    assert_eq!(kind(&["", "NA"]), "null");
}

#[test]
fn leading_zeros_specials_and_huge_integers_are_explicit() {
    let zip = column(&["00501", "12345"]);
    assert_eq!(
        (zip["type"].as_str(), zip["leading_zeros"].as_u64()),
        (Some("string"), Some(1))
    );
    let specials = column(&["1.5", "NaN", "inf", "-Infinity"]);
    assert_eq!(
        (
            specials["type"].as_str(),
            specials["special_values"].as_u64()
        ),
        (Some("number"), Some(3))
    );
    let huge = column(&["1", "123456789012345678901234567890"]);
    assert_eq!(
        (huge["type"].as_str(), huge["beyond_i64"].as_u64()),
        (Some("number"), Some(1))
    );
    assert_eq!(huge["max"], "123456789012345678901234567890");
}

#[test]
fn day_above_twelve_settles_the_layout_and_nothing_else_guesses() {
    let dmy = column(&["03/04/2026", "25/12/2026"]);
    assert_eq!(dmy["formats"], serde_json::json!(["%d/%m/%Y"]));
    assert!(dmy.get("ambiguous").is_none());
    assert_eq!(
        (dmy["min"].as_str(), dmy["max"].as_str()),
        (Some("2026-04-03"), Some("2026-12-25"))
    );
    let mdy = column(&["03/04/2026", "12/25/2026"]);
    assert_eq!(mdy["formats"], serde_json::json!(["%m/%d/%Y"]));
    let unsure = column(&["03/04/2026", "05/06/2026"]);
    assert_eq!(
        unsure["formats"],
        serde_json::json!(["%d/%m/%Y", "%m/%d/%Y"])
    );
    assert_eq!(unsure["ambiguous"], true);
}

#[test]
fn nulls_markers_and_facts_are_reported() {
    let c = column(&["b", "", "NA", "a", "b", "NULL", "ccc"]);
    assert_eq!(c["nullable"], true);
    assert_eq!(c["null_markers"], serde_json::json!(["", "NA", "NULL"]));
    assert_eq!(
        (c["min"].as_str(), c["max"].as_str()),
        (Some("a"), Some("ccc"))
    );
    assert_eq!(
        (c["max_length"].as_u64(), c["distinct_estimate"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(c["examples"], serde_json::json!(["b", "a", "ccc"]));
    assert_eq!(
        (c["count"].as_u64(), c["nulls"].as_u64()),
        (Some(4), Some(3))
    );
    assert_eq!(column(&["1", "2"])["nullable"], false);
}

#[test]
fn semantic_types_carry_their_confidence() {
    let mut values: Vec<String> = (0..98).map(|i| format!("user{i}@example.com")).collect();
    values.push("not an email".into());
    values.push("also not".into());
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let c = column(&refs);
    assert_eq!(
        c["semantic"],
        serde_json::json!({"type": "email", "confidence": 0.98})
    );
    assert_eq!(column(&["hello", "world"])["semantic"], Value::Null);
    assert_eq!(column(&["DE", "FR", "US"])["semantic"]["type"], "country");
}

#[test]
fn what_almost_fit_is_reported_with_the_lines_that_broke_it() {
    let mut values: Vec<String> = (0..999).map(|i| i.to_string()).collect();
    values.insert(500, "n/a".into());
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let c = column(&refs);
    assert_eq!(c["type"], "string");
    assert_eq!(
        c["almost"],
        serde_json::json!({"type": "integer", "share": 0.999, "first_offending_lines": [502]})
    );
    assert_eq!(column(&["1", "2"])["almost"], Value::Null);
}

/// A value seen again (in a run, or after others) counts again without being read
/// again: every count must come out as if it had been.
#[test]
fn runs_of_one_value_count_like_the_value_read_each_time() {
    let mut values = vec!["7"; 96];
    values.splice(40..40, ["x", "x", "x"]);
    values.extend(["NA", "NA", "007", "007"]);
    let c = column(&values);
    assert_eq!(
        (c["count"].clone(), c["nulls"].clone()),
        (json!(101), json!(2))
    );
    assert_eq!(c["leading_zeros"], 2);
    assert_eq!(
        c["almost"],
        json!({"type": "integer", "share": 0.950495, "first_offending_lines": [42, 43, 44, 103, 104]})
    );
    let dates = column(&[
        "2026-01-02",
        "2026-01-02",
        "2026-01-02",
        "02/01/2026",
        "02/01/2026",
    ]);
    assert_eq!(dates["type"], "date");
    assert_eq!(
        dates["formats"],
        json!(["%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y"])
    );
    let emails = column(&["a@b.com", "a@b.com", "a@b.com", "x"]);
    assert_eq!(emails["semantic"]["confidence"], 0.75);

    // Values that come back after others (a cycle of 20): counted where they recur.
    let cycle: Vec<String> = (1..20).map(|i| i.to_string()).chain(["x".into()]).collect();
    let values: Vec<&str> = cycle
        .iter()
        .cycle()
        .take(1000)
        .map(String::as_str)
        .collect();
    let c = column(&values);
    assert_eq!(
        (c["count"].clone(), c["distinct_estimate"].clone()),
        (json!(1000), json!(20))
    );
    assert_eq!(
        c["almost"],
        json!({"type": "integer", "share": 0.95, "first_offending_lines": [21, 41, 61, 81, 101]})
    );
}

/// JSON strings seen lately are not read again either: a run of one string counts as
/// the string read each time, dates, semantic types and offending lines included.
#[test]
fn runs_of_one_json_string_count_like_the_string_read_each_time() {
    // Lines 1–20 a date, 21 text, 22 a timestamp, 23 null; the emails cycle.
    let mut s = vec![r#""2026-01-02""#; 20];
    s.extend([r#""x""#, r#""2026-01-02T10:00:00Z""#, "null"]);
    let emails = [r#""a@b.com""#, r#""a@b.com""#, r#""x""#, r#""c@d.org""#];
    let mut inferrer = Inferrer::default();
    for (i, value) in s.iter().enumerate() {
        let (email, day) = (emails[i % emails.len()], r#""2026-01-02""#);
        let record = format!(r#"{{"d":{day},"e":{email},"s":{value}}}"#);
        inferrer.observe_json(i as u64 + 1, record.as_bytes());
    }
    let report = inferrer.report(&Detected {
        format: Format::Ndjson,
        ..detected()
    });
    let printed = printed(&report);
    let (d, e, s) = (
        &printed["columns"][0],
        &printed["columns"][1],
        &printed["columns"][2],
    );
    assert_eq!(
        (s["count"].clone(), s["nulls"].clone()),
        (json!(22), json!(1))
    );
    assert_eq!(s["type"], "string");
    assert_eq!(
        s["almost"],
        json!({"type": "timestamp", "share": 0.954545, "first_offending_lines": [21]})
    );
    // 17 of 23 emails: a@b.com twice in every four, c@d.org once.
    assert_eq!(e["semantic"]["confidence"], 0.73913);
    assert_eq!(e["distinct_estimate"], 3);
    assert_eq!(
        (d["type"].as_str(), d["count"].as_u64()),
        (Some("date"), Some(23))
    );
    // Consistency counts each date's layout: 23 of 23 only if every repeat counted it.
    let quality = inferrer.quality(&report.schema(), &[], 0);
    assert_eq!(quality.columns[0].consistent, Some(23));
    assert_eq!(quality.columns[1].valid, Some(17));
}

/// Keys are found at the place they held in the record before, and by name when they
/// moved: records that drop, add and reorder keys count each value under its own key.
#[test]
fn keys_that_move_between_records_keep_their_columns() {
    let records = [
        r#"{"a":1,"b":"x","c":true}"#,
        r#"{"b":"y","c":false}"#,
        r#"{"a":2,"c":true}"#,
        r#"{"c":false,"a":3,"b":"z","d":null}"#,
        r#"{"d":"w"}"#,
    ];
    let mut inferrer = Inferrer::default();
    for (i, record) in records.iter().enumerate() {
        inferrer.observe_json(i as u64 + 1, record.as_bytes());
    }
    let report = printed(&inferrer.report(&Detected {
        format: Format::Ndjson,
        ..detected()
    }));
    let seen: Vec<(String, u64, String)> = report["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let name = c["name"].as_str().unwrap().to_owned();
            (
                name,
                c["count"].as_u64().unwrap(),
                c["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("a", 3, "integer"),
        ("b", 3, "string"),
        ("c", 4, "boolean"),
        ("d", 1, "string"),
    ];
    let expected: Vec<(String, u64, String)> = expected
        .iter()
        .map(|&(n, c, t)| (n.to_owned(), c, t.to_owned()))
        .collect();
    assert_eq!(seen, expected);
}

#[test]
fn json_keeps_its_own_types_and_describes_nesting() {
    let mut inferrer = Inferrer::default();
    inferrer.observe_json(
        1,
        br#"{"a":1,"b":"7","c":{"d":"2026-01-01","e":true},"f":[1,2.5]}"#,
    );
    inferrer.observe_json(2, br#"{"a":2,"b":"8","c":{"d":"2026-02-01"},"f":[]}"#);
    inferrer.observe_json(3, br#"{"a":null,"b":"9","q":"say \"hi\"\n"}"#);
    let report = printed(&inferrer.report(&Detected {
        format: Format::Ndjson,
        ..detected()
    }));
    let columns = report["columns"].as_array().unwrap();
    let by_name = |n: &str| columns.iter().find(|c| c["name"] == n).unwrap().clone();
    assert_eq!(
        (
            by_name("a")["type"].as_str(),
            by_name("a")["nullable"].as_bool()
        ),
        (Some("integer"), Some(true))
    );
    assert_eq!(
        by_name("b")["type"],
        "string",
        "a JSON string of digits stays a string"
    );
    let c = by_name("c");
    assert_eq!(
        (c["type"].as_str(), c["nullable"].as_bool()),
        (Some("object"), Some(true))
    );
    let fields = c["fields"].as_array().unwrap();
    assert_eq!(fields[0]["type"], "date");
    assert_eq!(
        (fields[1]["type"].as_str(), fields[1]["nullable"].as_bool()),
        (Some("boolean"), Some(true))
    );
    assert_eq!(by_name("f")["items"]["type"], "number");
    assert_eq!(report["records"], 3);
    assert_eq!(
        by_name("q")["examples"],
        serde_json::json!(["say \"hi\"\n"]),
        "escapes are undone"
    );
}

/// Keys that are data make no column each: past the file's budget they are counted.
#[test]
fn keys_that_are_data_stay_within_the_budget() {
    let mut inferrer = Inferrer::with_key_budget(100);
    for i in 0..5_000 {
        let record = format!(r#"{{"u{i}":{{"n":{i}}},"id":{i}}}"#);
        inferrer.observe_json(u64::from(i as u32) + 1, record.as_bytes());
    }
    let report = printed(&inferrer.report(&detected()));
    assert_eq!(
        report["columns"],
        serde_json::json!([]),
        "a map has no columns"
    );
    let map = &report["map"];
    assert!(map["keys_described"].as_u64().unwrap() <= 100);
    assert!(map["values_under_other_keys"].as_u64().unwrap() >= 4_900);
    assert_eq!(map["values"], "mixed", "objects and the integers of `id`");
}

/// Below the budget, many keys each in a few records are data too; a wide record
/// whose keys come back is not.
#[test]
fn rare_keys_make_a_map_and_common_ones_columns() {
    let mut ids = Inferrer::default();
    let mut wide = Inferrer::default();
    for i in 0..500u64 {
        ids.observe_json(i + 1, format!(r#"{{"user{i}":{{"n":{i}}}}}"#).as_bytes());
        let fields: Vec<String> = (0..80).map(|k| format!(r#""f{k:02}":{i}"#)).collect();
        wide.observe_json(i + 1, format!("{{{}}}", fields.join(",")).as_bytes());
    }
    let ids = printed(&ids.report(&detected()));
    assert_eq!(ids["map"]["values"], "object");
    assert_eq!(ids["map"]["keys_described"], 500);
    let wide = printed(&wide.report(&detected()));
    assert_eq!(wide["columns"].as_array().unwrap().len(), 80);
    assert!(wide.get("map").is_none());
}

/// Infers a one-column CSV from its values, one per line from line 2; the column as
/// the typed report has it.
fn column_report(values: &[&str]) -> ColumnReport {
    let mut inferrer = Inferrer::with_columns(&["c".to_owned()]);
    for (i, v) in values.iter().enumerate() {
        inferrer.observe_delimited(i as u64 + 2, v.as_bytes(), &[v.len()]);
    }
    inferrer.report(&detected()).columns.remove(0)
}

/// The printed report is the document it always was: keys in alphabetical order,
/// facts that are zero, false or absent left out, absent values written as null.
#[test]
fn the_report_prints_as_the_document_loads_have_stored() {
    let stamps = column_report(&["2026-01-02T10:00:00Z", "2026-01-03T10:00:00", "NA"]);
    assert_eq!(
        serde_json::to_string(&stamps).unwrap(),
        r#"{"almost":null,"count":2,"distinct_estimate":2,"examples":["2026-01-02T10:00:00Z","2026-01-03T10:00:00"],"formats":["%Y-%m-%dT%H:%M:%SZ","%Y-%m-%dT%H:%M:%S"],"max":"2026-01-03T10:00:00","max_length":20,"min":"2026-01-02T10:00:00Z","name":"c","null_markers":["NA"],"nullable":true,"nulls":1,"semantic":null,"type":"timestamp","zone":"mixed"}"#
    );
    let codes = column_report(&[
        "007", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "12",
    ]);
    assert_eq!(
        serde_json::to_string(&codes).unwrap(),
        r#"{"almost":{"first_offending_lines":[2],"share":0.916667,"type":"integer"},"count":12,"distinct_estimate":12,"examples":["007","1","2","3","4"],"formats":[],"leading_zeros":1,"max":"9","max_length":3,"min":"007","name":"c","null_markers":[],"nullable":false,"nulls":0,"semantic":null,"type":"string"}"#
    );
    let mut inferrer = Inferrer::with_columns(&["c".to_owned()]);
    inferrer.rejected(2);
    assert_eq!(
        serde_json::to_string(&inferrer.report(&detected())).unwrap(),
        r#"{"columns":[{"almost":null,"count":0,"distinct_estimate":0,"examples":[],"formats":[],"max":null,"max_length":0,"min":null,"name":"c","null_markers":[],"nullable":false,"nulls":0,"semantic":null,"type":"null"}],"compression":null,"delimiter":null,"encoding":"utf-8","first_rejected_lines":[2],"format":"csv","header":null,"records":0,"rejected":1}"#
    );
}

/// Integers beyond 64 bits are compared exactly (by sign, length and digits), and so
/// are those within 64 bits that an `f64` cannot tell apart: min and max are values
/// of the column, as written.
#[test]
fn integers_beyond_64_bits_keep_their_exact_range() {
    let values: Vec<String> = (0..5000u128)
        .map(|i| ((1u128 << 70) + i).to_string())
        .collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let c = column_report(&refs);
    assert_eq!(
        (c.kind, c.beyond_i64, c.min.as_deref(), c.max.as_deref()),
        (
            FieldType::Number,
            5000,
            Some("1180591620717411303424"),
            Some("1180591620717411308423")
        )
    );
    let mixed = column_report(&[
        "99999999999999999999",
        "-1180591620717411303424",
        "12",
        "-1180591620717411303425",
        "100000000000000000000",
        "-99999999999999999999",
        "2.5",
    ]);
    assert_eq!(
        (mixed.min.as_deref(), mixed.max.as_deref()),
        (
            Some("-1180591620717411303425"),
            Some("100000000000000000000")
        )
    );
    let near = column_report(&["9007199254740993", "9007199254740992", "9007199254740994"]);
    assert_eq!(
        (near.kind, near.min.as_deref(), near.max.as_deref()),
        (
            FieldType::Integer,
            Some("9007199254740992"),
            Some("9007199254740994")
        )
    );

    let mut json = Inferrer::default();
    json.observe_json(1, br#"{"n":1180591620717411303425}"#);
    json.observe_json(2, br#"{"n":1180591620717411303424}"#);
    json.observe_json(3, br#"{"n":-5}"#);
    let n = json.report(&detected()).columns.remove(0);
    assert_eq!(
        (n.min.as_deref(), n.max.as_deref()),
        (Some("-5"), Some("1180591620717411303425"))
    );
}

/// The schema registry reads a file's schema off the typed report.
#[test]
fn a_report_gives_the_schema_of_its_file() {
    let names = ["email".to_owned(), "day".to_owned()];
    let mut inferrer = Inferrer::with_columns(&names);
    let rows = [
        ("a@x.io", "02/01/2024"),
        ("", "01/02/2024"),
        ("z@x.io", "03/04/2024"),
    ];
    for (i, (email, day)) in rows.iter().enumerate() {
        let bytes = format!("{email}{day}");
        inferrer.observe_delimited(i as u64 + 2, bytes.as_bytes(), &[email.len(), bytes.len()]);
    }
    let schema = inferrer.report(&detected()).schema();
    let [email, day] = &schema.fields[..] else {
        panic!("two fields: {schema:?}");
    };
    assert_eq!(
        (email.name.as_str(), email.kind, email.nullable),
        ("email", FieldType::String, true)
    );
    assert_eq!(email.semantic.as_deref(), Some("email"));
    assert_eq!(
        (email.evidence.min.as_deref(), email.evidence.max.as_deref()),
        (Some("a@x.io"), Some("z@x.io"))
    );
    assert_eq!((day.kind, day.nullable), (FieldType::Date, false));
    assert_eq!(day.format.as_deref(), Some("%d/%m/%Y"));
    assert_eq!(day.evidence.formats, ["%d/%m/%Y", "%m/%d/%Y"]);
    assert_eq!(day.evidence.examples.len(), 3);
}
