import { randomBytes } from "node:crypto";
import type { TTenantRole } from "@lyss/contracts";
import { type Kysely, sql } from "kysely";
import { z } from "zod";
import type { Database } from "../db/schema.ts";
import { ADMIN, createUser, type TestApp } from "./test-app.ts";

/**
 * The tenant isolation matrix: every management endpoint under /api/v1 with the least access it needs.
 * `isolation.test.ts` calls each entry as everyone who must be refused (tenant B's users, a user in no
 * tenant, and tenant A's lower roles) and once as the least role that must succeed. A route that is not
 * listed here (nor in `EXEMPT_OPERATIONS`) fails that test, so a new route needs an entry.
 */

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** The least access a route needs: a platform administrator, or a role in the tenant it acts on. */
export type MinimumAccess = "platform_admin" | TTenantRole;

export interface Account {
  id: string;
  email: string;
  token: string;
}

export interface TenantFixture {
  id: string;
  name: string;
  slug: string;
  owner: Account;
  admin: Account;
  member: Account;
  /** A pending invitation of this tenant. */
  invitation: { id: string; email: string };
  /** An upstream channel of this tenant, with its (secret) upstream key. */
  channel: { id: string; name: string; apiKey: string };
  /** The member's access token (API key) in this tenant. */
  token: { id: string; name: string; key: string };
  /** A model with a price of this tenant's own. */
  priceModel?: string;
  /** An unread notification of this tenant addressed to its member. */
  notification?: { id: string; title: string };
}

export interface IsolationFixture {
  /** The platform administrator; also an owner of tenant A, which first-run setup created. */
  platformAdmin: Account;
  tenantA: TenantFixture;
  tenantB: TenantFixture;
  /** A signed-in user who belongs to no tenant. */
  outsider: Account;
  /** The upstream (OpenAI-compatible, ending in /v1) that the fixture's channels point at. */
  upstreamUrl: string;
  /** Text that belongs to tenant A alone: no answer to anyone outside tenant A may contain it. */
  secretsOfA: string[];
}

export interface MatrixEntry {
  method: HttpMethod;
  /** The route as OpenAPI spells it, with `{param}` placeholders. */
  route: string;
  /** Values for the route's placeholders: tenant A's resources. */
  params?: (fixture: IsolationFixture) => Record<string, string>;
  query?: (fixture: IsolationFixture) => Record<string, string>;
  /** A valid body: refusals must come from access checks, not from validation. */
  body?: (fixture: IsolationFixture) => unknown;
  minimum: MinimumAccess;
  /** Whether success changes stored data; by default every method but GET does. */
  writes?: boolean;
  /**
   * How the call reaches tenant A: `path` when the URL names one of A's resources, `header` when only
   * the X-Tenant-Id header picks A (without it the caller acts on their own tenant, which is allowed),
   * `none` for platform-wide routes.
   */
  target: "path" | "header" | "none";
}

const memberOfA = (fixture: IsolationFixture) => ({ id: fixture.tenantA.member.id });
const channelOfA = (fixture: IsolationFixture) => ({ id: fixture.tenantA.channel.id });
const tokenOfA = (fixture: IsolationFixture) => ({ id: fixture.tenantA.token.id });
const notificationOfA = (fixture: IsolationFixture) => ({ id: fixture.tenantA.notification?.id ?? "" });

