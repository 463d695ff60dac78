// What the API answers is typed as it comes: JSON keys as the API writes them, times as ISO 8601 strings
// (always UTC with seconds, e.g. "2024-05-01T20:00:00+00:00"). Times you send may be strings in any form
// the API reads ("2024-05-01 19:00", "2024-05-01T21:00:00+02:00", "2024-05-01") or Dates.

/** A time to send: an ISO 8601 string, or a Date. */
export type Time = string | Date;

export interface VisitContact {
  uuid: string;
  email: string | null;
}

export interface Visit {
  uuid: string;
  contact: VisitContact;
  external_id: string | null;
  source: string | null;
  starts_at: string;
  ends_at: string | null;
  created_at: string;
}

/** A visit as the changes feed shows it: with the time of its latest change. */
export interface ChangedVisit extends Visit {
  updated_at: string;
}

/** What the changes feed (and `visit_deleted`) shows of a deleted visit. */
export interface Tombstone {
  uuid: string;
  external_id: string | null;
  deleted_at: string;
}

export type Change = ChangedVisit | Tombstone;

/** Whether a change of the feed is a deleted visit's tombstone (else it is the visit as it is now). */
export function isTombstone(change: Change): change is Tombstone {
  return "deleted_at" in change;
}

/** Leat's (Laravel's) page meta: last_page is max(1, ceil(total / per_page)). */
export interface PageMeta {
  current_page: number;
  last_page: number;
  per_page: number;
  total: number;
}

/** One page of a list: its items, and the meta beside them. */
export interface Page<T> extends PageMeta {
  items: T[];
}

export interface ChangesPage {
  items: Change[];
  /** Where the next call goes on from; unchanged while nothing changes. */
  next_cursor: string;
  /** Whether more changes wait already: call again at once. */
  has_more: boolean;
}

export interface VisitCreate {
  contact_uuid: string;
  shop_uuid: string;
  /** Unique within the account: a repeat with the same fields answers the stored visit, else 409 (91002). */
  external_id?: string | null;
  source?: string | null;
  /** Defaults to the moment of creation. */
  starts_at?: Time;
  ends_at?: Time | null;
}

/** Only the fields given change; null clears a field (a visit's start cannot be cleared). */
export interface VisitUpdate {
  external_id?: string | null;
  source?: string | null;
  starts_at?: Time;
  ends_at?: Time | null;
}

/** One visit of a batch: its contact by contact_uuid, or by contact_email (the account's contact with
 * that email, made when there is none); the rest as for a create. */
export type BatchVisit = Omit<VisitCreate, "contact_uuid">
  & ({ contact_uuid: string; contact_email?: never } | { contact_email: string; contact_uuid?: never });

/** Leat's error body, as a batch item's error and every error answer carry it. */
export interface ErrorBody {
  status_code: number;
  code: number;
  message: string;
  errors?: Record<string, string[]> | null;
}

/** A batch item's outcome: 201 created, 200 a safe retry, or the error's status with `error`. */
export interface BatchOutcome {
  index: number;
  status: number;
  data: Visit | null;
  error: ErrorBody | null;
}

export interface BatchResult {
  /** In the request's order. */
  items: BatchOutcome[];
  created: number;
  retried: number;
  failed: number;
}

/** A range in Leat's bracket syntax: `{ gte: "2024-05-01", lt: "2024-06-01" }` is sent as created_at[gte]=...&created_at[lt]=... */
export interface Range {
  gte?: Time;
  gt?: Time;
  lte?: Time;
  lt?: Time;
}

export type VisitSort = "created_at" | "-created_at" | "starts_at" | "-starts_at" | "updated_at" | "-updated_at";

/** Filters of the visits' list, export and stats: exact matches and ranges, all combined. */
export interface VisitFilters {
  contact_uuid?: string;
  shop_uuid?: string;
  source?: string;
  external_id?: string;
  created_at?: Range;
  starts_at?: Range;
  updated_at?: Range;
}

export interface VisitListParams extends VisitFilters {
  /** 0..500, default 30 (0: no items, the true total). */
  limit?: number;
  /** From 1. */
  page?: number;
  /** Default -created_at; the visit's id breaks ties, so pages never overlap. */
  sort?: VisitSort;
}

export interface VisitIterateParams extends VisitFilters {
  /** Visits fetched a page, 1..500, default 100. */
  limit?: number;
  sort?: VisitSort;
}

export interface ChangesParams {
  /** The next_cursor of an earlier call; none starts from the beginning. */
  cursor?: string;
  /** 0..1000, default 100. */
  limit?: number;
}

/** The export streams the visits in the order they were stored. */
export interface ExportParams extends VisitFilters {
  /** ndjson (the default) or csv. */
  format?: "ndjson" | "csv";
}

