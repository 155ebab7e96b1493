"""Hot reload of the config folder: a bad edit keeps the last good config; a good one takes effect."""

from __future__ import annotations

import os
import time

import openai

from harness import http

NEW_KEY = "sk-switchboard-hot-reload"

# Not YAML at all.
BROKEN_YAML = "apiVersion: switchboard.dev/v1alpha1\nkind: Tenant\nmetadata: {name: broken\n  spec: [\n"

# Valid YAML, but the schema rejects it (priority is 0..100) and its key Secret does not exist.
INVALID_TENANT = """
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata:
  name: invalid
spec:
  priority: 500
  apiKeys:
    - name: default
      secretRef: {name: no-such-secret, key: key}
"""

NEW_TENANT = f"""
apiVersion: v1
kind: Secret
metadata:
  name: hot-reload-key
type: Opaque
stringData:
  key: {NEW_KEY}
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata:
  name: hot-reload
spec:
  displayName: Added while the gateway runs
  apiKeys:
    - name: main
      secretRef: {{name: hot-reload-key, key: key}}
"""

HELLO = [{"role": "user", "content": "hello"}]


def still_serving(gateway, seconds: float) -> None:
    """For `seconds`, the demo key keeps working and the gateway stays ready.

    On failure the gateway is killed at once: a gateway stuck on a bad file may also be eating memory.
    """
    client = gateway.openai(timeout=5.0)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            client.chat.completions.create(model="demo-echo", messages=HELLO)
            status, _, body = http("GET", f"{gateway.url}/readyz", timeout=5.0)
            assert status == 200, f"/readyz answered {status} with a good config still loaded: {body!r}"
            time.sleep(0.25)
    except BaseException:
        gateway.process.kill()
        raise


def write_atomically(path, text: str) -> None:
    """Write-then-rename, as Kubernetes updates mounted ConfigMaps and editors save files."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def test_yaml_syntax_error_keeps_last_good_config(start_gateway):
    gateway = start_gateway()
    still_serving(gateway, 0.5)
    (gateway.config_dir / "broken.yaml").write_text(BROKEN_YAML)
    still_serving(gateway, 2.5)
    gateway.stop()


def test_invalid_manifest_keeps_last_good_config_and_valid_change_applies(start_gateway):
    gateway = start_gateway()
    still_serving(gateway, 0.5)

    # Valid YAML that the schema and render() reject.
    broken = gateway.config_dir / "broken.yaml"
    broken.write_text(INVALID_TENANT)
    still_serving(gateway, 2.5)

    # Fix the folder: drop the bad file, add a tenant and its key Secret.
    broken.unlink()
    write_atomically(gateway.config_dir / "tenant-hot-reload.yaml", NEW_TENANT)
    client = gateway.openai(key=NEW_KEY, timeout=5.0)
    deadline = time.monotonic() + 15
    last_error: Exception | None = None
    while True:
        try:
            completion = client.chat.completions.create(model="demo-echo", messages=HELLO)
            break
        except openai.AuthenticationError as error:
            last_error = error
        assert time.monotonic() < deadline, f"the new tenant's key was not accepted within 15s: {last_error}"
        time.sleep(0.2)
    assert completion.choices[0].message.content
    still_serving(gateway, 0.3)

    gateway.stop()
    tenants = {(row["tenant"], row["api_key"]) for row in gateway.ledger()}
    assert tenants == {("demo", "default"), ("hot-reload", "main")}, tenants
