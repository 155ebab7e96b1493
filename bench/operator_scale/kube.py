"""A small Kubernetes API client for the scale benchmark: the standard library only.

Credentials come from the kubeconfig `e2e/controlplane.sh start` writes, read with
`kubectl config view --raw --minify -o json` (so no YAML parser is needed): the server, its CA, and
a bearer token or a client certificate, whichever the kubeconfig has. Each thread keeps its own
keep-alive HTTPS connection. Watches run in their own threads and feed a callback.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import quote, urlsplit

Obj = dict[str, Any]


class ApiError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: bytes):
        self.status = status
        super().__init__(f"{method} {path}: HTTP {status}: {body[:300].decode(errors='replace')}")


class Kube:
    def __init__(self, kubectl: Path, kubeconfig: Path, work: Path):
        out = subprocess.run(
            [str(kubectl), "--kubeconfig", str(kubeconfig), "config", "view", "--raw", "--minify", "-o", "json"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout
        config = json.loads(out)
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
        url = urlsplit(cluster["server"])
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 443
        self.context = ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
        )
        self.headers = {"Accept": "application/json"}
        if user.get("token"):
            self.headers["Authorization"] = f"Bearer {user['token']}"
        if user.get("client-certificate-data"):
            cert, key = work / "client.crt", work / "client.key"
            cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
            key.write_bytes(base64.b64decode(user["client-key-data"]))
            os.chmod(key, 0o600)
            self.context.load_cert_chain(str(cert), str(key))
        self._local = threading.local()

    def connection(self, timeout: float = 60.0) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=timeout)

    def request(
        self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"
    ) -> tuple[int, bytes]:
        """One request on this thread's keep-alive connection; reconnects once if it was closed."""
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = content_type
        for attempt in range(2):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = self.connection()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, body: Obj | None = None, ok: Iterable[int] = (200, 201)) -> Obj:
        status, data = self.request(method, path, None if body is None else json.dumps(body).encode())
        if status not in ok:
            raise ApiError(method, path, status, data)
        return json.loads(data) if data else {}

    def list_all(
        self, path: str, selector: str | None = None, fields: str | None = None, page: int = 500
    ) -> tuple[list[Obj], str]:
        """Every item of a collection (paginated) and the list's resourceVersion."""
        items: list[Obj] = []
        token = ""
        while True:
            query = f"?limit={page}"
            if selector:
                query += f"&labelSelector={quote(selector)}"
            if fields:
                query += f"&fieldSelector={quote(fields)}"
            if token:
                query += f"&continue={quote(token)}"
            result = self.json("GET", path + query)
            items.extend(result.get("items") or [])
            token = result["metadata"].get("continue") or ""
            if not token:
                return items, result["metadata"]["resourceVersion"]


def collection(namespace: str, kind_plural: str) -> str:
    """The API path of a namespaced collection: core kinds and the switchboard.dev ones."""
    if kind_plural in ("secrets", "configmaps", "events", "namespaces"):
        return f"/api/v1/namespaces/{namespace}/{kind_plural}"
    return f"/apis/switchboard.dev/v1alpha1/namespaces/{namespace}/{kind_plural}"


class Watch(threading.Thread):
    """List, then watch from the list's resourceVersion, forever (re-listing after 410 Gone).

    `on_sync(items)` is called with the full list (after every (re)list), `on_event(type, obj)` for
    every watch event, both from this thread, with the wall-clock time the event was read.
    """

    def __init__(
        self,
        kube: Kube,
        path: str,
        on_sync: Callable[[list[Obj], float], None],
        on_event: Callable[[str, Obj, float], None],
        selector: str | None = None,
    ):
        super().__init__(daemon=True, name=f"watch {path}")
        self.kube, self.path, self.selector = kube, path, selector
        self.on_sync, self.on_event = on_sync, on_event
        self.synced = threading.Event()
        self.stopped = threading.Event()
        self.errors: list[str] = []
        self._conn: http.client.HTTPSConnection | None = None

    def stop(self) -> None:
        self.stopped.set()
        conn = self._conn
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def run(self) -> None:
        rv = ""
        while not self.stopped.is_set():
            try:
                if not rv:
                    items, rv = self.kube.list_all(self.path, self.selector)
                    self.on_sync(items, time.time())
                    self.synced.set()
                rv = self._watch(rv)
            except Exception as error:  # noqa: BLE001 - a watch must survive and say why
                if self.stopped.is_set():
                    return
                self.errors.append(f"{type(error).__name__}: {error}")
                time.sleep(0.5)

    def _watch(self, rv: str) -> str:
        query = f"?watch=1&allowWatchBookmarks=true&timeoutSeconds=240&resourceVersion={rv}"
        if self.selector:
            query += f"&labelSelector={quote(self.selector)}"
        conn = self._conn = self.kube.connection(timeout=300)
        try:
            conn.request("GET", self.path + query, headers=self.kube.headers)
            response = conn.getresponse()
            if response.status == 410:
                return ""
            if response.status != 200:
                raise ApiError("WATCH", self.path, response.status, response.read())
            while not self.stopped.is_set():
                line = response.readline()
                if not line:
                    return rv  # the server ended the watch (timeoutSeconds): resume from rv
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        return ""
                    raise RuntimeError(f"watch error: {obj.get('message')}")
                rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                if kind != "BOOKMARK":
                    self.on_event(kind, obj, time.time())
            return rv
        finally:
            conn.close()
            self._conn = None
