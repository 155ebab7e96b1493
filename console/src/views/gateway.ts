// Gateway: the served config (version, in sync, counts), each ProviderRoute with its models,
// prices and backends, with their live health (breaker, error rate and latency over the last
// 5 minutes on this replica), and the Personas with their memory and mood; in a cluster, each
// resource's conditions as the operator wrote them. From /admin/v1/config, /admin/v1/routes and
// /admin/v1/personas.

import { get, type ConfigState, type Persona, type Route, type WithConditions } from "../api";
import { errorBox, formatMs, formatNumber, formatTime, h, table } from "../dom";
import type { Session } from "../session";
import { conditionsTable, readiness } from "./conditions";
import type { View } from "./view";

export function gateway(session: Session): View {
  const body = h("div", { "aria-live": "polite" });
  const element = h("section", { "aria-labelledby": "gateway-title" }, h("h1", { id: "gateway-title" }, "Gateway"), body);
  if (session.tenants) {
    body.replaceChildren(h("p", { class: "muted" }, "The routes and the served config are every tenant's: reading them needs the platform admin or viewer role."));
    return { element, stop: () => {} };
  }
  void (async () => {
    try {
      const [config, routes, personas] = await Promise.all([
        get<ConfigState>("/admin/v1/config"),
        get<WithConditions<Route>>("/admin/v1/routes"),
        get<WithConditions<Persona>>("/admin/v1/personas"),
      ]);
      body.replaceChildren(
        summary(config),
        routes.conditions_error ? conditionsTable("the routes", null, routes.conditions_error) : "",
        ...routes.data.map(route),
        personaList(personas),
      );
    } catch (error) {
      body.replaceChildren(errorBox(error));
    }
  })();
  return { element, stop: () => {} };
}

function summary(config: ConfigState): HTMLElement {
  const field = (name: string, value: string) => [h("dt", {}, name), h("dd", {}, value)];
  return h(
    "dl",
    { class: "fields", "data-config": config.version },
    ...field("config version", config.version.slice(0, 16)),
    ...field("in sync", config.in_sync ? "yes" : `no: ${config.last_error ?? "a newer config failed to load"}`),
    ...field("loaded", config.loaded_at_ms ? formatTime(config.loaded_at_ms) : "–"),
    ...field("tenants / routes / personas / budgets", `${config.tenants} / ${config.routes} / ${config.personas} / ${config.budgets}`),
  );
}

function route(route: Route): HTMLElement {
  const models = route.models.map((m) => [
    m.name,
    m.upstream_model,
    `$${m.usd_per_million["input"] ?? "–"}`,
    `$${m.usd_per_million["output"] ?? "–"}`,
  ]);
  const backends = route.backends.map((b) => [
    b.name,
    b.provider,
    b.address ?? "–",
    `${b.priority} / ${b.weight}`,
    h("span", { class: b.healthy ? "status" : "status bad" }, b.breaker),
    `${(100 * b.last_5_minutes.error_rate).toFixed(1)}% of ${b.last_5_minutes.attempts}`,
    formatMs(b.last_5_minutes.mean_latency_ms),
  ]);
  const recent = route.last_15_minutes;
  return h(
    "article",
    { class: "route", "data-route": route.name },
    h("h2", {}, `${route.name}`),
    h(
      "p",
      { class: "muted" },
      `${route.healthy_backends} of ${route.backends.length} backends healthy; retries ${route.retries}, timeout ${route.timeout_ms / 1000} s`,
      recent ? `; last 15 minutes: ${recent.requests} requests, ${(100 * recent.error_rate).toFixed(1)}% errors, p95 ${formatMs(recent.latency_ms.p95)}` : "",
    ),
    table(`Models of ${route.name} (USD per million tokens)`, ["model", "upstream model", "input", "output"], models, [2, 3]),
    table(
      `Backends of ${route.name}`,
      ["backend", "provider", "address", "priority / weight", "breaker", "errors (5 min)", "mean latency (5 min)"],
      backends,
      [5, 6],
    ),
    conditionsTable(`ProviderRoute ${route.name}`, route.conditions),
  );
}

function personaList(personas: WithConditions<Persona>): HTMLElement {
  const rows = personas.data.map((p) => [
    p.name,
    p.tenant,
    p.model,
    p.memory.enabled ? `${p.memory.extraction}, up to ${formatNumber(p.memory.maxMemoriesPerSubject)} a person` : "off",
    formatNumber(p.memory_count),
    p.mood ? `${p.mood.description} (valence ${p.mood.valence}, arousal ${p.mood.arousal})` : "–",
    formatNumber(p.interactions),
    p.shared_with_tenants.join(", ") || "–",
    readiness(p.conditions),
  ]);
  return h(
    "article",
    { "aria-labelledby": "personas-title" },
    h("h2", { id: "personas-title" }, "Personas"),
    personas.conditions_error ? conditionsTable("the personas", null, personas.conditions_error) : "",
    rows.length
      ? table("Personas: memory, mood and readiness", ["persona", "tenant", "model", "memory", "memories", "mood", "interactions", "shared with", "ready"], rows, [4, 6])
      : h("p", { class: "muted" }, "No personas."),
  );
}
