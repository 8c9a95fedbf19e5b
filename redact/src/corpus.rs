//! Seeded, labelled corpus of realistic LLM traffic (feature `corpus`): chat messages, support
//! tickets, code snippets, logs, JSON tool arguments and multi-language text, with planted
//! sensitive values of every kind (generated valid: Luhn cards from real issuer prefixes,
//! mod-97 IBANs, SSNs outside the invalid areas, …) and look-alikes that must stay untouched.
//!
//! The same seed gives the same corpus on every machine, so the recall/precision test and the
//! throughput benchmark in `bench/` measure the same data. [`measure_throughput`] is the
//! single-thread MB/s helper the bench calls.

use std::fmt::Write as _;
use std::ops::Range;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::{Kind, Redactor};

/// One generated document.
#[derive(Debug, Clone)]
pub struct Sample {
    pub text: String,
    pub format: Format,
    /// Sensitive values, by byte range in `text` (the exact span that must be replaced).
    pub planted: Vec<Planted>,
    /// Look-alikes that must not be touched.
    pub decoys: Vec<Decoy>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planted {
    pub kind: Kind,
    pub range: Range<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoy {
    /// What the look-alike imitates, e.g. `luhn_invalid_card`, `version`, `uuid`.
    pub what: &'static str,
    pub range: Range<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Chat,
    Ticket,
    Code,
    Log,
    /// JSON text: chat `messages`, tool calls with (possibly string-encoded) `arguments`.
    Json,
    Multilingual,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::Chat,
        Format::Ticket,
        Format::Code,
        Format::Log,
        Format::Json,
        Format::Multilingual,
    ];
}

/// Splits `text` into documents of about `size` bytes, cut at line or sentence ends (chat-message-sized
/// pieces for throughput measurements).
pub fn documents(text: &str, size: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for piece in text.split_inclusive(['\n', '.']) {
        cur.push_str(piece);
        if cur.len() >= size {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Generates `n` samples from `seed` (deterministic).
pub fn generate(seed: u64, n: usize) -> Vec<Sample> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let format = Format::ALL[i % Format::ALL.len()];
            let mut b = Builder::default();
            match format {
                Format::Chat => chat(&mut rng, &mut b),
                Format::Ticket => ticket(&mut rng, &mut b),
                Format::Code => code(&mut rng, &mut b),
                Format::Log => log(&mut rng, &mut b),
                Format::Json => json_doc(&mut rng, &mut b),
                Format::Multilingual => multilingual(&mut rng, &mut b),
            }
            b.finish(format)
        })
        .collect()
}

/// About `bytes` of ordinary prompt prose with no sensitive value (but with numbers, dates,
/// versions and code): the common case the prefilter must make cheap.
pub fn clean_text(seed: u64, bytes: usize) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = String::with_capacity(bytes + 256);
    while out.len() < bytes {
        let mut b = Builder::default();
        filler(&mut rng, &mut b, 3);
        decoys(&mut rng, &mut b, 2);
        b.s("\n");
        out.push_str(&b.text);
    }
    out
}

/// About `bytes` of plain chat prose: no numbers, no look-alikes (the cheapest realistic case).
pub fn plain_prose(seed: u64, bytes: usize) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = String::with_capacity(bytes + 256);
    while out.len() < bytes {
        out.push_str(pick(&mut rng, SENTENCES));
        out.push(if rng.random_bool(0.2) { '\n' } else { ' ' });
    }
    out
}

/// Result of [`measure_throughput`].
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    pub bytes: u64,
    pub seconds: f64,
    /// Megabytes (10^6 bytes) of input text per second, single thread.
    pub mb_per_s: f64,
    /// Replacements made per pass over `texts`.
    pub findings_per_pass: u64,
}

/// Runs [`Redactor::redact_text`] over `texts` repeatedly on the calling thread for at least
/// `min_time` and reports input MB/s.
pub fn measure_throughput(redactor: &Redactor, texts: &[String], min_time: Duration) -> Throughput {
    let pass_bytes: u64 = texts.iter().map(|t| t.len() as u64).sum();
    let mut findings_per_pass = 0;
    let mut bytes = 0u64;
    let start = Instant::now();
    let mut first = true;
    while first || start.elapsed() < min_time {
        let mut found = 0u64;
        for t in texts {
            let (out, f) = redactor.redact_text(t);
            std::hint::black_box(out);
            found += f.total();
        }
        if first {
            findings_per_pass = found;
            first = false;
        }
        bytes += pass_bytes;
    }
    let seconds = start.elapsed().as_secs_f64();
    Throughput {
        bytes,
        seconds,
        mb_per_s: bytes as f64 / 1e6 / seconds.max(1e-9),
        findings_per_pass,
    }
}

// ---------------------------------------------------------------------------------------------
// Builder: text with labelled spans

#[derive(Default)]
struct Builder {
    text: String,
    planted: Vec<Planted>,
    decoys: Vec<Decoy>,
}

impl Builder {
    fn s(&mut self, t: &str) {
        self.text.push_str(t);
    }

    fn plant(&mut self, kind: Kind, value: &str) {
        let start = self.text.len();
        self.text.push_str(value);
        self.planted.push(Planted {
            kind,
            range: start..self.text.len(),
        });
    }

    fn decoy(&mut self, what: &'static str, value: &str) {
        let start = self.text.len();
        self.text.push_str(value);
        self.decoys.push(Decoy {
            what,
            range: start..self.text.len(),
        });
    }

    /// Appends `inner` as the content of a JSON string (escaped), moving its spans.
    fn json_string(&mut self, inner: Builder) {
        self.text.push('"');
        let base = self.text.len();
        // Map every inner byte offset to the escaped offset.
        let mut map = vec![0usize; inner.text.len() + 1];
        let mut buf = [0u8; 4];
        for (i, c) in inner.text.char_indices() {
            map[i] = self.text.len() - base;
            match c {
                '"' => self.text.push_str("\\\""),
                '\\' => self.text.push_str("\\\\"),
                '\n' => self.text.push_str("\\n"),
                '\r' => self.text.push_str("\\r"),
                '\t' => self.text.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(self.text, "\\u{:04x}", c as u32);
                }
                c => self.text.push_str(c.encode_utf8(&mut buf)),
            }
        }
        map[inner.text.len()] = self.text.len() - base;
        for p in inner.planted {
            self.planted.push(Planted {
                kind: p.kind,
                range: base + map[p.range.start]..base + map[p.range.end],
            });
        }
        for d in inner.decoys {
            self.decoys.push(Decoy {
                what: d.what,
                range: base + map[d.range.start]..base + map[d.range.end],
            });
        }
        self.text.push('"');
    }

    fn finish(self, format: Format) -> Sample {
        Sample {
            text: self.text,
            format,
            planted: self.planted,
            decoys: self.decoys,
        }
    }
}

