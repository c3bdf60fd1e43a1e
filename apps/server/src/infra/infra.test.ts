import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../config/env.ts";
import { decryptSecret, encryptSecret, hashPassword, loadMasterKey, verifyPassword } from "./crypto.ts";
import { openSqlite } from "./db.ts";
import { createLogger } from "./logger.ts";

const directories: string[] = [];

function temporaryDirectory() {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "lyss-infra-"));
  directories.push(directory);
  return directory;
}

afterEach(() => {
  for (const directory of directories.splice(0)) fs.rmSync(directory, { recursive: true, force: true });
});

describe("secret encryption", () => {
  const key = randomBytes(32);

  it("round-trips a secret, bound to its associated data", () => {
    const sealed = encryptSecret(key, "sk-live-ünïcode-秘密", "channel:42");
    expect(sealed).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(sealed).not.toContain("sk-live");
    expect(decryptSecret(key, sealed, "channel:42")).toBe("sk-live-ünïcode-秘密");
    expect(decryptSecret(key, encryptSecret(key, ""))).toBe("");
  });

  it("uses a fresh IV, so two encryptions of the same secret differ", () => {
    const first = encryptSecret(key, "same secret");
    const second = encryptSecret(key, "same secret");
    expect(first).not.toBe(second);
    expect(first.split(".")[1]).not.toBe(second.split(".")[1]);
    expect(decryptSecret(key, first)).toBe(decryptSecret(key, second));
  });

  it("refuses tampered ciphertext, tag or IV, other associated data and another key", () => {
    const sealed = encryptSecret(key, "a provider key", "channel:1");
    const [version, iv, tag, ciphertext] = sealed.split(".") as [string, string, string, string];
    const flip = (part: string) => {
      const bytes = Buffer.from(part, "base64url");
      bytes[0] = (bytes[0] ?? 0) ^ 0x01;
      return bytes.toString("base64url");
    };
    expect(() => decryptSecret(key, [version, iv, tag, flip(ciphertext)].join("."), "channel:1")).toThrow();
    expect(() => decryptSecret(key, [version, iv, flip(tag), ciphertext].join("."), "channel:1")).toThrow();
    expect(() => decryptSecret(key, [version, flip(iv), tag, ciphertext].join("."), "channel:1")).toThrow();
    expect(() => decryptSecret(key, sealed, "channel:2")).toThrow();
    expect(() => decryptSecret(key, sealed)).toThrow();
    expect(() => decryptSecret(randomBytes(32), sealed, "channel:1")).toThrow();
    expect(() => decryptSecret(key, `v2.${iv}.${tag}.${ciphertext}`, "channel:1")).toThrow(/unrecognised/);
    expect(() => decryptSecret(key, "garbage", "channel:1")).toThrow();
  });
});

describe("master key", () => {
  it("creates secret.key with mode 0600 once and reads the same key afterwards", () => {
    const dataDir = path.join(temporaryDirectory(), "nested", "data");
    const first = loadMasterKey(undefined, dataDir);
    expect(first).toHaveLength(32);
    const file = path.join(dataDir, "secret.key");
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const content = fs.readFileSync(file, "utf8");
    const second = loadMasterKey(undefined, dataDir);
    expect(second.equals(first)).toBe(true);
    expect(fs.readFileSync(file, "utf8")).toBe(content);
    expect(loadMasterKey(undefined, temporaryDirectory()).equals(first)).toBe(false);
  });

  it("uses LYSS_SECRET_KEY as given, in hex or base64, without writing a file", () => {
    const raw = randomBytes(32);
    const dataDir = temporaryDirectory();
    expect(loadMasterKey(raw.toString("hex"), dataDir).equals(raw)).toBe(true);
    expect(loadMasterKey(raw.toString("base64"), dataDir).equals(raw)).toBe(true);
    expect(fs.existsSync(path.join(dataDir, "secret.key"))).toBe(false);
    // A passphrase that is neither is stretched into a stable 32-byte key.
    const passphrase = "a-long-passphrase-that-is-not-hex-or-base64-key";
    const derived = loadMasterKey(passphrase, dataDir);
    expect(derived).toHaveLength(32);
    expect(loadMasterKey(passphrase, dataDir).equals(derived)).toBe(true);
  });

  it("accepts LYSS_SECRET_KEY through the configuration", () => {
    const raw = randomBytes(32);
    const config = loadConfig({ LYSS_SECRET_KEY: raw.toString("base64") });
    expect(config.secretKey && loadMasterKey(config.secretKey, temporaryDirectory()).equals(raw)).toBe(true);
  });
});

