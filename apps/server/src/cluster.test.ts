import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import net from "node:net";
import { startSimulator, type UpstreamSimulator } from "@lyss/llm/testing";
import { Client } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "./test/eventually.ts";
import { logLines, running, type Server, type Storage, sleep, startServer, waitFor, waitForLog } from "./test/server-process.ts";
import { ADMIN, freshStorage, TEST_REDIS_URL } from "./test/test-app.ts";

/**
 * `lyss start` with LYSS_WORKERS=2 as a real process tree: a primary and two workers sharing the
 * port. Without Redis the workers share counters, limits and events through the primary; with
 * TEST_REDIS_URL set, the same suite runs with each worker an instance on Redis.
 */
const MODES = [
  { name: "without Redis (shared through the primary)", redis: false },
  { name: "with Redis", redis: true },
];

interface Answer {
  status: number;
  body: string;
}

/** A keep-alive connection of its own: the cluster hands each connection to one worker for its life. */
class Connection {
  readonly client: Client;
  worker = 0;
  constructor(url: string) {
    this.client = new Client(url, { pipelining: 1, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000 });
  }
  async request(
    method: "GET" | "POST" | "PATCH",
    path: string,
    options: { token?: string; tenant?: string; body?: unknown; id?: string } = {},
  ) {
    const headers: Record<string, string> = { "x-request-id": options.id ?? randomUUID() };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.tenant) headers["x-tenant-id"] = options.tenant;
    if (options.body !== undefined) headers["content-type"] = "application/json";
    const response = await this.client.request({
      method,
      path,
      headers,
      body: options.body === undefined ? null : JSON.stringify(options.body),
    });
    return { status: response.statusCode, body: await response.body.text() } satisfies Answer;
  }
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

