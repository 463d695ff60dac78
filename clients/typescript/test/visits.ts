import assert from "node:assert/strict";
import { before, describe, test } from "node:test";

import { Footfall, FootfallError, isTombstone, type Change, type Visit } from "@footfall/client";

import { footfall, unique, type Live } from "./harness.js";

describe("visits", () => {
  let live: Live;
  let ff: Footfall;
  before(async () => {
    live = await footfall();
    ff = new Footfall({ baseUrl: live.baseUrl, token: live.token });
  });

  test("create and get resolve to the visit itself; update changes only what it is given, null clears", async () => {
    const externalId = unique("till");
    const visit = await ff.visits.create({
      contact_uuid: live.contacts[0]!, shop_uuid: live.shops[0]!, external_id: externalId, source: "Kiosk",
      starts_at: "2024-05-01T22:00:00+02:00", ends_at: new Date("2024-05-01T20:30:00Z"),
    });
    assert.equal(visit.external_id, externalId);
    assert.equal(visit.starts_at, "2024-05-01T20:00:00+00:00");
    assert.equal(visit.ends_at, "2024-05-01T20:30:00+00:00");
    assert.equal(visit.contact.uuid, live.contacts[0]);
    assert.match(visit.contact.email ?? "", /@/);
    assert.deepEqual(await ff.visits.get(visit.uuid), visit);

    const updated = await ff.visits.update(visit.uuid, { source: "Till 2", ends_at: null });
    assert.deepEqual(updated, { ...visit, source: "Till 2", ends_at: null });
    // A create repeating an external_id with the same fields answers the stored visit (a till's retry).
    assert.equal((await ff.visits.create({ contact_uuid: live.contacts[0]!, shop_uuid: live.shops[0]!,
      external_id: externalId })).uuid, visit.uuid);
  });

  test("delete: the visit is gone, and a second delete is 404", async () => {
    const visit = await ff.visits.create({ contact_uuid: live.contacts[1]!, shop_uuid: live.shops[1]! });
    assert.equal(await ff.visits.delete(visit.uuid), undefined);
    await assert.rejects(ff.visits.get(visit.uuid), { name: "FootfallError", status: 404, code: 91001 });
    await assert.rejects(ff.visits.delete(visit.uuid), { status: 404, code: 91001 });
  });

  test("list: a page with Leat's meta, Footfall's filters and sort", async () => {
    const everything = await ff.visits.list({ limit: 0 });
    assert.deepEqual(everything.items, []);
    assert.equal(everything.last_page, 1);
    assert.ok(everything.total >= 250); // the demo's: 7 regulars' 30 to 40 each, the lapsed one's fewer, 40 more
    const first = await ff.visits.list({ limit: 7 });
    assert.equal(first.items.length, 7);
    assert.deepEqual([first.current_page, first.per_page, first.total], [1, 7, everything.total]);
    assert.equal(first.last_page, Math.ceil(everything.total / 7));

    const source = unique("list");
    const made: Visit[] = [];
    for (const starts of ["2024-03-01T10:00:00Z", "2024-03-02T10:00:00Z", "2024-03-03T10:00:00Z"]) {
      made.push(await ff.visits.create({ contact_uuid: live.contacts[2]!, shop_uuid: live.shops[2]!, source,
        starts_at: starts }));
    }
    const ranged = await ff.visits.list({ source, shop_uuid: live.shops[2]!, sort: "starts_at",
      starts_at: { gte: "2024-03-02", lt: new Date("2024-03-04T00:00:00Z") } });
    assert.deepEqual(ranged.items.map((visit) => visit.uuid), [made[1]!.uuid, made[2]!.uuid]);
    assert.equal(ranged.total, 2);
    const newest = await ff.visits.list({ source, sort: "-starts_at", limit: 1, page: 2 });
    assert.deepEqual([newest.items[0]?.uuid, newest.current_page, newest.last_page], [made[1]!.uuid, 2, 3]);
    assert.equal((await ff.visits.list({ source, shop_uuid: live.shops[0]! })).total, 0);
  });

  test("iterate: every visit of every page, once", async () => {
    const source = unique("iterate");
    const made = new Set<string>();
    for (let index = 0; index < 5; index++) {
      made.add((await ff.visits.create({ contact_uuid: live.contacts[3]!, shop_uuid: live.shops[0]!, source })).uuid);
    }
    const seen: string[] = [];
    for await (const visit of ff.visits.iterate({ source, limit: 2 })) seen.push(visit.uuid);
    assert.equal(seen.length, 5);
    assert.deepEqual(new Set(seen), made);
    const total = (await ff.visits.list({ limit: 0 })).total;
    let count = 0;
    for await (const _visit of ff.visits.iterate()) count++;
    assert.equal(count, total);
  });

  test("batch: each item created, answered as a retry, or refused, in the request's order", async () => {
    const externalId = unique("batch");
    const email = `${unique("batch")}@bikinibottom.sea`;
    const result = await ff.visits.batch([
      { contact_uuid: live.contacts[0]!, shop_uuid: live.shops[0]!, external_id: externalId, source: "Batch" },
      { contact_uuid: live.contacts[0]!, shop_uuid: live.shops[0]!, external_id: externalId, source: "Batch" },
      { contact_uuid: live.contacts[0]!, shop_uuid: "00000000-0000-4000-8000-000000000000" },
      { contact_email: email, shop_uuid: live.shops[1]!, starts_at: new Date("2024-04-01T12:00:00Z") },
    ]);
    assert.deepEqual([result.created, result.retried, result.failed], [2, 1, 1]);
    assert.deepEqual(result.items.map((item) => [item.index, item.status]), [[0, 201], [1, 200], [2, 404], [3, 201]]);
    assert.equal(result.items[1]!.data!.uuid, result.items[0]!.data!.uuid);
    assert.deepEqual(result.items[2]!.error, { status_code: 404, code: 1008, message: "Shop not found." });
    assert.equal(result.items[3]!.data!.contact.email, email);
    assert.equal((await ff.visits.list({ shop_uuid: live.shops[1]!, contact_uuid: result.items[3]!.data!.contact.uuid })).total, 1);
    assert.equal((await ff.contacts.findByEmail(email)).visit_count, 1);
    await assert.rejects(ff.visits.batch([]), (error: FootfallError) => error.code === 1003 && "visits" in error.errors);
  });

  test("changes: the feed from a cursor, and iterateChanges keeps the cursor to go on from", async () => {
    const start = ff.visits.iterateChanges({ limit: 1000 });
    let before = 0;
    for await (const _change of start) before++;
    assert.ok(before >= 250 && start.cursor !== undefined);
    const cursor = start.cursor;
    const quiet = await ff.visits.changes({ cursor });
    assert.deepEqual([quiet.items, quiet.next_cursor, quiet.has_more], [[], cursor, false]);

    const kept = await ff.visits.create({ contact_uuid: live.contacts[4]!, shop_uuid: live.shops[0]!, source: "feed" });
    const gone = await ff.visits.create({ contact_uuid: live.contacts[4]!, shop_uuid: live.shops[0]!,
      external_id: unique("feed") });
    await ff.visits.update(kept.uuid, { source: "feed, updated" });
    await ff.visits.delete(gone.uuid);

    const page = await ff.visits.changes({ cursor, limit: 1 });
    assert.equal(page.has_more, true);
    assert.notEqual(page.next_cursor, cursor);
    const feed = ff.visits.iterateChanges({ cursor, limit: 1 });
    const changes: Change[] = [];
    for await (const change of feed) changes.push(change);
    assert.equal(changes.length, 2);
    const [visit, tombstone] = changes;
    assert.ok(visit !== undefined && !isTombstone(visit));
    assert.deepEqual([visit.uuid, visit.source], [kept.uuid, "feed, updated"]);
    assert.match(visit.updated_at, /^\d{4}-\d\d-\d\dT/);
    assert.ok(tombstone !== undefined && isTombstone(tombstone));
    assert.deepEqual([tombstone.uuid, tombstone.external_id], [gone.uuid, gone.external_id]);
    assert.deepEqual((await ff.visits.changes({ cursor: feed.cursor! })).items, []);
    await assert.rejects(ff.visits.changes({ cursor: "bm90LWEtY3Vyc29y" }),
      (error: FootfallError) => error.code === 1003 && "cursor" in error.errors);
  });

  test("export: the filtered visits as CSV or NDJSON text", async () => {
    const source = unique("export");
    const visit = await ff.visits.create({ contact_uuid: live.contacts[0]!, shop_uuid: live.shops[0]!, source });
    const csv = await ff.visits.export({ format: "csv", source });
    const [header, row, ...rest] = csv.split("\n");
    assert.equal(header, "uuid,contact_uuid,contact_email,shop_uuid,external_id,source,starts_at,ends_at,created_at,updated_at");
    assert.ok(row!.startsWith(`${visit.uuid},${live.contacts[0]},`));
    assert.deepEqual(rest, [""]);
    const ndjson = await ff.visits.export({ source, created_at: { gte: "2000-01-01" } });
    const lines = ndjson.trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(lines.map((line) => [line["uuid"], line["shop_uuid"], line["source"]]),
      [[visit.uuid, live.shops[0], source]]);
  });

  test("stats: buckets and meta, by interval, time zone, period and group", async () => {
    const source = unique("stats");
    for (const [starts, ends] of [["2024-05-01T09:00:00Z", "2024-05-01T10:00:00Z"], ["2024-05-03T09:00:00Z", null]]) {
      await ff.visits.create({ contact_uuid: live.contacts[5]!, shop_uuid: live.shops[1]!, source,
        starts_at: starts!, ends_at: ends });
    }
    const stats = await ff.visits.stats({ source, interval: "day", timezone: "Europe/Amsterdam",
      starts_at: { gte: "2024-05-01T00:00:00+02:00", lt: "2024-05-04T00:00:00+02:00" } });
    assert.deepEqual([stats.interval, stats.timezone, stats.group_by], ["day", "Europe/Amsterdam", null]);
    assert.equal(stats.buckets.length, 3);
    assert.deepEqual(stats.buckets.map((bucket) => bucket.visits), [1, 0, 1]);
    assert.equal(stats.buckets[0]!.bucket_start, "2024-05-01T00:00:00+02:00");
    assert.equal(stats.buckets[0]!.median_duration_seconds, 3600);
    assert.equal(stats.buckets[2]!.median_duration_seconds, null);
    const grouped = await ff.visits.stats({ source, interval: "month", group_by: "shop" });
    assert.deepEqual(grouped.buckets.map((bucket) => [bucket.shop_uuid, bucket.visits, bucket.unique_contacts]),
      [[live.shops[1], 2, 1]]);
    await assert.rejects(ff.visits.stats({ timezone: "Mars/Olympus_Mons" }),
      (error: FootfallError) => error.status === 422 && "timezone" in error.errors);
  });
});
