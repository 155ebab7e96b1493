"""Upstream calls through the environment's proxy, and TLS with the CA named by SSL_CERT_FILE.

Operators behind a company proxy set HTTP_PROXY / HTTPS_PROXY / NO_PROXY (curl's rules, read once at
start) and, for a company CA, SSL_CERT_FILE. Nothing here is mocked: tinyproxy is the proxy (its log
shows what went through it), nginx ends TLS in front of the fake upstream with a certificate from a
CA made for the test with openssl. Everything listens on loopback and is stopped by its PID.

The proxy variables go to the gateway's environment only: this process and its SDK clients keep
theirs, so they reach the gateway directly.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import pytest

from harness import ADMIN_TOKEN, DEMO_KEY, READY_TIMEOUT_S, FakeUpstream, Gateway, Process, free_port
from ledger import FAKE_REPLY_PREFIX

UPSTREAM_KEY = "sk-upstream-proxy-test-4f1c9a"
PROXY_USER = "switchboard"
PROXY_PASSWORD = "proxy-pw-Qm7rX2"
WRONG_PASSWORD = "wrong-pw-Lk3vB8"

HTTP_MODEL = "proxied-http"
HTTPS_MODEL = "proxied-https"

# Every variable the gateway's proxy rules read; REQUEST_METHOD because in a CGI environment they
# are ignored. Removed from the gateway's environment unless a test sets them.
PROXY_VARIABLES = (
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy",
    "REQUEST_METHOD",
)  # fmt: skip

ROUTES = """
apiVersion: v1
kind: Secret
metadata:
  name: proxy-test-upstream-key
type: Opaque
stringData:
  key: {upstream_key}
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata:
  name: {http_model}
spec:
  models:
    - name: {http_model}
      upstreamModel: proxy-test-model
      pricing: {{inputPerMillion: "1", outputPerMillion: "2"}}
  backends:
    - name: plain
      provider: openai
      baseUrl: "{{FAKE_BASE_URL}}"
      apiKeySecretRef: {{name: proxy-test-upstream-key, key: key}}
      requestTimeoutSeconds: 20
  retries: {{attempts: 0}}
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata:
  name: {https_model}
spec:
  models:
    - name: {https_model}
      upstreamModel: proxy-test-model
      pricing: {{inputPerMillion: "1", outputPerMillion: "2"}}
  backends:
    - name: tls
      provider: openai
      baseUrl: "{https_base_url}"
      apiKeySecretRef: {{name: proxy-test-upstream-key, key: key}}
      requestTimeoutSeconds: 20
  retries: {{attempts: 0}}
"""


def gateway_env(**values: str | None) -> dict[str, str | None]:
    """The gateway's environment changes: no proxy variable but those given (None removes one)."""
    env: dict[str, str | None] = dict.fromkeys(PROXY_VARIABLES)
    env.update(values)
    return env


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def wait_for(what: str, check: Callable[[], bool], timeout: float, details: Callable[[], str] = lambda: "") -> None:
    """Polls `check` until it holds; fails with `what` and `details()` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f}s; {details()}", pytrace=False)
        time.sleep(0.05)


def tool(name: str, *candidates: str) -> str:
    found = shutil.which(name) or next((c for c in candidates if Path(c).is_file()), None)
    if not found:
        pytest.fail(f"{name} not found: run scripts/system-packages.sh (or `make test`, which does)", pytrace=False)
    return found


def start_listener(
    name: str, make_argv: Callable[[int], list[str]], is_ready: Callable[[int], bool], out: Path, log: Path
) -> tuple[Process, int]:
    """Starts a server on a free port and waits (bounded) until `is_ready(port)`.

    A server that exits first, as when another process took the port meanwhile, is tried again on
    another port, twice at most.
    """
    for attempt in range(3):
        port = free_port()
        process = Process(name, make_argv(port), out)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while process.popen.poll() is None and time.monotonic() < deadline:
            if is_ready(port):
                return process, port
            time.sleep(0.05)
        exited = process.popen.poll() is not None
        process.kill()
        text = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
        if not exited or attempt == 2:
            state = f"exited with {process.popen.returncode}" if exited else "was not ready"
            pytest.fail(
                f"{name} {state} (within {READY_TIMEOUT_S:.0f}s); output:\n{process.log_tail()}\nlog:\n{text}",
                pytrace=False,
            )
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------------
# TLS upstream: a test CA, and nginx with the CA's certificate for localhost in front of the fake


def openssl(*args: str | Path) -> None:
    result = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"openssl {' '.join(map(str, args))}: {result.stderr}"


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate it signs for DNS:localhost and IP:127.0.0.1: (ca, cert, key)."""
    tool("openssl")
    ca_key, ca = directory / "ca.key", directory / "ca.pem"
    key, csr, cert, extensions = (directory / name for name in ("server.key", "server.csr", "server.pem", "ext.cnf"))
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl(
        "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=Switchboard proxy test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    openssl("req", "-new", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    extensions.write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
    )
    openssl(
        "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-set_serial", str(int(time.time() * 1000)),
        "-days", "2", "-extfile", extensions, "-out", cert,
    )  # fmt: skip
    return ca, cert, key


