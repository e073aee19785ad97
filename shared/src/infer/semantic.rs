//! Semantic types: what a string column holds, beyond "text". Each check is strict
//! enough that ordinary words and numbers do not match, and a column's confidence is
//! the share of its non-null values that do.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::{Index, IndexMut};
use std::str::FromStr;

use serde::Serialize;

/// A semantic type, in the order they are tried. Reports name it in lowercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Semantic {
    /// `user@example.com`
    Email,
    /// `https://example.com/a`: http, https, ftp or s3, `://` and a host.
    Url,
    /// `123e4567-e89b-12d3-a456-426614174000`
    Uuid,
    /// `192.0.2.1`
    Ipv4,
    /// `2001:db8::1`
    Ipv6,
    /// `+1 (555) 010-9999`: 10 to 15 digits (8 after a `+`), with separators.
    Phone,
    /// `$12.50`, `12,50 €`, `CHF 20`: an amount with a currency sign or code.
    Currency,
    /// `12.5%`
    Percentage,
    /// Postal codes: US (`02134`, `02134-1234`), Canadian and UK (`SW1A 1AA`).
    Zip,
    /// ISO 3166 country codes, two or three letters: `DE`, `USA`.
    Country,
}

/// Every semantic type, in the order they are tried (and a tie is settled).
pub const ALL: [Semantic; 10] = [
    Semantic::Email,
    Semantic::Url,
    Semantic::Uuid,
    Semantic::Ipv4,
    Semantic::Ipv6,
    Semantic::Phone,
    Semantic::Currency,
    Semantic::Percentage,
    Semantic::Zip,
    Semantic::Country,
];

impl Semantic {
    /// The name a schema version records (as its field's `semantic`) and quality
    /// figures show.
    pub fn name(self) -> &'static str {
        match self {
            Semantic::Email => "email",
            Semantic::Url => "url",
            Semantic::Uuid => "uuid",
            Semantic::Ipv4 => "ipv4",
            Semantic::Ipv6 => "ipv6",
            Semantic::Phone => "phone",
            Semantic::Currency => "currency",
            Semantic::Percentage => "percentage",
            Semantic::Zip => "zip",
            Semantic::Country => "country",
        }
    }

    /// Whether `text` is a value of this type. Each check first rejects on a cheap
    /// property (length, one byte), since most values of most columns fail them all;
    /// that test is inlined into the loop over the types, the full check is not.
    #[inline]
    pub fn matches(self, text: &str) -> bool {
        self.may_match(text.as_bytes()) && self.check(text)
    }

    /// The cheap property every value of this type has.
    #[inline(always)]
    fn may_match(self, bytes: &[u8]) -> bool {
        match self {
            Semantic::Email => bytes.contains(&b'@'),
            Semantic::Url => bytes.len() > 6 && scheme_mark(bytes),
            Semantic::Uuid => bytes.len() == 36,
            Semantic::Ipv4 => (7..=15).contains(&bytes.len()),
            Semantic::Ipv6 => bytes.contains(&b':'),
            Semantic::Phone => (8..=24).contains(&bytes.len()),
            Semantic::Currency => currency_marked(bytes),
            Semantic::Percentage => bytes.last() == Some(&b'%'),
            Semantic::Zip => {
                (5..=10).contains(&bytes.len())
                    && (bytes[0].is_ascii_digit() || bytes[0].is_ascii_uppercase())
            }
            Semantic::Country => (2..=3).contains(&bytes.len()) && bytes[0].is_ascii_uppercase(),
        }
    }

    /// The full check, for a text that passed [`Semantic::may_match`].
    fn check(self, text: &str) -> bool {
        match self {
            Semantic::Email => email(text),
            Semantic::Url => url(text),
            Semantic::Uuid => uuid(text),
            Semantic::Ipv4 => Ipv4Addr::from_str(text).is_ok(),
            Semantic::Ipv6 => text.contains(':') && Ipv6Addr::from_str(text).is_ok(),
            Semantic::Phone => phone(text),
            Semantic::Currency => currency(text),
            Semantic::Percentage => text
                .strip_suffix('%')
                .is_some_and(|n| decimal(n.trim_end())),
            Semantic::Zip => zip(text),
            Semantic::Country => country(text),
        }
    }
}

