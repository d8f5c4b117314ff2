#!/usr/bin/env node
// STAND-IN for the `inngest` binary of the inngest/inngest image (tests only): the official binary
// cannot be fetched on a machine without a registry. It follows the protocol the real server speaks
// with an app that uses the inngest JS SDK, and nothing more:
//   - `inngest start` takes the flags of cmd/start/cmd.go that the kit passes (--port, --signing-key
//     (one), --event-key (repeatable), --sdk-url, --redis-uri, --postgres-uri, pool sizes), and
//     refuses a signing key that is not even-length hex, as cmd/start/start.go does;
//   - GET /health answers 200;
//   - POST /fn/register (the SDK's out-of-band sync) is accepted only with
//     `Authorization: Bearer sha256(hex-decoded signing key)`, the SDK's hashSigningKey;
//   - POST /e/{key} accepts events only for a key given with --event-key, else 401;
//   - each accepted event that triggers a synced function is queued in Redis and run by POSTing the
//     function's step URL, signed as the SDK verifies it: `X-Inngest-Signature: t=<unix>&s=<hex
//     HMAC-SHA256 over body + t, keyed with the signing key text>` (inngest-js helpers/net.js);
//   - `inngest alpha doctor healthcheck --skip-connect-gateway` probes GET /health on 127.0.0.1.
// State (synced apps, queued runs, accepted events, call counters) lives in Redis, as the real
// server's queue does with --redis-uri, so a restart keeps it. GET /standin/state shows the
// counters and the argv with every key replaced by its sha256 fingerprint; nothing secret is printed.
"use strict";
const http = require("http");
const net = require("net");
const crypto = require("crypto");

const fingerprint = (value) => crypto.createHash("sha256").update(String(value)).digest("hex").slice(0, 8);

function parseStart(argv) {
  const flags = { port: 8288, signingKey: "", eventKeys: [], sdkUrls: [], redisUri: "", other: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [name, inline] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const value = () => (inline !== undefined ? inline : argv[++i]);
    switch (name) {
      case "--port": case "-p": flags.port = Number(value()); break;
      case "--signing-key": flags.signingKey = value(); break;
      case "--event-key": flags.eventKeys.push(value()); break;
      case "--sdk-url": case "-u": flags.sdkUrls.push(value()); break;
      case "--redis-uri": flags.redisUri = value(); break;
      default:
        if (name.startsWith("-")) flags.other[name] = value();
        else throw new Error(`unexpected argument ${arg}`);
    }
  }
  return flags;
}

function publicArgv(argv) {
  // The argv as recorded: key values are fingerprints, the Postgres and Redis URIs lose their passwords.
  const out = [];
  for (let i = 0; i < argv.length; i++) {
    out.push(argv[i]);
    if (["--signing-key", "--event-key"].includes(argv[i]) && i + 1 < argv.length) out.push(`sha256:${fingerprint(argv[++i])}`);
    else if (["--postgres-uri", "--redis-uri"].includes(argv[i]) && i + 1 < argv.length) out.push(argv[++i].replace(/:\/\/([^:@/]*):[^@]*@/, "://$1:***@"));
  }
  return out;
}

// A minimal RESP client: one connection, commands answered in order.
class Redis {
  constructor(uri) {
    const url = new URL(uri);
    this.host = url.hostname;
    this.port = Number(url.port || 6379);
    this.username = decodeURIComponent(url.username || "");
    this.password = decodeURIComponent(url.password || "");
    this.pending = [];
    this.buffer = Buffer.alloc(0);
  }
  connect() {
    // (Re)connect: like the real server's client, a restart of Redis costs a reconnect, not the process.
    if (this.connecting) return this.connecting;
    this.connecting = new Promise((resolve, reject) => {
      const socket = net.createConnection({ host: this.host, port: this.port });
      const fail = (error) => {
        if (socket !== this.socket) return;
        this.broken = this.broken || error;
        for (const p of this.pending.splice(0)) p.reject(this.broken);
        reject(this.broken);
      };
      this.socket = socket;
      this.broken = null;
      this.pending = [];
      this.buffer = Buffer.alloc(0);
      socket.on("data", (chunk) => { if (socket === this.socket) { this.buffer = Buffer.concat([this.buffer, chunk]); this.drain(); } });
      socket.on("error", fail);
      socket.on("close", () => fail(new Error("redis connection closed")));
      socket.on("connect", async () => {
        try {
          if (this.password) await this.send(this.username ? ["AUTH", this.username, this.password] : ["AUTH", this.password]);
          await this.send(["PING"]);
          resolve();
        } catch (error) { reject(error); }
      });
    }).finally(() => { this.connecting = null; });
    return this.connecting;
  }
  async call(args) {
    if (this.connecting) await this.connecting;
    if (this.broken || !this.socket) {
      if (this.socket) this.socket.destroy();
      await this.connect();
    }
    return this.send(args);
  }
  send(args) {
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      let text = `*${args.length}\r\n`;
      for (const arg of args) { const b = Buffer.from(String(arg)); text += `$${b.length}\r\n${b.toString()}\r\n`; }
      this.socket.write(text);
    });
  }
  parse(offset) {
    const end = this.buffer.indexOf("\r\n", offset);
    if (end < 0) return null;
    const type = String.fromCharCode(this.buffer[offset]);
    const line = this.buffer.slice(offset + 1, end).toString();
    if (type === "+") return [line, end + 2];
    if (type === "-") return [new Error(line), end + 2];
    if (type === ":") return [Number(line), end + 2];
    if (type === "$") {
      const length = Number(line);
      if (length < 0) return [null, end + 2];
      if (this.buffer.length < end + 2 + length + 2) return null;
      return [this.buffer.slice(end + 2, end + 2 + length).toString(), end + 2 + length + 2];
    }
    if (type === "*") {
      const count = Number(line);
      const items = [];
      let at = end + 2;
      for (let i = 0; i < count; i++) { const item = this.parse(at); if (!item) return null; items.push(item[0]); at = item[1]; }
      return [count < 0 ? null : items, at];
    }
    throw new Error(`unexpected redis reply type ${type}`);
  }
  drain() {
    for (;;) {
      const parsed = this.parse(0);
      if (!parsed) return;
      this.buffer = this.buffer.slice(parsed[1]);
      const waiter = this.pending.shift();
      if (waiter) (parsed[0] instanceof Error ? waiter.reject(parsed[0]) : waiter.resolve(parsed[0]));
    }
  }
}

