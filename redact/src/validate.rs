//! Checks that turn regex candidates into findings: checksums (Luhn, IBAN mod-97, DNI letter),
//! number-plan rules (country calling codes, NANP, SSN areas, NINO prefixes), address parsing
//! (IPv4 octets, IPv6 via std), token shape (JWT header, key entropy) and boundary/trimming rules.
//!
//! Every function here takes the haystack and a candidate byte range and pushes zero or more
//! accepted ranges. They work on ASCII bytes only (candidates are ASCII by construction), index
//! with `get` and never panic on any input.

use std::ops::Range;

/// A validator's verdict on one candidate: accepted ranges, and *veto* ranges — tokens that are
/// clearly one structured number (an IBAN-shaped string, digits grouped in fours) but fail
/// their checksum, inside which lower-priority detectors must not find a phone or an IP.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub accept: Vec<Range<usize>>,
    pub veto: Vec<Range<usize>>,
}

impl Found {
    pub(crate) fn push(&mut self, r: Range<usize>) {
        self.accept.push(r);
    }

    pub(crate) fn clear(&mut self) {
        self.accept.clear();
        self.veto.clear();
    }
}

/// Byte before `i`, if any.
fn before(h: &[u8], i: usize) -> Option<u8> {
    i.checked_sub(1).and_then(|j| h.get(j).copied())
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// True when `start..end` continues a longer number: a digit, or a joiner from `joiners`
/// followed/preceded by a digit, sits right outside the range.
fn glued_to_number(h: &[u8], r: &Range<usize>, joiners: &[u8]) -> bool {
    glued_before(h, r.start, joiners) || glued_after(h, r.end, joiners)
}

fn glued_before(h: &[u8], start: usize, joiners: &[u8]) -> bool {
    let prev = before(h, start);
    let prev2 = start.checked_sub(2).and_then(|j| h.get(j).copied());
    let digit = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_digit());
    digit(prev) || (prev.is_some_and(|b| joiners.contains(&b)) && digit(prev2))
}

fn glued_after(h: &[u8], end: usize, joiners: &[u8]) -> bool {
    let next = h.get(end).copied();
    let next2 = h.get(end + 1).copied();
    let digit = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_digit());
    digit(next) || (next.is_some_and(|b| joiners.contains(&b)) && digit(next2))
}

// ---------------------------------------------------------------------------------------------
// Payment cards