/// Whether `://` is in `bytes`: found by its `:` (a vectorised search), since text
/// columns ask this of every value and most values have no `:` at all.
fn scheme_mark(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b':', bytes).any(|at| bytes[at + 1..].starts_with(b"//"))
}

/// How many values matched each semantic type, one counter per type under its name,
/// read and written by the type (`counts[Semantic::Email]`), never by a position.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counts {
    email: u64,
    url: u64,
    uuid: u64,
    ipv4: u64,
    ipv6: u64,
    phone: u64,
    currency: u64,
    percentage: u64,
    zip: u64,
    country: u64,
}

impl Index<Semantic> for Counts {
    type Output = u64;

    fn index(&self, semantic: Semantic) -> &u64 {
        match semantic {
            Semantic::Email => &self.email,
            Semantic::Url => &self.url,
            Semantic::Uuid => &self.uuid,
            Semantic::Ipv4 => &self.ipv4,
            Semantic::Ipv6 => &self.ipv6,
            Semantic::Phone => &self.phone,
            Semantic::Currency => &self.currency,
            Semantic::Percentage => &self.percentage,
            Semantic::Zip => &self.zip,
            Semantic::Country => &self.country,
        }
    }
}

impl Counts {
    /// Counts the types one value matched. Most values match none: they cost a test.
    pub(super) fn add(&mut self, matched: Matched) {
        if matched == Matched::default() {
            return;
        }
        for semantic in ALL {
            self[semantic] += u64::from(matched.contains(semantic));
        }
    }
}

impl IndexMut<Semantic> for Counts {
    fn index_mut(&mut self, semantic: Semantic) -> &mut u64 {
        match semantic {
            Semantic::Email => &mut self.email,
            Semantic::Url => &mut self.url,
            Semantic::Uuid => &mut self.uuid,
            Semantic::Ipv4 => &mut self.ipv4,
            Semantic::Ipv6 => &mut self.ipv6,
            Semantic::Phone => &mut self.phone,
            Semantic::Currency => &mut self.currency,
            Semantic::Percentage => &mut self.percentage,
            Semantic::Zip => &mut self.zip,
            Semantic::Country => &mut self.country,
        }
    }
}

/// The semantic types one value matched: what a value seen again counts again
/// without being checked again.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Matched(u16);

impl Matched {
    /// Notes that the value matched `semantic`.
    pub(super) fn insert(&mut self, semantic: Semantic) {
        self.0 |= 1 << semantic as u16;
    }

    /// Whether the value matched `semantic`.
    fn contains(self, semantic: Semantic) -> bool {
        self.0 & 1 << semantic as u16 != 0
    }
}

/// Characters an address may have before its `@` besides letters and digits.
const EMAIL_LOCAL: &str = "!#$%&'*+/=?^_`{|}~.-";

fn email(text: &str) -> bool {
    if text.is_ascii() {
        return ascii_email(text.as_bytes());
    }
    email_chars(text)
}

/// An address checked character by character: any text, letters and digits of any
/// script.
fn email_chars(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    let label_ok = |l: &str| {
        !l.is_empty() && !l.starts_with('-') && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || EMAIL_LOCAL.contains(c))
        && domain.contains('.')
        && domain.split('.').all(label_ok)
        && domain
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(char::is_alphabetic))
}

/// [`email`] for ASCII, where a letter or digit is an ASCII one: one pass over the
/// bytes, no iterator of characters, as an email column checks every distinct value.
fn ascii_email(b: &[u8]) -> bool {
    let Some(at) = memchr::memchr(b'@', b) else {
        return false;
    };
    let (local, domain) = (&b[..at], &b[at + 1..]);
    let local_ok = |c: &u8| c.is_ascii_alphanumeric() || EMAIL_LOCAL.as_bytes().contains(c);
    let label_ok = |l: &[u8]| {
        l.first().is_some_and(|&c| c != b'-')
            && l.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
    };
    let tld = domain.rsplit(|&c| c == b'.').next().unwrap_or_default();
    !local.is_empty()
        && local.len() <= 64
        && local[0] != b'.'
        && local.iter().all(local_ok)
        && domain.contains(&b'.')
        && domain.split(|&c| c == b'.').all(label_ok)
        && tld.len() >= 2
        && tld.iter().all(u8::is_ascii_alphabetic)
}