@dataclass
class TlsUpstream:
    process: Process
    port: int
    ca: Path
    access_log: Path

    @property
    def base_url(self) -> str:
        return f"https://localhost:{self.port}/v1"

    def requests(self) -> list[str]:
        """The request lines nginx answered, oldest first."""
        return self.access_log.read_text().splitlines() if self.access_log.exists() else []


def https_ok(url: str, ca: Path) -> bool:
    """GET `url` trusting `ca` only, with no proxy: True on 200."""
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=ca))
    )
    try:
        with opener.open(url, timeout=1.0) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def tls_upstream(fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsUpstream]:
    """nginx ending TLS with the test CA's certificate for localhost, passing requests to the fake."""
    nginx = tool("nginx", "/usr/sbin/nginx")
    work = tmp_path_factory.mktemp("tls-upstream")
    ca, cert, key = make_certificates(work)
    error_log, access_log = work / "error.log", work / "access.log"

    def argv(port: int) -> list[str]:
        conf = work / "nginx.conf"
        conf.write_text(f"""
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {error_log} info;
events {{ worker_connections 64; }}
http {{
    access_log {access_log};
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{
            proxy_pass http://127.0.0.1:{fake_upstream.port};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
""")
        return [nginx, "-e", str(error_log), "-p", str(work), "-c", str(conf)]

    process, port = start_listener(
        "nginx", argv, lambda port: https_ok(f"https://localhost:{port}/healthz", ca), work / "nginx.out", error_log
    )
    yield TlsUpstream(process, port, ca, access_log)
    process.terminate(timeout=10)


# ---------------------------------------------------------------------------------------------------
# tinyproxy


