import os from "node:os";
import path from "node:path";
import { z } from "zod";

const ZBooleanString = z.enum(["true", "false", "1", "0"]).transform((value) => value === "true" || value === "1");

const ZDuration = z.coerce.number().int().positive();

/**
 * Every environment variable Lyss reads, with its default. The README's configuration table mirrors
 * this list; `lyss doctor` prints the parsed result.
 */
export const ZEnvironment = z.object({
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default("0.0.0.0"),
  LYSS_DATA_DIR: z.string().min(1).default("./data"),
  DATABASE_URL: z
    .string()
    .regex(/^(postgres|postgresql):\/\//, "must be a postgres:// URL; leave unset for the embedded SQLite file")
    .optional(),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL")
    .optional(),
  LYSS_REDIS_PREFIX: z.string().min(1).max(64).default("lyss:"),
  LYSS_SECRET_KEY: z
    .string()
    .regex(/^[A-Za-z0-9+/=_-]{32,}$/, "must be at least 32 characters of base64 or hex")
    .optional(),
  LYSS_ADMIN_EMAIL: z.string().email().optional(),
  LYSS_ADMIN_PASSWORD: z.string().min(8).optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  LYSS_ACCESS_TOKEN_TTL: ZDuration.default(900),
  LYSS_REFRESH_TOKEN_TTL: ZDuration.default(30 * 24 * 3600),
  LYSS_BODY_LIMIT: ZDuration.default(1024 * 1024),
  LYSS_SHUTDOWN_TIMEOUT: ZDuration.default(10_000),
  LYSS_LOGIN_MAX_FAILURES: ZDuration.default(5),
  LYSS_LOGIN_IP_MAX_ATTEMPTS: ZDuration.default(30),
  LYSS_LOGIN_WINDOW: ZDuration.default(900),
  LYSS_PUBLIC_IP_MAX_PER_MINUTE: ZDuration.default(60),
  LYSS_TRUST_PROXY: ZBooleanString.default(false),
  LYSS_GATEWAY_BODY_LIMIT: ZDuration.default(20 * 1024 * 1024),
  LYSS_GATEWAY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(3),
  LYSS_UPSTREAM_CONNECTIONS: z.coerce.number().int().min(0).max(1_000_000).default(0),
  LYSS_STREAM_KEEPALIVE_MS: ZDuration.default(15_000),
  LYSS_HEAP_GROWTH_PERCENT: z.coerce.number().int().min(0).max(1000).default(30),
  /** Default: one per core (os.availableParallelism()) when NODE_ENV is production, otherwise 1. */
  LYSS_WORKERS: z.coerce.number().int().min(1).max(64).optional(),
});

export type TEnvironment = z.infer<typeof ZEnvironment>;

export interface Config {
  env: TEnvironment["NODE_ENV"];
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  redisPrefix: string;
  secretKey: string | undefined;
  bootstrapAdmin: { email: string; password: string } | undefined;
  logLevel: TEnvironment["LOG_LEVEL"];
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  bodyLimitBytes: number;
  shutdownTimeoutMs: number;
  login: { maxFailuresPerAccount: number; maxAttemptsPerIp: number; windowSeconds: number };
  /** Calls per minute from one address to unauthenticated routes, and failed API-key checks. */
  publicIpMaxPerMinute: number;
  trustProxy: boolean;
  /** Worker processes sharing the port (node:cluster); 1 runs the server in this process alone. */
  workers: number;
  /** How far V8's old space may grow past the live heap before a full collection, percent; 0 for V8's own choice. */
  heapGrowthPercent: number;
  gateway: {
    bodyLimitBytes: number;
    maxAttempts: number;
    keepAliveMs: number;
    /** Most connections to one upstream origin; 0 for no cap. */
    upstreamConnections: number;
  };
}

export class ConfigError extends Error {
  constructor(readonly issues: { variable: string; message: string }[]) {
    super(`invalid configuration: ${issues.map((issue) => `${issue.variable}: ${issue.message}`).join("; ")}`);
    this.name = "ConfigError";
  }
}

/** Reads the environment once into a typed configuration; a bad value throws a ConfigError naming it. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(ZEnvironment.shape)) {
    const value = source[key];
    if (value !== undefined && value !== "") picked[key] = value;
  }
  const parsed = ZEnvironment.safeParse(picked);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => ({ variable: String(issue.path[0] ?? "?"), message: issue.message })));
  }
  const env = parsed.data;
  if ((env.LYSS_ADMIN_EMAIL === undefined) !== (env.LYSS_ADMIN_PASSWORD === undefined)) {
    throw new ConfigError([{ variable: "LYSS_ADMIN_PASSWORD", message: "LYSS_ADMIN_EMAIL and LYSS_ADMIN_PASSWORD must be set together" }]);
  }
  return {
    env: env.NODE_ENV,
    port: env.PORT,
    host: env.HOST,
    dataDir: path.resolve(env.LYSS_DATA_DIR),
    databaseUrl: env.DATABASE_URL,
    redisUrl: env.REDIS_URL,
    redisPrefix: env.LYSS_REDIS_PREFIX,
    secretKey: env.LYSS_SECRET_KEY,
    bootstrapAdmin:
      env.LYSS_ADMIN_EMAIL && env.LYSS_ADMIN_PASSWORD
        ? { email: env.LYSS_ADMIN_EMAIL.toLowerCase(), password: env.LYSS_ADMIN_PASSWORD }
        : undefined,
    logLevel: env.LOG_LEVEL,
    accessTokenTtlSeconds: env.LYSS_ACCESS_TOKEN_TTL,
    refreshTokenTtlSeconds: env.LYSS_REFRESH_TOKEN_TTL,
    bodyLimitBytes: env.LYSS_BODY_LIMIT,
    shutdownTimeoutMs: env.LYSS_SHUTDOWN_TIMEOUT,
    login: {
      maxFailuresPerAccount: env.LYSS_LOGIN_MAX_FAILURES,
      maxAttemptsPerIp: env.LYSS_LOGIN_IP_MAX_ATTEMPTS,
      windowSeconds: env.LYSS_LOGIN_WINDOW,
    },
    publicIpMaxPerMinute: env.LYSS_PUBLIC_IP_MAX_PER_MINUTE,
    trustProxy: env.LYSS_TRUST_PROXY,
    workers: env.LYSS_WORKERS ?? (env.NODE_ENV === "production" ? Math.min(64, os.availableParallelism()) : 1),
    heapGrowthPercent: env.LYSS_HEAP_GROWTH_PERCENT,
    gateway: {
      bodyLimitBytes: env.LYSS_GATEWAY_BODY_LIMIT,
      maxAttempts: env.LYSS_GATEWAY_MAX_ATTEMPTS,
      keepAliveMs: env.LYSS_STREAM_KEEPALIVE_MS,
      upstreamConnections: env.LYSS_UPSTREAM_CONNECTIONS,
    },
  };
}
