//! URL redaction: authority credentials and host, path segments, query parameters, fragment.
//!
//! Each component is percent-decoded before matching (so `john%40example.com` is an e-mail)
//! and re-encoded only where something was replaced; placeholders stay literal (`[EMAIL]`) to
//! stay readable. Query parameters whose name is on the drop-list (`token`, `sig`,
//! `X-Amz-Signature`, …) lose their whole value. A URL that is itself a credential (Slack
//! webhook) is replaced whole.

use std::borrow::Cow;

use crate::{Findings, Kind, REDACTED, Redactor};

pub(crate) fn redact_url<'a>(r: &Redactor, url: &'a str, f: &mut Findings) -> Cow<'a, str> {
    // The URL itself is a credential (Slack webhook): the webhook part is replaced whole and
    // whatever follows it is redacted as a request target.
    let mut out = String::with_capacity(url.len() + 16);
    let mut rest = url;
    if url.contains("hooks.slack.com") {
        for m in r.find(url) {
            let offset = url.len() - rest.len();
            if m.kind != Some(Kind::SlackToken) || m.start != offset {
                break;
            }
            out.push_str(Kind::SlackToken.placeholder());
            f.add_kind(Kind::SlackToken);
            rest = url.get(m.end..).unwrap_or_default();
        }
    }
    let mut changed = rest.len() != url.len();
    let url = rest;

    // Split off the fragment and the query first; what is left is [scheme://authority]path.
    let (before_frag, fragment) = match url.find('#') {
        Some(i) => (&url[..i], Some(&url[i + 1..])),
        None => (url, None),
    };
    let (before_query, query) = match before_frag.find('?') {
        Some(i) => (&before_frag[..i], Some(&before_frag[i + 1..])),
        None => (before_frag, None),
    };
    let (scheme_auth, path) = split_authority(before_query);

    if let Some((scheme, authority)) = scheme_auth {
        out.push_str(scheme);
        changed |= redact_authority(r, authority, &mut out, f);
    }
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        changed |= redact_component(r, seg, false, &mut out, f);
    }
    if let Some(q) = query {
        out.push('?');
        changed |= redact_query(r, q, &mut out, f);
    }
    if let Some(frag) = fragment {
        out.push('#');
        // OAuth implicit flow puts `access_token=…` in the fragment.
        if frag.contains('=') {
            changed |= redact_query(r, frag, &mut out, f);
        } else {
            changed |= redact_component(r, frag, false, &mut out, f);
        }
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(url)
    }
}

/// `("https://", "user:pw@host:443")` and the path, or `None` for a path-only target.
fn split_authority(s: &str) -> (Option<(&str, &str)>, &str) {
    let start = if let Some(i) = s.find("://") {
        let scheme = &s[..i];
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return (None, s);
        }
        i + 3
    } else if s.starts_with("//") {
        2
    } else {
        return (None, s);
    };
    let rest = &s[start..];
    let end = rest.find('/').unwrap_or(rest.len());
    (Some((&s[..start], &rest[..end])), &rest[end..])
}

fn redact_authority(r: &Redactor, auth: &str, out: &mut String, f: &mut Findings) -> bool {
    let mut changed = false;
    let host = match auth.rfind('@') {
        Some(at) => {
            let userinfo = &auth[..at];
            let (user, pass) = match userinfo.find(':') {
                Some(c) => (&userinfo[..c], Some(&userinfo[c + 1..])),
                None => (userinfo, None),
            };
            changed |= redact_component(r, user, false, out, f);
            if let Some(p) = pass {
                out.push(':');
                if p.is_empty() || p == REDACTED {
                    out.push_str(p);
                } else {
                    out.push_str(REDACTED);
                    f.add_field();
                    changed = true;
                }
            }
            out.push('@');
            &auth[at + 1..]
        }
        None => auth,
    };
    // Host (an IP address is redacted; a port is left alone).
    match r.redact_into(host, f) {
        Cow::Owned(new) => {
            out.push_str(&new);
            true
        }
        Cow::Borrowed(h) => {
            out.push_str(h);
            changed
        }
    }
}

fn redact_query(r: &Redactor, q: &str, out: &mut String, f: &mut Findings) -> bool {
    let mut changed = false;
    let mut scratch = String::new();
    for (i, pair) in q.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        let (k, v) = match pair.find('=') {
            Some(e) => (&pair[..e], Some(&pair[e + 1..])),
            None => (pair, None),
        };
        let name = decode(k, true);
        let dropped = r
            .keys()
            .is_dropped(name.as_deref().unwrap_or(k), &mut scratch);
        changed |= redact_component(r, k, true, out, f);
        if let Some(v) = v {
            out.push('=');
            if dropped && !v.is_empty() {
                if v != REDACTED {
                    f.add_field();
                    changed = true;
                }
                out.push_str(REDACTED);
            } else {
                changed |= redact_component(r, v, true, out, f);
            }
        }
    }
    changed
}

/// Redacts one path segment / query key / query value; appends the (possibly re-encoded) text.
fn redact_component(
    r: &Redactor,
    raw: &str,
    form: bool,
    out: &mut String,
    f: &mut Findings,
) -> bool {
    let decoded = decode(raw, form);
    let text: &str = decoded.as_deref().unwrap_or(raw);
    match r.redact_into(text, f) {
        Cow::Borrowed(_) => {
            out.push_str(raw);
            false
        }
        Cow::Owned(new) => {
            if decoded.is_some() {
                encode_into(&new, out);
            } else {
                out.push_str(&new);
            }
            true
        }
    }
}

/// Percent-decodes (and `+` → space for form fields); `None` when there is nothing to decode or
/// the result is not UTF-8 (then the raw text is matched as is).
fn decode(s: &str, form: bool) -> Option<String> {
    let b = s.as_bytes();
    if !(b.contains(&b'%') || form && b.contains(&b'+')) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if form => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Re-encodes a decoded component: unreserved characters, sub-delims other than `&=+`, `:@`
/// and the placeholder brackets stay; everything else is percent-encoded.
fn encode_into(s: &str, out: &mut String) {
    for &b in s.as_bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b','
                    | b';'
                    | b':'
                    | b'@'
                    | b'['
                    | b']'
            );
        if keep {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_and_encode() {
        assert_eq!(decode("a%40b.com", false).as_deref(), Some("a@b.com"));
        assert_eq!(decode("a+b", true).as_deref(), Some("a b"));
        assert_eq!(decode("plain", true), None);
        assert_eq!(decode("%zz", false).as_deref(), Some("%zz"));
        let mut s = String::new();
        encode_into("[EMAIL] x/y", &mut s);
        assert_eq!(s, "[EMAIL]%20x%2Fy");
    }
}
