import { idempotencyKey, query, type Transport } from "./http.js";
import type {
  BatchOutcome, BatchResult, BatchVisit, Change, ChangesPage, ChangesParams, Contact, ContactExportParams,
  ContactIterateParams, ContactListParams, CreatedWebhookSubscription, ExportParams, PageMeta, Page, RequestOptions,
  RuleProgress, Shop, Stats, StatsBucket, StatsMeta, StatsParams, Visit, VisitCreate, VisitIterateParams,
  VisitListParams, VisitRule, VisitRuleCreate, VisitRuleListParams, VisitRuleUpdate, VisitUpdate, WebhookDelivery,
  WebhookSubscription, WebhookSubscriptionCreate, WebhookSubscriptionListParams, WebhookSubscriptionUpdate,
  WriteOptions,
} from "./types.js";

interface Envelope<Data, Meta = unknown> {
  data: Data;
  meta: Meta;
}

const id = encodeURIComponent;

function page<T>(body: unknown): Page<T> {
  const { data, meta } = body as Envelope<T[], PageMeta>;
  return { items: data, current_page: meta.current_page, last_page: meta.last_page, per_page: meta.per_page,
    total: meta.total };
}

function data<T>(body: unknown): T {
  return (body as Envelope<T>).data;
}

export class Visits {
  constructor(private readonly transport: Transport) {}

  /** One page, newest created_at first unless `sort` says otherwise. */
  async list(params: VisitListParams = {}, options?: RequestOptions): Promise<Page<Visit>> {
    return page(await this.transport.send({ method: "GET", path: "/visits", query: query(params),
      signal: options?.signal }));
  }

  /** Every visit that passes the filters, page after page. Pages are read as they are now: for a
   * consistent copy of an account while others write, follow the changes feed instead. */
  async *iterate(params: VisitIterateParams = {}, options?: RequestOptions): AsyncGenerator<Visit, void, undefined> {
    for (let number = 1; ; number++) {
      const result = await this.list({ limit: 100, ...params, page: number }, options);
      yield* result.items;
      if (number >= result.last_page || result.items.length === 0) return;
    }
  }

  async get(uuid: string, options?: RequestOptions): Promise<Visit> {
    return data(await this.transport.send({ method: "GET", path: `/visits/${id(uuid)}`, signal: options?.signal }));
  }

  /** Resolves to the new visit (201), or to the stored one when its external_id came with the same fields (200). */
  async create(visit: VisitCreate, options?: WriteOptions): Promise<Visit> {
    return data(await this.transport.send({ method: "POST", path: "/visits", body: visit,
      idempotencyKey: idempotencyKey(options), signal: options?.signal }));
  }

  /** Only the fields given change; a field given as null is cleared. */
  async update(uuid: string, fields: VisitUpdate, options?: WriteOptions): Promise<Visit> {
    return data(await this.transport.send({ method: "PUT", path: `/visits/${id(uuid)}`, body: fields,
      idempotencyKey: idempotencyKey(options), signal: options?.signal }));
  }

  /** Leaves a tombstone in the changes feed; a second delete (under another key) rejects with 404 (91001). */
  async delete(uuid: string, options?: WriteOptions): Promise<void> {
    await this.transport.send({ method: "DELETE", path: `/visits/${id(uuid)}`,
      idempotencyKey: idempotencyKey(options), signal: options?.signal });
  }

  /** 1 to 1,000 visits; each is created, answered as a safe retry, or refused, independently. */
  async batch(visits: BatchVisit[], options?: WriteOptions): Promise<BatchResult> {
    const body = await this.transport.send({ method: "POST", path: "/visits/batch", body: { visits },
      idempotencyKey: idempotencyKey(options), signal: options?.signal });
    const { data: items, meta } = body as Envelope<BatchOutcome[], Omit<BatchResult, "items">>;
    return { items, created: meta.created, retried: meta.retried, failed: meta.failed };
  }

  /** One call of the changes feed: what was created, updated or deleted after the cursor, oldest first. */
  async changes(params: ChangesParams = {}, options?: RequestOptions): Promise<ChangesPage> {
    const body = await this.transport.send({ method: "GET", path: "/visits/changes", query: query(params),
      signal: options?.signal });
    const { data: items, meta } = body as Envelope<Change[], Omit<ChangesPage, "items">>;
    return { items, next_cursor: meta.next_cursor, has_more: meta.has_more };
  }

  /** Every change after the cursor, calling again while has_more; its `cursor` is then where to go on from. */
  iterateChanges(params: ChangesParams = {}, options?: RequestOptions): ChangesFeed {
    return new ChangesFeed(this, params, options);
  }

  /** The visits that pass the filters, as NDJSON (the default) or CSV text. */
  async export(params: ExportParams = {}, options?: RequestOptions): Promise<string> {
    return await this.transport.send({ method: "GET", path: "/visits/export", query: query(params), text: true,
      signal: options?.signal }) as string;
  }

