//! `bronze infer`'s reading of JSON records (parsed into a tape, members read off it)
//! against a load's (canonical JSON, walked): the same report, the same rejects with
//! the same reasons, the same error for a file that cannot be read.

use std::io::Cursor;

use super::*;
use crate::canonical::MAX_DEPTH;
use crate::format::{self, ReadError, ReadSettings};
use crate::limits::Limits;

/// What reading `text` as `name` shows: the report as printed, or the error that
/// stops the file, and each reject's line and reason.
fn read(name: &str, text: &[u8], settings: &ReadSettings, parsed: bool) -> (String, Vec<String>) {
    let (mut records, detected) =
        format::open(Box::new(Cursor::new(text.to_vec())), name, settings).unwrap();
    let mut inferrer = Inferrer::for_records(&records);
    let mut json = Vec::new();
    let mut rejects = Vec::new();
    loop {
        let next = if parsed {
            records.next_for_inference(&mut json)
        } else {
            records.next_into(&mut json)
        };
        match next {
            Ok(Some(line)) if parsed => inferrer.observe_next(&records, line, &json),
            Ok(Some(line)) => inferrer.record(&records, line, &json),
            Ok(None) => break,
            Err(e @ ReadError::Record { .. }) => {
                if let ReadError::Record { line, .. } = e {
                    inferrer.rejected(line);
                }
                rejects.push(e.to_string());
            }
            Err(e) => return (format!("error: {e}"), rejects),
        }
    }
    let report = serde_json::to_string_pretty(&inferrer.report(&detected)).unwrap();
    (report, rejects)
}

/// Both ways of reading `text` agree; returns what they showed.
fn same(name: &str, text: &[u8], settings: &ReadSettings) -> (String, Vec<String>) {
    let canonical = read(name, text, settings, false);
    let parsed = read(name, text, settings, true);
    assert_eq!(parsed, canonical, "{}", String::from_utf8_lossy(text));
    canonical
}

/// One hostile NDJSON file: every line a case, good lines between them so that each
/// column sees values before and after.
fn hostile_lines() -> Vec<Vec<u8>> {
    let deep = |n: usize| format!("{{\"d\":{}1{}}}", "[".repeat(n), "]".repeat(n));
    let mut lines: Vec<Vec<u8>> = [
        r#"{"id":1,"user":{"name":"Ann","address":{"city":"Oslo","zip":"0150"}},"items":[{"sku":"A-1","q":2},{"q":1,"sku":"B-2","price":9.5}],"note":null}"#,
        r#"{"note":"x","items":[],"user":{"address":{},"name":"Bo"},"id":2}"#,
        r#"{"id":3,"items":[{"sku":"C","q":1,"sku":"D"}]}"#,
        r#"{"id":4,"id":5}"#,
        r#"{"id":6,"user":{"name":"A","address":{"city":"x","city":"y"}}}"#,
        r#"{"id":7,"note":"a\u0000b"}"#,
        r#"{"id":8,"\u0000":1}"#,
        r#"{"id":9,"n":1e400}"#,
        r#"{"id":10,"n":1e131072}"#,
        r#"{"id":11,"n":-0,"m":-0.0,"big":123456789012345678901234567890,"e":1E+2}"#,
        r#"{"id":12,"n":"1e-16384 as text","m":1e-16384}"#,
        r#"{"id":13,"k\"ey":1,"k\\ey":2,"k\/ey":3,"\u00e9":4,"\ud83d\ude00":5}"#,
        r#"{"id":14,"é":1,"\u00e9":2}"#,
        r#"{"zz":1,"b":2,"aaa":3,"a":4,"é":5,"Z":6,"":7,"id":15}"#,
        r#"{"id":16,"note":"tab\there","s":"\"quoted\"","u":"\u00e9\u2028"}"#,
        r#"{"id":17,"note":"\ud83d"}"#,
        r#"{"id":18,"note":"\x"}"#,
        r#"{"id":19,}"#,
        r#"[1,2,3]"#,
        r#""a string""#,
        r#"{"id":20} {"id":21}"#,
        r#"{"id":22,"flags":[true,false,null,"yes",1,[],{}],"when":"2026-11-30T09:15:00Z"}"#,
        r#"{"id":23,"user":{"name":"C","address":{"city":"z","geo":{"lat":1.5,"lon":{"deg":2,"min":{"s":3}}}}}}"#,
        r#"{"id":24,"items":[[[[[[1]]]]]],"user":{"tags":[{"a":[{"b":[{"c":1}]}]}]}}"#,
        r#"    "#,
        "",
        r#"{"id":25,"note":"last good line"}"#,
    ]
    .iter()
    .map(|l| l.as_bytes().to_vec())
    .collect();
    lines.push(deep(MAX_DEPTH - 1).into_bytes());
    lines.push(deep(MAX_DEPTH).into_bytes());
    lines.push(deep(MAX_DEPTH * 4).into_bytes());
    lines.push(b"{\"id\":26,\"note\":\"caf\xe9\"}".to_vec());
    lines.push(b"{\"id\":27,\"n\xff\":1}".to_vec());
    lines.push(b"{\"id\":28,\"note\":\"ctl\x01\"}".to_vec());
    lines.push(b"\xef\xbb\xbf{\"id\":29,\"bom\":true}".to_vec());
    lines.push(b"{\"id\":30,\"crlf\":1}\r".to_vec());
    lines.push(format!("{{\"id\":31,\"long\":\"{}\"}}", "x".repeat(300)).into_bytes());
    lines
}

