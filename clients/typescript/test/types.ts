// Checked by the compiler, never run: what the types refuse. Should a type loosen, its
// `@ts-expect-error` stands unused and the tests' compile fails.
import { Footfall, isTombstone, type Change, type WebhookEvent } from "@footfall/client";

export async function refusedByTheTypes(ff: Footfall, change: Change, event: WebhookEvent): Promise<void> {
  // @ts-expect-error a visit needs its shop
  await ff.visits.create({ contact_uuid: "c" });
  // @ts-expect-error a visit's contact and shop cannot change
  await ff.visits.update("v", { contact_uuid: "c" });
  // @ts-expect-error a visit's start cannot be cleared
  await ff.visits.update("v", { starts_at: null });
  // @ts-expect-error a batch item names its contact one way, not both
  await ff.visits.batch([{ contact_uuid: "c", contact_email: "e@x.sea", shop_uuid: "s" }]);
  // @ts-expect-error nor neither
  await ff.visits.batch([{ shop_uuid: "s" }]);
  // @ts-expect-error no such sort
  await ff.visits.list({ sort: "source" });
  // @ts-expect-error ranges are objects of gte, gt, lte and lt
  await ff.visits.list({ created_at: "2024-05-01" });
  // @ts-expect-error no such interval
  await ff.visits.stats({ interval: "year" });
  // @ts-expect-error no such event type
  await ff.webhookSubscriptions.create({ name: "n", event_type: "visit_moved", url: "https://x" });
  // @ts-expect-error a subscription's event type cannot change
  await ff.webhookSubscriptions.update("w", { event_type: "visit_created" });
  // @ts-expect-error a change may be a tombstone, which has no contact
  void change.contact;
  if (!isTombstone(change)) void change.contact.uuid;
  // @ts-expect-error an event's data is known only once its type is
  void event.data.contact;
  if (event.type === "visit_created") void event.data.contact.uuid;
  // @ts-expect-error a milestone counts by every or at, not both
  await ff.visitRules.create({ name: "n", kind: "milestone", every: 2, at: [3] });
  // @ts-expect-error a frequency rule has no after_days
  await ff.visitRules.create({ name: "n", kind: "frequency", count: 2, within_days: 3, after_days: 4 });
  // @ts-expect-error a lapse rule needs its after_days
  await ff.visitRules.create({ name: "n", kind: "lapse" });
  // @ts-expect-error a rule's numbers cannot change
  await ff.visitRules.update("r", { every: 3 });
  // @ts-expect-error a visit count's bounds are gte and lte
  await ff.contacts.list({ visit_count: { gt: 3 } });
  // @ts-expect-error nor a date's lte
  await ff.contacts.list({ last_visit_at: { lte: "2024-05-01" } });
  // @ts-expect-error contacts sort by their visits, not by a visit's fields
  await ff.contacts.list({ sort: "starts_at" });
  if (event.type === "visit_milestone") void event.data.rule.kind;
  if (event.type === "contact_lapsed") void event.data.days;
  // @ts-expect-error a lapse has no visit: the contact did not come
  if (event.type === "contact_lapsed") void event.data.visit;
  // @ts-expect-error a read takes no Idempotency-Key
  await ff.visits.get("v", { idempotencyKey: "k" });
}
