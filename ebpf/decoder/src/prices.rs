//! Cost of a call in USD from its model and normalised tokens. The table is derived from LiteLLM's
//! `model_prices_and_context_window.json` (see `data/derive_prices.py` and THIRD_PARTY_NOTICES),
//! embedded at build time, and can be overlaid by a user file in the same format. An unknown model
//! costs NULL, never 0.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use serde::Deserialize;
use thiserror::Error;

use crate::span::Span;

const EMBEDDED: &str = include_str!("../data/model_prices.json");

#[derive(Debug, Error)]
pub enum PriceError {
    #[error("cannot read price file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("price file {path} is not a JSON object of model prices: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
}

/// Per-token prices of one model (USD per token).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct ModelPrice {
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
    pub cache_read_input_token_cost: Option<f64>,
    pub cache_creation_input_token_cost: Option<f64>,
    pub output_cost_per_reasoning_token: Option<f64>,
    pub input_cost_per_token_above_200k_tokens: Option<f64>,
    pub output_cost_per_token_above_200k_tokens: Option<f64>,
    pub cache_read_input_token_cost_above_200k_tokens: Option<f64>,
    pub cache_creation_input_token_cost_above_200k_tokens: Option<f64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PriceFile {
    /// Lumen's derived file: `{"_source": …, "models": {name: prices}}`.
    Wrapped {
        models: HashMap<String, serde_json::Value>,
    },
    /// LiteLLM's own file: `{name: prices, …}` (entries without prices, like `sample_spec`, skipped).
    Flat(HashMap<String, serde_json::Value>),
}

/// Model name → prices.
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    models: HashMap<String, ModelPrice>,
}

static EMBEDDED_TABLE: LazyLock<Arc<PriceTable>> = LazyLock::new(|| {
    // The embedded file is ours and checked by a unit test; an error here is a build defect.
    Arc::new(PriceTable::parse(EMBEDDED, "embedded").unwrap_or_default())
});

/// LiteLLM key prefixes by OTel provider name.
fn provider_prefixes(provider: &str) -> &'static [&'static str] {
    match provider {
        "aws.bedrock" => &["bedrock/", "bedrock_converse/"],
        "azure.ai.openai" => &["azure/"],
        "gcp.gemini" => &["gemini/"],
        "gcp.vertex_ai" => &["vertex_ai/"],
        "groq" => &["groq/"],
        "deepseek" => &["deepseek/"],
        "mistral_ai" => &["mistral/"],
        "openrouter" => &["openrouter/"],
        "ollama" => &["ollama/"],
        "x_ai" => &["xai/"],
        "together_ai" => &["together_ai/"],
        "fireworks_ai" => &["fireworks_ai/accounts/fireworks/models/"],
        "perplexity" => &["perplexity/"],
        "moonshot_ai" => &["moonshot/"],
        _ => &[],
    }
}

/// `gpt-4o-2024-08-06` → `gpt-4o`, `claude-x-20250929` → `claude-x`.
fn without_date_suffix(model: &str) -> Option<&str> {
    let (base, tail) = model.rsplit_once('-')?;
    if tail.len() == 8 && tail.bytes().all(|b| b.is_ascii_digit()) {
        return Some(base);
    }
    if tail.len() == 2 && tail.bytes().all(|b| b.is_ascii_digit()) {
        // -YYYY-MM-DD
        let (rest, month) = base.rsplit_once('-')?;
        let (root, year) = rest.rsplit_once('-')?;
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if digits(month, 2) && digits(year, 4) {
            return Some(root);
        }
    }
    None
}

impl PriceTable {
    /// The table built into the binary (parsed once, shared).
    pub fn embedded() -> Arc<PriceTable> {
        EMBEDDED_TABLE.clone()
    }

    fn parse(text: &str, path: &str) -> Result<PriceTable, PriceError> {
        let file: PriceFile = serde_json::from_str(text).map_err(|source| PriceError::Parse {
            path: path.to_string(),
            source,
        })?;
        let entries = match file {
            PriceFile::Wrapped { models } | PriceFile::Flat(models) => models,
        };
        let models = entries
            .into_iter()
            .filter_map(|(name, value)| {
                let price: ModelPrice = serde_json::from_value(value).ok()?;
                price.input_cost_per_token.map(|_| (name, price))
            })
            .collect();
        Ok(PriceTable { models })
    }

