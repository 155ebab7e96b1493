// Dashboard: requests, errors, latency and spend over a chosen range, and the busiest tenants and
// models, from /admin/v1/stats; refreshed while it is shown.

import uPlot from "uplot";

import { get, type Series, type Stats, type StatsPoint } from "../api";
import { errorBox, formatMs, formatNumber, h, table } from "../dom";

const RANGES: Record<string, number> = {
  "Last hour": 3_600_000,
  "Last 6 hours": 6 * 3_600_000,
  "Last 24 hours": 24 * 3_600_000,
  "Last 7 days": 7 * 24 * 3_600_000,
};
const REFRESH_MS = 15_000;

export interface View {
  element: HTMLElement;
  /** Stops its timers when another view replaces it. */
  stop(): void;
}

export function dashboard(): View {
  const range = h("select", { id: "range" }, ...Object.keys(RANGES).map((label) => h("option", {}, label)));
  range.value = "Last 24 hours";
  const body = h("div", { "aria-live": "polite" });
  const element = h(
    "section",
    { "aria-labelledby": "dashboard-title" },
    h("div", { class: "bar" }, h("h1", { id: "dashboard-title" }, "Dashboard"), h("label", { for: "range" }, "Range "), range),
    body,
  );
  let timer: number | undefined;
  const refresh = async () => {
    window.clearTimeout(timer);
    const until = Date.now();
    const since = until - (RANGES[range.value] ?? RANGES["Last 24 hours"]!);
    try {
      const [all, tenants, models] = await Promise.all([
        get<Stats>("/admin/v1/stats", { since_ms: since, until_ms: until }),
        get<Stats>("/admin/v1/stats", { since_ms: since, until_ms: until, group_by: "tenant", limit: 5 }),
        get<Stats>("/admin/v1/stats", { since_ms: since, until_ms: until, group_by: "model", limit: 5 }),
      ]);
      body.replaceChildren(...render(all, tenants, models));
    } catch (error) {
      body.replaceChildren(errorBox(error));
    }
    timer = window.setTimeout(refresh, REFRESH_MS);
  };
  range.addEventListener("change", refresh);
  void refresh();
  return { element, stop: () => window.clearTimeout(timer) };
}

function render(all: Stats, tenants: Stats, models: Stats): HTMLElement[] {
  const series = all.series[0];
  if (!series) return [h("p", { class: "muted" }, "No requests in this range.")];
  const total = series.total;
  const tiles = h(
    "dl",
    { class: "tiles" },
    ...tile("Requests", formatNumber(total.requests), "requests"),
    ...tile("Errors", `${formatNumber(total.errors)} (${percent(total.errors, total.requests)})`, "errors"),
    ...tile("Latency p95", formatMs(total.latency_ms.p95), "latency-p95"),
    ...tile("Time to first token p95", formatMs(total.ttft_ms?.p95), "ttft-p95"),
    ...tile("Spend", `$${total.cost_usd}`, "spend"),
  );
  return [
    tiles,
    chart("Requests and errors", series.points, [
      ["requests", "#3b82f6", (p) => p.requests],
      ["errors", "#ef4444", (p) => p.errors],
    ]),
    chart("Latency (ms)", series.points, [
      ["p50", "#10b981", (p) => p.latency_ms.p50],
      ["p95", "#f59e0b", (p) => p.latency_ms.p95],
      ["p99", "#ef4444", (p) => p.latency_ms.p99],
    ]),
    h("div", { class: "columns" }, top("Busiest tenants", tenants.series), top("Busiest models", models.series)),
  ];
}

function tile(label: string, value: string, name: string): HTMLElement[] {
  return [h("dt", {}, label), h("dd", { "data-tile": name }, value)];
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

type Line = [string, string, (point: StatsPoint) => number | null];

/** A time series chart (uPlot) of `lines` over the points' buckets. */
function chart(title: string, points: StatsPoint[], lines: Line[]): HTMLElement {
  const figure = h("figure", { class: "chart" }, h("figcaption", {}, title));
  const xs = points.map((p) => (p.t_ms ?? 0) / 1000);
  const data: uPlot.AlignedData = [xs, ...lines.map(([, , value]) => points.map(value))];
  const options: uPlot.Options = {
    width: 560,
    height: 220,
    series: [{}, ...lines.map(([label, stroke]) => ({ label, stroke, width: 2 }))],
    axes: [{ stroke: "currentColor" }, { stroke: "currentColor" }],
  };
  // Drawn once the figure is in the page, at its width.
  requestAnimationFrame(() => {
    options.width = Math.max(320, Math.min(figure.clientWidth || 560, 900));
    new uPlot(options, data, figure);
  });
  return figure;
}
