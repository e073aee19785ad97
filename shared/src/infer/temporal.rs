//! Dates, times and timestamps in text, with the layout each one was written in.
//!
//! A value is split into numbers and separators and matched against the layouts data
//! engineers meet: ISO 8601 first, then day-first and month-first with `/`, `-` or `.`.
//! A value like `03/04/2026` matches both `%d/%m/%Y` and `%m/%d/%Y`; the column decides
//! (see `Column`), never a guess per value.

/// A date layout, by index into [`DATE_FORMATS`].
pub type DateFormat = usize;

/// The date layouts recognised, strftime-style: a value's layouts are a bit set over these.
pub const DATE_FORMATS: [&str; 9] = [
    "%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%d/%m/%Y", "%m/%d/%Y", "%d-%m-%Y", "%m-%d-%Y", "%d.%m.%Y",
    "%m.%d.%Y",
];

/// Which of [`DATE_FORMATS`] a date matches, as a bit set.
pub type FormatSet = u16;

/// How a time of day was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeLayout {
    /// Whether the time has seconds.
    pub seconds: bool,
    /// Whether the seconds have a fraction.
    pub fraction: bool,
}

/// How a timestamp's time zone was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Zone {
    /// No zone: a local time.
    None,
    /// `Z` or UTC.
    Utc,
    /// A numeric offset.
    Offset,
}

/// What a text value is, temporally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporal {
    /// A date, with the layouts it fits.
    Date(FormatSet),
    /// A time of day.
    Time(TimeLayout),
    /// A date and a time.
    Timestamp {
        /// The date layouts it fits.
        date: FormatSet,
        /// The byte between date and time (`T` or a space).
        separator: u8,
        /// The time's layout.
        time: TimeLayout,
        /// Its zone.
        zone: Zone,
    },
}

/// Classifies `text`; `None` when it is no date, time or timestamp.
pub fn classify(text: &[u8]) -> Option<Temporal> {
    iso(text).or_else(|| general(text))
}

/// The date layout ISO 8601 writes, `%Y-%m-%d`, as a [`FormatSet`].
const ISO_DATE: FormatSet = 1;

/// ISO 8601 as most files write it — `2026-11-20`, `2026-11-20T09:15:00`,
/// `2026-11-20 09:15:00Z` — read at fixed positions, without splitting: a column of
/// timestamps reads each one. `None` for anything else (an impossible date included),
/// which [`general`] then classifies; where this says `Some`, so would it.
fn iso(text: &[u8]) -> Option<Temporal> {
    if !matches!(text.len(), 10 | 19 | 20) {
        return None;
    }
    let two = |at: usize| two_digits(text[at], text[at + 1]);
    if text[4] != b'-' || text[7] != b'-' {
        return None;
    }
    let year = number(&text[..4])?;
    if !valid(year, two(5)?, two(8)?) {
        return None;
    }
    if text.len() == 10 {
        return Some(Temporal::Date(ISO_DATE));
    }
    let separator = text[10];
    let zone = match text.get(19) {
        None => Zone::None,
        Some(b'Z') => Zone::Utc,
        Some(_) => return None,
    };
    let fits = (separator == b'T' || separator == b' ')
        && text[13] == b':'
        && text[16] == b':'
        && two(11)? <= 23
        && two(14)? <= 59
        && two(17)? <= 60;
    fits.then_some(Temporal::Timestamp {
        date: ISO_DATE,
        separator,
        time: TimeLayout {
            seconds: true,
            fraction: false,
        },
        zone,
    })
}

/// The number two ASCII digits write.
fn two_digits(tens: u8, ones: u8) -> Option<u32> {
    (tens.is_ascii_digit() && ones.is_ascii_digit())
        .then(|| u32::from(tens - b'0') * 10 + u32::from(ones - b'0'))
}

/// Any layout of [`DATE_FORMATS`], with or without a time and a zone.
fn general(text: &[u8]) -> Option<Temporal> {
    if text.len() < 5 || text.len() > 40 || !text[0].is_ascii_digit() {
        return None;
    }
    if let Some(time) = time(text) {
        return Some(Temporal::Time(time));
    }
    let split = text.iter().position(|&b| b == b'T' || b == b' ');
    let (date_part, rest) = match split {
        Some(at) => (&text[..at], Some((text[at], &text[at + 1..]))),
        None => (text, None),
    };
    let date = date(date_part)?;
    match rest {
        None => Some(Temporal::Date(date)),
        Some((separator, rest)) => {
            let (time_part, zone) = zone(rest)?;
            Some(Temporal::Timestamp {
                date,
                separator,
                time: time(time_part)?,
                zone,
            })
        }
    }
}