@dataclass
class Tinyproxy:
    process: Process
    port: int
    log: Path

    def url(self, password: str | None = None) -> str:
        userinfo = f"{PROXY_USER}:{password}@" if password is not None else ""
        return f"http://{userinfo}127.0.0.1:{self.port}"

    def requests(self) -> list[str]:
        """The request lines tinyproxy received (`POST http://… HTTP/1.1`, `CONNECT host:port HTTP/1.1`)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return re.findall(r"Request \(file descriptor \d+\): (.*)", text)

    def wait_for_request(self, pattern: str, count: int = 1) -> list[str]:
        """The request lines matching `pattern`, once there are `count` (tinyproxy logs as it goes)."""
        wait_for(
            f"tinyproxy did not log {count} request(s) matching {pattern!r}",
            lambda: len([r for r in self.requests() if re.fullmatch(pattern, r)]) >= count,
            5.0,
            lambda: f"its requests: {self.requests()}",
        )
        return [r for r in self.requests() if re.fullmatch(pattern, r)]


@pytest.fixture
def start_tinyproxy(tmp_path: Path) -> Iterator[Callable[..., Tinyproxy]]:
    """Factory: start_tinyproxy(connect_ports=[...], basic_auth=True) -> a listening tinyproxy.

    In the foreground (-d), logging every request line to a file (LogLevel Info). Without
    `ConnectPort` lines tinyproxy allows CONNECT to any port; the tests name the one they use.
    """
    binary = tool("tinyproxy", "/usr/bin/tinyproxy")
    started: list[Process] = []

    def start(connect_ports: Sequence[int] = (), basic_auth: bool = False) -> Tinyproxy:
        work = tmp_path / f"tinyproxy{len(started)}"
        work.mkdir()
        log = work / "tinyproxy.log"

        def argv(port: int) -> list[str]:
            lines = [
                f"Port {port}",
                "Listen 127.0.0.1",
                "Allow 127.0.0.1",
                f'LogFile "{log}"',
                "LogLevel Info",
                "Timeout 30",
                "MaxClients 32",
                *(f"ConnectPort {p}" for p in connect_ports),
            ]
            if basic_auth:
                lines.append(f"BasicAuth {PROXY_USER} {PROXY_PASSWORD}")
            (work / "tinyproxy.conf").write_text("\n".join(lines) + "\n")
            return [binary, "-d", "-c", str(work / "tinyproxy.conf")]

        def listening(_port: int) -> bool:
            return log.exists() and "Accepting connections" in log.read_text(errors="replace")

        process, port = start_listener("tinyproxy", argv, listening, work / "tinyproxy.out", log)
        started.append(process)
        return Tinyproxy(process, port, log)

    yield start
    for process in started:
        process.terminate(timeout=10)


# ---------------------------------------------------------------------------------------------------
# helpers on the gateway's answers and the fake's records


def routes(tls: TlsUpstream) -> dict[str, str]:
    text = ROUTES.format(
        upstream_key=UPSTREAM_KEY, http_model=HTTP_MODEL, https_model=HTTPS_MODEL, https_base_url=tls.base_url
    )
    return {"routes-proxy-test.yaml": text}


def complete_and_stream(gateway: Gateway, model: str, prompt: str) -> None:
    """A completion, a stream and a second completion: right text each (the second may reuse a pooled
    connection, or must notice that the proxy closed it)."""
    client = gateway.openai(timeout=20.0)
    completion = client.chat.completions.create(model=model, messages=user(prompt))
    assert completion.choices[0].message.content == FAKE_REPLY_PREFIX + prompt, completion

    stream = client.chat.completions.create(
        model=model, messages=user(prompt), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == FAKE_REPLY_PREFIX + prompt, chunks
    assert chunks[-1].usage is not None, "the stream's last chunk has no usage"

    again = client.chat.completions.create(model=model, messages=user(prompt + " again"))
    assert again.choices[0].message.content == FAKE_REPLY_PREFIX + prompt + " again", again


def recorded_headers(fake: FakeUpstream, prompt: str) -> list[dict[str, str]]:
    """The headers of the chat requests the fake received whose last message is `prompt`."""
    found = []
    for r in fake.requests():
        if not r["path"].endswith("/chat/completions"):
            continue
        body = json.loads(r["body"]) if isinstance(r["body"], str) else r["body"]
        if body["messages"][-1]["content"] == prompt:
            pairs = r["headers"].items() if isinstance(r["headers"], dict) else r["headers"]
            found.append({name.lower(): value for name, value in pairs})
    return found


def error_of(status: int, body: bytes) -> str:
    """The gateway's OpenAI-style error message, asserting the body is one."""
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        raise AssertionError(f"HTTP {status}: not an OpenAI error body: {body[:500]!r}") from None
    return f"{error.get('code')}: {error.get('message')}"


