// Times the console's messages page in headless Chromium: from the start
// of a full page load of #/messages to its first row on screen, and counts
// the API requests each load makes. Run by `make bench-api` (cmd/hookd-bench)
// against a hookd holding a million messages; prints one line per case.
//   HOOKD_URL, HOOKD_API_KEY, CHROMIUM as for e2e/console.mjs; ROUNDS (default 50)
import { chromium } from "playwright-core";

const base = process.env.HOOKD_URL;
const key = process.env.HOOKD_API_KEY;
const rounds = Number(process.env.ROUNDS || 50);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
// Records when the first row of the messages table appears, measured from
// the navigation's start (performance.now()'s origin).
await page.addInitScript(() => {
  new MutationObserver((_, obs) => {
    if (document.querySelector("main table tbody tr")) {
      window.__firstRow = performance.now();
      obs.disconnect();
    }
  }).observe(document, { childList: true, subtree: true });
});
let apiRequests = 0;
page.on("request", (r) => {
  if (new URL(r.url()).pathname.startsWith("/v1/")) apiRequests++;
});

await page.goto(base + "/console/");
await page.getByLabel("API key").fill(key);
await page.getByRole("button", { name: "Sign in" }).click();
await page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();

function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

for (const [name, hash] of [
  ["messages page, first page (50 rows)", "#/messages"],
  ["messages page, status=failed_permanent", "#/messages?status=failed_permanent"],
]) {
  const times = [];
  const requests = [];
  await page.goto(base + "/console/" + hash);
  for (let i = 0; i < rounds + 3; i++) {
    apiRequests = 0;
    await page.reload();
    await page.waitForFunction(() => window.__firstRow !== undefined);
    const t = await page.evaluate(() => window.__firstRow);
    const rows = await page.locator("main table tbody tr").count();
    if (rows < 1) throw new Error(name + ": no rows");
    if (i >= 3) {
      times.push(t);
      requests.push(apiRequests);
    }
  }
  console.log(
    `  ${name.padEnd(44)} p50 ${quantile(times, 0.5).toFixed(0)} ms, p99 ${quantile(times, 0.99).toFixed(0)} ms, max ${Math.max(...times).toFixed(0)} ms (${rounds} loads; ${Math.min(...requests)}-${Math.max(...requests)} API requests per load)`,
  );
}
await browser.close();
