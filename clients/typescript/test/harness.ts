// What the tests share: a real `footfall serve` on a free loopback port over a fresh SQLite file with the
// demo account, a proxy in front of it that fails chosen requests, and a webhook receiver.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, openSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

/** clients/typescript, from build/test/harness.js. */
export const PACKAGE_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const FOOTFALL_BIN = process.env["FOOTFALL_BIN"] ?? join(PACKAGE_ROOT, "..", "..", ".venv", "bin", "footfall");

export interface Live {
  baseUrl: string;
  token: string;
  readOnlyToken: string;
  accountUuid: string;
  shops: string[];
  contacts: string[];
  subscriptionUuid: string;
}

let started: Promise<{ live: Live; server: ChildProcess; directory: string }> | undefined;

/** The one server of this test run, started at the first call. */
export async function footfall(): Promise<Live> {
  started ??= start();
  return (await started).live;
}

export async function stopFootfall(): Promise<void> {
  if (started === undefined) return;
  const { server, directory } = await started;
  if (server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((resolve) => server.once("exit", resolve));
    server.kill("SIGTERM");
    const timer = setTimeout(() => server.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
  }
  await rm(directory, { recursive: true, force: true });
}

async function command(databaseUrl: string, ...args: string[]): Promise<Record<string, string>> {
  const { stdout } = await promisify(execFile)(FOOTFALL_BIN, [...args, "--database-url", databaseUrl],
    { timeout: 120_000 });
  return JSON.parse(stdout) as Record<string, string>;
}

async function start(): Promise<{ live: Live; server: ChildProcess; directory: string }> {
  if (!existsSync(FOOTFALL_BIN)) {
    throw new Error(`no footfall at ${FOOTFALL_BIN}: run the set-up of the project's README, or set FOOTFALL_BIN`);
  }
  const directory = await mkdtemp(join(tmpdir(), "footfall-ts-"));
  const databaseUrl = `sqlite:///${join(directory, "footfall.db")}`;
  const demo = await command(databaseUrl, "demo");
  const readOnly = await command(databaseUrl, "tokens", "create", "--account", demo["account_uuid"]!, "--read-only");
  const port = await freePort();
  const log = join(directory, "serve.log");
  const server = spawn(FOOTFALL_BIN, ["serve", "--port", String(port), "--database-url", databaseUrl], {
    env: {
      ...process.env, FOOTFALL_RATE_LIMIT: "0", FOOTFALL_WEBHOOK_ALLOW_PRIVATE_URLS: "1",
      FOOTFALL_WEBHOOK_POLL_INTERVAL: "0.1", FOOTFALL_LOG_LEVEL: "warning",
      // The lapse pass every 0.2 s, so that a lapse rule's events come while a test waits.
      FOOTFALL_RULES_INTERVAL: "0.2",
    },
    stdio: ["ignore", "ignore", openSync(log, "w")],
  });
  // Should the run end without stopFootfall (a crash), the server goes with it.
  process.once("exit", () => server.kill("SIGKILL"));
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`footfall serve exited: ${await readFile(log, "utf8")}`);
    try {
      if ((await fetch(`${baseUrl}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`footfall serve did not start: ${await readFile(log, "utf8")}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const get = async (path: string) => {
    const response = await fetch(`${baseUrl}/api/v3/oauth/clients${path}`,
      { headers: { Authorization: `Bearer ${demo["token"]}` } });
    return ((await response.json()) as { data: { uuid: string }[] }).data.map((item) => item.uuid);
  };
  const live: Live = {
    baseUrl, token: demo["token"]!, readOnlyToken: readOnly["token"]!, accountUuid: demo["account_uuid"]!,
    shops: await get("/shops"), contacts: await get("/contacts?limit=100"),
    subscriptionUuid: demo["subscription_uuid"]!,
  };
  return { live, server, directory };
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** What the proxy does with the next request: answer it itself, forward it and then cut the connection
 * (the work is done, its answer lost), cut it without forwarding, or never answer. */
export type Step =
  | { answer: number; headers?: Record<string, string>; body?: string }
  | { drop: "after-forwarding" | "before-forwarding" }
  | { hang: true };

export interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  at: number;
}

/** Forwards to Footfall, except that the steps of `plan` come first, one a request. */
export class FlakyProxy {
  plan: Step[] = [];
  readonly seen: Seen[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly upstream: string) {
    this.server = createServer(async (request, response) => {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      this.seen.push({ method: request.method!, url: request.url!, headers: request.headers, at: Date.now() });
      const step = this.plan.shift();
      if (step !== undefined && "answer" in step) {
        response.writeHead(step.answer, step.headers ?? {}).end(step.body ?? "");
        return;
      }
      if (step !== undefined && "hang" in step) return;
      if (step?.drop === "before-forwarding") {
        request.socket.destroy();
        return;
      }
      const headers = Object.fromEntries(Object.entries(request.headers)
        .filter(([name]) => !["host", "content-length", "connection"].includes(name))) as Record<string, string>;
      const answer = await fetch(this.upstream + request.url, {
        method: request.method!, headers, body: chunks.length ? Buffer.concat(chunks) : undefined,
      });
      const body = Buffer.from(await answer.arrayBuffer());
      if (step?.drop === "after-forwarding") {
        request.socket.destroy();
        return;
      }
      const out: Record<string, string> = {};
      answer.headers.forEach((value, name) => {
        if (!["content-length", "transfer-encoding", "connection", "content-encoding"].includes(name)) out[name] = value;
      });
      response.writeHead(answer.status, out).end(body);
    });
    this.server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  static async start(upstream: string): Promise<FlakyProxy> {
    const proxy = new FlakyProxy(upstream);
    await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

export interface Delivery {
  /** The path (and query) it was sent to. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A webhook receiver on loopback that keeps what it is sent and answers 204. */
export class Receiver {
  readonly received: Delivery[] = [];
  private readonly server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    this.received.push({ url: request.url!, headers: request.headers, body: Buffer.concat(chunks) });
    response.writeHead(204).end();
  });

  static async start(): Promise<Receiver> {
    const receiver = new Receiver();
    await new Promise<void>((resolve) => receiver.server.listen(0, "127.0.0.1", resolve));
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}/hook`;
  }

  async waitFor(count: number, timeoutMs = 30_000): Promise<Delivery[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < count) {
      if (Date.now() > deadline) throw new Error(`${this.received.length} of ${count} deliveries in ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return this.received;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** A name no other test uses, for sources and external ids that pick out a test's own visits. */
export function unique(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
