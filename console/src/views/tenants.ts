// Tenants: every tenant with its keys, budgets, personas and spend this month; one tenant's
// detail with its limits, budgets (spent, remaining, burn rate and forecast to the period's end),
// usage by model and personas, from /admin/v1/tenants. Admins create tenants, and add and revoke
// the keys of tenants the console created (the buttons are there only for whoever may).

import { get, type NewKey, type Page, send, type TenantDetail, type TenantSummary } from "../api";
import { errorBox, formatNumber, h, table } from "../dom";
import { type Session, mayChange } from "../session";
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

/** The form for a new tenant; `created` is called with its name once it is served. */
function newTenant(created: (name: string) => void): HTMLElement {
  const name = h("input", { id: "new-tenant-name", required: "", pattern: "[a-z0-9]([-a-z0-9]*[a-z0-9])?", maxlength: "63" });
  const display = h("input", { id: "new-tenant-display", maxlength: "128" });
  const status = h("p", { "aria-live": "polite" });
  const form = h(
    "form",
    { class: "filters", "aria-label": "New tenant" },
    h("label", { for: "new-tenant-name" }, "New tenant"),
    name,
    h("label", { for: "new-tenant-display" }, "display name"),
    display,
    h("button", { type: "submit" }, "Create tenant"),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await send("POST", "/admin/v1/tenants", { name: name.value, display_name: display.value || null });
      status.replaceChildren();
      created(name.value);
      form.reset();
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  });
  return form;
}

/** Keys of a tenant the console created: add one (its value shown this once), revoke one. */
function keys(t: TenantDetail, refresh: (notice?: HTMLElement) => void): HTMLElement[] {
  const rows = t.api_keys.map((key) => {
    const revoke = h("button", { type: "button", "data-revoke": key.name }, `Revoke ${key.name}`);
    revoke.addEventListener("click", async () => {
      try {
        await send("DELETE", `/admin/v1/tenants/${encodeURIComponent(t.name)}/keys/${encodeURIComponent(key.name)}`);
        refresh();
      } catch (error) {
        revoke.replaceWith(errorBox(error));
      }
    });
    return [key.name, revoke];
  });
  const name = h("input", { id: "new-key-name", required: "", pattern: "[a-z0-9]([-a-z0-9]*[a-z0-9])?", maxlength: "63" });
  const shown = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { class: "filters", "aria-label": "New key" },
    h("label", { for: "new-key-name" }, "New key named"),
    name,
    h("button", { type: "submit" }, "Add key"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const created = await send<NewKey>("POST", `/admin/v1/tenants/${encodeURIComponent(t.name)}/keys`, { name: name.value });
      // The tenant again, with the new key's value under its keys: this once.
      refresh(
        h(
          "p",
          { class: "new-key", role: "status" },
          `Key ${created?.name}: `,
          h("code", { "data-field": "new-key" }, created?.key ?? ""),
          " (copy it now: it is not shown again)",
        ),
      );
    } catch (error) {
      shown.replaceChildren(errorBox(error));
    }
  });
  return [table("Keys", ["key", "action"], rows), form, shown];
}

async function show(name: string, into: HTMLElement, session: Session, notice?: HTMLElement): Promise<void> {
  try {
    const [t, mayUpdate] = await Promise.all([get<TenantDetail>(`/admin/v1/tenants/${encodeURIComponent(name)}`), mayChange(session, name)]);
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
        h(
          "div",
          { id: "tenant-keys" },
          ...(!mayUpdate
            ? []
            : t.changeable
              ? [...keys(t, (next) => void show(name, into, session, next)), notice ?? ""]
              : [h("p", { class: "muted", "data-field": "read-only" }, `Read only. ${t.read_only_reason ?? ""}`)]),
        ),
      ),
    );
  } catch (error) {
    into.replaceChildren(errorBox(error));
  }
}
