//! The live part of `lumen demo` on a machine that allows eBPF: a small OpenAI-compatible provider on
//! loopback (plain HTTP, JSON and SSE streams with usage, a few rate limits), and a load process
//! (`lumen demo-load`, its own process so the sensor can watch exactly it) that calls it. The sensor
//! captures those calls like any other and ships them to the demo server, so the live spans are real
//! captures, not generated rows.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clap::Args;
use rand::Rng;
use serde_json::{Value, json};

const WORDS: &[&str] = &[
    "latency", "budget", "tokens", "cache", "model", "deploy", "answer", "summary", "invoice",
    "customer", "ticket", "refund", "policy", "search", "result", "context", "agent", "tool",
];

fn words(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

fn prompt_tokens(body: &Value) -> u64 {
    let text: usize = body["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|msg| {
                    msg["content"]
                        .as_str()
                        .unwrap_or("")
                        .split_whitespace()
                        .count()
                })
                .sum()
        })
        .unwrap_or(0);
    text as u64 + 7
}

async fn chat(body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"error": {"message": "body is not JSON", "type": "invalid_request_error"}}),
            ),
        )
            .into_response();
    };
    let model = request["model"]
        .as_str()
        .unwrap_or("gpt-4o-mini")
        .to_string();
    let (rate_limited, reply_words) = {
        let mut rng = rand::rng();
        (rng.random_bool(0.03), rng.random_range(8..60))
    };
    if rate_limited {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({"error": {"message": format!("Rate limit reached for {model} on tokens per min (TPM)"),
                                        "type": "tokens", "code": "rate_limit_exceeded"}})),
        )
            .into_response();
    }
    let input = prompt_tokens(&request);
    let reply = words(reply_words);
    let id = format!("chatcmpl-demo{}", rand::rng().random::<u32>());
    let usage = json!({"prompt_tokens": input, "completion_tokens": reply_words, "total_tokens": input + reply_words as u64});
    if request["stream"].as_bool() != Some(true) {
        return axum::Json(json!({
            "id": id, "object": "chat.completion", "created": chrono::Utc::now().timestamp(), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": usage,
        }))
        .into_response();
    }
    let include_usage = request["stream_options"]["include_usage"].as_bool() == Some(true);
    let mut events: Vec<Value> = reply
        .split(' ')
        .map(|w| json!({"id": id, "object": "chat.completion.chunk", "model": model,
                        "choices": [{"index": 0, "delta": {"content": format!("{w} ")}, "finish_reason": null}]}))
        .collect();
    events.push(
        json!({"id": id, "object": "chat.completion.chunk", "model": model,
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
    );
    if include_usage {
        events.push(json!({"id": id, "object": "chat.completion.chunk", "model": model, "choices": [], "usage": usage}));
    }
    let mut chunks: Vec<String> = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    chunks.push("data: [DONE]\n\n".into());
    // A first-token delay, then a steady stream: what TTFT and duration are measured on.
    let stream =
        futures::stream::unfold((chunks.into_iter(), true), |(mut rest, first)| async move {
            let next = rest.next()?;
            tokio::time::sleep(Duration::from_millis(if first { 250 } else { 15 })).await;
            Some((Ok::<_, Infallible>(Bytes::from(next)), (rest, false)))
        });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Starts the fake provider on a free loopback port.
pub async fn start_provider() -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let address = listener.local_addr()?;
    let app = Router::new().route("/v1/chat/completions", post(chat));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "demo provider stopped");
        }
    });
    Ok(address)
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The fake provider's base URL.
    #[arg(long)]
    pub url: String,
    /// Calls per second.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
}

/// `lumen demo-load`: calls the provider like an application using the OpenAI API would.
pub async fn load(args: LoadArgs) -> anyhow::Result<()> {
    // A new connection per call: the sensor starts after this process and tracks plaintext sockets from
    // their connect(), so a pooled connection opened before it attached would never be seen.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()?;
    let models = ["gpt-4o-mini", "gpt-4.1-mini", "gpt-4o-2024-08-06"];
    let pause = Duration::from_secs_f64(1.0 / args.rate.clamp(0.01, 50.0));
    let url = format!("{}/v1/chat/completions", args.url.trim_end_matches('/'));
    // Ends with the demo even when the demo could not stop it (killed): its parent changes.
    let parent = std::os::unix::process::parent_id();
    loop {
        if std::os::unix::process::parent_id() != parent {
            return Ok(());
        }
        let (model, stream, n) = {
            let mut rng = rand::rng();
            (
                models[rng.random_range(0..models.len())],
                rng.random_bool(0.5),
                rng.random_range(5..40),
            )
        };
        let mut body = json!({
            "model": model,
            "messages": [
                {"role": "system", "content": "You are the demo assistant of the support team."},
                {"role": "user", "content": words(n)},
            ],
            "stream": stream,
        });
        if stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        match client.post(&url).json(&body).send().await {
            Ok(response) => {
                let _ = response.bytes().await;
            }
            Err(e) => eprintln!("demo-load: {e}"),
        }
        tokio::time::sleep(pause).await;
    }
}