export const ISOLATION_MATRIX: MatrixEntry[] = [
  // users (platform administrators)
  { method: "GET", route: "/api/v1/users", minimum: "platform_admin", target: "none" },
  {
    method: "POST",
    route: "/api/v1/users",
    body: () => ({ email: "new-user@isolation.example", name: "New User", password: "new-user-password" }),
    minimum: "platform_admin",
    target: "none",
  },
  { method: "GET", route: "/api/v1/users/{id}", params: memberOfA, minimum: "platform_admin", target: "path" },
  {
    method: "PATCH",
    route: "/api/v1/users/{id}",
    params: memberOfA,
    body: () => ({ name: "Renamed Member" }),
    minimum: "platform_admin",
    target: "path",
  },
  { method: "DELETE", route: "/api/v1/users/{id}", params: memberOfA, minimum: "platform_admin", target: "path" },
  {
    method: "POST",
    route: "/api/v1/users/{id}/reset-password",
    params: memberOfA,
    body: () => ({ password: "a-brand-new-password" }),
    minimum: "platform_admin",
    target: "path",
  },

  // tenants
  { method: "GET", route: "/api/v1/tenants", minimum: "member", target: "header" },
  { method: "POST", route: "/api/v1/tenants", body: () => ({ name: "Gamma" }), minimum: "platform_admin", target: "none" },
  { method: "GET", route: "/api/v1/tenants/{id}", params: (fixture) => ({ id: fixture.tenantA.id }), minimum: "member", target: "path" },
  {
    method: "PATCH",
    route: "/api/v1/tenants/{id}",
    params: (fixture) => ({ id: fixture.tenantA.id }),
    body: () => ({ name: "Renamed Tenant" }),
    minimum: "owner",
    target: "path",
  },
  {
    method: "DELETE",
    route: "/api/v1/tenants/{id}",
    params: (fixture) => ({ id: fixture.tenantA.id }),
    minimum: "platform_admin",
    target: "path",
  },

  // members and invitations of the active tenant
  { method: "GET", route: "/api/v1/members", minimum: "member", target: "header" },
  {
    method: "POST",
    route: "/api/v1/members",
    body: () => ({ email: "new-invitee@isolation.example", role: "member" }),
    minimum: "admin",
    target: "header",
  },
  {
    method: "PATCH",
    route: "/api/v1/members/{userId}",
    params: (fixture) => ({ userId: fixture.tenantA.member.id }),
    body: () => ({ role: "admin" }),
    minimum: "admin",
    target: "path",
  },
  {
    method: "DELETE",
    route: "/api/v1/members/{userId}",
    params: (fixture) => ({ userId: fixture.tenantA.member.id }),
    minimum: "admin",
    target: "path",
  },
  { method: "GET", route: "/api/v1/invitations", minimum: "admin", target: "header" },
  {
    method: "DELETE",
    route: "/api/v1/invitations/{id}",
    params: (fixture) => ({ id: fixture.tenantA.invitation.id }),
    minimum: "admin",
    target: "path",
  },

  // settings
  { method: "GET", route: "/api/v1/settings/platform", minimum: "platform_admin", target: "none" },
  {
    method: "PATCH",
    route: "/api/v1/settings/platform",
    body: () => ({ announcement: "Maintenance tonight" }),
    minimum: "platform_admin",
    target: "none",
  },
  { method: "GET", route: "/api/v1/settings/tenant", minimum: "member", target: "header" },
  { method: "PATCH", route: "/api/v1/settings/tenant", body: () => ({ time_zone: "Europe/Berlin" }), minimum: "admin", target: "header" },

  // audit
  { method: "GET", route: "/api/v1/audit-logs", minimum: "admin", target: "header" },
  {
    method: "GET",
    route: "/api/v1/platform/audit-logs",
    query: (fixture) => ({ tenant_id: fixture.tenantA.id }),
    minimum: "platform_admin",
    target: "none",
  },

  // providers and channels
  { method: "GET", route: "/api/v1/providers", minimum: "member", target: "header" },
  { method: "GET", route: "/api/v1/channels", minimum: "admin", target: "header" },
  {
    method: "POST",
    route: "/api/v1/channels",
    body: (fixture) => ({
      name: "New channel",
      provider: "openai",
      base_url: fixture.upstreamUrl,
      credentials: { api_key: "sk-new-channel" },
      models: ["gpt-4o-mini"],
    }),
    minimum: "admin",
    target: "header",
  },
  { method: "GET", route: "/api/v1/channels/{id}", params: channelOfA, minimum: "admin", target: "path" },
  { method: "GET", route: "/api/v1/channels/{id}/stats", params: channelOfA, minimum: "admin", target: "path" },
  {
    method: "PATCH",
    route: "/api/v1/channels/{id}",
    params: channelOfA,
    body: () => ({ name: "Renamed channel" }),
    minimum: "admin",
    target: "path",
  },
  { method: "DELETE", route: "/api/v1/channels/{id}", params: channelOfA, minimum: "admin", target: "path" },
  {
    method: "POST",
    route: "/api/v1/channels/{id}/test",
    params: channelOfA,
    body: () => ({ model: "gpt-4o-mini" }),
    minimum: "admin",
    target: "path",
    writes: false,
  },
  { method: "POST", route: "/api/v1/channels/{id}/sync-models", params: channelOfA, body: () => ({}), minimum: "admin", target: "path" },

  // access tokens: members manage their own
  { method: "GET", route: "/api/v1/tokens", minimum: "member", target: "header" },
  { method: "POST", route: "/api/v1/tokens", body: () => ({ name: "New key" }), minimum: "member", target: "header" },
  { method: "GET", route: "/api/v1/tokens/{id}", params: tokenOfA, minimum: "member", target: "path" },
  {
    method: "PATCH",
    route: "/api/v1/tokens/{id}",
    params: tokenOfA,
    body: () => ({ name: "Renamed key" }),
    minimum: "member",
    target: "path",
  },
  { method: "DELETE", route: "/api/v1/tokens/{id}", params: tokenOfA, minimum: "member", target: "path" },

  // usage
  { method: "GET", route: "/api/v1/usage/logs", minimum: "member", target: "header" },
  { method: "GET", route: "/api/v1/usage/timeseries", minimum: "member", target: "header" },
  { method: "GET", route: "/api/v1/usage/top", query: () => ({ dimension: "user" }), minimum: "member", target: "header" },

  // prices
  { method: "GET", route: "/api/v1/prices", minimum: "member", target: "header" },
  {
    method: "PUT",
    route: "/api/v1/prices",
    body: () => ({ scope: "tenant", model: "isolation-model", input_per_mtok: 5, output_per_mtok: 5 }),
    minimum: "owner",
    target: "header",
  },
  {
    method: "DELETE",
    route: "/api/v1/prices",
    query: (fixture) => ({ scope: "tenant", model: fixture.tenantA.priceModel ?? "" }),
    minimum: "owner",
    target: "header",
  },

  // notifications: each user reads their own; administrators manage the webhook
  { method: "GET", route: "/api/v1/notifications", minimum: "member", target: "header" },
  {
    method: "POST",
    route: "/api/v1/notifications/{id}/read",
    params: notificationOfA,
    body: () => ({}),
    minimum: "member",
    target: "path",
  },
  { method: "POST", route: "/api/v1/notifications/read-all", body: () => ({}), minimum: "member", target: "header" },
  { method: "GET", route: "/api/v1/notifications/webhook", minimum: "admin", target: "header" },
  {
    method: "POST",
    route: "/api/v1/notifications/webhook/test",
    body: () => ({}),
    minimum: "admin",
    target: "header",
    writes: false,
  },
];

