// The console's shell: who is signed in (session.ts), the sign-in form when nobody is, and the
// view the address names (#/ the dashboard, #/gateway, #/requests the traces, #/costs, #/tenants,
// #/settings).

import { setAdminToken } from "./api";
import { errorBox, h } from "./dom";
import { type Session, signedIn } from "./session";
import { applyTheme } from "./theme";
import { costs } from "./views/costs";
import { dashboard } from "./views/dashboard";
import { gateway } from "./views/gateway";
import { requests } from "./views/requests";
import { settings } from "./views/settings";
import { tenants } from "./views/tenants";
import type { View } from "./views/view";

const VIEWS: Record<string, (session: Session) => View> = {
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
  current = undefined;
  const route = VIEWS[window.location.hash] ? window.location.hash : "#/";
  for (const link of document.querySelectorAll<HTMLAnchorElement>("nav a")) {
    if (link.getAttribute("href") === route) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  let session: Session | { reason: string };
  try {
    session = await signedIn();
  } catch (error) {
    main().replaceChildren(errorBox(error));
    return;
  }
  who("reason" in session ? null : session);
  if ("reason" in session) {
    main().replaceChildren(signIn(session.reason));
    return;
  }
  current = VIEWS[route]!(session);
  main().replaceChildren(current.element);
}

/** Who is signed in, with a way out, in the header. */
function who(session: Session | null): void {
  const slot = document.getElementById("who") as HTMLElement;
  if (!session) {
    slot.replaceChildren();
    return;
  }
  const out = h("button", { type: "button" }, "Sign out");
  out.addEventListener("click", async () => {
    setAdminToken(null);
    if (session.person) await fetch("/auth/logout", { method: "POST", credentials: "same-origin" });
    window.location.reload();
  });
  slot.replaceChildren(h("span", { "data-field": "who" }, session.name), out);
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
    void show();
  });
  return form;
}

applyTheme();
window.addEventListener("hashchange", () => void show());
void show();