/// Luhn checksum over digit values (0..=9).
pub(crate) fn luhn_ok(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn prefix_num(d: &[u8], k: usize) -> u32 {
    d.iter()
        .take(k)
        .fold(0u32, |acc, &x| acc * 10 + u32::from(x))
}

/// Issuer (IIN) ranges and their lengths for the networks that matter: Visa, Mastercard, Amex,
/// Discover, JCB, Diners, UnionPay, Maestro, Mir. Cuts the ~10 % of random numbers that pass Luhn
/// down to those that also look like a real issuer.
pub(crate) fn card_issuer_ok(d: &[u8]) -> bool {
    let n = d.len();
    if !(13..=19).contains(&n) {
        return false;
    }
    let p2 = prefix_num(d, 2);
    let p3 = prefix_num(d, 3);
    let p4 = prefix_num(d, 4);
    match d.first() {
        Some(4) => matches!(n, 13 | 16 | 19),
        Some(5) => match p2 {
            51..=55 => n == 16,
            50 | 56..=58 => true, // Maestro 13–19
            _ => false,
        },
        Some(2) => {
            ((2221..=2720).contains(&p4) && n == 16) || ((2200..=2204).contains(&p4) && n >= 16)
        }
        Some(3) => {
            ((p2 == 34 || p2 == 37) && n == 15)
                || (((300..=305).contains(&p3) || p4 == 3095 || matches!(p2, 36 | 38 | 39))
                    && n >= 14)
                || ((3528..=3589).contains(&p4) && n >= 16)
        }
        Some(6) => n >= 16,
        _ => false,
    }
}

/// Card candidates are maximal runs of digits with single spaces/dashes (regex); this finds the
/// card in the run: one separator style, standard grouping (4-4-4-4[-1..3], 4-6-5, 4-6-4),
/// 13–19 digits, issuer range and Luhn. Trailing groups may be dropped (a CVV or year typed
/// after the number), leading ones may not.
pub(crate) fn card(h: &[u8], r: Range<usize>, out: &mut Found) {
    let Some(s) = h.get(r.clone()) else { return };
    // The start must not continue a number (`+…` is a phone, `1.` a decimal); the end is
    // checked per window below, since trailing groups may be dropped.
    let prev_glued = glued_before(h, r.start, b".,");
    if s.len() > 64 || prev_glued || before(h, r.start) == Some(b'+') {
        return;
    }
    // Groups as (start offset, end offset) of digit runs.
    let mut groups: Vec<(usize, usize)> = Vec::with_capacity(6);
    let mut sep: Option<u8> = None;
    let mut i = 0;
    while i < s.len() {
        let st = i;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        groups.push((st, i));
        if i < s.len() {
            let c = s[i];
            if sep.is_some_and(|p| p != c) {
                return; // mixed separators: a date, a list of numbers, not a card
            }
            sep = Some(c);
            i += 1;
        }
    }
    let digits: Vec<u8> = s
        .iter()
        .filter(|b| b.is_ascii_digit())
        .map(|b| b - b'0')
        .collect();
    let end_ok = |end: usize| !glued_after(h, end, b".,");
    if sep.is_none() {
        if card_issuer_ok(&digits) && luhn_ok(&digits) && end_ok(r.end) {
            out.push(r);
        }
        return;
    }
    let lens: Vec<usize> = groups.iter().map(|(a, b)| b - a).collect();
    // Digits grouped in fours (a tracking or account number failing the card checks) are one
    // token: nothing inside is a phone number.

    for k in (1..=lens.len()).rev() {
        let w = &lens[..k];
        let total: usize = w.iter().sum();
        if total < 13 {
            break;
        }
        if total > 19 {
            continue;
        }
        let layout_ok = match w {
            [_] | [4, 6, 5] | [4, 6, 4] => true,
            [init @ .., last] => init.iter().all(|&g| g == 4) && (1..=4).contains(last),
            [] => false,
        };
        let d = &digits[..total];
        let end = r.start + groups[k - 1].1;
        if layout_ok && end_ok(end) && card_issuer_ok(d) && luhn_ok(d) {
            out.push(r.start..end);
            return;
        }
    }
    // Not a card, but digits grouped in fours (a tracking or account number) are one token:
    // nothing inside is a phone number or an IP address.
    let fours = matches!(lens.as_slice(), [init @ .., last]
        if init.len() >= 2 && init.iter().all(|&g| g == 4) && (1..=4).contains(last));
    if fours || matches!(lens.as_slice(), [4, 6, 5] | [4, 6, 4]) {
        out.veto.push(r);
    }
}

// ---------------------------------------------------------------------------------------------
// IBAN

/// IBAN length per country (SWIFT IBAN registry).
fn iban_len(cc: &[u8]) -> Option<usize> {
    Some(match cc {
        b"AD" => 24,
        b"AE" => 23,
        b"AL" => 28,
        b"AT" => 20,
        b"AZ" => 28,
        b"BA" => 20,
        b"BE" => 16,
        b"BG" => 22,
        b"BH" => 22,
        b"BI" => 27,
        b"BR" => 29,
        b"BY" => 28,
        b"CH" => 21,
        b"CR" => 22,
        b"CY" => 28,
        b"CZ" => 24,
        b"DE" => 22,
        b"DJ" => 27,
        b"DK" => 18,
        b"DO" => 28,
        b"EE" => 20,
        b"EG" => 29,
        b"ES" => 24,
        b"FI" => 18,
        b"FK" => 18,
        b"FO" => 18,
        b"FR" => 27,
        b"GB" => 22,
        b"GE" => 22,
        b"GI" => 23,
        b"GL" => 18,
        b"GR" => 27,
        b"GT" => 28,
        b"HR" => 21,
        b"HU" => 28,
        b"IE" => 22,
        b"IL" => 23,
        b"IQ" => 23,
        b"IS" => 26,
        b"IT" => 27,
        b"JO" => 30,
        b"KW" => 30,
        b"KZ" => 20,
        b"LB" => 28,
        b"LC" => 32,
        b"LI" => 21,
        b"LT" => 20,
        b"LU" => 20,
        b"LV" => 21,
        b"LY" => 25,
        b"MC" => 27,
        b"MD" => 24,
        b"ME" => 22,
        b"MK" => 19,
        b"MN" => 20,
        b"MR" => 27,
        b"MT" => 31,
        b"MU" => 30,
        b"NI" => 28,
        b"NL" => 18,
        b"NO" => 15,
        b"OM" => 23,
        b"PK" => 24,
        b"PL" => 28,
        b"PS" => 29,
        b"PT" => 25,
        b"QA" => 29,
        b"RO" => 24,
        b"RS" => 22,
        b"RU" => 33,
        b"SA" => 24,
        b"SC" => 31,
        b"SD" => 18,
        b"SE" => 24,
        b"SI" => 19,
        b"SK" => 24,
        b"SM" => 27,
        b"SO" => 23,
        b"ST" => 25,
        b"SV" => 28,
        b"TL" => 23,
        b"TN" => 24,
        b"TR" => 26,
        b"UA" => 29,
        b"VA" => 22,
        b"VG" => 24,
        b"XK" => 20,
        b"YE" => 30,
        _ => return None,
    })
}

/// ISO 13616 check: move the first four characters to the end, letters to 10..35, mod 97 == 1.
pub(crate) fn iban_mod97_ok(chars: &[u8]) -> bool {
    if chars.len() < 5 {
        return false;
    }
    let mut rem = 0u32;
    for &c in chars[4..].iter().chain(&chars[..4]) {
        rem = match c {
            b'0'..=b'9' => (rem * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => (rem * 100 + u32::from(c - b'A' + 10)) % 97,
            _ => return false,
        };
    }
    rem == 1
}

/// Candidates are `CCdd` followed by alphanumerics with optional single spaces (the regex may
/// run on into the next capitalised word); this cuts the IBAN at its country's length, checks
/// the grouping (none, or fours from the start) and mod-97. Unknown countries need mod-97 and
/// 15–34 characters ending at a word boundary.
pub(crate) fn iban(h: &[u8], r: Range<usize>, out: &mut Found) {
    let Some(s) = h.get(r.clone()) else { return };
    if s.len() > 60 || before(h, r.start).is_some_and(is_word) {
        return;
    }
    // Alphanumeric characters with their offsets; spaces are single by construction.
    let chars: Vec<(u8, usize)> = s
        .iter()
        .enumerate()
        .filter(|(_, b)| b.is_ascii_alphanumeric())
        .map(|(i, &b)| (b, i))
        .collect();
    let mut start_idx = 0;
    while start_idx + 4 < chars.len() {
        if let Some(found) = iban_at(h, &r, &chars[start_idx..]) {
            out.push(found);
            return;
        }
        if start_idx == 0
            && let Some(v) = iban_shape(h, &r)
        {
            out.veto.push(v);
        }
        // Next group start: a char right after a space that begins `[A-Z]{2}[0-9]{2}`.
        start_idx += 1;
        while start_idx + 4 < chars.len() {
            let (_, off) = chars[start_idx];
            let starts_group = off > 0 && s.get(off - 1) == Some(&b' ');
            let shape = chars.get(start_idx..start_idx + 4).is_some_and(|w| {
                w[0].0.is_ascii_uppercase()
                    && w[1].0.is_ascii_uppercase()
                    && w[2].0.is_ascii_digit()
                    && w[3].0.is_ascii_digit()
            });
            if starts_group && shape {
                break;
            }
            start_idx += 1;
        }
    }
}

/// The IBAN-shaped token at the candidate start, checksum or not: `CCdd` then either a compact
/// alphanumeric run (≥ 15 chars in all) or ≥ 3 more space-separated groups of four (the last may
/// be shorter).
fn iban_shape(h: &[u8], r: &Range<usize>) -> Option<Range<usize>> {
    let s = h.get(r.clone())?;
    let compact = s.iter().take_while(|b| b.is_ascii_alphanumeric()).count();
    if compact >= 15 {
        return Some(r.start..r.start + compact);
    }
    if compact != 4 {
        return None;
    }
    let mut end = 4;
    let mut groups = 1;
    while s.get(end) == Some(&b' ') {
        let g = s[end + 1..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if g == 0 || g > 4 {
            break;
        }
        end += 1 + g;
        groups += 1;
        if g < 4 {
            break;
        }
    }
    (groups >= 4).then(|| r.start..r.start + end)
}

fn iban_at(h: &[u8], r: &Range<usize>, chars: &[(u8, usize)]) -> Option<Range<usize>> {
    let cc = [chars.first()?.0, chars.get(1)?.0];
    if !cc[0].is_ascii_uppercase() || !cc[1].is_ascii_uppercase() {
        return None;
    }
    if !chars.get(2)?.0.is_ascii_digit() || !chars.get(3)?.0.is_ascii_digit() {
        return None;
    }
    let lens: Vec<usize> = match iban_len(&cc) {
        Some(l) => vec![l],
        None => (15..=34).rev().collect(),
    };
    let base = chars.first()?.1;
    for len in lens {
        let Some(window) = chars.get(..len) else {
            continue;
        };
        let last_off = window.last()?.1;
        let end = r.start + last_off + 1;
        // The IBAN must end where a word ends (no letters/digits glued on).
        if h.get(end).is_some_and(|&b| is_word(b)) {
            continue;
        }
        // Grouping: contiguous, or a space exactly before every 4th character.
        let spaced = window.windows(2).any(|w| w[1].1 != w[0].1 + 1);
        if spaced {
            let ok = window.iter().enumerate().skip(1).all(|(i, &(_, off))| {
                let gap = off - window[i - 1].1;
                if i % 4 == 0 { gap == 2 } else { gap == 1 }
            });
            if !ok {
                continue;
            }
        }
        let raw: Vec<u8> = window.iter().map(|(b, _)| *b).collect();
        if iban_mod97_ok(&raw) {
            return Some(r.start + base..end);
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// National IDs

/// US SSN `AAA-GG-SSSS` / `AAA GG SSSS`: area not 000, 666 or 9xx; group not 00; serial not 0000.
pub(crate) fn ssn(h: &[u8], r: Range<usize>, out: &mut Found) {
    let Some(s) = h.get(r.clone()) else { return };
    if s.len() != 11 || glued_to_number(h, &r, b".,-/") {
        return;
    }
    if s[3] == b' ' && (glued_to_number(h, &r, b" ")) {
        return;
    }
    let num = |a: &[u8]| {
        a.iter()
            .fold(0u32, |acc, &b| acc * 10 + u32::from(b.wrapping_sub(b'0')))
    };
    let area = num(&s[0..3]);
    let group = num(&s[4..6]);
    let serial = num(&s[7..11]);
    if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 {
        return;
    }
    out.push(r);
}

/// UK National Insurance number: two prefix letters (first not D F I Q U V, second not
/// D F I O Q U V, and not BG GB KN NK NT TN ZZ), six digits, suffix A–D; spaced in pairs or not.
pub(crate) fn nino(h: &[u8], r: Range<usize>, out: &mut Found) {
    let Some(s) = h.get(r.clone()) else { return };
    let spaces = s.iter().filter(|&&b| b == b' ').count();
    if spaces != 0 && spaces != 4 {
        return;
    }
    let (Some(&a), Some(&b)) = (s.first(), s.get(1)) else {
        return;
    };
    if b"DFIQUV".contains(&a) || b"DFIOQUV".contains(&b) {
        return;
    }
    if matches!(
        &[a, b],
        b"BG" | b"GB" | b"KN" | b"NK" | b"NT" | b"TN" | b"ZZ"
    ) {
        return;
    }
    out.push(r);
}

/// Spanish DNI (8 digits + letter) and NIE (X/Y/Z + 7 digits + letter), letter = table[n % 23].
pub(crate) fn dni(h: &[u8], r: Range<usize>, out: &mut Found) {
    let Some(s) = h.get(r.clone()) else { return };
    if glued_to_number(h, &r, b".,-/") {
        return;
    }
    let Some(&letter) = s.last() else { return };
    let mut n: u32 = 0;
    for &b in &s[..s.len() - 1] {
        match b {
            b'0'..=b'9' => n = n * 10 + u32::from(b - b'0'),
            b'X' => n = 0,
            b'Y' => n = 1,
            b'Z' => n = 2,
            _ => {}
        }
    }
    const TABLE: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    if TABLE.get((n % 23) as usize) == Some(&letter) {
        out.push(r);
    }
}

// ---------------------------------------------------------------------------------------------
// IP addresses

/// Dotted quad with octets 0–255 and no leading zeros; not part of a longer dotted sequence
/// (`1.2.3.4.5`, OIDs, Windows build numbers) and not labelled as a version (`version 1.2.3.4`;
/// `v1.2.3.4` never matches because of the word boundary).
pub(crate) fn ipv4(h: &[u8], r: Range<usize>, out: &mut Found) {
    let Some(s) = h.get(r.clone()) else { return };
    if glued_to_number(h, &r, b".") {
        return;
    }
    for part in s.split(|&b| b == b'.') {
        if part.is_empty() || part.len() > 3 || (part.len() > 1 && part[0] == b'0') {
            return;
        }
        let v = part
            .iter()
            .fold(0u32, |acc, &b| acc * 10 + u32::from(b.wrapping_sub(b'0')));
        if v > 255 {
            return;
        }
    }
    let head = &h[..r.start.min(h.len())];
    let head = &head[head.len().saturating_sub(12)..];
    let lower: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    if lower.ends_with(b"version ") || lower.ends_with(b"ver ") || lower.ends_with(b"ver. ") {
        return;
    }
    out.push(r);
}

/// IPv6 validated by `std::net::Ipv6Addr`; must contain a digit (so `add::dead` in code is not an
/// address), must not be glued to identifier characters (`std::io`), and a single trailing `:`
/// (`addr 2001:db8::1: refused`) is trimmed. Times (`12:30:45`) and MACs fail the parse.
pub(crate) fn ipv6(h: &[u8], r: Range<usize>, out: &mut Found) {
    let Some(s) = h.get(r.clone()) else { return };
    if s.len() > 45 || before(h, r.start).is_some_and(|b| is_word(b) || b == b':' || b == b'.') {
        return;
    }
    if h.get(r.end).is_some_and(|&b| is_word(b)) {
        return;
    }
    if !s.iter().any(u8::is_ascii_digit) || s.iter().filter(|&&b| b == b':').count() < 2 {
        return;
    }
    let parse = |x: &[u8]| {
        std::str::from_utf8(x)
            .ok()
            .and_then(|t| t.parse::<std::net::Ipv6Addr>().ok())
            .is_some()
    };
    if parse(s) {
        out.push(r);
    } else if s.ends_with(b":") && !s.ends_with(b"::") && parse(&s[..s.len() - 1]) {
        out.push(r.start..r.end - 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Phone numbers

/// Assigned ITU country calling codes, as the length of the code that `digits` starts with.
fn country_code_len(d: &[u8]) -> Option<usize> {
    let p1 = prefix_num(d, 1);
    let p2 = prefix_num(d, 2);
    if d.len() < 4 {
        return None;
    }
    if p1 == 1 || p1 == 7 {
        return Some(1);
    }
    const TWO: &[u32] = &[
        20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54, 55,
        56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98,
    ];
    if TWO.contains(&p2) {
        return Some(2);
    }
    let three_ok = matches!(
        p2,
        21..=26 | 29 | 35 | 37 | 38 | 42 | 50 | 59 | 67 | 68 | 69 | 85 | 88 | 96 | 97 | 99
    );
    three_ok.then_some(3)
}

/// National significant number lengths for common country codes; others get 6–12.
fn national_len(cc: u32) -> (usize, usize) {
    match cc {
        1 | 7 | 52 | 57 | 63 | 90 | 91 => (10, 10),
        20 => (9, 10),
        27 | 31 | 33 | 34 | 40 | 41 | 48 | 56 | 61 | 351 | 380 | 420 | 966 | 254 => (9, 9),
        30 => (10, 10),
        32 | 36 | 51 | 66 => (8, 9),
        39 => (6, 11),
        43 => (4, 13),
        44 => (9, 10),
        45 | 47 | 65 | 852 => (8, 8),
        46 => (7, 10),
        49 => (6, 13),
        54 | 55 | 86 => (10, 11),
        60 | 64 | 82 | 84 | 234 => (8, 10),
        62 => (8, 12),
        81 => (9, 10),
        92 => (9, 10),
        353 => (7, 9),
        971 | 972 => (8, 9),
        _ => (6, 12),
    }
}

#[derive(Debug, Clone, Copy)]
struct Group {
    /// Byte offsets within the candidate (parentheses included).
    start: usize,
    end: usize,
    digits: usize,
}

/// Splits a phone candidate into digit groups separated by at most one of ` .-` (or a
/// parenthesised group). Returns the groups, the separators between them, and whether the
/// whole candidate parsed (on a malformed tail, the groups up to it are returned).
fn phone_groups(s: &[u8]) -> (Vec<Group>, Vec<u8>, bool) {
    let mut groups = Vec::new();
    let mut seps = Vec::new();
    let mut i = 0;
    let mut pending_sep: Option<u8> = None;
    while i < s.len() {
        let st = i;
        let paren = s[i] == b'(';
        if paren {
            i += 1;
        }
        let ds = i;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        let nd = i - ds;
        if nd == 0 {
            return (groups, seps, false);
        }
        if paren {
            if s.get(i) != Some(&b')') {
                return (groups, seps, false);
            }
            i += 1;
        }
        if !groups.is_empty() {
            seps.push(pending_sep.unwrap_or(b'\0'));
        }
        groups.push(Group {
            start: st,
            end: i,
            digits: nd,
        });
        pending_sep = None;
        if i < s.len() {
            match s[i] {
                b' ' | b'.' | b'-' | b'/' => {
                    pending_sep = Some(s[i]);
                    i += 1;
                }
                b'(' => pending_sep = Some(b'('),
                _ if paren => pending_sep = Some(b')'),
                _ => return (groups, seps, false),
            }
        }
    }
    let complete = pending_sep.is_none();
    (groups, seps, complete)
}

/// `+CC …` international numbers: a known country code, a `(0)` trunk marker allowed, groups of
/// ≥2 digits (one single-digit group allowed, e.g. `+33 1 23 45 67 89`), and a national length
/// that fits the country. Trailing groups are dropped until the length fits.
pub(crate) fn phone_intl(h: &[u8], r: Range<usize>, out: &mut Found) {
    let Some(s) = h.get(r.clone()) else { return };
    if before(h, r.start).is_some_and(|b| is_word(b) || b == b'+') {
        return;
    }
    let body = &s[1..]; // after '+'
    let (mut groups, seps, _) = phone_groups(body);
    // After the country code, dots and other separators do not mix (`+49 30 1234567 10.0.0.1`
    // is a phone number followed by an IP address): cut at the first change.
    if let Some(&first) = seps.get(1)
        && let Some(p) = seps
            .iter()
            .skip(2)
            .position(|&x| (x == b'.') != (first == b'.'))
    {
        groups.truncate(p + 3);
    }
    // Drop a "(0)" trunk marker (`+44 (0)20 …`).
    let has_trunk = groups.len() > 1
        && groups.get(1).is_some_and(|g| {
            g.digits == 1
                && body.get(g.start) == Some(&b'(')
                && body.get(g.start + 1) == Some(&b'0')
        });
    let trunk_idx = if has_trunk { Some(1) } else { None };
    let Some(first) = groups.first().copied() else {
        return;
    };
    if body.get(first.start) == Some(&b'(') {
        return;
    }
    let all_digits: Vec<u8> = groups
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != trunk_idx)
        .flat_map(|(_, g)| {
            body[g.start..g.end]
                .iter()
                .filter(|b| b.is_ascii_digit())
                .map(|b| b - b'0')
        })
        .collect();
    let Some(cc_len) = country_code_len(&all_digits) else {
        return;
    };
    if first.digits <= 3 && first.digits != cc_len {
        // A separated first group is the whole country code.
        return;
    }
    let cc = prefix_num(&all_digits, cc_len);
    let (min, max) = national_len(cc);
    // Trim trailing groups until the national length fits.
    loop {
        let total: usize = groups
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != trunk_idx)
            .map(|(_, g)| g.digits)
            .sum();
        let national = total.saturating_sub(cc_len);
        if national < min {
            return;
        }
        if national <= max {
            break;
        }
        if groups.len() <= 1 {
            return;
        }
        groups.pop();
    }
    // Drop a trailing group that runs on into another number.
    while groups.len() > 2
        && glued_after(h, r.start + 1 + groups.last().map_or(0, |g| g.end), b".-")
    {
        groups.pop();
        let total: usize = groups.iter().map(|g| g.digits).sum();
        if total.saturating_sub(cc_len) < min {
            return;
        }
    }
    let singles = groups
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(i, g)| g.digits == 1 && Some(*i) != trunk_idx)
        .count();
    if singles > 1 {
        return;
    }
    let Some(last) = groups.last() else { return };
    out.push(r.start..r.start + 1 + last.end);
}

/// North American `(415) 555-0132`, `415-555-0132`, `415.555.0132`, `1-800-555-0199`:
/// area and exchange codes 2–9xx and not N11; one separator style; not inside a longer number.
pub(crate) fn phone_nanp(h: &[u8], r: Range<usize>, out: &mut Found) {
    let Some(s) = h.get(r.clone()) else { return };
    if glued_to_number(h, &r, b".-/") || before(h, r.start) == Some(b'+') {
        return;
    }
    let digits: Vec<u8> = s
        .iter()
        .filter(|b| b.is_ascii_digit())
        .map(|b| b - b'0')
        .collect();
    let d = match digits.len() {
        10 => &digits[..],
        11 if digits[0] == 1 => &digits[1..],
        _ => return,
    };
    let n11 = |x: &[u8]| x.len() == 3 && x[1] == 1 && x[2] == 1;
    if n11(&d[0..3]) || n11(&d[3..6]) {
        return;
    }
    if !s.contains(&b'(') {
        // Separators: the ones between digit groups must agree (`415-555.0132` is not a phone).
        let seps: Vec<u8> = s.iter().copied().filter(|b| !b.is_ascii_digit()).collect();
        if seps.windows(2).any(|w| w[0] != w[1]) {
            return;
        }
        if seps.first() == Some(&b' ') && glued_to_number(h, &r, b" ") {
            return;
        }
    }
    out.push(r);
}

/// National numbers with a trunk `0`: `020 7946 0958`, `030/12345678`, `0151 12345678`,
/// `01 23 45 67 89`, `03-1234-5678`, `(030) 1234567`. 9–12 digits with one separator style
/// after the area code; day-month-year shapes are refused.
pub(crate) fn phone_trunk(h: &[u8], r: Range<usize>, out: &mut Found) {
    let Some(s) = h.get(r.clone()) else { return };
    if s.len() > 40 || glued_before(h, r.start, b".-/") {
        return;
    }
    let (mut groups, seps, _) = phone_groups(s);
    if groups.len() < 2 {
        return;
    }
    // Separators after the first must all agree: cut at the first change (what follows is
    // another number, e.g. `03-1234-5678 10.0.0.1`).
    let rest: Vec<u8> = seps.iter().skip(1).copied().collect();
    if let Some(p) = rest.iter().position(|&x| Some(&x) != rest.first()) {
        groups.truncate(p + 2);
    }
    if let (Some(&first), Some(&second)) = (seps.first(), rest.first())
        && matches!(first, b' ' | b'.' | b'-')
        && first != second
    {
        return;
    }
    let lens: Vec<usize> = groups.iter().map(|g| g.digits).collect();
    if lens == [3, 2, 4] {
        return; // the SSN shape (AAA-GG-SSSS), not a phone layout
    }
    if lens.len() >= 3 && lens[0] == 2 && lens[1] == 2 && lens[2] == 4 {
        let y = &s[groups[2].start..groups[2].end];
        if y.starts_with(b"19") || y.starts_with(b"20") {
            return; // 05 11 2023: a date
        }
    }
    // Drop trailing groups while too long, or while the end runs on into another number
    // (`… 0958 10.0.0.1`).
    loop {
        let total: usize = groups.iter().map(|g| g.digits).sum();
        if total < 9 {
            return;
        }
        let end = r.start + groups.last().map_or(0, |g| g.end);
        if total <= 12 && !glued_after(h, end, b".-/") {
            out.push(r.start..end);
            return;
        }
        groups.pop();
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets

fn classes(s: &[u8]) -> (bool, bool, bool) {
    (
        s.iter().any(u8::is_ascii_uppercase),
        s.iter().any(u8::is_ascii_lowercase),
        s.iter().any(u8::is_ascii_digit),
    )
}

fn longest_alnum_run(s: &[u8]) -> usize {
    let mut best = 0;
    let mut cur = 0;
    for &b in s {
        if b.is_ascii_alphanumeric() {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

/// Random-looking: upper + lower + digit, or a long (≥ 24) alphanumeric run with letters and
/// digits (lowercase-hex keys). Words joined by dashes (`sk-learn-tutorial-2024`) fail both.
fn looks_random(s: &[u8]) -> bool {
    let (u, l, d) = classes(s);
    (u && l && d) || ((u || l) && d && longest_alnum_run(s) >= 24)
}

/// `sk-…` provider keys (OpenAI legacy/project/service-account/admin, Anthropic `sk-ant-…`,
/// DeepSeek and other OpenAI-compatible providers).
pub(crate) fn openai_style(h: &[u8], r: Range<usize>, out: &mut Found) {
    let Some(s) = h.get(r.clone()) else { return };
    let rest = &s[3..];
    let body = if rest.starts_with(b"ant-") {
        match rest[4..].iter().position(|&b| b == b'-') {
            Some(p) => &rest[4 + p + 1..],
            None => return,
        }
    } else if let Some(b) = [&b"proj-"[..], b"svcacct-", b"admin-", b"None-"]
        .iter()
        .find_map(|p| rest.strip_prefix(*p))
    {
        b
    } else {
        rest
    };
    if body.len() >= 20 && looks_random(body) {
        out.push(r);
    }
}

/// Stripe secret/restricted keys `sk_live_…`, `rk_test_…`.
pub(crate) fn stripe(h: &[u8], r: Range<usize>, out: &mut Found) {
    let Some(s) = h.get(r.clone()) else { return };
    let body = s.get(8..).unwrap_or_default();
    if body.len() >= 20 && looks_random(body) {
        out.push(r);
    }
}

/// Google API keys: `AIza` + exactly 35 chars.
pub(crate) fn google(h: &[u8], r: Range<usize>, out: &mut Found) {
    if h.get(r.end).is_some_and(|&b| is_word(b) || b == b'-') {
        return;
    }
    out.push(r);
}

/// Opaque tokens after `Bearer` or an `api_key`/`x-api-key` label: ≥ 20 chars, letters and digits.
pub(crate) fn labelled_token(h: &[u8], r: Range<usize>, out: &mut Found) {
    let Some(s) = h.get(r.clone()) else { return };
    let trimmed = s.len() - s.iter().rev().take_while(|&&b| b == b'.').count();
    let s = &s[..trimmed];
    let (u, l, d) = classes(s);
    if s.len() >= 20 && s.len() <= 4096 && (u || l) && d {
        out.push(r.start..r.start + trimmed);
    }
}

/// Labelled AWS secret access key: exactly 40 base64 chars, mixed case, not followed by more.
pub(crate) fn aws_secret(h: &[u8], r: Range<usize>, out: &mut Found) {
    let Some(s) = h.get(r.clone()) else { return };
    if h.get(r.end)
        .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'/' || b == b'+')
    {
        return;
    }
    let (u, l, _) = classes(s);
    if u && l {
        out.push(r);
    }
}

/// Labelled AWS session token (long base64).
pub(crate) fn aws_session(h: &[u8], r: Range<usize>, out: &mut Found) {
    let Some(s) = h.get(r.clone()) else { return };
    if looks_random(s) {
        out.push(r);
    }
}

/// GitHub tokens: `gh[pousr]_` + ≥ 36 alphanumerics, `github_pat_` + ≥ 40.
pub(crate) fn github(h: &[u8], r: Range<usize>, out: &mut Found) {
    let Some(s) = h.get(r.clone()) else { return };
    let (body, min) = if s.starts_with(b"github_pat_") {
        (&s[11..], 40)
    } else {
        (&s[4..], 36)
    };
    if body.len() >= min && body.len() <= 255 && looks_random(body) {
        out.push(r);
    }
}

/// Slack tokens `xoxb-…`, `xoxp-…`, `xapp-…`: ≥ 20 chars with digits.
pub(crate) fn slack(h: &[u8], r: Range<usize>, out: &mut Found) {
    let Some(s) = h.get(r.clone()) else { return };
    let trimmed = s.len() - s.iter().rev().take_while(|&&b| b == b'-').count();
    let s = &s[..trimmed];
    if s.len() >= 20 && s.iter().filter(|b| b.is_ascii_digit()).count() >= 6 {
        out.push(r.start..r.start + trimmed);
    }
}

/// Slack incoming-webhook URLs (the whole URL is the credential).
pub(crate) fn slack_webhook(h: &[u8], r: Range<usize>, out: &mut Found) {
    let Some(s) = h.get(r.clone()) else { return };
    let path = s.splitn(4, |&b| b == b'/').nth(3).unwrap_or_default();
    if path.len() >= 28 {
        out.push(r);
    }
}

fn b64url_val(b: u8) -> Option<u8> {
    Some(match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'-' | b'+' => 62,
        b'_' | b'/' => 63,
        _ => return None,
    })
}

/// Decodes unpadded base64url (the bits of a trailing partial byte are dropped).
pub(crate) fn b64url_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in s {
        acc = (acc << 6) | u32::from(b64url_val(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// JWS compact form: the header decodes to a JSON object naming `alg`, the payload is a JSON
/// object (base64 of `{` starts with `e`), the signature is empty (`alg: none`) or ≥ 16 chars.
pub(crate) fn jwt(h: &[u8], r: Range<usize>, out: &mut Found) {
    let Some(s) = h.get(r.clone()) else { return };
    let mut parts = s.splitn(3, |&b| b == b'.');
    let (Some(head), Some(payload), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    if head.len() > 2048 || payload.first() != Some(&b'e') || (!sig.is_empty() && sig.len() < 16) {
        return;
    }
    let Some(decoded) = b64url_decode(head) else {
        return;
    };
    if decoded.first() == Some(&b'{') && decoded.windows(5).any(|w| w == b"\"alg\"") {
        out.push(r);
    }
}

/// Extends a `-----BEGIN … PRIVATE KEY-----` header through its END line. A block cut short
/// (truncated prompt) extends over the base64 body: base64 characters, line breaks and their
/// JSON escapes (`\n`, `\r`), and `Proc-Type`/`DEK-Info` header lines.
pub(crate) fn private_key(h: &[u8], r: Range<usize>, out: &mut Found) {
    const WINDOW: usize = 64 * 1024;
    let from = r.end;
    let limit = (from + WINDOW).min(h.len());
    let Some(region) = h.get(from..limit) else {
        return;
    };
    let next_begin = memchr::memmem::find(region, b"-----BEGIN").unwrap_or(region.len());
    if let Some(p) = memchr::memmem::find(&region[..next_begin], b"-----END") {
        let tail = &region[p + 8..];
        // `-----END <label> PRIVATE KEY[ BLOCK]-----`
        if let Some(q) = memchr::memmem::find(&tail[..tail.len().min(80)], b"-----") {
            let label = &tail[..q];
            if label.ends_with(b"PRIVATE KEY") || label.ends_with(b"PRIVATE KEY BLOCK") {
                out.push(r.start..from + p + 8 + q + 5);
                return;
            }
        }
    }
    // Truncated: walk the body.
    let mut i = from;
    let mut line_start = true;
    while i < h.len() && i < limit {
        let b = h[i];
        if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' {
            i += 1;
            line_start = false;
        } else if b == b'\n' || b == b'\r' {
            i += 1;
            line_start = true;
        } else if b == b'\\' && matches!(h.get(i + 1), Some(b'n' | b'r')) {
            i += 2;
            line_start = true;
        } else if line_start
            && (h[i..].starts_with(b"Proc-Type:") || h[i..].starts_with(b"DEK-Info:"))
        {
            while i < h.len() && h[i] != b'\n' && h[i] != b'\\' {
                i += 1;
            }
        } else {
            break;
        }
    }
    // Do not swallow a trailing line break.
    let mut end = i;
    loop {
        if end >= r.end + 2 && &h[end - 2..end] == b"\\n" {
            end -= 2;
        } else if end > r.end && matches!(h[end - 1], b'\n' | b'\r') {
            end -= 1;
        } else {
            break;
        }
    }
    out.push(r.start..end.max(r.end));
}

/// E-mail: trims leading punctuation the local-part class admits, refuses `..` and dot-edged
/// local parts, over-long parts, and image-name look-alikes (`icon@2x.png`).
pub(crate) fn email(h: &[u8], r: Range<usize>, out: &mut Found) {
    let Some(s) = h.get(r.clone()) else { return };
    let Some(at) = s.iter().position(|&b| b == b'@') else {
        return;
    };
    let lead = s[..at]
        .iter()
        .take_while(|&&b| matches!(b, b'.' | b'%' | b'+' | b'-'))
        .count();
    let local = &s[lead..at];
    let domain = &s[at + 1..];
    if local.is_empty() || local.len() > 64 || domain.len() > 253 || local.ends_with(b".") {
        return;
    }
    if local.windows(2).any(|w| w == b"..") || domain.windows(2).any(|w| w == b"..") {
        return;
    }
    if domain
        .split(|&b| b == b'.')
        .any(|l| l.is_empty() || l.starts_with(b"-") || l.ends_with(b"-") || l.len() > 63)
    {
        return;
    }
    let tld: Vec<u8> = domain
        .rsplit(|&b| b == b'.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    const FILE_EXT: &[&[u8]] = &[
        b"png", b"jpg", b"jpeg", b"gif", b"svg", b"webp", b"bmp", b"ico", b"tiff", b"heic",
    ];
    if FILE_EXT.contains(&tld.as_slice()) {
        return;
    }
    out.push(r.start + lead..r.end);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: fn(&[u8], Range<usize>, &mut Found), s: &str) -> Vec<String> {
        let mut out = Found::default();
        f(s.as_bytes(), 0..s.len(), &mut out);
        out.accept.into_iter().map(|r| s[r].to_string()).collect()
    }

    #[test]
    fn luhn_and_issuers() {
        let d = |s: &str| s.bytes().map(|b| b - b'0').collect::<Vec<_>>();
        assert!(luhn_ok(&d("4111111111111111")));
        assert!(!luhn_ok(&d("4111111111111112")));
        assert!(card_issuer_ok(&d("378282246310005")));
        assert!(!card_issuer_ok(&d("3782822463100055"))); // Amex is 15 digits
        assert!(!card_issuer_ok(&d("9111111111111111")));
    }

    #[test]
    fn card_windows() {
        assert_eq!(run(card, "4111 1111 1111 1111"), ["4111 1111 1111 1111"]);
        assert_eq!(
            run(card, "4111 1111 1111 1111 123"),
            ["4111 1111 1111 1111"]
        );
        assert!(run(card, "4111 1111 1111 1112").is_empty());
        assert!(run(card, "4111-1111 1111-1111").is_empty());
        assert_eq!(run(card, "3782 822463 10005"), ["3782 822463 10005"]);
    }

    #[test]
    fn iban_cases() {
        assert_eq!(
            run(iban, "DE89 3704 0044 0532 0130 00"),
            ["DE89 3704 0044 0532 0130 00"]
        );
        assert_eq!(
            run(iban, "DE89370400440532013000"),
            ["DE89370400440532013000"]
        );
        assert_eq!(
            run(iban, "DE89 3704 0044 0532 0130 00 BIC"),
            ["DE89 3704 0044 0532 0130 00"]
        );
        assert!(run(iban, "DE89 3704 0044 0532 0130 01").is_empty());
        assert_eq!(
            run(iban, "GB82 WEST 1234 5698 7654 32"),
            ["GB82 WEST 1234 5698 7654 32"]
        );
        assert_eq!(
            run(iban, "AB12 GB82 WEST 1234 5698 7654 32"),
            ["GB82 WEST 1234 5698 7654 32"]
        );
    }

    #[test]
    fn ids() {
        assert_eq!(run(ssn, "123-45-6789"), ["123-45-6789"]);
        assert!(run(ssn, "666-45-6789").is_empty());
        assert!(run(ssn, "923-45-6789").is_empty());
        assert!(run(ssn, "123-00-6789").is_empty());
        assert_eq!(run(nino, "AB 12 34 56 C"), ["AB 12 34 56 C"]);
        assert!(run(nino, "GB123456A").is_empty());
        assert!(run(nino, "QA123456A").is_empty());
        assert_eq!(run(dni, "12345678Z"), ["12345678Z"]);
        assert!(run(dni, "12345678A").is_empty());
        assert_eq!(run(dni, "X1234567L"), ["X1234567L"]);
    }

    #[test]
    fn ips() {
        assert_eq!(run(ipv4, "192.168.1.10"), ["192.168.1.10"]);
        assert!(run(ipv4, "256.1.1.1").is_empty());
        assert!(run(ipv4, "01.2.3.4").is_empty());
        assert_eq!(run(ipv6, "2001:db8::1"), ["2001:db8::1"]);
        assert_eq!(run(ipv6, "2001:db8::1:"), ["2001:db8::1"]);
        assert!(run(ipv6, "12:30:45").is_empty());
        assert!(run(ipv6, "00:1A:2B:3C:4D:5E").is_empty());
        assert!(run(ipv6, "add::dead").is_empty());
    }

    #[test]
    fn phones() {
        assert_eq!(run(phone_intl, "+1 415-555-0132"), ["+1 415-555-0132"]);
        assert_eq!(
            run(phone_intl, "+44 20 7946 0958 2024"),
            ["+44 20 7946 0958"]
        );
        assert_eq!(
            run(phone_intl, "+44 (0)20 7946 0958"),
            ["+44 (0)20 7946 0958"]
        );
        assert_eq!(run(phone_intl, "+49 30 123456789"), ["+49 30 123456789"]);
        assert_eq!(run(phone_intl, "+33 1 23 45 67 89"), ["+33 1 23 45 67 89"]);
        assert_eq!(run(phone_intl, "+14155550132"), ["+14155550132"]);
        assert!(run(phone_intl, "+2024-01-15").is_empty());
        assert!(run(phone_intl, "+1 2 3 4 5 6 7 8").is_empty());
        assert_eq!(run(phone_nanp, "(415) 555-0132"), ["(415) 555-0132"]);
        assert!(run(phone_nanp, "415-555.0132").is_empty());
        assert!(run(phone_nanp, "411-555-0132").is_empty());
        assert_eq!(run(phone_trunk, "020 7946 0958"), ["020 7946 0958"]);
        assert_eq!(run(phone_trunk, "030/12345678"), ["030/12345678"]);
        assert_eq!(run(phone_trunk, "01 23 45 67 89"), ["01 23 45 67 89"]);
        assert!(run(phone_trunk, "05 11 2023 14").is_empty());
        assert!(run(phone_trunk, "01.02.2024 10").is_empty());
    }

    #[test]
    fn secrets() {
        assert!(run(openai_style, "sk-learn-tutorial-for-beginners-2024").is_empty());
        assert_eq!(run(openai_style, "sk-abcDEF1234567890abcdEFGH").len(), 1);
        let jwt_s = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(run(jwt, jwt_s).len(), 1);
        assert!(run(jwt, "eyJub3QiOiJhIGp3dCJ9.eyJ4IjoxfQ.abcdefghijklmnopq").is_empty());
    }

    #[test]
    fn private_key_blocks() {
        let k = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAAAA\n-----END RSA PRIVATE KEY-----";
        let mut out = Found::default();
        private_key(k.as_bytes(), 0..31, &mut out);
        assert_eq!(out.accept, vec![0..k.len()]);
        let t = "-----BEGIN PRIVATE KEY-----\\nMIIEow\\nAAAA\\n and more";
        out.clear();
        private_key(t.as_bytes(), 0..27, &mut out);
        assert_eq!(
            &t[out.accept[0].clone()],
            "-----BEGIN PRIVATE KEY-----\\nMIIEow\\nAAAA"
        );
    }
}
