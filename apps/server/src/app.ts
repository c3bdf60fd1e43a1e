import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import Fastify, { type FastifyBaseLogger } from "fastify";
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import type { Logger } from "pino";
import type { Config } from "./config/env.ts";
import type { Infra } from "./context.ts";
import { assertSchemaNotNewer, migrateToLatest } from "./db/migrate.ts";
import { registerErrorHandler } from "./errors/error-handler.ts";
import { createEventBus } from "./infra/bus.ts";
import { type Clock, systemClock } from "./infra/clock.ts";
import { createWorkerMetrics } from "./infra/cluster-metrics.ts";
import { primaryLink } from "./infra/cluster-rpc.ts";
import { linkedQuotaStore, linkedRateStore } from "./infra/cluster-stores.ts";
import { deriveKey, loadMasterKey } from "./infra/crypto.ts";
import { openDatabase } from "./infra/db.ts";
import { createLogger } from "./infra/logger.ts";
import { createMetrics } from "./infra/metrics.ts";
import { createLimiter } from "./infra/rate-limiter.ts";
import { createRedis } from "./infra/redis.ts";
import { AccessLog, requestLoggerFactory } from "./infra/request-logger.ts";
import { auditRoutes } from "./modules/audit/routes.ts";
import { createAuditService, SYSTEM_ACTOR } from "./modules/audit/service.ts";
import { registerGuard } from "./modules/auth/guard.ts";
import { createAccessTokens } from "./modules/auth/jwt.ts";
import { createPrincipalCache } from "./modules/auth/principal-cache.ts";
import { authRoutes } from "./modules/auth/routes.ts";
import { createAuthService } from "./modules/auth/service.ts";
import { createChannelCatalog } from "./modules/channels/catalog.ts";
import { CREDENTIAL_KEY_PURPOSE } from "./modules/channels/rotate-key.ts";
import { channelRoutes } from "./modules/channels/routes.ts";
import { createChannelService } from "./modules/channels/service.ts";
import type { RelayDeps } from "./modules/gateway/call.ts";
import { createChannelStats } from "./modules/gateway/channel-stats.ts";
import { keepRawJson } from "./modules/gateway/raw-json.ts";
import { createRouter } from "./modules/gateway/router.ts";
import { anthropicRoutes, dataPlaneErrors, openAIRoutes } from "./modules/gateway/routes.ts";
import { createGatewayService } from "./modules/gateway/service.ts";
import { createUpstreamClient } from "./modules/gateway/upstream.ts";
import { DEFAULT_BREAKER } from "./modules/health/breaker.ts";
import { createChannelHealth } from "./modules/health/channel-health.ts";
import { channelStatsRoutes } from "./modules/health/routes.ts";
import type { Api } from "./modules/http.ts";
import { memberRoutes } from "./modules/members/routes.ts";
import { createMemberService } from "./modules/members/service.ts";
import { subscribeAlerts } from "./modules/notifications/alerts.ts";
import { notificationRoutes } from "./modules/notifications/routes.ts";
import { createNotificationService } from "./modules/notifications/service.ts";
import { createWebhookSender } from "./modules/notifications/webhook.ts";
import { priceRoutes } from "./modules/pricing/routes.ts";
import { createPriceBook } from "./modules/pricing/service.ts";
import { createRateLimiter } from "./modules/quota/rate-limits.ts";
import { createMemoryRateStore, createRedisRateStore } from "./modules/quota/rate-store.ts";
import { createQuotaService } from "./modules/quota/service.ts";
import { createMemoryQuotaStore, createRedisQuotaStore } from "./modules/quota/store.ts";
import { settingsRoutes } from "./modules/settings/routes.ts";
import { createSettingsService } from "./modules/settings/service.ts";
import { systemRoutes } from "./modules/system/routes.ts";
import { tenantRoutes } from "./modules/tenants/routes.ts";
import { createTenantService } from "./modules/tenants/service.ts";
import { tokenRoutes } from "./modules/tokens/routes.ts";
import { createTokenService } from "./modules/tokens/service.ts";
import { createTokenCache } from "./modules/tokens/token-cache.ts";
import { inlineSink, threadSink } from "./modules/usage/batch-sink.ts";
import { createUsageRecorder } from "./modules/usage/recorder.ts";
import { createUsageRetention } from "./modules/usage/retention.ts";
import { usageRoutes } from "./modules/usage/routes.ts";
import { usageStatsRoutes } from "./modules/usage/stats-routes.ts";
import { userRoutes } from "./modules/users/routes.ts";
import { createUserService } from "./modules/users/service.ts";

