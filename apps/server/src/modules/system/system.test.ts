import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestApp, setupAdmin, TEST_REDIS_URL, type TestApp } from "../../test/test-app.ts";

describe("system endpoints and error handling", () => {
  let app: TestApp;
  beforeEach(async () => {
    app = await createTestApp();
  });
  afterEach(async () => app.close());

  it("reports liveness, readiness and metrics", async () => {
    expect((await app.call("GET", "/health")).body).toMatchObject({ status: "ok" });
    const ready = await app.call("GET", "/ready");
    expect(ready.status).toBe(200);
    expect(ready.body.checks.database.ok).toBe(true);
    if (TEST_REDIS_URL) expect(ready.body.checks.redis.ok).toBe(true);
    await app.call("GET", "/health");
    const metrics = await app.call("GET", "/metrics");
    expect(metrics.headers["content-type"]).toContain("text/plain");
    expect(metrics.text).toContain("lyss_process_cpu_user_seconds_total");
    expect(metrics.text).toMatch(/lyss_http_requests_total\{method="GET",route="\/health",status_code="200"\} \d+/);
    expect(metrics.text).toContain("lyss_http_request_duration_seconds_bucket");
  });

  it("publishes OpenAPI with request and response schemas for every route", async () => {
    const spec = (await app.call("GET", "/openapi.json")).body;
    expect(spec.openapi).toMatch(/^3\./);
    const operations = Object.values(spec.paths as Record<string, Record<string, { responses: object; requestBody?: object }>>).flatMap(
      (item) => Object.values(item),
    );
    expect(operations.length).toBeGreaterThan(25);
    for (const operation of operations) expect(Object.keys(operation.responses).length).toBeGreaterThan(0);
    expect(spec.paths["/api/v1/auth/login"].post.requestBody).toBeDefined();
    const docs = await app.call("GET", "/docs/");
    expect(docs.status).toBe(200);
    expect(docs.headers["content-type"]).toContain("text/html");
  });

  it("echoes a given request id and makes one up otherwise", async () => {
    expect((await app.call("GET", "/health", { headers: { "x-request-id": "abc-123" } })).headers["x-request-id"]).toBe("abc-123");
    const generated = (await app.call("GET", "/health")).headers["x-request-id"];
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);
    // Ids that could forge log lines are replaced.
    expect((await app.call("GET", "/health", { headers: { "x-request-id": "a b\u0007" } })).headers["x-request-id"]).not.toBe("a b\u0007");
  });

  it("answers unknown routes with the error shape", async () => {
    const missing = await app.call("GET", "/api/v1/nothing-here");
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ error: { code: "not_found", message: expect.any(String), request_id: expect.any(String) } });
  });

  it("turns unexpected failures into a 500 with the request id and no internals", async () => {
    const admin = await setupAdmin(app);
    await app.infra.db.close();
    const failed = await app.call("GET", "/api/v1/users", { token: admin.token, headers: { "x-request-id": "boom-1" } });
    expect(failed.status).toBe(500);
    expect(failed.body).toEqual({ error: { code: "internal_error", message: "internal error", request_id: "boom-1" } });
    expect(failed.text).not.toMatch(/at .*\.ts|stack|destroyed/i);
    const ready = await app.call("GET", "/ready");
    expect(ready.status).toBe(503);
    expect(ready.body.status).toBe("unavailable");
  });
});
