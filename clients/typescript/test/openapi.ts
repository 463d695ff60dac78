// The client against the served /openapi.json: every operation has its method, and every path, query
// parameter and body field the client sends is one the document declares.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";

import { Footfall } from "@footfall/client";

import { footfall, unique, type Live } from "./harness.js";

// Operations the client leaves out on purpose: Leat's queued twins, which Footfall answers as their plain
// ones, the second door to a contact's delete, and the health check (not part of the API).
const LEFT_OUT = new Set([
  "POST /api/v3/oauth/clients/contacts/async",
  "GET /api/v3/oauth/clients/contacts/find-or-create/async",
  "POST /api/v3/oauth/clients/contacts/{uuid}/delete",
  "GET /healthz",
]);

type Schema = { $ref?: string; anyOf?: Schema[]; properties?: Record<string, Schema>; items?: Schema };
interface Operation {
  parameters?: { name: string; in: string }[];
  requestBody?: { content: Record<string, { schema: Schema }> };
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

describe("the client and the OpenAPI document", () => {
  let live: Live;
  let document: Document;
  before(async () => {
    live = await footfall();
    document = await (await fetch(`${live.baseUrl}/openapi.json`)).json() as Document;
  });

  function resolve(schema: Schema): Schema {
    if (schema.$ref !== undefined) return resolve(document.components.schemas[schema.$ref.split("/").at(-1)!]!);
    const object = schema.anyOf?.find((option) => resolve(option).properties !== undefined);
    return object === undefined ? schema : resolve(object);
  }

  /** The keys of `value` the schema does not declare, as paths ("visits[0].colour"). */
  function undeclared(value: unknown, schema: Schema, at: string): string[] {
    const resolved = resolve(schema);
    if (Array.isArray(value)) return value.flatMap((item, index) => undeclared(item, resolved.items ?? {}, `${at}[${index}]`));
    if (typeof value !== "object" || value === null || resolved.properties === undefined) return [];
    return Object.entries(value).flatMap(([key, inner]) => {
      const property = resolved.properties![key];
      return property === undefined ? [`${at}.${key}`] : undeclared(inner, property, `${at}.${key}`);
    });
  }

  test("every operation is called as declared, and each declared operation has its method", async () => {
    const called = new Set<string>();
    const problems: string[] = [];
    // Literal paths first: /visits/export is not /visits/{uuid}.
    const templates = Object.keys(document.paths).map((template) => ({
      template, pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}$`),
    })).sort((a, b) => a.template.split("{").length - b.template.split("{").length);
    const recording: typeof fetch = async (input, init) => {
      const url = new URL(String(input));
      const method = init?.method ?? "GET";
      const template = templates.find((candidate) => candidate.pattern.test(url.pathname))?.template;
      const operation = template === undefined ? undefined : document.paths[template]?.[method.toLowerCase()];
      if (template === undefined || operation === undefined) {
        problems.push(`${method} ${url.pathname}: no such operation`);
      } else {
        called.add(`${method} ${template}`);
        const declared = new Set(operation.parameters?.filter((p) => p.in === "query").map((p) => p.name));
        for (const name of url.searchParams.keys()) {
          if (!declared.has(name)) problems.push(`${method} ${template}: query parameter ${name}`);
        }
        if (typeof init?.body === "string") {
          const schema = operation.requestBody?.content["application/json"]?.schema;
          if (schema === undefined) problems.push(`${method} ${template}: takes no body`);
          else problems.push(...undeclared(JSON.parse(init.body), schema, `${method} ${template} body`));
        }
      }
      return fetch(input, init);
    };
    const ff = new Footfall({ baseUrl: live.baseUrl, token: live.token, fetch: recording });

    const range = { gte: "2024-01-01", gt: "2024-01-01", lte: "2030-01-01", lt: new Date("2030-01-01T00:00:00Z") };
    const filters = { contact_uuid: live.contacts[0]!, shop_uuid: live.shops[0]!, source: "Kiosk", external_id: "x",
      created_at: range, starts_at: range, updated_at: range };
    await ff.visits.list({ ...filters, limit: 5, page: 1, sort: "-starts_at" });
    const visit = await ff.visits.create({ contact_uuid: live.contacts[0]!, shop_uuid: live.shops[0]!,
      external_id: unique("openapi"), source: "Kiosk", starts_at: "2024-05-01 19:00", ends_at: null });
    await ff.visits.get(visit.uuid);
    await ff.visits.update(visit.uuid, { external_id: null, source: "Till", starts_at: new Date(), ends_at: null });
    await ff.visits.batch([{ contact_email: `${unique("openapi")}@krabs.sea`, shop_uuid: live.shops[0]!,
      external_id: null, source: null, starts_at: "2024-05-01", ends_at: null },
    { contact_uuid: live.contacts[0]!, shop_uuid: live.shops[0]! }]);
    const changes = await ff.visits.changes({ limit: 1 });
    await ff.visits.changes({ cursor: changes.next_cursor, limit: 1 });
    await ff.visits.export({ ...filters, format: "csv" });
    await ff.visits.stats({ ...filters, interval: "month", group_by: "source", timezone: "UTC" });
    await ff.visits.delete(visit.uuid);
    await ff.shops.get((await ff.shops.list())[0]!.uuid);
    const contact = await ff.contacts.create(`${unique("openapi")}@krabs.sea`);
    await ff.contacts.get(contact.uuid);
    await ff.contacts.list({ limit: 1, page: 2 });
    const audience = { shop_uuid: live.shops[0]!, visit_count: { gte: 1, lte: 1000 },
      first_visit_at: { gte: "2000-01-01", lt: new Date() }, last_visit_at: { gte: "2000-01-01", lt: "2100-01-01" } };
    await ff.contacts.list({ ...audience, sort: "-last_visit_at", limit: 1, page: 1 });
    for await (const _line of ff.contacts.export({ ...audience, format: "csv" })) break;
    await ff.contacts.ruleProgress(contact.uuid);
    const rule = await ff.visitRules.create({ name: "openapi", kind: "milestone", every: 3, shop_uuid: live.shops[0]!,
      source: "Kiosk", status: "INACTIVE" });
    await ff.visitRules.create({ name: "openapi", kind: "milestone", at: [2, 4] }).then((made) =>
      ff.visitRules.delete(made.uuid));
    await ff.visitRules.create({ name: "openapi", kind: "frequency", count: 2, within_days: 3 }).then((made) =>
      ff.visitRules.delete(made.uuid));
    await ff.visitRules.create({ name: "openapi", kind: "lapse", after_days: 3, min_visits: 2 }).then((made) =>
      ff.visitRules.delete(made.uuid));
    await ff.visitRules.list({ limit: 1, page: 1 });
    await ff.visitRules.get(rule.uuid);
    await ff.visitRules.update(rule.uuid, { name: "renamed", status: "ACTIVE" });
    await ff.visitRules.delete(rule.uuid);
    await ff.contacts.findByEmail(contact.email!);
    await ff.contacts.findOrCreate(contact.email!);
    const anonymous = await ff.contacts.createAnonymous();
    await ff.contacts.claim(anonymous.uuid, `${unique("openapi")}@krabs.sea`);
    await ff.contacts.delete(anonymous.uuid, { gdpr: true });
    const subscription = await ff.webhookSubscriptions.create({ name: "openapi", event_type: "contact_created",
      url: "http://127.0.0.1:9/hook", secret: "openapi-secret" });
    await ff.webhookSubscriptions.list({ event_type: "contact_created", status: "ACTIVE", limit: 1, page: 1 });
    await ff.webhookSubscriptions.get(subscription.uuid);
    await ff.webhookSubscriptions.update(subscription.uuid, { name: "renamed", url: "http://127.0.0.1:9/other",
      status: "INACTIVE" });
    const [delivery] = (await ff.webhookSubscriptions.deliveries(live.subscriptionUuid, { limit: 1, page: 1 })).items;
    await ff.webhookSubscriptions.retryDelivery(live.subscriptionUuid, delivery!.uuid);
    await ff.webhookSubscriptions.delete(subscription.uuid);

    assert.deepEqual(problems, []);
    const declared = Object.entries(document.paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`));
    assert.deepEqual(declared.filter((operation) => !called.has(operation) && !LEFT_OUT.has(operation)), []);
  });
});