describe("password hashing", () => {
  it("verifies the right password only, with a salted scrypt hash", async () => {
    const hash = await hashPassword("correct horse battery");
    expect(hash).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(hash).not.toContain("correct horse");
    expect(await verifyPassword("correct horse battery", hash)).toBe(true);
    expect(await verifyPassword("correct horse battery!", hash)).toBe(false);
    expect(await verifyPassword("", hash)).toBe(false);
    expect(await hashPassword("correct horse battery")).not.toBe(hash);
    expect(await verifyPassword("anything", "not-a-hash")).toBe(false);
    expect(await verifyPassword("anything", "bcrypt$1$2$3$4$5")).toBe(false);
  });

  it("normalises Unicode before hashing", async () => {
    const hash = await hashPassword("caf\u00e9-password");
    expect(await verifyPassword("cafe\u0301-password", hash)).toBe(true);
  });
});

describe("logger", () => {
  function memoryLogger() {
    const lines: string[] = [];
    const logger = createLogger("info", { write: (chunk: string) => void lines.push(chunk) });
    return { logger, entries: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>), text: () => lines.join("") };
  }

  it("redacts credentials wherever a request or body carries them", () => {
    const { logger, entries, text } = memoryLogger();
    logger.info(
      {
        req: {
          method: "POST",
          url: "/api/v1/auth/login",
          headers: { authorization: "Bearer eyJ-secret-jwt", "x-api-key": "sk-header-key" },
        },
        body: { email: "a@example.com", password: "hunter2-body", api_key: "sk-body-key", credentials: { api_key: "sk-nested" } },
        channel: { name: "openai", credentials: "sk-channel-credentials" },
        password: "hunter2-top",
        api_key: "sk-top-level",
        credentials: { token: "sk-top-credentials" },
      },
      "a request",
    );
    const output = text();
    for (const secret of [
      "eyJ-secret-jwt",
      "sk-header-key",
      "hunter2-body",
      "sk-body-key",
      "sk-nested",
      "sk-channel-credentials",
      "hunter2-top",
      "sk-top-level",
      "sk-top-credentials",
    ]) {
      expect(output).not.toContain(secret);
    }
    const [entry] = entries();
    expect(entry).toMatchObject({
      level: "info",
      service: "lyss",
      msg: "a request",
      req: { method: "POST", url: "/api/v1/auth/login", headers: { authorization: "[redacted]" } },
      body: { email: "a@example.com", password: "[redacted]", api_key: "[redacted]", credentials: "[redacted]" },
      channel: { name: "openai", credentials: "[redacted]" },
      password: "[redacted]",
      api_key: "[redacted]",
      credentials: "[redacted]",
    });
  });

  it("respects the level", () => {
    const lines: string[] = [];
    const logger = createLogger("warn", { write: (chunk: string) => void lines.push(chunk) });
    logger.info("hidden");
    logger.warn("shown");
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? "{}")).toMatchObject({ level: "warn", msg: "shown" });
  });
});

describe("configuration", () => {
  function configError(environment: Record<string, string>): ConfigError {
    try {
      loadConfig(environment);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return error as ConfigError;
    }
    throw new Error(`loadConfig accepted ${JSON.stringify(environment)}`);
  }

  it.each([
    [{ PORT: "abc" }, "PORT"],
    [{ PORT: "70000" }, "PORT"],
    [{ DATABASE_URL: "mysql://x" }, "DATABASE_URL"],
    [{ REDIS_URL: "http://localhost:6379" }, "REDIS_URL"],
    [{ LOG_LEVEL: "loud" }, "LOG_LEVEL"],
    [{ LYSS_SECRET_KEY: "short" }, "LYSS_SECRET_KEY"],
    [{ LYSS_ACCESS_TOKEN_TTL: "-5" }, "LYSS_ACCESS_TOKEN_TTL"],
  ])("rejects %j naming %s", (environment, variable) => {
    const error = configError(environment);
    expect(error.message).toContain(variable);
    expect(error.issues.map((issue) => issue.variable)).toContain(variable);
  });

  it("requires LYSS_ADMIN_EMAIL and LYSS_ADMIN_PASSWORD together", () => {
    const withoutPassword = configError({ LYSS_ADMIN_EMAIL: "admin@example.com" });
    expect(withoutPassword.message).toContain("LYSS_ADMIN_PASSWORD");
    expect(withoutPassword.message).toContain("LYSS_ADMIN_EMAIL");
    expect(configError({ LYSS_ADMIN_PASSWORD: "long-enough-password" }).message).toContain("LYSS_ADMIN_EMAIL");
    expect(loadConfig({ LYSS_ADMIN_EMAIL: "Admin@Example.com", LYSS_ADMIN_PASSWORD: "long-enough-password" }).bootstrapAdmin).toEqual({
      email: "admin@example.com",
      password: "long-enough-password",
    });
  });

  it("reports every bad variable at once", () => {
    const error = configError({ PORT: "abc", DATABASE_URL: "mysql://x" });
    expect(error.issues.map((issue) => issue.variable).sort()).toEqual(["DATABASE_URL", "PORT"]);
  });

  it("applies defaults, treating empty values as unset", () => {
    const config = loadConfig({ PORT: "", DATABASE_URL: "" });
    expect(config).toMatchObject({
      env: "development",
      port: 3000,
      host: "0.0.0.0",
      dataDir: path.resolve("./data"),
      databaseUrl: undefined,
      redisUrl: undefined,
      redisPrefix: "lyss:",
      secretKey: undefined,
      bootstrapAdmin: undefined,
      logLevel: "info",
      accessTokenTtlSeconds: 900,
      refreshTokenTtlSeconds: 30 * 24 * 3600,
      bodyLimitBytes: 1024 * 1024,
      shutdownTimeoutMs: 10_000,
      login: { maxFailuresPerAccount: 5, maxAttemptsPerIp: 30, windowSeconds: 900 },
      trustProxy: false,
      heapGrowthPercent: 30,
    });
  });

  it("parses the values it is given", () => {
    const config = loadConfig({
      PORT: "8080",
      HOST: "127.0.0.1",
      LYSS_DATA_DIR: "/var/lib/lyss",
      DATABASE_URL: "postgresql://lyss:pw@db:5432/lyss",
      REDIS_URL: "rediss://cache:6380",
      LYSS_TRUST_PROXY: "1",
      LYSS_SHUTDOWN_TIMEOUT: "2500",
      LYSS_HEAP_GROWTH_PERCENT: "0",
    });
    expect(config).toMatchObject({
      port: 8080,
      host: "127.0.0.1",
      dataDir: "/var/lib/lyss",
      databaseUrl: "postgresql://lyss:pw@db:5432/lyss",
      redisUrl: "rediss://cache:6380",
      trustProxy: true,
      shutdownTimeoutMs: 2500,
      heapGrowthPercent: 0,
    });
  });
});

