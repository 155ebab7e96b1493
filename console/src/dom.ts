// Building the page from data: elements with text set as text (never as HTML), so nothing a
// tenant, a model name or an error message holds can run in the console.

type Child = Node | string | number | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** A table with a caption, column headers and rows of cells. */
export function table(caption: string, headers: string[], rows: Child[][], numeric: number[] = []): HTMLTableElement {
  const cell = (tag: "th" | "td", content: Child, i: number) =>
    h(tag, numeric.includes(i) ? { class: "num" } : {}, content);
  return h(
    "table",
    {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, ...headers.map((header, i) => cell("th", header, i)))),
    h("tbody", {}, ...rows.map((row) => h("tr", {}, ...row.map((content, i) => cell("td", content, i))))),
  );
}

export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19);
}

export function formatNumber(n: number): string {
  return n.toLocaleString("en-US");
}

export function formatMs(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? "–" : `${Math.round(ms)} ms`;
}

export function errorBox(error: unknown): HTMLElement {
  const text = error instanceof Error ? error.message : String(error);
  return h("p", { class: "error", role: "alert" }, text);
}
