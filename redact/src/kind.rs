//! The built-in kinds of sensitive value: their placeholders, stable names and overlap priority.

use serde::{Deserialize, Serialize};

/// A built-in kind of sensitive value.
///
/// The lowercase [`Kind::name`] is stable: it is the spelling in config files (`kinds = ["email"]`)
/// and in [`crate::Findings`]; [`Kind::placeholder`] is what replaces a value in redacted text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// E-mail addresses (ASCII).
    Email,
    /// International `+CC` numbers, NANP numbers, national numbers with a trunk `0`.
    Phone,
    /// Payment card numbers: Luhn plus issuer range and length.
    Card,
    /// IBANs: mod-97 plus the country's length.
    Iban,
    /// US SSN, UK National Insurance number, Spanish DNI/NIE.
    NationalId,
    /// IPv4 and IPv6 addresses.
    Ip,
    /// Provider API keys (`sk-…`, `sk-ant-…`, `AIza…`, Stripe), `Bearer` and `api_key`-labelled tokens.
    ApiKey,
    /// AWS access key ids; labelled secret access keys and session tokens.
    AwsKey,
    /// GitHub tokens (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`).
    GithubToken,
    /// Slack tokens (`xox?-`, `xapp-`) and incoming-webhook URLs.
    SlackToken,
    /// JSON Web Tokens (compact JWS).
    Jwt,
    /// PEM/OpenSSH/PGP private-key blocks.
    PrivateKey,
}

impl Kind {
    /// Every built-in kind, in declaration order (the order of [`crate::Findings::iter`]).
    pub const ALL: [Kind; 12] = [
        Kind::Email,
        Kind::Phone,
        Kind::Card,
        Kind::Iban,
        Kind::NationalId,
        Kind::Ip,
        Kind::ApiKey,
        Kind::AwsKey,
        Kind::GithubToken,
        Kind::SlackToken,
        Kind::Jwt,
        Kind::PrivateKey,
    ];

    /// The text that replaces a value of this kind.
    pub const fn placeholder(self) -> &'static str {
        match self {
            Kind::Email => "[EMAIL]",
            Kind::Phone => "[PHONE]",
            Kind::Card => "[CARD]",
            Kind::Iban => "[IBAN]",
            Kind::NationalId => "[NATIONAL_ID]",
            Kind::Ip => "[IP]",
            Kind::ApiKey => "[API_KEY]",
            Kind::AwsKey => "[AWS_KEY]",
            Kind::GithubToken => "[GITHUB_TOKEN]",
            Kind::SlackToken => "[SLACK_TOKEN]",
            Kind::Jwt => "[JWT]",
            Kind::PrivateKey => "[PRIVATE_KEY]",
        }
    }

    /// Stable lowercase name (config spelling, metrics label).
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::Card => "card",
            Kind::Iban => "iban",
            Kind::NationalId => "national_id",
            Kind::Ip => "ip",
            Kind::ApiKey => "api_key",
            Kind::AwsKey => "aws_key",
            Kind::GithubToken => "github_token",
            Kind::SlackToken => "slack_token",
            Kind::Jwt => "jwt",
            Kind::PrivateKey => "private_key",
        }
    }

    /// Parses a stable name back into a kind.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Index into per-kind arrays (declaration order).
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// Whether this kind is a credential (leaking part of one is worse than leaking PII, so
    /// secrets win every overlap).
    pub const fn is_secret(self) -> bool {
        matches!(
            self,
            Kind::ApiKey
                | Kind::AwsKey
                | Kind::GithubToken
                | Kind::SlackToken
                | Kind::Jwt
                | Kind::PrivateKey
        )
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_index_matches_order() {
        for (i, k) in Kind::ALL.into_iter().enumerate() {
            assert_eq!(k.index(), i);
            assert_eq!(Kind::from_name(k.name()), Some(k));
            assert_eq!(
                k.placeholder(),
                format!("[{}]", k.name().to_ascii_uppercase())
            );
        }
    }
}
