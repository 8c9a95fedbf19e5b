//! JSON redaction: key rules (drop-list, keep-list) plus pattern redaction of every string, for
//! `serde_json::Value`s and for JSON text.
//!
//! Semantics (both forms agree; a test checks it):
//! - A value under a drop-listed key becomes `"[REDACTED]"` whatever its type.
//! - Keep-list mode: scalars (string, number, bool) not under a keep-listed key become
//!   `"[REDACTED]"`; `null`, keys and structure stay; values under a keep-listed key (at any
//!   depth below it) keep their content, still pattern-redacted. Without a keep-list every value
//!   is kept and pattern-redacted.
//! - Object keys are pattern-redacted too (an e-mail used as a key); a redacted key that would
//!   equal another key of its object gets `#2`, `#3`, … appended, so no value is overwritten.
//! - A string holding a JSON object or array (OpenAI tool-call `arguments`) is redacted as JSON,
//!   so key rules apply inside it.
//!
//! The text form rewrites only the replaced tokens: formatting and key order survive.

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::Value;

use crate::config::KeyAction;
use crate::{Findings, REDACTED, Redactor};

/// Nesting limit for `Value`s built in code (the same as serde_json's parse limit); deeper
/// subtrees are replaced wholesale rather than risking the stack.
const MAX_DEPTH: usize = 128;
/// How many levels of JSON-inside-a-string are unpacked.
const MAX_NESTED_TEXT: usize = 4;

const REDACTED_JSON: &str = "\"[REDACTED]\"";

pub(crate) fn redact_value(r: &Redactor, v: &mut Value, f: &mut Findings) {
    let kept = !r.keys().keep_mode();
    let mut scratch = String::new();
    walk(r, v, kept, 0, f, &mut scratch);
}

fn set_redacted(v: &mut Value, f: &mut Findings) {
    if v.as_str() != Some(REDACTED) {
        *v = Value::String(REDACTED.to_string());
        f.add_field();
    }
}

fn walk(
    r: &Redactor,
    v: &mut Value,
    kept: bool,
    depth: usize,
    f: &mut Findings,
    scratch: &mut String,
) {
    if depth > MAX_DEPTH {
        set_redacted(v, f);
        return;
    }
    match v {
        Value::Null => {}
        Value::Bool(_) | Value::Number(_) => {
            if !kept {
                set_redacted(v, f);
            }
        }
        Value::String(s) => {
            if !kept {
                set_redacted(v, f);
                return;
            }
            if let Some(new) = redact_string_content(r, s, depth, f) {
                *s = new;
            }
        }
        Value::Array(items) => {
            for x in items {
                walk(r, x, kept, depth + 1, f, scratch);
            }
        }
        Value::Object(map) => walk_object(r, map, kept, depth, f, scratch),
    }
}

// Kept out of `walk` so the recursive frame stays small.
#[inline(never)]
fn walk_object(
    r: &Redactor,
    map: &mut serde_json::Map<String, Value>,
    kept: bool,
    depth: usize,
    f: &mut Findings,
    scratch: &mut String,
) {
    let mut renamed: Vec<(String, String)> = Vec::new();
    for (k, val) in map.iter_mut() {
        match r.keys().action(k, scratch) {
            KeyAction::Drop => set_redacted(val, f),
            KeyAction::Keep => walk(r, val, true, depth + 1, f, scratch),
            KeyAction::Inherit => walk(r, val, kept, depth + 1, f, scratch),
        }
        if let Cow::Owned(new) = r.redact_into(k, f) {
            renamed.push((k.clone(), new));
        }
    }
    if !renamed.is_empty() {
        let mut taken: HashSet<String> = map.keys().cloned().collect();
        for (old, new) in renamed {
            if let Some(val) = map.remove(&old) {
                map.insert(unique_key(new, &mut taken), val);
            }
        }
    }
}

/// A redacted key must not collide with another key of its object (original or already
/// redacted): `[EMAIL]`, then `[EMAIL]#2`, `[EMAIL]#3`, …
fn unique_key(new: String, taken: &mut HashSet<String>) -> String {
    let mut candidate = new.clone();
    let mut n = 2;
    while taken.contains(&candidate) {
        candidate = format!("{new}#{n}");
        n += 1;
    }
    taken.insert(candidate.clone());
    candidate
}

