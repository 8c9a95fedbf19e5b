//! A deterministic generator of realistic LLM spans: ~30 models across providers with realistic shares,
//! log-normal latencies with model-dependent medians, TTFT for streams, skewed token counts, 1–3 % errors of
//! realistic types, ~50 services, and prompts where long system prompts repeat across calls.

use std::io::Write;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// (provider, model, share weight, median latency ms, input $/Mtok, output $/Mtok)
const MODELS: &[(&str, &str, f64, f64, f64, f64)] = &[
    ("openai", "gpt-4o-mini", 18.0, 650.0, 0.15, 0.6),
    ("openai", "gpt-4o-2024-08-06", 10.0, 1400.0, 2.5, 10.0),
    ("openai", "gpt-4.1", 6.0, 1600.0, 2.0, 8.0),
    ("openai", "gpt-4.1-mini", 6.0, 800.0, 0.4, 1.6),
    ("openai", "gpt-4.1-nano", 3.0, 400.0, 0.1, 0.4),
    ("openai", "o3-mini", 3.0, 4200.0, 1.1, 4.4),
    ("openai", "o4-mini", 2.0, 3800.0, 1.1, 4.4),
    ("openai", "text-embedding-3-small", 6.0, 120.0, 0.02, 0.0),
    ("openai", "text-embedding-3-large", 2.0, 180.0, 0.13, 0.0),
    ("anthropic", "claude-sonnet-4-5", 8.0, 2100.0, 3.0, 15.0),
    ("anthropic", "claude-haiku-4-5", 5.0, 900.0, 1.0, 5.0),
    ("anthropic", "claude-opus-4-1", 1.0, 5200.0, 15.0, 75.0),
    (
        "anthropic",
        "claude-3-5-haiku-20241022",
        2.0,
        800.0,
        0.8,
        4.0,
    ),
    (
        "aws.bedrock",
        "anthropic.claude-3-haiku-20240307-v1:0",
        3.0,
        700.0,
        0.25,
        1.25,
    ),
    (
        "aws.bedrock",
        "us.anthropic.claude-sonnet-4-20250514-v1:0",
        3.0,
        2300.0,
        3.0,
        15.0,
    ),
    (
        "aws.bedrock",
        "amazon.nova-lite-v1:0",
        2.0,
        600.0,
        0.06,
        0.24,
    ),
    ("aws.bedrock", "amazon.nova-pro-v1:0", 1.0, 1300.0, 0.8, 3.2),
    (
        "aws.bedrock",
        "meta.llama3-1-70b-instruct-v1:0",
        1.0,
        1500.0,
        0.72,
        0.72,
    ),
    (
        "aws.bedrock",
        "mistral.mistral-large-2407-v1:0",
        0.5,
        1700.0,
        2.0,
        6.0,
    ),
    (
        "aws.bedrock",
        "cohere.command-r-plus-v1:0",
        0.5,
        1600.0,
        2.5,
        10.0,
    ),
    ("gcp.gemini", "gemini-2.5-flash", 5.0, 900.0, 0.3, 2.5),
    ("gcp.gemini", "gemini-2.5-pro", 2.0, 3500.0, 1.25, 10.0),
    (
        "gcp.gemini",
        "gemini-2.0-flash-lite",
        1.5,
        500.0,
        0.075,
        0.3,
    ),
    ("azure.ai.openai", "gpt-4o", 3.0, 1500.0, 2.5, 10.0),
    ("azure.ai.openai", "gpt-4o-mini", 2.0, 700.0, 0.15, 0.6),
    ("ollama", "llama3.1:8b", 2.0, 2500.0, 0.0, 0.0),
    ("ollama", "qwen2.5:14b", 1.0, 3900.0, 0.0, 0.0),
    (
        "openai",
        "meta-llama/Llama-3.1-8B-Instruct",
        2.0,
        450.0,
        0.0,
        0.0,
    ),
    ("deepseek", "deepseek-chat", 1.5, 2400.0, 0.27, 1.1),
    ("mistral_ai", "mistral-small-latest", 1.0, 700.0, 0.1, 0.3),
];

