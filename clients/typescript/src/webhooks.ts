import { createHmac, timingSafeEqual } from "node:crypto";

import { WebhookVerificationError } from "./errors.js";
import type { WebhookEvent } from "./types.js";

/** Standard Webhooks refuses a webhook-timestamp more than 5 minutes from now. */
export const TOLERANCE_SECONDS = 300;

/** A fetch Headers, or Node's IncomingHttpHeaders (names lower-cased), or any record of them. */
export type WebhookHeaders = Headers | Readonly<Record<string, string | readonly string[] | undefined>>;

export interface VerifyOptions {
  /** Seconds webhook-timestamp may be off from now (default 300). */
  toleranceSeconds?: number;
  /**
   * Which signature to check. "any" (the default): Standard Webhooks' when its headers are there, else
   * Leat's `signature`. "standard": only Standard Webhooks' (Footfall always sends it; its timestamp
   * refuses a captured delivery sent again later, which Leat's signature alone cannot). "leat": only Leat's.
   */
  scheme?: "any" | "standard" | "leat";
  /** The time to check webhook-timestamp against, in Unix seconds (default now). */
  now?: number;
}

/**
 * The delivery's event, once a signature checks out; throws WebhookVerificationError otherwise.
 * `body` must be the raw bytes (or text) received, before any JSON parsing.
 */
export function verifyWebhook(body: string | Uint8Array, headers: WebhookHeaders, secret: string,
                              options: VerifyOptions = {}): WebhookEvent {
  const raw = typeof body === "string" ? Buffer.from(body, "utf8") : Buffer.from(body.buffer, body.byteOffset,
    body.byteLength);
  const scheme = options.scheme ?? "any";
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  const standard = id !== undefined && timestamp !== undefined && signatures !== undefined;
  if (scheme === "standard" || (scheme === "any" && standard)) {
    if (!standard) throw new WebhookVerificationError("no Standard Webhooks headers (webhook-id, -timestamp, -signature)");
    verifyStandard(raw, id, timestamp, signatures, secret, options);
  } else {
    const signature = header(headers, "signature");
    if (signature === undefined) throw new WebhookVerificationError("no signature headers");
    const expected = createHmac("sha256", secret).update(raw).digest("hex");
    if (!equal(Buffer.from(signature.trim().toLowerCase()), Buffer.from(expected))) {
      throw new WebhookVerificationError("the signature header does not match");
    }
  }
  try {
    return JSON.parse(raw.toString("utf8")) as WebhookEvent;
  } catch {
    throw new WebhookVerificationError("the body is not JSON");
  }
}

function verifyStandard(raw: Buffer, id: string, timestamp: string, signatures: string, secret: string,
                        options: VerifyOptions): void {
  if (!/^\d+$/.test(timestamp)) throw new WebhookVerificationError("webhook-timestamp is not a number");
  const now = options.now ?? Date.now() / 1000;
  if (Math.abs(now - Number(timestamp)) > (options.toleranceSeconds ?? TOLERANCE_SECONDS)) {
    throw new WebhookVerificationError("webhook-timestamp is too old or too new");
  }
  const expected = createHmac("sha256", standardKey(secret))
    .update(`${id}.${timestamp}.`).update(raw).digest();
  // The header may carry several space-separated "v1,<base64>" signatures (a secret being rotated).
  const matches = signatures.split(" ").some((candidate) => {
    const [version, signature] = candidate.split(",", 2);
    return version === "v1" && signature !== undefined && equal(Buffer.from(signature, "base64"), expected);
  });
  if (!matches) throw new WebhookVerificationError("no webhook-signature matches");
}

/** The HMAC key: the bytes base64-encoded after "whsec_", or a secret of another form as its UTF-8 bytes. */
function standardKey(secret: string): Buffer {
  if (!secret.startsWith("whsec_")) return Buffer.from(secret, "utf8");
  const encoded = secret.slice("whsec_".length);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded) || encoded.length % 4 !== 0) {
    throw new WebhookVerificationError("the secret is not valid whsec_ base64");
  }
  return Buffer.from(encoded, "base64");
}

/** Constant-time comparison; a length mismatch is refused up front (it tells nothing about the secret). */
function equal(given: Buffer, expected: Buffer): boolean {
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? undefined;
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name && value !== undefined) return typeof value === "string" ? value : value.join(" ");
  }
  return undefined;
}
