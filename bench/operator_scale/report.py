"""The figures of one run, and their markdown table."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from load import Sample, percentile

MIB = 1024


def fmt_s(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f} s"


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f} ms"


def kib_mib(kib: int) -> str:
    return f"{kib / MIB:.1f} MiB"


class Report:
    def __init__(self, args: Any):
        self.args = args
        self.machine: dict[str, str] = {}
        self.sizes = None
        self.failed: str | None = None
        self.compare: dict = {}
        self.creates: dict = {}
        self.create_seconds: float | None = None
        self.all_ready_seconds: float | None = None
        self.ready_stalled: str | None = None
        self.ready_timeline: list[str] = []
        self.breakdown: dict[str, Counter] = {}
        self.cpu_to_ready: dict[str, float] = {}
        self.cpu_total: dict[str, float] = {}
        self.rss_at_ready: dict[str, dict] = {}
        self.rss_end: dict[str, dict] = {}
        self.published: dict = {}
        self.sample_keys: tuple[int, int] | None = None
        self.new_key_seconds: list[float | None] = []
        self.new_key_parts: list[tuple] = []
        self.samples: list = []
        self.gateway_rss_after_swaps: dict = {}
        self.deleted_keys_working_before: tuple[int, int] | None = None
        self.delete_request_seconds: float | None = None
        self.delete_keys_401_seconds: float | None = None
        self.delete_sweep_seconds: float | None = None
        self.delete_gone_seconds: float | None = None
        self.delete_left: int | None = None
        self.swap: dict[str, Any] = {}
        self.operator_metrics_ready: dict[str, float] = {}
        self.operator_metrics_end: dict[str, float] = {}
        self.operator_log: tuple[int, list] = (0, [])
        self.gateway_log: tuple[int, list] = (0, [])
        self.warning_events: dict[str, int] = {}

    # -- the gateway's builds and the latency around them ----------------------------------------

    def swap_stats(self, samples: list[Sample], loads: list[dict], versions, quiet, swap, delete, triggers,  # noqa: ANN001
                   before: dict[str, float], after: dict[str, float]) -> None:
        s: dict[str, Any] = {}
        in_window = lambda w: [l for l in loads if w[0] <= l["time"] <= w[1]]  # noqa: E731
        measured = in_window((swap[0], delete[1]))
        builds = [l["build_ms"] for l in measured if l["build_ms"] is not None]
        hist = ("switchboard_config_build_seconds_sum", "switchboard_config_build_seconds_count")
        if builds:
            s["source"] = "`build_ms` of the gateway's `config loaded` log lines"
            s["build_ms"] = builds
            windows = [(l["time"] - l["build_ms"] / 1000, l["time"]) for l in in_window(swap) if l["build_ms"] is not None]
        else:
            windows = []
            # Without build_ms: from what triggered a build (a new Secret or Tenant created here, a new
            # config version seen by our ConfigMap watch) to the `config loaded` line after it.
            marks = sorted(triggers + [t for t, _ in versions.between(swap[0], swap[1])])
            previous = swap[0]
            for l in in_window(swap):
                cause = [m for m in marks if previous <= m <= l["time"]]
                if cause:
                    windows.append((max(cause), l["time"]))
                previous = l["time"]
            if hist[1] in after and after[hist[1]] > before.get(hist[1], 0):
                n = after[hist[1]] - before.get(hist[1], 0)
                s["source"] = "`switchboard_config_build_seconds` on the gateway's /metrics (mean of the phase)"
                s["build_ms"] = [(after[hist[0]] - before.get(hist[0], 0)) / n * 1000]
        # A new config version seen by our watch -> the gateway logged it loaded (upper bound of
        # build + swap: includes the watch delivery and the gateway's 100 ms coalescing).
        lags = []
        for seen, version in versions.between(swap[0], delete[1]):
            done = next((l["time"] for l in loads if l["changed"] and version.startswith(l["version"]) and l["time"] >= seen - 1), None)
            if done is not None:
                lags.append(max(0.0, done - seen))
        s["version_lag_s"] = lags
        s["loads"] = len(measured)
        s["loads_changed"] = sum(1 for l in measured if l["changed"])
        ok = lambda xs: [lat for _, lat, st in xs if st == 200]  # noqa: E731
        errors = lambda xs: sum(1 for *_, st in xs if st != 200)  # noqa: E731
        base = [x for x in samples if quiet[0] <= x[0] <= quiet[1]]
        during = [x for x in samples if any(x[0] < w1 and x[0] + x[1] > w0 for w0, w1 in windows)]
        phase = [x for x in samples if swap[0] <= x[0] <= swap[1]]
        dele = [x for x in samples if delete[0] <= x[0] <= delete[1]]
        for name, xs in (("quiet", base), ("during_swaps", during), ("swap_phase", phase), ("delete_phase", dele)):
            lat = ok(xs)
            s[name] = {"n": len(xs), "errors": errors(xs), "p50": percentile(lat, 50), "p99": percentile(lat, 99),
                       "max": max(lat) if lat else None}
        s["windows"] = len(windows)
        s["window_seconds"] = sum(w1 - w0 for w0, w1 in windows)
        self.swap = s

    # -- output ---------------------------------------------------------------------------------

    def figures(self) -> dict[str, Any]:
        """Everything measured, the load's samples included (start, latency, status)."""
        return {k: v for k, v in self.__dict__.items() if k != "args"}

    def markdown(self) -> str:
        a, z, m = self.args, self.sizes, self.machine
        rows: list[tuple[str, str, str]] = []
        add = lambda what, value, goal="": rows.append((what, value, goal))  # noqa: E731
        if z:
            add("scale", f"{a.scale:g}: {z.tenants:,} Tenants x {z.keys} keys ({z.tenants * z.keys:,} Secrets), "
                f"{z.personas:,} Personas, {z.routes:,} ProviderRoutes, {z.budgets:,} Budgets "
                f"= {z.objects:,} objects; {z.tenant_namespaces} namespace(s) per Tenant")
        for method, res in self.compare.items():
            how = (f"{a.create_concurrency} concurrent POSTs" if method == "http"
                   else f"{a.kubectl_parallel} parallel `kubectl apply --server-side`")
            add(f"create rate, {how} (comparison)", f"{res.ok:,} objects in {res.seconds:.1f} s = {res.rate:,.0f}/s"
                + (f", failures {dict(res.failures)}" if res.failures else ""))
        if self.creates:
            total = sum(r.ok for r in self.creates.values())
            how = (f"{a.create_concurrency} concurrent POSTs" if a.create_method == "http"
                   else f"{a.kubectl_parallel} parallel `kubectl apply --server-side`")
            add("1. create time", f"{fmt_s(self.create_seconds, 1)} for {total:,} objects "
                f"({total / self.create_seconds:,.0f}/s, {how})" if self.create_seconds else "-")
            add("   by kind", "; ".join(f"{k} {r.ok:,} at {r.rate:,.0f}/s" + (f" ({sum(r.failures.values())} failed)" if r.failures else "")
                                      for k, r in self.creates.items()))
        if self.all_ready_seconds or self.ready_stalled:
            add("1. first create -> every object Ready", fmt_s(self.all_ready_seconds, 1) if self.all_ready_seconds
                else f"**not reached**: {self.ready_stalled}")
        for kind, counts in self.breakdown.items():
            if counts and set(counts) != {"ready"}:
                add(f"   {kind} by Ready state", ", ".join(f"{state} {n:,}" for state, n in counts.most_common()))
        at_ready = "at all Ready" if self.all_ready_seconds else "when the wait for Ready stopped"
        for name in ("operator", "gateway"):
            ready, end = self.rss_at_ready.get(name, {}), self.rss_end.get(name, {})
            if ready:
                add(f"2. {name} peak RSS (VmHWM)", f"{kib_mib(ready['VmHWM'])} {at_ready}; {kib_mib(end.get('VmHWM', 0))} at the end "
                    f"(RSS now {kib_mib(end.get('VmRSS', 0))})", "gateway < 100 MiB" if name == "gateway" else "")
        p = self.published
        if p:
            extra = (f"; head names {p['shards_in_head']} shards, {p['bytes_in_head_version']:,} bytes in the current version"
                     if "shards_in_head" in p else "")
            add("3. published config", f"{p['configmaps']} ConfigMap(s), {p['bytes']:,} bytes of data "
                f"(largest {p['largest']:,}){extra}", "each < 1 MiB (1,048,576)")
            if z and z.tenants and self.all_ready_seconds:
                add("   bytes per Tenant (all data / Tenants)", f"{p['bytes'] / z.tenants:,.0f}")
        if self.sample_keys:
            add("   sample of the created keys answering 200", f"{self.sample_keys[0]} of {self.sample_keys[1]}")
        if self.new_key_seconds:
            done = [t for t in self.new_key_seconds if t is not None]
            value = (f"first {fmt_s(self.new_key_seconds[0], 3)}; " if self.new_key_seconds[0] is not None
                     else f"first: **no 200 within {a.key_timeout:.0f} s**; ")
            value += (f"{len(done)} of {len(self.new_key_seconds)} Tenants added one at a time: median "
                      f"{fmt_s(statistics.median(done), 3)}, max {fmt_s(max(done), 3)}" if done else "")
            add("4. one more Tenant (Secret + Tenant created) -> its key works", value, "< 1 s")
            ops = [o for o, _ in self.new_key_parts if o is not None]
            gws = [g for _, g in self.new_key_parts if g is not None]
            if ops:
                add("   of which: Tenant created -> operator publishes a new version (seen by a watch)",
                    f"median {statistics.median(ops):.3f} s, max {max(ops):.3f} s")
            if gws:
                add("   of which: new version seen -> gateway logs it loaded",
                    f"median {statistics.median(gws):.3f} s, max {max(gws):.3f} s")
        if self.deleted_keys_working_before:
            w, n = self.deleted_keys_working_before
            d = a.deletes
            add(f"5. {d:,} Tenants deleted at once: their {n:,} keys", f"{w:,} answered 200 before"
                + ("" if w else " (never published: the 401s below revoke nothing)"))
            add("   delete requests sent in", fmt_s(self.delete_request_seconds))
            add("   -> every deleted key answers 401", (fmt_s(self.delete_keys_401_seconds) + f" (the last sweep of the pending keys took {self.delete_sweep_seconds:.2f} s)")
                if self.delete_keys_401_seconds is not None else "**timeout**")
            add("   -> every deleted Tenant object gone (finalizers released)", fmt_s(self.delete_gone_seconds)
                if self.delete_gone_seconds is not None else f"**timeout**: {self.delete_left} left")
        s = self.swap
        if s:
            builds = s.get("build_ms") or []
            if builds:
                add("6. gateway config build + swap", f"median {statistics.median(builds):.1f} ms, max {max(builds):.1f} ms "
                    f"over {len(builds)} builds ({s['source']})", "< 0.5 s")
            else:
                add("6. gateway config build + swap", "not reported by this gateway (no `build_ms`, no "
                    "`switchboard_config_build_seconds`); see the next row", "< 0.5 s")
            lags = s.get("version_lag_s") or []
            if lags:
                add("   new config version seen -> gateway logs it loaded", f"median {statistics.median(lags) * 1000:.0f} ms, "
                    f"max {max(lags) * 1000:.0f} ms over {len(lags)} versions (from log timestamps; includes watch "
                    "delivery and the gateway's 100 ms coalescing)")
            add("   gateway builds in the measured phases", f"{s['loads']} (`config loaded` lines; {s['loads_changed']} with a new version)")
            if self.gateway_rss_after_swaps:
                add("6. gateway RSS after the swaps", f"{kib_mib(self.gateway_rss_after_swaps['VmRSS'])} "
                    f"(peak {kib_mib(self.gateway_rss_after_swaps['VmHWM'])})", "< 100 MiB")
            clients = f"{a.load_clients} clients, 1 request / {a.load_interval_ms:g} ms each"
            for key, label in (("quiet", "chat p99, no config change"), ("during_swaps", "chat p99, during a build + swap"),
                               ("swap_phase", "chat p99, whole new-Tenant phase"), ("delete_phase", "chat p99, while Tenants are deleted")):
                v = s.get(key) or {}
                if v.get("n"):
                    add(f"6. {label}", f"{fmt_ms(v['p99'])} (p50 {fmt_ms(v['p50'])}, max {fmt_ms(v['max'])}, "
                        f"n {v['n']:,}, non-200 {v['errors']})", clients if key == "quiet" else "")
            if s.get("windows"):
                add("   build windows", f"{s['windows']} ({s['window_seconds']:.2f} s in all)")
        if self.cpu_to_ready:
            add("CPU seconds, first create -> Ready", ", ".join(f"{n} {v:.0f}" for n, v in self.cpu_to_ready.items()))
        if self.cpu_total:
            add("CPU seconds, whole run", ", ".join(f"{n} {v:.0f}" for n, v in self.cpu_total.items()))
        for label, met in ((at_ready, self.operator_metrics_ready), ("at the end", self.operator_metrics_end)):
            if met:
                results = {k.split('"')[1]: int(v) for k, v in met.items() if k.startswith("switchboard_operator_reconciles_total{")}
                count = met.get("switchboard_operator_reconcile_duration_seconds_count", 0)
                mean = met.get("switchboard_operator_reconcile_duration_seconds_sum", 0) / count if count else 0
                add(f"operator reconciles {label}", f"{results}, mean {mean:.2f} s")
        total, groups = self.operator_log
        if total:
            add("operator WARN/ERROR log lines", f"{total}: " + "; ".join(f"{n} x `{ex[:600]}`" for n, _, ex in groups[:3]))
        total, groups = self.gateway_log
        if total:
            add("gateway WARN/ERROR log lines", f"{total}: " + "; ".join(f"{n} x `{ex[:300]}`" for n, _, ex in groups[:3]))
        if self.creates:
            add("Warning Events in the namespace", ", ".join(f"{k} {v}" for k, v in sorted(
                self.warning_events.items(), key=lambda kv: -kv[1])) or "none")
        if self.failed:
            add("**run failed**", self.failed)
        head = [
            f"Operator at scale: `python3 bench/operator_scale {' '.join(self._argv())}`",
            "",
            f"Machine: {m.get('nproc')} CPUs ({m.get('cpu')}), {m.get('memory')}, Linux {m.get('kernel')}; "
            f"commit {m.get('commit')} \"{m.get('subject')}\" ({m.get('dirty')}; binaries built {m.get('binaries_built')}); "
            f"load average (1, 5, 15 min) {m.get('loadavg_start')} at the start, {m.get('loadavg_end')} at the end",
            "",
            "| figure | measured | target |",
            "|---|---|---|",
        ]
        return "\n".join(head + [f"| {w} | {v.replace('|', '/')} | {g} |" for w, v, g in rows])

    def _argv(self) -> list[str]:
        import sys  # noqa: PLC0415

        return sys.argv[1:]
