import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, beforeEach, describe, test } from "node:test";

import { Footfall, FootfallConnectionError, FootfallError } from "@footfall/client";

import { FlakyProxy, footfall, freePort, unique, type Live } from "./harness.js";

const NOWHERE = "00000000-0000-4000-8000-000000000000";
const LEAT_429 = JSON.stringify({ status_code: 429, code: 90429, message: "Too many requests." });

async function rejection(promise: Promise<unknown>): Promise<FootfallError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof FootfallError, `not a FootfallError: ${String(error)}`);
    return error;
  }
  assert.fail("resolved");
}

describe("errors", () => {
  let live: Live;
  let ff: Footfall;
  before(async () => {
    live = await footfall();
    ff = new Footfall({ baseUrl: live.baseUrl, token: live.token });
  });

  test("401: a wrong token, with Leat's code and the request id", async () => {
    const error = await rejection(new Footfall({ baseUrl: live.baseUrl, token: "ffpat_wrong" }).visits.list());
    assert.deepEqual([error.status, error.code, error.serverMessage], [401, 90401, "Unauthenticated."]);
    assert.match(error.requestId ?? "", /^[0-9a-f]{32}$/);
    assert.equal(error.message, "401 90401 Unauthenticated.");
    assert.equal(error.name, "FootfallError");
    assert.ok(error instanceof Error);
  });

  test("404 for each kind of thing, and 403 for a read-only token's write", async () => {
    assert.equal((await rejection(ff.visits.get(NOWHERE))).code, 91001);
    assert.equal((await rejection(ff.contacts.get(NOWHERE))).code, 55031);
    assert.equal((await rejection(ff.webhookSubscriptions.get(NOWHERE))).code, 80300);
    const error = await rejection(ff.visits.create({ contact_uuid: NOWHERE, shop_uuid: live.shops[0]! }));
    assert.deepEqual([error.status, error.code, error.serverMessage], [404, 55031, "Contact not found."]);
    const readOnly = new Footfall({ baseUrl: live.baseUrl, token: live.readOnlyToken });
    assert.equal((await readOnly.shops.list()).length, 3);
    const refused = await rejection(readOnly.contacts.create("ro@krabs.sea"));
    assert.deepEqual([refused.status, refused.code], [403, 90403]);
  });

  test("422 (1003) names each bad field; 409 (91002) for an external_id taken by another visit", async () => {
    const error = await rejection(ff.visits.create({ contact_uuid: live.contacts[0]!, shop_uuid: "not-a-uuid",
      starts_at: "someday", ends_at: "2024-05-01" }));
    assert.deepEqual([error.status, error.code, error.serverMessage], [422, 1003, "Invalid input."]);
    assert.deepEqual(Object.keys(error.errors).sort(), ["shop_uuid", "starts_at"]);
    assert.ok(error.errors["starts_at"]!.every((message) => typeof message === "string" && message.length > 0));
    assert.match(error.message, /^422 1003 Invalid input\. .*starts_at: /);
    assert.deepEqual(Object.keys((await rejection(ff.visits.list({ limit: 501 }))).errors), ["limit"]);
    const range = await rejection(ff.visits.list({ created_at: { gte: "01-05-2024" } }));
    assert.deepEqual(Object.keys(range.errors), ["created_at[gte]"]);

    const externalId = unique("conflict");
    await ff.visits.create({ contact_uuid: live.contacts[0]!, shop_uuid: live.shops[0]!, external_id: externalId,
      source: "A" });
    const conflict = await rejection(ff.visits.create({ contact_uuid: live.contacts[0]!, shop_uuid: live.shops[0]!,
      external_id: externalId, source: "B" }));
    assert.deepEqual([conflict.status, conflict.code], [409, 91002]);
  });

  test("Idempotency-Key: a repeat answers the first answer and writes nothing; another body under it is 91201", async () => {
    const idempotencyKey = randomUUID();
    const body = { contact_uuid: live.contacts[1]!, shop_uuid: live.shops[1]!, source: unique("key") };
    const first = await ff.visits.create(body, { idempotencyKey });
    const again = await ff.visits.create(body, { idempotencyKey });
    assert.deepEqual(again, first);
    assert.equal((await ff.visits.list({ source: body.source })).total, 1);
    const reused = await rejection(ff.visits.create({ ...body, source: "other" }, { idempotencyKey }));
    assert.deepEqual([reused.status, reused.code], [422, 91201]);
    // A delete repeated under its key answers the first delete's answer, not a 404.
    const deleteKey = randomUUID();
    await ff.visits.delete(first.uuid, { idempotencyKey: deleteKey });
    await ff.visits.delete(first.uuid, { idempotencyKey: deleteKey });
    await assert.rejects(ff.visits.delete(first.uuid), { status: 404 });
  });
});