/**
 * Operations under /api/v1 that the matrix leaves out: public sign-in and first-run routes, and routes
 * that act only on the caller's own account.
 */
export const EXEMPT_OPERATIONS: readonly string[] = [
  "GET /api/v1/auth/setup",
  "POST /api/v1/auth/setup",
  "POST /api/v1/auth/login",
  "POST /api/v1/auth/refresh",
  "POST /api/v1/auth/accept-invite",
  "GET /api/v1/auth/me",
  "PATCH /api/v1/auth/me",
  "POST /api/v1/auth/logout",
  "POST /api/v1/auth/password",
];

export const operationKey = (method: string, route: string) => `${method.toUpperCase()} ${route}`;

/** Fills `{param}` placeholders and appends the query. */
export function urlOf(route: string, params: Record<string, string> = {}, query: Record<string, string> = {}): string {
  const path = route.replace(/\{(\w+)\}/g, (_match, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`no value for {${name}} in ${route}`);
    return encodeURIComponent(value);
  });
  const search = new URLSearchParams(query).toString();
  return search ? `${path}?${search}` : path;
}

export function entryUrl(entry: MatrixEntry, fixture: IsolationFixture): string {
  return urlOf(entry.route, entry.params?.(fixture), entry.query?.(fixture));
}

export const writesOf = (entry: MatrixEntry) => entry.writes ?? entry.method !== "GET";