fn url(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    matches!(
        scheme.to_ascii_lowercase().as_str(),
        "http" | "https" | "ftp" | "s3"
    ) && !host.is_empty()
        && !text.chars().any(char::is_whitespace)
}

fn uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// E.164 (`+` and 8–15 digits) or a national layout with separators: 10–15 digits in
/// groups split by spaces, dashes, dots or a parenthesised area code. Bare digit runs
/// are not phones (they are indistinguishable from ids), nor are shorter grouped
/// numbers (ZIP+4 codes, local numbers without an area code).
fn phone(text: &str) -> bool {
    let b = text.as_bytes();
    let (mut digits, mut plus, mut open, mut close, mut dots, mut spaces_dashes) =
        (0, 0, 0, 0, 0, 0);
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'0'..=b'9' => digits += 1,
            b'+' if i == 0 => plus += 1,
            b'(' => open += 1,
            b')' => close += 1,
            b'.' => dots += 1,
            b' ' | b'-' => spaces_dashes += 1,
            _ => return false,
        }
    }
    let separated = plus + open + dots + spaces_dashes > 0;
    // One dot and nothing else is a decimal number, not a phone.
    let decimal = dots == 1 && spaces_dashes == 0 && open == 0;
    let min_digits = if plus == 1 { 8 } else { 10 };
    separated
        && !decimal
        && open == close
        && open <= 1
        && (min_digits..=15).contains(&digits)
        && Ipv4Addr::from_str(text).is_err()
}

/// A number as written in text: digits with one optional `.`, optional sign.
fn decimal(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty()
        && digits.chars().any(|c| c.is_ascii_digit())
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.matches('.').count() <= 1
}

/// The ISO codes [`currency`] reads, after its symbols.
const CODES: [&str; 12] = [
    "USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "CNY", "INR", "SEK", "NOK", "DKK",
];

/// Whether three bytes are one of [`CODES`]: compared as one number each, with no call
/// into `memcmp`, since codes like `SKU-…` or `ORD-…` meet this test on every value.
fn is_code(s: &[u8]) -> bool {
    const fn packed(code: &str) -> u32 {
        let b = code.as_bytes();
        u32::from_le_bytes([b[0], b[1], b[2], 0])
    }
    const PACKED: [u32; CODES.len()] = {
        let mut all = [0; CODES.len()];
        let mut i = 0;
        while i < CODES.len() {
            all[i] = packed(CODES[i]);
            i += 1;
        }
        all
    };
    match s {
        [a, b, c] => PACKED.contains(&u32::from_le_bytes([*a, *b, *c, 0])),
        _ => false,
    }
}

/// Whether the value starts or ends the way a currency amount must: with a symbol
/// (`$`, or the first byte of `€ £ ¥ ₹`) or one of [`CODES`]. (Three capital letters
/// that are no code cannot start or end an amount: [`currency`] finds only these, and
/// the letters would be left in the amount.)
fn currency_marked(b: &[u8]) -> bool {
    let symbol = |c: u8| c == b'$' || c >= 0xc2;
    match (b.first(), b.last()) {
        (Some(&first), Some(&last)) => {
            symbol(first)
                || symbol(last)
                || (b.len() > 3 && (is_code(&b[..3]) || is_code(&b[b.len() - 3..])))
                || (first == b'-' && b.get(1).is_some_and(|&c| symbol(c)))
        }
        _ => false,
    }
}

/// An amount with its currency: a symbol or ISO code before or after the number,
/// thousands separated by `,` (or `.` with a decimal `,`).
fn currency(text: &str) -> bool {
    const SYMBOLS: [&str; 8] = ["$", "€", "£", "¥", "₹", "CHF", "US$", "R$"];
    let t = text.trim();
    let t = t.strip_prefix('-').unwrap_or(t);
    let amount = SYMBOLS
        .iter()
        .chain(CODES.iter())
        .find_map(|s| t.strip_prefix(s).or_else(|| t.strip_suffix(s)))
        .map(|rest| rest.trim().trim_start_matches('-'));
    amount.is_some_and(|a| {
        let plain: String = a.chars().filter(|&c| c != ',' && c != '\'').collect();
        decimal(&plain) || decimal(&a.replace('.', "").replace(',', "."))
    })
}

