"""Fixtures for the SDK tests: real OpenAI and Anthropic Python SDKs against the real gateway binary.

Nothing is built here: `make test` builds the binaries first (see harness.py for where they are found).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

from harness import (
    ADMIN_TOKEN,
    POSTGRES_ENV,
    Database,
    FakeUpstream,
    Gateway,
    PostgresDatabase,
    SqliteDatabase,
    binary,
    free_port,
    start_server,
    write_config_dir,
)


@pytest.fixture(autouse=True, scope="session")
def _clean_sdk_environment() -> None:
    """Keeps the SDKs from picking up a developer's real endpoints or keys."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "ANTHROPIC_")):
            del os.environ[name]


@pytest.fixture(scope="session")
def fake_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeUpstream]:
    path = binary("fake-upstream")
    log = tmp_path_factory.mktemp("fake-upstream") / "fake-upstream.log"
    process, port = start_server(
        "fake-upstream", lambda port: [str(path), "--listen", f"127.0.0.1:{port}"], "/healthz", log
    )
    yield FakeUpstream(process, port)
    process.terminate(timeout=10)


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real sentence-embedding model (all-MiniLM-L6-v2, tests/embedder/server.py) behind OpenAI's
    /v1/embeddings; yields its base URL. scripts/minilm.sh fetches the model once."""
    root = Path(__file__).resolve().parents[2]
    fetched = subprocess.run([str(root / "scripts/minilm.sh")], capture_output=True, text=True, timeout=900)
    assert fetched.returncode == 0, fetched.stderr
    model_dir = fetched.stdout.strip().splitlines()[-1]
    server = root / "tests/embedder/server.py"
    log = tmp_path_factory.mktemp("embedder") / "embedder.log"
    process, port = start_server(
        "embedder",
        lambda port: [sys.executable, str(server), "--model-dir", model_dir, "--port", str(port)],
        "/health",
        log,
    )
    yield f"http://127.0.0.1:{port}/v1"
    process.terminate(timeout=10)


@pytest.fixture
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The ledger database: "sqlite" unless a test parametrizes it (indirect=True) with "postgres"."""
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        database: Database = SqliteDatabase(tmp_path / "ledger.db")
    elif kind == "postgres":
        server_url = os.environ.get(POSTGRES_ENV)
        if not server_url:
            pytest.fail(
                f"{POSTGRES_ENV} is not set, so the PostgreSQL ledger cannot be tested. Run the SDK tests via "
                f"`make test`, which starts a throwaway PostgreSQL (scripts/postgres.sh) and sets it.",
                pytrace=False,
            )
        database = PostgresDatabase(server_url)
    else:
        raise ValueError(f"unknown database kind {kind!r}")
    yield database
    database.close()


@pytest.fixture
def start_gateway(fake_upstream: FakeUpstream, db: Database, tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """Factory: start_gateway(extra_manifests={name: yaml}, args=[...], env={...}) -> a ready Gateway.

    In the YAML of `extra_manifests`, `{FAKE_BASE_URL}` becomes the fake upstream's base URL. `env` is
    added to the gateway's environment only (None removes a variable), never to the tests' own.
    """
    path = binary("switchboard-gateway")
    started: list[Gateway] = []

    def start(
        extra_manifests: dict[str, str] | None = None,
        args: list[str] | None = None,
        env: dict[str, str | None] | None = None,
    ) -> Gateway:
        index = len(started)
        config_dir = write_config_dir(tmp_path / f"config{index}", fake_upstream, extra_manifests)

        # A fresh admin port with every try of start_server, as for the tenant port.
        admin: dict[str, int] = {}

        def argv(port: int) -> list[str]:
            admin["port"] = free_port()
            return [
                str(path),
                "--config-dir", str(config_dir),
                "--listen", f"127.0.0.1:{port}",
                "--admin-listen", f"127.0.0.1:{admin['port']}",
                "--database-url", db.url,
                "--admin-token", ADMIN_TOKEN,
                *(args or []),
            ]  # fmt: skip

        process, port = start_server(
            "switchboard-gateway", argv, "/readyz", tmp_path / f"gateway{index}.log", env
        )
        gateway = Gateway(process, port, config_dir, db, admin["port"])
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        if gateway.process.popen.poll() is None:
            gateway.process.terminate(timeout=10)
