/** An error answer from the server, with the fields of Leat's error body. */
export class FootfallError extends Error {
  override readonly name = "FootfallError";
  /** The HTTP status, e.g. 404. */
  readonly status: number;
  /** Leat's error code (1003 invalid input, 91001 visit not found, ...); null when the body was not Leat's shape. */
  readonly code: number | null;
  /** The body's `message` as the server wrote it (e.g. "Invalid input."). */
  readonly serverMessage: string;
  /** Per field, what is wrong with it: present on input errors (code 1003) only, else empty. */
  readonly errors: Readonly<Record<string, readonly string[]>>;
  /** The answer's X-Request-Id: quote it when asking an operator about a failure. */
  readonly requestId: string | null;
  /** Seconds the server asked to wait before trying again (429), when it said. */
  readonly retryAfter: number | null;
  /** The raw answer body (a proxy's HTML page, say, when it was not Leat's shape). */
  readonly body: string;

  constructor(init: {
    status: number;
    code: number | null;
    serverMessage: string;
    errors?: Record<string, readonly string[]>;
    requestId?: string | null;
    retryAfter?: number | null;
    body?: string;
  }) {
    const errors = init.errors ?? {};
    const fields = Object.entries(errors).map(([field, messages]) => `${field}: ${messages.join(" ")}`);
    super([String(init.status), init.code ?? "", init.serverMessage, ...fields].filter((part) => part !== "").join(" "));
    this.status = init.status;
    this.code = init.code;
    this.serverMessage = init.serverMessage;
    this.errors = errors;
    this.requestId = init.requestId ?? null;
    this.retryAfter = init.retryAfter ?? null;
    this.body = init.body ?? "";
  }
}

/** No answer came (connection refused or cut, or the timeout passed), on every attempt allowed. */
export class FootfallConnectionError extends Error {
  override readonly name = "FootfallConnectionError";
  /** How many times the request was sent. */
  readonly attempts: number;

  constructor(message: string, attempts: number, cause: unknown) {
    super(message, { cause });
    this.attempts = attempts;
  }
}

/** A webhook delivery whose signature, or timestamp, does not check out. */
export class WebhookVerificationError extends Error {
  override readonly name = "WebhookVerificationError";
}

/** The error an answer with this status and body stands for. */
export function errorFromAnswer(status: number, body: string, headers: Headers, retryAfter: number | null): FootfallError {
  const requestId = headers.get("x-request-id");
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  if (isLeatError(parsed)) {
    return new FootfallError({
      status, code: parsed.code, serverMessage: parsed.message, errors: fieldErrors(parsed.errors), requestId,
      retryAfter, body,
    });
  }
  return new FootfallError({ status, code: null, serverMessage: body.slice(0, 200) || `HTTP ${status}`, requestId,
    retryAfter, body });
}

function isLeatError(value: unknown): value is { code: number; message: string; errors?: unknown } {
  if (typeof value !== "object" || value === null) return false;
  const body = value as Record<string, unknown>;
  return typeof body["status_code"] === "number" && typeof body["code"] === "number" && typeof body["message"] === "string";
}

function fieldErrors(value: unknown): Record<string, string[]> {
  if (typeof value !== "object" || value === null) return {};
  return Object.fromEntries(Object.entries(value).map(([field, messages]) =>
    [field, Array.isArray(messages) ? messages.map(String) : [String(messages)]]));
}
