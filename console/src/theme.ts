// Light, dark, or whatever the system prefers (followed as it changes): kept in this browser's
// local storage, applied as `data-theme` on the page, which the stylesheet's colours follow.

const KEY = "switchboard.theme";
export const THEMES = ["system", "light", "dark"] as const;
const SYSTEM_DARK = window.matchMedia("(prefers-color-scheme: dark)");

export function currentTheme(): string {
  return localStorage.getItem(KEY) ?? "system";
}

export function setTheme(theme: string): void {
  if (theme === "system") localStorage.removeItem(KEY);
  else localStorage.setItem(KEY, theme);
  applyTheme();
}

export function applyTheme(): void {
  const theme = currentTheme();
  const dark = theme === "dark" || (theme === "system" && SYSTEM_DARK.matches);
  document.documentElement.setAttribute("data-theme", dark ? "dark" : "light");
}

SYSTEM_DARK.addEventListener("change", applyTheme);
