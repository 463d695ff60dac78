import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";

import { errorFromAnswer, FootfallConnectionError, FootfallError } from "./errors.js";
import type { Range, WriteOptions } from "./types.js";

export const PREFIX = "/api/v3/oauth/clients";
export const VERSION = "0.1.0";

const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
const KEY_IN_PROGRESS = 91202; // a repeated Idempotency-Key whose first request still runs: retry a moment later

export interface TransportOptions {
  baseUrl: string;
  token: string;
  maxRetries: number;
  timeoutMs: number;
  retryDelayMs: number;
  maxRetryDelayMs: number;
  fetch: typeof fetch;
}

/** One call: sent once, then again while a retry is safe and allowed. */
export interface Operation {
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** Below /api/v3/oauth/clients. */
  path: string;
  query?: URLSearchParams;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent, the same, on every attempt. */
  idempotencyKey?: string;
  /** The answer is text (an export), not JSON. */
  text?: boolean;
  signal?: AbortSignal | undefined;
}

interface Answer {
  status: number;
  headers: Headers;
  body: string;
}

export class Transport {
  constructor(private readonly options: TransportOptions) {}

  /** The answer's JSON (or text), or a rejection with FootfallError / FootfallConnectionError. */
  async send(operation: Operation): Promise<unknown> {
    const search = operation.query?.toString();
    const url = this.options.baseUrl + PREFIX + operation.path + (search ? `?${search}` : "");
    const body = operation.body === undefined ? undefined : JSON.stringify(operation.body);
    let answerLost = false; // an earlier attempt may have done the work without our hearing of it
    for (let attempt = 0; ; attempt++) {
      let answer: Answer | undefined;
      let failure: unknown;
      try {
        answer = await this.attempt(operation, url, body);
      } catch (caught) {
        if (operation.signal?.aborted) throw caught;
        failure = caught;
      }
      if (answer !== undefined && answer.status < 300) {
        return operation.text ? answer.body : parseJson(answer);
      }
      // A DELETE without a key (a webhook subscription's) retried after a lost answer finds it gone: done.
      if (answer?.status === 404 && answerLost && operation.method === "DELETE" && !operation.idempotencyKey) {
        return null;
      }
      const error = answer === undefined ? undefined : errorFromAnswer(answer.status, answer.body, answer.headers,
        retryAfterSeconds(answer.headers));
      const wait = attempt < this.options.maxRetries ? this.retryDelay(operation, attempt, error) : undefined;
      if (wait === undefined) {
        throw error ?? new FootfallConnectionError(
          `${operation.method} ${operation.path}: no answer after ${attempt + 1} attempt(s): ${describe(failure)}`,
          attempt + 1, failure);
      }
      answerLost ||= error === undefined || error.status >= 500;
      await sleep(wait, undefined, operation.signal ? { signal: operation.signal } : {});
    }
  }

  /** Milliseconds to wait before trying again, or undefined when this failure is not retried. */
  private retryDelay(operation: Operation, attempt: number, error: FootfallError | undefined): number | undefined {
    // A POST or PUT is repeated only under its Idempotency-Key, which makes the repeat answer the first
    // answer instead of writing again. GET and DELETE mean the same whenever they are sent.
    const safe = operation.method === "GET" || operation.method === "DELETE" || operation.idempotencyKey !== undefined;
    if (!safe) return undefined;
    if (error !== undefined && !RETRY_STATUSES.has(error.status)
        && !(error.status === 409 && error.code === KEY_IN_PROGRESS)) {
      return undefined;
    }
    const backoff = Math.random() * Math.min(this.options.maxRetryDelayMs, this.options.retryDelayMs * 2 ** attempt);
    if (error?.retryAfter == null) return backoff;
    const asked = error.retryAfter * 1000;
    // Asked to wait longer than we are willing to: the caller gets the 429 (with retryAfter) now.
    return asked > this.options.maxRetryDelayMs ? undefined : Math.max(asked, backoff);
  }

  private async attempt(operation: Operation, url: string, body: string | undefined): Promise<Answer> {
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.options.token}`,
      Accept: operation.text ? "*/*" : "application/json",
      "User-Agent": `footfall-client-ts/${VERSION}`,
    };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (operation.idempotencyKey !== undefined) headers["Idempotency-Key"] = operation.idempotencyKey;
    // The timeout covers the whole attempt, the body's reading included.
    const signal = withTimeout(this.options.timeoutMs, operation.signal);
    try {
      const response = await this.options.fetch(url, { method: operation.method, headers, body, signal: signal.signal });
      return { status: response.status, headers: response.headers, body: await response.text() };
    } finally {
      signal.clear();
    }
  }
}

function parseJson(answer: Answer): unknown {
  try {
    return JSON.parse(answer.body);
  } catch {
    throw new FootfallError({ status: answer.status, code: null, serverMessage: "The answer is not JSON.",
      requestId: answer.headers.get("x-request-id"), body: answer.body });
  }
}

/** Retry-After in seconds: a number of seconds, or an HTTP date. */
function retryAfterSeconds(headers: Headers): number | null {
  const value = headers.get("retry-after");
  if (value === null || value.trim() === "") return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, (date - Date.now()) / 1000);
}

/** A signal that aborts after timeoutMs, or when the caller's does (AbortSignal.any is not in Node 18). */
function withTimeout(timeoutMs: number, given: AbortSignal | undefined): { signal: AbortSignal; clear(): void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  const onAbort = () => controller.abort(given?.reason);
  given?.addEventListener("abort", onAbort, { once: true });
  if (given?.aborted) onAbort();
  return {
    signal: controller.signal,
    clear() {
      clearTimeout(timer);
      given?.removeEventListener("abort", onAbort);
    },
  };
}

function describe(failure: unknown): string {
  if (!(failure instanceof Error)) return String(failure);
  const cause = failure.cause instanceof Error ? ` (${failure.cause.message})` : "";
  return failure.message + cause;
}

/** The Idempotency-Key of a write: the caller's, or a new UUID. */
export function idempotencyKey(options: WriteOptions | undefined): string {
  return options?.idempotencyKey ?? randomUUID();
}

/** Query parameters: unset ones left out, Dates as ISO 8601, a Range as Leat's brackets (created_at[gte]=...). */
export function query(params: object): URLSearchParams {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null) continue;
    if (value instanceof Date) {
      search.append(name, value.toISOString());
    } else if (typeof value === "object") {
      for (const [operator, bound] of Object.entries(value as Range)) {
        if (bound !== undefined && bound !== null) {
          search.append(`${name}[${operator}]`, bound instanceof Date ? bound.toISOString() : String(bound));
        }
      }
    } else {
      search.append(name, String(value));
    }
  }
  return search;
}