export type StatsInterval = "hour" | "day" | "week" | "month";

export interface StatsParams extends VisitFilters {
  /** Default day; weeks start on Monday. */
  interval?: StatsInterval;
  /** A bucket per shop or per source as well. */
  group_by?: "shop" | "source";
  /** An IANA name (default UTC): where days, weeks and months begin. */
  timezone?: string;
}

export interface StatsBucket {
  bucket_start: string;
  bucket_end: string;
  visits: number;
  unique_contacts: number;
  new_contacts: number;
  returning_contacts: number;
  /** Over the bucket's visits that have an ends_at; null when none has. */
  median_duration_seconds: number | null;
  /** With group_by "shop". */
  shop_uuid?: string | null;
  /** With group_by "source" (null for visits without one). */
  source?: string | null;
}

export interface StatsMeta {
  interval: StatsInterval;
  timezone: string;
  group_by: "shop" | "source" | null;
  period_start: string | null;
  period_end: string | null;
}

export interface Stats extends StatsMeta {
  buckets: StatsBucket[];
}

export interface Shop {
  uuid: string;
  name: string;
  /** "physical" or "web". */
  type: string;
  reference: string | null;
}

export interface Contact {
  uuid: string;
  /** Null for an anonymous contact until it is claimed. */
  email: string | null;
  visit_count: number;
  /** The starts_at of its earliest visit (null without visits). */
  first_visit_at: string | null;
  last_visit_at: string | null;
}

/** A contact's visits: all of them, or with `shop_uuid` that shop's. A contact without visits has
 * visit_count 0 and null dates (so visit_count `{ lte: 0 }` finds it, and no date bound passes it). */
export interface AudienceFilters {
  /** Count and date only the visits at this shop (an unknown shop matches no contact). */
  shop_uuid?: string;
  visit_count?: { gte?: number; lte?: number };
  first_visit_at?: { gte?: Time; lt?: Time };
  last_visit_at?: { gte?: Time; lt?: Time };
}

/** `-` for descending; contacts without visits come last by either date. */
export type ContactSort = "-created_at" | "visit_count" | "-visit_count" | "last_visit_at" | "-last_visit_at"
  | "first_visit_at" | "-first_visit_at";

export interface ContactListParams extends AudienceFilters {
  /** 0..100, default 30. */
  limit?: number;
  page?: number;
  /** Default -created_at (newest contact first); the contact's id breaks ties, so pages never overlap. */
  sort?: ContactSort;
}

export interface ContactIterateParams extends AudienceFilters {
  /** Contacts fetched a page, 1..100, default 100. */
  limit?: number;
  sort?: ContactSort;
}

/** The export streams the audience's contacts in the order they were stored. */
export interface ContactExportParams extends AudienceFilters {
  /** ndjson (the default) or csv. */
  format?: "ndjson" | "csv";
}

/** A line of the NDJSON contacts export, parsed (the CSV's columns are the same, in this order). */
export type ExportedContact = Pick<Contact, "uuid" | "email" | "visit_count" | "first_visit_at" | "last_visit_at">;

export type RuleKind = "milestone" | "frequency" | "lapse";

export type RuleStatus = "ACTIVE" | "INACTIVE";

/** A visit rule: the numbers of its kind are set, the others null. */
export interface VisitRule {
  uuid: string;
  name: string;
  kind: RuleKind;
  /** milestone: fires at every multiple of it. */
  every: number | null;
  /** milestone: the counts it fires at, each once, ascending. */
  at: number[] | null;
  /** frequency: visits needed within within_days. */
  count: number | null;
  within_days: number | null;
  /** lapse: days since the latest qualifying visit. */
  after_days: number | null;
  /** lapse: qualifying visits before a contact can lapse. */
  min_visits: number | null;
  /** Only this shop's visits count. */
  shop_uuid: string | null;
  /** Only visits with this source count. */
  source: string | null;
  /** An INACTIVE rule fires nothing, and does not catch up once ACTIVE again. */
  status: RuleStatus;
  created_at: string;
}

interface RuleScope {
  name: string;
  shop_uuid?: string | null;
  source?: string | null;
  /** Default ACTIVE. */
  status?: RuleStatus;
}

/** A milestone (`every` or `at`), a frequency (`count` within `within_days`) or a lapse (`after_days`,
 * `min_visits` default 1). A rule counts from when it is made: counts reached before never fire. */
export type VisitRuleCreate = RuleScope & (
  | { kind: "milestone"; every: number; at?: never }
  | { kind: "milestone"; at: number[]; every?: never }
  | { kind: "frequency"; count: number; within_days: number }
  | { kind: "lapse"; after_days: number; min_visits?: number });

