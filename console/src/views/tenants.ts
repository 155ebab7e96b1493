// Tenants: every tenant with its keys, budgets, personas and spend this month; one tenant's
// detail with its limits, budgets (spent, remaining, burn rate and forecast to the period's end),
// usage by model and personas, from /admin/v1/tenants. Whoever may also changes them
// (./tenant_changes): the forms are there only for them.

import { get, type Page, type TenantDetail, type TenantMembers, type TenantSummary } from "../api";
import { errorBox, formatNumber, h, table } from "../dom";
import { type Session, mayChange } from "../session";
import { conditionsTable } from "./conditions";
import { budgetForm, budgetObjects, keys, limitsForm, newTenant } from "./tenant_changes";
import type { View } from "./view";

export function tenants(session: Session): View {
  const list = h("div", {});
  const detail = h("section", { id: "tenant-detail", "aria-live": "polite" });
  // Names starting with what is typed (the API's `prefix`), for platforms with many tenants.
  const prefix = h("input", { id: "tenant-prefix", type: "search", autocomplete: "off" });
  const search = h("form", { class: "filters", role: "search" }, h("label", { for: "tenant-prefix" }, "Tenants starting with"), prefix, h("button", { type: "submit" }, "Find"));
  search.addEventListener("submit", (event) => {
    event.preventDefault();
    void load();
  });
  const element = h(
    "section",
    { "aria-labelledby": "tenants-title" },
    h("h1", { id: "tenants-title" }, "Tenants"),
    session.creates ? newTenant((name) => void load().then(() => show(name, detail, session))) : "",
    session.tenants ? "" : search,
    list,
    detail,
  );
  const load = async (cursor?: string) => {
    try {
      // A tenant admin may not list every tenant: their own, one by one.
      const page: Page<TenantSummary> = session.tenants
        ? { data: await Promise.all(session.tenants.map((name) => get<TenantSummary>(`/admin/v1/tenants/${encodeURIComponent(name)}`))), next_cursor: null }
        : await get<Page<TenantSummary>>("/admin/v1/tenants", { limit: 100, cursor, prefix: prefix.value.trim() });
      const rows = page.data.map((t) => {
        const open = h("button", { type: "button", class: "link", "data-tenant": t.name }, t.name);
        open.addEventListener("click", () => void show(t.name, detail, session));
        return [
          open,
          t.display_name ?? "",
          t.api_keys.length,
          t.budgets_count,
          t.personas_count,
          formatNumber(t.usage_this_month?.requests ?? 0),
          `$${t.usage_this_month?.cost_usd ?? "0"}`,
        ];
      });
      const more = page.next_cursor ? h("button", { type: "button" }, "More tenants") : "";
      if (more) more.addEventListener("click", () => void load(page.next_cursor ?? undefined));
      list.replaceChildren(
        table("Tenants", ["tenant", "display name", "keys", "budgets", "personas", "requests this month", "spend this month"], rows, [2, 3, 4, 5, 6]),
        more,
      );
    } catch (error) {
      list.replaceChildren(errorBox(error));
    }
  };
  void load();
  return { element, stop: () => {} };
}

async function show(name: string, into: HTMLElement, session: Session, notice?: HTMLElement): Promise<void> {
  try {
    const refresh = (next?: HTMLElement) => void show(name, into, session, next);
    const path = `/admin/v1/tenants/${encodeURIComponent(name)}`;
    const [t, mayUpdate, members] = await Promise.all([get<TenantDetail>(path), mayChange(session, name), get<TenantMembers>(`${path}/members`)]);
    const limits = Object.entries(t.rate_limits).map(([limit, value]) => [limit, formatNumber(value)]);
    const budgets = t.budgets.map((b) => [
      b.name,
      `${b.scope}, ${b.period}, ${b.enforcement}`,
      `$${b.spent_usd} of $${b.limit_usd}`,
      `$${b.remaining_usd}`,
      `$${b.burn_usd_per_day}`,
      h("span", { class: b.exhausted ? "status bad" : "status" }, `$${b.forecast_usd}`),
    ]);
    const usage = t.usage_this_month_by_model.map((u) => [u.model, formatNumber(u.requests), formatNumber(u.errors), `$${u.cost_usd}`]);
    const personas = t.personas.map((p) => [p.name, p.display_name ?? "", p.model, p.memory ? "yes" : "no"]);
    into.replaceChildren(
      h(
        "article",
        { "aria-labelledby": "tenant-title" },
        h("h2", { id: "tenant-title" }, `Tenant ${t.name}`, t.display_name ? h("span", { class: "muted" }, ` (${t.display_name})`) : ""),
        h(
          "p",
          { class: "muted" },
          `keys: ${t.api_keys.map((k) => k.name).join(", ") || "none"}; namespaces: ${t.namespaces.join(", ") || "none"}; token issuers: ${t.jwt_issuers.map((i) => i.name).join(", ") || "none"}; priority ${t.priority}`,
        ),
        limits.length ? table("Rate limits", ["limit", "value"], limits, [1]) : "",
        budgets.length
          ? table("Budgets", ["budget", "scope", "spent", "remaining", "burn per day", "forecast to the period's end"], budgets, [2, 3, 4, 5])
          : h("p", {}, "No budget."),
        usage.length ? table("This month by model", ["model", "requests", "errors", "spend"], usage, [1, 2, 3]) : "",
        personas.length ? table("Personas", ["persona", "display name", "model", "memory"], personas) : "",
        conditionsTable(`Tenant ${t.name}`, t.conditions, t.conditions_error),
        memberList(members),
        h(
          "div",
          { id: "tenant-keys" },
          ...(!mayUpdate
            ? []
            : t.changeable
              ? [
                  ...keys(t, refresh),
                  notice ?? "",
                  // Rate limits are a platform admin's: a tenant's own admins must not lift theirs.
                  session.creates ? limitsForm(t, refresh) : "",
                  budgetForm(t, refresh),
                ]
              : [h("p", { class: "muted", "data-field": "read-only" }, `Read only. ${t.read_only_reason ?? ""}`)]),
          // Budget objects are objects of their own: whoever may create them, whoever defined the Tenant.
          ...(mayUpdate && session.creates ? budgetObjects(t, refresh) : []),
        ),
      ),
    );
  } catch (error) {
    into.replaceChildren(errorBox(error));
  }
}

/** Who may read or change the tenant, from the roles file or the cluster's RBAC. */
function memberList(members: TenantMembers): HTMLElement {
  const rows = members.members.map((m) => [m.access, m.kind, m.name, m.through]);
  return h(
    "div",
    {},
    rows.length ? table(`Members of ${members.tenant} (from ${members.source})`, ["access", "kind", "name", "through"], rows) : h("p", { class: "muted" }, `No members in ${members.source}.`),
    members.note ? h("p", { class: "muted", "data-field": "members-note" }, members.note) : "",
  );
}