/// US ZIP and ZIP+4, UK and Canadian postcodes.
fn zip(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let us = (b.len() == 5 && digits(b))
        || (b.len() == 10 && b[5] == b'-' && digits(&b[..5]) && digits(&b[6..]));
    if us {
        return true;
    }
    // At most 10 bytes (the caller checked): compacted on the stack, no allocation.
    let mut buf = [0u8; 10];
    let mut len = 0;
    for &c in b.iter().filter(|&&c| c != b' ') {
        let Some(slot) = buf.get_mut(len) else {
            return false;
        };
        *slot = c;
        len += 1;
    }
    let compact = &buf[..len];
    let upper = |c: &u8| c.is_ascii_uppercase();
    let digit = |c: &u8| c.is_ascii_digit();
    let canada = compact.len() == 6
        && upper(&compact[0])
        && digit(&compact[1])
        && upper(&compact[2])
        && digit(&compact[3])
        && upper(&compact[4])
        && digit(&compact[5]);
    let uk = (5..=7).contains(&compact.len()) && {
        let (out, inward) = compact.split_at(compact.len() - 3);
        digit(&inward[0])
            && upper(&inward[1])
            && upper(&inward[2])
            && upper(&out[0])
            && out.iter().any(digit)
            && out
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    };
    us || canada || uk
}

