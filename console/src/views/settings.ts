// Settings: who is signed in and with which roles, the served config, the gateway's version and
// flags (the tracing link template among them), and the theme.

import { adminToken, get, type ConfigState, type Person } from "../api";
import { h, table } from "../dom";
import { THEMES, currentTheme, setTheme } from "../theme";
import type { Session } from "../session";
import type { View } from "./view";

export function settings(session: Session): View {
  const who = h("dd", { "data-field": "signed-in" }, "…");
  const roles = h("dd", { "data-field": "roles" }, "…");
  const version = h("dd", { "data-field": "config" }, "…");
  const gateway = h("dd", { "data-field": "gateway-version" }, "…");
  const flags = h("div", {});
  const theme = h("select", { id: "theme" }, ...THEMES.map((name) => h("option", {}, name)));
  theme.value = currentTheme();
  theme.addEventListener("change", () => setTheme(theme.value));
  const element = h(
    "section",
    { "aria-labelledby": "settings-title" },
    h("h1", { id: "settings-title" }, "Settings"),
    h("dl", { class: "fields" }, h("dt", {}, "signed in as"), who, h("dt", {}, "roles"), roles, h("dt", {}, "config version"), version, h("dt", {}, "gateway version"), gateway),
    h("p", {}, h("label", { for: "theme" }, "Theme "), theme),
    flags,
  );
  void (async () => {
    try {
      const person = await get<Person>("/auth/me");
      who.textContent = person.email ?? person.subject;
      const r = person.roles;
      const names = [r.platform_admin && "platform admin", r.viewer && "viewer", ...r.tenant_admin.map((t) => `tenant admin of ${t}`)];
      roles.textContent = names.filter(Boolean).join(", ") || "none";
    } catch {
      who.textContent = session.person ? session.name : adminToken() ? "the admin token" : "nobody";
      roles.textContent = adminToken() ? "platform admin (the admin token)" : "none";
    }
    try {
      const config = await get<ConfigState>("/admin/v1/config");
      version.textContent = `${config.version.slice(0, 16)}${config.in_sync ? "" : " (not in sync)"}`;
      gateway.textContent = config.gateway.version;
      const rows = Object.entries(config.gateway.flags).map(([flag, value]) => [`--${flag}`, value === null ? "–" : String(value)]);
      flags.replaceChildren(table("The gateway's flags", ["flag", "value"], rows));
    } catch {
      version.textContent = "–";
      gateway.textContent = "–";
    }
  })();
  return { element, stop: () => {} };
}
