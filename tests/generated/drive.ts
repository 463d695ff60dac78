// Drives a live Footfall through a client generated from its /openapi.json: openapi-typescript's
// types (schema.ts) and openapi-fetch. tests/test_generated_clients.py type-checks this with
// `tsc --strict` and runs it: node build/drive.js BASE_URL TOKEN. It prints "ok".
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

declare const process: { argv: string[] }; // node's, without @types/node
const [baseUrl, token] = process.argv.slice(2);

type Visit = components["schemas"]["VisitOut"];

function check(condition: boolean, what: string): asserts condition {
  if (!condition) {
    throw new Error(`failed: ${what}`);
  }
}

const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
const run = Date.now().toString(36);

const shops = await client.GET("/api/v3/oauth/clients/shops");
check(shops.data !== undefined && shops.data.data.length > 0, "list shops");
const shop = shops.data.data[0];

const contact = await client.POST("/api/v3/oauth/clients/contacts", { body: { email: `ts-${run}@example.com` } });
check(contact.response.status === 201 && contact.data !== undefined, "create a contact");
const contactUuid = contact.data.data.uuid;

const created = await client.POST("/api/v3/oauth/clients/visits", {
  body: {
    contact_uuid: contactUuid,
    shop_uuid: shop.uuid,
    external_id: `ts-${run}`,
    source: "typescript",
    starts_at: "2024-05-01T10:00:00+00:00",
    ends_at: "2024-05-01T10:30:00+00:00",
  },
});
check(created.response.status === 201 && created.data !== undefined, "create a visit");
check(created.response.headers.get("X-Request-Id") !== null, "X-Request-Id on an answer");
const visit: Visit = created.data.data;
const meta: null[] = created.data.meta; // always sent, so required: never undefined
check(meta.length === 0, "a visit answer's meta");
check(visit.source === "typescript" && visit.contact.uuid === contactUuid, "the created visit's fields");

const shown = await client.GET("/api/v3/oauth/clients/visits/{uuid}", { params: { path: { uuid: visit.uuid } } });
check(shown.data !== undefined && shown.data.data.external_id === `ts-${run}`, "show the visit");

const listed = await client.GET("/api/v3/oauth/clients/visits", {
  params: { query: { contact_uuid: contactUuid, limit: 10, sort: "-starts_at" } },
});
check(listed.data !== undefined && listed.data.meta.total === 1, "list the contact's visits");
check(listed.data.data[0].uuid === visit.uuid, "the listed visit");

// null clears a field: sent as JSON, never as the text "null".
const updated = await client.PUT("/api/v3/oauth/clients/visits/{uuid}", {
  params: { path: { uuid: visit.uuid } },
  body: { source: null, ends_at: null },
});
check(updated.data !== undefined, "update the visit");
check(updated.data.data.source === null && updated.data.data.ends_at === null, "null cleared source and ends_at");
check(updated.data.data.external_id === `ts-${run}`, "a field not sent is kept");

const stats = await client.GET("/api/v3/oauth/clients/visits/stats", {
  params: { query: { contact_uuid: contactUuid, interval: "day" } },
});
check(stats.data !== undefined && stats.data.meta.interval === "day", "the stats");
check(stats.data.data.reduce((sum, bucket) => sum + bucket.visits, 0) === 1, "the stats count the visit");

const csv = await client.GET("/api/v3/oauth/clients/visits/export", {
  params: { query: { format: "csv", contact_uuid: contactUuid } },
  parseAs: "text",
});
check(typeof csv.data === "string" && csv.data.startsWith("uuid,") && csv.data.includes(visit.uuid), "CSV export");
const ndjson = await client.GET("/api/v3/oauth/clients/visits/export", {
  params: { query: { contact_uuid: contactUuid } },
  parseAs: "text",
});
check(ndjson.data !== undefined, "NDJSON export");
const exported = ndjson.data.trim().split("\n").map((line) => JSON.parse(line) as { uuid: string; source: unknown });
check(exported.length === 1 && exported[0].uuid === visit.uuid && exported[0].source === null, "NDJSON export's row");

const deleted = await client.DELETE("/api/v3/oauth/clients/visits/{uuid}", { params: { path: { uuid: visit.uuid } } });
check(deleted.response.status === 200, "delete the visit");

const missing = await client.GET("/api/v3/oauth/clients/visits/{uuid}", { params: { path: { uuid: visit.uuid } } });
check(missing.response.status === 404 && missing.error?.code === 91001, "404 (91001) for the deleted visit");

const invalid = await client.GET("/api/v3/oauth/clients/visits", { params: { query: { limit: 501 } } });
check(invalid.response.status === 422 && invalid.error?.code === 1003, "422 (1003) for a limit over 500");
check(invalid.error.errors?.limit !== undefined, "the 1003 names its field");

console.log("ok");
