"""Persona memory retrieval benchmark (issue 18): `make bench-memory`, or
`~/.cache/switchboard/venv/bin/python bench/memory/run.py [--db sqlite|postgres|both]
[--crowd 10000] [--no-build]`.

Runs the release gateway with the real sentence-embedding model (all-MiniLM-L6-v2 behind
/v1/embeddings, tests/embedder/server.py) on SQLite and on a throwaway PostgreSQL, and through
the MCP tools `remember` and `recall` (as any agent would):

1. stores the set of bench/memory/dataset.json (1,250 memories over 25 subjects, made by
   generate.py) in two personas that differ only in `embeddingModel`, and asks each of its 1,250
   questions (none shares a word or stem with its memory): Recall@5 is the share of questions
   whose memory is among the five recalled, by meaning and words, and by words alone;
2. feeds a ten-session conversation of 320 turns to the personas and asks about its first
   sessions (bench/memory/conversation.py);
3. stores `--crowd` (10,000) memories in one subject (generate.filler: the same topics with
   other values and days, so many of them answer the same questions) and asks that subject the
   set's 50 questions of one subject four times: the recall's latency (p50, p95) as a client
   sees it, the query's embedding call included.

Everything runs on loopback in a temporary folder, removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
from conversation import run_conversation  # noqa: E402
from generate import filler  # noqa: E402

KEY = "sk-switchboard-bench-memory"
ADMIN_TOKEN = "sk-switchboard-bench-admin"
PERSONAS = {"meaning": "minilm", "words": None}
WORKERS = 4


def config(embedder: str) -> str:
    docs = [f"""apiVersion: v1
kind: Secret
metadata: {{name: bench-key}}
stringData: {{key: {KEY}}}
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {{name: bench}}
spec:
  apiKeys: [{{name: main, secretRef: {{name: bench-key, key: key}}}}]
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {{name: bench}}
spec:
  models:
    - {{name: bench-chat, pricing: {{inputPerMillion: "0.15", outputPerMillion: "0.60"}}}}
  backends: [{{name: mock, provider: mock}}]
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {{name: minilm}}
spec:
  models: [{{name: minilm, upstreamModel: all-minilm-l6-v2, kind: Embedding, pricing: {{inputPerMillion: "0.02"}}}}]
  backends: [{{name: embedder, provider: openai, baseUrl: "{embedder}", requestTimeoutSeconds: 120}}]"""]
    for name, model in PERSONAS.items():
        embedding = f", embeddingModel: {model}" if model else ""
        docs.append(f"""apiVersion: switchboard.dev/v1alpha1
