"""What the benchmark reads while it runs: object readiness from watches, published ConfigMaps,
process memory and CPU from /proc, Prometheus text, and the gateway's `config loaded` log lines."""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from e2e_harness import condition, is_ready

Obj = dict[str, Any]
VERSION_ANNOTATION = "switchboard.dev/config-version"
CONFIG_LABEL = "switchboard.dev/config"


def state_of(obj: Obj) -> str:
    """`ready`, `deleting`, `none` (no Ready condition) or `Status:Reason` of a Ready that is not
    True for the current generation."""
    if obj["metadata"].get("deletionTimestamp"):
        return "deleting"
    if is_ready(obj):
        return "ready"
    ready = condition(obj, "Ready")
    if not ready:
        return "none"
    stale = "" if ready.get("observedGeneration") == obj["metadata"].get("generation") else " (old generation)"
    return f"{ready['status']}:{ready.get('reason')}{stale}"


class Tracker:
    """The state of every object of one kind, kept by a watch."""

    def __init__(self, kind: str, activity: "Activity"):
        self.kind, self.activity = kind, activity
        self.lock = threading.Lock()
        self.states: dict[str, str] = {}

    def on_sync(self, items: list[Obj], now: float) -> None:
        with self.lock:
            self.states = {o["metadata"]["name"]: state_of(o) for o in items}
        self.activity.touch(now)

    def on_event(self, kind: str, obj: Obj, now: float) -> None:
        name = obj["metadata"]["name"]
        with self.lock:
            if kind == "DELETED":
                self.states.pop(name, None)
            else:
                self.states[name] = state_of(obj)
        self.activity.touch(now)

    def count(self, names: set[str] | None = None, state: str = "ready") -> int:
        with self.lock:
            if names is None:
                return sum(1 for s in self.states.values() if s == state)
            return sum(1 for n in names if self.states.get(n) == state)

    def present(self, names: set[str]) -> int:
        with self.lock:
            return sum(1 for n in names if n in self.states)

    def breakdown(self, names: set[str]) -> Counter:
        with self.lock:
            return Counter(self.states.get(n, "missing") for n in names)


class Activity:
    """When any watched object last changed (for stall detection)."""

    def __init__(self) -> None:
        self.last = time.time()

    def touch(self, now: float) -> None:
        self.last = max(self.last, now)


class ConfigVersions:
    """The published config's version over time, from a watch of the namespace's ConfigMaps."""

    def __init__(self, head: str, activity: Activity):
        self.head, self.activity = head, activity
        self.lock = threading.Lock()
        self.changes: list[tuple[float, str]] = []  # (time seen, version)

    @staticmethod
    def version(cm: Obj) -> str | None:
        annotations = cm["metadata"].get("annotations") or {}
        if annotations.get(VERSION_ANNOTATION):
            return annotations[VERSION_ANNOTATION]
        data = cm.get("data") or {}
        for key in ("head.json", "config.json"):
            if key in data:
                try:
                    return json.loads(data[key]).get("version")
                except ValueError:
                    return None
        return None

    def _seen(self, cm: Obj, now: float) -> None:
        if cm["metadata"]["name"] != self.head:
            return
        version = self.version(cm)
        with self.lock:
            if version and (not self.changes or self.changes[-1][1] != version):
                self.changes.append((now, version))

    def on_sync(self, items: list[Obj], now: float) -> None:
        for cm in items:
            self._seen(cm, now)
        self.activity.touch(now)

    def on_event(self, kind: str, obj: Obj, now: float) -> None:
        if kind != "DELETED":
            self._seen(obj, now)
        self.activity.touch(now)

    def between(self, start: float, end: float) -> list[tuple[float, str]]:
        with self.lock:
            return [c for c in self.changes if start <= c[0] <= end]


def published(kube, namespace: str, head: str) -> dict[str, Any]:  # noqa: ANN001
    """Count and bytes of the ConfigMaps carrying the config: the head (by name) and every one
    labelled switchboard.dev/config=<head>; bytes are the data values' (UTF-8) plus binaryData."""
    items, _ = kube.list_all(f"/api/v1/namespaces/{namespace}/configmaps")
    maps = [cm for cm in items
            if cm["metadata"]["name"] == head or (cm["metadata"].get("labels") or {}).get(CONFIG_LABEL) == head]
    sizes = {}
    for cm in maps:
        size = sum(len(v.encode()) for v in (cm.get("data") or {}).values())
        size += sum(len(base64.b64decode(v)) for v in (cm.get("binaryData") or {}).values())
        sizes[cm["metadata"]["name"]] = size
    result: dict[str, Any] = {
        "configmaps": len(maps), "bytes": sum(sizes.values()), "largest": max(sizes.values(), default=0)
    }
    head_map = next((cm for cm in maps if cm["metadata"]["name"] == head), None)
    if head_map and "head.json" in (head_map.get("data") or {}):
        try:
            shards = json.loads(head_map["data"]["head.json"]).get("shards") or []
            named = [n for n in sizes if any(str(s) in n for s in shards)]
            result["shards_in_head"] = len(shards)
            result["bytes_in_head_version"] = sizes[head] + sum(sizes[n] for n in named)
        except (ValueError, KeyError, TypeError):
            pass
    return result


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM and VmRSS in KiB (0 when the process is gone)."""
    out = {"VmHWM": 0, "VmRSS": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":", 1)[0]
            if key in out:
                out[key] = int(line.split()[1])
    except OSError:
        pass
    return out


def cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def prometheus(text: str) -> dict[str, float]:
    """`name{labels}` -> value, for the samples of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def config_loads(log_text: str) -> list[dict[str, Any]]:
    """The gateway's `config loaded` lines: time (epoch s), version, changed, build_ms if logged."""
    out = []
    for line in log_text.splitlines():
        if "config loaded" not in line:
            continue
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            fields = dict(record.get("fields") or {})
            stamp = record.get("timestamp", "")
        else:
            stamp = line.split(" ", 1)[0]
            fields = {k: v.strip('"') for k, v in FIELD.findall(line.split("config loaded", 1)[1])}
        try:
            when = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
        build_ms = fields.get("build_ms")
        out.append({
            "time": when,
            "version": str(fields.get("version", "")),
            "changed": str(fields.get("changed", "")).lower() == "true",
            "build_ms": float(build_ms) if build_ms not in (None, "") else None,
        })
    return out


WARN = re.compile(r"^\S+\s+(WARN|ERROR)\s+(\S+?):?\s(.*)$")


def log_problems(log_text: str) -> tuple[int, list[tuple[int, str, str]]]:
    """WARN/ERROR lines of a text log: their count and the distinct ones (digits folded), most
    frequent first, each with a full example."""
    groups: Counter = Counter()
    example: dict[str, str] = {}
    total = 0
    for line in log_text.splitlines():
        match = WARN.match(line)
        if not match:
            continue
        total += 1
        key = re.sub(r"\d+", "N", f"{match.group(1)} {match.group(3)}")[:160]
        groups[key] += 1
        example.setdefault(key, f"{match.group(1)} {match.group(2)} {match.group(3)}")
    return total, [(n, key, example[key]) for key, n in groups.most_common()]
