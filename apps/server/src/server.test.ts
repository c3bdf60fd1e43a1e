import http from "node:http";
import net from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { running, type Server, type Storage, sleep, startServer, waitFor } from "./test/server-process.ts";
import { ADMIN, freshStorage } from "./test/test-app.ts";

/** Resolves with the exit of the process, or undefined when it is still running after `ms`. */
function exitWithin(server: Server, ms: number) {
  return Promise.race([server.exited, sleep(ms).then(() => undefined)]);
}

/** Whether a new TCP connection to the port is refused. */
function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code === "ECONNREFUSED"));
  });
}

async function json(response: Response) {
  return (await response.json()) as Record<string, unknown> & { access_token?: string };
}

const post = (url: string, body: unknown) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

afterAll(() => {
  for (const child of running) child.kill("SIGKILL");
});

describe("the server on a real socket", { timeout: 60_000 }, () => {
  let storage: Storage;
  let server: Server;

  beforeAll(async () => {
    storage = await freshStorage();
    server = await startServer(storage);
  }, 60_000);

  afterAll(async () => {
    if (server) {
      server.child.kill("SIGTERM");
      await exitWithin(server, 10_000);
    }
    await storage?.drop();
  });

  it("prints its URL and how to create the first administrator", async () => {
    const stdout = await waitFor("the first-run hint", () =>
      server.output.stdout.includes("npx lyss admin create") ? server.output.stdout : undefined,
    );
    expect(stdout).toContain(`Lyss is running at ${server.url}`);
    expect(stdout).toContain(`${server.url}/docs`);
    expect(stdout).toContain(`curl -X POST ${server.url}/api/v1/auth/setup`);
    expect(stdout).toContain("No administrator exists yet");
  });

  it("runs first-run setup and sign-in as a user would with curl", async () => {
    const { url } = server;
    expect(await json(await fetch(`${url}/api/v1/auth/setup`))).toEqual({ setup_required: true });
    const setup = await post(`${url}/api/v1/auth/setup`, ADMIN);
    expect(setup.status).toBe(201);
    expect(await json(setup)).toMatchObject({ access_token: expect.any(String), user: { email: ADMIN.email } });

    const badLogin = await post(`${url}/api/v1/auth/login`, { email: ADMIN.email, password: "not-the-password" });
    expect(badLogin.status).toBe(401);
    const login = await post(`${url}/api/v1/auth/login`, { email: ADMIN.email, password: ADMIN.password });
    expect(login.status).toBe(200);
    const { access_token: token } = await json(login);
    expect(token).toEqual(expect.any(String));

    const me = await fetch(`${url}/api/v1/auth/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(me.status).toBe(200);
    expect(await json(me)).toMatchObject({ user: { email: ADMIN.email, is_platform_admin: true } });
    expect((await fetch(`${url}/api/v1/auth/me`)).status).toBe(401);
    expect((await fetch(`${url}/api/v1/auth/me`, { headers: { authorization: "Bearer nonsense" } })).status).toBe(401);
  });

  it("serves the API reference at /docs and a valid OpenAPI 3 document", async () => {
    const docs = await fetch(`${server.url}/docs`);
    expect(docs.status).toBe(200);
    expect(docs.headers.get("content-type")).toMatch(/text\/html/);
    expect((await docs.text()).toLowerCase()).toContain("swagger");

    const response = await fetch(`${server.url}/openapi.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/application\/json/);
    const document = (await response.json()) as {
      openapi: string;
      info: { title: string };
      paths: Record<string, Record<string, unknown>>;
    };
    expect(document.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(document.info.title).toEqual(expect.any(String));
    expect(Object.keys(document.paths).length).toBeGreaterThan(5);
    expect(document.paths["/api/v1/auth/login"]?.post).toBeDefined();
    expect(document.paths["/api/v1/auth/me"]?.get).toBeDefined();
    expect(document.paths["/health"]?.get).toBeDefined();
  });

  it("answers /ready and exposes Prometheus metrics", async () => {
    const ready = await fetch(`${server.url}/ready`);
    expect(ready.status).toBe(200);
    const body = await json(ready);
    expect(body).toMatchObject({ status: "ready", checks: { database: { ok: true } } });
    if (storage.env.REDIS_URL) expect(body).toMatchObject({ checks: { redis: { ok: true } } });

    const health = await json(await fetch(`${server.url}/health`));
    expect(health).toMatchObject({ status: "ok", uptime_seconds: expect.any(Number) });

    const metrics = await fetch(`${server.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get("content-type")).toMatch(/text\/plain/);
    const text = await metrics.text();
    expect(text).toMatch(/^lyss_http_requests_total\{[^}]*route="\/health"[^}]*\} \d+/m);
    expect(text).toContain("# TYPE lyss_http_request_duration_seconds histogram");
    expect(text).toMatch(/^lyss_process_cpu_user_seconds_total \S+/m);
    expect(text).toMatch(/^lyss_process_resident_memory_bytes \S+/m);
    expect(text).toMatch(/^lyss_nodejs_heap_size_used_bytes \S+/m);
  });

  it("echoes the caller's X-Request-Id and generates one when absent", async () => {
    const given = await fetch(`${server.url}/health`, { headers: { "x-request-id": "trace-abc.123" } });
    expect(given.headers.get("x-request-id")).toBe("trace-abc.123");
    const generated = await fetch(`${server.url}/health`);
    const first = generated.headers.get("x-request-id");
    expect(first).toMatch(/^[0-9a-f-]{36}$/);
    expect((await fetch(`${server.url}/health`)).headers.get("x-request-id")).not.toBe(first);
    // An unusable id (too long, or with odd characters) is replaced rather than echoed into logs.
    const unsafe = await fetch(`${server.url}/health`, { headers: { "x-request-id": "a b<script>" } });
    expect(unsafe.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    // Errors carry it too.
    const missing = await fetch(`${server.url}/api/v1/no-such-route`, { headers: { "x-request-id": "trace-404" } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("x-request-id")).toBe("trace-404");
  });
});

describe("graceful shutdown", { timeout: 60_000 }, () => {
  const storages: Storage[] = [];
  afterEach(async () => {
    for (const storage of storages.splice(0)) await storage.drop();
  });

  it("on SIGTERM finishes the in-flight request, refuses new connections and exits 0", async () => {
    const storage = await freshStorage();
    storages.push(storage);
    const server = await startServer(storage, { LOG_LEVEL: "debug", LYSS_SHUTDOWN_TIMEOUT: "8000" });
    expect((await post(`${server.url}/api/v1/auth/setup`, ADMIN)).status).toBe(201);

    // A sign-in whose body arrives slowly: the headers and half the body now, the rest after SIGTERM.
    const body = JSON.stringify({ email: ADMIN.email, password: ADMIN.password });
    const half = Math.floor(body.length / 2);
    const request = http.request({
      host: "127.0.0.1",
      port: server.port,
      method: "POST",
      path: "/api/v1/auth/login",
      agent: false,
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), "x-request-id": "slow-login" },
    });
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      request.on("error", reject);
      request.on("response", (incoming) => {
        let text = "";
        incoming.setEncoding("utf8").on("data", (chunk: string) => {
          text += chunk;
        });
        incoming.on("end", () => resolve({ status: incoming.statusCode ?? 0, body: text }));
        incoming.on("error", reject);
      });
    });
    request.flushHeaders();
    request.write(body.slice(0, half));
    // The server has the request once it logs it (LOG_LEVEL=debug logs every incoming request).
    await waitFor("the slow request to arrive", () => (server.output.stdout.includes('"reqId":"slow-login"') ? true : undefined));

    server.child.kill("SIGTERM");
    await waitFor("the shutdown to begin", () => (server.output.stdout.includes("shutting down") ? true : undefined), 10_000);
    await waitFor("new connections to be refused", async () => ((await connectionRefused(server.port)) ? true : undefined), 10_000);
    expect(await exitWithin(server, 300)).toBeUndefined();

    request.end(body.slice(half));
    const answered = await response;
    expect(answered.status, answered.body).toBe(200);
    expect(JSON.parse(answered.body)).toMatchObject({ access_token: expect.any(String), user: { email: ADMIN.email } });

    // Within the shutdown bound (8 s), with room for a loaded machine.
    const exit = await exitWithin(server, 15_000);
    expect(exit, server.output.stderr).toEqual({ code: 0, signal: null });
    expect(server.output.stdout).toContain("shut down cleanly");
    expect(await connectionRefused(server.port)).toBe(true);
  });

  it("does not wait for connections that never sent a request, nor for idle keep-alive ones", async () => {
    const storage = await freshStorage();
    storages.push(storage);
    // A timeout far above what the stop should take: waiting on a connection would show as exit 1 after it.
    const server = await startServer(storage, { LYSS_SHUTDOWN_TIMEOUT: "20000" });
    // A connection opened ahead of a request (as browsers and pools do), and one idle after its request.
    const silent = net.connect(server.port, "127.0.0.1");
    const silentClosed = new Promise((resolve) => silent.once("close", resolve));
    silent.on("error", () => {});
    await new Promise((resolve) => silent.once("connect", resolve));
    const agent = new http.Agent({ keepAlive: true });
    const health = await new Promise<number>((resolve, reject) =>
      http
        .get(`${server.url}/health`, { agent }, (response) => response.resume().on("end", () => resolve(response.statusCode ?? 0)))
        .on("error", reject),
    );
    expect(health).toBe(200);

    const stopping = Date.now();
    server.child.kill("SIGTERM");
    const exit = await exitWithin(server, 15_000);
    expect(exit, server.output.stderr).toEqual({ code: 0, signal: null });
    expect(Date.now() - stopping).toBeLessThan(5_000);
    await silentClosed;
    agent.destroy();
  });

  it("stops on SIGINT too, and does not print the first-run hint once an administrator exists", async () => {
    const storage = await freshStorage();
    storages.push(storage);
    const server = await startServer(storage, {
      LYSS_ADMIN_EMAIL: "boot@example.com",
      LYSS_ADMIN_PASSWORD: "bootstrap-password",
    });
    const login = await post(`${server.url}/api/v1/auth/login`, { email: "boot@example.com", password: "bootstrap-password" });
    expect(login.status).toBe(200);
    server.child.kill("SIGINT");
    const exit = await exitWithin(server, 15_000);
    expect(exit, server.output.stderr).toEqual({ code: 0, signal: null });
    expect(server.output.stdout).not.toContain("No administrator exists yet");
    expect(await connectionRefused(server.port)).toBe(true);
  });
});
