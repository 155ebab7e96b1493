// The admin API, as the console reads it: the session cookie of a person signed in with the
// identity provider, or the admin token (kept in this tab's session storage only).

const TOKEN_KEY = "switchboard.adminToken";

/** The API answered 401: nobody is signed in, or the token is wrong. */
export class Unauthorized extends Error {}

export function adminToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setAdminToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export type Params = Record<string, string | number | undefined>;

/** GETs `path` of the gateway itself (never another host) and parses its JSON. */
export async function get<T>(path: string, params: Params = {}): Promise<T> {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== "") url.searchParams.set(name, String(value));
  }
  const headers: Record<string, string> = { Accept: "application/json" };
  const token = adminToken();
  if (token) headers["Authorization"] = `Bearer ${token}`;
  const response = await fetch(url, { headers, credentials: "same-origin" });
  if (response.status === 401) throw new Unauthorized(await message(response));
  if (!response.ok) throw new Error(await message(response));
  return (await response.json()) as T;
}

/** Sends a change (`POST` with a JSON body, or `DELETE`) to `path`; its JSON answer, if any. */
export async function send<T>(method: "POST" | "PUT" | "DELETE", path: string, body?: unknown): Promise<T | null> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const token = adminToken();
  if (token) headers["Authorization"] = `Bearer ${token}`;
  const init: RequestInit = { method, headers, credentials: "same-origin" };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(new URL(path, window.location.origin), init);
  if (response.status === 401) throw new Unauthorized(await message(response));
  if (!response.ok) throw new Error(await message(response));
  return response.status === 204 ? null : ((await response.json()) as T);
}

async function message(response: Response): Promise<string> {
  try {
    const body = (await response.json()) as { error?: { message?: string } };
    return body.error?.message ?? `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

export interface Person {
  subject: string;
  email: string | null;
  roles: { platform_admin: boolean; viewer: boolean; tenant_admin: string[] };
  may_create_tenants: boolean;
}

export interface Latency {
  mean: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface StatsPoint {
  t_ms?: number;
  requests: number;
  errors: number;
  server_errors: number;
  refused: number;
  cache_hits: number;
  latency_ms: Latency;
  ttft_ms: Latency | null;
  input_tokens: number;
  output_tokens: number;
  cost_usd: string;
}

export interface Series {
  key: string | null;
  total: StatsPoint;
  points: StatsPoint[];
}

export interface Stats {
  since_ms: number;
  until_ms: number;
  bucket: string;
  group_by: string;
  series: Series[];
}

export interface Attempt {
  backend: string;
  outcome: string;
  at_ms?: number;
  ms: number;
}

export interface GuardrailHit {
  on: string;
  kind: string;
  action: string;
  count: number;
}

export interface RequestRow {
  id: string;
  created_at_ms: number;
  tenant: string;
  api_key: string;
  subject: string | null;
  persona: string | null;
  model: string;
  route: string;
  backend: string;
  provider: string;
  endpoint: string;
  stream: boolean;
  status: number;
  error_code: string | null;
  attempts: Attempt[];
  latency_ms: number;
  ttft_ms: number | null;
  queue_ms: number | null;
  input_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  output_tokens: number;
  cost_usd: string;
  cache_hit: boolean;
  trace_id: string | null;
  guardrails: GuardrailHit[];
}

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

export interface Backend {
  name: string;
  provider: string;
  address: string | null;
  weight: number;
  priority: number;
  breaker: string;
  healthy: boolean;
  last_5_minutes: {
    attempts: number;
    failures: number;
    error_rate: number;
    mean_latency_ms: number | null;
    max_latency_ms: number;
  };
}

/** A condition the operator wrote on a resource (in a cluster). */
export interface Condition {
  type: string;
  status: string;
  reason: string | null;
  message: string | null;
  last_transition_time: string | null;
  /** Written before the resource's latest change was seen. */
  stale: boolean;
}

export interface Route {
  name: string;
  /** `null` standalone. */
  conditions: Condition[] | null;
  retries: number;
  timeout_ms: number;
  healthy_backends: number;
  backends: Backend[];
  models: { name: string; upstream_model: string; usd_per_million: Record<string, string> }[];
  last_15_minutes: { requests: number; errors: number; error_rate: number; latency_ms: Latency } | null;
}

/** Who has access to a tenant, and through what. */
export interface TenantMembers {
  tenant: string;
  source: string;
  members: { access: "change" | "read"; kind: string; name: string; through: string }[];
  note: string | null;
}

export interface Persona {
  name: string;
  tenant: string;
  display_name: string | null;
  model: string;
  memory: { enabled: boolean; extraction: string; maxMemoriesPerSubject: number; retentionDays: number };
  shared_with_tenants: string[];
  relationships: string[];
  memory_count: number;
  mood: { valence: number; arousal: number; description: string } | null;
  interactions: number;
  last_interaction_ms: number | null;
  conditions: Condition[] | null;
}

/** A list with the operator's conditions, and why they could not be read. */
export interface WithConditions<T> {
  data: T[];
  conditions_error: string | null;
}

export interface ConfigState {
  version: string;
  in_sync: boolean;
  ready: boolean;
  loaded_at_ms: number | null;
  last_error: string | null;
  tenants: number;
  routes: number;
  personas: number;
  budgets: number;
  trace_url_template: string | null;
  /** The gateway's version and the flags it runs with (never a secret). */
  gateway: { version: string; flags: Record<string, string | number | boolean | null> };
}

export interface Usage {
  requests: number;
  errors: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: string;
}

export interface TenantSummary {
  name: string;
  display_name: string | null;
  api_keys: { name: string }[];
  budgets_count: number;
  personas_count: number;
  namespaces: string[];
  /** `null` until the tenant's first request this month. */
  usage_this_month: Usage | null;
}

export interface Budget {
  name: string;
  tenant: string;
  scope: string;
  persona: string | null;
  api_key: string | null;
  period: string;
  enforcement: string;
  limit_usd: string;
  spent_usd: string;
  remaining_usd: string;
  burn_usd_per_day: string;
  forecast_usd: string | null;
  period_start_ms: number;
  period_end_ms: number | null;
  exhausted: boolean;
}

export interface NewKey {
  tenant: string;
  name: string;
  key: string;
}

export interface TenantDetail extends TenantSummary {
  /** Whether the admin API may change it (a tenant the console created, standalone). */
  changeable: boolean;
  /** Why it may not be changed here (kept in Git, defined in another file). */
  read_only_reason: string | null;
  conditions: Condition[] | null;
  conditions_error: string | null;
  priority: number;
  rate_limits: Record<string, number>;
  models: string[];
  budgets: Budget[];
  personas: { name: string; display_name: string | null; model: string; memory: boolean }[];
  jwt_issuers: { name: string; issuer: string }[];
  usage_this_month_by_model: (Usage & { model: string })[];
}
