// The test app (tests only): a small Node server with the real inngest v4 SDK at /api/inngest and the
// real `pg` driver, configured the way the kit configures a user's app (INNGEST_* and DATABASE_URL
// from the kit's wrapper, PORT from app.env).
//   GET  /healthz        200 once listening (the kit's health path in the test config)
//   GET  /               200 "app <APP_LABEL>": what the steady client through Caddy asks
//   GET  /db             what `pg` makes of DATABASE_URL (user, host, database; never the password)
//   POST /pump/start     sends one "kit/ping" event every `ms` through inngest.send(), numbered per
//                        boot (data.boot, data.seq), so the server can tell a lost event by a gap;
//                        with PUMP_MS set (app.env) the pump starts at boot, so it runs across restarts
//   GET  /pump           this boot's counts: sent, failed (after the SDK's own retries)
// On SIGTERM the pump stops and in-flight sends finish before the process exits.
"use strict";
const http = require("http");
const crypto = require("crypto");
const { Inngest } = require("inngest");
const { serve } = require("inngest/node");
const { parse } = require("pg-connection-string");
const pg = require("pg");

const port = Number(process.env.PORT || 3000);
const boot = crypto.randomUUID();
const inngest = new Inngest({ id: "kit-test-app" });
const echo = inngest.createFunction({ id: "echo", triggers: [{ event: "kit/ping" }] }, async ({ event }) => ({ seq: event.data.seq }));
const handler = serve({ client: inngest, functions: [echo] });

const pump = { running: false, sent: 0, failed: 0, inFlight: 0, timer: null, lastError: "" };
function pumpOnce() {
  const seq = ++pump.sent;
  pump.inFlight++;
  inngest
    .send({ name: "kit/ping", data: { boot, seq } })
    .catch((error) => { pump.failed++; pump.lastError = String(error.message || error).slice(0, 200); })
    .finally(() => { pump.inFlight--; });
}

function startPump(every) {
  if (!pump.running) { pump.running = true; pump.timer = setInterval(pumpOnce, every); }
}

function json(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://localhost");
  if (url.pathname.startsWith("/api/inngest")) return handler(req, res);
  if (url.pathname === "/healthz") return json(res, 200, { ok: true });
  if (url.pathname === "/") return json(res, 200, { app: process.env.APP_LABEL || "", boot });
  if (url.pathname === "/db") {
    const config = parse(process.env.DATABASE_URL || "");
    const client = new pg.Client({ ...config, connectionTimeoutMillis: 1000 });
    return json(res, 200, { user: config.user, host: config.host, database: config.database, ssl: Boolean(config.ssl), driver: typeof client.connect });
  }
  if (url.pathname === "/pump/start" && req.method === "POST") {
    startPump(Number(url.searchParams.get("ms") || 100));
    return json(res, 200, { boot, running: true });
  }
  if (url.pathname === "/pump") return json(res, 200, { boot, ...pump, timer: undefined });
  return json(res, 404, { error: "not found" });
});
server.listen(port, "0.0.0.0", () => {
  console.log(`test app listening on :${port} (boot ${boot})`);
  if (Number(process.env.PUMP_MS) > 0) startPump(Number(process.env.PUMP_MS));
});

process.on("SIGTERM", () => {
  clearInterval(pump.timer);
  const wait = () => (pump.inFlight > 0 ? setTimeout(wait, 50) : server.close(() => process.exit(0)));
  wait();
  setTimeout(() => process.exit(0), 8000).unref();
});
