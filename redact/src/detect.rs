//! The detection engine: the table of built-in detectors (regex + trigger + validator + kind +
//! priority), the two cheap gates that decide where detectors run, the JSON-escape "view",
//! custom patterns, and overlap resolution.
//!
//! How a text is scanned (most prompt text contains nothing sensitive, so steps 2–3 are built
//! to make that case cost about one pass over the bytes):
//! 1. If the text contains a backslash, detectors run on a same-length *view* in which JSON
//!    escapes (`\n`, `\t`, `\"`, `\uXXXX`, doubled backslashes, …) are blanked, so
//!    `…\n4111 1111 …` still has a word boundary before the card. Offsets are unchanged;
//!    replacements go into the original.
//! 2. Secrets and e-mail: one Aho-Corasick pass over trigger literals (`sk-`, `eyJ`, `AKIA`,
//!    `-----BEGIN`, `@`, `Bearer`, …) says which of these detectors run at all;
//!    each then runs its own literal-prefixed regex over the text.
//! 3. Numbers (cards, IBANs, national IDs, IPv4, phones) and IPv6: a table-driven byte scan
//!    finds *clusters* — runs of digits, capitals and number separators (` .-/()+`), or of hex
//!    digits and colons — with per-cluster counts. A number detector runs only on clusters
//!    that could hold its kind (e.g. ≥ 13 digits for a card), restricted to that span; look-
//!    around (`\b`) still sees the surrounding text.
//! 4. Every regex candidate goes through its validator (checksum, number plan, boundary
//!    rules), which may trim it, reject it, or *veto* its span for lower tiers (a checksum-
//!    failing IBAN-shaped token holds no phone number).
//! 5. Resolution: higher tier first (secrets > custom > checksummed numbers > e-mail > IP >
//!    phone), then longer; a candidate overlapping an accepted one is dropped. A JWT inside
//!    `Bearer …` is one `[JWT]`; an e-mail inside a URL is an `[EMAIL]`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use aho_corasick::AhoCorasick;
use regex::{Regex, RegexBuilder};
use regex_automata::{Input, meta};

use crate::Kind;
use crate::config::{CustomPattern, RedactError};
use crate::validate as v;

type Check = fn(&[u8], Range<usize>, &mut v::Found);

/// Where a detector runs.
enum Gate {
    /// Over the whole text, when one of these literals occurs (case-sensitive: label words list
    /// their usual spellings, which keeps the literal search on its SIMD path).
    Literals(&'static [&'static str]),
    /// Over the whole text, when this byte occurs (kept out of the literal search: a one-byte
    /// literal would force its SIMD prefilter to one-byte fingerprints).
    Byte(u8),
    /// Over each number cluster that passes the test.
    Number(fn(&Cluster) -> bool),
    /// Over each hex/colon cluster (IPv6).
    HexColon,
}

/// Which part of a regex match is the value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Value {
    Whole,
    /// The match is `label<sep>value`; the value is what follows the last of ` \t=:"'`.
    AfterLabel,
}

/// A built-in detector's definition.
struct Spec {
    name: &'static str,
    kind: Kind,
    /// Overlap priority; higher wins.
    tier: u8,
    pattern: &'static str,
    gate: Gate,
    value: Value,
    check: Check,
    /// Runs on the original text rather than the escape view (private keys keep their `\n`).
    original: bool,
}

const TIER_CUSTOM: u8 = 5;

const fn spec(
    name: &'static str,
    kind: Kind,
    tier: u8,
    pattern: &'static str,
    gate: Gate,
    check: Check,
) -> Spec {
    Spec {
        name,
        kind,
        tier,
        pattern,
        gate,
        value: Value::Whole,
        check,
        original: false,
    }
}

const fn labelled(mut s: Spec) -> Spec {
    s.value = Value::AfterLabel;
    s
}

fn accept_all(_: &[u8], r: Range<usize>, out: &mut v::Found) {
    out.push(r);
}

