import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, test } from "node:test";

import { Footfall, verifyWebhook, WebhookVerificationError, type WebhookDelivery } from "@footfall/client";

import { footfall, Receiver, unique, type Delivery, type Live } from "./harness.js";

const refused = (message: RegExp) => (error: unknown) =>
  error instanceof WebhookVerificationError && message.test(error.message);

function without(headers: Delivery["headers"], prefix: string): Delivery["headers"] {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !name.startsWith(prefix)));
}

describe("webhook subscriptions", () => {
  let live: Live;
  let ff: Footfall;
  let receiver: Receiver;
  before(async () => {
    live = await footfall();
    ff = new Footfall({ baseUrl: live.baseUrl, token: live.token });
    receiver = await Receiver.start();
  });
  after(async () => receiver.close());

  test("create (the secret shown once), get, list with filters, update, delete", async () => {
    const created = await ff.webhookSubscriptions.create({ name: "Stamp cards", event_type: "visit_updated",
      url: "http://127.0.0.1:9/hook" });
    assert.match(created.secret, /^whsec_/);
    assert.deepEqual([created.name, created.event_type, created.status, created.version], ["Stamp cards",
      "visit_updated", "ACTIVE", "V1"]);
    const shown = await ff.webhookSubscriptions.get(created.uuid);
    assert.equal("secret" in shown, false);
    const { secret: _secret, ...rest } = created;
    assert.deepEqual(shown, rest);
    const updated = await ff.webhookSubscriptions.update(created.uuid, { name: "Renamed", status: "INACTIVE" });
    assert.deepEqual([updated.name, updated.status, updated.url], ["Renamed", "INACTIVE", created.url]);
    const inactive = await ff.webhookSubscriptions.list({ status: "INACTIVE", event_type: "visit_updated", limit: 100 });
    assert.deepEqual(inactive.items.map((item) => item.uuid), [created.uuid]);
    const all = await ff.webhookSubscriptions.list({ limit: 1, page: 1 });
    assert.ok(all.total >= 2 && all.items.length === 1 && all.last_page === all.total);
    assert.equal(await ff.webhookSubscriptions.delete(created.uuid), undefined);
    await assert.rejects(ff.webhookSubscriptions.get(created.uuid), { status: 404, code: 80300 });
    await assert.rejects(ff.webhookSubscriptions.create({ name: "x", event_type: "visit_created", url: "ftp://x" }),
      (error: { code: number; errors: object }) => error.code === 1003 && "url" in error.errors);
  });

  test("a real delivery verifies by either signature, and the delivery log shows it and sends it again", async () => {
    const subscription = await ff.webhookSubscriptions.create({ name: unique("verify"), event_type: "visit_created",
      url: receiver.url });
    const visit = await ff.visits.create({ contact_uuid: live.contacts[0]!, shop_uuid: live.shops[0]!,
      source: "Caf\u00e9 / web" });
    const [delivery] = await receiver.waitFor(1);
    const { headers, body } = delivery!;

    const event = verifyWebhook(body, headers, subscription.secret);
    assert.equal(event.type, "visit_created");
    if (event.type !== "visit_created") return;
    assert.deepEqual(event.data, visit);
    assert.equal(event.id, headers["webhook-id"]);
    assert.ok(body.includes("Caf\\u00e9 \\/ web")); // written as PHP's json_encode writes it
    assert.deepEqual(verifyWebhook(body, headers, subscription.secret, { scheme: "standard" }), event);
    assert.deepEqual(verifyWebhook(body.toString(), new Headers(headers as Record<string, string>),
      subscription.secret), event);
    const leatOnly = without(headers, "webhook-");
    assert.deepEqual(verifyWebhook(body, leatOnly, subscription.secret), event);
    assert.deepEqual(verifyWebhook(body, headers, subscription.secret, { scheme: "leat" }), event);

    assert.throws(() => verifyWebhook(Buffer.concat([body, Buffer.from(" ")]), headers, subscription.secret),
      refused(/no webhook-signature matches/));
    assert.throws(() => verifyWebhook(body, leatOnly, `${subscription.secret}x`), refused(/signature header/));
    assert.throws(() => verifyWebhook(body, leatOnly, subscription.secret, { scheme: "standard" }),
      refused(/no Standard Webhooks headers/));
    assert.throws(() => verifyWebhook(body, without(headers, "signature"), subscription.secret, { scheme: "leat" }),
      refused(/no signature headers/));
    assert.throws(() => verifyWebhook(body, {}, subscription.secret), refused(/no signature headers/));
    const otherSecret = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
    assert.throws(() => verifyWebhook(body, headers, otherSecret), refused(/no webhook-signature matches/));

    // The log: the delivery succeeded; sent again, it arrives with the same webhook-id.
    let logged: WebhookDelivery | undefined;
    for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
      logged = (await ff.webhookSubscriptions.deliveries(subscription.uuid)).items[0];
      if (logged?.state === "succeeded") break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.deepEqual([logged?.event_id, logged?.event_type, logged?.state, logged?.attempts, logged?.last_status_code],
      [event.id, "visit_created", "succeeded", 1, 204]);
    const again = await ff.webhookSubscriptions.retryDelivery(subscription.uuid, logged!.uuid);
    assert.deepEqual([again.uuid, again.state], [logged!.uuid, "pending"]);
    const [, repeat] = await receiver.waitFor(2);
    assert.equal(repeat!.headers["webhook-id"], event.id);
    assert.deepEqual(verifyWebhook(repeat!.body, repeat!.headers, subscription.secret), event);
    await assert.rejects(ff.webhookSubscriptions.retryDelivery(subscription.uuid, live.accountUuid),
      { status: 404, code: 91101 });
    await ff.webhookSubscriptions.delete(subscription.uuid);
  });

  test("a secret of your own (not whsec_) signs both ways; a GDPR delete's event carries no email", async () => {
    receiver.received.length = 0;
    const secret = "a-leat-receiver-secret";
    const subscription = await ff.webhookSubscriptions.create({ name: unique("own"), event_type: "contact_deleted",
      url: receiver.url, secret });
    const contact = await ff.contacts.create(`${unique("erased")}@krabs.sea`);
    await ff.contacts.delete(contact.uuid, { gdpr: true });
    const [delivery] = await receiver.waitFor(1);
    for (const scheme of ["standard", "leat"] as const) {
      const event = verifyWebhook(delivery!.body, delivery!.headers, secret, { scheme });
      assert.ok(event.type === "contact_deleted");
      assert.deepEqual([event.data.uuid, event.data.email], [contact.uuid, null]);
    }
    await ff.webhookSubscriptions.delete(subscription.uuid);
  });
});