#[test]
fn hostile_ndjson_reads_alike_both_ways() {
    let text = hostile_lines().join(&b'\n');
    let (report, rejects) = same("x.ndjson", &text, &ReadSettings::default());
    // The cases are what they say: each refusal is there (1e400 fits PostgreSQL's
    // numeric, 128 levels are allowed), and every line not blank is counted.
    for refused in [
        "line 3: column 18: duplicate key \"sku\" in object",
        "line 4: column 1: duplicate key \"id\" in object",
        "line 5: column 38: duplicate key \"city\" in object",
        "line 6: column 24: \\u0000, which PostgreSQL jsonb cannot store",
        "line 7: column 16: \\u0000, which PostgreSQL jsonb cannot store",
        "line 9: column 14: number 1e131072 is beyond what PostgreSQL can store",
        "line 11: column 37: number 1e-16384 is beyond what PostgreSQL can store",
        "line 13: column 1: duplicate key \"é\" in object",
        "line 16: column 24: lone surrogate in \\u escape",
        "line 17: column 19: invalid escape '\\x'",
        "line 18: column 10: unexpected '}', expected a string key",
        "line 19: expected a JSON object",
        "line 20: expected a JSON object",
        "line 21: column 11: unexpected data after the JSON value",
        "line 29: column 133: nesting deeper than 128 levels",
        "line 31: column 21: invalid UTF-8",
        "line 32: column 12: invalid UTF-8",
        "line 33: column 21: control character in a string",
    ] {
        assert!(
            rejects.iter().any(|r| r.starts_with(refused)),
            "{refused} not in {rejects:#?}"
        );
    }
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(
        report["records"].as_u64().unwrap() + report["rejected"].as_u64().unwrap(),
        34,
        "{report}"
    );
}

/// Keys past the file's budget are counted, not described: the budget is granted in
/// canonical order, so which keys get a column depends on it.
#[test]
fn the_key_budget_goes_to_the_same_keys_both_ways() {
    let settings = ReadSettings {
        limits: Limits {
            object_keys: 5,
            ..Limits::default()
        },
        ..ReadSettings::default()
    };
    let text = br#"{"zz":1,"b":{"y":1,"x":2},"aaa":3,"a":4,"c":[{"q":1,"p":2}]}
{"c":[{"r":1}],"a":2,"bb":3}"#;
    let (report, _) = same("x.ndjson", text, &settings);
    assert!(report.contains("values_under_other_keys"), "{report}");
}

/// A line past the record bound is refused alike, and so are the lines after it read.
#[test]
fn lines_past_the_bound_are_refused_alike() {
    let settings = ReadSettings {
        limits: Limits {
            record_bytes: 64,
            ..Limits::default()
        },
        ..ReadSettings::default()
    };
    let text = format!(
        "{{\"a\":1}}\n{{\"a\":\"{}\"}}\n{{\"a\":{{\"b\":2}}}}\n",
        "x".repeat(200)
    );
    let (_, rejects) = same("x.ndjson", text.as_bytes(), &settings);
    assert_eq!(rejects.len(), 1, "{rejects:?}");
}

/// JSON documents share the path: elements, rejects, and the error that stops the file.
#[test]
fn json_documents_read_alike_both_ways() {
    let lines = hostile_lines();
    let good: Vec<&[u8]> = lines
        .iter()
        .filter(|l| l.starts_with(b"{\"id\"") && !l.contains(&0xff) && !l.contains(&0xe9))
        .map(Vec::as_slice)
        .collect();
    for element in &good {
        let mut text = b"[\n  {\"before\":1},\n  ".to_vec();
        text.extend_from_slice(element);
        text.extend_from_slice(b",\n  7,\n  {\"after\":{\"b\":1,\"a\":2}}\n]\n");
        same("x.json", &text, &ReadSettings::default());
    }
    let (report, _) = same(
        "x.json",
        br#"{"one":{"object":1,"b":[1,2]}}"#,
        &ReadSettings::default(),
    );
    assert!(report.contains("\"records\": 1"), "{report}");
}