const SPECS: &[Spec] = &[
    Spec {
        original: true,
        ..spec(
            "private_key",
            Kind::PrivateKey,
            9,
            r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----",
            Gate::Literals(&["-----BEGIN"]),
            v::private_key,
        )
    },
    spec(
        "jwt",
        Kind::Jwt,
        8,
        r"(?-u:\b)eyJ[A-Za-z0-9_-]{10,}\.e[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
        Gate::Literals(&["eyJ"]),
        v::jwt,
    ),
    spec(
        "github",
        Kind::GithubToken,
        7,
        r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})",
        Gate::Literals(&["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"]),
        v::github,
    ),
    spec(
        "slack_token",
        Kind::SlackToken,
        7,
        r"(?-u:\b)(?:xox[abposre]|xapp)-[A-Za-z0-9-]{10,}",
        Gate::Literals(&["xox", "xapp-"]),
        v::slack,
    ),
    spec(
        "slack_webhook",
        Kind::SlackToken,
        7,
        r"https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]+",
        Gate::Literals(&["hooks.slack.com"]),
        v::slack_webhook,
    ),
    spec(
        "aws_access_key_id",
        Kind::AwsKey,
        7,
        r"(?-u:\b)(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?-u:\b)",
        Gate::Literals(&["AKIA", "ASIA", "ABIA", "ACCA"]),
        accept_all,
    ),
    labelled(spec(
        "aws_secret_access_key",
        Kind::AwsKey,
        7,
        r#"(?i:aws_?secret_?access_?key|aws_?secret_?key|secret_?access_?key)["']?[ \t]*(?:=>|[:=])[ \t]*["']?[A-Za-z0-9/+]{40}"#,
        Gate::Literals(&["secret", "Secret", "SECRET"]),
        v::aws_secret,
    )),
    labelled(spec(
        "aws_session_token",
        Kind::AwsKey,
        7,
        r#"(?i:aws_?session_?token|sessiontoken|x-amz-security-token)["']?[ \t]*(?:=>|[:=])[ \t]*["']?[A-Za-z0-9/+=%]{64,}"#,
        // "token" covers every label; it is shared with `labelled_api_key` (trigger literals
        // must not overlap one another, see `Engine::scan`).
        Gate::Literals(&["token", "Token", "TOKEN"]),
        v::aws_session,
    )),
    spec(
        "sk_key",
        Kind::ApiKey,
        7,
        r"(?-u:\b)sk-[A-Za-z0-9_-]{20,}",
        Gate::Literals(&["sk-"]),
        v::openai_style,
    ),
    spec(
        "stripe_key",
        Kind::ApiKey,
        7,
        r"(?-u:\b)(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,}",
        Gate::Literals(&["sk_live_", "sk_test_", "rk_live_", "rk_test_"]),
        v::stripe,
    ),
    spec(
        "google_api_key",
        Kind::ApiKey,
        7,
        r"(?-u:\b)AIza[0-9A-Za-z_-]{35}",
        Gate::Literals(&["AIza"]),
        v::google,
    ),
    labelled(spec(
        "bearer",
        Kind::ApiKey,
        6,
        r"(?i:bearer)[ \t]+[A-Za-z0-9_.~+/=-]{20,}",
        Gate::Literals(&["bearer", "Bearer", "BEARER"]),
        v::labelled_token,
    )),
    labelled(spec(
        "labelled_api_key",
        Kind::ApiKey,
        6,
        r#"(?i:x-api-key|api[_-]?key|api[_-]?token|auth[_-]?token|access[_-]?token)["']?[ \t]*(?:=>|[:=])[ \t]*["']?[A-Za-z0-9_.~+/-]{20,}"#,
        Gate::Literals(&["api", "Api", "API", "token", "Token", "TOKEN"]),
        v::labelled_token,
    )),
    spec(
        "email",
        Kind::Email,
        3,
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?-u:\b)",
        Gate::Byte(b'@'),
        v::email,
    ),
    spec(
        "card",
        Kind::Card,
        4,
        r"(?-u:\b)[0-9](?:[ -]?[0-9]){12,}(?-u:\b)",
        Gate::Number(|c| c.card_run >= 13),
        v::card,
    ),
    spec(
        "iban",
        Kind::Iban,
        4,
        r"(?-u:\b)[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,40}",
        Gate::Number(|c| c.upper >= 2 && c.digits >= 6),
        v::iban,
    ),
    spec(
        "us_ssn",
        Kind::NationalId,
        4,
        r"(?-u:\b)(?:[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{3} [0-9]{2} [0-9]{4})(?-u:\b)",
        Gate::Number(|c| c.has_runs(&[3, 2, 4])),
        v::ssn,
    ),
    spec(
        "uk_nino",
        Kind::NationalId,
        4,
        r"(?-u:\b)[A-Z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D](?-u:\b)",
        Gate::Number(|c| c.upper >= 3 && (c.has_runs(&[6]) || c.has_runs(&[2, 2, 2]))),
        v::nino,
    ),
    spec(
        "es_dni",
        Kind::NationalId,
        4,
        r"(?-u:\b)(?:[0-9]{8}|[XYZ][0-9]{7})-?[A-Z](?-u:\b)",
        Gate::Number(|c| c.upper >= 1 && c.max_run >= 7),
        v::dni,
    ),
    spec(
        "ipv4",
        Kind::Ip,
        2,
        r"(?-u:\b)(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?-u:\b)",
        Gate::Number(Cluster::may_hold_ipv4),
        v::ipv4,
    ),
    spec(
        "ipv6",
        Kind::Ip,
        2,
        r"(?:[0-9A-Fa-f]{1,4})?(?::(?:[0-9A-Fa-f]{1,4})?){2,8}(?:\.[0-9]{1,3}){0,3}",
        Gate::HexColon,
        v::ipv6,
    ),
    spec(
        "phone_intl",
        Kind::Phone,
        1,
        r"\+[1-9][0-9 ().\-]{5,28}[0-9]",
        Gate::Number(|c| c.plus && c.digits >= 7),
        v::phone_intl,
    ),
    spec(
        "phone_nanp",
        Kind::Phone,
        1,
        r"(?:(?-u:\b)1[ .\-])?(?:\([2-9][0-9]{2}\) ?|(?-u:\b)[2-9][0-9]{2}[ .\-])[2-9][0-9]{2}[ .\-][0-9]{4}(?-u:\b)",
        Gate::Number(|c| c.has_runs(&[3, 3, 4])),
        v::phone_nanp,
    ),
    spec(
        "phone_trunk",
        Kind::Phone,
        1,
        r"(?:\(0[1-9][0-9]{0,4}\) ?|(?-u:\b)0[1-9][0-9]{0,4}[ /.\-])[0-9]{2,8}(?:[ .\-][0-9]{2,8}){0,4}(?-u:\b)",
        Gate::Number(Cluster::may_hold_trunk_phone),
        v::phone_trunk,
    ),
];