describe("verifyWebhook's timestamp", () => {
  const key = Buffer.alloc(32, 1);
  const secret = `whsec_${key.toString("base64")}`;
  const body = JSON.stringify({ id: "msg_1", type: "visit_deleted", created_at: "2024-05-01T20:00:00+00:00",
    data: { uuid: "u", external_id: null, deleted_at: "2024-05-01T20:00:00+00:00" } });
  const signed = (timestamp: number) => ({
    "webhook-id": "msg_1",
    "webhook-timestamp": String(timestamp),
    "webhook-signature": `v1,${Buffer.alloc(32).toString("base64")} v1,${
      createHmac("sha256", key).update(`msg_1.${timestamp}.${body}`).digest("base64")}`,
  });

  test("is within 5 minutes either way, or as told", () => {
    const now = Math.floor(Date.now() / 1000);
    assert.equal(verifyWebhook(body, signed(now - 290), secret).type, "visit_deleted");
    assert.equal(verifyWebhook(body, signed(now + 290), secret).type, "visit_deleted");
    assert.throws(() => verifyWebhook(body, signed(now - 3600), secret), refused(/too old/));
    assert.throws(() => verifyWebhook(body, signed(now + 3600), secret), refused(/too old or too new/));
    assert.equal(verifyWebhook(body, signed(now - 3600), secret, { toleranceSeconds: 7200 }).type, "visit_deleted");
    assert.equal(verifyWebhook(body, signed(1_700_000_000), secret, { now: 1_700_000_010 }).type, "visit_deleted");
    assert.throws(() => verifyWebhook(body, { ...signed(now), "webhook-timestamp": "soon" }, secret),
      refused(/not a number/));
    assert.throws(() => verifyWebhook(body, signed(now), "whsec_not base64!"), refused(/whsec_ base64/));
  });
});
