import cluster from "node:cluster";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { Command, Option } from "commander";
import type { Services } from "./app.ts";
import { type Config, ConfigError, loadConfig } from "./config/env.ts";
import type { Infra } from "./context.ts";
import { assertSchemaNotNewer, migrateToLatest, pendingMigrations } from "./db/migrate.ts";
import { decodeKey, loadMasterKey } from "./infra/crypto.ts";
import { openDatabase, pingDatabase } from "./infra/db.ts";
import { createLogger } from "./infra/logger.ts";
import { createRedis } from "./infra/redis.ts";
import { SYSTEM_ACTOR } from "./modules/audit/service.ts";
import { rotateCredentialKey } from "./modules/channels/rotate-key.ts";
import { findUserByEmail } from "./modules/users/repository.ts";

function config(source: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(source);
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const issue of error.issues) process.stderr.write(`configuration error: ${issue.variable}: ${issue.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

/** Runs a command against the configured database and Redis, then closes them. */
async function withServices<T>(run: (services: Services, infra: Infra) => Promise<T>): Promise<T> {
  // The admin commands read LYSS_ADMIN_PASSWORD as their --password; the server's first-administrator
  // pair (LYSS_ADMIN_EMAIL with LYSS_ADMIN_PASSWORD) does not apply to them.
  const source = { ...process.env, LYSS_ADMIN_EMAIL: undefined, LYSS_ADMIN_PASSWORD: undefined };
  // The server's modules load only for the commands that need them, so `--help` stays quick.
  const { createInfra, createServices } = await import("./app.ts");
  const infra = await createInfra({ config: config(source), logger: createLogger("warn") });
  const services = createServices(infra);
  try {
    return await run(services, infra);
  } finally {
    await services.close();
    await infra.closeRedis();
    await infra.db.close();
  }
}

function fail(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
}

const program = new Command("lyss").description("Lyss: self-hosted multi-tenant AI platform").showHelpAfterError();

program
  .command("start")
  .description("start the server (migrates the database first)")
  .option("--no-migrate", "do not run migrations; refuse to start if any are pending")
  .action(async (options: { migrate: boolean }) => {
    const current = config();
    // LYSS_WORKERS > 1: this process becomes the cluster primary, which forks workers that run this
    // same command again (cluster.fork re-runs the entry script) and take the worker path below.
    if (cluster.isPrimary && current.workers > 1) {
      const { runPrimary } = await import("./primary.ts");
      await runPrimary(current, { migrate: options.migrate });
      return;
    }
    const { startServer } = await import("./main.ts");
    await startServer(current, { migrate: options.migrate });
  });

program
  .command("migrate")
  .description("apply pending database migrations and exit")
  .action(async () => {
    const current = config();
    const db = await openDatabase(current);
    try {
      const results = await migrateToLatest(db);
      if (results.length === 0) process.stdout.write(`${db.location}: up to date\n`);
      for (const result of results) process.stdout.write(`${result.migrationName}: ${result.status}\n`);
    } finally {
      await db.close();
    }
  });

const admin = program.command("admin").description("manage administrators");

admin
  .command("create")
  .description("create a platform administrator (the first one also gets a first tenant)")
  .requiredOption("--email <email>", "email address")
  .addOption(new Option("--password <password>", "password (or LYSS_ADMIN_PASSWORD)").env("LYSS_ADMIN_PASSWORD"))
  .option("--name <name>", "display name", "Administrator")
  .action(async (options: { email: string; password?: string; name: string }) => {
    if (!options.password || options.password.length < 8) fail("a password of at least 8 characters is required");
    const password = options.password;
    await withServices(async (services) => {
      const email = options.email.toLowerCase();
      if (!(await services.auth.isSetUp())) {
        await services.auth.setup(SYSTEM_ACTOR, { email, password, name: options.name }, { ip: null, userAgent: "cli" });
        process.stdout.write(`created platform administrator ${email} and the tenant "Default"\n`);
        return;
      }
      try {
        await services.users.create(SYSTEM_ACTOR, { email, password, name: options.name, is_platform_admin: true });
      } catch (error) {
        fail((error as Error).message);
      }
      process.stdout.write(`created platform administrator ${email}\n`);
    });
  });

admin
  .command("reset-password")
  .description("set a user's password and end their sessions")
  .requiredOption("--email <email>", "the user's email")
  .addOption(new Option("--password <password>", "the new password (or LYSS_ADMIN_PASSWORD)").env("LYSS_ADMIN_PASSWORD"))
  .action(async (options: { email: string; password?: string }) => {
    if (!options.password || options.password.length < 8) fail("a password of at least 8 characters is required");
    const password = options.password;
    await withServices(async (services, infra) => {
      const user = await findUserByEmail(infra.db.kysely, options.email);
      if (!user) fail(`no user has the email ${options.email}`);
      await services.users.resetPassword(SYSTEM_ACTOR, user.id, password);
      process.stdout.write(`password reset for ${user.email}; their sessions have ended\n`);
    });
  });

program
  .command("rotate-key")
  .description("re-encrypt every channel's credentials under a new master key")
  .option("--new-key <key>", "the new key (64 hex characters, base64 of 32 bytes, or 32+ characters); generated when omitted")
  .action(async (options: { newKey?: string }) => {
    const current = config();
    const newKeyText = options.newKey ?? randomBytes(32).toString("base64");
    if (newKeyText.length < 32) fail("the new key must have at least 32 characters");
    const oldMaster = loadMasterKey(current.secretKey, current.dataDir);
    const newMaster = decodeKey(newKeyText);
    const db = await openDatabase(current);
    const keyFile = path.join(current.dataDir, "secret.key");
    const staged = `${keyFile}.new`;
    try {
      await assertSchemaNotNewer(db);
      if (!current.secretKey) fs.writeFileSync(staged, `${newKeyText}\n`, { mode: 0o600 });
      const count = await rotateCredentialKey(db.kysely, oldMaster, newMaster);
      if (current.secretKey) {
        process.stdout.write(
          `re-encrypted ${count} channel(s). Set LYSS_SECRET_KEY to the new key on every instance and restart them:\n${newKeyText}\n`,
        );
      } else {
        fs.renameSync(staged, keyFile);
        process.stdout.write(`re-encrypted ${count} channel(s); ${keyFile} now holds the new key. Restart every instance.\n`);
      }
    } catch (error) {
      fs.rmSync(staged, { force: true });
      fail(`rotation failed, nothing changed: ${(error as Error).message}`);
    } finally {
      await db.close();
    }
  });

program
  .command("doctor")
  .description("check the configuration, the database, Redis and the data directory")
  .action(async () => {
    let failures = 0;
    const report = (ok: boolean, what: string, detail: string) => {
      if (!ok) failures++;
      process.stdout.write(`${ok ? "ok  " : "FAIL"}  ${what}: ${detail}\n`);
    };
    const current = config();
    report(true, "configuration", `port ${current.port}, data directory ${current.dataDir}, ${current.workers} worker(s)`);
    try {
      fs.mkdirSync(current.dataDir, { recursive: true });
      fs.accessSync(current.dataDir, fs.constants.R_OK | fs.constants.W_OK);
      const mode = fs.statSync(current.dataDir).mode & 0o777;
      report(true, "data directory", `${current.dataDir} is writable (mode ${mode.toString(8)})`);
      const keyFile = `${current.dataDir}/secret.key`;
      if (!current.secretKey && fs.existsSync(keyFile)) {
        const keyMode = fs.statSync(keyFile).mode & 0o777;
        report((keyMode & 0o077) === 0, "master key file", `${keyFile} has mode ${keyMode.toString(8)}`);
      }
    } catch (error) {
      report(false, "data directory", (error as Error).message);
    }
    const db = await openDatabase(current);
    try {
      await pingDatabase(db);
      const pending = await pendingMigrations(db);
      report(true, "database", `${db.dialect} at ${db.location}`);
      report(true, "migrations", pending.length ? `pending: ${pending.join(", ")} (run lyss migrate)` : "up to date");
    } catch (error) {
      report(false, "database", (error as Error).message);
    } finally {
      await db.close();
    }
    if (current.redisUrl) {
      const redis = await createRedis(current.redisUrl, createLogger("silent"), "doctor");
      try {
        const pong = await Promise.race([
          redis.ping(),
          new Promise<string>((_, reject) => setTimeout(() => reject(new Error("no answer within 3 s")), 3000)),
        ]);
        report(pong === "PONG", "redis", current.redisUrl.replace(/\/\/[^@]*@/, "//***@"));
      } catch (error) {
        report(false, "redis", (error as Error).message);
      } finally {
        redis.disconnect();
      }
    } else {
      report(true, "redis", "not configured (counters and events stay in this process)");
    }
    process.exitCode = failures ? 1 : 0;
  });

await program.parseAsync(process.argv);
