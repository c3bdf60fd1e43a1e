import { startSimulator, type UpstreamSimulator } from "@lyss/llm/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Account,
  createIsolationFixture,
  type DatabaseSnapshot,
  documentedOperations,
  EXEMPT_OPERATIONS,
  entryUrl,
  ISOLATION_ENV,
  ISOLATION_MATRIX,
  type IsolationFixture,
  lowerRoles,
  type MatrixEntry,
  minimumCaller,
  operationKey,
  snapshotDatabase,
  snapshotDifferences,
  writesOf,
  ZStrictErrorBody,
} from "./isolation-matrix.ts";
import { createTestApp, type TestApp } from "./test-app.ts";

interface Attempt {
  who: string;
  account: Account;
  /** The X-Tenant-Id header, or none: then the caller's first tenant is the active one. */
  tenant: string | undefined;
  /** Statuses that count as a refusal for this caller. */
  statuses: number[];
}

const CODE_OF: Record<number, string> = { 400: "bad_request", 403: "forbidden", 404: "not_found" };
const ROLES = ["owner", "admin", "member"] as const;

/** Everyone who must be refused by the entry, and how. */
function refusals(entry: MatrixEntry, fixture: IsolationFixture): Attempt[] {
  const tenantA = fixture.tenantA.id;
  // Without the header, tenant B's users act in tenant B: a refusal only when the URL names A's resource
  // or the route is for platform administrators.
  const refusedInOwnTenant = entry.target !== "header" || entry.minimum === "platform_admin";
  const attempts: Attempt[] = [];
  for (const role of ROLES) {
    const account = fixture.tenantB[role];
    attempts.push({ who: `tenant B's ${role} with X-Tenant-Id of A`, account, tenant: tenantA, statuses: [403, 404] });
    if (refusedInOwnTenant)
      attempts.push({ who: `tenant B's ${role} without X-Tenant-Id`, account, tenant: undefined, statuses: [403, 404] });
  }
  attempts.push({ who: "a user in no tenant with X-Tenant-Id of A", account: fixture.outsider, tenant: tenantA, statuses: [403, 404] });
  if (refusedInOwnTenant) {
    // With no tenant at all, a tenant route may also answer 400 "choose a tenant".
    attempts.push({
      who: "a user in no tenant without X-Tenant-Id",
      account: fixture.outsider,
      tenant: undefined,
      statuses: [400, 403, 404],
    });
  }
  for (const role of lowerRoles(entry)) {
    attempts.push({ who: `tenant A's ${role}`, account: fixture.tenantA[role], tenant: tenantA, statuses: [403, 404] });
  }
  return attempts;
}

type Answer = Awaited<ReturnType<TestApp["call"]>>;

function leaks(answer: Answer, fixture: IsolationFixture): string[] {
  const text = answer.text.toLowerCase();
  return fixture.secretsOfA.filter((secret) => text.includes(secret.toLowerCase()));
}

/** What is wrong with an answer that should have been a refusal (nothing: an empty list). */
function refusalProblems(answer: Answer, attempt: Attempt, fixture: IsolationFixture): string[] {
  const problems: string[] = [];
  if (!attempt.statuses.includes(answer.status)) problems.push(`status ${answer.status}, expected one of ${attempt.statuses.join("/")}`);
  const parsed = ZStrictErrorBody.safeParse(answer.body);
  if (!parsed.success) problems.push(`not exactly an error body: ${answer.text.slice(0, 300)}`);
  else {
    const expectedCode = CODE_OF[answer.status];
    if (expectedCode && parsed.data.error.code !== expectedCode)
      problems.push(`code ${parsed.data.error.code} for status ${answer.status}`);
    if (parsed.data.error.request_id !== answer.headers["x-request-id"]) problems.push("request_id differs from the X-Request-Id header");
  }
  for (const secret of leaks(answer, fixture)) problems.push(`leaks tenant A's "${secret}"`);
  return problems;
}

const isRead = (entry: MatrixEntry) => entry.method === "GET";
const label = (entry: MatrixEntry) => operationKey(entry.method, entry.route);

function callEntry(app: TestApp, entry: MatrixEntry, fixture: IsolationFixture, account: Account, tenant: string | undefined) {
  return app.call(entry.method, entryUrl(entry, fixture), { token: account.token, tenant, body: entry.body?.(fixture) });
}

