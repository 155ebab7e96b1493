// Changes to tenants, for whoever may make them: a new tenant, its keys (a new key's value shown
// this once), its rate limits, its default budget and Budget objects for it. Each form sends one admin API request and
// shows the API's refusal (a role missing, the API server's RBAC, a tenant kept in Git) as it is.

import { type Budget, type NewKey, send, type TenantDetail } from "../api";
import { errorBox, h, table } from "../dom";

type Refresh = (notice?: HTMLElement) => void;

const tenantPath = (t: TenantDetail, rest: string) => `/admin/v1/tenants/${encodeURIComponent(t.name)}/${rest}`;

/** A form that sends `change` on submit and shows a refusal under it. */
function changeForm(label: string, fields: (HTMLElement | string)[], submit: string, change: () => Promise<void>): HTMLFormElement {
  const status = h("p", { "aria-live": "polite" });
  const form = h("form", { class: "filters", "aria-label": label }, ...fields, h("button", { type: "submit" }, submit), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await change();
      status.replaceChildren();
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  });
  return form;
}

/** The form for a new tenant; `created` is called with its name once it is served. */
export function newTenant(created: (name: string) => void): HTMLElement {
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
export function keys(t: TenantDetail, refresh: Refresh): HTMLElement[] {
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

/** The tenant's rate limits (`spec.rateLimits`): empty for none. */
export function limitsForm(t: TenantDetail, refresh: Refresh): HTMLElement {
  const limits: [string, string][] = [
    ["requestsPerMinute", "requests per minute"],
    ["tokensPerMinute", "tokens per minute"],
    ["maxConcurrent", "requests at once"],
  ];
  const inputs = limits.map(([field]) => {
    const value = t.rate_limits[field];
    return h("input", { id: `limit-${field}`, type: "number", min: "1", max: field === "maxConcurrent" ? "1000000" : "60000000", value: value === undefined ? "" : String(value) });
  });
  const fields = limits.flatMap(([field, label], i) => [h("label", { for: `limit-${field}` }, label), inputs[i]]);
  return changeForm("Rate limits", fields, "Set limits", async () => {
    const body: Record<string, number> = {};
    limits.forEach(([field], i) => {
      if (inputs[i].value !== "") body[field] = Number(inputs[i].value);
    });
    await send("PUT", tenantPath(t, "rate_limits"), body);
    refresh();
  });
}

/** The tenant's default budget (`spec.defaultBudget`), which applies unless a Budget targets it. */
export function budgetForm(t: TenantDetail, refresh: Refresh): HTMLElement {
  const current: Budget | undefined = t.budgets.find((b) => b.name === `${t.name}/default`);
  const limit = h("input", { id: "budget-limit", required: "", pattern: "[0-9]{1,9}([.][0-9]{1,9})?", value: current?.limit_usd ?? "" });
  const choice = (id: string, options: string[], chosen?: string) =>
    h("select", { id }, ...options.map((o) => h("option", o === chosen ? { value: o, selected: "" } : { value: o }, o)));
  const period = choice("budget-period", ["Monthly", "Weekly", "Daily", "Total"], current?.period);
  const enforcement = choice("budget-enforcement", ["Hard", "Soft"], current?.enforcement);
  const fields = [
    h("label", { for: "budget-limit" }, "Default budget, USD"),
    limit,
    h("label", { for: "budget-period" }, "per"),
    period,
    h("label", { for: "budget-enforcement" }, "enforced"),
    enforcement,
  ];
  const form = changeForm("Default budget", fields, "Set budget", async () => {
    await send("PUT", tenantPath(t, "default_budget"), { limitUsd: limit.value, period: period.value, enforcement: enforcement.value });
    refresh();
  });
  if (current) {
    const remove = h("button", { type: "button" }, "Remove budget");
    remove.addEventListener("click", async () => {
      try {
        await send("DELETE", tenantPath(t, "default_budget"));
        refresh();
      } catch (error) {
        remove.replaceWith(errorBox(error));
      }
    });
    form.append(remove);
  }
  return form;
}

/** Budget objects for the tenant, its personas or its keys: a new one, or one removed. */
export function budgetObjects(t: TenantDetail, refresh: Refresh): HTMLElement[] {
  const removable = t.budgets.filter((b) => b.name !== `${t.name}/default`);
  const removes = removable.map((b) => {
    const remove = h("button", { type: "button", "data-remove-budget": b.name }, `Remove ${b.name}`);
    remove.addEventListener("click", async () => {
      try {
        await send("DELETE", `/admin/v1/budgets/${encodeURIComponent(b.name)}`);
        refresh();
      } catch (error) {
        remove.replaceWith(errorBox(error));
      }
    });
    return remove;
  });
  const name = h("input", { id: "budget-name", required: "", pattern: "[a-z0-9]([-a-z0-9]*[a-z0-9])?", maxlength: "63" });
  const kinds = h("select", { id: "budget-kind" }, ...["Tenant", "Persona", "ApiKey"].map((k) => h("option", { value: k }, k)));
  const target = h("input", { id: "budget-target", maxlength: "253" });
  const limit = h("input", { id: "budget-object-limit", required: "", pattern: "[0-9]{1,9}([.][0-9]{1,9})?" });
  const period = h("select", { id: "budget-object-period" }, ...["Monthly", "Weekly", "Daily", "Total"].map((p) => h("option", { value: p }, p)));
  const fields = [
    h("label", { for: "budget-name" }, "New Budget named"),
    name,
    h("label", { for: "budget-kind" }, "for the"),
    kinds,
    h("label", { for: "budget-target" }, "persona or key"),
    target,
    h("label", { for: "budget-object-limit" }, "USD"),
    limit,
    h("label", { for: "budget-object-period" }, "each"),
    period,
  ];
  const form = changeForm("New Budget", fields, "Create Budget", async () => {
    const scope: Record<string, string> = { kind: kinds.value, tenant: t.name };
    if (kinds.value === "Persona") scope["persona"] = target.value;
    if (kinds.value === "ApiKey") scope["apiKey"] = target.value;
    await send("PUT", `/admin/v1/budgets/${encodeURIComponent(name.value)}`, { scope, limitUsd: limit.value, period: period.value });
    refresh();
  });
  return [...(removes.length ? [h("p", {}, ...removes)] : []), form];
}