kind: Persona
metadata: {{name: {name}}}
spec:
  tenant: bench
  systemPrompt: You remember.
  model: bench-chat
  memory: {{extraction: Rules, maxMemoriesPerSubject: 100000{embedding}}}""")
    return "\n---\n".join(docs) + "\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, what: str, timeout: float = 300) -> None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            sys.exit(f"bench/memory: {what} exited ({process.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"bench/memory: {what} not ready after {timeout} s")


class Gateway:
    def __init__(self, port: int, admin: int):
        self.port, self.admin, self.key = port, admin, KEY

    def tool(self, name: str, arguments: dict) -> dict:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/mcp", json.dumps(body).encode(),
            {"authorization": f"Bearer {KEY}", "content-type": "application/json",
             "accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=120) as answer:
            reply = json.load(answer)
        result = reply.get("result") or sys.exit(f"bench/memory: {name} failed: {reply}")
        if result.get("isError"):
            sys.exit(f"bench/memory: {name} failed: {result}")
        return result["structuredContent"]

    def without_vector(self) -> int:
        request = urllib.request.Request(f"http://127.0.0.1:{self.admin}/admin/v1/personas",
                                         headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return sum(p["memories_without_vector"] or 0 for p in json.load(answer)["data"])

    def remember_all(self, memories: list[tuple[str, str]], personas: list[str]) -> float:
        started = time.monotonic()
        calls = [(p, s, c) for s, c in memories for p in personas]
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(lambda call: self.tool("remember", {"persona": call[0], "subject": call[1],
                                                              "content": call[2], "importance": 5}), calls))
        while self.without_vector():
            time.sleep(0.5)
        return time.monotonic() - started

    def recall(self, persona: str, subject: str, question: str) -> tuple[list[str], float]:
        started = time.perf_counter()
        found = self.tool("recall", {"persona": persona, "subject": subject, "query": question, "limit": 5})
        return [m["content"] for m in found["memories"]], time.perf_counter() - started


def run(db: str, work: Path, gateway_bin: Path, embedder: str, data: dict, talk: dict, crowd: int) -> dict:
    (work / "config").mkdir(parents=True)
    (work / "config" / "bench.yaml").write_text(config(embedder))
    postgres = None
    if db == "postgres":
        # Its own mkdtemp folder: the server runs as the postgres OS user, which cannot enter ours.
        postgres = Path(tempfile.mkdtemp(prefix="switchboard-bench-memory-pg."))
        out = subprocess.run([str(ROOT / "scripts/postgres.sh"), "start", str(postgres)],
                             check=True, capture_output=True, text=True).stdout
        url = next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("DATABASE_URL="))
    else:
        url = f"sqlite://{work}/ledger.db?mode=rwc"
    port, admin = free_port(), free_port()
    process = subprocess.Popen(
        [str(gateway_bin), "--config-dir", str(work / "config"), "--listen", f"127.0.0.1:{port}",
         "--admin-listen", f"127.0.0.1:{admin}", "--database-url", url, "--admin-token", ADMIN_TOKEN],
        stdout=open(work / "gateway.log", "w"), stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": "warn"},
    )  # fmt: skip
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", process, "the gateway")
        gateway = Gateway(port, admin)
        stored = [(m["subject"], m["content"]) for m in data["memories"]]
        fill = gateway.remember_all(stored, list(PERSONAS))
        hits = {persona: 0 for persona in PERSONAS}
        for query in data["queries"]:
            for persona in PERSONAS:
                found, _ = gateway.recall(persona, query["subject"], query["question"])
                hits[persona] += query["target"] in found
        result = {"db": db, "memories": len(stored), "questions": len(data["queries"]), "fill_s": fill,
                  "recall_at_5": {p: hits[p] / len(data["queries"]) for p in PERSONAS}}  # fmt: skip
        result["conversation"] = run_conversation(gateway, talk, list(PERSONAS))
        if crowd:
            crowded = [("crowded", text) for text in filler(crowd, seed=11)]
            crowd_fill = gateway.remember_all(crowded, ["meaning"])
            questions = [q for q in data["queries"] if q["subject"] == data["subjects"][0]]
            latencies = [gateway.recall("meaning", "crowded", q["question"])[1] for q in questions * 4]
            latencies.sort()
            result["crowd"] = {
                "memories": len(crowded), "fill_s": crowd_fill,
                "p50_ms": statistics.median(latencies) * 1000,
                "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
            }  # fmt: skip
        return result
    finally:
        process.terminate()
        process.wait(timeout=60)
        if postgres:
            subprocess.run([str(ROOT / "scripts/postgres.sh"), "stop", str(postgres)], capture_output=True)
            shutil.rmtree(postgres, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--crowd", type=int, default=10_000, help="memories of the crowded subject (0: skip)")
    parser.add_argument("--no-build", action="store_true", help="use the release binary already built")
    args = parser.parse_args()
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/switchboard/target"))
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "switchboard-gateway"], cwd=ROOT, check=True)
    gateway_bin = target / "release" / "switchboard-gateway"
    model_dir = subprocess.run([str(ROOT / "scripts/minilm.sh")], check=True, capture_output=True,
                               text=True).stdout.strip().splitlines()[-1]  # fmt: skip
    data = json.loads((Path(__file__).with_name("dataset.json")).read_text())
    talk = json.loads((Path(__file__).with_name("dialogue.json")).read_text())
    work = Path(tempfile.mkdtemp(prefix="switchboard-bench-memory."))
    embed_port = free_port()
    embedder = subprocess.Popen(
        [sys.executable, str(ROOT / "tests/embedder/server.py"), "--model-dir", model_dir, "--port", str(embed_port)],
        stdout=open(work / "embedder.log", "w"), stderr=subprocess.STDOUT)  # fmt: skip
    results = []
    try:
        wait_ready(f"http://127.0.0.1:{embed_port}/health", embedder, "the embedder")
        for db in (["sqlite", "postgres"] if args.db == "both" else [args.db]):
            results.append(run(db, work / db, gateway_bin, f"http://127.0.0.1:{embed_port}/v1", data, talk, args.crowd))
            print(f"bench/memory: {db}: {results[-1]}", flush=True)
    finally:
        embedder.terminate()
        embedder.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    share = data["questions_sharing_no_stem"]
    print(f"\n{results[0]['memories']} memories over {len(data['subjects'])} subjects, {results[0]['questions']} "
          f"questions ({share:.0%} share no word or stem with their memory); all-MiniLM-L6-v2:\n")  # fmt: skip
    print("| database | Recall@5, meaning and words | Recall@5, words alone | stored and embedded in |")
    print("|---|---:|---:|---:|")
    for r in results:
        print(f"| {r['db']} | {r['recall_at_5']['meaning']:.1%} | {r['recall_at_5']['words']:.1%} | {r['fill_s']:.0f} s |")
    turns = sum(len(session) for session in talk["sessions"])
    print(f"\nA conversation of {turns} turns in {len(talk['sessions'])} sessions, {len(talk['questions'])} questions "
          "about its first four; evidence recalled in the top 5:\n")
    print("| database | memories written by | memories | evidence turns stored | by meaning and words | by words alone | replaced facts recalled (of 5) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        for write in ("rules", "every turn"):
            m, w = r["conversation"][(write, "meaning")], r["conversation"][(write, "words")]
            print(f"| {r['db']} | {write} | {m['memories']} | {m['evidence_stored']} of {len(talk['questions'])} | "
                  f"{m['evidence_at_5']:.0%} | {w['evidence_at_5']:.0%} | {m['outdated_recalled']} / {w['outdated_recalled']} |")
    if args.crowd:
        print(f"\nRecall in one subject of {results[0]['crowd']['memories']:,} memories (50 questions, four times each; "
              "the MCP recall's round trip, the query's embedding included):\n")
        print("| database | p50 | p95 | stored and embedded in |")
        print("|---|---:|---:|---:|")
        for r in results:
            c = r["crowd"]
            print(f"| {r['db']} | {c['p50_ms']:.1f} ms | {c['p95_ms']:.1f} ms | {c['fill_s']:.0f} s |")


if __name__ == "__main__":
    main()