/// Pattern-redacts a kept string's content; JSON inside the string is redacted as JSON text
/// (the same rewriter as `redact_json_str`, so both paths give the same bytes).
/// Returns the replacement, or `None` when unchanged.
fn redact_string_content(r: &Redactor, s: &str, depth: usize, f: &mut Findings) -> Option<String> {
    let out = if looks_like_json_container(s) {
        redact_json_text_kept(r, s, f, 1, true, depth)
    } else {
        r.redact_into(s, f)
    };
    match out {
        Cow::Owned(new) => Some(new),
        Cow::Borrowed(_) => None,
    }
}

fn looks_like_json_container(s: &str) -> bool {
    let t = s.trim_start();
    (t.starts_with('{') || t.starts_with('[')) && s.trim_end().ends_with(['}', ']'])
}

// ---------------------------------------------------------------------------------------------
// JSON text

pub(crate) fn redact_json_text<'a>(r: &Redactor, json: &'a str, f: &mut Findings) -> Cow<'a, str> {
    redact_json_text_kept(r, json, f, 0, !r.keys().keep_mode(), 0)
}

/// `nested`: how many JSON-in-string levels enclose this text; `depth`: the nesting depth of
/// the string holding it (the limit applies to the total).
fn redact_json_text_kept<'a>(
    r: &Redactor,
    json: &'a str,
    f: &mut Findings,
    nested: usize,
    kept: bool,
    depth: usize,
) -> Cow<'a, str> {
    if serde_json::from_str::<serde::de::IgnoredAny>(json).is_err() {
        return r.redact_into(json, f);
    }
    let mut local = Findings::default();
    let mut w = Rewriter {
        r,
        src: json,
        pos: 0,
        edits: Vec::new(),
        f: &mut local,
        nested,
        scratch: String::new(),
        depth,
    };
    let ok = w.value(kept).is_some();
    let edits = std::mem::take(&mut w.edits);
    drop(w);
    if !ok {
        // Too deep (or a parser surprise): never fail open, redact as text.
        return r.redact_into(json, f);
    }
    f.merge(&local);
    if edits.is_empty() {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len());
    let mut last = 0;
    for (range, text) in &edits {
        out.push_str(json.get(last..range.start).unwrap_or_default());
        out.push_str(text);
        last = range.end;
    }
    out.push_str(json.get(last..).unwrap_or_default());
    Cow::Owned(out)
}

struct Rewriter<'a, 'f> {
    r: &'a Redactor,
    src: &'a str,
    pos: usize,
    /// Replacements in source order.
    edits: Vec<(std::ops::Range<usize>, String)>,
    f: &'f mut Findings,
    nested: usize,
    scratch: String,
    /// Current nesting depth; beyond `MAX_DEPTH` the rewrite gives up and the caller redacts
    /// the document as text (validation with `IgnoredAny` does not bound nesting).
    depth: usize,
}

