"""Helpers for the SDK tests: processes, free ports, HTTP, ledger databases, the gateway under test.

Nothing is built here: `make test` builds the binaries first and this file looks for them in
`$CARGO_TARGET_DIR/debug` (default `~/.cache/switchboard/target`). Every server binds a free loopback
port, is awaited with a bounded timeout and is stopped by its PID.

Each gateway gets a fresh ledger: a new SQLite file, or a new database in the PostgreSQL server named
by `SWITCHBOARD_TEST_POSTGRES_URL`, which `make test` starts with scripts/postgres.sh.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "config" / "samples"
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache" / "switchboard" / "target")
PROFILE = os.environ.get("SWITCHBOARD_TEST_PROFILE", "debug")

DEMO_KEY = "sk-switchboard-demo"
ADMIN_TOKEN = "sk-switchboard-admin-test"
SAMPLE_LOCAL_MODEL_URL = "http://127.0.0.1:18080/v1"
POSTGRES_ENV = "SWITCHBOARD_TEST_POSTGRES_URL"

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0

# The ledger's columns, in the contract's order (ARCHITECTURE.md / issue 2). Selecting them by name
# checks the schema as a side effect.
LEDGER_COLUMNS = (
    "id",
    "created_at_ms",
    "tenant",
    "api_key",
    "persona",
    "model",
    "route",
    "backend",
    "provider",
    "endpoint",
    "stream",
    "status",
    "error_code",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "cost_nanos",
    "latency_ms",
)




def binary(name: str) -> Path:
    path = TARGET_DIR / PROFILE / name
    if not path.is_file():
        pytest.fail(
            f"{path} does not exist: run the SDK tests via `make test` (it builds the binaries first), "
            f"or build them with `cargo build --workspace --bins`",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(
    method: str,
    url: str,
    body: bytes | str | dict | list | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request with the standard library; returns (status, headers, body) for any status."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


class Process:
    """A server process we started; stopped by PID, with its output kept in a log file."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str | None] | None = None):
        """`env` is added to this process's environment; a None value removes that variable."""
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "ab")
        full_env = dict(os.environ)
        full_env.setdefault("RUST_LOG", "info")
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        self.popen = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=full_env)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, url: str, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise ProcessExited(f"{self.name} exited with {self.popen.returncode} before {url} answered 200")
            try:
                status, _, body = http("GET", url, timeout=1.0)
                if status == 200:
                    return
                last = f"HTTP {status}: {body[:200]!r}"
            except OSError as error:
                last = str(error)
            time.sleep(0.05)
        self.kill()
        pytest.fail(
            f"{self.name} was not ready at {url} within {timeout:.0f}s (last: {last}); log:\n{self.log_tail()}",
            pytrace=False,
        )

    def terminate(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, then wait; returns the exit code, or None if it had to be killed."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        self._log.close()
        return self.popen.returncode

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)
        self._log.close()


class ProcessExited(Exception):
    pass


def start_server(
    name: str,
    make_argv: Callable[[int], list[str]],
    ready_path: str,
    log_path: Path,
    env: dict[str, str | None] | None = None,
) -> tuple[Process, int]:
    """Starts a server on a free port (retrying if another process took the port first)."""
    for attempt in range(3):
        port = free_port()
        process = Process(name, make_argv(port), log_path, env)
        try:
            process.wait_ready(f"http://127.0.0.1:{port}{ready_path}")
            return process, port
        except ProcessExited as exited:
            if "in use" not in process.log_tail().lower() or attempt == 2:
                pytest.fail(f"{exited}; log:\n{process.log_tail()}", pytrace=False)
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------------
# fake upstream


@dataclass
class FakeUpstream:
    process: Process
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def requests(self) -> list[dict[str, Any]]:
        status, _, body = http("GET", f"{self.url}/_fake/requests")
        assert status == 200, body
        return json.loads(body)

    def clear(self) -> None:
        status, _, body = http("DELETE", f"{self.url}/_fake/requests")
        assert status in (200, 204), body


# ---------------------------------------------------------------------------------------------------
# ledger databases


