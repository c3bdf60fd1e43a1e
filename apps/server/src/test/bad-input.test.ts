import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  createIsolationFixture,
  type DatabaseSnapshot,
  documentedOperations,
  ISOLATION_ENV,
  ISOLATION_MATRIX,
  type IsolationFixture,
  type JsonSchema,
  type Operation,
  operationKey,
  snapshotDatabase,
  snapshotDifferences,
  urlOf,
  ZStrictErrorBody,
} from "./isolation-matrix.ts";
import { ADMIN, createTestApp, setupAdmin, type TestApp } from "./test-app.ts";

/**
 * Bad input fed to every management route (under /api/) that takes a body or a query, as the platform
 * administrator in the right tenant. The routes come from /openapi.json, so new routes are covered as
 * they appear. Every answer must be a 4xx in the one error shape, and a 4xx must write nothing.
 */

// Read the routes once, at collection time, so each gets its own tests.
const operations = await (async () => {
  const app = await createTestApp();
  try {
    return await documentedOperations(app, "/api/");
  } finally {
    await app.close();
  }
})();
const withBody = operations.filter((operation) => operation.bodySchema !== undefined);
const withQuery = operations.filter((operation) => operation.parameters.some((parameter) => parameter.in === "query"));

const PLACEHOLDER_ID = "00000000-0000-7000-8000-000000000000";
const LONG = "x".repeat(100_000);
const NUM_RUNS = 15;

type Answer = Awaited<ReturnType<TestApp["call"]>>;
type JsonType = "string" | "number" | "boolean" | "object" | "array" | "null";

interface Expectation {
  status?: number;
  code?: string;
  /** A field that details.fields must name, as `body.email` or `querystring.limit`. */
  field?: string;
  /** Whether any 2xx is acceptable (arbitrary input may happen to be valid). */
  mayPass?: boolean;
}

type Case = [name: string, call: () => Promise<Answer>, expectation: Expectation];

const ZFields = z.object({ fields: z.array(z.object({ field: z.string(), message: z.string() })) });

/** The JSON types a schema admits ("integer" counts as "number"); empty when it says nothing. */
function typesOf(schema: JsonSchema | undefined): Set<JsonType> {
  const types = new Set<JsonType>();
  if (!schema) return types;
  const declared = schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];
  for (const type of declared) types.add(type === "integer" ? "number" : (type as JsonType));
  for (const value of [...(schema.enum ?? []), ...(schema.const === undefined ? [] : [schema.const])]) {
    types.add(jsonTypeOf(value));
  }
  for (const branch of [...(schema.anyOf ?? []), ...(schema.oneOf ?? [])]) for (const type of typesOf(branch)) types.add(type);
  return types;
}

/** The string branch of a schema (itself, or one of its anyOf/oneOf branches). */
function stringBranch(schema: JsonSchema | undefined): JsonSchema | undefined {
  if (!schema) return undefined;
  if (schema.type === "string" || (Array.isArray(schema.type) && schema.type.includes("string"))) return schema;
  return [...(schema.anyOf ?? []), ...(schema.oneOf ?? [])].map(stringBranch).find((branch) => branch !== undefined);
}

/** The object branch of a schema (itself, or one of its anyOf/oneOf branches). */
function objectBranch(schema: JsonSchema | undefined): JsonSchema | undefined {
  if (!schema) return undefined;
  if (schema.properties || schema.type === "object") return schema;
  return [...(schema.anyOf ?? []), ...(schema.oneOf ?? [])].map(objectBranch).find((branch) => branch !== undefined);
}

const jsonTypeOf = (value: unknown): JsonType => (value === null ? "null" : Array.isArray(value) ? "array" : (typeof value as JsonType));

/** Whether a 100k-character string must be refused: the schema bounds it or lists its values. */
const refusesLongString = (schema: JsonSchema) => schema.enum !== undefined || (schema.maxLength ?? Infinity) < LONG.length;

const WRONG_VALUES: [JsonType, unknown][] = [
  ["number", 12_345],
  ["string", "wrong-type"],
  ["boolean", true],
  ["object", { nested: true }],
  ["array", [1, 2]],
  ["null", null],
];