    /// The embedded table overlaid with a user file (LiteLLM's format or the derived one).
    pub fn with_overrides(path: &Path) -> Result<PriceTable, PriceError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PriceError::Read {
            path: display.clone(),
            source,
        })?;
        let overrides = PriceTable::parse(&text, &display)?;
        let mut table = PriceTable::clone(&PriceTable::embedded());
        table.models.extend(overrides.models);
        Ok(table)
    }

    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// Prices of a model as named by a provider, trying the provider's key prefixes, Bedrock's
    /// cross-region prefixes and dated snapshot names.
    pub fn lookup(&self, provider: Option<&str>, model: &str) -> Option<&ModelPrice> {
        let model = model.trim().trim_start_matches("models/");
        let mut candidates: Vec<String> = vec![model.to_string()];
        if let Some((group, rest)) = model.split_once('.')
            && ["us", "eu", "apac", "jp", "au", "ca", "global", "us-gov"].contains(&group)
        {
            candidates.push(rest.to_string());
        }
        if let Some(base) = without_date_suffix(model) {
            candidates.push(base.to_string());
        }
        let prefixes = provider.map(provider_prefixes).unwrap_or_default();
        for candidate in &candidates {
            if let Some(price) = self.models.get(candidate.as_str()) {
                return Some(price);
            }
            for prefix in prefixes {
                if let Some(price) = self.models.get(&format!("{prefix}{candidate}")) {
                    return Some(price);
                }
            }
        }
        None
    }

    /// Cost of a span's tokens; `None` when the model is unknown or no token count is known.
    pub fn cost(&self, span: &Span) -> Option<f64> {
        if span.input_tokens.is_none() && span.output_tokens.is_none() {
            return None;
        }
        let model = span
            .response_model
            .as_deref()
            .or(span.request_model.as_deref())?;
        let price = self.lookup(span.provider.as_deref(), model).or_else(|| {
            let requested = span.request_model.as_deref()?;
            self.lookup(span.provider.as_deref(), requested)
        })?;
        let input = span.input_tokens.unwrap_or(0).max(0) as f64;
        let output = span.output_tokens.unwrap_or(0).max(0) as f64;
        let cache_read = span.cache_read_tokens.unwrap_or(0).max(0) as f64;
        let cache_creation = span.cache_creation_tokens.unwrap_or(0).max(0) as f64;
        let reasoning = span.reasoning_tokens.unwrap_or(0).max(0) as f64;
        let long = input > 200_000.0;
        let pick = |tiered: Option<f64>, base: Option<f64>| {
            if long { tiered.or(base) } else { base }
        };
        let input_rate = pick(
            price.input_cost_per_token_above_200k_tokens,
            price.input_cost_per_token,
        )?;
        let output_rate = pick(
            price.output_cost_per_token_above_200k_tokens,
            price.output_cost_per_token,
        )
        .unwrap_or(0.0);
        let read_rate = pick(
            price.cache_read_input_token_cost_above_200k_tokens,
            price.cache_read_input_token_cost,
        )
        .unwrap_or(input_rate);
        let write_rate = pick(
            price.cache_creation_input_token_cost_above_200k_tokens,
            price.cache_creation_input_token_cost,
        )
        .unwrap_or(input_rate);
        let uncached = (input - cache_read - cache_creation).max(0.0);
        let (plain_output, reasoning_cost) = match price.output_cost_per_reasoning_token {
            Some(rate) => ((output - reasoning).max(0.0), reasoning.min(output) * rate),
            None => (output, 0.0),
        };
        Some(
            uncached * input_rate
                + cache_read * read_rate
                + cache_creation * write_rate
                + plain_output * output_rate
                + reasoning_cost,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_table_parses_and_finds_models_by_their_wire_names() {
        let table = PriceTable::embedded();
        assert!(table.len() > 1000, "{} models", table.len());
        for (provider, model) in [
            ("openai", "gpt-4o-2024-08-06"),
            ("anthropic", "claude-sonnet-4-5-20250929"),
            ("aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
            ("aws.bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0"),
            ("gcp.gemini", "gemini-2.5-flash"),
            ("deepseek", "deepseek-chat"),
            ("openai", "text-embedding-3-small"),
        ] {
            assert!(
                table.lookup(Some(provider), model).is_some(),
                "{provider} {model}"
            );
        }
        assert!(table.lookup(Some("openai"), "no-such-model").is_none());
    }

    #[test]
    fn cost_follows_the_cache_aware_formula() {
        let table = PriceTable::embedded();
        let mut span = Span {
            provider: Some("anthropic".into()),
            response_model: Some("claude-sonnet-4-5-20250929".into()),
            input_tokens: Some(2060),
            cache_read_tokens: Some(2048),
            cache_creation_tokens: Some(0),
            output_tokens: Some(85),
            ..Span::default()
        };
        let price = table
            .lookup(Some("anthropic"), "claude-sonnet-4-5-20250929")
            .unwrap()
            .clone();
        let expected = 12.0 * price.input_cost_per_token.unwrap()
            + 2048.0 * price.cache_read_input_token_cost.unwrap()
            + 85.0 * price.output_cost_per_token.unwrap();
        let cost = table.cost(&span).unwrap();
        assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");
        span.response_model = Some("mystery-model".into());
        span.request_model = None;
        assert_eq!(table.cost(&span), None);
    }

    #[test]
    fn user_file_overrides_and_bad_files_are_named() {
        let dir = std::env::temp_dir().join(format!("lumen-prices-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("prices.json");
        std::fs::write(
            &path,
            r#"{"sample_spec": {"mode": "chat"}, "my-finetune": {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}}"#,
        )
        .unwrap();
        let table = PriceTable::with_overrides(&path).unwrap();
        let span = Span {
            request_model: Some("my-finetune".into()),
            input_tokens: Some(10),
            output_tokens: Some(5),
            ..Span::default()
        };
        assert!((table.cost(&span).unwrap() - 0.02).abs() < 1e-12);
        std::fs::write(&path, "[1,2]").unwrap();
        let err = PriceTable::with_overrides(&path).unwrap_err().to_string();
        assert!(err.contains("prices.json"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
