// An application on Node.js (its built-in fetch, OpenSSL linked statically into the node binary) calling
// an OpenAI-compatible endpoint, unary and streaming. It waits for a line on stdin before calling, so the
// test can start it, let the sensor find the new executable, then let it go. Prints what it saw as JSON.
import { once } from "node:events";

const base = process.argv[2];
await once(process.stdin, "data");

const nowNs = () => BigInt(Date.now()) * 1000000n;

async function chat(stream) {
  const t0 = nowNs();
  const response = await fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer sk-node-fake" },
    body: JSON.stringify({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: `node fetch ${stream ? "streaming" : "unary"} question` }],
      stream,
      ...(stream ? { stream_options: { include_usage: true } } : {}),
    }),
  });
  let model, usage;
  if (stream) {
    const text = await response.text();
    for (const line of text.split("\n")) {
      if (!line.startsWith("data:") || line.includes("[DONE]")) continue;
      const chunk = JSON.parse(line.slice(5));
      model = chunk.model ?? model;
      usage = chunk.usage ?? usage;
    }
  } else {
    const body = await response.json();
    model = body.model;
    usage = body.usage;
  }
  return {
    name: stream ? "node_fetch_stream" : "node_fetch_unary",
    t0: t0.toString(),
    t1: nowNs().toString(),
    expect: {
      request_model: "gpt-4o-mini",
      response_model: model,
      input_tokens: usage.prompt_tokens,
      output_tokens: usage.completion_tokens,
      streaming: stream,
      http_status: response.status,
    },
  };
}

const calls = [await chat(false), await chat(true)];
console.log(JSON.stringify({ pid: process.pid, calls }));