const MALFORMED_JSON: [string, string][] = [
  ["a truncated object", '{"name": "x"'],
  ["a key without a value", '{"name":'],
  ["trailing garbage", "{} garbage"],
  ["two documents", "{}{}"],
  ["an extra closing brace", '{"a": 1}}'],
  ["single quotes", "{'name': 'x'}"],
  ["a trailing comma", '{"a": 1,}'],
  ["NaN", '{"a": NaN}'],
  ["a bare word", "undefined"],
  ["an empty body", ""],
  ["a __proto__ key", '{"__proto__": {"is_platform_admin": true}}'],
  ["a constructor.prototype key", '{"constructor": {"prototype": {"is_platform_admin": true}}}'],
];

const OTHER_CONTENT_TYPES = [
  "text/plain",
  "text/plain; charset=utf-8",
  "application/xml",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=lyss",
  "application/octet-stream",
];

const NOT_OBJECTS = ["[]", "[{}]", '"text"', "42", "-1.5", "true", "null"];

/** Strings a string schema may accept: within its lengths, matching its pattern, email-like for email fields. */
function stringsFor(name: string, schema: JsonSchema): fc.Arbitrary<unknown>[] {
  const minLength = schema.minLength ?? 0;
  const maxLength = Math.max(minLength, Math.min(schema.maxLength ?? 40, 40));
  if (schema.pattern) {
    const pattern = new RegExp(schema.pattern);
    return [fc.stringMatching(pattern).filter((value) => value.length >= minLength && value.length <= (schema.maxLength ?? 63))];
  }
  if (name.includes("email")) {
    const simple = fc
      .tuple(fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,10}$/), fc.constantFrom("example.com", "alpha.example", "xn--bcher-kva.example"))
      .map(([local, domain]) => `${local}@${domain}`);
    return [simple, fc.emailAddress()];
  }
  return [fc.string({ minLength, maxLength }), fc.string({ unit: "grapheme", minLength, maxLength }), fc.string({ maxLength: 3 })];
}

/** Values close to what a property's schema wants (most runs), or any JSON at all. */
function valueFor(name: string, schema: JsonSchema | undefined): fc.Arbitrary<unknown> {
  const typed: fc.Arbitrary<unknown>[] = [];
  const types = typesOf(schema);
  const text = stringBranch(schema);
  if (text) typed.push(...stringsFor(name, text));
  if (types.has("number")) typed.push(fc.integer({ min: -10, max: 100_000 }), fc.double());
  if (types.has("boolean")) typed.push(fc.boolean());
  if (types.has("null")) typed.push(fc.constant(null));
  const values = [...(schema?.enum ?? []), ...[...(schema?.anyOf ?? []), ...(schema?.oneOf ?? [])].flatMap((branch) => branch.enum ?? [])];
  if (values.length > 0) typed.push(fc.constantFrom(...values));
  const anything = fc.jsonValue({ maxDepth: 1 });
  return typed.length > 0 ? fc.oneof({ arbitrary: fc.oneof(...typed), weight: 4 }, { arbitrary: anything, weight: 1 }) : anything;
}

/**
 * Arbitrary JSON; objects with the declared keys (and one unknown) holding any JSON; and objects shaped
 * like the schema, with or without its required keys, so that some runs pass validation and reach the
 * services.
 */
function bodies(schema: JsonSchema | undefined): fc.Arbitrary<unknown> {
  const object = objectBranch(schema);
  const properties = object?.properties ?? {};
  const names = Object.keys(properties);
  const model = Object.fromEntries(names.map((name) => [name, valueFor(name, properties[name])]));
  const required = (object?.required ?? []).filter((name) => name in model);
  return fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.dictionary(fc.constantFrom(...names, "unexpected_field"), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 }),
    fc.record(model, { requiredKeys: [] }),
    fc.record(model, { requiredKeys: required }),
    fc.record(model, { requiredKeys: required }),
  );
}

