import type { FastifyRequest } from "fastify";
import { type Clock, isoNow } from "../../infra/clock.ts";
import { hashToken } from "../../infra/crypto.ts";
import { after, type Maybe } from "../../infra/maybe.ts";
import type { Limiter } from "../../infra/rate-limiter.ts";
import type { PrincipalCache } from "../auth/principal-cache.ts";
import type { ChannelCatalog, RuntimeChannel } from "../channels/catalog.ts";
import type { SettingsService } from "../settings/service.ts";
import { ipAllowed, type RuntimeToken, type TokenCache } from "../tokens/token-cache.ts";
import type { ChannelStats } from "./channel-stats.ts";
import { GatewayError } from "./gateway-error.ts";
import { candidatesFor, type Router, type RoutingRule, ruleGroup, type Strategy } from "./router.ts";

/** Key digests the gateway keeps (a key and its hex digest: about 200 bytes each, 2 MB in all). */
const KEPT_DIGESTS = 10_000;

const SECRET_HEADERS = /^(authorization|api-key|x-api-key|x-goog-api-key|proxy-authorization)$/i;

/** Reads the access key from `Authorization: Bearer` or `x-api-key`. */
function presentedKey(request: FastifyRequest): string | undefined {
  const authorization = request.headers.authorization;
  const bearer = authorization ? /^Bearer\s+(\S+)$/i.exec(authorization)?.[1] : undefined;
  const apiKey = request.headers["x-api-key"];
  return bearer ?? (Array.isArray(apiKey) ? apiKey[0] : apiKey);
}

export function maskHeaders(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).map(([name, value]) => [name, SECRET_HEADERS.test(name) ? `${value.slice(0, 7)}…***` : value]),
  );
}