fn number(text: &[u8]) -> Option<u32> {
    if text.is_empty() || text.len() > 4 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(text.iter().fold(0, |n, &d| n * 10 + u32::from(d - b'0')))
}

fn days_in(month: u32, year: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

/// Year 0 is no calendar year (ISO's 0000 is 1 BC): PostgreSQL refuses it as a date.
fn valid(year: u32, month: u32, day: u32) -> bool {
    year >= 1 && (1..=12).contains(&month) && day >= 1 && day <= days_in(month, year)
}

/// The date layouts `text` matches.
fn date(text: &[u8]) -> Option<FormatSet> {
    let sep = *text.iter().find(|b| !b.is_ascii_digit())?;
    let mut parts = text.split(|&b| b == sep);
    let (a, b, c) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (na, nb, nc) = (number(a)?, number(b)?, number(c)?);
    let sep_index = match sep {
        b'-' => 0,
        b'/' => 1,
        b'.' => 2,
        _ => return None,
    };
    let mut set: FormatSet = 0;
    if a.len() == 4 && b.len() <= 2 && c.len() <= 2 && valid(na, nb, nc) {
        set |= 1 << sep_index;
    }
    if c.len() == 4 && a.len() <= 2 && b.len() <= 2 {
        let (day_first, month_first) = match sep {
            b'/' => (3, 4),
            b'-' => (5, 6),
            _ => (7, 8),
        };
        if valid(nc, nb, na) {
            set |= 1 << day_first;
        }
        if valid(nc, na, nb) {
            set |= 1 << month_first;
        }
    }
    (set != 0).then_some(set)
}

/// `HH:MM[:SS[.fff…]]`.
fn time(text: &[u8]) -> Option<TimeLayout> {
    let (main, fraction) = match text.iter().position(|&b| b == b'.' || b == b',') {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let mut parts = main.split(|&b| b == b':');
    let (h, m) = (parts.next()?, parts.next()?);
    let s = parts.next();
    if parts.next().is_some() || h.len() != 2 || m.len() != 2 {
        return None;
    }
    if number(h)? > 23 || number(m)? > 59 {
        return None;
    }
    if let Some(s) = s {
        if s.len() != 2 || number(s)? > 60 {
            return None;
        }
    }
    if let Some(f) = fraction {
        if s.is_none() || f.is_empty() || f.len() > 9 || !f.iter().all(u8::is_ascii_digit) {
            return None;
        }
    }
    Some(TimeLayout {
        seconds: s.is_some(),
        fraction: fraction.is_some(),
    })
}

/// Splits a zone designator off the end of a time: `Z`, `±HH:MM`, `±HHMM`, `±HH`.
fn zone(text: &[u8]) -> Option<(&[u8], Zone)> {
    if let Some(time) = text
        .strip_suffix(b"Z")
        .or_else(|| text.strip_suffix(b" UTC"))
    {
        return Some((time, Zone::Utc));
    }
    let Some(at) = text.iter().rposition(|&b| b == b'+' || b == b'-') else {
        return Some((text, Zone::None));
    };
    let offset = &text[at + 1..];
    let digits: Vec<u8> = offset.iter().copied().filter(|&b| b != b':').collect();
    let ok = matches!(digits.len(), 2 | 4)
        && digits.iter().all(u8::is_ascii_digit)
        && number(&digits[..2])? <= 14;
    ok.then_some((
        text[..at].strip_suffix(b" ").unwrap_or(&text[..at]),
        Zone::Offset,
    ))
}

/// The strftime layout of a time.
pub fn time_format(layout: TimeLayout) -> &'static str {
    match (layout.seconds, layout.fraction) {
        (false, _) => "%H:%M",
        (true, false) => "%H:%M:%S",
        (true, true) => "%H:%M:%S%.f",
    }
}

/// The strftime layout of a timestamp.
pub fn timestamp_format(date: DateFormat, separator: u8, time: TimeLayout, zone: Zone) -> String {
    let zone = match zone {
        Zone::None => "",
        Zone::Utc => "Z",
        Zone::Offset => "%z",
    };
    format!(
        "{}{}{}{zone}",
        DATE_FORMATS[date],
        char::from(separator),
        time_format(time)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formats(set: FormatSet) -> Vec<&'static str> {
        (0..DATE_FORMATS.len())
            .filter(|i| set & (1 << i) != 0)
            .map(|i| DATE_FORMATS[i])
            .collect()
    }

    #[test]
    fn dates_report_every_layout_they_fit() {
        let date = |t: &str| match classify(t.as_bytes()) {
            Some(Temporal::Date(set)) => formats(set),
            other => panic!("{t}: {other:?}"),
        };
        assert_eq!(date("2026-11-20"), vec!["%Y-%m-%d"]);
        assert_eq!(date("2024/02/29"), vec!["%Y/%m/%d"]);
        assert_eq!(date("25/12/2026"), vec!["%d/%m/%Y"]);
        assert_eq!(date("12/25/2026"), vec!["%m/%d/%Y"]);
        assert_eq!(date("03/04/2026"), vec!["%d/%m/%Y", "%m/%d/%Y"]);
        assert_eq!(date("31.12.2026"), vec!["%d.%m.%Y"]);
        for not_a_date in [
            "2026-02-30",
            "2023-02-29",
            "13/13/2026",
            "1/2/26",
            "12345",
            "2026-1-1-1",
            "a2026-01-01",
        ] {
            assert_eq!(classify(not_a_date.as_bytes()), None, "{not_a_date}");
        }
    }

    /// The fixed-position reader against the general one, on every shape it reads and
    /// its near misses: where it answers, the general reader answers the same, and it
    /// answers for the common layouts (else it would be no fast path).
    #[test]
    fn the_iso_fast_path_agrees_with_the_general_reader() {
        let mut values = Vec::new();
        for date in [
            "2026-11-20",
            "2024-02-29",
            "2023-02-29",
            "2026-02-30",
            "0000-01-01",
            "2026-13-01",
            "2026-00-10",
            "2026-12-31",
            "2026-1a-01",
            "2026/11/20",
            "20261-1-20",
            "2026-11-2x",
        ] {
            values.push(date.to_owned());
            for sep in ["T", " ", "x", "t"] {
                for time in [
                    "09:15:00", "23:59:60", "24:00:00", "12:60:00", "12:00:61", "1a:00:00",
                    "09-15-00",
                ] {
                    for zone in ["", "Z", "z", "+", " "] {
                        values.push(format!("{date}{sep}{time}{zone}"));
                    }
                }
            }
        }
        let mut fast = 0;
        for value in &values {
            if let Some(found) = iso(value.as_bytes()) {
                fast += 1;
                assert_eq!(Some(found), general(value.as_bytes()), "{value}");
            }
            assert_eq!(
                classify(value.as_bytes()),
                general(value.as_bytes()),
                "{value}"
            );
        }
        for common in ["2026-11-20", "2026-11-20T09:15:00Z", "2013-01-01 05:00:00"] {
            assert!(iso(common.as_bytes()).is_some(), "{common}");
        }
        // Three good dates, each alone and with two separators, two good times, two zones.
        assert_eq!(fast, 3 + 3 * 2 * 2 * 2);
    }

    #[test]
    fn times_and_timestamps_keep_their_layout_and_zone() {
        assert_eq!(
            classify(b"23:59"),
            Some(Temporal::Time(TimeLayout {
                seconds: false,
                fraction: false
            }))
        );
        assert_eq!(classify(b"24:00"), None);
        let ts = |t: &str| match classify(t.as_bytes()) {
            Some(Temporal::Timestamp {
                date,
                separator,
                time,
                zone,
            }) => {
                let first = (0..DATE_FORMATS.len())
                    .find(|i| date & (1 << i) != 0)
                    .unwrap();
                timestamp_format(first, separator, time, zone)
            }
            other => panic!("{t}: {other:?}"),
        };
        assert_eq!(ts("2026-11-20T09:15:00Z"), "%Y-%m-%dT%H:%M:%SZ");
        assert_eq!(
            ts("2026-11-20 09:15:00.123+01:00"),
            "%Y-%m-%d %H:%M:%S%.f%z"
        );
        assert_eq!(ts("2026-11-20T09:15-0500"), "%Y-%m-%dT%H:%M%z");
        assert_eq!(ts("20/11/2026 09:15"), "%d/%m/%Y %H:%M");
        assert_eq!(classify(b"2026-11-20T25:00:00"), None);
        assert_eq!(classify(b"2026-11-20 hello"), None);
    }
}
