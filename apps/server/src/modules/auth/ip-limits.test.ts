import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestApp, type TestApp } from "../../test/test-app.ts";

describe("per-address limits on unauthenticated routes", () => {
  let app: TestApp;
  beforeEach(async () => {
    app = await createTestApp({ env: { LYSS_PUBLIC_IP_MAX_PER_MINUTE: "3" } });
  });
  afterEach(async () => app.close());

  it("limits refresh, setup and invitation calls from one address", async () => {
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      statuses.push((await app.call("POST", "/api/v1/auth/refresh", { body: { refresh_token: `nope-${attempt}` } })).status);
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
    const blocked = await app.call("POST", "/api/v1/auth/accept-invite", { body: { token: "x" } });
    expect(blocked.status).toBe(429);
    expect(blocked.body.error.code).toBe("rate_limited");
    expect(Number(blocked.headers["retry-after"])).toBeGreaterThan(0);
    // Another address is not affected.
    const other = await app.app.inject({
      method: "POST",
      url: "/api/v1/auth/refresh",
      remoteAddress: "10.1.2.3",
      payload: { refresh_token: "nope" },
    });
    expect(other.statusCode).toBe(401);
  });

  it("slows down guessing API keys on the data plane", async () => {
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 5; attempt++) {
      const response = await app.app.inject({ method: "GET", url: "/v1/models", headers: { authorization: `Bearer sk-guess-${attempt}` } });
      statuses.push(response.statusCode);
    }
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
  });
});
