#!/usr/bin/env python3
"""Writes the seed corpora: fuzz/corpus/<target>/seed-*. Run from anywhere:
python3 fuzz/make_seeds.py. Deterministic (gzip without a timestamp)."""

import gzip
import pathlib

FUZZ = pathlib.Path(__file__).resolve().parent
DEMO = FUZZ.parent / "tests" / "data" / "demo"

ORDERS = (DEMO / "orders.csv").read_bytes()
CUSTOMERS = (DEMO / "customers.ndjson").read_bytes()
ORDERS_GZ = (DEMO / "orders-2.csv.gz").read_bytes()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


CSV = {
    "orders": ORDERS,
    "crlf-bom-quotes": b"\xef\xbb\xbfid,name,note\r\n007,\"Smith, J\",\r\n"
    b"2,\"multi\nline\",\"say \"\"hi\"\"\"\r\n\r\n3,x,\r\n",
    "ragged-unclosed": b"a,b\n1,2\n1,2,3\n3,\"open\n4,5\n",
    "dup-empty-names": b"a,,a, a \n1,2,3,4\n",
    "no-header": b"1,Ada,3.5\n2,Grace,-1\n",
    "escapes": b"k,v\nctl,\"\x01\x1f\t\x08\x0c\"\nuni,\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\nbad,\xff\n",
}
SEMI = b"name;note;amount\n\"Smith, J\";\"a, b\";1,5\nx;y;2\n"
TSV = b"id\tname\tat\n1\tAda\t2026-01-02\n2\t\"Gr\tace\"\t02/01/2026\n"
PIPE = b"a|b|c\n\"x|y\"|2|3\n"
LATIN1 = "id;ville;prix\n1;Orl\u00e9ans;3\u20ac\n2;K\u00f6ln;\u00bd\n".encode("cp1252")
UTF16 = "id,name\n1,Zo\u00eb\n2,\u6771\u4eac\n".encode("utf-16")  # with BOM
UTF16BE_NOBOM = "id,name\n1,Ada\n2,Grace\n".encode("utf-16-be")

JSON = {
    "array": b'[{"b":1,"a":[true,false,null]},\n {"a":"x\\u00e9\\n","c":{"z":1.50,"y":-0e+3}},\n 7,\n {}]',
    "object": b'{\n  "id": 1,\n  "nested": {"k": [1, 2, {"d": "\\ud83d\\ude00"}]}\n}\n',
    "ndjson": CUSTOMERS,
    "ndjson-bad-lines": b'{"a":1}\n\n{"a":1,"a":2}\n[1]\n{"s":"\\u0000"}\n{"n":1e400}\n{"x":\n',
    "numbers": b'[{"n":-0.0e-0},{"n":12345678901234567890123},{"n":1E+2}]',
    "strings": b'{"\\u00e9":"\\/\\b\\f\\n\\r\\t\\"\\\\","e":"\xc3\xa9","u":"\\uD834\\uDD1E"}',
    "deep": b"[" * 60 + b"{}" + b"]" * 60,
}

targets = {
    # first byte: bits 0-1 delimiter (, ; \t |), bit 2 header
    "csv_reader": {
        **{f"comma-{k}": b"\x04" + v for k, v in CSV.items()},
        "comma-no-header-flag": b"\x00" + CSV["no-header"],
        "semicolon": b"\x05" + SEMI,
        "tab": b"\x06" + TSV,
        "pipe": b"\x07" + PIPE,
        "latin1-bytes": b"\x05" + LATIN1,
    },
    "json_reader": dict(JSON),
    # first byte % 6: x.csv, x.tsv, x.json, x.ndjson, x, x.csv.gz
    "sniffer": {
        "csv-orders": b"\x00" + ORDERS,
        "csv-semicolon-noext": b"\x04" + SEMI,
        "tsv": b"\x01" + TSV,
        "pipe-noext": b"\x04" + PIPE,
        "json-array": b"\x02" + JSON["array"],
        "json-object-noext": b"\x04" + JSON["object"],
        "ndjson": b"\x03" + CUSTOMERS,
        "ndjson-noext": b"\x04" + CUSTOMERS,
        "gzip-demo": b"\x05" + ORDERS_GZ,
        "gzip-multi-member": b"\x05" + gz(ORDERS[:100]) + gz(ORDERS[100:]),
        "gzip-truncated": b"\x05" + gz(ORDERS)[:-10],
        "gzip-ndjson": b"\x03" + gz(CUSTOMERS),
        "latin1": b"\x00" + LATIN1,
        "utf16-bom": b"\x00" + UTF16,
        "utf16be-nobom": b"\x04" + UTF16BE_NOBOM,
        "utf16-ndjson": b"\x03" + '{"a":"\u00e9"}\n'.encode("utf-16-le"),
        "binary-zip": b"\x04PK\x03\x04\x14\x00\x00\x00",
    },
}

for target, seeds in targets.items():
    folder = FUZZ / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (folder / f"seed-{name}").write_bytes(data)
    print(f"{target}: {len(seeds)} seeds")
