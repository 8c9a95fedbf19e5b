//! A stream is whole when its own end marker arrived, even if the client hung up before the HTTP
//! framing ended (SDKs stop reading at `[DONE]`); without the marker it is truncated.

mod common;

use lumen_decoder::capfile::Record;
use lumen_decoder::{ConnInfo, Direction};

fn chunk(data: &str) -> String {
    format!("{:x}\r\n{data}\r\n", data.len())
}

fn exchange(with_done: bool) -> Vec<Record> {
    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#;
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut response = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    response += &chunk(
        "data: {\"id\":\"c1\",\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}]}\n\n",
    );
    response += &chunk(
        "data: {\"id\":\"c1\",\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    );
    response += &chunk(
        "data: {\"id\":\"c1\",\"model\":\"gpt-4o-2024-08-06\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1}}\n\n",
    );
    if with_done {
        response += &chunk("data: [DONE]\n\n");
    }
    // No terminating `0\r\n\r\n`: the connection closes first.
    vec![
        Record::Data(Direction::ToServer, 1_000_000, request.into_bytes()),
        Record::Data(Direction::ToClient, 5_000_000, response.into_bytes()),
    ]
}

#[test]
fn done_marker_makes_a_stream_whole_even_when_the_connection_closes_early() {
    let info = ConnInfo {
        from_start: true,
        ..Default::default()
    };
    let spans = common::decode_records(&exchange(true), info.clone());
    assert_eq!(spans.len(), 1);
    assert!(
        !spans[0].has_flag("truncated"),
        "{:?}",
        spans[0].capture_flags
    );
    assert_eq!(
        (spans[0].input_tokens, spans[0].output_tokens),
        (Some(9), Some(1))
    );

    let spans = common::decode_records(&exchange(false), info);
    assert!(
        spans[0].has_flag("truncated"),
        "{:?}",
        spans[0].capture_flags
    );
    assert_eq!(
        spans[0].input_tokens,
        Some(9),
        "what was seen is still reported"
    );
}

/// Bytes lost in the middle of a large request body (a capture limit) leave the response decodable: the
/// span has the model and tokens the response gave, and says it is truncated — not undecodable.
#[test]
fn a_hole_in_the_request_body_does_not_lose_the_response() {
    let body = format!(
        r#"{{"model":"gpt-4o","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "word ".repeat(1000)
    );
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (seen, missing) = request.split_at(request.len() - 3000);
    let answer = r#"{"id":"c9","object":"chat.completion","model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1007,"completion_tokens":1,"total_tokens":1008}}"#;
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
        answer.len()
    );
    let records = vec![
        Record::Data(Direction::ToServer, 1_000_000, seen.as_bytes().to_vec()),
        Record::Gap(Direction::ToServer, 1_000_000, missing.len() as u64),
        Record::Data(Direction::ToClient, 5_000_000, response.into_bytes()),
    ];
    let info = ConnInfo {
        from_start: true,
        ..Default::default()
    };
    let spans = common::decode_records(&records, info);
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    assert!(span.has_flag("truncated"), "{:?}", span.capture_flags);
    assert!(!span.has_flag("undecodable"), "{:?}", span.capture_flags);
    assert_eq!(span.provider.as_deref(), Some("openai"));
    assert_eq!(span.response_model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(
        (span.input_tokens, span.output_tokens),
        (Some(1007), Some(1))
    );
    assert_eq!(span.http_status, Some(200));
}
