import type { Kysely } from "kysely";
import { z } from "zod";
import type { Database } from "../../db/schema.ts";
import { forbidden, notFound } from "../../errors/app-error.ts";
import { newId } from "../../infra/ids.ts";
import type { AuditService } from "../audit/service.ts";
import { actorOf, requirePrincipal, requireTenant } from "../auth/guard.ts";
import { type Api, AUTHED_ERRORS } from "../http.ts";
import type { PriceBook } from "./service.ts";

const tags = ["pricing"];
const ZMicroUsd = z.number().int().min(0).max(1_000_000_000_000);

const ZPrice = z.object({
  model: z.string(),
  input_per_mtok: z.number().describe("micro-USD per million input tokens"),
  output_per_mtok: z.number().describe("micro-USD per million output tokens"),
  cached_input_per_mtok: z.number().nullable().describe("micro-USD per million cached input tokens (null: the input price)"),
  per_request: z.number().describe("micro-USD per request"),
  source: z.enum(["default", "platform", "tenant"]),
});

const ZPriceInput = z.strictObject({
  scope: z.enum(["tenant", "platform"]).describe("platform prices apply to every tenant; tenant prices to the active tenant"),
  model: z.string().trim().min(1).max(200).describe("a model name, or a pattern with * such as claude-sonnet-4*"),
  input_per_mtok: ZMicroUsd,
  output_per_mtok: ZMicroUsd,
  cached_input_per_mtok: ZMicroUsd.nullable().default(null),
  per_request: ZMicroUsd.default(0),
});

const ZPriceKey = z.strictObject({ scope: z.enum(["tenant", "platform"]), model: z.string().min(1).max(200) });

/** Model prices: defaults for well-known models, the platform's overrides, each tenant's overrides. */
export function priceRoutes(app: Api, db: Kysely<Database>, prices: PriceBook, audit: AuditService, now: () => Date) {
  /** Platform prices need a platform administrator; a tenant's prices its owner (or one). */
  function scopeOf(request: Parameters<typeof requireTenant>[0], scope: "tenant" | "platform"): string | null {
    const principal = requirePrincipal(request);
    if (scope === "platform") {
      if (principal.user.is_platform_admin !== 1) throw forbidden("platform administrators only");
      return null;
    }
    const context = requireTenant(request);
    if (context.role !== "owner") throw forbidden("requires the owner role");
    return context.tenant.id;
  }

  app.get(
    "/api/v1/prices",
    {
      config: { access: { tenant: "member" } },
      schema: {
        tags,
        summary: "The prices the active tenant pays, by model",
        response: { 200: z.object({ data: z.array(ZPrice) }), ...AUTHED_ERRORS },
      },
    },
    async (request) => ({ data: prices.list(requireTenant(request).tenant.id) }),
  );

  app.put(
    "/api/v1/prices",
    {
      config: { access: "user" },
      schema: {
        tags,
        summary: "Set a model's price for the platform or the active tenant",
        body: ZPriceInput,
        response: { 200: ZPrice, ...AUTHED_ERRORS },
      },
    },
    async (request) => {
      const { scope, ...price } = request.body;
      const tenantId = scopeOf(request, scope);
      await db.transaction().execute(async (trx) => {
        let query = trx.deleteFrom("model_prices").where("model", "=", price.model);
        query = tenantId ? query.where("tenant_id", "=", tenantId) : query.where("tenant_id", "is", null);
        await query.execute();
        await trx
          .insertInto("model_prices")
          .values({ id: newId(), tenant_id: tenantId, ...price, updated_at: now().toISOString() })
          .execute();
        await audit.record(trx, actorOf(request), {
          tenantId,
          action: "price.set",
          targetType: "price",
          targetId: price.model,
          after: { scope, ...price },
        });
      });
      await prices.load();
      prices.changed();
      return { ...price, source: scope };
    },
  );

  app.delete(
    "/api/v1/prices",
    {
      config: { access: "user" },
      schema: {
        tags,
        summary: "Remove a platform or tenant price (the next one down applies again)",
        querystring: ZPriceKey,
        response: { 200: z.object({ ok: z.literal(true) }), ...AUTHED_ERRORS },
      },
    },
    async (request) => {
      const tenantId = scopeOf(request, request.query.scope);
      await db.transaction().execute(async (trx) => {
        let query = trx.deleteFrom("model_prices").where("model", "=", request.query.model);
        query = tenantId ? query.where("tenant_id", "=", tenantId) : query.where("tenant_id", "is", null);
        const result = await query.executeTakeFirst();
        if (Number(result.numDeletedRows) === 0) throw notFound("price");
        await audit.record(trx, actorOf(request), { tenantId, action: "price.delete", targetType: "price", targetId: request.query.model });
      });
      await prices.load();
      prices.changed();
      return { ok: true as const };
    },
  );
}