function readBody(req) {
  return new Promise((resolve) => { const parts = []; req.on("data", (c) => parts.push(c)); req.on("end", () => resolve(Buffer.concat(parts).toString())); });
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

// The SDK verifies the signature over the JSON Canonicalization Scheme (RFC 8785) form of the body it
// parsed (inngest-js helpers/net.js uses the `canonicalize` package): keys sorted, no whitespace.
// So the body is sent in that form, and the bytes signed are the bytes sent.
function canonical(value) {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
}

function sign(body, signingKey) {
  const ts = Math.round(Date.now() / 1000).toString();
  const mac = crypto.createHmac("sha256", signingKey.replace(/^signkey-\w+-/, "")).update(body + ts).digest("hex");
  return `t=${ts}&s=${mac}`;
}

async function start(argv) {
  const flags = parseStart(argv);
  const key = flags.signingKey;
  if (!key || key.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(key)) {
    console.error("inngest start: --signing-key must be hex with an even length");
    process.exit(1);
  }
  const hashedKey = crypto.createHash("sha256").update(Buffer.from(key, "hex")).digest("hex");
  const redis = new Redis(flags.redisUri || "redis://127.0.0.1:6379");
  await redis.connect();
  const bootId = crypto.randomUUID();
  await redis.call(["HINCRBY", "standin:counters", "starts", 1]);
  console.log(`inngest stand-in started on :${flags.port} (boot ${bootId}); argv: ${JSON.stringify(publicArgv(argv))}`);

  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, "http://localhost");
      const body = await readBody(req);
      if (req.method === "GET" && url.pathname === "/health") return send(res, 200, { status: 200, message: "OK" });
      if (req.method === "GET" && url.pathname === "/standin/state") {
        const counters = await redis.call(["HGETALL", "standin:counters"]);
        const apps = await redis.call(["HGETALL", "standin:apps"]);
        const state = { boot: bootId, argv: publicArgv(argv), counters: {}, queued: await redis.call(["LLEN", "standin:queue"]), events: await redis.call(["LLEN", "standin:events"]), apps: {} };
        for (let i = 0; i < counters.length; i += 2) state.counters[counters[i]] = Number(counters[i + 1]);
        for (let i = 0; i < apps.length; i += 2) state.apps[apps[i]] = JSON.parse(apps[i + 1]).functions.map((f) => f.id);
        state.eventSeqs = JSON.parse((await redis.call(["GET", "standin:seqs"])) || "{}");
        return send(res, 200, state);
      }
      if (req.method === "POST" && url.pathname === "/fn/register") {
        const auth = (req.headers.authorization || "").replace(/^Bearer /, "").replace(/^signkey-\w+-/, "");
        if (auth !== hashedKey) {
          await redis.call(["HINCRBY", "standin:counters", "syncs_rejected", 1]);
          return send(res, 401, { status: 401, error: "Invalid signing key" });
        }
        const registration = JSON.parse(body);
        await redis.call(["HSET", "standin:apps", registration.appName, JSON.stringify(registration)]);
        await redis.call(["HINCRBY", "standin:counters", "syncs", 1]);
        return send(res, 200, { status: 200, modified: true });
      }
      const event = url.pathname.match(/^\/e\/([^/]+)$/);
      if (req.method === "POST" && event) {
        if (!flags.eventKeys.includes(decodeURIComponent(event[1]))) {
          await redis.call(["HINCRBY", "standin:counters", "events_rejected", 1]);
          return send(res, 401, { status: 401, error: "Event key not found" });
        }
        const parsed = JSON.parse(body || "[]");
        const events = Array.isArray(parsed) ? parsed : [parsed];
        const ids = [];
        for (const item of events) {
          const id = crypto.randomUUID();
          ids.push(id);
          const stored = JSON.stringify({ id, ...item });
          await redis.call(["RPUSH", "standin:events", stored]);
          await redis.call(["RPUSH", "standin:queue", stored]);
          await noteSeq(redis, item);
        }
        await redis.call(["HINCRBY", "standin:counters", "events_accepted", events.length]);
        return send(res, 200, { ids, status: 200 });
      }
      return send(res, 404, { status: 404, error: "not found" });
    } catch (error) {
      console.error(`inngest stand-in: ${error.message}`);
      return send(res, 500, { status: 500, error: "internal error" });
    }
  });
  server.listen(flags.port, "0.0.0.0");
  runQueue(redis, key);
  // Like Go's http.Server.Shutdown: stop accepting, drop idle keep-alive connections, exit when done.
  const stop = () => { server.close(() => process.exit(0)); server.closeIdleConnections(); setTimeout(() => process.exit(0), 5000).unref(); };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

