"""An S3 endpoint for bench/large.sh whose large objects are generated as they are read.

    python bench/s3gen.py PORT UPSTREAM

Every request is passed to UPSTREAM (moto or LocalStack: S3 and SQS), except HEAD and
GET of an object registered with `POST /_generated` (JSON: bucket, key, kind, mb,
shape, etag, last_modified): those are answered here, the body made row by row while it
is sent, with the ETag and Last-Modified of the small placeholder the bench put at that
key upstream (so the notification, the ledger's ETag and the load's If-Match agree). A 5 GB object
then needs neither the emulator's memory (moto holds an object whole) nor its disk and
upload time (LocalStack writes it twice), and the bronze load reads it as from S3.
Registering answers with the object's size, records and text bytes, counted by making
it once; a GET makes the same bytes again. Ranges are refused: a first load reads the
object once, whole.
"""

import http.client
import http.server
import json
import random
import sys
import zlib

PORT, UPSTREAM = int(sys.argv[1]), sys.argv[2].removeprefix("http://").rstrip("/")
BLOCK = 8 << 20
WORDS = (b"the parcel was handed to the carrier at the depot and scanned at the regional hub "
         b"before it left for the last mile with a note from the customer asking to leave it "
         b"with a neighbour if nobody is home").split()
# A wide record's note: 600 words drawn from the sentence, one of 997 such notes.
NOTES = [b" ".join(map(random.Random(n).choice, [WORDS] * 600)) for n in range(997)]


def order(i):
    return b"%d,customer %d,%d.%02d,2026-11-%02dT10:%02d:00Z,%s" % (
        i, i % 100_000, i % 10_000, i % 100, i % 28 + 1, i % 60, b"shipped" if i % 3 else b"open")


def event(i):
    return b'{"id":%d,"customer":"customer %d","amount":%d.%02d,"tags":["t%d"],"open":%s' % (
        i, i % 100_000, i % 10_000, i % 100, i % 7, b"true" if i % 3 else b"false")


def text_blocks(spec, counts):
    """The object's text in blocks of about 8 MB, until it reaches spec["mb"] MB."""
    limit = spec["mb"] << 20
    if spec["kind"] == "ndjson" and spec["shape"] == "wide":
        row = lambda i: b'%s,"note":"order %d: %s"}\n' % (event(i), i, NOTES[i % 997])
    elif spec["kind"] == "ndjson":
        row = lambda i: event(i) + b"}\n"
    elif spec["shape"] == "wide":
        header = b"order_id,customer,amount,ordered_at,state,note\n"
        row = lambda i: b'%s,"order %d: %s"\n' % (order(i), i, NOTES[i % 997])
    else:
        header = b"order_id,customer,amount,ordered_at,state\n"
        row = lambda i: order(i) + b"\n"
    if spec["kind"] == "csv":
        counts["text"] += len(header)
        yield header
    i = 0
    while counts["text"] < limit:
        block, size = [], 0
        while size < BLOCK and counts["text"] + size < limit:
            line = row(i)
            block.append(line)
            size += len(line)
            i += 1
        counts["text"] += size
        counts["records"] = i
        yield b"".join(block)


def body(spec, counts=None):
    """The object's bytes as stored: the text, gzip'd for NDJSON."""
    counts = {"records": 0, "text": 0} if counts is None else counts
    if spec["kind"] == "csv":
        yield from text_blocks(spec, counts)
        return
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    for block in text_blocks(spec, counts):
        yield z.compress(block)
    yield z.flush()


GENERATED = {}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def generated(self):
        path = self.path.split("?", 1)[0]
        return GENERATED.get(path)

    def do_HEAD(self):
        spec = self.generated()
        if spec is None:
            return self.forward()
        self.head(spec)
        self.end_headers()

    def do_GET(self):
        spec = self.generated()
        if spec is None:
            return self.forward()
        if self.headers.get("Range"):
            self.send_response(501)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.head(spec)
        self.end_headers()
        for chunk in body(spec):
            self.wfile.write(chunk)

    def head(self, spec):
        self.send_response(200)
        self.send_header("Content-Length", str(spec["size"]))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("ETag", spec["etag"])
        self.send_header("Last-Modified", spec["last_modified"])

    def do_POST(self):
        if self.path != "/_generated":
            return self.forward()
        spec = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        counts = {"records": 0, "text": 0}
        spec["size"] = sum(len(chunk) for chunk in body(spec, counts))
        GENERATED[f"/{spec['bucket']}/{spec['key']}"] = spec
        answer = json.dumps({"size": spec["size"], **counts}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def do_PUT(self):
        self.forward()

    def do_DELETE(self):
        self.forward()

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        upstream = http.client.HTTPConnection(UPSTREAM, timeout=120)
        upstream.request(self.command, self.path, body=payload, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status, response.reason)
        # A HEAD's Content-Length is the object's; anything else's, the body's.
        dropped = ("transfer-encoding", "connection")
        if self.command != "HEAD":
            dropped += ("content-length",)
            self.send_header("Content-Length", str(len(data)))
        for name, value in response.getheaders():
            if name.lower() not in dropped:
                self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        upstream.close()


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
