//! What a redaction found: per-kind counts ([`Findings`]) and individual spans ([`Match`]).

use std::sync::Arc;

use crate::Kind;

/// Counts of replaced values, per built-in kind, per custom pattern, and for values replaced
/// wholesale by a JSON key / URL parameter rule (`fields`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    builtin: [u32; Kind::ALL.len()],
    custom: Vec<(Arc<str>, u32)>,
    fields: u32,
}

impl Findings {
    /// Values of `kind` replaced.
    pub fn get(&self, kind: Kind) -> u32 {
        self.builtin[kind.index()]
    }

    /// Values matched by the custom pattern `name` (as configured, case-sensitive).
    pub fn custom(&self, name: &str) -> u32 {
        self.custom
            .iter()
            .find(|(n, _)| &**n == name)
            .map_or(0, |(_, c)| *c)
    }

    /// Values replaced by `[REDACTED]` because of a key rule (JSON drop/keep list, URL parameter,
    /// URL password).
    pub fn fields(&self) -> u32 {
        self.fields
    }

    /// Total number of replacements of any sort.
    pub fn total(&self) -> u64 {
        self.builtin.iter().map(|&c| u64::from(c)).sum::<u64>()
            + self.custom.iter().map(|(_, c)| u64::from(*c)).sum::<u64>()
            + u64::from(self.fields)
    }

    /// True when nothing was replaced.
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// Non-zero counts as `(name, count)`: built-in kinds by [`Kind::name`], then custom
    /// patterns by their configured name, then `("fields", n)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> + '_ {
        Kind::ALL
            .into_iter()
            .map(|k| (k.name(), self.builtin[k.index()]))
            .chain(self.custom.iter().map(|(n, c)| (&**n, *c)))
            .chain(std::iter::once(("fields", self.fields)))
            .filter(|(_, c)| *c > 0)
    }

    /// Adds `other`'s counts to `self`.
    pub fn merge(&mut self, other: &Findings) {
        for (a, b) in self.builtin.iter_mut().zip(other.builtin.iter()) {
            *a = a.saturating_add(*b);
        }
        for (name, c) in &other.custom {
            self.add_custom(name, *c);
        }
        self.fields = self.fields.saturating_add(other.fields);
    }

    pub(crate) fn add_kind(&mut self, kind: Kind) {
        let c = &mut self.builtin[kind.index()];
        *c = c.saturating_add(1);
    }

    pub(crate) fn add_custom(&mut self, name: &Arc<str>, n: u32) {
        if let Some((_, c)) = self
            .custom
            .iter_mut()
            .find(|(x, _)| Arc::ptr_eq(x, name) || x == name)
        {
            *c = c.saturating_add(n);
        } else {
            self.custom.push((Arc::clone(name), n));
        }
    }

    pub(crate) fn add_field(&mut self) {
        self.fields = self.fields.saturating_add(1);
    }
}

/// One detected value: its byte range in the searched text and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match<'r> {
    pub start: usize,
    pub end: usize,
    /// The built-in kind, or `None` for a custom pattern.
    pub kind: Option<Kind>,
    /// [`Kind::name`] or the custom pattern's configured name.
    pub name: &'r str,
    /// The replacement text, e.g. `[EMAIL]`.
    pub placeholder: &'r str,
}

impl Match<'_> {
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start..self.end
    }
}