export interface BuildOptions {
  config: Config;
  logger?: Logger;
  clock?: Clock;
  /** Run migrations at start (default). The CLI's `start --no-migrate` turns this off. */
  migrate?: boolean;
  /** Run the scheduled channel health probes (default: yes, except when NODE_ENV is test). */
  healthProbes?: boolean | { tickMs?: number };
  /**
   * Whether this process runs the once-per-machine duties: the first administrator from LYSS_ADMIN_*,
   * usage retention and the health probes (default: yes; of several cluster workers, worker 1 only).
   */
  leader?: boolean;
}

const VERSION = "0.1.0";
const WEB_INDEX = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../web/index.html");

/** Opens the infrastructure named by the configuration: logger, keys, database, Redis, bus, metrics. */
export async function createInfra(options: BuildOptions): Promise<Infra> {
  const { config } = options;
  const logger = options.logger ?? createLogger(config.logLevel);
  const masterKey = loadMasterKey(config.secretKey, config.dataDir);
  const db = await openDatabase(config);
  try {
    if (options.migrate === false) await assertSchemaNotNewer(db);
    else await migrateToLatest(db);
  } catch (error) {
    await db.close();
    throw error;
  }
  const redis = config.redisUrl ? await createRedis(config.redisUrl, logger, "main") : undefined;
  const subscriber = config.redisUrl ? await createRedis(config.redisUrl, logger, "subscriber") : undefined;
  // A cluster worker (LYSS_WORKERS > 1) reaches the other workers through the primary when Redis is absent.
  const link = primaryLink();
  const bus = createEventBus({ publisher: redis, subscriber, relay: redis ? undefined : link?.bus, prefix: config.redisPrefix, logger });
  const closeRedis = async () => {
    await bus.close();
    await Promise.all([redis?.quit().catch(() => undefined), subscriber?.quit().catch(() => undefined)]);
  };
  const metrics = link ? createWorkerMetrics(link) : createMetrics();
  return { config, logger, db, redis, bus, metrics, clock: options.clock ?? systemClock, masterKey, closeRedis };
}

