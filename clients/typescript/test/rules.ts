import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  Footfall, FootfallError, verifyWebhook, type Contact, type CreatedWebhookSubscription, type ExportedContact,
  type WebhookEvent,
} from "@footfall/client";

import { FlakyProxy, footfall, Receiver, unique, type Live } from "./harness.js";

/** The verified events of a subscription (its own path on the receiver) about a contact, once `count` came. */
async function eventsOf(receiver: Receiver, subscription: CreatedWebhookSubscription, contactUuid: string,
                        count = 1): Promise<WebhookEvent[]> {
  const path = new URL(subscription.url).pathname;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const events = receiver.received.filter((delivery) => delivery.url === path)
      .map((delivery) => verifyWebhook(delivery.body, delivery.headers, subscription.secret))
      .filter((event) => event.type === subscription.event_type
        && "contact" in event.data && event.data.contact.uuid === contactUuid);
    if (events.length >= count) return events;
    if (Date.now() > deadline) throw new Error(`${events.length} of ${count} ${subscription.event_type} events`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

describe("visit rules, progress and audiences", () => {
  let live: Live;
  let ff: Footfall;
  let receiver: Receiver;
  before(async () => {
    live = await footfall();
    ff = new Footfall({ baseUrl: live.baseUrl, token: live.token });
    receiver = await Receiver.start();
  });
  after(async () => receiver.close());

  test("visit rules: create each kind, get, list, iterate, update name and status, delete", async () => {
    const every = await ff.visitRules.create({ name: unique("every"), kind: "milestone", every: 10 });
    assert.deepEqual(every, { uuid: every.uuid, name: every.name, kind: "milestone", every: 10, at: null, count: null,
      within_days: null, after_days: null, min_visits: null, shop_uuid: null, source: null, status: "ACTIVE",
      created_at: every.created_at });
    assert.match(every.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
    const at = await ff.visitRules.create({ name: unique("at"), kind: "milestone", at: [25, 5, 5],
      shop_uuid: live.shops[0]!, source: "Kiosk", status: "INACTIVE" });
    assert.deepEqual([at.at, at.shop_uuid, at.source, at.status], [[5, 25], live.shops[0], "Kiosk", "INACTIVE"]);
    const frequency = await ff.visitRules.create({ name: unique("frequency"), kind: "frequency", count: 3,
      within_days: 7 });
    assert.deepEqual([frequency.count, frequency.within_days], [3, 7]);
    const lapse = await ff.visitRules.create({ name: unique("lapse"), kind: "lapse", after_days: 30 });
    assert.deepEqual([lapse.after_days, lapse.min_visits], [30, 1]);
    assert.deepEqual(await ff.visitRules.get(at.uuid), at);

    const page = await ff.visitRules.list({ limit: 2 });
    assert.deepEqual(page.items.map((rule) => rule.uuid), [lapse.uuid, frequency.uuid]); // newest first
    assert.ok(page.total >= 4 && page.per_page === 2 && page.last_page === Math.ceil(page.total / 2));
    const all = await collect(ff.visitRules.iterate({ limit: 3 }));
    assert.equal(all.length, page.total);
    assert.ok(all.some((rule) => rule.uuid === every.uuid));

    const renamed = await ff.visitRules.update(at.uuid, { name: "Fifth and 25th", status: "ACTIVE" });
    assert.deepEqual(renamed, { ...at, name: "Fifth and 25th", status: "ACTIVE" });
    await assert.rejects(ff.visitRules.update(at.uuid, { every: 3 } as never),
      (error: FootfallError) => error.code === 1003 && "every" in error.errors);
    await assert.rejects(ff.visitRules.create({ name: "both", kind: "milestone", every: 2, at: [3] } as never),
      (error: FootfallError) => error.status === 422 && "every" in error.errors);
    await assert.rejects(ff.visitRules.create({ name: "no shop", kind: "milestone", every: 2,
      shop_uuid: "00000000-0000-4000-8000-000000000000" }), { status: 404, code: 1008 });
    for (const rule of [every, at, frequency, lapse]) assert.equal(await ff.visitRules.delete(rule.uuid), undefined);
    await assert.rejects(ff.visitRules.get(at.uuid), { status: 404, code: 91301 });
  });

  test("a milestone: its visit_milestone event, and the contact's progress before and after", async () => {
    const source = unique("milestone");
    const subscription = await ff.webhookSubscriptions.create({ name: unique("milestones"),
      event_type: "visit_milestone", url: `${receiver.url}/milestone` });
    const rule = await ff.visitRules.create({ name: "Every 2nd visit", kind: "milestone", every: 2, source });
    const contact = await ff.contacts.create(`${unique("gary")}@bikinibottom.sea`);
    const first = await ff.visits.create({ contact_uuid: contact.uuid, shop_uuid: live.shops[0]!, source });
    const before = (await ff.contacts.ruleProgress(contact.uuid)).find((progress) => progress.rule.uuid === rule.uuid);
    assert.deepEqual(before, { rule, count: 1, reached: [], next_at: 2, lapsed: null,
      last_visit_at: first.starts_at });
    const second = await ff.visits.create({ contact_uuid: contact.uuid, shop_uuid: live.shops[1]!, source });

    const [event] = await eventsOf(receiver, subscription, contact.uuid);
    assert.ok(event?.type === "visit_milestone");
    assert.deepEqual(event.data, { rule: { uuid: rule.uuid, name: rule.name, kind: "milestone" },
      contact: { uuid: contact.uuid, email: contact.email }, visit: second, count: 2 });
    const progress = (await ff.contacts.ruleProgress(contact.uuid)).find((row) => row.rule.uuid === rule.uuid);
    assert.deepEqual([progress?.count, progress?.reached, progress?.next_at], [2, [2], 4]);
    await assert.rejects(ff.contacts.ruleProgress("00000000-0000-4000-8000-000000000000"),
      { status: 404, code: 55031 });
    await ff.webhookSubscriptions.delete(subscription.uuid);
    await ff.visitRules.delete(rule.uuid);
  });

  test("a lapse and a return: contact_lapsed from the worker's pass, contact_returned from the next visit", async () => {
    const source = unique("lapse");
    const lapsedHook = await ff.webhookSubscriptions.create({ name: unique("lapsed"), event_type: "contact_lapsed",
      url: `${receiver.url}/lapsed` });
    const returnedHook = await ff.webhookSubscriptions.create({ name: unique("returned"),
      event_type: "contact_returned", url: `${receiver.url}/returned` });
    const rule = await ff.visitRules.create({ name: "Gone a day", kind: "lapse", after_days: 1, source });
    const contact = await ff.contacts.create(`${unique("plankton")}@chumbucket.sea`);
    const tenDaysAgo = new Date(Math.floor(Date.now() / 1000) * 1000 - 10 * 86_400_000);
    const old = await ff.visits.create({ contact_uuid: contact.uuid, shop_uuid: live.shops[0]!, source,
      starts_at: tenDaysAgo });

    const [lapsed] = await eventsOf(receiver, lapsedHook, contact.uuid);
    assert.ok(lapsed?.type === "contact_lapsed");
    assert.deepEqual(lapsed.data, { rule: { uuid: rule.uuid, name: "Gone a day", kind: "lapse" },
      contact: { uuid: contact.uuid, email: contact.email }, last_visit_at: old.starts_at, days: 10 });
    const progress = (await ff.contacts.ruleProgress(contact.uuid)).find((row) => row.rule.uuid === rule.uuid);
    assert.deepEqual([progress?.lapsed, progress?.count, progress?.next_at], [true, 1, null]);

    const back = await ff.visits.create({ contact_uuid: contact.uuid, shop_uuid: live.shops[2]!, source });
    const [returned] = await eventsOf(receiver, returnedHook, contact.uuid);
    assert.ok(returned?.type === "contact_returned");
    assert.deepEqual(returned.data, { rule: { uuid: rule.uuid, name: "Gone a day", kind: "lapse" },
      contact: { uuid: contact.uuid, email: contact.email }, visit: back, days_away: 10 });
    const now = (await ff.contacts.ruleProgress(contact.uuid)).find((row) => row.rule.uuid === rule.uuid);
    assert.deepEqual([now?.lapsed, now?.count], [false, 2]);
    for (const hook of [lapsedHook, returnedHook]) await ff.webhookSubscriptions.delete(hook.uuid);
    await ff.visitRules.delete(rule.uuid);
  });

  /** Three new contacts with visits in a year of their own (no other test's reach it): three, one, none. */
  async function audience(year: number): Promise<[Contact, Contact, Contact]> {
    const [regular, once, never] = await Promise.all(["regular", "once", "never"].map((name) =>
      ff.contacts.create(`${unique(name)}@krabs.sea`)));
    for (const [month, shop] of [[1, 0], [2, 0], [3, 1]] as const) {
      await ff.visits.create({ contact_uuid: regular!.uuid, shop_uuid: live.shops[shop]!,
        starts_at: `${year}-0${month}-01T12:00:00Z` });
    }
    await ff.visits.create({ contact_uuid: once!.uuid, shop_uuid: live.shops[2]!, starts_at: `${year}-06-01T12:00:00Z` });
    return [(await ff.contacts.get(regular!.uuid)), (await ff.contacts.get(once!.uuid)), never!];
  }

  test("audiences: the list and iterate filter by visit count, first and last visit and shop, and sort", async () => {
    const [regular, once, never] = await audience(1998);
    assert.deepEqual([regular.visit_count, regular.first_visit_at, regular.last_visit_at],
      [3, "1998-01-01T12:00:00+00:00", "1998-03-01T12:00:00+00:00"]);
    const in1998 = { first_visit_at: { gte: new Date("1998-01-01T00:00:00Z"), lt: "1999-01-01" } };
    const page = await ff.contacts.list({ ...in1998, sort: "-visit_count" });
    assert.deepEqual(page.items, [regular, once]);
    assert.equal(page.total, 2);
    const uuids = async (params: Parameters<Footfall["contacts"]["list"]>[0]) =>
      (await ff.contacts.list(params)).items.map((contact) => contact.uuid);
    assert.deepEqual(await uuids({ ...in1998, sort: "-last_visit_at" }), [once.uuid, regular.uuid]);
    assert.deepEqual(await uuids({ ...in1998, visit_count: { gte: 2 } }), [regular.uuid]);
    assert.deepEqual(await uuids({ ...in1998, last_visit_at: { gte: "1998-04-01" } }), [once.uuid]);
    const atShop = await ff.contacts.list({ ...in1998, shop_uuid: live.shops[1]! });
    assert.deepEqual(atShop.items.map((contact) => [contact.uuid, contact.visit_count, contact.first_visit_at]),
      [[regular.uuid, 1, "1998-03-01T12:00:00+00:00"]]);
    const iterated = await collect(ff.contacts.iterate({ ...in1998, sort: "first_visit_at", limit: 1 }));
    assert.deepEqual(iterated.map((contact) => contact.uuid), [regular.uuid, once.uuid]);
    const withoutVisits = (await collect(ff.contacts.iterate({ visit_count: { lte: 0 } }))).map((c) => c.uuid);
    assert.ok(withoutVisits.includes(never.uuid) && !withoutVisits.includes(regular.uuid));
    await assert.rejects(ff.contacts.list({ sort: "email" as never }),
      (error: FootfallError) => error.code === 1003 && "sort" in error.errors);
    await assert.rejects(ff.contacts.list({ visit_count: { gte: -1 } }),
      (error: FootfallError) => error.code === 1003 && "visit_count[gte]" in error.errors);
  });

  test("export: the audience's lines as they stream, CSV or NDJSON", async () => {
    const [regular, once] = await audience(1996);
    const in1996 = { first_visit_at: { gte: "1996-01-01", lt: "1997-01-01" } };
    const csv = await collect(ff.contacts.export({ ...in1996, format: "csv" }));
    assert.deepEqual(csv, [
      "uuid,email,visit_count,first_visit_at,last_visit_at",
      `${regular.uuid},${regular.email},3,1996-01-01T12:00:00+00:00,1996-03-01T12:00:00+00:00`,
      `${once.uuid},${once.email},1,1996-06-01T12:00:00+00:00,1996-06-01T12:00:00+00:00`,
    ]);
    const ndjson = await collect(ff.contacts.export({ ...in1996, visit_count: { gte: 3 } }));
    assert.deepEqual(ndjson.map((line) => JSON.parse(line) as ExportedContact), [regular]);
    const everyone = (await ff.contacts.list({ limit: 0 })).total;
    assert.equal((await collect(ff.contacts.export())).length, everyone);
    // Leaving early cancels the rest of the stream.
    for await (const line of ff.contacts.export({ format: "csv" })) {
      assert.match(line, /^uuid,/);
      break;
    }
    await assert.rejects(collect(ff.contacts.export({ format: "xml" as never })),
      (error: FootfallError) => error.code === 1003 && "format" in error.errors);
  });

  test("export: retried until its answer begins", async () => {
    const proxy = await FlakyProxy.start(live.baseUrl);
    try {
      const flaky = new Footfall({ baseUrl: proxy.url, token: live.token, retryDelayMs: 1 });
      proxy.plan = [{ answer: 503, headers: { "Retry-After": "0" } }, { drop: "before-forwarding" }];
      const lines = await collect(flaky.contacts.export({ format: "csv" }));
      assert.ok(lines[0]!.startsWith("uuid,") && lines.length > 1);
      assert.deepEqual(proxy.seen.map((seen) => seen.url.split("?")[0]),
        Array(3).fill("/api/v3/oauth/clients/contacts/export"));
    } finally {
      await proxy.close();
    }
  });
});