async function noteSeq(redis, item) {
  // The app numbers its events per boot; the highest number and the count per boot show gaps (lost events).
  const data = (item && item.data) || {};
  if (!data.boot || typeof data.seq !== "number") return;
  const seqs = JSON.parse((await redis.call(["GET", "standin:seqs"])) || "{}");
  const entry = seqs[data.boot] || { max: 0, count: 0 };
  entry.max = Math.max(entry.max, data.seq);
  entry.count += 1;
  seqs[data.boot] = entry;
  await redis.call(["SET", "standin:seqs", JSON.stringify(seqs)]);
}

async function runQueue(redis, signingKey) {
  // One worker: run the first queued event's functions; a call that cannot connect stays queued and is
  // retried (as the real executor retries); any HTTP answer but 2xx counts as a failed call.
  for (;;) {
    let delay = 20;
    try {
      const head = await redis.call(["LINDEX", "standin:queue", 0]);
      if (head) {
        const event = JSON.parse(head);
        const apps = await redis.call(["HGETALL", "standin:apps"]);
        let unreachable = false;
        for (let i = 1; i < apps.length; i += 2) {
          const registration = JSON.parse(apps[i]);
          for (const fn of registration.functions) {
            if (!(fn.triggers || []).some((t) => t.event === event.name)) continue;
            const step = Object.values(fn.steps || {})[0];
            const outcome = await callFunction(step.runtime.url, fn.id, event, signingKey);
            if (outcome === "unreachable") { unreachable = true; continue; }
            await redis.call(["HINCRBY", "standin:counters", outcome === "ok" ? "calls_ok" : "calls_failed", 1]);
            if (outcome !== "ok") console.error(`inngest stand-in: call to ${fn.id} failed: ${outcome}`);
          }
        }
        if (unreachable) {
          await redis.call(["HINCRBY", "standin:counters", "calls_retried", 1]);
          delay = 200;
        } else {
          await redis.call(["LPOP", "standin:queue"]);
          delay = 0;
        }
      }
    } catch (error) {
      console.error(`inngest stand-in: queue: ${error.message}`);
      delay = 500;
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

function callFunction(stepUrl, fnId, event, signingKey) {
  const body = canonical({
    version: 1,
    event: { name: event.name, data: event.data || {}, id: event.id, ts: Date.now() },
    events: [{ name: event.name, data: event.data || {}, id: event.id, ts: Date.now() }],
    steps: {},
    ctx: { run_id: crypto.randomUUID(), fn_id: fnId, attempt: 0, disable_immediate_execution: false, use_api: false, stack: { stack: [], current: 0 } },
  });
  const url = new URL(stepUrl);
  return new Promise((resolve) => {
    const req = http.request(
      { host: url.hostname, port: url.port || 80, path: url.pathname + url.search, method: "POST", timeout: 10000,
        headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body), "X-Inngest-Signature": sign(body, signingKey), "X-Inngest-Server-Kind": "cloud" } },
      (res) => { res.resume(); res.on("end", () => resolve(res.statusCode >= 200 && res.statusCode < 300 ? "ok" : `HTTP ${res.statusCode}`)); },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve("unreachable"));
    req.end(body);
  });
}

function doctorHealthcheck(argv) {
  // `inngest alpha doctor healthcheck [--skip-connect-gateway]`: exit 0 when GET /health answers 200.
  const port = Number(process.env.INNGEST_PORT || 8288);
  const req = http.get({ host: "127.0.0.1", port, path: "/health", timeout: 4000 }, (res) => { res.resume(); process.exit(res.statusCode === 200 ? 0 : 1); });
  req.on("timeout", () => req.destroy(new Error("timeout")));
  req.on("error", (error) => { console.error(`healthcheck: ${error.message}`); process.exit(1); });
}

const args = process.argv.slice(2);
if (args[0] === "start") {
  start(args.slice(1)).catch((error) => { console.error(`inngest start: ${error.message}`); process.exit(1); });
} else if (args[0] === "alpha" && args[1] === "doctor" && args[2] === "healthcheck") {
  doctorHealthcheck(args.slice(3));
} else {
  console.error(`inngest stand-in: unsupported command: ${args.join(" ")}`);
  process.exit(2);
}