/** The sum of a metric's samples whose labels include every given label. */
function metricSum(text: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    if (!Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

for (const mode of MODES) {
  describe.skipIf(mode.redis && !TEST_REDIS_URL)(`LYSS_WORKERS=2 ${mode.name}`, { timeout: 60_000 }, () => {
    let sim: UpstreamSimulator;
    let failing: UpstreamSimulator;
    let storage: Storage;
    let server: Server;
    let admin: { token: string; tenant: string };
    /** One connection to each worker. */
    let pinned: [Connection, Connection];
    /** Every chat answer's status so far, to compare with the aggregated metrics. */
    const tally = new Map<number, number>();
    const connections: Connection[] = [];

    // biome-ignore lint/suspicious/noExplicitAny: the API's answers are read loosely and asserted on
    const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> => {
      const response = await fetch(`${server.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${admin.token}`, "x-tenant-id": admin.tenant, "content-type": "application/json" },
        body: body === undefined ? null : JSON.stringify(body),
      });
      return { status: response.status, json: await response.json() };
    };
    const count = (status: number) => tally.set(status, (tally.get(status) ?? 0) + 1);
    const chatBody = (text: string) => ({ model: "gpt-4o-mini", max_tokens: 20, messages: [{ role: "user", content: text }] });
    /** A chat request on a new connection (fetch opens as many as there are requests in flight). */
    const chat = async (key: string, text = "hi"): Promise<number> => {
      const response = await fetch(`${server.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify(chatBody(text)),
      });
      await response.arrayBuffer();
      count(response.status);
      return response.status;
    };
    const chatOn = async (connection: Connection, key: string): Promise<number> => {
      const answer = await connection.request("POST", "/v1/chat/completions", { token: key, body: chatBody("pinned") });
      count(answer.status);
      return answer.status;
    };
    /** The worker that served the request with this id, from its log line. */
    const servedBy = (id: string) =>
      waitForLog(server, `request ${id}`, (line) => line.reqId === id && line.msg === "request completed").then(
        (line) => line.worker as number,
      );
    const workersServing = (path: string) =>
      new Set(
        logLines(server)
          .filter((line) => line.req?.url === path && line.worker !== undefined)
          .map((line) => line.worker as number),
      );
    const createToken = async (body: Record<string, unknown>) => {
      const response = await api("POST", "/api/v1/tokens", { name: "test", ...body });
      expect(response.status).toBe(201);
      return response.json as { id: string; key: string };
    };

    beforeAll(async () => {
      [sim, failing] = await Promise.all([startSimulator(), startSimulator()]);
      failing.fail({ path: "/chat/completions" }, { status: 500, message: "upstream down" });
      storage = await freshStorage();
      server = await startServer(storage, {
        LYSS_WORKERS: "2",
        LOG_LEVEL: "info",
        LYSS_SHUTDOWN_TIMEOUT: "8000",
        LYSS_PUBLIC_IP_MAX_PER_MINUTE: "1000000",
        REDIS_URL: mode.redis ? (TEST_REDIS_URL ?? "") : "",
      });
      await waitForLog(server, "both workers to listen", (line) => line.msg === "Lyss is serving with 2 workers");
      const setup = await fetch(`${server.url}/api/v1/auth/setup`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(ADMIN),
      });
      const body = (await setup.json()) as { access_token: string; tenant: { id: string } };
      admin = { token: body.access_token, tenant: body.tenant.id };
      const channel = await api("POST", "/api/v1/channels", {
        name: "sim",
        provider: "openai",
        base_url: sim.url,
        credentials: { api_key: "sk-sim" },
        models: ["gpt-4o-mini"],
      });
      expect(channel.status).toBe(201);
      // New connections go to the workers in turn: open them until each worker has one.
      const found = new Map<number, Connection>();
      while (found.size < 2 && connections.length < 10) {
        const connection = new Connection(server.url);
        connections.push(connection);
        const id = randomUUID();
        expect((await connection.request("GET", "/health", { id })).status).toBe(200);
        connection.worker = await servedBy(id);
        if (!found.has(connection.worker)) found.set(connection.worker, connection);
      }
      pinned = [found.get(1), found.get(2)] as [Connection, Connection];
    }, 90_000);

    afterAll(async () => {
      await Promise.all(connections.map((connection) => connection.client.destroy()));
      for (const child of running) child.kill("SIGKILL");
      await Promise.all([sim?.close(), failing?.close()]);
      await storage?.drop();
    });

    it("(a) runs two workers, distinct processes, and both serve", async () => {
      const listening = logLines(server).filter((line) => /^Lyss worker \d \(pid \d+\) is listening/.test(line.msg ?? ""));
      expect(listening.map((line) => line.worker).sort()).toEqual([1, 2]);
      expect(new Set(listening.map((line) => line.pid)).size).toBe(2);
      expect(listening.map((line) => line.pid)).not.toContain(server.child.pid);
      expect(pinned.map((connection) => connection.worker)).toEqual([1, 2]);
      // Each worker runs with two malloc arenas, though the primary was started without the setting.
      for (const line of listening) {
        const environ = readFileSync(`/proc/${line.pid}/environ`, "utf8").split("\0");
        expect(environ).toContain("MALLOC_ARENA_MAX=2");
      }
      // Worker 1 alone printed the first-run hint.
      expect(server.output.stdout.split("No administrator exists yet")).toHaveLength(2);
    });

    it("(b) admits exactly a budget of 50 requests out of 320 concurrent ones, across both workers", async () => {
      const token = await createToken({ limits: [{ metric: "requests", window: "total", max: 50 }] });
      const before = sim.requestsTo("/chat/completions").length;
      const statuses = await Promise.all(Array.from({ length: 320 }, (_, index) => chat(token.key, `budget ${index}`)));
      expect(statuses.filter((status) => status === 200)).toHaveLength(50);
      expect(statuses.filter((status) => status === 429)).toHaveLength(270);
      expect(sim.requestsTo("/chat/completions").length - before).toBe(50);
      expect(workersServing("/v1/chat/completions")).toEqual(new Set([1, 2]));
      // Each worker refuses the exhausted token on its next request as well.
      for (const connection of pinned) expect(await chatOn(connection, token.key)).toBe(429);
    });

    it("(c) holds a requests-per-minute limit across both workers", async () => {
      // Keep the burst inside one minute of the sliding window.
      const intoMinute = Date.now() % 60_000;
      if (intoMinute > 50_000) await sleep(60_000 - intoMinute + 200);
      const token = await createToken({ rate_limits: { rpm: 20 } });
      const before = sim.requestsTo("/chat/completions").length;
      const statuses = await Promise.all(Array.from({ length: 60 }, (_, index) => chat(token.key, `rate ${index}`)));
      expect(statuses.filter((status) => status === 200)).toHaveLength(20);
      expect(statuses.filter((status) => status === 429)).toHaveLength(40);
      expect(sim.requestsTo("/chat/completions").length - before).toBe(20);
      for (const connection of pinned) expect(await chatOn(connection, token.key)).toBe(429);
    });

    it("(d) a token disabled through the API is refused by every worker at once", async () => {
      const token = await createToken({ name: "roaming" });
      const [first, second] = pinned;
      // Both workers have the token cached.
      for (const connection of pinned) expect(await chatOn(connection, token.key)).toBe(200);
      const disabled = await first.request("PATCH", `/api/v1/tokens/${token.id}`, {
        token: admin.token,
        tenant: admin.tenant,
        body: { status: "disabled" },
      });
      expect(disabled.status).toBe(200);
      // The worker that made the change drops its cached copy before it answers; the other one as soon
      // as the event reaches it (through the primary, or Redis): well under the bound, not at a cache expiry.
      expect(await chatOn(first, token.key)).toBe(401);
      await eventually(async () => (await chatOn(second, token.key)) === 401, 1000);
      for (const connection of pinned) expect(await chatOn(connection, token.key)).toBe(401);
    });

    it("(e) a failing channel's circuit opens on both workers when one worker's traffic trips it", async () => {
      const key = (await createToken({ name: "circuit" })).key;
      const bad = await api("POST", "/api/v1/channels", {
        name: "failing",
        provider: "openai",
        base_url: failing.url,
        credentials: { api_key: "sk-failing" },
        models: ["gpt-4o-mini"],
        priority: 10,
      });
      expect(bad.status).toBe(201);
      const [first, second] = pinned;
      const circuit = async (connection: Connection) =>
        JSON.parse(
          (await connection.request("GET", `/api/v1/channels/${bad.json.id}/stats`, { token: admin.token, tenant: admin.tenant })).body,
        ).circuit.state as string;
      // Worker 1 tries the failing channel first (it has the higher priority), then fails over.
      await eventually(async () => (await chatOn(first, key)) === 200 && failing.requests.length > 0, 5000);
      for (let attempt = 0; attempt < 20 && (await circuit(first)) !== "open"; attempt++) expect(await chatOn(first, key)).toBe(200);
      expect(await circuit(first)).toBe("open");
      // Worker 2 sent the failing channel nothing (or less than a trip's worth), yet its circuit is open too.
      expect(await eventually(async () => (await circuit(second)) === "open", 2000)).toBe(true);
      const sent = failing.requests.length;
      for (let index = 0; index < 10; index++) {
        expect(await chatOn(second, key)).toBe(200);
        expect(await chatOn(first, key)).toBe(200);
      }
      expect(failing.requests.length).toBe(sent);
    });

    it("(f) /metrics answers the sum over both workers, whichever worker is asked", async () => {
      expect(workersServing("/v1/chat/completions")).toEqual(new Set([1, 2]));
      const route = { route: "/v1/chat/completions" };
      for (const connection of pinned) {
        await eventually(async () => {
          const text = (await connection.request("GET", "/metrics")).body;
          const ok = metricSum(text, "lyss_http_requests_total", { ...route, status_code: "200" });
          const refused = metricSum(text, "lyss_http_requests_total", { ...route, status_code: "429" });
          return ok === tally.get(200) && refused === tally.get(429);
        }, 3000);
      }
      const text = (await pinned[0].request("GET", "/metrics")).body;
      expect(metricSum(text, "lyss_http_requests_total", { ...route, status_code: "200" })).toBe(tally.get(200));
      expect(metricSum(text, "lyss_http_requests_total", { ...route, status_code: "401" })).toBe(tally.get(401));
      // Histograms add up too: every answered call is in one bucket of one worker's latency histogram.
      expect(metricSum(text, "lyss_http_request_duration_seconds_count", { ...route, status_code: "200" })).toBe(tally.get(200));
      expect(metricSum(text, "lyss_http_request_duration_seconds_bucket", { ...route, status_code: "200", le: "+Inf" })).toBe(
        tally.get(200),
      );
    });

    it("(h) replaces a worker that is killed, keeping the shared counters", async () => {
      const before = logLines(server).filter((line) => line.worker === 2 && /is listening/.test(line.msg ?? ""));
      const pid = before.at(-1)?.pid as number;
      process.kill(pid, "SIGKILL");
      await waitForLog(
        server,
        "the primary to notice",
        (line) => line.role === "primary" && line.pid === pid && /unexpectedly/.test(line.msg),
      );
      const replaced = await waitForLog(
        server,
        "a new worker 2",
        (line) => line.worker === 2 && /is listening/.test(line.msg ?? "") && line.pid !== pid,
      );
      expect(replaced.pid).not.toBe(pid);
      // The exhausted budget token stays exhausted on every worker, the new one included.
      const budget = await createToken({ limits: [{ metric: "requests", window: "total", max: 3 }] });
      const statuses = await Promise.all(Array.from({ length: 12 }, () => chat(budget.key)));
      expect(statuses.filter((status) => status === 200)).toHaveLength(3);
      expect(statuses.filter((status) => status === 429)).toHaveLength(9);
      await waitFor("the new worker 2 to serve", async () => {
        // A new connection each time: the cluster hands connections out in turn (a kept-alive one stays
        // with the worker that accepted it), so one soon reaches the new worker.
        const connection = new Connection(server.url);
        connections.push(connection);
        const id = randomUUID();
        count((await connection.request("POST", "/v1/chat/completions", { token: budget.key, body: chatBody("h"), id })).status);
        return (await servedBy(id)) === 2 ? true : undefined;
      });
    });

    it("(g) drains on SIGTERM: new connections are refused, the in-flight request finishes, every process exits 0", async () => {
      const key = (await createToken({ name: "slow" })).key;
      sim.fail({ path: "/chat/completions" }, { delayMs: 1500, times: 1 });
      const before = sim.requests.length;
      let settled = false;
      const slow = chat(key, "slow").finally(() => {
        settled = true;
      });
      await waitFor("the slow request to reach the upstream", () => (sim.requests.length > before ? true : undefined));
      server.child.kill("SIGTERM");
      await waitForLog(server, "the drain to begin", (line) => line.role === "primary" && /draining every worker/.test(line.msg));
      await waitFor("new connections to be refused", async () => ((await connectionRefused(server.port)) ? true : undefined), 5000);
      expect(settled).toBe(false);
      expect(await slow).toBe(200);
      const exit = await Promise.race([server.exited, sleep(20_000).then(() => "still running")]);
      const lifecycle = logLines(server)
        .filter((line) => line.role === "primary" || line.level !== "info" || /shut/.test(line.msg ?? ""))
        .map((line) => JSON.stringify(line));
      expect(exit, [server.output.stderr, ...lifecycle].join("\n")).toEqual({ code: 0, signal: null });
      const clean = logLines(server).filter((line) => line.msg === "shut down cleanly");
      expect(clean.map((line) => line.worker).sort()).toEqual([1, 2]);
      expect(server.output.stdout).toContain("every worker has stopped; shut down cleanly");
    });
  });
}