/** The account of the least role that may call the entry, acting in tenant A. */
export function minimumCaller(entry: MatrixEntry, fixture: IsolationFixture): Account {
  if (entry.minimum === "platform_admin") return fixture.platformAdmin;
  return fixture.tenantA[entry.minimum];
}

const RANK: Record<TTenantRole, number> = { member: 1, admin: 2, owner: 3 };

/** Tenant A's own roles that are below what the entry needs. */
export function lowerRoles(entry: MatrixEntry): TTenantRole[] {
  const roles: TTenantRole[] = ["owner", "admin", "member"];
  if (entry.minimum === "platform_admin") return roles;
  const needed = RANK[entry.minimum];
  return roles.filter((role) => RANK[role] < needed);
}

/** The exact error body of the management API: nothing besides code, message, request_id and details. */
export const ZStrictErrorBody = z.strictObject({
  error: z.strictObject({
    code: z.string().regex(/^[a-z_]+$/),
    message: z.string().min(1),
    request_id: z.string().min(1),
    details: z.unknown().optional(),
  }),
});

// ---------------------------------------------------------------------------------------------------
// The fixture

const suffix = () => randomBytes(4).toString("hex");

async function signUp(app: TestApp, adminToken: string, email: string, tenantId?: string, role?: TTenantRole): Promise<Account> {
  const user = await createUser(app, adminToken, { email, tenantId, role });
  return { id: user.id, email: user.email, token: user.token };
}

async function invite(app: TestApp, adminToken: string, tenantId: string, email: string) {
  const response = await app.call("POST", "/api/v1/members", { token: adminToken, tenant: tenantId, body: { email, role: "member" } });
  if (response.status !== 201 || !response.body.invitation) throw new Error(`invite failed: ${response.status} ${response.text}`);
  return { id: response.body.invitation.id as string, email };
}

async function addChannel(app: TestApp, adminToken: string, tenantId: string, name: string, apiKey: string, upstreamUrl: string) {
  const body = { name, provider: "openai", base_url: upstreamUrl, credentials: { api_key: apiKey }, models: ["gpt-4o-mini"] };
  const response = await app.call("POST", "/api/v1/channels", { token: adminToken, tenant: tenantId, body });
  if (response.status !== 201) throw new Error(`channel create failed: ${response.status} ${response.text}`);
  return { id: response.body.id as string, name, apiKey };
}

async function addToken(app: TestApp, owner: Account, tenantId: string, name: string) {
  const response = await app.call("POST", "/api/v1/tokens", { token: owner.token, tenant: tenantId, body: { name } });
  if (response.status !== 201) throw new Error(`token create failed: ${response.status} ${response.text}`);
  return { id: response.body.id as string, name, key: response.body.key as string };
}

/**
 * Tenant A (made by first-run setup, owned by the platform administrator) with another owner, an admin
 * and a member; tenant B with its own owner, admin and member; each with a pending invitation, a channel
 * and the member's access token; and a user in no tenant. Names and emails are unique so a leak of A's
 * data is visible in raw answers. Channels point at `upstreamUrl` (default: a closed local port).
 */