/** Builds the services every route and job uses, from the infrastructure. */
export function createServices(infra: Infra) {
  const { config, db, bus, clock, redis } = infra;
  // In a cluster worker without Redis, counters and limits live in the primary (infra/cluster-stores.ts).
  const link = redis ? undefined : primaryLink();
  const audit = createAuditService(clock);
  const deps = { db: db.kysely, clock, bus, audit };
  const users = createUserService(deps);
  const tenants = createTenantService(deps);
  const settings = createSettingsService(deps);
  const principals = createPrincipalCache(db.kysely, bus);
  const tokens = createAccessTokens(deriveKey(infra.masterKey, "jwt-signing"), config.accessTokenTtlSeconds, () => clock.now());
  const limiter = (name: string, points: number) =>
    createLimiter({ name, points, durationSeconds: config.login.windowSeconds, redis, cluster: Boolean(link), prefix: config.redisPrefix });
  const publicIpLimiter = createLimiter({
    name: "public-ip",
    points: config.publicIpMaxPerMinute,
    durationSeconds: 60,
    redis,
    cluster: Boolean(link),
    prefix: config.redisPrefix,
  });
  const auth = createAuthService({
    ...deps,
    tokens,
    refreshTtlSeconds: config.refreshTokenTtlSeconds,
    users,
    tenants,
    loginLimits: {
      perAccount: limiter("login-account", config.login.maxFailuresPerAccount),
      perIp: limiter("login-ip", config.login.maxAttemptsPerIp),
    },
  });
  const credentialKey = deriveKey(infra.masterKey, CREDENTIAL_KEY_PURPOSE);
  const catalog = createChannelCatalog(db.kysely, bus, credentialKey);
  const tokenCache = createTokenCache(db.kysely, bus);
  const upstream = createUpstreamClient({ connections: config.gateway.upstreamConnections });
  const stats = createChannelStats(() => clock.ms(), { breaker: DEFAULT_BREAKER, bus });
  const usageRetention = createUsageRetention({ db: db.kysely, settings, clock, logger: infra.logger });
  const prices = createPriceBook(db.kysely, bus);
  const quotaStore = redis ? createRedisQuotaStore(redis, config.redisPrefix) : link ? linkedQuotaStore(link) : createMemoryQuotaStore();
  const quota = createQuotaService({ db: db.kysely, store: quotaStore, clock, settings, prices, principals });
  const rates = createRateLimiter({
    store: redis ? createRedisRateStore(redis, config.redisPrefix) : link ? linkedRateStore(link) : createMemoryRateStore(),
    clock,
  });
  const members = createMemberService(deps, users, quota);
  // SQLite blocks the thread that writes: usage batches are written on a thread of their own.
  const usageSink = db.dialect === "sqlite" ? threadSink(db.location) : inlineSink(db.kysely);
  const usage = createUsageRecorder(usageSink, { logger: infra.logger, counters: quota, clock });
  const channels = createChannelService({ ...deps, key: credentialKey, catalog, upstream, quota });
  const health = createChannelHealth(infra, { channels, settings, stats, usage });
  const notifications = createNotificationService({
    db: db.kysely,
    clock,
    logger: infra.logger,
    webhooks: createWebhookSender({ settings, masterKey: infra.masterKey, clock, logger: infra.logger }),
  });
  const stopAlerts = subscribeAlerts({ db: db.kysely, notifications, quota, autoDisable: health.autoDisable });
  const accessTokens = createTokenService({ ...deps, cache: tokenCache, quota });
  const gateway = createGatewayService({
    badKeys: publicIpLimiter,
    catalog,
    tokens: tokenCache,
    principals,
    settings,
    router: createRouter(stats),
    stats,
    clock,
  });
  const relay: RelayDeps = {
    upstream,
    stats,
    usage,
    quota,
    prices,
    rates,
    metrics: infra.metrics,
    logger: infra.logger,
    maxAttempts: config.gateway.maxAttempts,
    keepAliveMs: config.gateway.keepAliveMs,
    clock,
  };
  return {
    audit,
    publicIpLimiter,
    users,
    tenants,
    members,
    settings,
    principals,
    tokens,
    auth,
    catalog,
    tokenCache,
    upstream,
    stats,
    health,
    usage,
    usageRetention,
    channels,
    accessTokens,
    gateway,
    relay,
    prices,
    quota,
    notifications,
    async close() {
      await health.close();
      stopAlerts();
      await notifications.close();
      principals.close();
      settings.close();
      catalog.close();
      tokenCache.close();
      stats.close();
      prices.close();
      await usageRetention.stop();
      await usage.close();
      await upstream.close();
    },
  };
}

export type Services = ReturnType<typeof createServices>;

/** Creates the first administrator from LYSS_ADMIN_EMAIL / LYSS_ADMIN_PASSWORD when no user exists yet. */
async function bootstrapAdmin(infra: Infra, services: Services) {
  const admin = infra.config.bootstrapAdmin;
  if (!admin || (await services.auth.isSetUp())) return;
  await services.auth.setup(
    SYSTEM_ACTOR,
    { email: admin.email, password: admin.password, name: "Administrator" },
    { ip: null, userAgent: "bootstrap" },
  );
  infra.logger.info({ email: admin.email }, "created the first administrator from LYSS_ADMIN_EMAIL");
}