  /** Visits, unique, new and returning contacts and the median duration per time bucket. */
  async stats(params: StatsParams = {}, options?: RequestOptions): Promise<Stats> {
    const body = await this.transport.send({ method: "GET", path: "/visits/stats", query: query(params),
      signal: options?.signal });
    const { data: buckets, meta } = body as Envelope<StatsBucket[], StatsMeta>;
    return { buckets, ...meta };
  }
}

/** Iterates the changes feed from a cursor to its end; `cursor` moves past each page once all of it was read. */
export class ChangesFeed implements AsyncIterable<Change> {
  /** Where to go on from: save it, and start the next feed with it. */
  cursor: string | undefined;

  constructor(private readonly visits: Visits, private readonly params: ChangesParams,
              private readonly options: RequestOptions | undefined) {
    this.cursor = params.cursor;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Change, void, undefined> {
    for (;;) {
      const result = await this.visits.changes({ ...this.params, cursor: this.cursor }, this.options);
      yield* result.items;
      this.cursor = result.next_cursor;
      if (!result.has_more) return;
    }
  }
}

export class Shops {
  constructor(private readonly transport: Transport) {}

  /** Every shop, by name (not paged). Shops are made with `footfall shops create`. */
  async list(options?: RequestOptions): Promise<Shop[]> {
    return data(await this.transport.send({ method: "GET", path: "/shops", signal: options?.signal }));
  }

  async get(uuid: string, options?: RequestOptions): Promise<Shop> {
    return data(await this.transport.send({ method: "GET", path: `/shops/${id(uuid)}`, signal: options?.signal }));
  }
}

export class Contacts {
  constructor(private readonly transport: Transport) {}

  /** Resolves to the new contact (201), or the account's contact with this email (200). */
  async create(email: string, options?: WriteOptions): Promise<Contact> {
    return data(await this.transport.send({ method: "POST", path: "/contacts", body: { email },
      idempotencyKey: idempotencyKey(options), signal: options?.signal }));
  }

  async get(uuid: string, options?: RequestOptions): Promise<Contact> {
    return data(await this.transport.send({ method: "GET", path: `/contacts/${id(uuid)}`,
      signal: options?.signal }));
  }

  /** Newest first; or an audience: the contacts whose visit count and first and last visit (of all
   * their visits, or of one shop's) pass every bound given, in the order `sort` asks for. */
  async list(params: ContactListParams = {}, options?: RequestOptions): Promise<Page<Contact>> {
    return page(await this.transport.send({ method: "GET", path: "/contacts", query: query(params),
      signal: options?.signal }));
  }

  /** Every contact of the audience (every contact, without filters), page after page. */
  async *iterate(params: ContactIterateParams = {}, options?: RequestOptions): AsyncGenerator<Contact, void, undefined> {
    for (let number = 1; ; number++) {
      const result = await this.list({ limit: 100, ...params, page: number }, options);
      yield* result.items;
      if (number >= result.last_page || result.items.length === 0) return;
    }
  }

  /**
   * The audience's contacts as the export streams them, for a mailing tool: its lines, without their
   * line ends, CSV's header first. Columns: uuid, email, visit_count, first_visit_at, last_visit_at
   * (an NDJSON line parses to an ExportedContact). The request is sent when the iteration starts.
   */
  async *export(params: ContactExportParams = {}, options?: RequestOptions): AsyncGenerator<string, void, undefined> {
    yield* this.transport.lines({ method: "GET", path: "/contacts/export", query: query(params), text: true,
      signal: options?.signal });
  }

  /** The contact's standing with each of the account's visit rules. */
  async ruleProgress(uuid: string, options?: RequestOptions): Promise<RuleProgress[]> {
    return data(await this.transport.send({ method: "GET", path: `/contacts/${id(uuid)}/visit-rules`,
      signal: options?.signal }));
  }

  /** The account's contact with this email; rejects with 404 (55031) when there is none. */
  async findByEmail(email: string, options?: RequestOptions): Promise<Contact> {
    return data(await this.transport.send({ method: "GET", path: "/contacts/find-one-by", query: query({ email }),
      signal: options?.signal }));
  }

  /** The account's contact with this email, made when there is none (a read-only token is refused it). */
  async findOrCreate(email: string, options?: RequestOptions): Promise<Contact> {
    return data(await this.transport.send({ method: "GET", path: "/contacts/find-or-create", query: query({ email }),
      signal: options?.signal }));
  }

  /** A contact with no email (a walk-in), to be claimed later. */
  async createAnonymous(options?: WriteOptions): Promise<Contact> {
    return data(await this.transport.send({ method: "POST", path: "/contacts/anonymous", body: {},
      idempotencyKey: idempotencyKey(options), signal: options?.signal }));
  }

  /** Gives an anonymous contact its email; its visits stay its own. */
  async claim(uuid: string, email: string, options?: WriteOptions): Promise<Contact> {
    return data(await this.transport.send({ method: "PUT", path: `/contacts/${id(uuid)}/claim`, body: { email },
      idempotencyKey: idempotencyKey(options), signal: options?.signal }));
  }