const ERRORS: &[(&str, u16, &str)] = &[
    ("rate_limit_error", 429, "Rate limit reached for requests"),
    ("overloaded_error", 529, "Overloaded"),
    (
        "server_error",
        500,
        "The server had an error while processing your request",
    ),
    (
        "invalid_request_error",
        400,
        "This model's maximum context length is exceeded",
    ),
    (
        "ThrottlingException",
        429,
        "Too many requests, please wait before trying again",
    ),
    ("timeout", 504, "Request timed out"),
];

const WORDS: &[&str] = &[
    "customer",
    "order",
    "refund",
    "invoice",
    "summarize",
    "explain",
    "policy",
    "shipping",
    "account",
    "error",
    "deploy",
    "kubernetes",
    "latency",
    "report",
    "translate",
    "email",
    "contract",
    "clause",
    "risk",
    "weekly",
    "status",
    "incident",
    "database",
    "query",
    "optimize",
    "user",
    "feedback",
    "product",
    "release",
    "notes",
];

/// Cumulative weights for weighted choice.
fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut acc = 0.0;
    weights
        .map(|w| {
            acc += w;
            acc
        })
        .collect()
}

fn pick(cum: &[f64], rng: &mut StdRng) -> usize {
    let total = cum.last().copied().unwrap_or(1.0);
    let x = rng.random::<f64>() * total;
    cum.partition_point(|c| *c <= x).min(cum.len() - 1)
}

fn normal(rng: &mut StdRng) -> f64 {
    // Box–Muller: enough for benchmark data, and keeps the dependency list short.
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn lognormal(rng: &mut StdRng, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}

#[derive(Clone, Debug)]
pub struct Options {
    pub spans: u64,
    pub seed: u64,
    pub content: bool,
    /// Unix seconds of the first span; spans spread evenly over `seconds`.
    pub start_unix: i64,
    pub seconds: i64,
}

fn system_prompts(rng: &mut StdRng) -> Vec<String> {
    (0..20)
        .map(|i| {
            let n = 300 + rng.random_range(0..600);
            let body: Vec<&str> = (0..n)
                .map(|_| WORDS[rng.random_range(0..WORDS.len())])
                .collect();
            format!(
                "You are assistant #{i} for the support team. Follow these rules: {}",
                body.join(" ")
            )
        })
        .collect()
}

/// A start time: Unix seconds, or `-<n>h` / `-<n>m` / `-<n>d` before `now_unix`.
pub fn parse_start(text: &str, now_unix: i64) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<i64>() {
        return Ok(secs);
    }
    let ago = t
        .strip_prefix('-')
        .ok_or_else(|| format!("{text:?} is neither Unix seconds nor a relative time like -24h"))?;
    let (n, unit) = ago.split_at(ago.len().saturating_sub(1));
    let n: i64 = n
        .parse()
        .map_err(|_| format!("{text:?} is not a relative time like -24h, -90m or -7d"))?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    Ok(now_unix - n * unit_secs)
}