// ---------------------------------------------------------------------------------------------
// Clusters

/// A run of number-ish bytes (digits, capitals, ` .-/()+`) or of hex digits, colons and dots.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cluster {
    pub start: usize,
    pub end: usize,
    pub digits: u32,
    pub upper: u32,
    pub dots: u32,
    /// Longest run of consecutive digits.
    pub max_run: u32,
    /// Most digits in a run where single spaces or dashes may separate digits (card, SSN).
    pub card_run: u32,
    pub plus: bool,
    /// The digit runs in order (the first `MAX_RUNS`), for structural gates.
    runs: [DigitRun; MAX_RUNS],
    nruns: usize,
    /// More runs than recorded: structural gates then say yes.
    overflow: bool,
}

const MAX_RUNS: usize = 24;

#[derive(Debug, Clone, Copy, Default)]
struct DigitRun {
    len: u8,
    first: u8,
    /// The byte after the run (0 at the end of the cluster).
    next: u8,
}

impl Cluster {
    fn runs(&self) -> &[DigitRun] {
        self.runs.get(..self.nruns).unwrap_or_default()
    }

    /// Consecutive digit runs with exactly these lengths (e.g. `[3, 2, 4]` for an SSN).
    fn has_runs(&self, lens: &[u8]) -> bool {
        self.overflow
            || self
                .runs()
                .windows(lens.len())
                .any(|w| w.iter().zip(lens).all(|(r, l)| r.len == *l))
    }

    /// Four runs of 1–3 digits joined by dots.
    fn may_hold_ipv4(&self) -> bool {
        self.overflow
            || self.runs().windows(4).any(|w| {
                w.iter().all(|r| (1..=3).contains(&r.len)) && w[..3].iter().all(|r| r.next == b'.')
            })
    }

    /// A run starting with `0` (2–6 digits, the area code) followed by more runs, 9+ digits.
    fn may_hold_trunk_phone(&self) -> bool {
        let runs = self.runs();
        self.overflow
            || runs.iter().enumerate().any(|(i, r)| {
                r.first == b'0'
                    && (2..=6).contains(&r.len)
                    && i + 1 < runs.len()
                    && runs[i..].iter().map(|x| u32::from(x.len)).sum::<u32>() >= 9
            })
    }
}

