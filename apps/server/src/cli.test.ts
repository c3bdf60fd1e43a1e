import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import SQLite from "better-sqlite3";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { migrateToLatest } from "./db/migrate.ts";
import { MIGRATIONS } from "./db/migrations/index.ts";
import { openDatabase } from "./infra/db.ts";
import { createTestApp, freshStorage, type TestApp } from "./test/test-app.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const BIN = path.join(ROOT, "apps/server/bin/lyss.js");
const KNOWN_MIGRATIONS = Object.keys(MIGRATIONS).sort();

type Storage = Awaited<ReturnType<typeof freshStorage>>;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Only what a shell would pass on, plus the test's storage: no TEST_* or other variables leak in. */
function processEnv(env: Record<string, string>): Record<string, string> {
  const inherited: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "TMPDIR", "LANG", "SYSTEMROOT"]) {
    const value = process.env[name];
    if (value !== undefined) inherited[name] = value;
  }
  return { ...inherited, ...env };
}

/** Runs `node apps/server/bin/lyss.js <args>` to completion; a run that hangs is killed and reported. */
function lyss(args: string[], env: Record<string, string>, timeoutMs = 40_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: processEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      stderr += `\n[test] lyss ${args.join(" ")} did not exit within ${timeoutMs} ms; killed\n`;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

async function migrationRows(storage: Storage): Promise<{ name: string; count: number }[]> {
  const query = "select name, count(*) as count from lyss_migrations group by name order by name";
  if (storage.databaseUrl) {
    const client = new pg.Client({ connectionString: storage.databaseUrl });
    await client.connect();
    try {
      const result = await client.query<{ name: string; count: string }>(query);
      return result.rows.map((row) => ({ name: row.name, count: Number(row.count) }));
    } finally {
      await client.end();
    }
  }
  const database = new SQLite(path.join(storage.dataDir, "lyss.db"));
  try {
    return database.prepare<[], { name: string; count: number }>(query).all();
  } finally {
    database.close();
  }
}

async function insertMigrationRow(storage: Storage, name: string) {
  const query = "insert into lyss_migrations (name, timestamp) values ($1, $2)";
  const timestamp = new Date().toISOString();
  if (storage.databaseUrl) {
    const client = new pg.Client({ connectionString: storage.databaseUrl });
    await client.connect();
    try {
      await client.query(query, [name, timestamp]);
    } finally {
      await client.end();
    }
    return;
  }
  const database = new SQLite(path.join(storage.dataDir, "lyss.db"));
  try {
    database.prepare("insert into lyss_migrations (name, timestamp) values (?, ?)").run(name, timestamp);
  } finally {
    database.close();
  }
}

/** Asserts a successful exit, showing the process's output when it was not. */
function expectSuccess(run: Run) {
  expect(run, `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`).toMatchObject({ code: 0 });
}

describe("lyss CLI", { timeout: 90_000 }, () => {
  let storage: Storage;
  let app: TestApp | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
    await storage?.drop();
  });

  it("prints usage for --help and for every command's --help, exiting 0", async () => {
    storage = await freshStorage();
    const commands = [[], ["start"], ["migrate"], ["admin", "create"], ["admin", "reset-password"], ["doctor"]];
    const runs = await Promise.all(commands.map((command) => lyss([...command, "--help"], storage.env)));
    for (const [index, run] of runs.entries()) {
      const command = commands[index] ?? [];
      expectSuccess(run);
      expect(run.stdout).toContain(`Usage: ${["lyss", ...command].join(" ")} [options]`);
      expect(run.stdout).toContain("--help");
    }
    const [top, start, , create, reset] = runs;
    for (const command of ["start", "migrate", "admin", "doctor"]) expect(top?.stdout).toMatch(new RegExp(`^\\s+${command}\\b`, "m"));
    expect(start?.stdout).toContain("--no-migrate");
    expect(create?.stdout).toContain("--email <email>");
    expect(create?.stdout).toContain("--password <password>");
    expect(reset?.stdout).toContain("--email <email>");
    // --help touches nothing: no database file appears in the data directory.
    expect(fs.existsSync(path.join(storage.dataDir, "lyss.db"))).toBe(false);
  });

  it("migrate applies every migration to an empty database, and a second run is up to date", async () => {
    storage = await freshStorage();
    const first = await lyss(["migrate"], storage.env);
    expectSuccess(first);
    for (const name of KNOWN_MIGRATIONS) expect(first.stdout).toContain(`${name}: Success`);
    expect(await migrationRows(storage)).toEqual(KNOWN_MIGRATIONS.map((name) => ({ name, count: 1 })));

    const second = await lyss(["migrate"], storage.env);
    expectSuccess(second);
    expect(second.stdout).toContain("up to date");
    expect(second.stdout).not.toContain("Success");
    expect(await migrationRows(storage)).toEqual(KNOWN_MIGRATIONS.map((name) => ({ name, count: 1 })));
  });

  it("two migrate processes started together both succeed and record each migration once", async () => {
    storage = await freshStorage();
    const runs = await Promise.all([lyss(["migrate"], storage.env), lyss(["migrate"], storage.env)]);
    for (const run of runs) expectSuccess(run);
    // Exactly one of them applied the migrations; the other waited and found nothing to do.
    for (const name of KNOWN_MIGRATIONS) {
      expect(runs.filter((run) => run.stdout.includes(`${name}: Success`))).toHaveLength(1);
    }
    expect(await migrationRows(storage)).toEqual(KNOWN_MIGRATIONS.map((name) => ({ name, count: 1 })));
  });

  it("admin create makes the first administrator; admin reset-password replaces the password", async () => {
    storage = await freshStorage();
    const email = "root@example.com";
    const created = await lyss(["admin", "create", "--email", "Root@Example.com", "--password", "first-password-1"], storage.env);
    expectSuccess(created);
    expect(created.stdout).toContain(`created platform administrator ${email}`);

    app = await createTestApp({ storage });
    const login = (password: string) => app?.call("POST", "/api/v1/auth/login", { body: { email, password } });
    const signedIn = await login("first-password-1");
    expect(signedIn?.status).toBe(200);
    expect(signedIn?.body.user).toMatchObject({ email, is_platform_admin: true });
    const me = await app.call("GET", "/api/v1/auth/me", { token: signedIn?.body.access_token });
    expect(me.status).toBe(200);
    expect(me.body.memberships).toEqual([expect.objectContaining({ role: "owner" })]);

    const [reset, second] = await Promise.all([
      lyss(["admin", "reset-password", "--email", email, "--password", "second-password-2"], storage.env),
      // The password may come from LYSS_ADMIN_PASSWORD instead of the command line.
      lyss(["admin", "create", "--email", "second@example.com"], { ...storage.env, LYSS_ADMIN_PASSWORD: "second-admin-pw" }),
    ]);
    expectSuccess(reset);
    expect(reset.stdout).toContain(`password reset for ${email}`);
    expectSuccess(second);
    expect(second.stdout).toContain("created platform administrator second@example.com");

    expect((await login("first-password-1"))?.status).toBe(401);
    expect((await login("second-password-2"))?.status).toBe(200);
    // The reset ended the sessions that existed before it.
    expect((await app.call("POST", "/api/v1/auth/refresh", { body: { refresh_token: signedIn?.body.refresh_token } })).status).toBe(401);
    const secondLogin = await app.call("POST", "/api/v1/auth/login", {
      body: { email: "second@example.com", password: "second-admin-pw" },
    });
    expect(secondLogin.status).toBe(200);
    expect(secondLogin.body.user.is_platform_admin).toBe(true);
  });

  it("doctor exits 0 on a healthy setup and non-zero when the database cannot be reached", async () => {
    storage = await freshStorage();
    const [healthy, broken] = await Promise.all([
      lyss(["doctor"], storage.env),
      lyss(["doctor"], { ...storage.env, DATABASE_URL: "postgres://postgres@127.0.0.1:1/x" }),
    ]);
    expectSuccess(healthy);
    expect(healthy.stdout).not.toContain("FAIL");
    expect(healthy.stdout).toMatch(/^ok\s+database: /m);
    expect(healthy.stdout).toMatch(/^ok\s+redis: /m);
    expect(healthy.stdout).toMatch(/^ok\s+data directory: /m);

    expect(broken.code).not.toBe(0);
    expect(broken.code).not.toBeNull();
    expect(broken.stdout).toMatch(/^FAIL\s+database: /m);
  });

  it("refuses a bad configuration value, naming the variable", async () => {
    storage = await freshStorage();
    const badPort = await lyss(["start"], { ...storage.env, PORT: "abc" }, 20_000);
    expect(badPort.code).not.toBe(0);
    expect(badPort.code).not.toBeNull();
    expect(badPort.stderr).toMatch(/configuration error: PORT\b/);
  });

  it("start and migrate refuse a database migrated by a newer Lyss", async () => {
    storage = await freshStorage();
    const db = await openDatabase({ databaseUrl: storage.databaseUrl, dataDir: storage.dataDir });
    try {
      await migrateToLatest(db);
    } finally {
      await db.close();
    }
    await insertMigrationRow(storage, "9999_future");

    // PORT=0 so that a start that wrongly went ahead would still listen somewhere, and be killed by the timeout.
    const env = { ...storage.env, PORT: "0", HOST: "127.0.0.1" };
    const runs = await Promise.all([lyss(["start"], env, 25_000), lyss(["migrate"], env, 25_000)]);
    for (const run of runs) {
      expect(run.code, run.stderr).not.toBe(0);
      expect(run.code, run.stderr).not.toBeNull();
      expect(run.stderr).toContain("newer Lyss");
      expect(run.stderr).toContain("9999_future");
    }
    expect(await migrationRows(storage)).toEqual([...KNOWN_MIGRATIONS, "9999_future"].sort().map((name) => ({ name, count: 1 })));
  });
});

describe("production build", () => {
  it("is ASCII only, so V8 holds its source at one byte a character", () => {
    // `npm install` builds dist/ (postinstall), as CI's clean install does.
    const dist = path.join(ROOT, "apps/server/dist");
    const files = fs.readdirSync(dist).filter((name) => name.endsWith(".js"));
    expect(files).toContain("lyss.js");
    for (const name of files) {
      const text = fs.readFileSync(path.join(dist, name), "latin1");
      expect(/[\u0080-\u00ff]/.exec(text)?.index, name).toBeUndefined();
    }
  });
});
