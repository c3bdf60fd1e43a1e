import { buildApp } from "./app.ts";
import type { Config } from "./config/env.ts";
import { primaryLink, workerIndex } from "./infra/cluster-rpc.ts";
import { tuneCollector } from "./infra/collector.ts";
import { createLogger } from "./infra/logger.ts";
import { trackSilentConnections } from "./infra/silent-connections.ts";

/**
 * Starts Lyss: builds the app, listens, and closes gracefully on SIGTERM or SIGINT. In a cluster
 * worker (LYSS_WORKERS > 1) the primary has migrated already, worker 1 alone runs the once-per-machine
 * duties and prints the first-run hint, and the primary's `drain` works like SIGTERM.
 */
export async function startServer(config: Config, options: { migrate?: boolean } = {}) {
  tuneCollector(config);
  const worker = workerIndex();
  const link = primaryLink();
  const inCluster =
    worker === undefined ? {} : { migrate: false, leader: worker === 1, logger: createLogger(config.logLevel).child({ worker }) };
  const { app, infra, services } = await buildApp({ config, ...options, ...inCluster });
  const connections = trackSilentConnections(app.server);
  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  const shownHost = config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host;
  const url = `http://${shownHost}:${port}`;
  if (worker === undefined) {
    infra.logger.info({ url, database: infra.db.dialect, redis: Boolean(infra.redis) }, `Lyss is listening on ${url}`);
  } else {
    infra.logger.info({ url, pid: process.pid }, `Lyss worker ${worker} (pid ${process.pid}) is listening on ${url}`);
  }
  if ((worker ?? 1) === 1 && !(await services.auth.isSetUp())) {
    process.stdout.write(
      [
        "",
        `  Lyss is running at ${url}  (API reference: ${url}/docs)`,
        "  No administrator exists yet. Create the first one with either:",
        `    curl -X POST ${url}/api/v1/auth/setup -H 'content-type: application/json' \\`,
        `      -d '{"email":"admin@example.com","password":"change-me-now","name":"Admin"}'`,
        "    npx lyss admin create --email admin@example.com --password change-me-now",
        "",
      ].join("\n"),
    );
  }

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    infra.logger.info({ signal }, "shutting down: draining in-flight requests");
    const timer = setTimeout(() => {
      infra.logger.error({ timeout_ms: config.shutdownTimeoutMs }, "shutdown timed out; exiting");
      process.exit(1);
    }, config.shutdownTimeoutMs);
    timer.unref();
    // A keep-alive connection whose request was in flight at the close turns idle only afterwards;
    // close such connections as they go idle, instead of waiting for their keep-alive timeout, and
    // those that never sent a request.
    setInterval(() => {
      app.server.closeIdleConnections();
      connections.closeSilent();
    }, 100).unref();
    try {
      await app.close();
      infra.logger.info("shut down cleanly");
      process.exit(0);
    } catch (error) {
      infra.logger.error({ err: error }, "error while shutting down");
      process.exit(1);
    }
  };
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  process.once("SIGINT", () => void shutdown("SIGINT"));
  if (link && worker !== undefined) {
    link.onDrain(() => void shutdown("drain"));
    link.ready(worker);
  }
  return { app, url };
}