/** Only the name and status change; a rule's kind, numbers, shop and source do not. */
export interface VisitRuleUpdate {
  name?: string;
  status?: RuleStatus;
}

export interface VisitRuleListParams {
  /** 0..100, default 30. */
  limit?: number;
  page?: number;
}

/** A contact's standing with one rule. */
export interface RuleProgress {
  rule: VisitRule;
  /** The contact's qualifying visits. */
  count: number;
  /** milestone: the counts it fired at; frequency: the times it fired (1, 2, ...); lapse: empty. */
  reached: number[];
  /** milestone: the next count it fires at; null for the other kinds. */
  next_at: number | null;
  /** lapse: whether the contact has lapsed and not returned; null for the other kinds. */
  lapsed: boolean | null;
  /** The start of the contact's latest qualifying visit. */
  last_visit_at: string | null;
}

/** The rule a rule's event is of. */
export interface RuleRef {
  uuid: string;
  name: string;
  kind: RuleKind;
}

/** visit_milestone: a visit reached a milestone's count, or a frequency's count within its days. */
export interface VisitMilestone {
  rule: RuleRef;
  contact: VisitContact;
  visit: Visit;
  /** The contact's qualifying visits, this one included. */
  count: number;
}

/** contact_lapsed: a contact's latest qualifying visit is more than the rule's after_days ago. */
export interface ContactLapsed {
  rule: RuleRef;
  contact: VisitContact;
  last_visit_at: string;
  /** Whole days since last_visit_at. */
  days: number;
}

/** contact_returned: a lapsed contact visited again. */
export interface ContactReturned {
  rule: RuleRef;
  contact: VisitContact;
  visit: Visit;
  /** Whole days between the visit before the lapse and this one. */
  days_away: number;
}

export type EventType = "visit_created" | "visit_updated" | "visit_deleted" | "contact_created" | "contact_deleted"
  | "visit_milestone" | "contact_lapsed" | "contact_returned";

export type SubscriptionStatus = "ACTIVE" | "INACTIVE";

export interface WebhookSubscription {
  uuid: string;
  name: string;
  event_type: EventType;
  url: string;
  status: SubscriptionStatus;
  version: string;
  created_at: string;
}

/** The answer to a create: the only one that shows the signing secret. */
export interface CreatedWebhookSubscription extends WebhookSubscription {
  secret: string;
}

export interface WebhookSubscriptionCreate {
  name: string;
  event_type: EventType;
  /** http or https; a private address needs the server's FOOTFALL_WEBHOOK_ALLOW_PRIVATE_URLS=1. */
  url: string;
  /** Generated (whsec_...) when left out. */
  secret?: string;
}

/** event_type and secret cannot be changed. */
export interface WebhookSubscriptionUpdate {
  name?: string;
  url?: string;
  /** ACTIVE again sends its pending deliveries at once. */
  status?: SubscriptionStatus;
}

export interface WebhookSubscriptionListParams {
  event_type?: EventType;
  status?: SubscriptionStatus;
  /** 0..100, default 30. */
  limit?: number;
  page?: number;
}

export interface WebhookDelivery {
  uuid: string;
  /** The same as uuid. */
  id: string;
  /** The event's id, as in its body and the webhook-id header. */
  event_id: string;
  event_type: EventType;
  state: "pending" | "succeeded" | "failed";
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  /** Its first 4 KiB. */
  last_response_body: string | null;
  last_attempt_at: string | null;
  /** Null unless pending. */
  next_attempt_at: string | null;
  delivered_at: string | null;
  created_at: string;
}

export interface DeletedContact {
  uuid: string;
  /** Null after a GDPR delete. */
  email: string | null;
  deleted_at: string;
}

interface EventOf<Type extends EventType, Data> {
  /** The event's uuid: the same on every retry of its delivery (ignore one you have seen). */
  id: string;
  type: Type;
  created_at: string;
  data: Data;
}

/** A webhook delivery's body: narrow on `type` to get its data's type. */
export type WebhookEvent =
  | EventOf<"visit_created" | "visit_updated", Visit>
  | EventOf<"visit_deleted", Tombstone>
  | EventOf<"contact_created", Contact>
  | EventOf<"contact_deleted", DeletedContact>
  | EventOf<"visit_milestone", VisitMilestone>
  | EventOf<"contact_lapsed", ContactLapsed>
  | EventOf<"contact_returned", ContactReturned>;

/** Every call takes these. */
export interface RequestOptions {
  /** Aborts the call, its retries and the waits between them. */
  signal?: AbortSignal;
}

/** Every call that writes takes these too. */
export interface WriteOptions extends RequestOptions {
  /** Sent on every attempt of this call; made for you (a UUID) when left out. */
  idempotencyKey?: string;
}
