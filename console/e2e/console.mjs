// Browser tests of the console, run by `go test ./cmd/hookd -run TestConsole`
// (which starts a real hookd on PostgreSQL or SQLite and a real receiver)
// or by hand with the same environment:
//   HOOKD_URL      base URL of a running hookd (http://127.0.0.1:PORT)
//   HOOKD_API_KEY  an API key of its project
//   RECEIVER_URL   a receiver answering 200 at /ok, 500 at /fail, 400 at /reject
//   CHROMIUM       the browser (default /usr/bin/chromium)
//   SCREENSHOTS    where each page's screenshot goes (default e2e/screenshots)
// Every wait is on a condition; the timeouts only bound a failure.
import { createHmac } from "node:crypto";
import { createRequire } from "node:module";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const base = need("HOOKD_URL");
const key = need("HOOKD_API_KEY");
const receiver = need("RECEIVER_URL");
const shots = process.env.SCREENSHOTS || "e2e/screenshots";
const patience = 60_000;
mkdirSync(shots, { recursive: true });
rmSync(join(shots, "failure.png"), { force: true });
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return v;
}

function check(cond, message) {
  if (!cond) throw new Error(message);
}

// api calls hookd directly (to set up what the UI then shows).
async function api(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: "Bearer " + key, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  check(res.ok, `${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

async function until(what, f) {
  const deadline = Date.now() + patience;
  let last;
  for (;;) {
    try {
      if (await f()) return;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`waited ${patience / 1000}s for ${what}${last ? ": " + last.message : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
const page = await context.newPage();
page.setDefaultTimeout(patience);
const problems = [];
page.on("pageerror", (e) => problems.push("page error: " + e.message));
page.on("console", (m) => {
  if (m.type() === "error" && /Content Security Policy|Refused to/i.test(m.text())) problems.push("CSP: " + m.text());
});
page.on("request", (r) => {
  const u = r.url();
  if (!u.startsWith(base) && !u.startsWith("blob:") && !u.startsWith("data:")) problems.push("third-party request: " + u);
});
const dialogs = [];
let dismissNext = false; // answer the next confirmation "Cancel"
page.on("dialog", async (d) => {
  dialogs.push(d.message());
  if (dismissNext) {
    dismissNext = false;
    await d.dismiss();
  } else await d.accept();
});

const a11y = [];
let passed = 0;
async function step(name, f) {
  const t0 = Date.now();
  try {
    await f();
    passed++;
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e.message}`);
    await page.screenshot({ path: join(shots, "failure.png"), fullPage: true }).catch(() => {});
    console.log("page text:\n" + (await page.locator("body").innerText().catch(() => "?")).slice(0, 3000));
    await browser.close();
    process.exit(1);
  }
}

// open shows a console page afresh (a reload when it is the page shown:
// going to the same hash would not draw it again) and waits until it has
// loaded.
async function open(hash, heading) {
  const target = base + "/console/" + hash;
  if (page.url() === target) await page.reload();
  else await page.goto(target);
  await page.getByRole("heading", { level: 1, name: heading, exact: true }).waitFor();
  await page.locator(".loading").waitFor({ state: "detached" });
}

// visit opens a console page, runs axe on it and saves its screenshot.
async function visit(hash, heading, shot) {
  await open(hash, heading);
  await audit(shot);
}

async function audit(shot) {
  if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  for (const v of result.violations) {
    if (v.impact === "serious" || v.impact === "critical") a11y.push(`${shot}: ${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`);
  }
  await page.screenshot({ path: join(shots, shot + ".png"), fullPage: true });
}

const button = (name) => page.getByRole("button", { name, exact: true });
const h1 = (name) => page.getByRole("heading", { level: 1, name, exact: true });

// ---------------------------------------------------------------------------

await step("the console is served with its security headers", async () => {
  const res = await fetch(base + "/console/");
  check(res.status === 200, "status " + res.status);
  const csp = res.headers.get("content-security-policy") ?? "";
  check(csp.includes("default-src 'self'") && csp.includes("frame-ancestors 'none'"), "CSP: " + csp);
  check(!/unsafe-inline|unsafe-eval/.test(csp), "CSP allows inline code: " + csp);
});

await step("a wrong key shows the sign-in error", async () => {
  await page.goto(base + "/console/");
  await h1("hookd console").waitFor();
  await audit("signin");
  await page.getByLabel("API key").fill("hk_live_" + "x".repeat(32));
  await button("Sign in").click();
  await page.getByRole("alert").filter({ hasText: "That API key was not accepted" }).waitFor();
  check(!(await page.evaluate(() => sessionStorage.length)), "a refused key was stored");
  await audit("signin-error");
});

await step("signing in keeps the key in session storage only", async () => {
  await page.getByLabel("API key").fill(key);
  await button("Sign in").click();
  await h1("Overview").waitFor();
  check((await page.evaluate(() => sessionStorage.getItem("hookd.apiKey"))) === key, "key not in session storage");
  check((await page.evaluate(() => localStorage.length)) === 0, "something is in local storage");
  check(!page.url().includes(key), "the key is in the URL");
});

let okEndpoint;
await step("create an endpoint, its secret shown once and copyable", async () => {
  await visit("#/endpoints/new", "New endpoint", "endpoint-new");
  await page.getByLabel("URL").fill(receiver + "/ok");
  await page.getByLabel("Description").fill("orders service");
  await button("Create endpoint").click();
  await h1("Endpoint").waitFor();
  await page.getByRole("heading", { name: "Endpoint created: its signing secret" }).waitFor();
  const secret = (await page.locator("code.secret").innerText()).trim();
  check(/^whsec_/.test(secret), "secret shown: " + secret);
  await button("Copy").click();
  check((await page.evaluate(() => navigator.clipboard.readText())) === secret, "the copy button copied something else");
  okEndpoint = page.url().split("#/endpoints/")[1];
  check(okEndpoint, "no endpoint id in " + page.url());
  await visit("#/endpoints", "Endpoints", "endpoints");
  await page.getByRole("link", { name: receiver + "/ok" }).waitFor();
});

await step("add and delete a signing key", async () => {
  await visit("#/endpoints/" + okEndpoint, "Endpoint", "endpoint");
  const rows = page.locator("table:has(caption:text('Signing keys')) tbody tr");
  check((await rows.count()) === 1, "keys before: " + (await rows.count()));
  check((await button("Delete key").count()) === 0, "the only key can be deleted");
  await button("Add signing key").click();
  await page.getByRole("heading", { name: "New signing secret" }).waitFor();
  await until("two keys listed", async () => (await page.locator("table:has(caption:text('Signing keys')) tbody tr").count()) === 2);
  check((await button("Add signing key").count()) === 0, "a third key is offered");
  const before = dialogs.length;
  await page.locator("table:has(caption:text('Signing keys')) tbody tr").first().getByRole("button", { name: "Delete key" }).click();
  await until("one key left", async () => (await page.locator("table:has(caption:text('Signing keys')) tbody tr").count()) === 1);
  check(dialogs.length === before + 1 && /Delete the signing key/.test(dialogs.at(-1)), "no confirmation: " + dialogs.at(-1));
});

await step("pause and resume an endpoint; delete one", async () => {
  await open("#/endpoints/" + okEndpoint, "Endpoint");
  await button("Pause").click();
  await page.locator(".subtitle .badge", { hasText: "Paused" }).waitFor();
  check((await api("GET", "/v1/endpoints/" + okEndpoint)).data.paused === true, "not paused in the API");
  await button("Resume").click();
  await page.locator(".subtitle .badge", { hasText: "Healthy" }).waitFor();
  const doomed = await api("POST", "/v1/endpoints", { url: receiver + "/ok/doomed", description: "to delete", hmac_enabled: true });
  await open("#/endpoints/" + doomed.data.id, "Endpoint");
  const before = dialogs.length;
  await button("Delete endpoint").click();
  await h1("Endpoints").waitFor();
  check(/Delete the endpoint/.test(dialogs[before] ?? ""), "no confirmation: " + dialogs[before]);
  await page.locator(".loading").waitFor({ state: "detached" });
  check((await page.getByRole("link", { name: receiver + "/ok/doomed" }).count()) === 0, "the deleted endpoint is still listed");
});

let delivered;
await step("a message sent through the API appears delivered with its attempt, its payload as text", async () => {
  const payload = { note: "<script>window.__xss = 1</script>", img: "<img src=x onerror=\"window.__xss = 2\">", order: 42 };
  const r = await api("POST", "/v1/webhooks/send", { endpoint_id: okEndpoint, payload, headers: { "X-Note": "<b>bold</b>" } });
  delivered = r.data.message_id;
  await visit("#/messages", "Messages", "messages");
  await page.getByRole("link", { name: delivered }).waitFor();
  await until("the message delivered", async () => {
    await open("#/messages/" + delivered, "Message");
    return (await page.locator(".subtitle .badge").innerText()) === "Delivered";
  });
  await page.getByRole("heading", { name: /Attempt 1: delivered \(HTTP 200\)/ }).waitFor();
  await page.locator(".timing .seg").first().waitFor();
  const shown = await page.getByLabel("Payload").innerText();
  check(shown.includes("<script>window.__xss = 1</script>") && shown.includes('"order": 42'), "payload shown as: " + shown);
  check((await page.evaluate(() => window.__xss)) === undefined, "the payload ran as HTML");
  check((await page.locator("main script, main img").count()) === 0, "markup of the payload became elements");
  await page.locator("summary", { hasText: "Request headers" }).click();
  await page.getByText("<b>bold</b>").waitFor();
  await audit("message");
  check((await button("Retry now").count()) + (await button("Cancel").count()) === 0, "retry now or cancel offered for a delivered message");
  // Replay: delivered again, a second attempt.
  await button("Replay").click();
  await page.locator(".alert.ok").waitFor();
  await until("the replay delivered", async () => {
    await open("#/messages/" + delivered, "Message");
    return (await page.getByRole("heading", { name: /Attempt 2: delivered/ }).count()) === 1;
  });
});

await step("delete a message", async () => {
  const r = await api("POST", "/v1/webhooks/send", { endpoint_id: okEndpoint, payload: { doomed: true } });
  const id = r.data.message_id;
  await until("delivered", async () => (await api("GET", "/v1/messages/" + id)).data.status === "succeeded");
  await open("#/messages/" + id, "Message");
  const before = dialogs.length;
  await button("Delete").click();
  await h1("Messages").waitFor();
  check(/Delete this message/.test(dialogs[before] ?? ""), "no confirmation: " + dialogs[before]);
  const res = await fetch(base + "/v1/messages/" + id, { headers: { Authorization: "Bearer " + key } });
  const body = await res.json();
  check(res.status === 404 || body.data?.deleted_at, "the message is not deleted: " + JSON.stringify(body));
});

await step("page through the message log", async () => {
  const messages = Array.from({ length: 51 }, (_, i) => ({ endpoint_id: okEndpoint, payload: { page: i } }));
  await api("POST", "/v1/webhooks/send-batch", { messages });
  await open("#/messages", "Messages");
  check((await page.locator("main table tbody tr").count()) === 50, "first page rows");
  await page.getByRole("link", { name: "Next page" }).click();
  await until("the second page", async () => page.url().includes("cursor="));
  await page.locator(".loading").waitFor({ state: "detached" });
  await page.getByRole("link", { name: "First page" }).waitFor();
  const second = await page.locator("main table tbody tr").count();
  check(second >= 1 && second <= 50, "second page rows: " + second);
  await page.getByRole("link", { name: "First page" }).click();
  await until("back on the first page", async () => !page.url().includes("cursor="));
});

let failing;
await step("a receiver answering 500 shows the retry", async () => {
  const ep = await api("POST", "/v1/endpoints", { url: receiver + "/fail", description: "flaky", hmac_enabled: true });
  const r = await api("POST", "/v1/webhooks/send", { endpoint_id: ep.data.id, payload: { n: 1 } });
  failing = r.data.message_id;
  await until("the first attempt failed", async () => {
    await open("#/messages/" + failing, "Message");
    return (await page.getByRole("heading", { name: /Attempt 1: failed, retried \(HTTP 500\)/ }).count()) === 1;
  });
  await page.getByText("receiver is down").first().waitFor();
  await audit("message-retry");
  // Retry now: a second attempt at once (the next was an hour away).
  await button("Retry now").click();
  await page.locator(".alert:visible").first().waitFor();
  const said = await page.locator(".alert:visible").first().innerText();
  check(!(await page.getByRole("alert").isVisible()), "retry now was refused: " + said);
  await until("the second attempt", async () => {
    await open("#/messages/" + failing, "Message");
    return (await page.getByRole("heading", { name: /Attempt 2: failed, retried \(HTTP 500\)/ }).count()) === 1;
  });
  check((await button("Replay").count()) === 0, "replay offered while a retry waits");
  // Cancelled elsewhere meanwhile: the console's cancel is refused, in words.
  await api("POST", `/v1/messages/${failing}/cancel`);
  await button("Cancel").click();
  await page.getByRole("alert").filter({ hasText: /HTTP 409/ }).waitFor();
  await open("#/messages/" + failing, "Message");
  check((await page.locator(".subtitle .badge").innerText()) === "Failed", "not shown as failed after the cancel");
  check((await button("Cancel").count()) === 0, "cancel offered for a failed message");
  await button("Replay").waitFor();
});

await step("filter the messages by status", async () => {
  await visit("#/messages", "Messages", "messages-all");
  await page.getByLabel("Status").selectOption("failed_permanent");
  await button("Filter").click();
  await until("the filtered list drawn", async () =>
    page.url().includes("status=failed_permanent") && (await page.locator(".loading").count()) === 0 && (await page.getByRole("link", { name: delivered }).count()) === 0,
  );
  await page.getByRole("link", { name: failing }).waitFor();
  // A message found by its id.
  await page.getByLabel("Message id").fill(delivered);
  await button("Open").click();
  await h1("Message").waitFor();
  await page.locator(".subtitle code", { hasText: delivered }).waitFor();
  check((await page.locator("main table tbody .badge", { hasNotText: "Failed" }).count()) === 0, "a row of another status");
});

await step("replay from the DLQ, one and in bulk with a confirmation naming how many", async () => {
  const ep = await api("POST", "/v1/endpoints", { url: receiver + "/reject", description: "rejects", hmac_enabled: true });
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push((await api("POST", "/v1/webhooks/send", { endpoint_id: ep.data.id, payload: { i } })).data.message_id);
  await until("three messages in the DLQ", async () => {
    const d = await api("GET", "/v1/dlq/messages");
    return ids.every((id) => d.data.messages.some((m) => m.message_id === id));
  });
  // The receiver is fixed: edit the endpoint's URL in the console.
  await visit("#/endpoints/" + ep.data.id, "Endpoint", "endpoint-edit");
  await page.getByRole("form", { name: "Edit endpoint" }).getByLabel("URL").fill(receiver + "/ok/fixed");
  await button("Save changes").click();
  await until("the URL saved", async () => (await api("GET", "/v1/endpoints/" + ep.data.id)).data.url === receiver + "/ok/fixed");
  await visit("#/dlq", "Dead-letter queue", "dlq");
  // One by its own button.
  await page.locator("tr", { has: page.getByRole("link", { name: ids[0] }) }).getByRole("button", { name: "Replay" }).click();
  await page.getByRole("status").filter({ hasText: `Replayed ${ids[0]}` }).waitFor();
  // Two selected; answering the confirmation "Cancel" replays nothing.
  await page.getByLabel("Select " + ids[1]).check();
  await page.getByLabel("Select " + ids[2]).check();
  dismissNext = true;
  await button("Replay selected").click();
  await until("the confirmation answered", async () => !dismissNext);
  check((await api("GET", "/v1/messages/" + ids[1])).data.status === "failed_permanent", "replayed although the confirmation was dismissed");
  const before = dialogs.length;
  await button("Replay selected").click();
  await page.getByRole("status").filter({ hasText: "Replayed 2 messages" }).waitFor();
  check(dialogs[before] === "Replay 2 selected messages?" && dialogs[before - 1] === dialogs[before], "confirmation: " + dialogs[before]);
  await until("all three delivered", async () => {
    for (const id of ids) if ((await api("GET", "/v1/messages/" + id)).data.status !== "succeeded") return false;
    return true;
  });
  // Replay all, its confirmation naming the whole DLQ.
  const more = await api("POST", "/v1/endpoints", { url: receiver + "/reject/again", description: "rejects too", hmac_enabled: true });
  const lost = (await api("POST", "/v1/webhooks/send", { endpoint_id: more.data.id, payload: { lost: true } })).data.message_id;
  await until("in the DLQ", async () => (await api("GET", "/v1/messages/" + lost)).data.status === "failed_permanent");
  const size = (await api("GET", "/v1/overview")).data.dlq_size;
  await open("#/dlq", "Dead-letter queue");
  const mark = dialogs.length;
  await button("Replay all").click();
  await page.getByRole("status").filter({ hasText: /Replayed \d+ message/ }).waitFor();
  check(dialogs[mark] === `Replay all ${size} message${size === 1 ? "" : "s"} in the dead-letter queue?`, "confirmation: " + dialogs[mark]);
  await until("replayed", async () => (await api("GET", "/v1/messages/" + lost)).data.replay_count === 1);
});

await step("the overview's charts render with data", async () => {
  await until("the charts show the delivered messages", async () => {
    await open("#/?window=1h", "Overview");
    return (await page.locator("svg rect.bar.ok").count()) > 0 && (await page.locator("svg polyline.line").count()) === 2;
  });
  const label = await page.getByRole("img", { name: /^Messages: / }).getAttribute("aria-label");
  check(/[1-9]\d* messages/.test(label), "chart summary: " + label);
  await page.getByText("Dead-letter queue").first().waitFor();
  await audit("overview");
});

await step("create and download an export", async () => {
  await visit("#/exports", "Exports", "exports-empty");
  await button("Create export").click();
  await page.getByRole("status").filter({ hasText: "Export created" }).waitFor();
  await until("the export completed", async () => {
    await open("#/exports", "Exports");
    return (await button("Download").count()) === 1;
  });
  const [download] = await Promise.all([page.waitForEvent("download"), button("Download").click()]);
  const path = await download.path();
  const csv = readFileSync(path, "utf8");
  check(csv.includes(delivered), "the export holds no row of the delivered message: " + csv.slice(0, 400));
  await audit("exports");
  await button("Delete").click();
  await page.getByText("No exports yet.").waitFor();
});

await step("create an API key (shown once) and delete it", async () => {
  await visit("#/api-keys", "API keys", "api-keys");
  await page.getByLabel("Label").fill("console test");
  await button("Create API key").click();
  await page.getByRole("heading", { name: "New API key" }).waitFor();
  const shown = (await page.locator("code.secret").innerText()).trim();
  check(/^hk_live_/.test(shown), "key shown: " + shown);
  const row = page.locator("tr", { hasText: "console test" });
  const before = dialogs.length;
  await row.getByRole("button", { name: "Delete" }).click();
  check(/^Delete the key hk_live_/.test(dialogs[before] ?? ""), "no confirmation: " + dialogs[before]);
  await until("the key deleted", async () => (await page.locator("tr", { hasText: "console test" }).count()) === 0);
  const res = await fetch(base + "/v1/endpoints", { headers: { Authorization: "Bearer " + shown } });
  check(res.status === 401, "the deleted key still works: " + res.status);
});

await step("event types: create one with a schema, archive it", async () => {
  await visit("#/event-types", "Event types", "event-types-empty");
  await page.getByLabel("Name").fill("order.created");
  await page.getByLabel("Payload JSON Schema").fill('{"type":"object","required":["id"]}');
  await button("Create event type").click();
  await page.getByRole("status").filter({ hasText: "order.created created" }).waitFor();
  // Edit it on its own page: a new description, the schema kept.
  await page.getByRole("link", { name: "order.created" }).click();
  await h1("Event type").waitFor();
  await page.locator(".loading").waitFor({ state: "detached" });
  await page.getByLabel("Description").fill("An order was placed");
  await button("Save changes").click();
  await page.getByRole("status").filter({ hasText: "Saved." }).waitFor();
  const et = await api("GET", "/v1/event-types/order.created");
  check(et.data.description === "An order was placed" && et.data.schema?.required?.[0] === "id", "after the edit: " + JSON.stringify(et.data));
  await audit("event-type");
  await open("#/event-types", "Event types");
  await button("Archive").click();
  await button("Unarchive").waitFor();
  await audit("event-types");
  await button("Delete").click();
  await page.getByText(/No event types yet/).waitFor();
});

await step("inbound: create an endpoint, see a refused request among the rejections", async () => {
  await visit("#/inbound/new", "New inbound endpoint", "inbound-new");
  await page.getByLabel("Name").fill("stripe");
  await page.getByLabel("Forward to URL").fill(receiver + "/ok");
  await page.getByLabel("Provider", { exact: true }).selectOption("stripe");
  await page.getByLabel("Provider's signing secret").fill("whsec_test_stripe");
  await button("Create inbound endpoint").click();
  await h1("Inbound endpoint").waitFor();
  await page.getByRole("heading", { name: "Inbound endpoint created: its ingest URL" }).waitFor();
  const ingest = (await page.locator("code.secret").first().innerText()).trim();
  check(ingest.includes("/v1/webhooks/receive/"), "ingest URL: " + ingest);
  const res = await fetch(ingest, { method: "POST", headers: { "Content-Type": "application/json", "Stripe-Signature": "t=1,v1=00" }, body: '{"id":"evt_1"}' });
  check(res.status === 401, "an unsigned request was answered " + res.status);
  await page.locator(".loading").waitFor({ state: "detached" });
  await audit("inbound-endpoint");
  await visit("#/rejections", "Rejected requests", "rejections");
  await page.locator("td code", { hasText: /timestamp_expired/ }).first().waitFor();
  await visit("#/inbound", "Inbound endpoints", "inbound");
  await page.getByRole("link", { name: "stripe" }).waitFor();

  // A webhook signed as Stripe signs is accepted and forwarded; its page
  // shows the forwarding attempt.
  const body = '{"id":"evt_2","type":"charge.succeeded"}';
  const t = Math.floor(Date.now() / 1000);
  const sig = createHmac("sha256", "whsec_test_stripe").update(`${t}.${body}`).digest("hex");
  const ok = await fetch(ingest, { method: "POST", headers: { "Content-Type": "application/json", "Stripe-Signature": `t=${t},v1=${sig}` }, body });
  check(ok.status === 200, "a signed request was answered " + ok.status);
  const inboundId = ingest.split("/v1/webhooks/receive/")[1].split("/")[0];
  await until("forwarded", async () => {
    await open("#/inbound/" + inboundId, "Inbound endpoint");
    return (await page.locator("main table tbody tr .badge", { hasText: "Delivered" }).count()) === 1;
  });
  await page.getByRole("link", { name: "All received messages" }).click();
  await h1("Received messages").waitFor();
  await page.locator(".loading").waitFor({ state: "detached" });
  await page.getByLabel("Status").selectOption("succeeded");
  await button("Filter").click();
  await until("filtered", async () => page.url().includes("status=succeeded") && (await page.locator(".loading").count()) === 0);
  check((await page.locator("main table tbody tr").count()) === 1, "received messages listed: " + (await page.locator("main table tbody tr").count()));
  await audit("inbound-messages");
  await page.locator("main table tbody tr a[href^='#/inbound-messages/']").first().click();
  await h1("Received message").waitFor();
  await page.getByRole("heading", { name: /Attempt 1: delivered \(HTTP 200\)/ }).waitFor();
  await audit("inbound-message");
  await button("Replay").click();
  await page.getByRole("status").filter({ hasText: "Replayed 1 message." }).waitFor();

  await open("#/inbound/" + inboundId, "Inbound endpoint");
  await button("Pause").click();
  await page.locator(".subtitle .badge", { hasText: "Paused" }).waitFor();
  const paused = await fetch(ingest, { method: "POST", headers: { "Content-Type": "application/json", "Stripe-Signature": `t=${t},v1=${sig}` }, body });
  check(paused.status >= 400, "a paused endpoint accepted a webhook: " + paused.status);
  await button("Resume").click();
  await page.locator(".subtitle .badge", { hasText: "Receiving" }).waitFor();
  await button("Delete").click();
  await h1("Inbound endpoints").waitFor();
  await page.getByRole("status").filter({ hasText: "Inbound endpoint deleted" }).waitFor();
});

await step("pull: create an endpoint, look at a held event without fetching it, acknowledge one, delete another", async () => {
  await visit("#/pull/new", "New pull endpoint", "pull-new");
  await page.getByLabel("Name").fill("held");
  await button("Create pull endpoint").click();
  await h1("Pull endpoint").waitFor();
  await page.getByRole("heading", { name: "Pull endpoint created: its ingest URL" }).waitFor();
  const ingest = (await page.locator("code.secret").first().innerText()).trim();
  const pullId = page.url().split("#/pull/")[1];
  for (const n of [1, 2]) {
    const res = await fetch(ingest, { method: "POST", headers: { "Content-Type": "application/json", "X-Note": "<i>n</i>" }, body: `{"n":${n},"html":"<b>x</b>"}` });
    check(res.status === 200, "ingest answered " + res.status);
  }
  let rows;
  await until("two events held", async () => {
    await open("#/pull/" + pullId, "Pull endpoint");
    rows = page.locator("main table:has(caption:text('Events')) tbody tr");
    return (await rows.count()) === 2;
  });
  await audit("pull-endpoint");
  const [second, first] = [await rows.nth(0).locator("code").innerText(), await rows.nth(1).locator("code").innerText()];
  await page.getByRole("link", { name: first }).click();
  await h1("Pull event").waitFor();
  await page.locator(".loading").waitFor({ state: "detached" });
  check((await page.getByLabel("Payload").innerText()).includes('"html": "<b>x</b>"'), "payload not shown as text");
  check((await page.locator(".subtitle .badge").innerText()) === "Stored", "looking fetched the event");
  await page.getByText("<i>n</i>").waitFor();
  await audit("pull-event");
  await button("Acknowledge").click();
  await page.locator(".subtitle .badge", { hasText: "Acknowledged" }).waitFor();
  await open("#/pull/" + pullId, "Pull endpoint");
  await page.getByLabel("Select " + second).check();
  await button("Delete selected").click();
  await page.getByRole("status").filter({ hasText: "Deleted 1 event." }).waitFor();
  const left = await api("GET", `/v1/pull-endpoints/${pullId}/events`);
  check(left.data.length === 1 && left.data[0].id === first && left.data[0].status === "delivered", "events left: " + JSON.stringify(left.data));
  await visit("#/pull", "Pull endpoints", "pull");
  await page.getByRole("link", { name: "held" }).waitFor();
});

await step("every page passes the accessibility check", async () => {
  check(a11y.length === 0, "serious or critical axe violations:\n  " + a11y.join("\n  "));
});

await step("no CSP violation, script error or third-party request", async () => {
  check(problems.length === 0, problems.join("\n"));
});

await step("a key the API stops accepting signs the console out, saying why", async () => {
  await page.goto(base + "/console/#/endpoints");
  await h1("Endpoints").waitFor();
  await page.evaluate(() => sessionStorage.setItem("hookd.apiKey", "hk_live_" + "0".repeat(32)));
  await page.reload();
  await h1("hookd console").waitFor();
  await page.getByRole("alert").filter({ hasText: "The API refused the key" }).waitFor();
  check((await page.evaluate(() => sessionStorage.length)) === 0, "the refused key is still stored");
  await page.getByLabel("API key").fill(key);
  await button("Sign in").click();
  await h1("Endpoints").waitFor();
});

await step("signing out clears the key", async () => {
  await page.goto(base + "/console/#/");
  await h1("Overview").waitFor();
  await button("Sign out").click();
  await h1("hookd console").waitFor();
  check((await page.evaluate(() => sessionStorage.length)) === 0, "the key is still stored");
  await page.goto(base + "/console/#/endpoints");
  await h1("hookd console").waitFor();
});

await browser.close();
console.log(`${passed} steps passed; screenshots in ${shots}`);
