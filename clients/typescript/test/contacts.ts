import assert from "node:assert/strict";
import { before, describe, test } from "node:test";

import { Footfall } from "@footfall/client";

import { footfall, unique, type Live } from "./harness.js";

describe("shops and contacts", () => {
  let live: Live;
  let ff: Footfall;
  before(async () => {
    live = await footfall();
    ff = new Footfall({ baseUrl: `${live.baseUrl}/`, token: live.token });
  });

  test("shops: the list by name (not paged), one by uuid, 404 (1008) for another", async () => {
    const shops = await ff.shops.list();
    assert.deepEqual(new Set(shops.map((shop) => shop.uuid)), new Set(live.shops));
    assert.deepEqual(shops.map((shop) => shop.name), shops.map((shop) => shop.name).sort());
    assert.deepEqual(await ff.shops.get(shops[0]!.uuid), shops[0]);
    assert.deepEqual(Object.keys(shops[0]!).sort(), ["name", "reference", "type", "uuid"]);
    await assert.rejects(ff.shops.get("00000000-0000-4000-8000-000000000000"), { status: 404, code: 1008 });
  });

  test("create (new, then the existing one), get, list, find by email, find or create", async () => {
    const email = `${unique("plankton")}@chumbucket.sea`;
    const contact = await ff.contacts.create(email.toUpperCase());
    assert.deepEqual(contact, { uuid: contact.uuid, email, visit_count: 0, first_visit_at: null, last_visit_at: null });
    assert.deepEqual(await ff.contacts.create(email), contact);
    assert.deepEqual(await ff.contacts.get(contact.uuid), contact);
    assert.deepEqual(await ff.contacts.findByEmail(email), contact);
    assert.deepEqual(await ff.contacts.findOrCreate(email), contact);
    const listed = await ff.contacts.list({ limit: 100 });
    assert.equal(listed.items[0]!.uuid, contact.uuid); // newest first
    assert.ok(listed.total >= 48 && listed.per_page === 100);
    const made = await ff.contacts.findOrCreate(`${unique("new")}@chumbucket.sea`);
    assert.equal((await ff.contacts.get(made.uuid)).email, made.email);
    await assert.rejects(ff.contacts.findByEmail("nobody@chumbucket.sea"), { status: 404, code: 55031 });

    const regular = await ff.contacts.get(live.contacts[0]!);
    const starts: string[] = [];
    for await (const visit of ff.visits.iterate({ contact_uuid: regular.uuid })) starts.push(visit.starts_at);
    assert.equal(regular.visit_count, starts.length);
    starts.sort();
    assert.deepEqual([regular.first_visit_at, regular.last_visit_at], [starts[0], starts.at(-1)]);
  });

  test("anonymous contacts, claimed with an email; a claim of a taken email is 1003", async () => {
    const anonymous = await ff.contacts.createAnonymous();
    assert.equal(anonymous.email, null);
    const visit = await ff.visits.create({ contact_uuid: anonymous.uuid, shop_uuid: live.shops[0]! });
    const email = `${unique("pearl")}@krabs.sea`;
    const claimed = await ff.contacts.claim(anonymous.uuid, email);
    assert.deepEqual([claimed.uuid, claimed.email, claimed.visit_count], [anonymous.uuid, email, 1]);
    assert.equal((await ff.visits.get(visit.uuid)).contact.email, email);
    const other = await ff.contacts.createAnonymous();
    await assert.rejects(ff.contacts.claim(other.uuid, email), (error: { code: number; errors: object }) =>
      error.code === 1003 && "email" in error.errors);
  });

  test("delete, plain and GDPR: the contact and its visits go", async () => {
    for (const gdpr of [false, true]) {
      const contact = await ff.contacts.create(`${unique("gone")}@chumbucket.sea`);
      const visit = await ff.visits.create({ contact_uuid: contact.uuid, shop_uuid: live.shops[0]! });
      assert.equal(await ff.contacts.delete(contact.uuid, { gdpr }), undefined);
      await assert.rejects(ff.contacts.get(contact.uuid), { status: 404, code: 55031 });
      await assert.rejects(ff.visits.get(visit.uuid), { status: 404, code: 91001 });
      await assert.rejects(ff.contacts.findByEmail(contact.email!), { status: 404 });
    }
  });
});