describe("retries", () => {
  let live: Live;
  let proxy: FlakyProxy;
  let ff: Footfall;
  before(async () => {
    live = await footfall();
    proxy = await FlakyProxy.start(live.baseUrl);
  });
  after(async () => proxy.close());
  beforeEach(() => {
    proxy.plan = [];
    proxy.seen.length = 0;
    ff = new Footfall({ baseUrl: proxy.url, token: live.token, retryDelayMs: 10, timeoutMs: 2_000 });
  });

  test("a read is retried through 503, 429 (after its Retry-After) and a cut connection", async () => {
    proxy.plan = [{ answer: 503 }, { answer: 429, headers: { "Retry-After": "1" }, body: LEAT_429 },
      { drop: "before-forwarding" }];
    assert.equal((await ff.shops.list()).length, 3);
    assert.equal(proxy.seen.length, 4);
    const waited = proxy.seen[2]!.at - proxy.seen[1]!.at;
    assert.ok(waited >= 950, `waited ${waited} ms after Retry-After: 1`);
  });

  test("retries are bounded: the last error answer rejects, in Leat's shape or not", async () => {
    proxy.plan = Array.from({ length: 4 }, () => ({ answer: 502, headers: { "Content-Type": "text/html" },
      body: "<html>Bad gateway</html>" }));
    const error = await rejection(ff.shops.list());
    assert.deepEqual([error.status, error.code, error.body], [502, null, "<html>Bad gateway</html>"]);
    assert.equal(proxy.seen.length, 4); // the first attempt and maxRetries (3) more

    const once = new Footfall({ baseUrl: proxy.url, token: live.token, maxRetries: 0 });
    proxy.plan = [{ answer: 500, body: '{"status_code": 500, "code": 90500, "message": "Server error."}' }];
    assert.equal((await rejection(once.shops.list())).code, 90500);
    assert.equal(proxy.seen.length, 5);
  });

  test("a Retry-After longer than maxRetryDelayMs hands the 429 over at once", async () => {
    const impatient = new Footfall({ baseUrl: proxy.url, token: live.token, maxRetryDelayMs: 5_000 });
    proxy.plan = [{ answer: 429, headers: { "Retry-After": "30" }, body: LEAT_429 }];
    const error = await rejection(impatient.visits.list());
    assert.deepEqual([error.status, error.code, error.retryAfter], [429, 90429, 30]);
    assert.equal(proxy.seen.length, 1);
  });

  test("an error answer other than 429 and 5xx is not retried", async () => {
    await rejection(ff.visits.create({ contact_uuid: live.contacts[0]!, shop_uuid: live.shops[0]!, starts_at: "x" }));
    await rejection(ff.visits.get(NOWHERE));
    assert.equal(proxy.seen.length, 2);
  });

  test("a create whose answer was lost is retried under one key: one visit, not two", async () => {
    const source = unique("lost");
    proxy.plan = [{ drop: "after-forwarding" }, { answer: 503 }];
    const visit = await ff.visits.create({ contact_uuid: live.contacts[3]!, shop_uuid: live.shops[0]!, source });
    assert.equal((await ff.visits.list({ source })).total, 1);
    assert.equal((await ff.visits.get(visit.uuid)).source, source);
    const keys = proxy.seen.filter((request) => request.method === "POST").map((r) => r.headers["idempotency-key"]);
    assert.equal(keys.length, 3);
    assert.equal(new Set(keys).size, 1);
    assert.match(String(keys[0]), /^[0-9a-f-]{36}$/);

    // Every write carries a key: PUT and DELETE too, the caller's own when given.
    proxy.plan = [{ drop: "after-forwarding" }];
    const updated = await ff.visits.update(visit.uuid, { source: `${source}!` }, { idempotencyKey: "my-key-1" });
    assert.equal(updated.source, `${source}!`);
    assert.deepEqual(proxy.seen.slice(-2).map((r) => [r.method, r.headers["idempotency-key"]]),
      [["PUT", "my-key-1"], ["PUT", "my-key-1"]]);
    proxy.plan = [{ drop: "after-forwarding" }];
    await ff.visits.delete(visit.uuid); // the retry replays the first delete's answer
    await assert.rejects(ff.visits.get(visit.uuid), { status: 404 });
  });

  test("a webhook subscription's delete (no key there) whose answer was lost resolves", async () => {
    const subscription = await ff.webhookSubscriptions.create({ name: "lost delete", event_type: "visit_deleted",
      url: "http://127.0.0.1:9/hook" });
    proxy.plan = [{ drop: "after-forwarding" }];
    await ff.webhookSubscriptions.delete(subscription.uuid);
    assert.equal(proxy.seen.at(-1)!.headers["idempotency-key"], undefined);
    await assert.rejects(ff.webhookSubscriptions.get(subscription.uuid), { status: 404, code: 80300 });
    await assert.rejects(ff.webhookSubscriptions.delete(subscription.uuid), { status: 404, code: 80300 });
  });

  test("a timed-out attempt is retried; no answer at all rejects with FootfallConnectionError", async () => {
    const quick = new Footfall({ baseUrl: proxy.url, token: live.token, retryDelayMs: 10, timeoutMs: 300 });
    proxy.plan = [{ hang: true }];
    assert.equal((await quick.shops.list()).length, 3);
    assert.equal(proxy.seen.length, 2);

    const closed = new Footfall({ baseUrl: `http://127.0.0.1:${await freePort()}`, token: live.token,
      retryDelayMs: 10, maxRetries: 2 });
    await assert.rejects(closed.visits.list(), (error: unknown) => {
      assert.ok(error instanceof FootfallConnectionError);
      assert.equal(error.attempts, 3);
      assert.match(error.message, /^GET \/visits: no answer after 3 attempt\(s\)/);
      return true;
    });
  });

  test("the caller's AbortSignal stops a call and its retries", async () => {
    const patient = new Footfall({ baseUrl: proxy.url, token: live.token, retryDelayMs: 5_000 });
    proxy.plan = Array.from({ length: 4 }, () => ({ answer: 503 }));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const started = Date.now();
    await assert.rejects(patient.shops.list({ signal: controller.signal }), { name: "AbortError" });
    assert.ok(Date.now() - started < 4_000);
  });
});
