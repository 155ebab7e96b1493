"""The operator at scale (issue 12): `python3 bench/operator_scale [--scale S] [options]`.

On a fresh e2e control plane (etcd + kube-apiserver, `e2e/controlplane.sh start`), with the release
operator, the gateway in cluster mode and fake-upstream as the provider, it creates
10,000 x S Tenants with 3 API keys each (one Secret per key), 1,000 x S Personas, 500 x S
ProviderRoutes and 2,000 x S Budgets, and measures:

  1. the create time, and the time from the first create until every object is Ready;
  2. the operator's and the gateway's peak RSS (VmHWM);
  3. the published ConfigMaps: their count and the bytes of their data;
  4. how soon one more Tenant's key works at the gateway (several in a row, one at a time);
  5. how soon a tenth of the Tenants, deleted at once, are gone: every key answers 401 and
     every object is gone (finalizers released);
  6. the gateway's config build + swap time, its RSS, and the p99 latency of a steady light chat
     load during the swaps against without one.

It prints a markdown table with the scale, the machine and the commit. Every wait is bounded;
whatever it started is stopped by PID on any exit, and its work directory is removed unless
`--keep`. docs/benchmarks.md ("Operator at scale") explains the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "e2e" / "tests"))

import create  # noqa: E402
import measure  # noqa: E402
import objects  # noqa: E402
from e2e_harness import CONFIGMAP, CONTROLPLANE, CRDS, TARGET_DIR, Process, http_get, start_listening  # noqa: E402
from kube import Kube, Watch, collection  # noqa: E402
from load import Load, models_status, percentile  # noqa: E402
from report import Report  # noqa: E402

NAMESPACE = "switchboard-scale"
KINDS = ("tenants", "personas", "providerroutes", "budgets")
LOAD_TENANT, LOAD_ROUTE, LOAD_MODEL = "scale-load", "scale-load", "scale-load-model"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/operator_scale", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--scale", type=float, default=1.0, help="multiplies the counts below (0.05: a quick run)")
    p.add_argument("--tenants", type=int, default=10_000, help="at scale 1")
    p.add_argument("--keys", type=int, default=3, help="API keys per Tenant, one Secret each")
    p.add_argument("--personas", type=int, default=1_000, help="at scale 1")
    p.add_argument("--routes", type=int, default=500, help="at scale 1")
    p.add_argument("--budgets", type=int, default=2_000, help="at scale 1")
    p.add_argument("--deletes", type=int, default=None, help="Tenants deleted at the end (None: a tenth)")
    p.add_argument("--tenant-namespaces", type=int, default=1,
                   help="namespaces per Tenant (each Tenant with one gets an ingress NetworkPolicy)")
    p.add_argument("--create-method", choices=("http", "kubectl"), default="http",
                   help="concurrent POSTs to the apiserver, or parallel `kubectl apply --server-side`")
    p.add_argument("--create-concurrency", type=int, default=32, help="concurrent POSTs (http)")
    p.add_argument("--kubectl-parallel", type=int, default=8, help="kubectl processes at once (kubectl)")
    p.add_argument("--compare-create", type=int, default=0, metavar="N",
                   help="first create N objects (Secrets and Tenants, 3:1) both ways in unwatched namespaces "
                        "and report each method's rate")
    p.add_argument("--new-tenants", type=int, default=5, help="Tenants added one at a time at full size (step 4)")
    p.add_argument("--load-clients", type=int, default=4)
    p.add_argument("--load-interval-ms", type=float, default=20, help="each client sends one request per interval")
    p.add_argument("--quiet-seconds", type=float, default=15, help="load without config changes (the baseline p99)")
    p.add_argument("--status-interval-seconds", type=int, default=10, help="the gateway's status write interval")
    p.add_argument("--ready-timeout", type=float, default=900, help="bound of the wait for every object Ready")
    p.add_argument("--stall-timeout", type=float, default=300,
                   help="stop waiting for Ready when no watched object changed for this long")
    p.add_argument("--key-timeout", type=float, default=60, help="bound of each new key's wait")
    p.add_argument("--delete-timeout", type=float, default=600)
    p.add_argument("--no-build", action="store_true", help="use the release binaries already built")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, etcd, kubeconfig)")
    p.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = p.parse_args(argv)
    s = args.scale
    args.tenants, args.personas = max(1, round(args.tenants * s)), round(args.personas * s)
    args.routes, args.budgets = max(1, round(args.routes * s)), round(args.budgets * s)
    if args.deletes is None:
        args.deletes = args.tenants // 10
    return args


def sh(argv: list[str], timeout: float, **kw) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=True, **kw).stdout.strip()


def machine() -> dict[str, str]:
    mem = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), "0")
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    git = lambda *a: subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True).stdout.strip()  # noqa: E731
    dirty = [line for line in git("status", "--porcelain", "--untracked-files=no").splitlines() if line]
    return {
        "nproc": str(os.cpu_count()),
        "memory": f"{int(mem) / 1024 / 1024:.1f} GiB",
        "cpu": cpu,
        "kernel": platform.release(),
        "commit": git("rev-parse", "--short=12", "HEAD"),
        "subject": git("log", "-1", "--format=%s")[:100],
        "dirty": f"{len(dirty)} tracked files modified" if dirty else "clean",
        "loadavg_start": loadavg(),
    }


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path):
        self.args, self.work = args, work
        self.cp = work / "cp"
        self.logs = work / "logs"
        self.logs.mkdir(parents=True)
        self.processes: list[Process] = []
        self.watches: list[Watch] = []
        self.load: Load | None = None
        self.report = Report(args)
        self.bin = TARGET_DIR / "release"

    # -- processes ------------------------------------------------------------------------------

    def start(self, name: str, argv, ready: str, env: dict[str, str] | None = None) -> tuple[Process, int]:
        process, port = start_listening(name, argv, ready, self.logs / f"{name}.log", self.cp / "pids", env,
                                        timeout=120)
        self.processes.append(process)
        return process, port

    def stop_all(self) -> None:
        if self.load:
            self.load.stop(timeout=20)
        for w in self.watches:
            w.stop()
        for process in reversed(self.processes):
            try:
                process.terminate()
            except Exception as error:  # noqa: BLE001 - stop the others anyway
                print(f"stopping {process.name}: {error}", file=sys.stderr)
        subprocess.run([str(CONTROLPLANE), "stop", str(self.cp)], timeout=90, check=False)

    def cp_pid(self, name: str) -> int:
        try:
            return int((self.cp / f"{name}.pid").read_text())
        except (OSError, ValueError):
            return 0

    # -- the run --------------------------------------------------------------------------------

    def run(self) -> None:
        a, r = self.args, self.report
        sizes = objects.Sizes(a.tenants, a.keys, a.personas, a.routes, a.budgets, a.deletes, a.tenant_namespaces)
        r.sizes = sizes
        log(f"control plane in {self.cp}")
        sh([str(CONTROLPLANE), "start", str(self.cp)], timeout=300)
        (self.cp / "pids").mkdir(exist_ok=True)
        self.kubectl = Path(sh([str(CONTROLPLANE), "bin"], timeout=10)) / "kubectl"
        kubeconfig = self.cp / "kubeconfig"
        kube = self.kube = Kube(self.kubectl, kubeconfig, self.work)
        kc = lambda *x, timeout=120: sh([str(self.kubectl), "--kubeconfig", str(kubeconfig), *x], timeout=timeout)  # noqa: E731
        kc("apply", "-f", str(CRDS))
        kc("wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{k}.switchboard.dev" for k in KINDS])
        kube.json("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})

        if a.compare_create:
            log(f"comparing create methods with {a.compare_create} objects each")
            r.compare = create.compare(kube, self.kubectl, kubeconfig, a.compare_create, a.create_concurrency,
                                       a.kubectl_parallel, self.work)
            for method, res in r.compare.items():
                log(f"  {method}: {res.ok} objects in {res.seconds:.1f}s = {res.rate:.0f}/s, failures {dict(res.failures)}")

        fake, fake_port = self.start("fake-upstream", lambda port: [str(self.bin / "fake-upstream"), "--listen",
                                                                    f"127.0.0.1:{port}", "--no-record"], "/healthz")
        base_url = f"http://127.0.0.1:{fake_port}/v1"
        load_key = objects.new_key()
        for kind, obj in (("secrets", objects.secret(LOAD_TENANT, load_key)),
                          ("providerroutes", objects.route(LOAD_ROUTE, LOAD_MODEL, base_url)),
                          ("tenants", {"apiVersion": objects.API_VERSION, "kind": "Tenant", "metadata": {"name": LOAD_TENANT},
                                       "spec": {"apiKeys": [{"name": "load", "secretRef": {"name": LOAD_TENANT, "key": "key"}}]}})):
            kube.json("POST", collection(NAMESPACE, kind), obj)

        self.operator, op_port = self.start("operator", lambda port: [
            str(self.bin / "switchboard-operator"), "--namespace", NAMESPACE, "--configmap", CONFIGMAP,
            "--metrics-listen", f"127.0.0.1:{port}", "--identity", "scale-operator"], "/readyz",
            env={"KUBECONFIG": str(kubeconfig)})
        self.operator_metrics = f"http://127.0.0.1:{op_port}/metrics"

        activity = measure.Activity()
        self.trackers = {k: measure.Tracker(k, activity) for k in KINDS}
        self.versions = measure.ConfigVersions(CONFIGMAP, activity)
        for kind, t in self.trackers.items():
            self.watches.append(Watch(kube, collection(NAMESPACE, kind), t.on_sync, t.on_event))
        self.watches.append(Watch(kube, collection(NAMESPACE, "configmaps"), self.versions.on_sync, self.versions.on_event))
        for w in self.watches:
            w.start()
        for w in self.watches:
            if not w.synced.wait(60):
                raise RuntimeError(f"{w.name} did not sync: {w.errors}")
        wait(lambda: self.trackers["tenants"].count({LOAD_TENANT}) == 1, 120, "the load Tenant Ready")

        self.gateway, gw_port = self.start("gateway", lambda port: [
            str(self.bin / "switchboard-gateway"), "--namespace", NAMESPACE, "--configmap", CONFIGMAP,
            "--listen", f"127.0.0.1:{port}", "--admin-listen", "127.0.0.1:0",
            "--database-url", f"sqlite://{self.logs / 'ledger.db'}?mode=rwc",
            "--status-interval-seconds", str(a.status_interval_seconds), "--identity", "scale-gateway"], "/readyz",
            env={"KUBECONFIG": str(kubeconfig)})
        self.gw_port = gw_port
        wait(lambda: models_status(gw_port, load_key) == 200, 60, "the load key to work at the gateway")

        pids = {"operator": self.operator.pid, "gateway": self.gateway.pid,
                "kube-apiserver": self.cp_pid("kube-apiserver"), "etcd": self.cp_pid("etcd")}
        self.pids = pids
        cpu0 = {n: measure.cpu_seconds(p) for n, p in pids.items()}

        # 1. create, then wait for Ready
        log(f"generating {sizes.objects} objects")
        plan = objects.plan(sizes, base_url)
        expected = {k: {name for name, _ in plan.bodies[k]} for k in KINDS}
        progress = Progress(self, expected)
        progress.start()
        t0 = time.time()
        for kind in plan.ORDER:
            bodies = plan.bodies[kind]
            if not bodies:
                continue
            if a.create_method == "http":
                res = create.create_http(kube, NAMESPACE, kind, bodies, a.create_concurrency)
            else:
                res = create.create_kubectl(self.kubectl, kubeconfig, NAMESPACE, bodies, a.kubectl_parallel, self.work)
            r.creates[kind] = res
            log(f"created {res.ok}/{len(bodies)} {kind} in {res.seconds:.1f}s ({res.rate:.0f}/s)"
                + (f"; failures {dict(res.failures)}: {res.first_error}" if res.failures else ""))
        r.create_seconds = time.time() - t0
        log(f"all created in {r.create_seconds:.1f}s; waiting for Ready")
        deadline = t0 + a.ready_timeout
        while True:
            ready = {k: self.trackers[k].count(expected[k]) for k in KINDS}
            if all(ready[k] == len(expected[k]) for k in KINDS):
                r.all_ready_seconds = time.time() - t0
                break
            now = time.time()
            if now > deadline or now - activity.last > a.stall_timeout:
                r.ready_stalled = (f"stopped waiting {now - t0:.0f}s after the first create: "
                                   + ("timeout" if now > deadline else f"no watched object changed for {a.stall_timeout:.0f}s"))
                log(r.ready_stalled)
                break
            time.sleep(0.2)
        progress.stop()
        r.ready_timeline = progress.lines
        r.breakdown = {k: self.trackers[k].breakdown(expected[k]) for k in KINDS}
        r.cpu_to_ready = {n: measure.cpu_seconds(p) - cpu0[n] for n, p in pids.items()}
        r.rss_at_ready = {n: measure.proc_status(p) for n, p in pids.items()}
        r.published = measure.published(kube, NAMESPACE, CONFIGMAP)
        r.operator_metrics_ready = measure.prometheus(http_get(self.operator_metrics)[1])
        log(f"published: {r.published}")

        # A sample of keys answers 200 (or, past a failure, how many do).
        keys = [(t, k) for t, ks in plan.keys.items() for k in ks]
        sample = keys[:: max(1, len(keys) // 200)]
        r.sample_keys = (sum(1 for _, k in sample if models_status(gw_port, k) == 200), len(sample))

        # 4 and 6: new Tenants one at a time, under a steady light load, after a quiet baseline.
        self.load = Load(gw_port, load_key, LOAD_MODEL, a.load_clients, a.load_interval_ms / 1000).start()
        time.sleep(2)
        quiet = (time.time(), time.time() + a.quiet_seconds)
        time.sleep(a.quiet_seconds)
        gw_metrics_before = measure.prometheus(http_get(f"http://127.0.0.1:{gw_port}/metrics")[1])
        swap_start = time.time()
        triggers: list[float] = []
        tenant_posts: list[float] = []
        for n in range(a.new_tenants):
            name, key = f"scale-new-{n}", objects.new_key()
            started = time.time()
            triggers.append(started)
            kube.json("POST", collection(NAMESPACE, "secrets"), objects.secret(name, key))
            created = time.time()
            kube.json("POST", collection(NAMESPACE, "tenants"), objects.tenant(name, [name], a.tenant_namespaces, 90000 + n))
            tenant_posts.append(created)
            took = None
            while time.time() - started < a.key_timeout:
                if models_status(gw_port, key) == 200:
                    took = time.time() - started
                    break
                time.sleep(0.01)
            r.new_key_seconds.append(took)
            log(f"new Tenant {name}: key works after " + (f"{took:.3f}s" if took is not None else f"> {a.key_timeout:.0f}s (timeout)"))
            if took is None:
                break  # the next ones would time out too
            time.sleep(1.5)
        swap_end = time.time()
        gw_metrics_after = measure.prometheus(http_get(f"http://127.0.0.1:{gw_port}/metrics")[1])
        r.gateway_rss_after_swaps = measure.proc_status(self.gateway.pid)

        # 5. delete a tenth of the Tenants at once
        deleted = [objects.tenant_name(i) for i in range(a.tenants - a.deletes, a.tenants)]
        deleted_keys = [k for t in deleted for k in plan.keys[t]]
        r.deleted_keys_working_before = (self.count_status(deleted_keys, 200), len(deleted_keys))
        del_start = time.time()
        res = create.delete_http(kube, NAMESPACE, "tenants", deleted, a.create_concurrency)
        r.delete_request_seconds = res.seconds
        log(f"deleted {res.ok}/{len(deleted)} Tenants in {res.seconds:.1f}s; waiting for their keys to answer 401")
        r.delete_keys_401_seconds, r.delete_sweep_seconds = self.keys_refused(deleted_keys, del_start, a.delete_timeout)
        gone = wait(lambda: self.trackers["tenants"].present(set(deleted)) == 0,
                    max(1.0, del_start + a.delete_timeout - time.time()), "the deleted Tenants gone", fail=False)
        r.delete_gone_seconds = (time.time() - del_start) if gone else None
        r.delete_left = self.trackers["tenants"].present(set(deleted))
        del_end = time.time()
        time.sleep(1)

        samples = self.load.stop()
        self.load = None
        loads = measure.config_loads(self.gateway.log())
        r.new_key_parts = new_key_parts(tenant_posts, self.versions, loads)
        r.samples = samples
        r.swap_stats(samples, loads, self.versions, quiet, (swap_start, swap_end), (del_start, del_end), triggers,
                     gw_metrics_before, gw_metrics_after)
        r.cpu_total = {n: measure.cpu_seconds(p) - cpu0[n] for n, p in pids.items()}
        r.rss_end = {n: measure.proc_status(p) for n, p in pids.items()}
        r.operator_metrics_end = measure.prometheus(http_get(self.operator_metrics)[1])
        r.operator_log = measure.log_problems(self.operator.log())
        r.gateway_log = measure.log_problems(self.gateway.log())
        events, _ = kube.list_all(collection(NAMESPACE, "events"), fields="type=Warning")
        r.warning_events = sum_events(events)

    def count_status(self, keys: list[str], status: int) -> int:
        results = parallel_status(self.gw_port, keys)
        return sum(1 for s in results if s == status)

    def keys_refused(self, keys: list[str], since: float, timeout: float) -> tuple[float | None, float]:
        """Waits until every key answers 401: polls one pending key until it does, then sweeps all
        pending keys; repeats. Returns (seconds from `since` to the last 401 seen, last sweep's
        duration) or (None, ...) on timeout."""
        pending = list(keys)
        deadline = since + timeout
        sweep = 0.0
        while pending and time.time() < deadline:
            while time.time() < deadline and models_status(self.gw_port, pending[0]) != 401:
                time.sleep(0.05)
            t = time.time()
            statuses = parallel_status(self.gw_port, pending)
            sweep = time.time() - t
            pending = [k for k, s in zip(pending, statuses) if s != 401]
        return ((time.time() - since) if not pending else None), sweep


def new_key_parts(posts: list[float], versions: measure.ConfigVersions, loads: list[dict]) -> list[tuple]:
    """For each new Tenant: (Tenant POST -> our watch sees a new config version, that -> the gateway
    logs that version loaded), in seconds; None where not seen."""
    out = []
    for posted in posts:
        change = next(((t, v) for t, v in versions.between(posted, posted + 3600)), None)
        if change is None:
            out.append((None, None))
            continue
        loaded = next((l["time"] for l in loads if l["changed"] and change[1].startswith(l["version"])), None)
        out.append((change[0] - posted, None if loaded is None else loaded - change[0]))
    return out


def parallel_status(port: int, keys: list[str], threads: int = 8) -> list[int]:
    out = [0] * len(keys)
    lock, it = threading.Lock(), iter(range(len(keys)))

    def work() -> None:
        holder = threading.local()
        while True:
            with lock:
                i = next(it, None)
            if i is None:
                return
            out[i] = models_status(port, keys[i], holder)

    ts = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def sum_events(events: list[dict]) -> dict[str, int]:
    """Warning Events by involved kind and reason, each counted as often as it happened."""
    out: dict[str, int] = {}
    for e in events:
        key = f"{(e.get('involvedObject') or {}).get('kind')}/{e.get('reason')}"
        out[key] = out.get(key, 0) + int(e.get("count") or (e.get("series") or {}).get("count") or 1)
    return out


def wait(check, timeout: float, what: str, fail: bool = True) -> bool:  # noqa: ANN001
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return True
        except Exception:  # noqa: BLE001 - not yet
            pass
        time.sleep(0.1)
    if fail:
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
    return False


class Progress(threading.Thread):
    """Every 10 s: Ready counts by kind, and the operator's and gateway's RSS."""

    def __init__(self, bench: Bench, expected: dict[str, set[str]]):
        super().__init__(daemon=True)
        self.bench, self.expected = bench, expected
        self.done = threading.Event()
        self.lines: list[str] = []
        self.t0 = time.time()

    def run(self) -> None:
        while not self.done.wait(10):
            b = self.bench
            ready = " ".join(f"{k} {b.trackers[k].count(v)}/{len(v)}" for k, v in self.expected.items() if v)
            rss = " ".join(f"{n} {measure.proc_status(b.pids[n])['VmRSS'] / 1024:.0f}MiB" for n in ("operator", "gateway"))
            line = f"{time.time() - self.t0:6.0f}s ready: {ready}; RSS {rss}"
            self.lines.append(line)
            log(line)

    def stop(self) -> None:
        self.done.set()


def main() -> int:
    args = parse_args()
    info = machine()
    if not args.no_build:
        log("cargo build --release (operator, gateway, fake-upstream)")
        subprocess.run(["cargo", "build", "--release", "-p", "switchboard-operator", "-p", "switchboard-gateway",
                        "-p", "switchboard-fake-upstream"], cwd=ROOT, check=True,
                       env={**os.environ, "CARGO_TARGET_DIR": str(TARGET_DIR)})
        log("e2e/controlplane.sh build (etcd, kube-apiserver, kubectl; cached)")
        subprocess.run([str(CONTROLPLANE), "build"], check=True)
    work = Path(tempfile.mkdtemp(prefix="switchboard-opscale."))
    bench = Bench(args, work)
    bench.report.machine = info
    built = [TARGET_DIR / "release" / b for b in ("switchboard-operator", "switchboard-gateway")]
    info["binaries_built"] = ", ".join(
        f"{b.name} {time.strftime('%Y-%m-%d %H:%M', time.localtime(b.stat().st_mtime))}" for b in built if b.exists())
    # SIGTERM (e.g. from a timeout) unwinds through the finally below like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    failed = None
    try:
        bench.run()
    except BaseException as error:  # noqa: BLE001 - report what we have, then clean up
        failed = f"{type(error).__name__}: {error}"
        print(f"\nbenchmark failed: {failed}", file=sys.stderr)
        for process in bench.processes:
            print(f"--- last lines of {process.name}'s log:\n{process.log_tail(15)}", file=sys.stderr)
    finally:
        bench.stop_all()
        if args.keep:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    bench.report.failed = failed
    info["loadavg_end"] = loadavg()
    text = bench.report.markdown()
    print("\n" + text)
    if args.json:
        plain = lambda o: dataclasses.asdict(o) if dataclasses.is_dataclass(o) else str(o)  # noqa: E731
        args.json.write_text(json.dumps(bench.report.figures(), default=plain))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
