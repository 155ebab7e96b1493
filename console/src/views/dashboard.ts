// Dashboard: requests, errors, latency and spend over a chosen range, the top tenants, models and
// personas by requests, spend or errors, from /admin/v1/stats, and the spend against the budgets nearest their limits;
// refreshed while it is shown.

import { get, type Series, type Stats, type StatsPoint } from "../api";
import { chart } from "../charts";
import { type Session, tenantParam } from "../session";
import { errorBox, formatMs, formatNumber, h, table } from "../dom";
import { budgetsNearLimit } from "./budgets";
import type { View } from "./view";

const RANGES: Record<string, number> = {
  "Last hour": 3_600_000,
  "Last 6 hours": 6 * 3_600_000,
  "Last 24 hours": 24 * 3_600_000,
  "Last 7 days": 7 * 24 * 3_600_000,
};
const REFRESH_MS = 15_000;
/** The top five of each kind, side by side under the charts. */
const GROUPS: [string, string][] = [
  ["tenant", "tenants"],
  ["model", "models"],
  ["persona", "personas"],
];
/** What makes the top five: the API's `rank_by`, and how the captions say it. */
const RANKS: Record<string, string> = { requests: "Busiest", cost: "Costliest", errors: "Most failing" };

export function dashboard(session: Session): View {
  const tenant = tenantParam(session);
  const range = h("select", { id: "range" }, ...Object.keys(RANGES).map((label) => h("option", {}, label)));
  range.value = "Last 24 hours";
  const rank = h("select", { id: "rank" }, ...Object.keys(RANKS).map((by) => h("option", { value: by }, by)));
  const body = h("div", { "aria-live": "polite" });
  const element = h(
    "section",
    { "aria-labelledby": "dashboard-title" },
    h(
      "div",
      { class: "bar" },
      h("h1", { id: "dashboard-title" }, tenant ? `Dashboard of ${tenant}` : "Dashboard"),
      h("label", { for: "range" }, "Range "),
      range,
      h("label", { for: "rank" }, "top by "),
      rank,
    ),
    body,
  );
  let timer: number | undefined;
  const refresh = async () => {
    window.clearTimeout(timer);
    const until = Date.now();
    const since = until - (RANGES[range.value] ?? RANGES["Last 24 hours"]!);
    try {
      const range = { since_ms: since, until_ms: until, tenant };
      const [budgets, [all, ...groups]] = await Promise.all([
        budgetsNearLimit(session),
        Promise.all([
          get<Stats>("/admin/v1/stats", range),
          ...GROUPS.map(([group]) => get<Stats>("/admin/v1/stats", { ...range, group_by: group, limit: 5, rank_by: rank.value })),
        ]),
      ]);
      body.replaceChildren(...render(all!, groups, RANKS[rank.value] ?? "Busiest"), budgets);
    } catch (error) {
      body.replaceChildren(errorBox(error));
    }
    timer = window.setTimeout(refresh, REFRESH_MS);
  };
  range.addEventListener("change", refresh);
  rank.addEventListener("change", refresh);
  void refresh();
  return { element, stop: () => window.clearTimeout(timer) };
}

function render(all: Stats, groups: Stats[], ranked: string): HTMLElement[] {
  const range: [number, number] = [all.since_ms, all.until_ms];
  const series = all.series[0];
  if (!series) return [h("p", { class: "muted" }, "No requests in this range.")];
  const total = series.total;
  const tiles = h(
    "dl",
    { class: "tiles" },
    tile("Requests", formatNumber(total.requests), "requests"),
    tile("Errors", `${formatNumber(total.errors)} (${percent(total.errors, total.requests)})`, "errors"),
    tile("Latency p95", formatMs(total.latency_ms.p95), "latency-p95"),
    tile("Time to first token p95", formatMs(total.ttft_ms?.p95), "ttft-p95"),
    tile("Spend", `$${total.cost_usd}`, "spend"),
  );
  return [
    tiles,
    chart("Requests and errors", times(series.points), [
      ["requests", series.points.map((p) => p.requests)],
      ["errors", series.points.map((p) => p.errors)],
    ], range),
    chart("Latency (ms)", times(series.points), [
      ["p50", series.points.map((p) => p.latency_ms.p50)],
      ["p95", series.points.map((p) => p.latency_ms.p95)],
      ["p99", series.points.map((p) => p.latency_ms.p99)],
    ], range),
    h("div", { class: "columns" }, ...groups.map((stats, i) => top(`${ranked} ${GROUPS[i]![1]}`, stats.series))),
  ];
}

function times(points: StatsPoint[]): number[] {
  return points.map((p) => p.t_ms ?? 0);
}

function tile(label: string, value: string, name: string): HTMLElement {
  return h("div", { class: "tile" }, h("dt", {}, label), h("dd", { "data-tile": name }, value));
}

function percent(part: number, whole: number): string {
  return whole ? `${((100 * part) / whole).toFixed(1)}%` : "0%";
}

function top(caption: string, series: Series[]): HTMLElement {
  const rows = series.map((s) => [
    s.key ?? "(none)",
    formatNumber(s.total.requests),
    formatNumber(s.total.errors),
    `$${s.total.cost_usd}`,
  ]);
  return table(caption, ["name", "requests", "errors", "spend"], rows, [1, 2, 3]);
}
