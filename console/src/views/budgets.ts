// Spend against budgets: the budgets nearest their limits (the Dashboard), and every budget with
// its burn-down, spend so far per day against the limit with the forecast to the period's end
// (Costs). From /admin/v1/budgets and, for the burn-down, /admin/v1/stats by day.

import { type Budget, get, type Page, type Stats } from "../api";
import { chart } from "../charts";
import { errorBox, h, table } from "../dom";
import { type Session, tenantParam } from "../session";

/** The share of its limit a budget has spent, 0 to 1 and more. */
function used(b: Budget): number {
  const limit = Number(b.limit_usd);
  return limit > 0 ? Number(b.spent_usd) / limit : 0;
}

function spentOf(b: Budget): HTMLElement {
  return h("span", { class: b.exhausted ? "status bad" : "status" }, `$${b.spent_usd} of $${b.limit_usd} (${(100 * used(b)).toFixed(0)}%)`);
}

/** Budgets per page: each is a ledger query. */
const PAGE = 100;

function budgets(session: Session, cursor?: string): Promise<Page<Budget>> {
  return get<Page<Budget>>("/admin/v1/budgets", { tenant: tenantParam(session), limit: PAGE, cursor });
}

/** The Dashboard's part: the five budgets that have spent the most of their limits (of the
 * first page: a platform with more budgets finds them all in Costs). */
export async function budgetsNearLimit(session: Session): Promise<HTMLElement> {
  const page = await budgets(session);
  const nearest = page.data.sort((a, b) => used(b) - used(a)).slice(0, 5);
  const rows = nearest.map((b) => [b.name, b.tenant, spentOf(b), b.forecast_usd ? `$${b.forecast_usd}` : "–"]);
  const of = page.next_cursor ? ` (of the first ${PAGE} by name; Costs lists them all)` : "";
  return rows.length
    ? table(`Spend against budgets, nearest their limits${of}`, ["budget", "tenant", "spent this period", "forecast to the period's end"], rows, [2, 3])
    : h("p", { class: "muted" }, "No budgets.");
}

/** The Costs view's part: every budget, and the burn-down of the one chosen. */
export function budgetsSection(session: Session): HTMLElement {
  const chartBox = h("div", { "aria-live": "polite" });
  const body = h("div", {});
  const section = h("section", { "aria-labelledby": "budgets-title" }, h("h2", { id: "budgets-title" }, "Budgets"), body, chartBox);
  const rows: (string | HTMLElement)[][] = [];
  const load = async (cursor?: string) => {
    try {
      const page = await budgets(session, cursor);
      for (const b of page.data) {
        const show = h("button", { type: "button", class: "link", "data-budget": b.name }, b.name);
        show.addEventListener("click", () => void burnDown(b, chartBox));
        rows.push([show, b.tenant, `${b.scope}, ${b.period}, ${b.enforcement}`, spentOf(b), `$${b.burn_usd_per_day}`, b.forecast_usd ? `$${b.forecast_usd}` : "–"]);
      }
      const more = page.next_cursor ? h("button", { type: "button" }, "More budgets") : "";
      if (more) more.addEventListener("click", () => void load(page.next_cursor ?? undefined));
      body.replaceChildren(
        rows.length
          ? table("Budgets this period", ["budget", "tenant", "scope", "spent", "burn per day", "forecast to the period's end"], rows, [3, 4, 5])
          : h("p", { class: "muted" }, "No budgets."),
        more,
      );
      const nearest = page.data.sort((a, b) => used(b) - used(a))[0];
      if (!cursor && nearest) await burnDown(nearest, chartBox);
    } catch (error) {
      body.replaceChildren(errorBox(error));
    }
  };
  void load();
  return section;
}

/** Spend so far this period, day by day, against the limit, and the forecast to its end. */
async function burnDown(b: Budget, into: HTMLElement): Promise<void> {
  if (b.scope === "ApiKey") {
    into.replaceChildren(h("p", { class: "muted" }, `The burn-down is drawn for tenant and persona budgets; ${b.name} is an API key's.`));
    return;
  }
  try {
    const now = Date.now();
    const stats = await get<Stats>("/admin/v1/stats", {
      since_ms: b.period_start_ms,
      until_ms: now,
      bucket: "day",
      tenant: b.tenant,
      persona: b.scope === "Persona" ? (b.persona ?? undefined) : undefined,
    });
    const points = stats.series[0]?.points ?? [];
    let total = 0;
    const times = points.map((p) => p.t_ms ?? 0);
    const spent: (number | null)[] = points.map((p) => (total += Number(p.cost_usd)));
    const end = b.period_end_ms ?? now;
    // Nothing spent when the period began, so that the lines span all of it.
    if ((times[0] ?? now) > b.period_start_ms) {
      times.unshift(b.period_start_ms);
      spent.unshift(0);
    }
    times.push(now, end);
    spent.push(Number(b.spent_usd), null);
    const limit = times.map(() => Number(b.limit_usd));
    const forecast = times.map((_, i) => (i === times.length - 2 ? Number(b.spent_usd) : i === times.length - 1 && b.forecast_usd ? Number(b.forecast_usd) : null));
    into.replaceChildren(
      chart(`Burn-down of ${b.name} (USD this period)`, times, [["spent", spent], ["limit", limit], ["forecast", forecast]], [b.period_start_ms, end]),
    );
  } catch (error) {
    into.replaceChildren(errorBox(error));
  }
}