describe("bad input on every route with a body or a query", () => {
  let app: TestApp;
  let fixture: IsolationFixture;
  let token: string;
  let baseline: DatabaseSnapshot;

  beforeAll(async () => {
    app = await createTestApp({ env: ISOLATION_ENV });
    fixture = await createIsolationFixture(app);
    token = fixture.platformAdmin.token;
    baseline = await snapshotDatabase(app.infra.db.kysely);
  });
  afterAll(async () => app?.close());

  it("finds routes to feed", () => {
    expect(withBody.length).toBeGreaterThanOrEqual(16);
    expect(withQuery.length).toBeGreaterThanOrEqual(4);
  });

  /** The route's URL with tenant A's resources (from the isolation matrix) or a placeholder id in it. */
  function urlFor(operation: Operation, query?: string) {
    const entry = ISOLATION_MATRIX.find((item) => item.method === operation.method && item.route === operation.route);
    const known = entry?.params?.(fixture) ?? {};
    const params: Record<string, string> = {};
    for (const parameter of operation.parameters) {
      if (parameter.in === "path") params[parameter.name] = known[parameter.name] ?? PLACEHOLDER_ID;
    }
    const path = urlOf(operation.route, params);
    return query ? `${path}?${query}` : path;
  }

  function send(operation: Operation, request: { payload?: string; contentType?: string; query?: string }) {
    return app.call(operation.method, urlFor(operation, request.query), {
      token,
      tenant: fixture.tenantA.id,
      body: request.payload,
      headers: request.contentType ? { "content-type": request.contentType } : {},
    });
  }

  const sendJson = (operation: Operation, value: unknown) =>
    send(operation, { payload: JSON.stringify(value), contentType: "application/json" });

  /** After a call that succeeded: sign in again if it ended the session, and take a new baseline. */
  async function acceptWrites() {
    if ((await app.call("GET", "/api/v1/auth/me", { token })).status === 401) {
      const login = await app.call("POST", "/api/v1/auth/login", { body: { email: ADMIN.email, password: ADMIN.password } });
      if (login.status !== 200) throw new Error(`sign-in again failed: ${login.status} ${login.text}`);
      token = login.body.access_token;
    }
    baseline = await snapshotDatabase(app.infra.db.kysely);
  }

  /** What is wrong with an answer to bad input (nothing: an empty list); checks that a 4xx wrote nothing. */
  async function problemsOf(answer: Answer, expectation: Expectation): Promise<string[]> {
    if (answer.status >= 200 && answer.status < 300) {
      // Input that happened to be valid may write (and may even end the session): start afresh.
      await acceptWrites();
      return expectation.mayPass ? [] : [`status ${answer.status}: ${answer.text.slice(0, 300)}`];
    }
    const problems: string[] = [];
    if (answer.status < 400 || answer.status >= 500) problems.push(`status ${answer.status}: ${answer.text.slice(0, 300)}`);
    else if (expectation.status !== undefined && answer.status !== expectation.status) {
      problems.push(`status ${answer.status}, expected ${expectation.status}: ${answer.text.slice(0, 300)}`);
    }
    const parsed = ZStrictErrorBody.safeParse(answer.body);
    if (!parsed.success) problems.push(`not exactly an error body: ${answer.text.slice(0, 300)}`);
    else {
      const { error } = parsed.data;
      if (expectation.code !== undefined && error.code !== expectation.code)
        problems.push(`code ${error.code}, expected ${expectation.code}`);
      if (error.request_id !== answer.headers["x-request-id"]) problems.push("request_id differs from the X-Request-Id header");
      if (expectation.field !== undefined) {
        const field = expectation.field;
        const key = field.split(".").at(-1) ?? field;
        const fields = ZFields.safeParse(error.details);
        const named =
          fields.success &&
          fields.data.fields.some(
            (item) => item.field === field || item.field.startsWith(`${field}.`) || item.message.includes(`"${key}"`),
          );
        if (!named) problems.push(`details.fields do not name ${field}: ${JSON.stringify(error.details)?.slice(0, 300)}`);
      }
    }
    const now = await snapshotDatabase(app.infra.db.kysely);
    const written = snapshotDifferences(baseline, now);
    if (written.length > 0) problems.push(`wrote to the database: ${JSON.stringify(written).slice(0, 500)}`);
    baseline = now;
    return problems;
  }

  /** Runs named cases one after another and lists every problem at once. */
  async function expectAll(cases: Case[]) {
    expect(cases.length).toBeGreaterThan(0);
    const problems: string[] = [];
    for (const [name, call, expectation] of cases) {
      for (const problem of await problemsOf(await call(), expectation)) problems.push(`${name}: ${problem}`);
    }
    expect(problems).toEqual([]);
  }

  for (const operation of withBody) {
    const schema = operation.bodySchema;
    const properties = Object.entries(objectBranch(schema)?.properties ?? {});
    const admitted = typesOf(schema);
    describe(`${operationKey(operation.method, operation.route)} body`, () => {
      it("refuses malformed JSON with 400 invalid_json", async () => {
        await expectAll(
          MALFORMED_JSON.map(([name, payload]) => [
            name,
            () => send(operation, { payload, contentType: "application/json" }),
            { status: 400, code: "invalid_json" },
          ]),
        );
      });

      it("refuses other content types, and a body without one, with 415", async () => {
        await expectAll([
          ...OTHER_CONTENT_TYPES.map(
            (contentType): Case => [
              contentType,
              () => send(operation, { payload: "{}", contentType }),
              { status: 415, code: "unsupported_media_type" },
            ],
          ),
          ["no content type", () => send(operation, { payload: "{}" }), { status: 415, code: "unsupported_media_type" }],
        ]);
      });

      it.runIf(admitted.size > 0)("refuses JSON of a type the body schema does not admit with 400 validation_failed", async () => {
        await expectAll(
          NOT_OBJECTS.filter((payload) => !admitted.has(jsonTypeOf(JSON.parse(payload)))).map((payload) => [
            payload,
            () => send(operation, { payload, contentType: "application/json" }),
            { status: 400, code: "validation_failed", field: "body" },
          ]),
        );
      });

      const wrongTypes = properties.flatMap(([name, property]) => {
        const allowed = typesOf(property);
        if (allowed.size === 0) return [];
        return WRONG_VALUES.filter(([type]) => !allowed.has(type)).map(([type, value]) => ({ name, type, value }));
      });
      it.runIf(wrongTypes.length > 0)("refuses a wrong type in each property, naming it", async () => {
        await expectAll(
          wrongTypes.map(
            ({ name, type, value }): Case => [
              `${name} as ${type}`,
              () => sendJson(operation, { [name]: value }),
              { status: 400, code: "validation_failed", field: `body.${name}` },
            ],
          ),
        );
      });

      it("refuses unknown fields, naming them", async () => {
        const declared = new Set(properties.map(([name]) => name));
        const unknown: [string, unknown][] = [
          ["unexpected_field", 1],
          ["tenant_id", fixture.tenantB.id],
          ["is_platform_admin", true],
          ["id", PLACEHOLDER_ID],
        ];
        await expectAll(
          unknown
            .filter(([name]) => !declared.has(name))
            .map(
              ([name, value]): Case => [
                name,
                () => sendJson(operation, { [name]: value }),
                { status: 400, code: "validation_failed", field: `body.${name}` },
              ],
            ),
        );
      });

      it("refuses 100k-character strings", async () => {
        const cases: Case[] = [
          ["a long unknown key", () => sendJson(operation, { [LONG]: 1 }), { status: 400, code: "validation_failed" }],
        ];
        for (const [name, property] of properties) {
          const branch = stringBranch(property);
          if (!branch) continue;
          const bounded = refusesLongString(branch);
          cases.push([
            `${name} of 100k characters`,
            () => sendJson(operation, { [name]: LONG }),
            bounded ? { status: 400, code: "validation_failed", field: `body.${name}` } : { mayPass: true },
          ]);
        }
        await expectAll(cases);
      });

      it(`answers arbitrary JSON bodies without a 5xx, and a 4xx writes nothing (${NUM_RUNS} runs)`, async () => {
        await fc.assert(
          fc.asyncProperty(bodies(schema), async (body) => {
            const answer = await sendJson(operation, body);
            const problems = await problemsOf(answer, { mayPass: true });
            if (problems.length > 0) throw new Error(`${JSON.stringify(body).slice(0, 300)} → ${problems.join("; ")}`);
          }),
          { numRuns: NUM_RUNS },
        );
      });
    });
  }

  for (const operation of withQuery) {
    const queryParameters = operation.parameters.filter((parameter) => parameter.in === "query");
    describe(`${operationKey(operation.method, operation.route)} query`, () => {
      it("refuses invalid query parameters with 400 validation_failed, naming them", async () => {
        const invalid = (name: string, query: string, field: string): Case => [
          name,
          () => send(operation, { query }),
          { status: 400, code: "validation_failed", field },
        ];
        const cases = [invalid("an unknown key", "unexpected_param=1", "querystring.unexpected_param")];
        for (const parameter of queryParameters) {
          const { name } = parameter;
          const field = `querystring.${name}`;
          const schema = parameter.schema ?? {};
          const types = typesOf(schema);
          if (types.has("number")) {
            const values = ["abc", "1e400", "0x"];
            if (schema.minimum !== undefined) values.push(String(schema.minimum - 1), String(Math.min(-1, schema.minimum - 1)));
            if (schema.maximum !== undefined) values.push(String(schema.maximum + 1));
            if (schema.type === "integer") values.push("1.5");
            for (const value of new Set(values)) cases.push(invalid(`${name}=${value}`, `${name}=${value}`, field));
          }
          if (types.has("string") && refusesLongString(schema)) cases.push(invalid(`${name} of 100k characters`, `${name}=${LONG}`, field));
          if (types.has("string") && (schema.minLength ?? 0) > 0) cases.push(invalid(`${name} empty`, `${name}=`, field));
          if (schema.format === "date-time") cases.push(invalid(`${name} not a time`, `${name}=yesterday`, field));
          cases.push(invalid(`${name} given twice`, `${name}=1&${name}=2`, field));
        }
        await expectAll(cases);
      });

      it(`answers arbitrary query strings without a 5xx and writes nothing (${NUM_RUNS} runs)`, async () => {
        const names = queryParameters.map((parameter) => parameter.name);
        const queries = fc.dictionary(
          fc.constantFrom(...names, "unexpected_param"),
          fc.oneof(fc.string({ maxLength: 30 }), fc.integer().map(String)),
          {
            maxKeys: 4,
          },
        );
        await fc.assert(
          fc.asyncProperty(queries, async (query) => {
            const answer = await send(operation, { query: new URLSearchParams(query).toString() });
            // A read never writes, whatever it answers.
            const written = snapshotDifferences(baseline, await snapshotDatabase(app.infra.db.kysely));
            const problems = written.length > 0 ? [`wrote to the database: ${JSON.stringify(written).slice(0, 300)}`] : [];
            problems.push(...(await problemsOf(answer, { mayPass: true })));
            if (problems.length > 0) throw new Error(`${JSON.stringify(query)} → ${problems.join("; ")}`);
          }),
          { numRuns: NUM_RUNS },
        );
      });
    });
  }
});

describe("bodies over the size limit", () => {
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;
  beforeAll(async () => {
    app = await createTestApp({ env: { LYSS_BODY_LIMIT: "2048" } });
    admin = await setupAdmin(app);
  });
  afterAll(async () => app?.close());

  for (const operation of withBody) {
    it(`${operationKey(operation.method, operation.route)} answers 413 and writes nothing`, async () => {
      const params = Object.fromEntries(
        operation.parameters.filter((parameter) => parameter.in === "path").map((parameter) => [parameter.name, PLACEHOLDER_ID]),
      );
      const before = await snapshotDatabase(app.infra.db.kysely);
      const answer = await app.call(operation.method, urlOf(operation.route, params), {
        token: admin.token,
        tenant: admin.tenant.id,
        body: JSON.stringify({ padding: "x".repeat(4096) }),
        headers: { "content-type": "application/json" },
      });
      expect(answer.status, answer.text).toBe(413);
      expect(ZStrictErrorBody.parse(answer.body).error.code).toBe("payload_too_large");
      expect(snapshotDifferences(before, await snapshotDatabase(app.infra.db.kysely))).toEqual([]);
    });
  }
});
