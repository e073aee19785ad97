//! Semantic types: what a string column holds, beyond "text". Each check is strict
//! enough that ordinary words and numbers do not match, and a column's confidence is
//! the share of its non-null values that do.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A semantic type, in the order they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Semantic {
    Email,
    Url,
    Uuid,
    Ipv4,
    Ipv6,
    Phone,
    Currency,
    Percentage,
    Zip,
    Country,
}

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
    /// property (length, one byte), since most values of most columns fail them all.
    pub fn matches(self, text: &str) -> bool {
        let bytes = text.as_bytes();
        let quick = match self {
            Semantic::Email => bytes.contains(&b'@'),
            Semantic::Url => bytes.len() > 6 && text.contains("://"),
            Semantic::Uuid => bytes.len() == 36,
            Semantic::Ipv4 => (7..=15).contains(&bytes.len()),
            Semantic::Ipv6 => bytes.contains(&b':'),
            Semantic::Phone => bytes.len() >= 8 && bytes.len() <= 24,
            Semantic::Currency => !bytes.is_empty() && !bytes.iter().all(u8::is_ascii_digit),
            Semantic::Percentage => bytes.last() == Some(&b'%'),
            Semantic::Zip => (5..=10).contains(&bytes.len()),
            Semantic::Country => (2..=3).contains(&bytes.len()) && bytes[0].is_ascii_uppercase(),
        };
        if !quick {
            return false;
        }
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

fn email(text: &str) -> bool {
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
            .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c))
        && domain.contains('.')
        && domain.split('.').all(label_ok)
        && domain
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(char::is_alphabetic))
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
    let digits = text.chars().filter(char::is_ascii_digit).count();
    let allowed = text
        .chars()
        .all(|c| c.is_ascii_digit() || " -.()+".contains(c));
    let plus_ok = text.find('+').is_none_or(|at| at == 0) && text.matches('+').count() <= 1;
    let parens_ok =
        text.matches('(').count() == text.matches(')').count() && text.matches('(').count() <= 1;
    let separated = text.starts_with('+') || text.chars().any(|c| " -.()".contains(c));
    let no_decimal =
        !(text.matches('.').count() == 1 && !text.contains(' ') && !text.contains('-'));
    let not_ip = Ipv4Addr::from_str(text).is_err();
    let min_digits = if text.starts_with('+') { 8 } else { 10 };
    allowed
        && plus_ok
        && parens_ok
        && separated
        && no_decimal
        && not_ip
        && (min_digits..=15).contains(&digits)
        && text
            .chars()
            .next()
            .is_some_and(|c| c == '+' || c == '(' || c.is_ascii_digit())
}

/// A number as written in text: digits with one optional `.`, optional sign.
fn decimal(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty()
        && digits.chars().any(|c| c.is_ascii_digit())
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.matches('.').count() <= 1
}

/// An amount with its currency: a symbol or ISO code before or after the number,
/// thousands separated by `,` (or `.` with a decimal `,`).
fn currency(text: &str) -> bool {
    const SYMBOLS: [&str; 8] = ["$", "€", "£", "¥", "₹", "CHF", "US$", "R$"];
    const CODES: [&str; 12] = [
        "USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "CNY", "INR", "SEK", "NOK", "DKK",
    ];
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
    let compact: Vec<u8> = b.iter().copied().filter(|&c| c != b' ').collect();
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
    const ALPHA3: &str = "AFG ALA ALB DZA ASM AND AGO AIA ATA ATG ARG ARM ABW AUS AUT AZE BHS BHR BGD BRB BLR BEL BLZ BEN BMU BTN BOL BES BIH BWA BVT BRA IOT BRN BGR BFA BDI CPV KHM CMR CAN CYM CAF TCD CHL CHN CXR CCK COL COM COG COD COK CRI CIV HRV CUB CUW CYP CZE DNK DJI DMA DOM ECU EGY SLV GNQ ERI EST SWZ ETH FLK FRO FJI FIN FRA GUF PYF ATF GAB GMB GEO DEU GHA GIB GRC GRL GRD GLP GUM GTM GGY GIN GNB GUY HTI HMD VAT HND HKG HUN ISL IND IDN IRN IRQ IRL IMN ISR ITA JAM JPN JEY JOR KAZ KEN KIR PRK KOR KWT KGZ LAO LVA LBN LSO LBR LBY LIE LTU LUX MAC MDG MWI MYS MDV MLI MLT MHL MTQ MRT MUS MYT MEX FSM MDA MCO MNG MNE MSR MAR MOZ MMR NAM NRU NPL NLD NCL NZL NIC NER NGA NIU NFK MKD MNP NOR OMN PAK PLW PSE PAN PNG PRY PER PHL PCN POL PRT PRI QAT REU ROU RUS RWA BLM SHN KNA LCA MAF SPM VCT WSM SMR STP SAU SEN SRB SYC SLE SGP SXM SVK SVN SLB SOM ZAF SGS SSD ESP LKA SDN SUR SJM SWE CHE SYR TWN TJK TZA THA TLS TGO TKL TON TTO TUN TUR TKM TCA TUV UGA UKR ARE GBR USA UMI URY UZB VUT VEN VNM VGB VIR WLF ESH YEM ZMB ZWE";
    match text.len() {
        2 => ALPHA2.split(' ').any(|c| c == text),
        3 => ALPHA3.split(' ').any(|c| c == text),
        _ => false,
    }
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
}