describe("tenant isolation matrix", () => {
  let app: TestApp;
  let fixture: IsolationFixture;
  let initial: DatabaseSnapshot;

  beforeAll(async () => {
    app = await createTestApp({ env: ISOLATION_ENV });
    fixture = await createIsolationFixture(app);
    initial = await snapshotDatabase(app.infra.db.kysely);
  });
  afterAll(async () => app?.close());

  it("lists every management endpoint, and only documented ones", async () => {
    const documented = (await documentedOperations(app)).map((operation) => operationKey(operation.method, operation.route));
    const listed = ISOLATION_MATRIX.map(label);
    expect(new Set(listed).size, "an operation is listed twice").toBe(listed.length);
    const missing = documented.filter((key) => !listed.includes(key) && !EXEMPT_OPERATIONS.includes(key));
    expect(missing, "add these operations to ISOLATION_MATRIX in isolation-matrix.ts").toEqual([]);
    const stale = [...listed, ...EXEMPT_OPERATIONS].filter((key) => !documented.includes(key));
    expect(stale, "these matrix operations are not in /openapi.json").toEqual([]);
    expect(documented.length).toBeGreaterThanOrEqual(ISOLATION_MATRIX.length);
  });

  it("snapshots the tables the matrix protects", () => {
    for (const table of ["users", "tenants", "memberships", "invitations", "tenant_settings", "platform_settings", "audit_logs"]) {
      expect(initial[table], table).toBeDefined();
    }
    expect(initial.invitations).toHaveLength(2);
    expect(initial.memberships?.length).toBeGreaterThanOrEqual(7);
  });

  it("finds tenant A's data in tenant A's own answers, so the leak check can fail", async () => {
    const { tenantA } = fixture;
    const asMember = { token: tenantA.member.token, tenant: tenantA.id };
    const asAdmin = { token: tenantA.admin.token, tenant: tenantA.id };
    const answers = [
      await app.call("GET", "/api/v1/members", asMember),
      await app.call("GET", `/api/v1/tenants/${tenantA.id}`, asMember),
      await app.call("GET", "/api/v1/invitations", asAdmin),
      await app.call("GET", "/api/v1/channels", asAdmin),
      await app.call("GET", "/api/v1/tokens", asMember),
    ];
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200]);
    const seen = new Set(answers.flatMap((answer) => leaks(answer, fixture)));
    const shown = [tenantA.name, tenantA.slug, tenantA.owner.email, tenantA.admin.email, tenantA.member.email, tenantA.invitation.email];
    expect(seen).toEqual(new Set([...shown, tenantA.channel.name, tenantA.token.name]));
    // The upstream key and the access token's key are never shown again, not even to tenant A.
    expect(seen.has(tenantA.channel.apiKey) || seen.has(tenantA.token.key)).toBe(false);
  });

  for (const entry of ISOLATION_MATRIX) {
    it(`${label(entry)} refuses tenant B, users in no tenant and roles below ${entry.minimum}`, async () => {
      const before = await snapshotDatabase(app.infra.db.kysely);
      const attempts = refusals(entry, fixture);
      expect(attempts.length).toBeGreaterThanOrEqual(4);
      const problems: string[] = [];
      for (const attempt of attempts) {
        const answer = await callEntry(app, entry, fixture, attempt.account, attempt.tenant);
        for (const problem of refusalProblems(answer, attempt, fixture)) problems.push(`${attempt.who}: ${problem}`);
      }
      if (entry.target === "header" && entry.minimum !== "platform_admin" && isRead(entry)) {
        // Without the header these callers read their own tenant: allowed, but none of A's data may show.
        for (const account of [fixture.tenantB.owner, fixture.tenantB.admin, fixture.tenantB.member, fixture.outsider]) {
          const answer = await callEntry(app, entry, fixture, account, undefined);
          if (answer.status >= 500) problems.push(`${account.email} in their own tenant: status ${answer.status}`);
          for (const secret of leaks(answer, fixture)) problems.push(`${account.email} in their own tenant: leaks "${secret}"`);
        }
      }
      expect(problems).toEqual([]);
      expect(snapshotDifferences(before, await snapshotDatabase(app.infra.db.kysely))).toEqual([]);
    });
  }

  it("changed no row of any table across all the refused calls", async () => {
    const after = await snapshotDatabase(app.infra.db.kysely);
    expect(snapshotDifferences(initial, after)).toEqual([]);
    expect(after).toEqual(initial);
  });
});

describe("the least role that may call each entry succeeds", () => {
  // Channel tests and model syncs reach a real (simulated) upstream.
  let upstream: UpstreamSimulator;
  beforeAll(async () => {
    upstream = await startSimulator();
  });
  afterAll(async () => upstream?.close());

  describe("calls that write nothing, on one fixture", () => {
    let app: TestApp;
    let fixture: IsolationFixture;
    beforeAll(async () => {
      app = await createTestApp({ env: ISOLATION_ENV });
      fixture = await createIsolationFixture(app, { upstreamUrl: `${upstream.url}/v1` });
    });
    afterAll(async () => app?.close());

    for (const entry of ISOLATION_MATRIX.filter((item) => !writesOf(item))) {
      it(`${label(entry)} as ${entry.minimum}`, async () => {
        const answer = await callEntry(app, entry, fixture, minimumCaller(entry, fixture), fixture.tenantA.id);
        expect(answer.status, answer.text).toBeGreaterThanOrEqual(200);
        expect(answer.status, answer.text).toBeLessThan(300);
      });
    }
  });

  // A write may delete what later calls need, so each gets a fresh app and database.
  describe("writes, each on a fixture of its own", () => {
    for (const entry of ISOLATION_MATRIX.filter(writesOf)) {
      it(`${label(entry)} as ${entry.minimum}`, async () => {
        const app = await createTestApp({ env: ISOLATION_ENV });
        try {
          const fixture = await createIsolationFixture(app, { upstreamUrl: `${upstream.url}/v1` });
          const before = await snapshotDatabase(app.infra.db.kysely);
          const answer = await callEntry(app, entry, fixture, minimumCaller(entry, fixture), fixture.tenantA.id);
          expect(answer.status, answer.text).toBeGreaterThanOrEqual(200);
          expect(answer.status, answer.text).toBeLessThan(300);
          // The write shows in the snapshot, so the comparisons above would see a refused call that wrote.
          expect(snapshotDifferences(before, await snapshotDatabase(app.infra.db.kysely))).not.toEqual([]);
        } finally {
          await app.close();
        }
      });
    }
  });
});
