"""Derives Lumen's embedded price table from LiteLLM's model_prices_and_context_window.json (MIT, see
THIRD_PARTY_NOTICES at the repository root). Keeps text models (chat, completion, responses, embedding)
and the per-token cost fields the decoder uses; prices stay USD per single token.

Usage: python derive_prices.py PATH/TO/model_prices_and_context_window.json LITELLM_VERSION > model_prices.json
The committed file was derived from the copy bundled in the `litellm` wheel named in its `_source`."""
import json
import sys

FIELDS = [
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "output_cost_per_reasoning_token",
    "input_cost_per_token_above_200k_tokens",
    "output_cost_per_token_above_200k_tokens",
    "cache_read_input_token_cost_above_200k_tokens",
    "cache_creation_input_token_cost_above_200k_tokens",
]
MODES = {"chat", "completion", "responses", "embedding"}

source, version = sys.argv[1], sys.argv[2]
data = json.load(open(source))
models = {}
for name, entry in sorted(data.items()):
    if name == "sample_spec" or not isinstance(entry, dict) or entry.get("mode") not in MODES:
        continue
    prices = {f: entry[f] for f in FIELDS if isinstance(entry.get(f), (int, float))}
    if "input_cost_per_token" not in prices:
        continue
    prices["provider"] = entry.get("litellm_provider")
    models[name] = prices
out = {"_source": f"litellm {version} (litellm/model_prices_and_context_window_backup.json), MIT", "models": models}
# One model per line keeps diffs of a refresh readable.
print("{")
print(f'  "_source": {json.dumps(out["_source"])},')
print('  "models": {')
items = list(models.items())
for i, (name, prices) in enumerate(items):
    comma = "," if i + 1 < len(items) else ""
    print(f"    {json.dumps(name)}: {json.dumps(prices, separators=(',', ':'))}{comma}")
print("  }")
print("}")
