#!/usr/bin/env python3
"""Prints the memory of process trees, read from /proc: `rss.py NAME=PID ...`, one TSV line each.

Columns: name, processes, peak RSS in KiB (VmHWM summed over the process and all its descendants),
current RSS in KiB (VmRSS summed likewise). Summing counts pages shared between processes (a forked
worker's copy-on-write pages, shared libraries) once per process: an upper bound for a process tree
such as LiteLLM's supervisor and its workers, exact for a single process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def parents() -> dict[int, int]:
    out: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may contain spaces and parentheses, so split after the last ')'.
        out[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    return out


def tree(root: int, ppid: dict[int, int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, parent in ppid.items():
        children.setdefault(parent, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    ppid = parents()
    for arg in sys.argv[1:]:
        name, _, pid = arg.partition("=")
        if not os.path.exists(f"/proc/{pid}"):
            print(f"rss.py: {name} (pid {pid}) is not running", file=sys.stderr)
            continue
        pids = tree(int(pid), ppid)
        hwm = sum(status_kb(p, "VmHWM") for p in pids)
        rss = sum(status_kb(p, "VmRSS") for p in pids)
        print(f"{name}\t{len(pids)}\t{hwm}\t{rss}")


if __name__ == "__main__":
    main()
