// Costs: spend per day by tenant, model or persona over the last 7 or 30 days, with each one's
// total, and the CSV export of /admin/v1/costs for the same range; the budgets with their
// burn-down (./budgets).

import { adminToken, get, type Stats } from "../api";
import { chart } from "../charts";
import { errorBox, formatNumber, h, table } from "../dom";
import { type Session, tenantParam } from "../session";
import { budgetsSection } from "./budgets";
import type { View } from "./view";

const DAY = 86_400_000;

export function costs(session: Session): View {
  const tenant = tenantParam(session);
  const range = h("select", { id: "costs-range" }, h("option", { value: "7" }, "Last 7 days"), h("option", { value: "30" }, "Last 30 days"));
  range.value = "30";
  const groupBy = h(
    "select",
    { id: "costs-group" },
    h("option", { value: "tenant" }, "tenant"),
    h("option", { value: "model" }, "model"),
    h("option", { value: "persona" }, "persona"),
  );
  const download = h("button", { type: "button" }, "Export CSV");
  const body = h("div", { "aria-live": "polite" });
  const element = h(
    "section",
    { "aria-labelledby": "costs-title" },
    h(
      "div",
      { class: "bar" },
      h("h1", { id: "costs-title" }, "Costs"),
      h("label", { for: "costs-range" }, "Range "),
      range,
      h("label", { for: "costs-group" }, "by "),
      groupBy,
      download,
    ),
    body,
    budgetsSection(session),
  );
  const bounds = () => {
    const until = Date.now();
    return { since_ms: until - Number(range.value) * DAY, until_ms: until, tenant };
  };
  const load = async () => {
    try {
      const stats = await get<Stats>("/admin/v1/stats", { ...bounds(), bucket: "day", group_by: groupBy.value, limit: 8 });
      body.replaceChildren(...render(stats, groupBy.value));
    } catch (error) {
      body.replaceChildren(errorBox(error));
    }
  };
  range.addEventListener("change", load);
  groupBy.addEventListener("change", load);
  download.addEventListener("click", () => void exportCsv(bounds()));
  void load();
  return { element, stop: () => {} };
}

function render(stats: Stats, groupBy: string): HTMLElement[] {
  if (!stats.series.length) return [h("p", { class: "muted" }, "No spend in this range.")];
  // Every day of the range on one axis: a series without requests that day spent nothing.
  const days = [...new Set(stats.series.flatMap((s) => s.points.map((p) => p.t_ms ?? 0)))].sort((a, b) => a - b);
  const lines = stats.series.map((s): [string, number[]] => {
    const byDay = new Map(s.points.map((p) => [p.t_ms ?? 0, Number(p.cost_usd)]));
    return [s.key ?? "(none)", days.map((day) => byDay.get(day) ?? 0)];
  });
  const rows = stats.series.map((s) => [s.key ?? "(none)", formatNumber(s.total.requests), formatNumber(s.total.input_tokens), formatNumber(s.total.output_tokens), `$${s.total.cost_usd}`]);
  return [
    chart(`Spend per day by ${groupBy} (USD)`, days, lines, [stats.since_ms, stats.until_ms]),
    table(`Spend by ${groupBy}`, [groupBy, "requests", "input tokens", "output tokens", "spend"], rows, [1, 2, 3, 4]),
  ];
}

/** Downloads /admin/v1/costs as CSV (fetched with the console's credentials, then saved). */
async function exportCsv(bounds: { since_ms: number; until_ms: number; tenant: string | undefined }): Promise<void> {
  const url = new URL("/admin/v1/costs", window.location.origin);
  url.searchParams.set("format", "csv");
  url.searchParams.set("since_ms", String(bounds.since_ms));
  url.searchParams.set("until_ms", String(bounds.until_ms));
  if (bounds.tenant) url.searchParams.set("tenant", bounds.tenant);
  const headers: Record<string, string> = { Accept: "text/csv" };
  const token = adminToken();
  if (token) headers["Authorization"] = `Bearer ${token}`;
  const response = await fetch(url, { headers, credentials: "same-origin" });
  if (!response.ok) return;
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = "switchboard-costs.csv";
  link.click();
  URL.revokeObjectURL(link.href);
}