class Database:
    url: str
    kind: str

    def rows(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class SqliteDatabase(Database):
    kind = "sqlite"

    def __init__(self, path: Path):
        self.path = path
        self.url = f"sqlite://{path}?mode=rwc"

    def rows(self) -> list[dict[str, Any]]:
        assert self.path.exists(), f"the gateway created no SQLite file at {self.path}"
        with sqlite3.connect(self.path) as connection:
            cursor = connection.execute(f"SELECT {', '.join(LEDGER_COLUMNS)} FROM usage_ledger ORDER BY created_at_ms")
            return [dict(zip(LEDGER_COLUMNS, row)) for row in cursor.fetchall()]


class PostgresDatabase(Database):
    """A database of its own per test in the shared throwaway server, dropped afterwards."""

    kind = "postgres"

    def __init__(self, server_url: str):
        import psycopg

        self._psycopg = psycopg
        self.server_url = server_url
        self.name = f"sb_test_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as connection:
            connection.execute(f'CREATE DATABASE "{self.name}"')
        parts = urllib.parse.urlsplit(server_url)
        self.url = urllib.parse.urlunsplit(parts._replace(path=f"/{self.name}"))

    def rows(self) -> list[dict[str, Any]]:
        with self._psycopg.connect(self.url, connect_timeout=10) as connection:
            cursor = connection.execute(
                f"SELECT {', '.join(LEDGER_COLUMNS)} FROM usage_ledger ORDER BY created_at_ms"
            )
            return [dict(zip(LEDGER_COLUMNS, row)) for row in cursor.fetchall()]

    def close(self) -> None:
        with self._psycopg.connect(self.server_url, autocommit=True, connect_timeout=10) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# ---------------------------------------------------------------------------------------------------
# gateway


@dataclass
class Gateway:
    process: Process
    port: int
    config_dir: Path
    db: Database
    admin_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        """The admin listener (`--admin-listen`): `/admin/v1/*` is served there only."""
        return f"http://127.0.0.1:{self.admin_port}"

    def openai(self, key: str = DEMO_KEY, **kwargs: Any):
        import openai

        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("timeout", 30.0)
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, **kwargs)

    def anthropic(self, key: str = DEMO_KEY, **kwargs: Any):
        import anthropic

        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("timeout", 30.0)
        return anthropic.Anthropic(base_url=self.url, api_key=key, **kwargs)

    def post(self, path: str, body: Any, key: str | None = DEMO_KEY, headers: dict[str, str] | None = None):
        all_headers = {"content-type": "application/json"}
        if key is not None:
            all_headers["authorization"] = f"Bearer {key}"
        all_headers.update(headers or {})
        return http("POST", f"{self.url}{path}", body, all_headers)

    def stop(self) -> None:
        """Graceful stop (SIGTERM): the contract says it drains, flushes the ledger and exits 0."""
        code = self.process.terminate()
        assert code is not None, (
            f"the gateway did not exit within {STOP_TIMEOUT_S:.0f}s of SIGTERM; log:\n{self.process.log_tail()}"
        )
        assert code == 0, f"the gateway exited with {code} after SIGTERM; log:\n{self.process.log_tail()}"

    def ledger(self) -> list[dict[str, Any]]:
        return self.db.rows()


def write_config_dir(dest: Path, fake: FakeUpstream, extra: dict[str, str] | None = None) -> Path:
    """config/samples with local-model pointed at the fake upstream, plus `extra` files."""
    shutil.copytree(SAMPLES, dest)
    rewritten = 0
    for path in dest.glob("*.y*ml"):
        text = path.read_text()
        if SAMPLE_LOCAL_MODEL_URL in text:
            path.write_text(text.replace(SAMPLE_LOCAL_MODEL_URL, fake.base_url))
            rewritten += 1
    assert rewritten == 1, f"expected exactly one sample naming {SAMPLE_LOCAL_MODEL_URL}, found {rewritten}"
    for name, text in (extra or {}).items():
        (dest / name).write_text(text.replace("{FAKE_BASE_URL}", fake.base_url))
    return dest


def post_large(port: int, path: str, body: bytes, headers: dict[str, str], timeout: float = 30.0):
    """POSTs a body that the server may refuse before reading it all (413).

    Sends in chunks and stops as soon as the server answers, then reads the answer, so an early
    response is not lost to a reset connection the way it can be with a client that writes the
    whole body first. Returns (status, body).
    """
    import http.client
    import select

    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        sent = 0
        while sent < len(body):
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sent += sock.send(body[sent : sent + 65536])
            except (BrokenPipeError, ConnectionResetError):
                break
        response = http.client.HTTPResponse(sock)
        response.begin()
        try:
            data = response.read()
        except (ConnectionResetError, http.client.IncompleteRead) as error:
            data = getattr(error, "partial", b"")
        return response.status, data
    finally:
        sock.close()