  /** Deletes the contact and its visits; `gdpr` also erases its email from everything Footfall keeps. */
  async delete(uuid: string, options?: WriteOptions & { gdpr?: boolean }): Promise<void> {
    await this.transport.send({ method: "DELETE", path: `/contacts/${id(uuid)}`,
      query: query({ type: options?.gdpr ? "GDPR" : "DEFAULT" }), idempotencyKey: idempotencyKey(options),
      signal: options?.signal });
  }
}

/** Milestones, frequencies and lapses: a contact's visits turned into webhook events (visit_milestone,
 * contact_lapsed, contact_returned). */
export class VisitRules {
  constructor(private readonly transport: Transport) {}

  /** Newest first. */
  async list(params: VisitRuleListParams = {}, options?: RequestOptions): Promise<Page<VisitRule>> {
    return page(await this.transport.send({ method: "GET", path: "/visit-rules", query: query(params),
      signal: options?.signal }));
  }

  /** Every rule, page after page. */
  async *iterate(params: { limit?: number } = {}, options?: RequestOptions): AsyncGenerator<VisitRule, void, undefined> {
    for (let number = 1; ; number++) {
      const result = await this.list({ limit: 100, ...params, page: number }, options);
      yield* result.items;
      if (number >= result.last_page || result.items.length === 0) return;
    }
  }

  async create(rule: VisitRuleCreate, options?: WriteOptions): Promise<VisitRule> {
    return data(await this.transport.send({ method: "POST", path: "/visit-rules", body: rule,
      idempotencyKey: idempotencyKey(options), signal: options?.signal }));
  }

  /** Rejects with 404 (91301) when the account has no such rule. */
  async get(uuid: string, options?: RequestOptions): Promise<VisitRule> {
    return data(await this.transport.send({ method: "GET", path: `/visit-rules/${id(uuid)}`,
      signal: options?.signal }));
  }

  async update(uuid: string, fields: VisitRuleUpdate, options?: WriteOptions): Promise<VisitRule> {
    return data(await this.transport.send({ method: "PUT", path: `/visit-rules/${id(uuid)}`, body: fields,
      idempotencyKey: idempotencyKey(options), signal: options?.signal }));
  }

  /** Deletes the rule and what it recorded of each contact. Like a subscription's delete, it takes no
   * Idempotency-Key: a retry after a lost answer that finds it gone counts as done. */
  async delete(uuid: string, options?: RequestOptions): Promise<void> {
    await this.transport.send({ method: "DELETE", path: `/visit-rules/${id(uuid)}`, signal: options?.signal });
  }
}

export class WebhookSubscriptions {
  constructor(private readonly transport: Transport) {}

  async list(params: WebhookSubscriptionListParams = {}, options?: RequestOptions): Promise<Page<WebhookSubscription>> {
    return page(await this.transport.send({ method: "GET", path: "/webhook-subscriptions", query: query(params),
      signal: options?.signal }));
  }

  /** The answer holds the signing secret: keep it, no other answer shows it. */
  async create(subscription: WebhookSubscriptionCreate, options?: WriteOptions): Promise<CreatedWebhookSubscription> {
    return data(await this.transport.send({ method: "POST", path: "/webhook-subscriptions", body: subscription,
      idempotencyKey: idempotencyKey(options), signal: options?.signal }));
  }

  async get(uuid: string, options?: RequestOptions): Promise<WebhookSubscription> {
    return data(await this.transport.send({ method: "GET", path: `/webhook-subscriptions/${id(uuid)}`,
      signal: options?.signal }));
  }

  async update(uuid: string, fields: WebhookSubscriptionUpdate, options?: WriteOptions): Promise<WebhookSubscription> {
    return data(await this.transport.send({ method: "PUT", path: `/webhook-subscriptions/${id(uuid)}`, body: fields,
      idempotencyKey: idempotencyKey(options), signal: options?.signal }));
  }

  /** Deletes it with its delivery log. The server takes no Idempotency-Key here: a retry after a lost
   * answer that finds it gone counts as done. */
  async delete(uuid: string, options?: RequestOptions): Promise<void> {
    await this.transport.send({ method: "DELETE", path: `/webhook-subscriptions/${id(uuid)}`,
      signal: options?.signal });
  }

  /** Its delivery log, newest first. */
  async deliveries(uuid: string, params: { limit?: number; page?: number } = {},
                   options?: RequestOptions): Promise<Page<WebhookDelivery>> {
    return page(await this.transport.send({ method: "GET", path: `/webhook-subscriptions/${id(uuid)}/deliveries`,
      query: query(params), signal: options?.signal }));
  }

  /** Sends the delivery again now. */
  async retryDelivery(uuid: string, deliveryUuid: string, options?: WriteOptions): Promise<WebhookDelivery> {
    return data(await this.transport.send({ method: "POST",
      path: `/webhook-subscriptions/${id(uuid)}/deliveries/${id(deliveryUuid)}/retry`,
      idempotencyKey: idempotencyKey(options), signal: options?.signal }));
  }
}
