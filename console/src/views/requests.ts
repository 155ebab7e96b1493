// Traces: the request log with filters (tenant, model, persona, status, text in the error code, a
// time range), and one request's detail (its attempts, tokens, cost,
// guardrails and trace id), from /admin/v1/requests.

import { type ConfigState, get, type Page, type RequestRow } from "../api";
import { errorBox, formatMs, formatNumber, formatTime, h, table } from "../dom";
import { type Session, tenantParam } from "../session";
import type { View } from "./view";

const FILTERS = ["tenant", "model", "persona", "status", "error"] as const;
/** The time range, in UTC as the table shows times: `since_ms` and `until_ms`. */
const TIMES = [
  ["since_ms", "from (UTC)"],
  ["until_ms", "to (UTC)"],
] as const;

/** A `datetime-local` value read as UTC, in ms since the epoch. */
function utcMs(value: string): string | undefined {
  const ms = Date.parse(`${value}Z`);
  return value && Number.isFinite(ms) ? String(ms) : undefined;
}

export function requests(session: Session): View {
  const inputs = FILTERS.map((name) => h("input", { id: `filter-${name}`, name, autocomplete: "off" }));
  const times = TIMES.map(([name]) => h("input", { id: `filter-${name}`, name, type: "datetime-local" }));
  // A tenant admin reads their tenant's requests only: the filter is set, and fixed.
  const tenant = tenantParam(session);
  if (tenant) {
    inputs[0]!.value = tenant;
    inputs[0]!.readOnly = true;
  }
  const form = h(
    "form",
    { class: "filters", role: "search" },
    ...FILTERS.flatMap((name, i) => [h("label", { for: `filter-${name}` }, name === "error" ? "error contains" : name), inputs[i]!]),
    ...TIMES.flatMap(([name, label], i) => [h("label", { for: `filter-${name}` }, label), times[i]!]),
    h("button", { type: "submit" }, "Filter"),
  );
  const list = h("div", {});
  const detail = h("section", { id: "request-detail", "aria-live": "polite" });
  // Where a trace id links to (the gateway's --trace-url-template), for whoever may read the config.
  let traceUrl: string | null = null;
  if (!session.tenants) {
    get<ConfigState>("/admin/v1/config")
      .then((config) => (traceUrl = config.trace_url_template))
      .catch(() => {});
  }
  const element = h("section", { "aria-labelledby": "requests-title" }, h("h1", { id: "requests-title" }, "Traces"), form, list, detail);

  const load = async (cursor?: string) => {
    const params: Record<string, string | undefined> = { limit: "50", cursor };
    for (const input of inputs) params[input.name] = input.value.trim();
    for (const input of times) params[input.name] = utcMs(input.value);
    try {
      const page = await get<Page<RequestRow>>("/admin/v1/requests", params);
      const older = page.next_cursor
        ? h("button", { type: "button", class: "older" }, "Older requests")
        : null;
      older?.addEventListener("click", () => void load(page.next_cursor ?? undefined));
      const rows = page.data.map((row) => {
        const open = h("button", { type: "button", class: "link", "data-id": row.id }, formatTime(row.created_at_ms));
        open.addEventListener("click", () => detail.replaceChildren(details(row, traceUrl)));
        return [
          open,
          row.tenant,
          row.api_key,
          row.model,
          h("span", { class: row.status >= 400 ? "status bad" : "status" }, row.status),
          formatMs(row.latency_ms),
          `${formatNumber(row.input_tokens)} / ${formatNumber(row.output_tokens)}`,
          `$${row.cost_usd}`,
        ];
      });
      const caption = page.data.length ? "Requests, newest first" : "No requests match";
      list.replaceChildren(
        table(caption, ["time (UTC)", "tenant", "key", "model", "status", "latency", "tokens in / out", "cost"], rows, [5, 6, 7]),
        older ?? "",
      );
    } catch (error) {
      list.replaceChildren(errorBox(error));
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    detail.replaceChildren();
    void load();
  });
  void load();
  return { element, stop: () => {} };
}

function details(row: RequestRow, traceUrl: string | null): HTMLElement {
  const field = (name: string, value: Node | string | number | null) => [h("dt", {}, name), h("dd", {}, value ?? "–")];
  const trace =
    row.trace_id && traceUrl
      ? h("a", { href: traceUrl.replace("{trace_id}", encodeURIComponent(row.trace_id)), rel: "noreferrer" }, row.trace_id)
      : row.trace_id;
  const attempts = row.attempts.map((a) => [a.backend, a.outcome, formatMs(a.at_ms), formatMs(a.ms)]);
  const hits = row.guardrails.map((g) => [g.on, g.kind, g.action, g.count]);
  return h(
    "article",
    { "aria-labelledby": "detail-title" },
    h("h2", { id: "detail-title" }, `Request ${row.id}`),
    h(
      "dl",
      { class: "fields" },
      ...field("tenant / key", `${row.tenant} / ${row.api_key}`),
      ...field("subject", row.subject),
      ...field("persona", row.persona),
      ...field("model / route / backend", `${row.model} / ${row.route || "–"} / ${row.backend || "–"}`),
      ...field("endpoint", `${row.endpoint}${row.stream ? " (stream)" : ""}`),
      ...field("status", row.error_code ? `${row.status} ${row.error_code}` : row.status),
      ...field("latency / first token / queue", `${formatMs(row.latency_ms)} / ${formatMs(row.ttft_ms)} / ${formatMs(row.queue_ms)}`),
      ...field(
        "tokens: input / cached / cache writes / output",
        [row.input_tokens, row.cached_input_tokens, row.cache_write_tokens, row.output_tokens].map(formatNumber).join(" / "),
      ),
      ...field("cost", `$${row.cost_usd}${row.cache_hit ? " (cache hit)" : ""}`),
      ...field("trace", trace),
    ),
    attempts.length ? table("Attempts, in order", ["backend", "outcome", "began after", "took"], attempts, [2, 3]) : "",
    hits.length ? table("Guardrails", ["on", "kind", "action", "count"], hits, [3]) : "",
  );
}
