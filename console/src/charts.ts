// Time-series charts (uPlot, on canvas), one colour per line from a palette readable in the light
// and the dark theme.

import uPlot from "uplot";

const PALETTE = ["#3b82f6", "#ef4444", "#10b981", "#f59e0b", "#8b5cf6", "#ec4899", "#14b8a6", "#64748b"];

export type Line = [label: string, values: (number | null)[]];

/** A chart of `lines` over the times `times_ms` (ms since the epoch) across `range_ms` (the
 * range asked for, so that a few points are placed in it, not stretched over it), sized to its
 * container. */
export function chart(title: string, times_ms: number[], lines: Line[], range_ms: [number, number]): HTMLElement {
  const figure = document.createElement("figure");
  figure.className = "chart";
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  figure.append(caption);
  const data: uPlot.AlignedData = [times_ms.map((t) => t / 1000), ...lines.map(([, values]) => values)];
  const options: uPlot.Options = {
    width: 560,
    height: 220,
    scales: { x: { time: true, range: [range_ms[0] / 1000, range_ms[1] / 1000] } },
    series: [{}, ...lines.map(([label], i) => ({ label, stroke: PALETTE[i % PALETTE.length]!, width: 2 }))],
    axes: [axis(), { ...axis(), values: (_, splits) => splits.map(tick) }],
  };
  // Drawn once the figure is in the page, at its width, in the theme's colours.
  requestAnimationFrame(() => {
    options.width = Math.max(320, Math.min(figure.clientWidth || 560, 1200));
    new uPlot(options, data, figure);
  });
  return figure;
}

/** An axis in the theme's colours (a canvas knows no CSS variables: they are read when drawn). */
function axis(): uPlot.Axis {
  const style = getComputedStyle(document.documentElement);
  const text = style.getPropertyValue("--muted").trim() || "#5b6472";
  const line = style.getPropertyValue("--line").trim() || "#d7dce3";
  return { stroke: text, grid: { stroke: line, width: 1 }, ticks: { stroke: line, width: 1 } };
}

/** A y tick readable at any scale: 3 significant digits, tiny amounts (fractions of a cent) in
 * scientific notation. */
function tick(value: number): string {
  if (value === 0) return "0";
  return Math.abs(value) < 0.01 ? value.toExponential(1) : String(Number(value.toPrecision(3)));
}
