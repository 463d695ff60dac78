import { PREFIX, Transport } from "./http.js";
import { Contacts, Shops, VisitRules, Visits, WebhookSubscriptions } from "./resources.js";

export { FootfallConnectionError, FootfallError, WebhookVerificationError } from "./errors.js";
export { VERSION } from "./http.js";
export { ChangesFeed, Contacts, Shops, VisitRules, Visits, WebhookSubscriptions } from "./resources.js";
export * from "./types.js";
export { TOLERANCE_SECONDS, verifyWebhook, type VerifyOptions, type WebhookHeaders } from "./webhooks.js";

export interface FootfallOptions {
  /** The server, e.g. "http://127.0.0.1:8000" (or Leat's "https://api.piggy.eu"); the API's path is added. */
  baseUrl: string;
  /** An API token: `footfall demo` or `footfall tokens create` prints one. */
  token: string;
  /** Retries after the first attempt (default 3); 0 sends each request once. */
  maxRetries?: number;
  /** Milliseconds one attempt may take, the answer's body included (default 10,000). */
  timeoutMs?: number;
  /** The backoff's first step in milliseconds (default 500), doubled each retry, with full jitter. */
  retryDelayMs?: number;
  /** The longest wait between attempts (default 60,000); a longer Retry-After is handed to you as the 429. */
  maxRetryDelayMs?: number;
  /** A fetch of your own (a proxy's agent, a test double); the global fetch otherwise. */
  fetch?: typeof fetch;
}

/** A client for Footfall's API (and Leat's Visits API: the base URL decides). */
export class Footfall {
  readonly visits: Visits;
  readonly shops: Shops;
  readonly contacts: Contacts;
  readonly visitRules: VisitRules;
  readonly webhookSubscriptions: WebhookSubscriptions;

  constructor(options: FootfallOptions) {
    const baseUrl = options.baseUrl.replace(/\/+$/, "");
    const transport = new Transport({
      baseUrl: baseUrl.endsWith(PREFIX) ? baseUrl.slice(0, -PREFIX.length) : baseUrl,
      token: options.token,
      maxRetries: options.maxRetries ?? 3,
      timeoutMs: options.timeoutMs ?? 10_000,
      retryDelayMs: options.retryDelayMs ?? 500,
      maxRetryDelayMs: options.maxRetryDelayMs ?? 60_000,
      fetch: options.fetch ?? ((input, init) => fetch(input, init)),
    });
    this.visits = new Visits(transport);
    this.shops = new Shops(transport);
    this.contacts = new Contacts(transport);
    this.visitRules = new VisitRules(transport);
    this.webhookSubscriptions = new WebhookSubscriptions(transport);
  }
}
