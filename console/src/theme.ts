// Light, dark, or whatever the system prefers: kept in this browser's local storage.

const KEY = "switchboard.theme";
export const THEMES = ["system", "light", "dark"] as const;

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
  if (theme === "system") document.documentElement.removeAttribute("data-theme");
  else document.documentElement.setAttribute("data-theme", theme);
}