describe("a SQLite file opened by several processes at once", () => {
  it("opens in every one of them, each time (the switch to WAL mode is waited for)", { timeout: 60_000 }, async () => {
    const directory = temporaryDirectory();
    // Three processes open each of 30 new files at the same instant, 150 ms apart. Before the switch
    // was tried again, about one open in twenty failed with SQLITE_BUSY.
    // (5 s leaves time for the three processes to start on a slow machine.)
    const start = Date.now() + 5000;
    const files = Array.from({ length: 30 }, (_, index) => `${path.join(directory, `race-${index}.db`)}@${start + index * 150}`);
    const script = path.join(import.meta.dirname, "../test/open-race.ts");
    const run = () => promisify(execFile)(process.execPath, ["--import", "tsx", script, ...files], { timeout: 50_000 });
    const outcomes = (await Promise.all([run(), run(), run()])).flatMap((result) => result.stdout.trim().split("\n"));
    expect(outcomes).toHaveLength(90);
    expect(outcomes.filter((outcome) => outcome !== "ok")).toEqual([]);
  });
});

describe("a SQLite connection", () => {
  it("keeps its temporary storage (statement journals) in memory only when asked to", async () => {
    const file = path.join(temporaryDirectory(), "lyss.db");
    for (const [tempInMemory, expected] of [
      [false, 0],
      [true, 2],
    ] as const) {
      const db = openSqlite(file, { tempInMemory });
      const { rows } = await sql<{ temp_store: number }>`PRAGMA temp_store`.execute(db.kysely);
      expect(rows[0]?.temp_store).toBe(expected);
      await db.close();
    }
  });

  it("binds a statement's values, up to SQLite's limit of 32,766, for reads, writes and iteration", async () => {
    const db = openSqlite(path.join(temporaryDirectory(), "lyss.db"));
    await sql`create table numbers (value integer, label text)`.execute(db.kysely);
    const values = Array.from({ length: 16_383 }, (_, index) => ({ value: index, label: index % 2 ? null : `n${index}` }));
    await db.kysely
      .insertInto("numbers" as never)
      .values(values as never)
      .execute();
    const { rows } = await sql<{ total: number; labels: number }>`select sum(value) as total, count(label) as labels from numbers`.execute(
      db.kysely,
    );
    expect(rows[0]).toEqual({ total: (16_383 * 16_382) / 2, labels: 8_192 });
    const picked = await db.kysely
      .selectFrom("numbers" as never)
      .select(sql<number>`value`.as("value"))
      .where(sql`value`, "in", [0, 7, 16_382, 99_999])
      .orderBy(sql`value`)
      .execute();
    expect(picked).toEqual([{ value: 0 }, { value: 7 }, { value: 16_382 }]);
    const streamed: unknown[] = [];
    const labels = db.kysely
      .selectFrom("numbers" as never)
      .select(sql<string>`label`.as("label"))
      .where(sql`value`, "<", 3)
      .orderBy(sql`value`);
    for await (const row of labels.stream()) streamed.push(row);
    expect(streamed).toEqual([{ label: "n0" }, { label: null }, { label: "n2" }]);
    await expect(sql`select ${1} as one, ${2} as two`.execute(db.kysely)).resolves.toMatchObject({ rows: [{ one: 1, two: 2 }] });
    await db.close();
  });
});
