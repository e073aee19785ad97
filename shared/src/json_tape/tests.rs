//! The tape against the canonicaliser: on every input, the same refusal (offset and
//! words), or the same value in the same canonical order.

use super::*;
use crate::canonical::{write_str, Canonicalizer, MAX_DEPTH};

/// Canonical JSON written back from the tape: its members in the tape's order, its
/// strings from their decoded text. Tests only: it is what the tape stands for.
fn write(record: &Parsed<'_>, at: usize, out: &mut Vec<u8>) {
    match record.node(at) {
        Node::Object { first, len, .. } => {
            out.push(b'{');
            for (i, member) in record.members(first, len).iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, record.text(member.key).as_bytes()).unwrap();
                out.push(b':');
                write(record, member.value, out);
            }
            out.push(b'}');
        }
        Node::Array { end } => {
            out.push(b'[');
            let mut item = at + 1;
            while item < end {
                if item > at + 1 {
                    out.push(b',');
                }
                write(record, item, out);
                item = record.end(item);
            }
            out.push(b']');
        }
        Node::String(text) => write_str(out, record.text(text).as_bytes()).unwrap(),
        Node::Number(text) => out.extend_from_slice(record.text(text).as_bytes()),
        Node::True => out.extend_from_slice(b"true"),
        Node::False => out.extend_from_slice(b"false"),
        Node::Null => out.extend_from_slice(b"null"),
    }
}

/// What each parser makes of `input`, canonical text or the refusal.
fn both(
    canon: &mut Canonicalizer,
    tape: &mut Tape,
    input: &[u8],
) -> (Result<Vec<u8>, JsonError>, Result<Vec<u8>, JsonError>) {
    let mut canonical = Vec::new();
    let canonical = canon
        .canonicalize(input, &mut canonical)
        .map(|()| canonical);
    let taped = tape.parse(input).map(|()| {
        let mut out = Vec::new();
        write(&Parsed::new(tape, input), 0, &mut out);
        out
    });
    (canonical, taped)
}