const C_DIGIT: u8 = 1;
const C_UPPER: u8 = 2;
const C_SEP: u8 = 4;
const C_HEX: u8 = 8;
const C_COLON: u8 = 16;

const fn class_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        if b.is_ascii_digit() {
            c |= C_DIGIT | C_HEX;
        }
        if b.is_ascii_uppercase() {
            c |= C_UPPER;
        }
        if matches!(b, b'A'..=b'F' | b'a'..=b'f') {
            c |= C_HEX;
        }
        if matches!(b, b' ' | b'.' | b'-' | b'/' | b'(' | b')' | b'+') {
            c |= C_SEP;
        }
        if b == b':' {
            c |= C_COLON;
        }
        if b == b'.' {
            c |= C_HEX; // IPv4-mapped IPv6 tails
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CLASS: [u8; 256] = class_table();

const C_NUM: u8 = C_DIGIT | C_UPPER | C_SEP;
const C_HEXCOLON: u8 = C_HEX | C_COLON;

/// First ASCII digit at or after `from`. Tests 32-byte chunks with a branch-free OR-reduction
/// the compiler vectorises, so prose without digits costs about one pass.
fn next_digit(h: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(chunk) = h.get(i..i + 32) {
        let any = chunk
            .iter()
            .fold(0u8, |acc, &b| acc | u8::from(b.wrapping_sub(b'0') < 10));
        if any != 0 {
            break;
        }
        i += 32;
    }
    h.get(i..)?
        .iter()
        .position(u8::is_ascii_digit)
        .map(|p| i + p)
}

/// Extends `at` to the maximal run of bytes whose class intersects `mask`, not going below
/// `floor`.
fn expand(h: &[u8], at: usize, floor: usize, mask: u8) -> (usize, usize) {
    let mut s = at;
    while s > floor && CLASS[usize::from(h[s - 1])] & mask != 0 {
        s -= 1;
    }
    let mut e = at;
    while e < h.len() && CLASS[usize::from(h[e])] & mask != 0 {
        e += 1;
    }
    (s, e)
}

/// Counts for a number cluster `h[start..end]`.
fn number_stats(h: &[u8], start: usize, end: usize) -> Cluster {
    let mut n = Cluster {
        start,
        end,
        ..Cluster::default()
    };
    // Current digit run, current card-style run, and whether the previous byte was a digit.
    let (mut run, mut crun, mut last_digit) = (0u32, 0u32, false);
    for &b in &h[start..end] {
        let c = CLASS[usize::from(b)];
        if c & C_DIGIT != 0 {
            if run == 0 {
                if n.nruns < MAX_RUNS {
                    n.runs[n.nruns] = DigitRun {
                        len: 0,
                        first: b,
                        next: 0,
                    };
                    n.nruns += 1;
                } else {
                    n.overflow = true;
                }
            }
            n.digits += 1;
            run += 1;
            crun += 1;
            n.max_run = n.max_run.max(run);
            n.card_run = n.card_run.max(crun);
            if !n.overflow
                && let Some(r) = n.runs.get_mut(n.nruns.wrapping_sub(1))
            {
                r.len = r.len.saturating_add(1);
            }
            last_digit = true;
        } else {
            if last_digit
                && !n.overflow
                && let Some(r) = n.runs.get_mut(n.nruns.wrapping_sub(1))
            {
                r.next = b;
            }
            if !(last_digit && (b == b' ' || b == b'-')) {
                crun = 0;
            }
            run = 0;
            last_digit = false;
            if c & C_UPPER != 0 {
                n.upper += 1;
            } else {
                n.dots += u32::from(b == b'.');
                n.plus |= b == b'+';
            }
        }
    }
    n
}

/// Calls `num` for each number cluster (a maximal run of digits, capitals and ` .-/()+`) with
/// ≥ 4 digits, and `hex` for each hex/colon cluster with ≥ 2 colons and a digit. Clusters are
/// grown from the digits (resp. colons) they must contain, so text without digits is skipped
/// at vector speed.
fn clusters(
    h: &[u8],
    want_hex: bool,
    mut num: impl FnMut(&Cluster),
    mut hex: impl FnMut(&Cluster),
) {
    let mut floor = 0;
    let mut from = 0;
    while let Some(d) = next_digit(h, from) {
        let (s, e) = expand(h, d, floor, C_NUM);
        let c = number_stats(h, s, e);
        if c.digits >= 4 {
            num(&c);
        }
        floor = e;
        from = e.max(d + 1);
    }
    if want_hex {
        let mut floor = 0;
        let mut from = 0;
        while let Some(p) = memchr::memchr(b':', h.get(from..).unwrap_or_default()) {
            let at = from + p;
            let (s, e) = expand(h, at, floor, C_HEXCOLON);
            let bytes = &h[s..e];
            let colons = bytes.iter().filter(|&&b| b == b':').count();
            let digits = bytes.iter().filter(|b| b.is_ascii_digit()).count();
            if colons >= 2 && digits >= 1 {
                hex(&Cluster {
                    start: s,
                    end: e,
                    digits: digits as u32,
                    ..Cluster::default()
                });
            }
            floor = e;
            from = e.max(at + 1);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Engine

/// Which entity a candidate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Label {
    Kind(Kind),
    /// Index into `Engine::custom`.
    Custom(usize),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
    pub label: Label,
    tier: u8,
}

impl Span {
    /// A span decided outside the engine's own resolution (fixpoint rounds).
    pub(crate) fn new(start: usize, end: usize, label: Label) -> Span {
        Span {
            start,
            end,
            label,
            tier: 0,
        }
    }
}

struct Detector {
    spec: &'static Spec,
    regex: meta::Regex,
}

pub(crate) struct CustomDetector {
    pub name: Arc<str>,
    pub placeholder: String,
    regex: Regex,
}

/// Compiled detectors for one configuration.
pub(crate) struct Engine {
    detectors: Vec<Detector>,
    /// Trigger literals of the literal-gated detectors, and for each literal the bit set of the
    /// detectors (indices into `detectors`) it triggers.
    triggers: Option<AhoCorasick>,
    trigger_bits: Vec<u64>,
    all_triggered: u64,
    /// Indices of byte-gated, number-gated and hex/colon-gated detectors.
    bytes: Vec<usize>,
    number: Vec<usize>,
    hex: Vec<usize>,
    pub custom: Vec<CustomDetector>,
}

// Lazy-DFA cache per regex (per thread): large enough that mixed text does not thrash it.
const DFA_CACHE: usize = 2 << 20;

impl Engine {
    pub(crate) fn new(kinds: &[Kind], custom: &[CustomPattern]) -> Result<Engine, RedactError> {
        let mut detectors = Vec::new();
        let mut literals: Vec<&'static str> = Vec::new();
        let mut trigger_bits: Vec<u64> = Vec::new();
        let mut number = Vec::new();
        let mut hex = Vec::new();
        let mut bytes = Vec::new();
        for spec in SPECS.iter().filter(|s| kinds.contains(&s.kind)) {
            let idx = detectors.len();
            // Literal-led patterns keep the regex prefilter (memchr/Teddy); number patterns run
            // on short clusters where a prefilter on `.`/`-`/space only costs.
            let prefilter = matches!(spec.gate, Gate::Literals(_));
            let regex = meta::Regex::builder()
                .configure(
                    meta::Config::new()
                        .auto_prefilter(prefilter)
                        .hybrid_cache_capacity(DFA_CACHE),
                )
                .build(spec.pattern)
                .map_err(|e| RedactError::Builtin {
                    name: spec.name,
                    source: Box::new(e),
                })?;
            match spec.gate {
                Gate::Literals(lits) => {
                    for lit in lits {
                        match literals.iter().position(|l| l == lit) {
                            Some(p) => trigger_bits[p] |= 1 << idx,
                            None => {
                                literals.push(lit);
                                trigger_bits.push(1 << idx);
                            }
                        }
                    }
                }
                Gate::Byte(_) => bytes.push(idx),
                Gate::Number(_) => number.push(idx),
                Gate::HexColon => hex.push(idx),
            }
            detectors.push(Detector { spec, regex });
        }
        let triggers = if literals.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(aho_corasick::MatchKind::LeftmostFirst)
                    .build(&literals)
                    .map_err(|e| RedactError::Builtin {
                        name: "trigger literals",
                        source: Box::new(e),
                    })?,
            )
        };
        let mut compiled: Vec<CustomDetector> = Vec::with_capacity(custom.len());
        for c in custom {
            validate_name(&c.name)?;
            if compiled
                .iter()
                .any(|d| d.name.eq_ignore_ascii_case(&c.name))
                || Kind::from_name(&c.name.to_ascii_lowercase()).is_some()
            {
                return Err(RedactError::InvalidName {
                    name: c.name.clone(),
                    reason: "duplicates another pattern or a built-in kind",
                });
            }
            let regex = RegexBuilder::new(&c.regex)
                .dfa_size_limit(DFA_CACHE)
                .build()
                .map_err(|e| RedactError::InvalidPattern {
                    name: c.name.clone(),
                    source: Box::new(e),
                })?;
            if regex.is_match("") {
                return Err(RedactError::EmptyMatch {
                    name: c.name.clone(),
                });
            }
            compiled.push(CustomDetector {
                name: Arc::from(c.name.as_str()),
                placeholder: format!("[{}]", c.name.to_ascii_uppercase()),
                regex,
            });
        }
        let all_triggered = trigger_bits.iter().fold(0, |a, b| a | b);
        Ok(Engine {
            detectors,
            triggers,
            trigger_bits,
            all_triggered,
            bytes,
            number,
            hex,
            custom: compiled,
        })
    }

    /// Accepted, non-overlapping spans sorted by start.
    pub(crate) fn scan(&self, text: &str) -> Vec<Span> {
        let view = escape_view(text);
        let hay: &str = view.as_deref().unwrap_or(text);
        let mut sink = Sink::default();

        if let Some(ac) = &self.triggers {
            // Leftmost-first search (keeps the SIMD prefilter), restarted one byte after each
            // match start so that overlapping literals are all seen; literals sharing a start
            // would hide each other only if one were a prefix of another (a test forbids it).
            let mut want: u64 = 0;
            let mut pos = 0;
            while let Some(m) = ac.find(aho_corasick::Input::new(hay).span(pos..hay.len())) {
                want |= self
                    .trigger_bits
                    .get(m.pattern().as_usize())
                    .copied()
                    .unwrap_or(0);
                if want == self.all_triggered {
                    break;
                }
                pos = m.start() + 1;
            }
            let mut bits = want;
            while bits != 0 {
                let idx = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(det) = self.detectors.get(idx) {
                    let h = if det.spec.original { text } else { hay };
                    sink.run(det, h, 0..h.len());
                }
            }
        }
        for &i in &self.bytes {
            if let Some(det) = self.detectors.get(i)
                && let Gate::Byte(b) = det.spec.gate
                && memchr::memchr(b, hay.as_bytes()).is_some()
            {
                sink.run(det, hay, 0..hay.len());
            }
        }
        if !self.number.is_empty() || !self.hex.is_empty() {
            let dets = &self.detectors;
            let number = &self.number;
            let hex = &self.hex;
            // Collect clusters first: the closures cannot both borrow the sink mutably.
            let mut num_clusters: Vec<Cluster> = Vec::new();
            let mut hex_clusters: Vec<Cluster> = Vec::new();
            // IPv6 needs `::` or the seven colons of the full form.
            let want_hex = !hex.is_empty()
                && (memchr::memmem::find(hay.as_bytes(), b"::").is_some()
                    || memchr::memchr_iter(b':', hay.as_bytes()).nth(6).is_some());
            if !number.is_empty() || want_hex {
                clusters(
                    hay.as_bytes(),
                    want_hex,
                    |c| {
                        if !number.is_empty() {
                            num_clusters.push(c.clone());
                        }
                    },
                    |c| hex_clusters.push(c.clone()),
                );
            }
            for c in &num_clusters {
                for &i in number {
                    let Some(det) = dets.get(i) else { continue };
                    if let Gate::Number(gate) = det.spec.gate
                        && gate(c)
                    {
                        sink.run(det, hay, c.start..c.end);
                    }
                }
            }
            for c in &hex_clusters {
                for &i in hex {
                    if let Some(det) = dets.get(i) {
                        sink.run(det, hay, c.start..c.end);
                    }
                }
            }
        }

        let Sink {
            mut cands, vetoes, ..
        } = sink;
        if !self.custom.is_empty() {
            let protected = placeholder_spans(text);
            for (idx, c) in self.custom.iter().enumerate() {
                for m in c.regex.find_iter(text) {
                    if m.is_empty()
                        || protected
                            .iter()
                            .any(|p| p.start < m.end() && m.start() < p.end)
                    {
                        continue;
                    }
                    cands.push(Span {
                        start: m.start(),
                        end: m.end(),
                        label: Label::Custom(idx),
                        tier: TIER_CUSTOM,
                    });
                }
            }
        }
        if !vetoes.is_empty() {
            cands.retain(|c| {
                !vetoes
                    .iter()
                    .any(|(r, t)| c.tier < *t && r.start < c.end && c.start < r.end)
            });
        }
        resolve(cands, text)
    }
}

/// Candidates and vetoes collected during one scan.
#[derive(Default)]
struct Sink {
    cands: Vec<Span>,
    /// (range, tier): candidates of a lower tier overlapping a veto are dropped.
    vetoes: Vec<(Range<usize>, u8)>,
    found: v::Found,
}

impl Sink {
    /// Runs one detector over `span` of `h` and validates its matches.
    fn run(&mut self, det: &Detector, h: &str, span: Range<usize>) {
        let spec = det.spec;
        let bytes = h.as_bytes();
        self.found.clear();
        for m in det.regex.find_iter(Input::new(h).span(span)) {
            let r = m.range();
            let r = match spec.value {
                Value::Whole => r,
                Value::AfterLabel => {
                    let s = bytes.get(r.clone()).unwrap_or_default();
                    let cut = s
                        .iter()
                        .rposition(|b| matches!(b, b' ' | b'\t' | b'=' | b':' | b'"' | b'\''))
                        .map_or(0, |p| p + 1);
                    r.start + cut..r.end
                }
            };
            (spec.check)(bytes, r, &mut self.found);
        }
        let tier = spec.tier;
        self.cands.extend(
            self.found
                .accept
                .iter()
                .filter(|r| r.start < r.end)
                .map(|r| Span {
                    start: r.start,
                    end: r.end,
                    label: Label::Kind(spec.kind),
                    tier,
                }),
        );
        // An IBAN-shaped token also vetoes card matches inside it.
        let veto_tier = if spec.kind == Kind::Iban {
            tier + 1
        } else {
            tier
        };
        self.vetoes
            .extend(self.found.veto.iter().map(|r| (r.clone(), veto_tier)));
    }
}

fn validate_name(name: &str) -> Result<(), RedactError> {
    let reason = if name.is_empty() || name.len() > 64 {
        Some("must be 1 to 64 characters")
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Some("only ASCII letters, digits and `_` are allowed")
    } else if name.eq_ignore_ascii_case("redacted") || name.eq_ignore_ascii_case("fields") {
        Some("reserved name")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(RedactError::InvalidName {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Picks non-overlapping spans: higher tier, then longer, then earlier wins.
fn resolve(mut cands: Vec<Span>, text: &str) -> Vec<Span> {
    // Spans must be on char boundaries to be replaceable; validators work on ASCII so this only
    // guards custom patterns and future detectors.
    cands.retain(|s| text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
    if cands.len() <= 1 {
        return cands;
    }
    cands.sort_by(|a, b| {
        b.tier
            .cmp(&a.tier)
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&b.start))
    });
    let mut taken: BTreeMap<usize, Span> = BTreeMap::new();
    for c in cands {
        let clash = taken
            .range(..c.end)
            .next_back()
            .is_some_and(|(_, t)| t.end > c.start);
        if !clash {
            taken.insert(c.start, c);
        }
    }
    taken.into_values().collect()
}

/// Same-length copy of `text` with JSON string escapes blanked to spaces, or `None` when the
/// text has no backslash. Only ASCII bytes are replaced by ASCII bytes, so it stays UTF-8.
fn escape_view(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    memchr::memchr(b'\\', bytes)?;
    let mut out = bytes.to_vec();
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'\\', out.get(i..).unwrap_or_default()) {
        let j = i + off;
        // A run of backslashes: JSON escaped once (`\n`) or twice (`\\n`, a string holding
        // JSON text) before an escape letter.
        let mut k = j;
        while out.get(k) == Some(&b'\\') {
            k += 1;
        }
        let run = k - j;
        let end = match out.get(k) {
            Some(b'n' | b'r' | b't' | b'"' | b'b' | b'f') => k + 1,
            Some(b'u')
                if out
                    .get(k + 1..k + 5)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
            {
                k + 5
            }
            _ if run >= 2 => k,
            _ => j,
        };
        out[j..end].fill(b' ');
        i = end.max(j + 1);
    }
    String::from_utf8(out).ok()
}

/// Byte ranges of placeholders already in the text (`[EMAIL]`, `[REDACTED]`, `[SOME_NAME]`), so
/// custom patterns cannot re-redact inside them and redaction stays idempotent.
fn placeholder_spans(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'[', b.get(i..).unwrap_or_default()) {
        let s = i + off;
        let mut j = s + 1;
        while j < b.len() && (b[j].is_ascii_uppercase() || b[j].is_ascii_digit() || b[j] == b'_') {
            j += 1;
        }
        if j > s + 1 && b.get(j) == Some(&b']') {
            out.push(s..j + 1);
            i = j + 1;
        } else {
            i = s + 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_compile_and_fit_the_trigger_mask() {
        let e = Engine::new(&Kind::ALL, &[]).unwrap();
        assert!(e.detectors.len() <= 64);
    }

    #[test]
    fn trigger_literals_are_not_prefixes_of_each_other() {
        // See `Engine::scan`: two literals of different detectors starting at the same byte
        // would hide one another if one were a prefix of the other.
        let lits: Vec<(String, &str)> = SPECS
            .iter()
            .filter_map(|s| match s.gate {
                Gate::Literals(l) => Some(l.iter().map(|x| (x.to_ascii_lowercase(), s.name))),
                _ => None,
            })
            .flatten()
            .collect();
        for (a, da) in &lits {
            for (b, db) in &lits {
                assert!(
                    da == db || a == b || !a.starts_with(b.as_str()),
                    "{b} ({db}) is a prefix of {a} ({da})"
                );
            }
        }
    }

    #[test]
    fn overlapping_triggers_are_all_seen() {
        let e = Engine::new(&Kind::ALL, &[]).unwrap();
        // "xapp-" overlaps "-----BEGIN"; both detectors must run.
        let key = "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----";
        let t = format!("xapp{key}");
        let spans = e.scan(&t);
        assert!(
            spans
                .iter()
                .any(|s| s.label == Label::Kind(Kind::PrivateKey)),
            "{spans:?}"
        );
    }

    #[test]
    fn clusters_count_digits_and_colons() {
        let mut nums = Vec::new();
        let mut hexes = Vec::new();
        let t = "call +44 20 7946 0958 now, host fe80::1 at 12:30, v1.2";
        clusters(
            t.as_bytes(),
            true,
            |c| nums.push(c.clone()),
            |c| hexes.push(c.clone()),
        );
        assert_eq!(nums.len(), 1);
        assert_eq!(&t[nums[0].start..nums[0].end], " +44 20 7946 0958 ");
        assert_eq!(nums[0].digits, 12);
        assert_eq!(nums[0].card_run, 12);
        assert_eq!(nums[0].max_run, 4);
        assert!(nums[0].plus);
        assert!(nums[0].has_runs(&[2, 4, 4]) && !nums[0].has_runs(&[3, 2, 4]));
        assert!(!nums[0].may_hold_trunk_phone() && !nums[0].may_hold_ipv4());
        let mut more = Vec::new();
        let t2 = "tel 020 7946 0958 from 10.0.0.1";
        clusters(t2.as_bytes(), false, |c| more.push(c.clone()), |_| {});
        assert!(more[0].may_hold_trunk_phone());
        assert!(more[1].may_hold_ipv4());
        assert_eq!(hexes.len(), 1);
        assert!(t[hexes[0].start..hexes[0].end].contains("fe80::1"));
    }

    #[test]
    fn view_keeps_length_and_blanks_escapes() {
        let t = r#"a\nb\"c\u00e9d\x\\ny\\z"#;
        let v = escape_view(t).unwrap();
        assert_eq!(v.len(), t.len());
        assert_eq!(v, "a  b  c      d\\x   y  z");
    }

    #[test]
    fn resolve_prefers_tier_then_length() {
        let mk = |start, end, tier| Span {
            start,
            end,
            label: Label::Kind(Kind::Email),
            tier,
        };
        let text = "x".repeat(100);
        let out = resolve(
            vec![mk(0, 10, 1), mk(5, 8, 4), mk(20, 30, 1), mk(18, 40, 1)],
            &text,
        );
        let got: Vec<_> = out.iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(got, [(5, 8), (18, 40)]);
    }
}
