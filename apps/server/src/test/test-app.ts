import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { InjectOptions } from "fastify";
import pg from "pg";
import { buildApp, type LyssApp } from "../app.ts";
import { type Config, loadConfig } from "../config/env.ts";
import type { Clock } from "../infra/clock.ts";
import { eventually } from "./eventually.ts";

/**
 * Tests run on a fresh SQLite file by default. With TEST_DATABASE_URL (and TEST_REDIS_URL) set, each
 * test app gets its own new PostgreSQL database (dropped afterwards) and its own Redis key prefix.
 */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL;
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL;

export class TestClock implements Clock {
  constructor(private current = Date.now()) {}
  now() {
    return new Date(this.current);
  }
  ms() {
    return this.current;
  }
  advance(ms: number) {
    this.current += ms;
  }
}

function withDatabase(url: string, name: string) {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

async function adminQuery(text: string) {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/** A fresh, empty database (and data directory) that a test owns; `drop` removes it. */
export async function freshStorage() {
  const suffix = randomBytes(6).toString("hex");
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "lyss-test-"));
  let databaseUrl: string | undefined;
  if (TEST_DATABASE_URL) {
    const name = `lyss_test_${suffix}`;
    await adminQuery(`create database ${name}`);
    databaseUrl = withDatabase(TEST_DATABASE_URL, name);
  }
  const env: Record<string, string> = {
    LYSS_DATA_DIR: dataDir,
    LOG_LEVEL: "silent",
    NODE_ENV: "test",
    LYSS_REDIS_PREFIX: `lyss-test-${suffix}:`,
  };
  if (databaseUrl) env.DATABASE_URL = databaseUrl;
  if (TEST_REDIS_URL) env.REDIS_URL = TEST_REDIS_URL;
  return {
    dataDir,
    databaseUrl,
    env,
    async drop() {
      if (databaseUrl) await adminQuery(`drop database if exists ${new URL(databaseUrl).pathname.slice(1)} with (force)`);
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface TestApp extends LyssApp {
  storage: Awaited<ReturnType<typeof freshStorage>>;
  config: Config;
  clock: TestClock;
  /** Sends a request in-process; `token` and `tenant` set the Authorization and X-Tenant-Id headers. */
  call(
    method: InjectOptions["method"],
    url: string,
    options?: { token?: string; tenant?: string; body?: unknown; headers?: Record<string, string> },
    // biome-ignore lint/suspicious/noExplicitAny: tests read JSON answers loosely and assert on them
  ): Promise<{ status: number; body: any; headers: Record<string, unknown>; text: string }>;
  close(): Promise<void>;
}

export async function createTestApp(
  options: { env?: Record<string, string>; storage?: Awaited<ReturnType<typeof freshStorage>> } = {},
): Promise<TestApp> {
  const storage = options.storage ?? (await freshStorage());
  // Suites send many unauthenticated calls from one address; the per-address limit has its own test.
  const config = loadConfig({ LYSS_PUBLIC_IP_MAX_PER_MINUTE: "1000000", ...storage.env, ...options.env });
  const clock = new TestClock();
  const built = await buildApp({ config, clock });
  const ownsStorage = !options.storage;
  return {
    ...built,
    storage,
    config,
    clock,
    async call(method, url, callOptions = {}) {
      const headers: Record<string, string> = { ...callOptions.headers };
      if (callOptions.token) headers.authorization = `Bearer ${callOptions.token}`;
      if (callOptions.tenant) headers["x-tenant-id"] = callOptions.tenant;
      const response = await built.app.inject({
        method,
        url,
        headers,
        ...(callOptions.body === undefined ? {} : { payload: callOptions.body as InjectOptions["payload"] }),
      });
      let body: unknown;
      try {
        body = response.json();
      } catch {
        body = undefined;
      }
      return { status: response.statusCode, body, headers: response.headers, text: response.body };
    },
    async close() {
      // Tests need no drain: connections a client opened but never used would hold the close.
      const closing = built.app.close();
      built.app.server.closeAllConnections();
      await closing;
      if (ownsStorage) await storage.drop();
    },
  };
}

export const ADMIN = { email: "admin@example.com", password: "admin-password-1", name: "Admin" };

/** Runs first-run setup and answers the administrator's token, user and first tenant. */
export async function setupAdmin(app: TestApp) {
  const response = await app.call("POST", "/api/v1/auth/setup", { body: ADMIN });
  if (response.status !== 201) throw new Error(`setup failed: ${response.status} ${response.text}`);
  return {
    token: response.body.access_token as string,
    refreshToken: response.body.refresh_token as string,
    user: response.body.user,
    tenant: response.body.tenant,
  };
}

let counter = 0;

/** Creates a user (as the platform administrator), optionally adds them to a tenant, and signs them in. */
export async function createUser(
  app: TestApp,
  adminToken: string,
  options: { tenantId?: string; role?: "owner" | "admin" | "member"; email?: string; platformAdmin?: boolean } = {},
) {
  counter += 1;
  const email = options.email ?? `user${counter}-${randomBytes(3).toString("hex")}@example.com`;
  const password = "user-password-1";
  const created = await app.call("POST", "/api/v1/users", {
    token: adminToken,
    body: { email, name: `User ${counter}`, password, is_platform_admin: options.platformAdmin ?? false },
  });
  if (created.status !== 201) throw new Error(`user create failed: ${created.status} ${created.text}`);
  if (options.tenantId) {
    const added = await app.call("POST", "/api/v1/members", {
      token: adminToken,
      tenant: options.tenantId,
      body: { email, role: options.role ?? "member" },
    });
    if (added.status !== 201) throw new Error(`member add failed: ${added.status} ${added.text}`);
  }
  const login = await app.call("POST", "/api/v1/auth/login", { body: { email, password } });
  if (login.status !== 200) throw new Error(`login failed: ${login.status} ${login.text}`);
  return {
    id: created.body.id as string,
    email,
    password,
    token: login.body.access_token as string,
    refreshToken: login.body.refresh_token as string,
  };
}

/** Creates a second tenant owned by the administrator. */
export async function createTenant(app: TestApp, adminToken: string, name = "Other") {
  const response = await app.call("POST", "/api/v1/tenants", { token: adminToken, body: { name } });
  if (response.status !== 201) throw new Error(`tenant create failed: ${response.status} ${response.text}`);
  return response.body as { id: string; name: string; slug: string };
}

/** Starts listening on a free loopback port and answers the base URL. */
export async function listen(app: TestApp): Promise<string> {
  await app.app.listen({ port: 0, host: "127.0.0.1" });
  const address = app.app.server.address();
  if (!address || typeof address === "string") throw new Error("no address");
  return `http://127.0.0.1:${address.port}`;
}

/** The tenant's usage records, newest first, once the writer has flushed at least one. */
export const usageLogsOf = (app: TestApp, adminToken: string) =>
  eventually(async () => {
    await app.services.usage.flush();
    const page = await app.call("GET", "/api/v1/usage/logs", { token: adminToken });
    return page.body.data.length ? page.body.data : undefined;
  });

/** Creates a channel in the tenant and answers its id. */
export async function createChannel(app: TestApp, token: string, tenantId: string, body: Record<string, unknown>) {
  const response = await app.call("POST", "/api/v1/channels", { token, tenant: tenantId, body });
  if (response.status !== 201) throw new Error(`channel create failed: ${response.status} ${response.text}`);
  return response.body as { id: string };
}

/** Creates an access token in the tenant and answers it with its key. */
export async function createAccessToken(app: TestApp, token: string, tenantId: string, body: Record<string, unknown> = {}) {
  const response = await app.call("POST", "/api/v1/tokens", { token, tenant: tenantId, body: { name: "test", ...body } });
  if (response.status !== 201) throw new Error(`token create failed: ${response.status} ${response.text}`);
  return response.body as { id: string; key: string };
}

/**
 * A listening app after first-run setup, with one OpenAI channel serving `gpt-4o-mini` from the
 * given upstream: the common ground of the gateway suites.
 */
export async function gatewayApp(upstreamUrl: string, options: { env?: Record<string, string> } = {}) {
  const app = await createTestApp(options);
  const admin = await setupAdmin(app);
  const channel = await createChannel(app, admin.token, admin.tenant.id, {
    name: "c",
    provider: "openai",
    base_url: upstreamUrl,
    credentials: { api_key: "k" },
    models: ["gpt-4o-mini"],
  });
  return { app, admin, channel, baseUrl: await listen(app) };
}
