// Settings: who is signed in and with which roles, the served config, and the theme.

import { adminToken, get, type ConfigState, type Person } from "../api";
import { h } from "../dom";
import { THEMES, currentTheme, setTheme } from "../theme";
import type { Session } from "../session";
import type { View } from "./view";

export function settings(session: Session): View {
  const who = h("dd", { "data-field": "signed-in" }, "…");
  const roles = h("dd", { "data-field": "roles" }, "…");
  const version = h("dd", { "data-field": "config" }, "…");
  const theme = h("select", { id: "theme" }, ...THEMES.map((name) => h("option", {}, name)));
  theme.value = currentTheme();
  theme.addEventListener("change", () => setTheme(theme.value));
  const element = h(
    "section",
    { "aria-labelledby": "settings-title" },
    h("h1", { id: "settings-title" }, "Settings"),
    h("dl", { class: "fields" }, h("dt", {}, "signed in as"), who, h("dt", {}, "roles"), roles, h("dt", {}, "config version"), version),
    h("p", {}, h("label", { for: "theme" }, "Theme "), theme),
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
    } catch {
      version.textContent = "–";
    }
  })();
  return { element, stop: () => {} };
}
