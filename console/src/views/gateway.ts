// Gateway: the served config (version, in sync, counts) and each ProviderRoute with its models,
// prices and backends, with their live health (breaker, error rate and latency over the last
// 5 minutes on this replica), from /admin/v1/config and /admin/v1/routes.

import { get, type ConfigState, type Page, type Route } from "../api";
import { errorBox, formatMs, formatTime, h, table } from "../dom";
import type { Session } from "../session";
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
      const [config, routes] = await Promise.all([
        get<ConfigState>("/admin/v1/config"),
        get<Page<Route>>("/admin/v1/routes"),
      ]);
      body.replaceChildren(summary(config), ...routes.data.map(route));
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
  );
}