export async function createIsolationFixture(app: TestApp, options: { upstreamUrl?: string } = {}): Promise<IsolationFixture> {
  const tag = suffix();
  const upstreamUrl = options.upstreamUrl ?? "http://127.0.0.1:9/v1";
  const setup = await app.call("POST", "/api/v1/auth/setup", { body: { ...ADMIN, tenant_name: `Alpha Corp ${tag}` } });
  if (setup.status !== 201) throw new Error(`setup failed: ${setup.status} ${setup.text}`);
  const adminToken = setup.body.access_token as string;
  const platformAdmin: Account = { id: setup.body.user.id, email: setup.body.user.email, token: adminToken };
  const tenantAId = setup.body.tenant.id as string;

  // Password hashing dominates the cost: independent sign-ups run side by side.
  const [ownerA, adminA, memberA, ownerB, outsider] = await Promise.all([
    signUp(app, adminToken, `alpha-owner-${tag}@alpha.example`, tenantAId, "owner"),
    signUp(app, adminToken, `alpha-admin-${tag}@alpha.example`, tenantAId, "admin"),
    signUp(app, adminToken, `alpha-member-${tag}@alpha.example`, tenantAId, "member"),
    signUp(app, adminToken, `beta-owner-${tag}@beta.example`),
    signUp(app, adminToken, `outsider-${tag}@nowhere.example`),
  ]);
  const tenantA: TenantFixture = {
    id: tenantAId,
    name: setup.body.tenant.name,
    slug: setup.body.tenant.slug,
    owner: ownerA,
    admin: adminA,
    member: memberA,
    invitation: await invite(app, adminToken, tenantAId, `alpha-invitee-${tag}@alpha.example`),
    channel: await addChannel(app, adminToken, tenantAId, `alpha-channel-${tag}`, `sk-alpha-upstream-${tag}`, upstreamUrl),
    token: await addToken(app, memberA, tenantAId, `alpha-key-${tag}`),
  };

  // Tenant B is owned by its own owner: the platform administrator is not one of its members.
  const created = await app.call("POST", "/api/v1/tenants", {
    token: adminToken,
    body: { name: `Beta Works ${tag}`, owner_email: ownerB.email },
  });
  if (created.status !== 201) throw new Error(`tenant create failed: ${created.status} ${created.text}`);
  const tenantBId = created.body.id as string;
  const [adminB, memberB] = await Promise.all([
    signUp(app, adminToken, `beta-admin-${tag}@beta.example`, tenantBId, "admin"),
    signUp(app, adminToken, `beta-member-${tag}@beta.example`, tenantBId, "member"),
  ]);
  const tenantB: TenantFixture = {
    id: tenantBId,
    name: created.body.name,
    slug: created.body.slug,
    owner: ownerB,
    admin: adminB,
    member: memberB,
    invitation: await invite(app, adminToken, tenantBId, `beta-invitee-${tag}@beta.example`),
    channel: await addChannel(app, ownerB.token, tenantBId, `beta-channel-${tag}`, `sk-beta-upstream-${tag}`, upstreamUrl),
    token: await addToken(app, memberB, tenantBId, `beta-key-${tag}`),
  };

  // A tenant price of A's, for the price routes' positive controls.
  const price = await app.call("PUT", "/api/v1/prices", {
    token: adminToken,
    tenant: tenantAId,
    body: { scope: "tenant", model: `alpha-model-${tag}`, input_per_mtok: 1, output_per_mtok: 2 },
  });
  if (price.status !== 200) throw new Error(`price set failed: ${price.status} ${price.text}`);
  tenantA.priceModel = `alpha-model-${tag}`;

  // A notification of A's for its member, for the notification routes' positive controls.
  const notice = await app.services.notifications.notify(tenantAId, {
    kind: "quota.threshold",
    title: `alpha-notice-${tag}`,
    message: "The access token has used 80 % of its requests.",
    data: { scope: "token", scope_id: tenantA.token.id, metric: "requests", window: "total", max: 5, used: 4, threshold: 0.8 },
    userIds: [memberA.id],
    dedupeKey: `isolation-${tag}`,
  });
  if (!notice) throw new Error("notification create failed");
  tenantA.notification = { id: notice.id, title: notice.title };

  const secretsOfA = [
    tenantA.name,
    tenantA.slug,
    tenantA.owner.email,
    tenantA.admin.email,
    tenantA.member.email,
    tenantA.invitation.email,
    tenantA.channel.name,
    tenantA.channel.apiKey,
    tenantA.token.name,
    tenantA.token.key,
    tenantA.notification.title,
    (await app.services.notifications.webhook(tenantAId)).secret,
  ];
  return { platformAdmin, tenantA, tenantB, outsider, upstreamUrl, secretsOfA };
}