/// ISO 3166-1 alpha-2 and alpha-3 codes, upper case as the standard writes them.
fn country(text: &str) -> bool {
    const ALPHA2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";
    const ALPHA3: &str = "ABW AFG AGO AIA ALA ALB AND ARE ARG ARM ASM ATA ATF ATG AUS AUT AZE BDI BEL BEN BES BFA BGD BGR BHR BHS BIH BLM BLR BLZ BMU BOL BRA BRB BRN BTN BVT BWA CAF CAN CCK CHE CHL CHN CIV CMR COD COG COK COL COM CPV CRI CUB CUW CXR CYM CYP CZE DEU DJI DMA DNK DOM DZA ECU EGY ERI ESH ESP EST ETH FIN FJI FLK FRA FRO FSM GAB GBR GEO GGY GHA GIB GIN GLP GMB GNB GNQ GRC GRD GRL GTM GUF GUM GUY HKG HMD HND HRV HTI HUN IDN IMN IND IOT IRL IRN IRQ ISL ISR ITA JAM JEY JOR JPN KAZ KEN KGZ KHM KIR KNA KOR KWT LAO LBN LBR LBY LCA LIE LKA LSO LTU LUX LVA MAC MAF MAR MCO MDA MDG MDV MEX MHL MKD MLI MLT MMR MNE MNG MNP MOZ MRT MSR MTQ MUS MWI MYS MYT NAM NCL NER NFK NGA NIC NIU NLD NOR NPL NRU NZL OMN PAK PAN PCN PER PHL PLW PNG POL PRI PRK PRT PRY PSE PYF QAT REU ROU RUS RWA SAU SDN SEN SGP SGS SHN SJM SLB SLE SLV SMR SOM SPM SRB SSD STP SUR SVK SVN SWE SWZ SXM SYC SYR TCA TCD TGO THA TJK TKL TKM TLS TON TTO TUN TUR TUV TWN TZA UGA UKR UMI URY USA UZB VAT VCT VEN VGB VIR VNM VUT WLF WSM YEM ZAF ZMB ZWE";
    // Both lists are sorted, with codes at a fixed stride: a binary search, no split.
    let (list, stride) = match text.len() {
        2 => (ALPHA2.as_bytes(), 3),
        3 => (ALPHA3.as_bytes(), 4),
        _ => return false,
    };
    let codes = (list.len() + 1) / stride;
    let code = |i: usize| &list[i * stride..i * stride + stride - 1];
    let (mut lo, mut hi) = (0, codes);
    while lo < hi {
        let mid = (lo + hi) / 2;
        match code(mid).cmp(text.as_bytes()) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn which(text: &str) -> Vec<&'static str> {
        ALL.iter()
            .filter(|s| s.matches(text))
            .map(|s| s.name())
            .collect()
    }

    #[test]
    fn each_type_recognises_its_values_and_not_the_others() {
        assert_eq!(which("ada@example.com"), vec!["email"]);
        assert_eq!(which("https://example.com/a?b=1"), vec!["url"]);
        assert_eq!(which("s3://b/k"), vec!["url"]);
        for (text, marked) in [
            ("a://", true),
            (":://", true),
            ("a:/", false),
            ("a:b//", false),
        ] {
            assert_eq!(scheme_mark(text.as_bytes()), marked, "{text}");
        }
        assert_eq!(which("123e4567-e89b-12d3-a456-426614174000"), vec!["uuid"]);
        assert_eq!(which("192.168.0.1"), vec!["ipv4"]);
        assert_eq!(which("2001:db8::1"), vec!["ipv6"]);
        assert_eq!(which("+14155552671"), vec!["phone"]);
        assert_eq!(which("(555) 123-4567"), vec!["phone"]);
        assert_eq!(which("020 7946 0958"), vec!["phone"]);
        assert_eq!(which("$1,234.50"), vec!["currency"]);
        assert_eq!(which("12.00 EUR"), vec!["currency"]);
        assert_eq!(which("€5"), vec!["currency"]);
        assert_eq!(which("12.5%"), vec!["percentage"]);
        assert_eq!(which("00501"), vec!["zip"]);
        assert_eq!(which("12345-6789"), vec!["zip"]);
        assert_eq!(which("SW1A 1AA"), vec!["zip"]);
        assert_eq!(which("K1A 0B1"), vec!["zip"]);
        assert_eq!(which("DE"), vec!["country"]);
        assert_eq!(which("USA"), vec!["country"]);
        for plain in [
            "hello",
            "12345678",
            "3.14",
            "Ada Lovelace",
            "de",
            "1.2.3",
            "a@b",
            "not an email@x.com",
        ] {
            assert_eq!(which(plain), Vec::<&str>::new(), "{plain}");
        }
    }

    /// Emails in ASCII, checked byte by byte, against the check of characters.
    #[test]
    fn ascii_emails_are_checked_as_characters_were() {
        let locals = [
            "a",
            "",
            ".a",
            "a.b",
            "o'neil+x",
            "a b",
            "a@b",
            &"x".repeat(65),
            "-",
        ];
        let domains = [
            "b.com", "b", "b.c", "-b.com", "b-.com", "b..com", "b.c0m", "b.com.", "x@y.io", "",
        ];
        let mut emails = 0;
        for local in locals {
            for domain in domains {
                for text in [format!("{local}@{domain}"), format!("{local}{domain}")] {
                    let expected = email_chars(&text);
                    assert_eq!(email(&text), expected, "{text:?}");
                    emails += usize::from(expected);
                }
            }
        }
        assert!(emails >= 5, "{emails}");
    }

    /// The test before the full currency check was "three capital letters" where it is
    /// now one of the codes: on amounts with every marker, letters that are no code,
    /// signs and spaces, a value is a currency exactly when it was.
    #[test]
    fn currency_codes_reject_early_what_the_full_check_rejected() {
        let before = |b: &[u8]| {
            let symbol = |c: u8| c == b'$' || c >= 0xc2;
            let code = |s: &[u8]| s.len() == 3 && s.iter().all(u8::is_ascii_uppercase);
            match (b.first(), b.last()) {
                (Some(&first), Some(&last)) => {
                    symbol(first)
                        || symbol(last)
                        || (b.len() > 3 && (code(&b[..3]) || code(&b[b.len() - 3..])))
                        || (first == b'-' && b.get(1).is_some_and(|&c| symbol(c)))
                }
                _ => false,
            }
        };
        let marks = [
            "", "USD", "EUR", "CHF", "SKU", "ABC", "US$", "R$", "$", "€", "X", "UUSD",
        ];
        let amounts = ["", "5", "1,234.50", "12,50", "1.234,5", "x", "-5", "SKU"];
        let (mut values, mut currencies) = (0, 0);
        for lead in marks {
            for amount in amounts {
                for trail in marks {
                    for gap in ["", " ", "-"] {
                        let value = format!("{lead}{gap}{amount}{gap}{trail}");
                        let was = before(value.as_bytes()) && currency(&value);
                        assert_eq!(Semantic::Currency.matches(&value), was, "{value:?}");
                        values += 1;
                        currencies += usize::from(was);
                    }
                }
            }
        }
        assert!(
            currencies > 50 && values - currencies > 1000,
            "{currencies} of {values}"
        );
    }
}