function requestId(header: string | string[] | undefined): string {
  return typeof header === "string" && /^[\w.:-]{1,128}$/.test(header) ? header : randomUUID();
}

export async function buildApp(options: BuildOptions) {
  const infra = await createInfra(options);
  const services = createServices(infra);
  const leader = options.leader ?? true;
  if (leader) await bootstrapAdmin(infra, services);
  await Promise.all([services.catalog.warm(), services.tokenCache.warm(), services.prices.load()]);
  const { config, metrics } = infra;

  const fastify = Fastify({
    loggerInstance: infra.logger as FastifyBaseLogger,
    childLoggerFactory: requestLoggerFactory as never,
    logController: new AccessLog(),
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    genReqId: (request) => requestId(request.headers["x-request-id"]),
    return503OnClosing: true,
    forceCloseConnections: "idle",
    routerOptions: { ignoreTrailingSlash: true },
  });
  const app: Api = fastify.withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // The API takes JSON bodies only: Fastify's default text/plain parser would turn any text into a string
  // body (a confusing 400) and accept CORS-simple cross-site posts; without it such bodies answer 415.
  app.removeContentTypeParser("text/plain");
  registerErrorHandler(app);

  // Callback-style hooks: on every request, they cost no promise.
  app.addHook("onRequest", (request, reply, done) => {
    reply.header("x-request-id", request.id);
    done();
  });
  app.addHook("onResponse", (request, reply, done) => {
    metrics.httpRequest(request.method, request.routeOptions.url ?? "unmatched", reply.statusCode, reply.elapsedTime / 1000);
    done();
  });

  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: { title: "Lyss API", version: VERSION, description: "Management API of the Lyss AI platform." },
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
          apiKey: { type: "http", scheme: "bearer", description: "an access token (sk-…) created at /api/v1/tokens" },
        },
      },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });

  registerGuard(app, services.tokens, services.principals, () => infra.clock.now(), services.publicIpLimiter);
  systemRoutes(app, infra);
  authRoutes(app, services.auth, services.members, services.principals);
  userRoutes(app, services.users);
  tenantRoutes(app, services.tenants, services.principals, services.quota);
  memberRoutes(app, services.members);
  settingsRoutes(app, services.settings);
  auditRoutes(app, services.audit, infra.db.kysely);
  channelRoutes(app, services.channels);
  channelStatsRoutes(app, services.channels, services.stats);
  tokenRoutes(app, services.accessTokens);
  usageRoutes(app, infra.db.kysely);
  priceRoutes(app, infra.db.kysely, services.prices, services.audit, () => infra.clock.now());
  usageStatsRoutes(app, infra.db.kysely, () => infra.clock.now());
  notificationRoutes(app, services.notifications);
  await app.register(async (scope) => {
    scope.addHook("onRoute", (route) => {
      route.bodyLimit ??= config.gateway.bodyLimitBytes;
    });
    scope.setErrorHandler(dataPlaneErrors);
    keepRawJson(scope);
    const dataPlane = scope.withTypeProvider<ZodTypeProvider>();
    openAIRoutes(dataPlane, services.gateway, services.relay);
    anthropicRoutes(dataPlane, services.gateway, services.relay);
  });

  app.get("/openapi.json", { schema: { hide: true }, config: { access: "public" } }, async () => app.swagger());
  app.get("/", { schema: { hide: true }, config: { access: "public" } }, async (_request, reply) => {
    const page = fs.existsSync(WEB_INDEX) ? fs.readFileSync(WEB_INDEX, "utf8") : "<h1>Lyss</h1>";
    return reply.type("text/html; charset=utf-8").send(page);
  });

  app.addHook("onClose", async () => {
    await services.close();
    await infra.closeRedis();
    await infra.db.close();
  });

  await app.ready();
  if (leader) services.usageRetention.start();
  const probes = leader && (options.healthProbes ?? config.env !== "test");
  if (probes) services.health.probes.start(typeof probes === "object" ? probes.tickMs : undefined);
  return { app, infra, services };
}

export type LyssApp = Awaited<ReturnType<typeof buildApp>>;
