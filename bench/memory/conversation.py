"""The long-conversation run of `make bench-memory` (bench/memory/run.py calls it): the ten
sessions of bench/memory/dialogue.json (320 user turns) are fed to a persona turn by turn, then
its 40 questions about the first four sessions are asked through MCP `recall` (top 5), scored by
whether a recalled memory holds the question's evidence turn.

Two ways of writing the memories, each into both personas (by meaning and words, by words alone):
- `rules`: each turn is a chat turn through `/v1/chat/completions`, and the persona's extraction
  rules decide what becomes a memory (the product's default path; a fact that changes supersedes
  the old one by its slot);
- `every turn`: each turn is stored whole with MCP `remember` (what a retrieval-over-turns memory
  does), so that recall is measured apart from what the rules extract.
"""

from __future__ import annotations

import json
import time
import urllib.request


def chat(gateway, persona: str, subject: str, text: str) -> None:
    body = {"model": f"persona/{persona}", "user": subject, "messages": [{"role": "user", "content": text}]}
    request = urllib.request.Request(
        f"http://127.0.0.1:{gateway.port}/v1/chat/completions", json.dumps(body).encode(),
        {"authorization": f"Bearer {gateway.key}", "content-type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=60) as answer:
        assert answer.status == 200


def count(gateway, subject: str) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{gateway.port}/v1/subjects/{subject}/memories",
                                     headers={"authorization": f"Bearer {gateway.key}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return len(json.load(answer)["memories"])


def settle(gateway, subject: str) -> int:
    """Waits until learning (after each reply) and embedding have caught up; the memory count."""
    last, steady = -1, 0
    while steady < 3:
        now = count(gateway, subject)
        steady = steady + 1 if now == last and not gateway.without_vector() else 0
        last = now
        time.sleep(0.5)
    return last


def run_conversation(gateway, talk: dict, personas: list[str]) -> dict:
    texts = {turn["id"]: turn["text"] for session in talk["sessions"] for turn in session}
    results = {}
    for write in ("rules", "every turn"):
        subject = "talker-rules" if write == "rules" else "talker-all"
        for session in talk["sessions"]:
            for turn in session:
                for persona in personas:
                    if write == "rules":
                        chat(gateway, persona, subject, turn["text"])
                    else:
                        gateway.tool("remember", {"persona": persona, "subject": subject, "content": turn["text"]})
        stored = settle(gateway, subject) // len(personas)
        extracted = sum(1 for q in talk["questions"] if write != "rules" or q["answer"] in found_texts(gateway, subject))
        for persona in personas:
            hits = outdated = 0
            for question in talk["questions"]:
                found, _ = gateway.recall(persona, subject, question["question"])
                hits += texts[question["evidence"]] in found
                outdated += "outdated" in question and texts[question["outdated"]] in found
            results[(write, persona)] = {
                "memories": stored, "evidence_stored": extracted, "evidence_at_5": hits / len(talk["questions"]),
                "outdated_recalled": outdated, "changed": sum("outdated" in q for q in talk["questions"]),
            }  # fmt: skip
    return results


def found_texts(gateway, subject: str) -> set[str]:
    request = urllib.request.Request(f"http://127.0.0.1:{gateway.port}/v1/subjects/{subject}/memories",
                                     headers={"authorization": f"Bearer {gateway.key}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return {m["content"] for m in json.load(answer)["memories"] if "supersededAtMs" not in m}