fn same(inputs: &[&[u8]]) {
    let (mut canon, mut tape) = (Canonicalizer::default(), Tape::default());
    for input in inputs {
        let (canonical, taped) = both(&mut canon, &mut tape, input);
        assert_eq!(taped, canonical, "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn hostile_records_are_refused_or_ordered_alike() {
    let deep_ok = format!(
        "{}1{}",
        "{\"a\":[".repeat(MAX_DEPTH / 2),
        "]}".repeat(MAX_DEPTH / 2)
    );
    let too_deep = format!(
        "{}1{}",
        "[".repeat(MAX_DEPTH + 1),
        "]".repeat(MAX_DEPTH + 1)
    );
    let deep_object = format!("{}{}", "{\"k\":".repeat(MAX_DEPTH + 3), "1");
    let inputs: Vec<&[u8]> = vec![
        br#"{"b":1,"a":{"z":[1,2.50,-0.1e+3],"y":null}}"#,
        br#" { "bb" : 1 , "a" : { "ccc" : true , "b" : false } } "#,
        br#"{"items":[{"sku":"x","q":1},{"q":2,"sku":"y"},[],{}],"u":{"a":{"b":{"c":{"d":{"e":1}}}}}}"#,
        br#"{"a\u0062":1,"ab":2}"#,
        br#"{"x":{"a":1,"a":2}}"#,
        br#"{"x":[{"k":1},{"k":1,"j":2,"k":3}]}"#,
        br#"{"a":1,"b":{"c":1,"c":2},"a":2}"#,
        br#"{"a":1,"a":2,"b":[1,}"#,
        br#"{"a":"\u0000"}"#,
        br#"{"\u0000":1}"#,
        br#"{"a":"x\u0000y\n"}"#,
        br#"{"n":1e400}"#,
        br#"{"n":1e131072}"#,
        br#"{"n":1e-16384}"#,
        br#"{"n":0.0e-16383}"#,
        br#"{"n":0e999999,"m":-0,"o":-0.0,"p":1E+2,"q":123456789012345678901234567890}"#,
        br#"{"n":01}"#,
        br#"{"n":1.}"#,
        br#"{"n":-}"#,
        br#"{"n":.5}"#,
        br#"{"n":1e}"#,
        br#"{"n":+1}"#,
        deep_ok.as_bytes(),
        too_deep.as_bytes(),
        deep_object.as_bytes(),
        br#"{}"#,
        br#"{"a":{},"b":[],"c":[{}],"d":[[]]}"#,
        r#"{"zz":1,"b":2,"aaa":3,"a":4,"é":5,"\u00e9x":6,"Z":7,"":8}"#.as_bytes(),
        br#"{"\u00e9":1,"z":2,"\"":3,"\\":4,"\/":5,"/":6}"#,
        r#"{"é":1,"\u00e9":2}"#.as_bytes(),
        r#"{"😀":1,"\ud83d\ude00":2}"#.as_bytes(),
        br#"{"a":"\ud83d"}"#,
        br#"{"a":"\ude00"}"#,
        br#"{"a":"\ud83d\u0041"}"#,
        br#"{"a":"\u12"}"#,
        br#"{"a":"\uzzzz"}"#,
        br#"{"a":"\x"}"#,
        b"{\"a\":\"tab\there\"}",
        b"{\"a\":\"\x01\"}",
        b"{\"a\":\"caf\xe9\"}",
        b"{\"a\xff\":1}",
        b"{\"a\":\"\xed\xa0\x80\"}",
        br#"{"a":"unterminated}"#,
        br#"{"a":"ends in a backslash\"#,
        br#"{"a":1,}"#,
        br#"{"a" 1}"#,
        br#"{a:1}"#,
        br#"{"a":1} x"#,
        br#"{"a":1}}"#,
        br#"{"a":tru}"#,
        br#"{"a":nul}"#,
        br#"{"a":[1 2]}"#,
        br#"[1,{"b":1,"a":2}]"#,
        br#""just a string""#,
        b"7",
        b"",
        b"   ",
        b"{\"a\":\x0c1}",
        br#"{"a":"\b\f\n\r\t\"\\\/\u001f\u007f\u2028"}"#,
        br#"{"b\"c":"v,}","a\\":"]","a":"}"}"#,
        br#"{"abcdefghij":1,"abcdefgh":2,"abcdefghi":3,"abcdefgg":4,"abcdefgi":5}"#,
        br#"{"abcdefghij":1,"abcdefgh":2,"abcdefgh\u0069j":3}"#,
    ];
    same(&inputs);
}

/// Records built from parts, some broken, each through both parsers: a fixed seed, so
/// a failure names its input every time.
#[test]
fn generated_records_are_refused_or_ordered_alike() {
    const KEYS: [&str; 17] = [
        r#""a""#,
        r#""b""#,
        r#""aa""#,
        r#""\u0061""#,
        r#""é""#,
        r#""\u00e9""#,
        r#""Z""#,
        r#""""#,
        r#""a\"b""#,
        r#""\n""#,
        r#""\u0000""#,
        r#""ab""#,
        r#""ba""#,
        r#""😀""#,
        r#""abcdefgh""#,
        r#""abcdefghij""#,
        r#""abcdefgh\u0069j""#,
    ];
    const SCALARS: [&str; 18] = [
        "0",
        "-0",
        "1e400",
        "12.5e-3",
        "1e131072",
        "01",
        "-1.0",
        "99999999999999999999999",
        "true",
        "false",
        "null",
        r#""x""#,
        r#""a\u00e9\n""#,
        r#""\u0000""#,
        r#""\ud800""#,
        r#""2026-11-30""#,
        "1.",
        "tru",
    ];
    const NOISE: [u8; 10] = [b'{', b'}', b'[', b']', b',', b':', b'"', b'\\', b' ', 0xff];
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    fn value(next: &mut dyn FnMut(usize) -> usize, depth: usize, out: &mut String) {
        match next(if depth > 3 { 2 } else { 5 }) {
            0 | 1 => out.push_str(SCALARS[next(SCALARS.len())]),
            2 | 3 => {
                out.push('{');
                for i in 0..next(5) {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(KEYS[next(KEYS.len())]);
                    out.push_str(if next(4) == 0 { " : " } else { ":" });
                    value(next, depth + 1, out);
                }
                out.push('}');
            }
            _ => {
                out.push('[');
                for i in 0..next(4) {
                    if i > 0 {
                        out.push(',');
                    }
                    value(next, depth + 1, out);
                }
                out.push(']');
            }
        }
    }
    let (mut canon, mut tape) = (Canonicalizer::default(), Tape::default());
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..20_000 {
        let mut text = String::from("{");
        for i in 0..next(6) {
            if i > 0 {
                text.push(',');
            }
            text.push_str(KEYS[next(KEYS.len())]);
            text.push(':');
            value(&mut next, 0, &mut text);
        }
        text.push('}');
        let mut input = text.into_bytes();
        if next(4) == 0 {
            let at = next(input.len());
            match next(3) {
                0 => {
                    input.remove(at);
                }
                1 => input.insert(at, NOISE[next(NOISE.len())]),
                _ => input[at] = NOISE[next(NOISE.len())],
            }
        }
        let (canonical, taped) = both(&mut canon, &mut tape, &input);
        assert_eq!(taped, canonical, "{:?}", String::from_utf8_lossy(&input));
        match canonical {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
    }
    // Both kinds were tried, many of each.
    assert!(accepted > 2_000 && refused > 2_000, "{accepted} {refused}");
}