def assert_no_secret(where: str, text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"{where} contains a secret ({secret[:6]}…): {text[:1000]}"


def basic(password: str) -> str:
    return base64.b64encode(f"{PROXY_USER}:{password}".encode()).decode()


# ---------------------------------------------------------------------------------------------------
# tests


def test_http_upstream_goes_through_http_proxy(start_gateway, start_tinyproxy, fake_upstream, tls_upstream):
    """HTTP_PROXY: an http:// upstream is asked through the proxy, in absolute form, streams too."""
    proxy = start_tinyproxy()
    gateway = start_gateway(routes(tls_upstream), env=gateway_env(HTTP_PROXY=proxy.url()))
    prompt = "Through the forward proxy, please"
    complete_and_stream(gateway, HTTP_MODEL, prompt)

    target = re.escape(f"http://127.0.0.1:{fake_upstream.port}/v1/chat/completions")
    proxied = proxy.wait_for_request(rf"POST {target} HTTP/1\.1", count=3)
    assert len(proxied) == 3, f"tinyproxy saw {proxied}, expected the 3 calls"
    headers = recorded_headers(fake_upstream, prompt)
    assert len(headers) == 2 and all("tinyproxy" in h.get("via", "") for h in headers), (
        f"the fake's requests did not come through tinyproxy (no Via header): {headers}"
    )


def test_https_upstream_through_connect_tunnel_trusting_ssl_cert_file(
    start_gateway, start_tinyproxy, fake_upstream, tls_upstream
):
    """HTTPS_PROXY and SSL_CERT_FILE: a CONNECT tunnel, and TLS inside it verified with the company CA."""
    proxy = start_tinyproxy(connect_ports=[tls_upstream.port])
    env = gateway_env(HTTPS_PROXY=proxy.url(), SSL_CERT_FILE=str(tls_upstream.ca))
    gateway = start_gateway(routes(tls_upstream), env=env)
    before = len(tls_upstream.requests())
    prompt = "Through the CONNECT tunnel, please"
    complete_and_stream(gateway, HTTPS_MODEL, prompt)

    proxy.wait_for_request(rf"CONNECT localhost:{tls_upstream.port} HTTP/1\.1")
    assert all(r.startswith("CONNECT ") for r in proxy.requests()), proxy.requests()
    # nginx logs a request once it has sent the whole answer, so a stream's line may come a moment after
    # the client has read it.
    wait_for(
        "nginx to log the 3 calls",
        lambda: len(tls_upstream.requests()) - before == 3,
        5.0,
        lambda: f"nginx answered: {tls_upstream.requests()[before:]}",
    )
    for headers in recorded_headers(fake_upstream, prompt):
        assert headers.get("authorization") == f"Bearer {UPSTREAM_KEY}", headers
        assert "proxy-authorization" not in headers, headers


def test_https_upstream_with_unknown_ca_is_refused(start_gateway, start_tinyproxy, tls_upstream):
    """Without SSL_CERT_FILE the test CA is unknown: the call fails on the certificate, and says so."""
    proxy = start_tinyproxy(connect_ports=[tls_upstream.port])
    gateway = start_gateway(routes(tls_upstream), env=gateway_env(HTTPS_PROXY=proxy.url(), SSL_CERT_FILE=None))
    before = len(tls_upstream.requests())
    status, headers, body = gateway.post(
        "/v1/chat/completions", {"model": HTTPS_MODEL, "messages": user("Is this certificate trusted?")}
    )
    message = error_of(status, body)
    assert status == 502, f"HTTP {status}: {message}"
    assert "certificate" in message.lower(), f"the error does not say the certificate is the problem: {message}"
    proxy.wait_for_request(rf"CONNECT localhost:{tls_upstream.port} HTTP/1\.1")
    assert len(tls_upstream.requests()) == before, "a request reached the upstream over untrusted TLS"
    assert_no_secret("the error response", body.decode(errors="replace") + json.dumps(headers),
                     UPSTREAM_KEY, DEMO_KEY, ADMIN_TOKEN)  # fmt: skip
    assert_no_secret("the gateway's log", gateway.process.log_path.read_text(errors="replace"), UPSTREAM_KEY)


def test_no_proxy_bypasses_the_proxy(start_gateway, start_tinyproxy, fake_upstream, tls_upstream):
    """NO_PROXY: hosts it names are called directly, even with HTTP_PROXY and HTTPS_PROXY set."""
    proxy = start_tinyproxy()
    env = gateway_env(
        HTTP_PROXY=proxy.url(), HTTPS_PROXY=proxy.url(), NO_PROXY="127.0.0.1, localhost",
        SSL_CERT_FILE=str(tls_upstream.ca),
    )  # fmt: skip
    gateway = start_gateway(routes(tls_upstream), env=env)
    client = gateway.openai(timeout=20.0)
    for model in (HTTP_MODEL, HTTPS_MODEL):
        prompt = f"Straight to {model}, please"
        completion = client.chat.completions.create(model=model, messages=user(prompt))
        assert completion.choices[0].message.content == FAKE_REPLY_PREFIX + prompt
        headers = recorded_headers(fake_upstream, prompt)
        assert len(headers) == 1 and "via" not in headers[0], headers
    assert proxy.requests() == [], f"NO_PROXY hosts went through the proxy: {proxy.requests()}"


def test_proxy_basic_auth(start_gateway, start_tinyproxy, fake_upstream, tls_upstream):
    """user:pass in the proxy URL: sent to the proxy (forwarded requests and CONNECT), not into the tunnel."""
    proxy = start_tinyproxy(connect_ports=[tls_upstream.port], basic_auth=True)
    url = proxy.url(PROXY_PASSWORD)
    env = gateway_env(HTTP_PROXY=url, HTTPS_PROXY=url, SSL_CERT_FILE=str(tls_upstream.ca))
    gateway = start_gateway(routes(tls_upstream), env=env)
    client = gateway.openai(timeout=20.0)
    for model in (HTTP_MODEL, HTTPS_MODEL):
        prompt = f"Authenticated proxy to {model}, please"
        completion = client.chat.completions.create(model=model, messages=user(prompt))
        assert completion.choices[0].message.content == FAKE_REPLY_PREFIX + prompt

    proxy.wait_for_request(r"POST http://.* HTTP/1\.1")
    proxy.wait_for_request(rf"CONNECT localhost:{tls_upstream.port} HTTP/1\.1")
    tunnelled = recorded_headers(fake_upstream, f"Authenticated proxy to {HTTPS_MODEL}, please")
    assert len(tunnelled) == 1, tunnelled
    assert_no_secret("the tunnelled request's headers", json.dumps(tunnelled), PROXY_PASSWORD, basic(PROXY_PASSWORD))


@pytest.mark.parametrize(
    "password, proxy_says",
    [(WRONG_PASSWORD, 401), (None, 407)],  # tinyproxy answers a wrong password 401, a missing one 407
    ids=["wrong-password", "no-credentials"],
)
def test_proxy_refusing_credentials(start_gateway, start_tinyproxy, tls_upstream, password, proxy_says):
    """Credentials the proxy refuses: an error for either kind of upstream, which repeats no credential."""
    proxy = start_tinyproxy(connect_ports=[tls_upstream.port], basic_auth=True)
    url = proxy.url(password)
    env = gateway_env(HTTP_PROXY=url, HTTPS_PROXY=url, SSL_CERT_FILE=str(tls_upstream.ca))
    gateway = start_gateway(routes(tls_upstream), env=env)
    secrets = (WRONG_PASSWORD, basic(WRONG_PASSWORD), PROXY_PASSWORD, UPSTREAM_KEY, DEMO_KEY, ADMIN_TOKEN)
    answers = {}
    for model in (HTTP_MODEL, HTTPS_MODEL):
        status, headers, body = gateway.post("/v1/chat/completions", {"model": model, "messages": user("Let me in")})
        answers[model] = (status, error_of(status, body))
        assert_no_secret(f"the error response for {model}", body.decode(errors="replace") + json.dumps(headers),
                         *secrets)  # fmt: skip
    assert_no_secret("the gateway's log", gateway.process.log_path.read_text(errors="replace"), *secrets[:3])
    proxy.wait_for_request(r"POST http://.* HTTP/1\.1")
    proxy.wait_for_request(rf"CONNECT localhost:{tls_upstream.port} HTTP/1\.1")

    # A refused CONNECT fails the connection: the gateway's own 502 "upstream unavailable".
    status, message = answers[HTTPS_MODEL]
    assert status == 502 and message.startswith("upstream_unavailable:") and "tunnel error" in message, answers
    if proxy_says == 407:
        assert "proxy authorization required" in message, answers
    # A forwarded request's refusal is an HTTP answer, passed on like an upstream's 4xx
    # (docs/api.md: upstream_rejected with the upstream's status); it must be an error all the same.
    status, message = answers[HTTP_MODEL]
    assert status >= 400, answers