fn pick<T: ?Sized>(rng: &mut StdRng, xs: &[&'static T]) -> &'static T {
    xs.choose(rng).copied().unwrap_or(xs[0])
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const HEX: &[u8] = b"0123456789abcdef";

fn rand_from(rng: &mut StdRng, alphabet: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

/// Random string from `alphabet` that has upper, lower and digit (real keys always do).
fn rand_mixed(rng: &mut StdRng, alphabet: &[u8], n: usize) -> String {
    loop {
        let s = rand_from(rng, alphabet, n);
        let b = s.as_bytes();
        if b.iter().any(u8::is_ascii_uppercase)
            && b.iter().any(u8::is_ascii_lowercase)
            && b.iter().any(u8::is_ascii_digit)
        {
            return s;
        }
    }
}

fn digits(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

fn b64url_encode(data: &[u8]) -> String {
    let mut out = String::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in data {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(char::from(B64URL[((acc >> bits) & 63) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(B64URL[((acc << (6 - bits)) & 63) as usize]));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Valid sensitive values

const FIRST: &[&str] = &[
    "alice", "bob", "carol", "david", "emma", "felix", "grace", "hiro", "ines", "jamal", "katja",
    "liam", "maria", "noah", "olga", "priya", "quinn", "rafael", "sofia", "tomas", "uma", "victor",
    "wei", "yara", "zoe", "jean-luc", "anne", "kenji", "fatima", "lars",
];
const LAST: &[&str] = &[
    "smith",
    "mueller",
    "dupont",
    "garcia",
    "rossi",
    "tanaka",
    "kowalski",
    "johansson",
    "oconnor",
    "nguyen",
    "schmidt",
    "martin",
    "silva",
    "jansen",
    "novak",
    "ivanova",
    "kim",
    "patel",
    "brown",
    "lee",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "acme.io",
    "mail.example.org",
    "company.co.uk",
    "gmail.com",
    "outlook.de",
    "uni-heidelberg.de",
    "startup.ai",
    "eu.corp.example.net",
    "yahoo.co.jp",
    "proton.me",
    "bigbank.fr",
    "shop.example",
];

fn email(rng: &mut StdRng) -> String {
    let f = pick(rng, FIRST);
    let l = pick(rng, LAST);
    let d = pick(rng, DOMAINS);
    match rng.random_range(0..7) {
        0 => format!("{f}.{l}@{d}"),
        1 => format!("{f}{}@{d}", rng.random_range(1..999)),
        2 => format!("{}{l}@{d}", &f[..1]),
        3 => format!(
            "{f}_{l}+{}@{d}",
            pick(rng, &["news", "billing", "llm", "test"])
        ),
        4 => {
            let mut s = format!("{f}.{l}@{d}");
            if let Some(c) = s.get_mut(0..1) {
                c.make_ascii_uppercase();
            }
            s
        }
        5 => format!("support-{}@{d}", rng.random_range(1..99)),
        _ => format!("{l}.{f}{}@{d}", rng.random_range(70..99)),
    }
}

/// NANP area/exchange: [2-9]xx, not N11.
fn nanp3(rng: &mut StdRng) -> String {
    loop {
        let a = rng.random_range(2..10u8);
        let b = rng.random_range(0..10u8);
        let c = rng.random_range(0..10u8);
        if !(b == 1 && c == 1) {
            return format!("{a}{b}{c}");
        }
    }
}

fn phone(rng: &mut StdRng) -> String {
    let d = |rng: &mut StdRng, n| digits(rng, n);
    match rng.random_range(0..30) {
        0 => format!("+1 {}-{}-{}", nanp3(rng), nanp3(rng), d(rng, 4)),
        1 => format!("+1 ({}) {}-{}", nanp3(rng), nanp3(rng), d(rng, 4)),
        2 => format!("({}) {}-{}", nanp3(rng), nanp3(rng), d(rng, 4)),
        3 => format!("{}-{}-{}", nanp3(rng), nanp3(rng), d(rng, 4)),
        4 => format!("{}.{}.{}", nanp3(rng), nanp3(rng), d(rng, 4)),
        5 => format!("1-800-{}-{}", nanp3(rng), d(rng, 4)),
        6 => format!("+1{}{}{}", nanp3(rng), nanp3(rng), d(rng, 4)),
        7 => format!("+44 20 7946 {}", d(rng, 4)),
        8 => format!("020 7946 {}", d(rng, 4)),
        9 => format!("+44 7700 900{}", d(rng, 3)),
        10 => format!("07700 900{}", d(rng, 3)),
        11 => format!("+44 (0)20 7946 {}", d(rng, 4)),
        12 => format!("0161 496 {}", d(rng, 4)),
        13 => format!("+49 30 {}", d(rng, 9)),
        14 => format!("030 {}", d(rng, 8)),
        15 => format!("030/{}", d(rng, 7)),
        16 => format!("0151 {}", d(rng, 8)),
        17 => format!("+49 151 {}", d(rng, 8)),
        18 => format!(
            "+33 {} {} {} {} {}",
            rng.random_range(1..8),
            d(rng, 2),
            d(rng, 2),
            d(rng, 2),
            d(rng, 2)
        ),
        19 => format!("01 {} {} {} {}", d(rng, 2), d(rng, 2), d(rng, 2), d(rng, 2)),
        20 => format!("06.{}.{}.{}.{}", d(rng, 2), d(rng, 2), d(rng, 2), d(rng, 2)),
        21 => format!("03-{}-{}", d(rng, 4), d(rng, 4)),
        22 => format!("+81 90-{}-{}", d(rng, 4), d(rng, 4)),
        23 => format!("+61 2 {} {}", d(rng, 4), d(rng, 4)),
        24 => format!("0412 {} {}", d(rng, 3), d(rng, 3)),
        25 => format!("+91 {}{} {}", rng.random_range(6..10), d(rng, 4), d(rng, 5)),
        26 => format!("+55 11 9{}-{}", d(rng, 4), d(rng, 4)),
        27 => format!(
            "+34 6{} {} {} {}",
            d(rng, 2),
            d(rng, 2),
            d(rng, 2),
            d(rng, 2)
        ),
        28 => format!("+86 138 {} {}", d(rng, 4), d(rng, 4)),
        _ => format!("+4477009{}", d(rng, 5)),
    }
}

/// Issuer prefixes and lengths of real networks.
const CARD_BRANDS: &[(&str, usize)] = &[
    ("4", 16),
    ("4", 16),
    ("4", 13),
    ("51", 16),
    ("53", 16),
    ("55", 16),
    ("2221", 16),
    ("2720", 16),
    ("34", 15),
    ("37", 15),
    ("6011", 16),
    ("65", 16),
    ("3530", 16),
    ("36", 14),
    ("62", 16),
    ("62", 19),
    ("6759", 16),
];

fn luhn_digit(body: &[u8]) -> u8 {
    // Check digit for `body` (digit values) so that body+check passes Luhn.
    let mut sum = 0u32;
    for (i, &d) in body.iter().rev().enumerate() {
        let mut v = u32::from(d);
        if i % 2 == 0 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    ((10 - sum % 10) % 10) as u8
}

/// Card digits (valid = passes Luhn, else the check digit is wrong).
fn card_digits(rng: &mut StdRng, valid: bool) -> (String, usize) {
    let (prefix, len) = *CARD_BRANDS.choose(rng).unwrap_or(&("4", 16));
    let mut d: Vec<u8> = prefix.bytes().map(|b| b - b'0').collect();
    while d.len() < len - 1 {
        d.push(rng.random_range(0..10));
    }
    let check = luhn_digit(&d);
    d.push(if valid {
        check
    } else {
        (check + rng.random_range(1..10)) % 10
    });
    (d.iter().map(|x| char::from(b'0' + x)).collect(), len)
}

fn format_card(rng: &mut StdRng, s: &str, len: usize) -> String {
    let style = rng.random_range(0..3);
    let sep = match style {
        0 => return s.to_string(),
        1 => " ",
        _ => "-",
    };
    let groups: &[usize] = match len {
        15 => &[4, 6, 5],
        14 => &[4, 6, 4],
        _ => &[4, 4, 4, 4, 4],
    };
    let mut out = String::new();
    let mut i = 0;
    for &g in groups {
        if i >= s.len() {
            break;
        }
        if i > 0 {
            out.push_str(sep);
        }
        let e = (i + g).min(s.len());
        out.push_str(&s[i..e]);
        i = e;
    }
    out
}

fn card(rng: &mut StdRng, valid: bool) -> String {
    let (d, len) = card_digits(rng, valid);
    format_card(rng, &d, len)
}

/// BBAN layouts: `n` digit, `a` upper letter, `c` upper alnum.
const IBAN_COUNTRIES: &[(&str, &str)] = &[
    ("DE", "nnnnnnnnnnnnnnnnnn"),
    ("GB", "aaaannnnnnnnnnnnnn"),
    ("FR", "nnnnnnnnnncccccccccccnn"),
    ("ES", "nnnnnnnnnnnnnnnnnnnn"),
    ("IT", "annnnnnnnnncccccccccccc"),
    ("NL", "aaaannnnnnnnnn"),
    ("BE", "nnnnnnnnnnnn"),
    ("CH", "nnnnncccccccccccc"),
    ("AT", "nnnnnnnnnnnnnnnn"),
    ("PL", "nnnnnnnnnnnnnnnnnnnnnnnn"),
    ("SE", "nnnnnnnnnnnnnnnnnnnn"),
    ("NO", "nnnnnnnnnnn"),
    ("IE", "aaaannnnnnnnnnnnnn"),
    ("PT", "nnnnnnnnnnnnnnnnnnnnn"),
];

fn iban_check(cc: &str, bban: &str) -> u32 {
    let mut rem = 0u32;
    for c in bban.bytes().chain(cc.bytes()).chain(*b"00") {
        rem = match c {
            b'0'..=b'9' => (rem * 10 + u32::from(c - b'0')) % 97,
            _ => (rem * 100 + u32::from(c - b'A' + 10)) % 97,
        };
    }
    98 - rem
}

fn iban(rng: &mut StdRng, valid: bool) -> String {
    let (cc, layout) = *IBAN_COUNTRIES.choose(rng).unwrap_or(&IBAN_COUNTRIES[0]);
    let bban: String = layout
        .bytes()
        .map(|k| match k {
            b'n' => char::from(b'0' + rng.random_range(0..10u8)),
            b'a' => char::from(b'A' + rng.random_range(0..26u8)),
            _ => char::from(UPPER_ALNUM[rng.random_range(0..UPPER_ALNUM.len())]),
        })
        .collect();
    let mut check = iban_check(cc, &bban);
    if !valid {
        check = (check + rng.random_range(1..90)) % 97;
        if check < 2 {
            check += 10;
        }
        if check == iban_check(cc, &bban) {
            check = (check % 96) + 2;
        }
    }
    let compact = format!("{cc}{check:02}{bban}");
    if rng.random_bool(0.5) {
        compact
    } else {
        compact
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn ssn(rng: &mut StdRng, valid: bool) -> String {
    let (area, group, serial) = if valid {
        let mut a = rng.random_range(1..900);
        if a == 666 {
            a = 667;
        }
        (a, rng.random_range(1..100), rng.random_range(1..10000))
    } else {
        match rng.random_range(0..5) {
            0 => (0, rng.random_range(1..100), rng.random_range(1..10000)),
            1 => (666, rng.random_range(1..100), rng.random_range(1..10000)),
            2 => (
                rng.random_range(900..1000),
                rng.random_range(1..100),
                rng.random_range(1..10000),
            ),
            3 => (rng.random_range(1..666), 0, rng.random_range(1..10000)),
            _ => (rng.random_range(1..666), rng.random_range(1..100), 0),
        }
    };
    let sep = if rng.random_bool(0.8) { "-" } else { " " };
    format!("{area:03}{sep}{group:02}{sep}{serial:04}")
}

fn nino(rng: &mut StdRng, valid: bool) -> String {
    const FIRST_OK: &[u8] = b"ABCEGHJKLMNOPRSTWXYZ";
    const SECOND_OK: &[u8] = b"ABCEGHJKLMNPRSTWXYZ";
    let prefix = if valid {
        loop {
            let a = FIRST_OK[rng.random_range(0..FIRST_OK.len())];
            let b = SECOND_OK[rng.random_range(0..SECOND_OK.len())];
            let p = [a, b];
            if !matches!(&p, b"BG" | b"GB" | b"KN" | b"NK" | b"NT" | b"TN" | b"ZZ") {
                break String::from_utf8_lossy(&p).into_owned();
            }
        }
    } else {
        pick(rng, &["BG", "GB", "QQ", "DA", "FO", "NK", "ZZ", "AV"]).to_string()
    };
    let n = digits(rng, 6);
    let suffix = char::from(b'A' + rng.random_range(0..4u8));
    if rng.random_bool(0.5) {
        format!("{prefix}{n}{suffix}")
    } else {
        format!("{prefix} {} {} {} {suffix}", &n[0..2], &n[2..4], &n[4..6])
    }
}

fn dni(rng: &mut StdRng, valid: bool) -> String {
    const TABLE: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    let nie = rng.random_bool(0.3);
    let (prefix, num, shown) = if nie {
        let p = rng.random_range(0..3u32);
        let body = rng.random_range(0..10_000_000u32);
        (
            Some(char::from(b'X' + p as u8)),
            p * 10_000_000 + body,
            format!("{body:07}"),
        )
    } else {
        let body = rng.random_range(10_000_000..100_000_000u32);
        (None, body, format!("{body:08}"))
    };
    let mut letter = TABLE[(num % 23) as usize];
    if !valid {
        letter = TABLE[((num + rng.random_range(1..23)) % 23) as usize];
    }
    let prefix: String = prefix.into_iter().collect();
    format!("{prefix}{shown}{}", char::from(letter))
}

fn national_id(rng: &mut StdRng) -> String {
    match rng.random_range(0..3) {
        0 => ssn(rng, true),
        1 => nino(rng, true),
        _ => dni(rng, true),
    }
}

fn ipv4(rng: &mut StdRng) -> String {
    match rng.random_range(0..4) {
        0 => format!(
            "10.{}.{}.{}",
            rng.random_range(0..256),
            rng.random_range(0..256),
            rng.random_range(1..255)
        ),
        1 => format!(
            "192.168.{}.{}",
            rng.random_range(0..256),
            rng.random_range(1..255)
        ),
        2 => format!(
            "172.{}.{}.{}",
            rng.random_range(16..32),
            rng.random_range(0..256),
            rng.random_range(1..255)
        ),
        _ => format!(
            "{}.{}.{}.{}",
            rng.random_range(1..224),
            rng.random_range(0..256),
            rng.random_range(0..256),
            rng.random_range(1..255)
        ),
    }
}

fn ipv6(rng: &mut StdRng) -> String {
    let g = |rng: &mut StdRng| format!("{:x}", rng.random_range(1..0x10000u32));
    loop {
        let s = match rng.random_range(0..6) {
            0 => (0..8)
                .map(|_| format!("{:04x}", rng.random_range(0..0x10000u32)))
                .collect::<Vec<_>>()
                .join(":"),
            1 => format!("2001:db8:{}::{}", g(rng), g(rng)),
            2 => format!("fe80::{}:{}:{}:{}", g(rng), g(rng), g(rng), g(rng)),
            3 => "::1".to_string(),
            4 => format!("::ffff:{}", ipv4(rng)),
            _ => format!("2a02:{}:{}:{}::{}", g(rng), g(rng), g(rng), g(rng)),
        };
        if s.bytes().any(|b| b.is_ascii_digit()) {
            return s;
        }
    }
}

fn jwt(rng: &mut StdRng) -> String {
    let (header, sig_len) = match rng.random_range(0..3) {
        0 => (r#"{"alg":"HS256","typ":"JWT"}"#.to_string(), 43),
        1 => (
            format!(
                r#"{{"alg":"RS256","kid":"{}","typ":"JWT"}}"#,
                rand_from(rng, HEX, 16)
            ),
            342,
        ),
        _ => (r#"{"typ":"JWT","alg":"ES256"}"#.to_string(), 86),
    };
    let payload = format!(
        r#"{{"sub":"{}","name":"{} {}","iat":{},"exp":{}}}"#,
        digits(rng, 10),
        pick(rng, FIRST),
        pick(rng, LAST),
        1_700_000_000 + rng.random_range(0..50_000_000u64),
        1_760_000_000 + rng.random_range(0..50_000_000u64)
    );
    format!(
        "{}.{}.{}",
        b64url_encode(header.as_bytes()),
        b64url_encode(payload.as_bytes()),
        rand_from(rng, B64URL, sig_len)
    )
}

fn private_key(rng: &mut StdRng) -> String {
    let label = pick(
        rng,
        &[
            "RSA PRIVATE KEY",
            "PRIVATE KEY",
            "EC PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
        ],
    );
    let lines = rng.random_range(3..20);
    let mut s = format!("-----BEGIN {label}-----\n");
    for i in 0..lines {
        let n = if i + 1 == lines {
            rng.random_range(8..64)
        } else {
            64
        };
        s.push_str(&rand_from(rng, B64, n));
        s.push('\n');
    }
    let _ = write!(s, "-----END {label}-----");
    s
}

fn github_token(rng: &mut StdRng) -> String {
    if rng.random_bool(0.2) {
        format!(
            "github_pat_{}_{}",
            rand_mixed(rng, ALNUM, 22),
            rand_mixed(rng, ALNUM, 59)
        )
    } else {
        let p = pick(rng, &["ghp", "ghp", "gho", "ghu", "ghs", "ghr"]);
        format!("{p}_{}", rand_mixed(rng, ALNUM, 36))
    }
}

fn slack_token(rng: &mut StdRng) -> String {
    match rng.random_range(0..4) {
        0 => format!(
            "xoxb-{}-{}-{}",
            digits(rng, 11),
            digits(rng, 13),
            rand_mixed(rng, ALNUM, 24)
        ),
        1 => format!(
            "xoxp-{}-{}-{}-{}",
            digits(rng, 11),
            digits(rng, 11),
            digits(rng, 13),
            rand_from(rng, HEX, 32)
        ),
        2 => format!(
            "xapp-1-A{}-{}-{}",
            rand_from(rng, UPPER_ALNUM, 10),
            digits(rng, 13),
            rand_from(rng, HEX, 64)
        ),
        _ => format!(
            "https://hooks.slack.com/services/T{}/B{}/{}",
            rand_from(rng, UPPER_ALNUM, 8),
            rand_from(rng, UPPER_ALNUM, 10),
            rand_mixed(rng, ALNUM, 24)
        ),
    }
}

fn aws_key_id(rng: &mut StdRng) -> String {
    let p = pick(rng, &["AKIA", "AKIA", "ASIA"]);
    format!(
        "{p}{}",
        rand_from(rng, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
    )
}

fn aws_secret(rng: &mut StdRng) -> String {
    rand_mixed(rng, B64, 40)
}

/// Provider API keys (the `ApiKey` kind), with whether they need a `Bearer`/label context.
fn api_key(rng: &mut StdRng) -> String {
    match rng.random_range(0..7) {
        0 => format!("sk-{}", rand_mixed(rng, ALNUM, 48)),
        1 => format!("sk-proj-{}", rand_mixed(rng, B64URL, 156)),
        2 => format!("sk-ant-api03-{}AA", rand_mixed(rng, B64URL, 93)),
        3 => format!("sk-svcacct-{}", rand_mixed(rng, B64URL, 100)),
        4 => format!("AIza{}", rand_mixed(rng, B64URL, 35)),
        5 => format!(
            "{}_{}",
            pick(rng, &["sk_live", "sk_test", "rk_live"]),
            rand_mixed(rng, ALNUM, 32)
        ),
        _ => format!("sk-{}", rand_from(rng, HEX, 32)), // DeepSeek-style lowercase hex
    }
}

// ---------------------------------------------------------------------------------------------
// Planting in context

/// Plants one value of a kind chosen to keep the kinds balanced, in an English context.
fn plant_any(rng: &mut StdRng, b: &mut Builder, kind: Kind) {
    match kind {
        Kind::Email => {
            let (pre, post) = *[
                ("You can reach me at ", " if anything is unclear."),
                ("Email: ", "\n"),
                ("please cc ", " on the reply."),
                ("From: Maria <", ">\n"),
                ("mailto:", " "),
                ("(contact: ", ")"),
                ("The customer's address is ", ".\n"),
                ("\"", "\" was unsubscribed. "),
            ]
            .choose(rng)
            .unwrap_or(&("", " "));
            b.s(pre);
            b.plant(Kind::Email, &email(rng));
            b.s(post);
        }
        Kind::Phone => {
            let (pre, post) = *[
                ("Call me at ", " after 5pm."),
                ("Tel: ", "\n"),
                ("my number is ", ", thanks!"),
                ("Phone ", " (mobile). "),
                ("reach the office on ", " or by email. "),
                ("callback requested: ", "\n"),
                ("WhatsApp ", " – text first please. "),
            ]
            .choose(rng)
            .unwrap_or(&("", " "));
            b.s(pre);
            b.plant(Kind::Phone, &phone(rng));
            b.s(post);
        }
        Kind::Card => {
            let (pre, post) = *[
                (
                    "My card is ",
                    " exp 12/27, can you check why it was declined?",
                ),
                ("Card number: ", "\n"),
                ("charged twice to ", " yesterday. "),
                ("card=", " cvv=***\n"),
                (
                    "please refund to the card ending in 4242 (full number ",
                    "). ",
                ),
            ]
            .choose(rng)
            .unwrap_or(&("", " "));
            b.s(pre);
            b.plant(Kind::Card, &card(rng, true));
            b.s(post);
        }
        Kind::Iban => {
            let (pre, post) = *[
                ("IBAN: ", "\n"),
                ("please transfer the deposit to ", " by Friday. "),
                ("IBAN ", " BIC DEUTDEFFXXX\n"),
                ("Account (IBAN) ", ", reference INV-2024-0042. "),
                ("pay to ", ".\n"),
            ]
            .choose(rng)
            .unwrap_or(&("", " "));
            b.s(pre);
            b.plant(Kind::Iban, &iban(rng, true));
            b.s(post);
        }
        Kind::NationalId => {
            let v = national_id(rng);
            let pre = if v.contains('-') || v.len() == 11 && v.as_bytes()[3] == b' ' {
                pick(rng, &["SSN ", "social security number: ", "My SSN is "])
            } else if v.as_bytes()[1].is_ascii_alphabetic() {
                pick(rng, &["NI number ", "National Insurance: ", "NINO: "])
            } else {
                pick(rng, &["DNI ", "NIE: ", "documento ", "ID "])
            };
            b.s(pre);
            b.plant(Kind::NationalId, &v);
            b.s(pick(
                rng,
                &[".\n", " – please verify. ", ", born 1985-03-12. ", "\n"],
            ));
        }
        Kind::Ip => {
            if rng.random_bool(0.35) {
                let v = ipv6(rng);
                match rng.random_range(0..3) {
                    0 => {
                        b.s("connect to [");
                        b.plant(Kind::Ip, &v);
                        b.s("]:8443 failed\n");
                    }
                    1 => {
                        b.s("client address ");
                        b.plant(Kind::Ip, &v);
                        b.s(" was blocked. ");
                    }
                    _ => {
                        b.s("ipv6=");
                        b.plant(Kind::Ip, &v);
                        b.s(" ");
                    }
                }
            } else {
                let v = ipv4(rng);
                match rng.random_range(0..5) {
                    0 => {
                        b.s("the server at ");
                        b.plant(Kind::Ip, &v);
                        b.s(":8080 times out. ");
                    }
                    1 => {
                        b.s("GET http://");
                        b.plant(Kind::Ip, &v);
                        b.s("/healthz returned 503\n");
                    }
                    2 => {
                        b.s("client_ip=");
                        b.plant(Kind::Ip, &v);
                        b.s(" ");
                    }
                    3 => {
                        b.s("ssh root@");
                        b.plant(Kind::Ip, &v);
                        b.s(" -p 2222\n");
                    }
                    _ => {
                        b.s("My IP is ");
                        b.plant(Kind::Ip, &v);
                        b.s(", is it on the allow-list?");
                    }
                }
            }
        }
        Kind::ApiKey => match rng.random_range(0..6) {
            0 => {
                b.s("OPENAI_API_KEY=");
                b.plant(Kind::ApiKey, &api_key(rng));
                b.s("\n");
            }
            1 => {
                b.s("Authorization: Bearer ");
                let n = rng.random_range(32..64);
                b.plant(Kind::ApiKey, &rand_mixed(rng, ALNUM, n));
                b.s("\n");
            }
            2 => {
                b.s("client = Anthropic(api_key=\"");
                b.plant(Kind::ApiKey, &api_key(rng));
                b.s("\")\n");
            }
            3 => {
                b.s("here is my key ");
                b.plant(Kind::ApiKey, &api_key(rng));
                b.s(" – why does it say 401?");
            }
            4 => {
                b.s("x-api-key: ");
                b.plant(Kind::ApiKey, &rand_mixed(rng, ALNUM, 40));
                b.s("\n");
            }
            _ => {
                b.s("curl 'https://generativelanguage.googleapis.com/v1/models?key=");
                b.plant(
                    Kind::ApiKey,
                    &format!("AIza{}", rand_mixed(rng, B64URL, 35)),
                );
                b.s("'\n");
            }
        },
        Kind::AwsKey => match rng.random_range(0..5) {
            0 => {
                b.s("aws_access_key_id = ");
                b.plant(Kind::AwsKey, &aws_key_id(rng));
                b.s("\naws_secret_access_key = ");
                b.plant(Kind::AwsKey, &aws_secret(rng));
                b.s("\n");
            }
            1 => {
                b.s("export AWS_SECRET_ACCESS_KEY=\"");
                b.plant(Kind::AwsKey, &aws_secret(rng));
                b.s("\"\n");
            }
            2 => {
                b.s("the key ");
                b.plant(Kind::AwsKey, &aws_key_id(rng));
                b.s(" was rotated. ");
            }
            3 => {
                b.s("{\"AccessKeyId\": \"");
                b.plant(Kind::AwsKey, &aws_key_id(rng));
                b.s("\", \"SecretAccessKey\": \"");
                b.plant(Kind::AwsKey, &aws_secret(rng));
                b.s("\"}\n");
            }
            _ => {
                b.s("aws_session_token: ");
                b.plant(
                    Kind::AwsKey,
                    &format!("FwoGZXIvYXdzE{}", rand_mixed(rng, B64, 180)),
                );
                b.s("\n");
            }
        },
        Kind::GithubToken => {
            let v = github_token(rng);
            match rng.random_range(0..4) {
                0 => {
                    b.s("GITHUB_TOKEN=");
                    b.plant(Kind::GithubToken, &v);
                    b.s("\n");
                }
                1 => {
                    b.s("git clone https://");
                    b.plant(Kind::GithubToken, &v);
                    b.s("@github.com/acme/infra.git\n");
                }
                2 => {
                    b.s("Authorization: token ");
                    b.plant(Kind::GithubToken, &v);
                    b.s("\n");
                }
                _ => {
                    b.s("I pasted ");
                    b.plant(Kind::GithubToken, &v);
                    b.s(" by mistake, is it revoked?");
                }
            }
        }
        Kind::SlackToken => {
            let v = slack_token(rng);
            match rng.random_range(0..3) {
                0 => {
                    b.s("SLACK_BOT_TOKEN=");
                    b.plant(Kind::SlackToken, &v);
                    b.s("\n");
                }
                1 => {
                    b.s("post the alert to ");
                    b.plant(Kind::SlackToken, &v);
                    b.s(" please. ");
                }
                _ => {
                    b.s("token: '");
                    b.plant(Kind::SlackToken, &v);
                    b.s("'\n");
                }
            }
        }
        Kind::Jwt => {
            let v = jwt(rng);
            match rng.random_range(0..4) {
                0 => {
                    b.s("Authorization: Bearer ");
                    b.plant(Kind::Jwt, &v);
                    b.s("\n");
                }
                1 => {
                    b.s("Cookie: session=");
                    b.plant(Kind::Jwt, &v);
                    b.s("; Path=/\n");
                }
                2 => {
                    b.s("why does this token fail to verify? ");
                    b.plant(Kind::Jwt, &v);
                    b.s("\n");
                }
                _ => {
                    b.s("id_token: ");
                    b.plant(Kind::Jwt, &v);
                    b.s("\n");
                }
            }
        }
        Kind::PrivateKey => {
            b.s(pick(
                rng,
                &[
                    "Here is the deploy key:\n",
                    "id_rsa contents:\n",
                    "can you check this key? ",
                ],
            ));
            b.plant(Kind::PrivateKey, &private_key(rng));
            b.s("\n");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Look-alikes

fn decoy_one(rng: &mut StdRng, b: &mut Builder) {
    let h = |rng: &mut StdRng, n| rand_from(rng, HEX, n);
    match rng.random_range(0..40) {
        0 | 1 => {
            b.s("the number ");
            b.decoy("luhn_invalid_card", &card(rng, false));
            b.s(" was rejected by the checksum. ");
        }
        2 => {
            b.s("Order ");
            let v = match rng.random_range(0..4) {
                0 => format!("ORD-{}", digits(rng, 8)),
                1 => format!("#{}", digits(rng, 6)),
                2 => format!("PO-2024-{}", digits(rng, 5)),
                _ => format!("{}", rng.random_range(100_000_000u64..9_999_999_999)),
            };
            b.decoy("order_id", &v);
            b.s(" has shipped. ");
        }
        3 => {
            b.s("request id ");
            let v = format!(
                "{}-{}-4{}-{}{}-{}",
                h(rng, 8),
                h(rng, 4),
                h(rng, 3),
                pick(rng, &["8", "9", "a", "b"]),
                h(rng, 3),
                h(rng, 12)
            );
            b.decoy("uuid", &v);
            b.s(". ");
        }
        4 => {
            b.s("fixed in commit ");
            let n = if rng.random_bool(0.5) { 40 } else { 7 };
            b.decoy("git_sha", &h(rng, n));
            b.s(". ");
        }
        5 => {
            b.s("upgrade to ");
            let v = match rng.random_range(0..5) {
                0 => format!(
                    "v{}.{}.{}",
                    rng.random_range(0..20),
                    rng.random_range(0..40),
                    rng.random_range(0..100)
                ),
                1 => format!(
                    "{}.{}.{}",
                    rng.random_range(0..20),
                    rng.random_range(0..40),
                    rng.random_range(0..100)
                ),
                2 => format!(
                    "v{}.{}.{}.{}",
                    rng.random_range(0..10),
                    rng.random_range(0..10),
                    rng.random_range(0..10),
                    rng.random_range(0..10)
                ),
                3 => format!(
                    "10.0.{}.{}",
                    rng.random_range(17000..26000),
                    rng.random_range(1000..5000)
                ),
                _ => format!(
                    "version {}.{}.{}.{}",
                    rng.random_range(0..10),
                    rng.random_range(0..10),
                    rng.random_range(0..10),
                    rng.random_range(0..300)
                ),
            };
            b.decoy("version", &v);
            b.s(" first. ");
        }
        6 => {
            b.s("on ");
            let v = match rng.random_range(0..5) {
                0 => format!(
                    "2024-{:02}-{:02}",
                    rng.random_range(1..13),
                    rng.random_range(1..29)
                ),
                1 => format!(
                    "{:02}/{:02}/2024",
                    rng.random_range(1..29),
                    rng.random_range(1..13)
                ),
                2 => format!(
                    "{:02}.{:02}.2023",
                    rng.random_range(1..29),
                    rng.random_range(1..13)
                ),
                3 => format!("Jan {}, 2025", rng.random_range(1..32)),
                _ => format!(
                    "{:02}-{:02}-2024 {:02}:{:02}",
                    rng.random_range(1..29),
                    rng.random_range(1..13),
                    rng.random_range(0..24),
                    rng.random_range(0..60)
                ),
            };
            b.decoy("date", &v);
            b.s(" we saw errors. ");
        }
        7 => {
            b.s("at ");
            let v = match rng.random_range(0..3) {
                0 => format!(
                    "{:02}:{:02}:{:02}",
                    rng.random_range(0..24),
                    rng.random_range(0..60),
                    rng.random_range(0..60)
                ),
                1 => format!(
                    "{:02}:{:02}",
                    rng.random_range(0..24),
                    rng.random_range(0..60)
                ),
                _ => format!(
                    "{:02}:{:02}:{:02}.{:03}",
                    rng.random_range(0..24),
                    rng.random_range(0..60),
                    rng.random_range(0..60),
                    rng.random_range(0..1000)
                ),
            };
            b.decoy("time", &v);
            b.s(" the job restarted. ");
        }
        8 => {
            b.s("ts=");
            let v = match rng.random_range(0..4) {
                0 => format!(
                    "2024-01-{:02}T{:02}:{:02}:{:02}Z",
                    rng.random_range(1..29),
                    rng.random_range(0..24),
                    rng.random_range(0..60),
                    rng.random_range(0..60)
                ),
                1 => format!(
                    "2024-02-{:02}T10:30:45.{:03}+05:30",
                    rng.random_range(1..29),
                    rng.random_range(0..1000)
                ),
                2 => format!("{}", rng.random_range(1_600_000_000u64..1_800_000_000)),
                _ => format!(
                    "{}",
                    rng.random_range(1_600_000_000_000u64..1_800_000_000_000)
                ),
            };
            b.decoy("timestamp", &v);
            b.s(" ");
        }
        9 => {
            b.s("ISBN ");
            let v = *[
                "978-3-16-148410-0",
                "0-306-40615-2",
                "9780306406157",
                "978-1-4028-9462-6",
                "979-10-90636-07-1",
            ]
            .choose(rng)
            .unwrap_or(&"0-306-40615-2");
            b.decoy("isbn", v);
            b.s(". ");
        }
        10 => {
            b.s("total ");
            let v = match rng.random_range(0..5) {
                0 => format!(
                    "${},{:03}.{:02}",
                    rng.random_range(1..99),
                    rng.random_range(0..1000),
                    rng.random_range(0..100)
                ),
                1 => format!(
                    "€{},{:02}",
                    rng.random_range(1..999),
                    rng.random_range(0..100)
                ),
                2 => format!(
                    "USD {},{:03},{:03}.00",
                    rng.random_range(1..99),
                    rng.random_range(0..1000),
                    rng.random_range(0..1000)
                ),
                3 => format!(
                    "¥{},{:03}",
                    rng.random_range(1..999),
                    rng.random_range(0..1000)
                ),
                _ => format!(
                    "£ {}.{:02}",
                    rng.random_range(1..999),
                    rng.random_range(0..100)
                ),
            };
            b.decoy("price", &v);
            b.s(" incl. VAT. ");
        }
        11 => {
            b.s("tracking ");
            let v = match rng.random_range(0..3) {
                0 => format!("1Z{}{}", rand_from(rng, UPPER_ALNUM, 6), digits(rng, 10)),
                1 => format!(
                    "9400 1{} {} {} {} {}",
                    digits(rng, 3),
                    digits(rng, 4),
                    digits(rng, 4),
                    digits(rng, 4),
                    digits(rng, 2)
                ),
                _ => format!("7{} {} {}", digits(rng, 3), digits(rng, 4), digits(rng, 4)),
            };
            b.decoy("tracking", &v);
            b.s(". ");
        }
        12 | 13 => {
            b.s("the old account ");
            b.decoy("bad_iban", &iban(rng, false));
            b.s(" bounced. ");
        }
        14 => {
            b.s("we use ");
            let v = *[
                "sk-learn",
                "sk-hynix",
                "sk-learn-tutorial-for-beginners-2024",
                "sk-your-api-key-here",
                "sk-proj-xxxxxxxxxxxxxxxxxxxxxxxx",
                "sk-ant-api03-YOUR-KEY",
            ]
            .choose(rng)
            .unwrap_or(&"sk-learn");
            b.decoy("sk_word", v);
            b.s(" for that. ");
        }
        15 => {
            b.s("color: ");
            let v = match rng.random_range(0..3) {
                0 => format!("#{}", h(rng, 6)),
                1 => format!("#{}", h(rng, 3).to_ascii_uppercase()),
                _ => format!("#{}", h(rng, 8)),
            };
            b.decoy("hex_color", &v);
            b.s("; ");
        }
        16 => {
            let v = match rng.random_range(0..4) {
                0 => format!("localhost:{}", rng.random_range(1024..65536)),
                1 => format!("port {}", rng.random_range(1..65536)),
                2 => format!("*:{}", rng.random_range(1024..9000)),
                _ => format!("redis:{}", rng.random_range(1024..9000)),
            };
            b.s("listening on ");
            b.decoy("port", &v);
            b.s(". ");
        }
        17 => {
            b.s("test value ");
            b.decoy("bad_ssn", &ssn(rng, false));
            b.s(" is not a real SSN. ");
        }
        18 => {
            b.s("reference ");
            b.decoy("bad_nino", &nino(rng, false));
            b.s(". ");
        }
        19 => {
            b.s("código ");
            b.decoy("bad_dni", &dni(rng, false));
            b.s(". ");
        }
        20 => {
            b.s("value ");
            let v = match rng.random_range(0..5) {
                0 => format!(
                    "{}.{}.{}.{}",
                    rng.random_range(256..999),
                    rng.random_range(0..256),
                    rng.random_range(0..256),
                    rng.random_range(0..256)
                ),
                1 => format!(
                    "{}.{}.{}",
                    rng.random_range(1..256),
                    rng.random_range(0..256),
                    rng.random_range(0..256)
                ),
                2 => "1.3.6.1.4.1.311.21.7".to_string(),
                3 => format!(
                    "{}.{}.{}.{}.{}",
                    rng.random_range(1..10),
                    rng.random_range(0..10),
                    rng.random_range(0..10),
                    rng.random_range(0..10),
                    rng.random_range(0..10)
                ),
                _ => "999.999.999.999".to_string(),
            };
            b.decoy("bad_ip", &v);
            b.s(" ");
        }
        21 => {
            b.s("mac ");
            let v = (0..6).map(|_| h(rng, 2)).collect::<Vec<_>>().join(":");
            let v = if rng.random_bool(0.5) {
                v.to_ascii_uppercase()
            } else {
                v
            };
            b.decoy("mac", &v);
            b.s(" ");
        }
        22 => {
            b.s("use ");
            let v = *[
                "std::collections::HashMap",
                "Vec::<u8>::new()",
                "crate::detect::Engine",
                "a::b",
                "add::dead",
                "Foo::bar()",
                "serde_json::Value",
                "ab::cd::ef",
            ]
            .choose(rng)
            .unwrap_or(&"a::b");
            b.decoy("code_path", v);
            b.s(" here. ");
        }
        23 => {
            let v = *[
                "@alice",
                "icon@2x.png",
                "user at example dot com",
                "@types/node",
                "admin@localhost",
                "logo@3x.webp",
                "foo@bar",
                "@app.route(\"/\")",
            ]
            .choose(rng)
            .unwrap_or(&"@alice");
            b.s("see ");
            b.decoy("email_like", v);
            b.s(". ");
        }
        24 => {
            let v = match rng.random_range(0..8) {
                0 => format!("ext. {}", rng.random_range(100..9999)),
                1 => format!("room {}", rng.random_range(100..999)),
                2 => format!("zip {}", rng.random_range(10000..99999)),
                3 => format!("+{} points", rng.random_range(1..50)),
                4 => "1-2-3".to_string(),
                5 => "call 911".to_string(),
                6 => format!("Q{} 2024", rng.random_range(1..5)),
                _ => "24/7".to_string(),
            };
            b.decoy("phone_like", &v);
            b.s(". ");
        }
        25 => {
            // IMEI: Luhn-valid 15 digits, TAC 35…
            let mut d: Vec<u8> = vec![3, 5];
            while d.len() < 14 {
                d.push(rng.random_range(0..10));
            }
            let c = luhn_digit(&d);
            d.push(c);
            let v: String = d.iter().map(|x| char::from(b'0' + x)).collect();
            b.s("IMEI ");
            b.decoy("imei", &v);
            b.s(". ");
        }
        26 => {
            let label = pick(rng, &["PUBLIC KEY", "CERTIFICATE", "RSA PUBLIC KEY"]);
            let mut v = format!("-----BEGIN {label}-----\n");
            for _ in 0..rng.random_range(2..6) {
                v.push_str(&rand_from(rng, B64, 64));
                v.push('\n');
            }
            let _ = write!(v, "-----END {label}-----");
            b.s("cert:\n");
            b.decoy("public_key", &v);
            b.s("\n");
        }
        27 => {
            b.s("header ");
            b.decoy("jwt_like", "eyJhbGciOiJIUzI1NiJ9");
            b.s(" only. ");
        }
        28 => {
            b.s("signed ");
            let v = *[
                "xoxo",
                "xoxo-gossip-girl-forever",
                "ghp_",
                "gh-pages",
                "AKIAEXAMPLE",
                "Bearer token",
                "Bearer YOUR_TOKEN_HERE",
            ]
            .choose(rng)
            .unwrap_or(&"xoxo");
            b.decoy("token_like", v);
            b.s(". ");
        }
        29 => {
            b.s("account no. ");
            // 16 digits, Luhn-invalid, random first digit (bank account, not a card).
            let mut v = digits(rng, 16);
            let d: Vec<u8> = v.bytes().map(|x| x - b'0').collect();
            if crate::validate::luhn_ok(&d) {
                let last = (d[15] + 1) % 10;
                v.replace_range(15..16, &last.to_string());
            }
            b.decoy("long_number", &v);
            b.s(". ");
        }
        30 => {
            b.s("growth ");
            let v = format!(
                "{}{}.{}%",
                pick(rng, &["+", "-"]),
                rng.random_range(0..100),
                rng.random_range(0..10)
            );
            b.decoy("percent", &v);
            b.s(" QoQ. ");
        }
        31 => {
            b.s("location ");
            let v = format!(
                "{}.{:04}, {}.{:04}",
                rng.random_range(-89..90),
                rng.random_range(0..10000),
                rng.random_range(-179..180),
                rng.random_range(0..10000)
            );
            b.decoy("coordinates", &v);
            b.s(". ");
        }
        32 => {
            b.s("image ");
            let v = *[
                "nginx:1.25.3",
                "python:3.11-slim",
                "postgres:16.2-alpine",
                "node:20.11.1",
                "redis:7.2.4",
            ]
            .choose(rng)
            .unwrap_or(&"nginx:1.25.3");
            b.decoy("image_tag", v);
            b.s(" ");
        }
        33 => {
            b.s("sha256 ");
            b.decoy("hash", &h(rng, 64));
            b.s(" ");
        }
        34 => {
            b.s("pi is ");
            let v = *[
                "3.14159",
                "2^32 = 4294967296",
                "1e-9",
                "6.022e23",
                "0.1 + 0.2 = 0.30000000000000004",
            ]
            .choose(rng)
            .unwrap_or(&"3.14159");
            b.decoy("math", v);
            b.s(". ");
        }
        35 => {
            b.s("size ");
            let v = format!(
                "{} {}",
                rng.random_range(1..2048),
                pick(rng, &["MiB", "GB", "KB", "tokens", "ms"])
            );
            b.decoy("quantity", &v);
            b.s(" ");
        }
        36 => {
            b.s("range ");
            let v = format!(
                ">={}.{}.{} <{}.0.0",
                rng.random_range(0..5),
                rng.random_range(0..20),
                rng.random_range(0..20),
                rng.random_range(5..9)
            );
            b.decoy("semver_range", &v);
            b.s(" ");
        }
        37 => {
            b.s("invoice ");
            let v = format!("INV-{}-{}", rng.random_range(2019..2026), digits(rng, 6));
            b.decoy("order_id", &v);
            b.s(" ");
        }
        38 => {
            b.s("b64 ");
            b.decoy("base64", &rand_from(rng, B64, 24));
            b.s("== ");
        }
        _ => {
            b.s("score ");
            let v = format!("{}:{}", rng.random_range(0..10), rng.random_range(0..10));
            b.decoy("score", &v);
            b.s(" final. ");
        }
    }
}

fn decoys(rng: &mut StdRng, b: &mut Builder, n: usize) {
    for _ in 0..n {
        decoy_one(rng, b);
    }
}

// ---------------------------------------------------------------------------------------------
// Filler prose

const SENTENCES: &[&str] = &[
    "Can you summarise the following conversation in three bullet points?",
    "I'm trying to understand why the deployment keeps failing on the staging cluster.",
    "Please rewrite this paragraph so it sounds more professional.",
    "The quarterly report shows revenue growth in EMEA but churn in APAC.",
    "Write a Python function that parses the CSV and returns the top 10 rows by amount.",
    "Thanks for the quick reply, that fixed it!",
    "We migrated from Postgres 14 to 16 last week and latency went up by 30 ms.",
    "Explain the difference between TCP and UDP like I'm five.",
    "Our customer says the invoice total does not match the order lines.",
    "Translate the following into German, keeping the tone informal.",
    "The model returned an empty completion again; here is the trace.",
    "Draft a polite reminder about the meeting on Thursday at 10am.",
    "Is there a way to batch these requests to stay under the rate limit?",
    "Here's the stack trace from the worker pod.",
    "Generate three taglines for a coffee shop that opens next month.",
    "My order arrived damaged and I'd like a replacement, not a refund.",
    "Please classify the sentiment of each review as positive, neutral or negative.",
    "The flight was delayed by 2 hours and I missed my connection.",
    "Summarise the attached contract and flag any unusual clauses.",
    "Refactor this function to avoid the nested loops.",
];

fn filler(rng: &mut StdRng, b: &mut Builder, n: usize) {
    for _ in 0..n {
        b.s(pick(rng, SENTENCES));
        b.s(" ");
    }
}

/// Kinds in proportion: each sample plants a few, cycling so every kind is well represented.
fn random_kind(rng: &mut StdRng) -> Kind {
    Kind::ALL[rng.random_range(0..Kind::ALL.len())]
}

fn plants_and_decoys(rng: &mut StdRng, b: &mut Builder) {
    let n_plants = rng.random_range(1..=3);
    let n_decoys = rng.random_range(1..=3);
    let mut order: Vec<bool> = std::iter::repeat_n(true, n_plants)
        .chain(std::iter::repeat_n(false, n_decoys))
        .collect();
    for i in (1..order.len()).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
    for plant in order {
        if plant {
            let k = random_kind(rng);
            plant_any(rng, b, k);
        } else {
            decoy_one(rng, b);
        }
        if rng.random_bool(0.5) {
            filler(rng, b, 1);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Formats

fn chat(rng: &mut StdRng, b: &mut Builder) {
    b.s(pick(
        rng,
        &["Hi! ", "Hello, ", "hey ", "Good morning. ", ""],
    ));
    let n = rng.random_range(0..3);
    filler(rng, b, n);
    plants_and_decoys(rng, b);
    let n = rng.random_range(0..2);
    filler(rng, b, n);
}

fn ticket(rng: &mut StdRng, b: &mut Builder) {
    let _ = write!(
        b.text,
        "Ticket #{} — Priority: {}\nSubject: {}\nFrom: ",
        rng.random_range(10000..99999),
        pick(rng, &["high", "low", "normal"]),
        pick(rng, SENTENCES)
    );
    b.plant(Kind::Email, &email(rng));
    b.s("\n\nHello support team,\n");
    plants_and_decoys(rng, b);
    b.s("\n\nBest regards,\n");
    b.s(pick(rng, &["Maria", "Tom", "Kenji", "Anne"]));
    b.s("\n");
}

fn code(rng: &mut StdRng, b: &mut Builder) {
    match rng.random_range(0..4) {
        0 => {
            b.s("```python\nimport os\nfrom openai import OpenAI\n\n# TODO: move to env\n");
            plants_and_decoys(rng, b);
            b.s("\nresp = client.chat.completions.create(model=\"gpt-4o\", max_tokens=512)\nprint(resp.choices[0].message.content)\n```\nWhy does this raise AuthenticationError?");
        }
        1 => {
            b.s("```yaml\napiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n        - name: api\n          image: ghcr.io/acme/api:1.4.2\n          env:\n");
            plants_and_decoys(rng, b);
            b.s("\n```\n");
        }
        2 => {
            b.s("```js\nconst res = await fetch(url, { method: 'POST', headers });\n// debug\n");
            plants_and_decoys(rng, b);
            b.s("\nconsole.log(res.status);\n```\n");
        }
        _ => {
            b.s("$ cat .env\nNODE_ENV=production\nPORT=3000\n");
            plants_and_decoys(rng, b);
            b.s("\n$ npm run start\n");
        }
    }
}

fn log(rng: &mut StdRng, b: &mut Builder) {
    for _ in 0..rng.random_range(1..4) {
        let _ = write!(
            b.text,
            "2024-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {} [req-{}] ",
            rng.random_range(1..13),
            rng.random_range(1..29),
            rng.random_range(0..24),
            rng.random_range(0..60),
            rng.random_range(0..60),
            rng.random_range(0..1000),
            pick(rng, &["INFO", "WARN", "ERROR", "DEBUG"]),
            rand_from(rng, HEX, 8)
        );
        if rng.random_bool(0.6) {
            let k = random_kind(rng);
            plant_any(rng, b, k);
        } else {
            decoy_one(rng, b);
        }
        let _ = writeln!(
            b.text,
            " status={} latency={}ms",
            pick(rng, &["200", "401", "429", "500"]),
            rng.random_range(3..3000)
        );
    }
}

fn json_doc(rng: &mut StdRng, b: &mut Builder) {
    let mut content = Builder::default();
    let n = rng.random_range(0..2);
    filler(rng, &mut content, n);
    plants_and_decoys(rng, &mut content);
    match rng.random_range(0..3) {
        0 => {
            b.s("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a helpful assistant.\"},{\"role\":\"user\",\"content\":");
            b.json_string(content);
            b.s("}],\"max_tokens\":1024,\"temperature\":0.2}");
        }
        1 => {
            // Tool call whose arguments are a JSON object.
            b.s("{\n  \"type\": \"tool_use\",\n  \"name\": \"send_email\",\n  \"input\": {\n    \"to\": ");
            let mut to = Builder::default();
            to.plant(Kind::Email, &email(rng));
            b.json_string(to);
            b.s(",\n    \"body\": ");
            b.json_string(content);
            b.s("\n  }\n}");
        }
        _ => {
            // OpenAI tool call: arguments are a JSON-encoded string (escaped twice).
            let mut args = Builder::default();
            args.s("{\"query\":");
            args.json_string(content);
            args.s(",\"limit\":10}");
            b.s("{\"id\":\"call_");
            b.s(&rand_from(rng, ALNUM, 24));
            b.s(
                "\",\"type\":\"function\",\"function\":{\"name\":\"search_tickets\",\"arguments\":",
            );
            b.json_string(args);
            b.s("}}");
        }
    }
}

fn multilingual(rng: &mut StdRng, b: &mut Builder) {
    match rng.random_range(0..6) {
        0 => {
            b.s("Hallo, ich habe eine Frage zu meiner Rechnung. Bitte überweisen Sie den Betrag auf ");
            b.plant(Kind::Iban, &iban(rng, true));
            b.s(". Telefon: ");
            b.plant(Kind::Phone, &phone(rng));
            b.s("\nVielen Dank und schöne Grüße! ");
        }
        1 => {
            b.s("Bonjour, pouvez-vous m'aider ? Mon adresse e-mail est ");
            b.plant(Kind::Email, &email(rng));
            b.s(" et mon numéro de carte est ");
            b.plant(Kind::Card, &card(rng, true));
            b.s(". Merci beaucoup ! ");
        }
        2 => {
            b.s("Hola, mi DNI es ");
            b.plant(Kind::NationalId, &dni(rng, true));
            b.s(" y necesito cambiar la dirección de envío. ¿Podéis llamarme al ");
            b.plant(Kind::Phone, &phone(rng));
            b.s("? ");
        }
        3 => {
            b.s("こんにちは。メールアドレスは");
            b.plant(Kind::Email, &email(rng));
            b.s("です。サーバー");
            b.plant(Kind::Ip, &ipv4(rng));
            b.s("に接続できません。よろしくお願いします。");
        }
        4 => {
            b.s("你好，我的 API 密钥是 ");
            b.plant(Kind::ApiKey, &api_key(rng));
            b.s("，为什么返回 401？谢谢 🙏 ");
        }
        _ => {
            b.s("Olá! O meu token do GitHub é ");
            b.plant(Kind::GithubToken, &github_token(rng));
            b.s(" — já foi revogado? Obrigado. ");
        }
    }
    plants_and_decoys(rng, b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_spans_point_at_values() {
        let a = generate(7, 60);
        let b = generate(7, 60);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.text, y.text);
            for p in &x.planted {
                assert!(x.text.get(p.range.clone()).is_some_and(|s| !s.is_empty()));
            }
        }
    }

    #[test]
    fn generated_values_validate() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..200 {
            let (d, _) = card_digits(&mut rng, true);
            let v: Vec<u8> = d.bytes().map(|b| b - b'0').collect();
            assert!(crate::validate::luhn_ok(&v), "{d}");
            assert!(crate::validate::card_issuer_ok(&v), "{d}");
            let i = iban(&mut rng, true).replace(' ', "");
            assert!(crate::validate::iban_mod97_ok(i.as_bytes()), "{i}");
            let bad = iban(&mut rng, false).replace(' ', "");
            assert!(!crate::validate::iban_mod97_ok(bad.as_bytes()), "{bad}");
        }
    }
}