/** Authentication, model checks and candidate selection for the data plane, all from memory. */
export function createGatewayService(deps: {
  /** Counts failed key checks per client address, so guessing keys is slowed down. */
  badKeys: Limiter;
  catalog: ChannelCatalog;
  tokens: TokenCache;
  principals: PrincipalCache;
  settings: SettingsService;
  router: Router;
  stats: ChannelStats;
  clock: Clock;
}) {
  const { catalog, tokens, principals, settings, router, stats } = deps;

  /** Counts a wrong key against the client's address; slows it down after too many. */
  async function refuseKey(request: FastifyRequest): Promise<never> {
    const wait = (await deps.badKeys.blockedFor(request.ip)) || (await deps.badKeys.hit(request.ip));
    if (wait > 0) {
      throw new GatewayError(429, "Too many requests with invalid API keys from this address.", "rate_limit_exceeded", "rate_limit_error", {
        "retry-after": String(wait),
      });
    }
    throw new GatewayError(401, "Incorrect API key provided.", "invalid_api_key", "invalid_request_error");
  }

  /** The presented key's token, when it may be used from here and its owner and tenant are active. */
  function checked(request: FastifyRequest, token: RuntimeToken | undefined): Maybe<RuntimeToken> {
    if (!token) return refuseKey(request);
    if (!token.enabled) throw new GatewayError(401, "This API key is disabled.", "invalid_api_key", "invalid_request_error");
    if (token.expiresAt && token.expiresAt <= isoNow(deps.clock)) {
      throw new GatewayError(401, "This API key has expired.", "invalid_api_key", "invalid_request_error");
    }
    if (!ipAllowed(token, request.ip)) throw new GatewayError(403, "This API key may not be used from this address.", "ip_not_allowed");
    return after(principals.user(token.userId), (user) => {
      if (user?.status !== "active")
        throw new GatewayError(401, "The owner of this API key is disabled.", "invalid_api_key", "invalid_request_error");
      return after(principals.tenant(token.tenantId), (tenant) => {
        if (tenant?.status !== "active") throw new GatewayError(403, "This API key's tenant is suspended.", "tenant_suspended");
        return token;
      });
    });
  }

  /**
   * The digests of keys that named a token lately. A client sends the same key with every request:
   * its SHA-256 is taken once (0.77 µs a request in a loop, and OpenSSL's code fetched again each time
   * in the gateway), not on every call. Only keys that named a token are kept, so guessed keys cannot
   * fill it; a key revoked since still finds no token by its digest.
   */
  const digests = new Map<string, string>();

  /** The token of the request's key, from memory in the steady state (no promise then). */
  function authenticate(request: FastifyRequest): Maybe<RuntimeToken> {
    const key = presentedKey(request);
    if (!key) throw new GatewayError(401, "You didn't provide an API key.", "missing_api_key", "invalid_request_error");
    const known = digests.get(key);
    const digest = known ?? hashToken(key);
    return after(tokens.byHash(digest), (token) => {
      if (token && known === undefined) {
        if (digests.size >= KEPT_DIGESTS) digests.clear();
        digests.set(key, digest);
      }
      return checked(request, token);
    });
  }

  /** The channels to try for this model, in order; or the reason there are none. From memory in the steady state. */
  function candidates(token: RuntimeToken, model: string, tag: string | undefined): Maybe<RuntimeChannel[]> {
    if (token.models && !token.models.has(model)) {
      throw new GatewayError(403, `This API key may not use the model "${model}".`, "model_not_allowed", "permission_error");
    }
    return after(catalog.channels(token.tenantId), (channels) =>
      after(settings.tenant(token.tenantId), ({ values }) => ordered(channels, token, model, tag, values)),
    );
  }

  function ordered(
    channels: RuntimeChannel[],
    token: RuntimeToken,
    model: string,
    tag: string | undefined,
    values: Readonly<Record<string, unknown>>,
  ): RuntimeChannel[] {
    const routing = { strategy: values.routing_strategy as Strategy, rules: (values.routing_rules ?? []) as RoutingRule[] };
    const { serving, usable } = candidatesFor(channels, token, model, ruleGroup(routing.rules, model, tag));
    if (serving.length === 0) {
      throw new GatewayError(404, `The model "${model}" does not exist or you do not have access to it.`, "model_not_found");
    }
    if (usable.length === 0)
      throw new GatewayError(503, `No available channel for the model "${model}".`, "no_available_channel", "api_error");
    return router.order(usable, routing.strategy, model);
  }

  /** Every public model name this token may use, with the providers that serve it. */
  async function models(token: RuntimeToken): Promise<Map<string, RuntimeChannel[]>> {
    const out = new Map<string, RuntimeChannel[]>();
    for (const channel of await catalog.channels(token.tenantId)) {
      if (channel.status !== "enabled" || (token.groups && !token.groups.has(channel.group))) continue;
      for (const model of channel.models) {
        if (token.models && !token.models.has(model)) continue;
        out.set(model, [...(out.get(model) ?? []), channel]);
      }
    }
    return out;
  }

  async function health(token: RuntimeToken) {
    const byModel = new Map<string, RuntimeChannel[]>();
    for (const channel of await catalog.channels(token.tenantId)) {
      if (token.groups && !token.groups.has(channel.group)) continue;
      for (const model of channel.models) {
        if (token.models && !token.models.has(model)) continue;
        byModel.set(model, [...(byModel.get(model) ?? []), channel]);
      }
    }
    return [...byModel.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([model, channels]) => {
        const views = channels.map((channel) => {
          const live = stats.get(channel.id);
          const circuit = stats.circuit(channel.id);
          const healthy =
            channel.status === "enabled" &&
            circuit !== "open" &&
            !live.credentialsFailing &&
            !stats.isCooling(channel.id) &&
            live.consecutiveFailures < 3;
          return {
            id: channel.id,
            name: channel.name,
            provider: channel.provider.id,
            group: channel.group,
            priority: channel.priority,
            weight: channel.weight,
            status: channel.status,
            status_reason: channel.statusReason,
            healthy,
            circuit_state: circuit,
            in_flight: live.inFlight,
            success_rate: Number(live.successRate.toFixed(4)),
            latency_ms: Math.round(live.latencyMs),
            requests: live.requests,
            failures: live.failures,
            consecutive_failures: live.consecutiveFailures,
            credentials_failing: live.credentialsFailing,
            cooling_down: stats.isCooling(channel.id),
            last_error: live.lastError,
          };
        });
        return { model, healthy: views.some((view) => view.healthy), channels: views };
      });
  }

  /** How many keys' digests are kept (guessed keys never are). */
  const keptKeys = () => digests.size;

  return { authenticate, candidates, models, health, keptKeys };
}

export type GatewayService = ReturnType<typeof createGatewayService>;