/** Environment for apps that build the fixture: it signs in more often than the default per-IP login limit allows. */
export const ISOLATION_ENV = { LYSS_LOGIN_IP_MAX_ATTEMPTS: "10000" };

// ---------------------------------------------------------------------------------------------------
// Database snapshots

/** Every row of every table (migration bookkeeping aside), each table's rows as sorted JSON lines. */
export type DatabaseSnapshot = Record<string, string[]>;

export async function snapshotDatabase(db: Kysely<Database>): Promise<DatabaseSnapshot> {
  const tables = (await db.introspection.getTables())
    .filter((table) => !table.isView && !table.name.startsWith("kysely_"))
    .map((table) => table.name)
    .sort();
  const snapshot: DatabaseSnapshot = {};
  for (const table of tables) {
    const result = await sql<Record<string, unknown>>`select * from ${sql.table(table)}`.execute(db);
    snapshot[table] = result.rows.map((row) => JSON.stringify(row)).sort();
  }
  return snapshot;
}

/** The tables that differ between two snapshots, with the rows only one side has. */
export function snapshotDifferences(before: DatabaseSnapshot, after: DatabaseSnapshot) {
  const differences: { table: string; removed: string[]; added: string[] }[] = [];
  for (const table of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const old = new Set(before[table] ?? []);
    const now = new Set(after[table] ?? []);
    const removed = [...old].filter((row) => !now.has(row));
    const added = [...now].filter((row) => !old.has(row));
    if (removed.length > 0 || added.length > 0 || (before[table]?.length ?? -1) !== (after[table]?.length ?? -1)) {
      differences.push({ table, removed, added });
    }
  }
  return differences;
}

// ---------------------------------------------------------------------------------------------------
// The OpenAPI document

export interface JsonSchema {
  type?: string | string[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
}

export interface OpenApiParameter {
  in: "query" | "path" | "header" | "cookie";
  name: string;
  required?: boolean;
  schema?: JsonSchema;
}

export interface Operation {
  method: HttpMethod;
  route: string;
  parameters: OpenApiParameter[];
  bodySchema: JsonSchema | undefined;
}

const ZOpenApi = z.object({
  paths: z.record(
    z.string(),
    z.record(
      z.string(),
      z.object({
        parameters: z.array(z.looseObject({ in: z.string(), name: z.string() })).optional(),
        requestBody: z
          .looseObject({ content: z.record(z.string(), z.looseObject({ schema: z.unknown().optional() })).optional() })
          .optional(),
      }),
    ),
  ),
});

const METHODS = new Set<string>(["GET", "POST", "PUT", "PATCH", "DELETE"]);

/** Every operation the server documents under `prefix`, read from /openapi.json. */
export async function documentedOperations(app: TestApp, prefix = "/api/v1/"): Promise<Operation[]> {
  const response = await app.call("GET", "/openapi.json");
  if (response.status !== 200) throw new Error(`openapi.json answered ${response.status}`);
  const document = ZOpenApi.parse(response.body);
  const operations: Operation[] = [];
  for (const [route, methods] of Object.entries(document.paths)) {
    if (!route.startsWith(prefix)) continue;
    for (const [name, operation] of Object.entries(methods)) {
      const method = name.toUpperCase();
      if (!METHODS.has(method)) continue;
      operations.push({
        method: method as HttpMethod,
        route,
        parameters: (operation.parameters ?? []) as OpenApiParameter[],
        bodySchema: operation.requestBody?.content?.["application/json"]?.schema as JsonSchema | undefined,
      });
    }
  }
  return operations;
}
