//! HTTP message heads shared by the HTTP/1.1 and HTTP/2 transports, and the rules for what of a head
//! may leave the node: URL queries are scrubbed of credentials and credential headers are never copied.

/// Header names whose values are credentials. They are never copied into a span.
pub const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "x-amz-security-token",
    "cookie",
    "set-cookie",
];

/// Query parameters that carry credentials (compared case-insensitively); dropped from URLs.
const SECRET_QUERY_PARAMS: &[&str] = &[
    "key",
    "api_key",
    "apikey",
    "api-key",
    "access_token",
    "token",
    "sig",
    "signature",
    "code",
    "x-amz-security-token",
    "x-amz-signature",
    "x-amz-credential",
];

/// Header list in arrival order; lookups are case-insensitive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn push(&mut self, name: &str, value: &str) {
        self.0.push((name.to_string(), value.to_string()));
    }

    /// The media type of `Content-Type`, lowercased, without parameters.
    pub fn content_type(&self) -> Option<String> {
        self.get("content-type").map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
    }
}

/// A request head. `target` is the raw request target (path and query).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    /// `Host` or `:authority`.
    pub authority: Option<String>,
    pub headers: Headers,
}

impl RequestHead {
    /// The path without query.
    pub fn path(&self) -> &str {
        let target = self.target.as_str();
        // Absolute-form targets (proxies) carry scheme and authority first.
        let target = match target.find("://") {
            Some(i) => target[i + 3..]
                .find('/')
                .map_or("/", |p| &target[i + 3 + p..]),
            None => target,
        };
        target.split(['?', '#']).next().unwrap_or_default()
    }

    /// The query string (without `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// Value of a query parameter (not percent-decoded).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    }

    /// Host name from `Host`/`:authority`, lowercased, without port.
    pub fn host(&self) -> Option<String> {
        let authority = self.authority.as_deref()?.trim();
        let host = if let Some(rest) = authority.strip_prefix('[') {
            rest.split(']').next().unwrap_or_default()
        } else {
            authority.rsplit_once(':').map_or(authority, |(h, p)| {
                if p.bytes().all(|b| b.is_ascii_digit()) {
                    h
                } else {
                    authority
                }
            })
        };
        (!host.is_empty()).then(|| host.to_ascii_lowercase())
    }

    /// Port from `Host`/`:authority`, when written there.
    pub fn authority_port(&self) -> Option<u16> {
        let authority = self.authority.as_deref()?;
        let after_bracket = authority.rsplit(']').next().unwrap_or(authority);
        after_bracket.rsplit_once(':')?.1.parse().ok()
    }

    /// The query with credential parameters removed; `None` when nothing is left.
    pub fn scrubbed_query(&self) -> Option<String> {
        let kept: Vec<&str> = self
            .query()?
            .split('&')
            .filter(|pair| {
                let key = pair.split('=').next().unwrap_or_default();
                !key.is_empty()
                    && !SECRET_QUERY_PARAMS
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(key))
            })
            .collect();
        (!kept.is_empty()).then(|| kept.join("&"))
    }
}

/// A response head.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: Headers,
}

/// `traceparent` (W3C trace context, version 00 and compatible future versions): trace and parent ids.
pub fn parse_traceparent(value: &str) -> Option<(String, String)> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let parent_id = parts.next()?;
    let flags = parts.next()?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace_id, 32)
        && hex(parent_id, 16)
        && hex(flags, 2)
        && trace_id.bytes().any(|b| b != b'0')
        && parent_id.bytes().any(|b| b != b'0');
    valid.then(|| {
        (
            trace_id.to_ascii_lowercase(),
            parent_id.to_ascii_lowercase(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(target: &str, authority: Option<&str>) -> RequestHead {
        RequestHead {
            method: "POST".into(),
            target: target.into(),
            authority: authority.map(String::from),
            headers: Headers::default(),
        }
    }

    #[test]
    fn paths_queries_and_hosts() {
        let h = head(
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=AIzaSECRET",
            Some("generativelanguage.googleapis.com:443"),
        );
        assert_eq!(
            h.path(),
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
        );
        assert_eq!(h.query_param("alt"), Some("sse"));
        assert_eq!(h.scrubbed_query().as_deref(), Some("alt=sse"));
        assert_eq!(
            h.host().as_deref(),
            Some("generativelanguage.googleapis.com")
        );
        assert_eq!(h.authority_port(), Some(443));
        let proxy = head(
            "http://api.openai.com/v1/chat/completions",
            Some("[::1]:8080"),
        );
        assert_eq!(proxy.path(), "/v1/chat/completions");
        assert_eq!(proxy.host().as_deref(), Some("::1"));
        assert_eq!(proxy.authority_port(), Some(8080));
        assert_eq!(head("/", Some("api.openai.com")).authority_port(), None);
        assert_eq!(head("/", Some("[::1]")).authority_port(), None);
        assert_eq!(head("/x?key=1", None).scrubbed_query(), None);
    }

    #[test]
    fn traceparent_is_validated() {
        assert_eq!(
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some((
                "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                "00f067aa0ba902b7".into()
            ))
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
    }
}
