// The conditions the operator wrote on a resource, as `kubectl describe` shows them: shown in a
// cluster (standalone there are none, and nothing is shown).

import type { Condition } from "../api";
import { errorBox, h, table } from "../dom";

/** Conditions that are bad news when true (a Budget's); the others are good news when true. */
const WARNINGS = new Set(["Exhausted", "ThresholdReached"]);

/** A table of `of`'s conditions, or nothing standalone; `error`: why they could not be read. */
export function conditionsTable(of: string, conditions: Condition[] | null, error: string | null = null): HTMLElement | string {
  if (error) return errorBox(new Error(`Conditions unavailable: ${error}`));
  if (!conditions) return "";
  if (!conditions.length) return h("p", { class: "muted" }, `No conditions on ${of} yet.`);
  const rows = conditions.map((c) => [
    c.type,
    h("span", { class: (WARNINGS.has(c.type) ? c.status === "True" : c.status !== "True") ? "status bad" : "status" }, c.status),
    c.reason ?? "",
    `${c.message ?? ""}${c.stale ? " (before its latest change)" : ""}`,
    c.last_transition_time ?? "–",
  ]);
  return table(`Conditions of ${of}`, ["condition", "status", "reason", "message", "since"], rows);
}

/** `Ready`'s status in a word, for a list: "–" standalone. */
export function readiness(conditions: Condition[] | null): HTMLElement | string {
  if (!conditions) return "–";
  const ready = conditions.find((c) => c.type === "Ready");
  return h("span", { class: ready?.status === "True" ? "status" : "status bad", title: ready?.message ?? "" }, ready ? ready.status : "unknown");
}
