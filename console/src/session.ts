// Who is signed in, and whose data they may read: a person signed in with the identity provider
// (their roles from the gateway), or the admin token (everything). A tenant admin's views are
// their tenants' only, as the admin API allows.

import { Unauthorized, adminToken, get, type Person } from "./api";

export interface Session {
  /** How the console names them: an e-mail, a subject, or "admin token". */
  name: string;
  /** The tenants they may read; `null`: every tenant (platform admin, viewer, the admin token). */
  tenants: string[] | null;
  /** Whether they may create tenants (a platform admin, RBAC's `create tenants`, the admin token). */
  creates: boolean;
  /** Whether they sign out of the identity provider's session (else: forget the token). */
  person: boolean;
}

/** The session, or why there is none (the API's reason). */
export async function signedIn(): Promise<Session | { reason: string }> {
  try {
    const person = await get<Person>("/auth/me");
    const { platform_admin, viewer, tenant_admin } = person.roles;
    const tenants = platform_admin || viewer ? null : tenant_admin;
    return { name: person.email ?? person.subject, tenants, creates: person.may_create_tenants, person: true };
  } catch {
    // Nobody signed in with the identity provider (or sign-in is off): the admin token, if any.
  }
  try {
    await get("/admin/v1/config");
    return { name: adminToken() ? "admin token" : "signed in", tenants: null, creates: true, person: false };
  } catch (error) {
    if (error instanceof Unauthorized) return { reason: error.message };
    throw error;
  }
}

/** The `tenant` parameter for a session's queries: its first tenant when it may read only some. */
export function tenantParam(session: Session): string | undefined {
  return session.tenants?.[0];
}

/** Whether the session may change `tenant` (its keys), as the gateway answers for a person (their
 * roles, or the cluster's RBAC); the admin token may. */
export async function mayChange(session: Session, tenant: string): Promise<boolean> {
  if (!session.person) return true;
  return (await get<{ update: boolean }>("/auth/access", { tenant })).update;
}