/// Writes `opts.spans` NDJSON lines to `out`. Same options, same bytes.
pub fn generate(opts: &Options, out: &mut impl Write) -> std::io::Result<()> {
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let model_cum = cumulative(MODELS.iter().map(|m| m.2));
    let services: Vec<String> = (0..50)
        .map(|i| {
            format!("svc-{}", ["api", "chat", "search", "agent", "batch"][i % 5]) + &format!("-{i}")
        })
        .collect();
    let service_cum = cumulative((0..50).map(|i| 1.0 / (i as f64 + 1.0)));
    let prompts = system_prompts(&mut rng);
    let span_ns = (opts.seconds * 1_000_000_000) / (opts.spans.max(1) as i64);
    let start_ns = opts.start_unix * 1_000_000_000;
    for i in 0..opts.spans {
        let (provider, model, _, median, pin, pout) = MODELS[pick(&model_cum, &mut rng)];
        let embeddings = model.contains("embedding");
        let service = &services[pick(&service_cum, &mut rng)];
        let streaming = !embeddings && rng.random_bool(0.45);
        let start = start_ns + i as i64 * span_ns + rng.random_range(0..span_ns.max(1));
        let input_tokens = (lognormal(&mut rng, 900.0, 1.1) as i64).clamp(1, 200_000);
        let output_tokens = if embeddings {
            0
        } else {
            (lognormal(&mut rng, 180.0, 0.9) as i64).clamp(1, 16_000)
        };
        let duration = lognormal(&mut rng, median, 0.55) * (1.0 + output_tokens as f64 / 2000.0);
        let error = rng
            .random_bool(0.02)
            .then(|| ERRORS[rng.random_range(0..ERRORS.len())]);
        let trace = format!("{:016x}{:016x}", opts.seed, i / 3);
        let mut span = json!({
            "trace_id": trace,
            "span_id": format!("{:08x}{:08x}", opts.seed as u32, i),
            "start_time": start,
            "duration_ms": (duration * 1000.0).round() / 1000.0,
            "source": "ebpf",
            "span_kind": "client",
            "host": format!("node-{}", i % 12),
            "service_name": service,
            "k8s_namespace": "prod",
            "pid": 1000 + (i % 97) as u32,
            "process_name": if i % 4 == 0 { "node" } else { "python3" },
            "provider": provider,
            "operation": if embeddings { "embeddings" } else { "chat" },
            "request_model": model,
            "http_method": "POST",
            "http_version": if i % 5 == 0 { "2" } else { "1.1" },
            "streaming": streaming,
            "input_tokens": input_tokens,
        });
        let obj = span.as_object_mut().expect("object literal");
        match error {
            Some((kind, status, message)) => {
                obj.insert("http_status".into(), json!(status));
                obj.insert("error_type".into(), json!(kind));
                obj.insert("error_message".into(), json!(message));
            }
            None => {
                obj.insert("http_status".into(), json!(200));
                obj.insert("response_model".into(), json!(model));
                obj.insert("output_tokens".into(), json!(output_tokens));
                obj.insert("finish_reasons".into(), json!(["stop"]));
                let cost = (input_tokens as f64 * pin + output_tokens as f64 * pout) / 1e6;
                if pin > 0.0 {
                    obj.insert("cost_usd".into(), json!((cost * 1e9).round() / 1e9));
                }
                if streaming {
                    obj.insert(
                        "ttft_ms".into(),
                        json!(
                            ((duration * rng.random_range(0.08..0.35)) * 1000.0).round() / 1000.0
                        ),
                    );
                }
            }
        }
        if opts.content && !embeddings {
            let system = &prompts[rng.random_range(0..prompts.len())];
            let n = rng.random_range(5..60);
            let user: Vec<&str> = (0..n)
                .map(|_| WORDS[rng.random_range(0..WORDS.len())])
                .collect();
            obj.insert(
                "system_instructions".into(),
                json!([{"type": "text", "content": system}]),
            );
            obj.insert(
                "input_messages".into(),
                json!([{"role": "user", "parts": [{"type": "text", "content": user.join(" ")}]}]),
            );
            if error.is_none() {
                let m = (output_tokens as usize / 2).clamp(3, 400);
                let answer: Vec<&str> = (0..m)
                    .map(|_| WORDS[rng.random_range(0..WORDS.len())])
                    .collect();
                obj.insert(
                    "output_messages".into(),
                    json!([{"role": "assistant", "parts": [{"type": "text", "content": answer.join(" ")}], "finish_reason": "stop"}]),
                );
            }
        }
        serde_json::to_writer(&mut *out, &Value::Object(std::mem::take(obj)))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_valid_for_ingest() {
        let opts = Options {
            spans: 2000,
            seed: 7,
            content: true,
            start_unix: 1_795_852_800,
            seconds: 2 * 3600,
        };
        let mut a = Vec::new();
        let mut b = Vec::new();
        generate(&opts, &mut a).unwrap();
        generate(&opts, &mut b).unwrap();
        assert_eq!(a, b);
        let batch = lumen_ingest::parse_spans(&a, lumen_ingest::BodyFormat::Ndjson)
            .expect("ingest accepts it");
        assert_eq!(batch.num_rows(), 2000);
        let errors = a
            .split(|c| *c == b'\n')
            .filter(|l| l.windows(10).any(|w| w == b"error_type"))
            .count();
        assert!((20..=60).contains(&errors), "1-3% errors: {errors}");
    }
}
