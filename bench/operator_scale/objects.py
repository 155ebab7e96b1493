"""The benchmark's objects: Secrets, Tenants, Personas, ProviderRoutes and Budgets at a given size.

Tenant i has `keys` API keys, each in its own Secret (`scale-t<i>-k<j>`, data key `key`), one tenant
namespace (`team-<i>`, so the operator keeps an ingress NetworkPolicy for it; `--tenant-namespaces 0`
leaves it out) and rate limits. Route r serves model `scale-model-<r>` on the fake upstream.
Persona p belongs to tenant p mod (T - D) and talks through model p mod R; Budget b caps tenant
b mod (T - D): the D Tenants deleted at the end (the last D) have neither, so deleting them
changes nothing else.
"""

from __future__ import annotations

import json
import secrets as random
from dataclasses import dataclass, field
from typing import Any

API_VERSION = "switchboard.dev/v1alpha1"
Obj = dict[str, Any]


@dataclass
class Sizes:
    tenants: int
    keys: int
    personas: int
    routes: int
    budgets: int
    deletes: int
    tenant_namespaces: int

    @property
    def objects(self) -> int:
        return self.tenants * (1 + self.keys) + self.personas + self.routes + self.budgets


@dataclass
class Plan:
    """Every object to create, by kind (plural), as JSON bodies, and every key value by tenant."""

    sizes: Sizes
    bodies: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)
    keys: dict[str, list[str]] = field(default_factory=dict)

    # The order objects are created in, as a GitOps tool applies them: Secrets before the
    # resources that reference them, routes and Tenants before Personas and Budgets.
    ORDER = ("secrets", "providerroutes", "tenants", "personas", "budgets")


def tenant_name(i: int) -> str:
    return f"scale-t{i:05d}"


def new_key() -> str:
    return f"sk-scale-{random.token_hex(16)}"


def secret(name: str, value: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque",
            "stringData": {"key": value}}


def tenant(name: str, secret_names: list[str], namespaces: int, index: int) -> Obj:
    spec: Obj = {
        "displayName": f"Team {index}",
        "apiKeys": [{"name": f"k{j + 1}", "secretRef": {"name": s, "key": "key"}} for j, s in enumerate(secret_names)],
        "rateLimits": {"requestsPerMinute": 600, "tokensPerMinute": 1000000},
    }
    if namespaces:
        spec["namespaces"] = [f"team-{index:05d}-{n}" if n else f"team-{index:05d}" for n in range(namespaces)]
    return {"apiVersion": API_VERSION, "kind": "Tenant", "metadata": {"name": name}, "spec": spec}


def route(name: str, model: str, base_url: str) -> Obj:
    return {
        "apiVersion": API_VERSION,
        "kind": "ProviderRoute",
        "metadata": {"name": name},
        "spec": {
            "models": [{"name": model, "pricing": {"inputPerMillion": "0.10", "outputPerMillion": "0.40"}}],
            "backends": [{"name": "fake", "provider": "openai", "baseUrl": base_url, "requestTimeoutSeconds": 30}],
            "retries": {"attempts": 0},
        },
    }


def persona(name: str, tenant_name_: str, model: str) -> Obj:
    return {
        "apiVersion": API_VERSION,
        "kind": "Persona",
        "metadata": {"name": name},
        "spec": {
            "tenant": tenant_name_,
            "displayName": name,
            "systemPrompt": "You are a concise assistant for the benchmark team. Answer briefly.",
            "model": model,
        },
    }


def budget(name: str, tenant_name_: str) -> Obj:
    return {
        "apiVersion": API_VERSION,
        "kind": "Budget",
        "metadata": {"name": name},
        "spec": {"scope": {"kind": "Tenant", "tenant": tenant_name_}, "limitUsd": "100", "period": "Monthly"},
    }


def plan(sizes: Sizes, base_url: str) -> Plan:
    p = Plan(sizes)
    dump = lambda o: (o["metadata"]["name"], json.dumps(o, separators=(",", ":")).encode())  # noqa: E731
    secrets_, tenants = [], []
    for i in range(sizes.tenants):
        name = tenant_name(i)
        names = [f"{name}-k{j + 1}" for j in range(sizes.keys)]
        p.keys[name] = [new_key() for _ in names]
        secrets_.extend(dump(secret(n, v)) for n, v in zip(names, p.keys[name]))
        tenants.append(dump(tenant(name, names, sizes.tenant_namespaces, i)))
    kept = max(1, sizes.tenants - sizes.deletes)
    p.bodies = {
        "secrets": secrets_,
        "providerroutes": [dump(route(f"scale-r{r:04d}", f"scale-model-{r}", base_url)) for r in range(sizes.routes)],
        "tenants": tenants,
        "personas": [
            dump(persona(f"scale-p{i:05d}", tenant_name(i % kept), f"scale-model-{i % max(1, sizes.routes)}"))
            for i in range(sizes.personas)
        ],
        "budgets": [dump(budget(f"scale-b{i:05d}", tenant_name(i % kept))) for i in range(sizes.budgets)],
    }
    return p
