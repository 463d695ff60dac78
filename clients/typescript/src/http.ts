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

/** A streamed answer's head, its body still to be read under the attempt's timer. */
interface Streamed {
  body: Response["body"];
  timer: Timer;
}

export class Transport {
  constructor(private readonly options: TransportOptions) {}

  /** The answer's JSON (or text), or a rejection with FootfallError / FootfallConnectionError. */
  async send(operation: Operation): Promise<unknown> {
    const answer = await this.exchange(operation, false);
    if (answer === null) return null;
    return operation.text ? answer.body : parseJson(answer);
  }

  /**
   * The answer's lines as they arrive, without their line ends. Retried as send() is until the answer
   * begins; a failure after that rejects, since a retry would repeat the lines already yielded. The
   * timeout is then each read's: a stream that goes quiet for timeoutMs is cut off.
   */
  async *lines(operation: Operation): AsyncGenerator<string, void, undefined> {
    const answer = await this.exchange(operation, true);
    if (answer?.streamed?.body == null) return;
    const { body, timer } = answer.streamed;
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let rest = "";
    try {
      for (;;) {
        timer.restart();
        const { done, value } = await reader.read();
        if (done) break;
        const parts = (rest + decoder.decode(value, { stream: true })).split("\n");
        rest = parts.pop()!;
        for (const line of parts) yield line.endsWith("\r") ? line.slice(0, -1) : line;
      }
      rest += decoder.decode();
      if (rest !== "") yield rest;
    } finally {
      timer.clear();
      // Left early (a break in for await): the rest of the body is not wanted.
      await reader.cancel().catch(() => undefined);
    }
  }

  /** The first answer under 300 (its body unread when `stream`), or null for a DELETE done after all. */
  private async exchange(operation: Operation, stream: boolean): Promise<(Answer & { streamed?: Streamed }) | null> {
    const search = operation.query?.toString();
    const url = this.options.baseUrl + PREFIX + operation.path + (search ? `?${search}` : "");
    const body = operation.body === undefined ? undefined : JSON.stringify(operation.body);
    let answerLost = false; // an earlier attempt may have done the work without our hearing of it
    for (let attempt = 0; ; attempt++) {
      let answer: Answer | undefined;
      let failure: unknown;
      try {
        answer = await this.attempt(operation, url, body, stream);
      } catch (caught) {
        if (operation.signal?.aborted) throw caught;
        failure = caught;
      }
      if (answer !== undefined && answer.status < 300) return answer;
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

  private async attempt(operation: Operation, url: string, body: string | undefined,
                        stream: boolean): Promise<Answer & { streamed?: Streamed }> {
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.options.token}`,
      Accept: operation.text ? "*/*" : "application/json",
      "User-Agent": `footfall-client-ts/${VERSION}`,
    };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (operation.idempotencyKey !== undefined) headers["Idempotency-Key"] = operation.idempotencyKey;
    // The timeout covers the whole attempt, the body's reading included (a stream's, each read).
    const timer = withTimeout(this.options.timeoutMs, operation.signal);
    let streaming = false;
    try {
      const response = await this.options.fetch(url, { method: operation.method, headers, body, signal: timer.signal });
      if (stream && response.status < 300) {
        streaming = true;
        return { status: response.status, headers: response.headers, body: "", streamed: { body: response.body, timer } };
      }
      return { status: response.status, headers: response.headers, body: await response.text() };
    } finally {
      if (!streaming) timer.clear();
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

/** An attempt's signal: it aborts timeoutMs after the timer last (re)started, or when the caller's does. */
interface Timer {
  signal: AbortSignal;
  /** Starts the timeoutMs again (a stream's next read). */
  restart(): void;
  clear(): void;
}

/** A Timer started now (AbortSignal.any is not in Node 18). */
function withTimeout(timeoutMs: number, given: AbortSignal | undefined): Timer {
  const controller = new AbortController();
  const expire = () => controller.abort(new Error(`timed out after ${timeoutMs} ms`));
  let timer = setTimeout(expire, timeoutMs);
  const onAbort = () => controller.abort(given?.reason);
  given?.addEventListener("abort", onAbort, { once: true });
  if (given?.aborted) onAbort();
  return {
    signal: controller.signal,
    restart() {
      clearTimeout(timer);
      timer = setTimeout(expire, timeoutMs);
    },
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
