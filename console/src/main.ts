// The console's shell: who is signed in, the sign-in form when nobody is, and the view the
// address names (#/ the dashboard, #/gateway, #/requests the traces, #/costs, #/tenants,
// #/settings).

import { Unauthorized, adminToken, get, setAdminToken, type Person } from "./api";
import { errorBox, h } from "./dom";
import { applyTheme } from "./theme";
import { costs } from "./views/costs";
import { dashboard } from "./views/dashboard";
import { gateway } from "./views/gateway";
import { requests } from "./views/requests";
import { settings } from "./views/settings";
import { tenants } from "./views/tenants";
import type { View } from "./views/view";

const VIEWS: Record<string, () => View> = {
  "#/": dashboard,
  "#/gateway": gateway,
  "#/requests": requests,
  "#/costs": costs,
  "#/tenants": tenants,
  "#/settings": settings,
};

let current: View | undefined;

function main(): HTMLElement {
  return document.getElementById("main") as HTMLElement;
}

async function show(): Promise<void> {
  current?.stop();
  const make = VIEWS[window.location.hash] ?? dashboard;
  for (const link of document.querySelectorAll<HTMLAnchorElement>("nav a")) {
    const here = link.getAttribute("href") === (VIEWS[window.location.hash] ? window.location.hash : "#/");
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  try {
    await get("/admin/v1/config");
  } catch (error) {
    current = undefined;
    main().replaceChildren(error instanceof Unauthorized ? signIn(error.message) : errorBox(error));
    return;
  }
  current = make();
  main().replaceChildren(current.element);
}

/** Who is signed in: a person's e-mail, or the admin token. */
async function who(): Promise<void> {
  const slot = document.getElementById("who") as HTMLElement;
  let person: Person | null = null;
  try {
    person = await get<Person>("/auth/me");
  } catch {
    // Not signed in with the identity provider (or sign-in is off).
  }
  const out = h("button", { type: "button" }, "Sign out");
  out.addEventListener("click", async () => {
    setAdminToken(null);
    if (person) await fetch("/auth/logout", { method: "POST", credentials: "same-origin" });
    window.location.reload();
  });
  const name = person ? (person.email ?? person.subject) : adminToken() ? "admin token" : null;
  slot.replaceChildren(...(name ? [h("span", {}, name), out] : []));
}

function signIn(reason: string): HTMLElement {
  const token = h("input", { id: "admin-token", type: "password", autocomplete: "off", required: "" });
  const form = h(
    "form",
    { class: "sign-in" },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, reason),
    h("p", {}, h("a", { href: `/auth/login?return_to=${encodeURIComponent("/console/")}` }, "Sign in with your identity provider")),
    h("label", { for: "admin-token" }, "or the admin token"),
    token,
    h("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setAdminToken(token.value.trim());
    void who();
    void show();
  });
  return form;
}

applyTheme();
window.addEventListener("hashchange", () => void show());
void who();
void show();