impl Rewriter<'_, '_> {
    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        (self.peek() == Some(b)).then(|| self.pos += 1)
    }

    /// Range of the string token at `pos` (quotes included).
    fn string_token(&mut self) -> Option<std::ops::Range<usize>> {
        let start = self.pos;
        self.expect(b'"')?;
        let bytes = self.src.as_bytes();
        loop {
            let off = memchr::memchr2(b'"', b'\\', bytes.get(self.pos..)?)?;
            self.pos += off;
            if bytes[self.pos] == b'\\' {
                self.pos += 2;
            } else {
                self.pos += 1;
                return Some(start..self.pos);
            }
        }
    }

    fn scalar_token(&mut self) -> std::ops::Range<usize> {
        let start = self.pos;
        while matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.'))
        {
            self.pos += 1;
        }
        start..self.pos
    }

    fn skip_value(&mut self) -> Option<std::ops::Range<usize>> {
        self.ws();
        let start = self.pos;
        match self.peek()? {
            b'"' => {
                self.string_token()?;
            }
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string_token()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                self.pos += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    self.pos += 1;
                }
            }
            _ => {
                self.scalar_token();
            }
        }
        Some(start..self.pos)
    }

    fn replace_redacted(&mut self, range: std::ops::Range<usize>) {
        if self.src.get(range.clone()) != Some(REDACTED_JSON) {
            self.edits.push((range, REDACTED_JSON.to_string()));
            self.f.add_field();
        }
    }

    fn value(&mut self, kept: bool) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'{' | b'[' => {
                if self.depth >= MAX_DEPTH {
                    return None;
                }
                self.depth += 1;
                let done = if self.peek()? == b'{' {
                    self.object(kept)
                } else {
                    self.array(kept)
                };
                self.depth -= 1;
                done
            }
            b'"' => {
                let range = self.string_token()?;
                self.string_value(range, kept)
            }
            b'n' => {
                self.scalar_token();
                Some(())
            }
            _ => {
                let range = self.scalar_token();
                if range.is_empty() {
                    return None;
                }
                if !kept {
                    self.replace_redacted(range);
                }
                Some(())
            }
        }
    }

    fn object(&mut self, kept: bool) -> Option<()> {
        let obj_start = self.pos;
        self.expect(b'{')?;
        // All keys of this object, collected on the first key that needs renaming.
        let mut taken: Option<HashSet<String>> = None;
        loop {
            self.ws();
            if self.peek()? == b'}' {
                self.pos += 1;
                return Some(());
            }
            let key_range = self.string_token()?;
            let src = self.src;
            let key_raw = src.get(key_range.clone())?;
            let key: Cow<'_, str> = decode_string(key_raw)?;
            let mut scratch = std::mem::take(&mut self.scratch);
            let action = self.r.keys().action(&key, &mut scratch);
            self.scratch = scratch;
            if let Cow::Owned(new) = self.r.redact_into(&key, self.f) {
                if taken.is_none() {
                    taken = Some(self.object_keys(obj_start)?);
                }
                let set = taken.get_or_insert_with(HashSet::new);
                let new = unique_key(new, set);
                self.edits.push((key_range, encode_string(&new)));
            }
            self.ws();
            self.expect(b':')?;
            match action {
                KeyAction::Drop => {
                    let vr = self.skip_value()?;
                    self.replace_redacted(vr);
                }
                KeyAction::Keep => self.value(true)?,
                KeyAction::Inherit => self.value(kept)?,
            }
            self.ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// The decoded keys of the object starting at `start` (read-only pass).
    fn object_keys(&self, start: usize) -> Option<HashSet<String>> {
        let mut scratch = Findings::default();
        let mut k = Rewriter {
            r: self.r,
            src: self.src,
            pos: start,
            edits: Vec::new(),
            f: &mut scratch,
            nested: self.nested,
            scratch: String::new(),
            depth: 0,
        };
        let mut keys = HashSet::new();
        k.expect(b'{')?;
        loop {
            k.ws();
            if k.peek()? == b'}' {
                return Some(keys);
            }
            let range = k.string_token()?;
            keys.insert(decode_string(k.src.get(range)?)?.into_owned());
            k.ws();
            k.expect(b':')?;
            k.skip_value()?;
            k.ws();
            match k.peek()? {
                b',' => k.pos += 1,
                b'}' => return Some(keys),
                _ => return None,
            }
        }
    }

    fn array(&mut self, kept: bool) -> Option<()> {
        self.expect(b'[')?;
        loop {
            self.ws();
            if self.peek()? == b']' {
                self.pos += 1;
                return Some(());
            }
            self.value(kept)?;
            self.ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn string_value(&mut self, range: std::ops::Range<usize>, kept: bool) -> Option<()> {
        if !kept {
            self.replace_redacted(range);
            return Some(());
        }
        let src = self.src;
        let raw = src.get(range.clone())?;
        let Some(content) = decode_string(raw) else {
            // Undecodable escape (lone surrogate): redact the raw token text; the escape view
            // still sees word boundaries around `\n` and friends.
            if let Cow::Owned(new) = self.r.redact_into(raw, self.f) {
                self.edits.push((range, new));
            }
            return Some(());
        };
        if self.nested < MAX_NESTED_TEXT && looks_like_json_container(&content) {
            let mut local = Findings::default();
            let out = redact_json_text_kept(
                self.r,
                &content,
                &mut local,
                self.nested + 1,
                true,
                self.depth,
            );
            if let Cow::Owned(new) = out {
                self.f.merge(&local);
                self.edits.push((range, encode_string(&new)));
            }
            return Some(());
        }
        if let Cow::Owned(new) = self.r.redact_into(&content, self.f) {
            self.edits.push((range, encode_string(&new)));
        }
        Some(())
    }
}

/// Decodes a JSON string token (with quotes); borrows when it has no escapes.
fn decode_string(raw: &str) -> Option<Cow<'_, str>> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
}

fn encode_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| REDACTED_JSON.to_string())
}
