// Verifies deliveries that hookd made with the Standard Webhooks scheme,
// using the standardwebhooks and svix npm packages' own verifiers. The Go
// test TestStandardWebhooksThirdPartyVerifiers writes the deliveries a real
// receiver got to a JSON file: [{secret, headers: {name: value}, body: base64}].
// Every delivery must verify with both libraries; the same delivery with
// one more body byte, or checked with another secret, must be refused.
// Prints {"verified": n, "refused": m} on success; exits 1 otherwise.
import { readFileSync } from "node:fs";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { Webhook as SvixWebhook } from "svix";

const deliveries = JSON.parse(readFileSync(process.argv[2], "utf8"));
const otherSecret = "whsec_" + Buffer.from("not the endpoint's secret").toString("base64");
let verified = 0;
let refused = 0;
const failures = [];

const libraries = [
  ["standardwebhooks", (secret) => new StandardWebhook(secret)],
  ["svix", (secret) => new SvixWebhook(secret)],
];

for (const [i, d] of deliveries.entries()) {
  const headers = Object.fromEntries(Object.entries(d.headers).map(([k, v]) => [k.toLowerCase(), v]));
  const body = Buffer.from(d.body, "base64").toString("utf8");
  for (const [name, make] of libraries) {
    try {
      make(d.secret).verify(body, headers);
      verified++;
    } catch (err) {
      failures.push(`delivery ${i}: ${name} refused a genuine delivery: ${err.message}`);
    }
    for (const [what, secret, payload] of [
      ["a changed body", d.secret, body + " "],
      ["another secret", otherSecret, body],
    ]) {
      try {
        make(secret).verify(payload, headers);
        failures.push(`delivery ${i}: ${name} accepted ${what}`);
      } catch {
        refused++;
      }
    }
  }
}

if (failures.length > 0) {
  console.error(failures.join("\n"));
  process.exit(1);
}
console.log(JSON.stringify({ verified, refused }));
