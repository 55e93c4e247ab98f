import { api, type Schemas } from "../client";
import { h, ms, pretty, when } from "../dom";
import { type Ctx, failed, flash, loading, show } from "../page";
import { action, alertBox, dl, field, formValues, link, onSubmit, pager, replaySummary, secretOnce, select, statusBadge, table } from "../ui";
import { attemptCard, statuses } from "./messages";

// providers are the presets of the provider checks (inbound and pull).
export const providers: [string, string][] = [
  ["", "None (any sender)"],
  ["stripe", "Stripe"],
  ["github", "GitHub"],
  ["shopify", "Shopify"],
  ["standard_webhooks", "Standard Webhooks / Svix"],
];

// providerFields are a new inbound or pull endpoint's provider preset and
// the provider's secret; providerBody is what they add to its request.
export function providerFields() {
  return [
    field("Provider", select("provider", providers), "Fills in the provider's signature check."),
    field("Provider's signing secret", h("input", { name: "hmac_secret", type: "password", autocomplete: "off" }), "Needed with a provider."),
  ];
}

export function providerBody(v: Record<string, string>) {
  return v.provider ? { provider: v.provider as Schemas["InboundProvider"], verify_hmac: true, hmac_secret: v.hmac_secret } : {};
}

// receiving says whether an inbound or pull endpoint takes webhooks now.
export function receiving(paused: boolean) {
  return paused ? h("span", { class: "badge s-paused" }, "Paused") : h("span", { class: "badge s-succeeded" }, "Receiving");
}

// receiverActions are the pause or resume and delete buttons of an inbound
// or pull endpoint's page (what names it; back is the list to go to after
// a delete).
export function receiverActions(
  ctx: Ctx,
  out: ReturnType<typeof alertBox>,
  e: { name: string; paused: boolean },
  what: string,
  back: string,
  call: { pause: () => Promise<unknown>; resume: () => Promise<unknown>; remove: () => Promise<unknown> },
) {
  return h(
    "div",
    { class: "toolbar" },
    e.paused ? action("Resume", async () => (await call.resume(), ctx.rerender()), { out }) : action("Pause", async () => (await call.pause(), ctx.rerender()), { out }),
    action(
      "Delete",
      async () => {
        await call.remove();
        flash(`${what} deleted.`);
        location.hash = back;
      },
      { out, kind: "danger", confirm: () => `Delete ${e.name}? Its ingest URL stops accepting webhooks.` },
    ),
  );
}

function modeName(m: string) {
  return m === "forward" ? "Forward" : m === "cli" ? "CLI (hookd listen)" : m === "pull" ? "Pull" : m;
}

export async function inboundList(ctx: Ctx) {
  loading(ctx, "Inbound endpoints");
  try {
    const r = await api("get", "/v1/inbound-endpoints", { query: { cursor: ctx.query.cursor || undefined, limit: 50 } });
    show(
      ctx,
      "Inbound endpoints",
      h("p", null, "Receive webhooks from providers at an ingest URL, verify them, and forward them to your service."),
      h("p", null, h("a", { href: "#/inbound/new", class: "button" }, "New inbound endpoint"), " ", h("a", { href: "#/rejections" }, "Rejected requests")),
      table<Schemas["InboundEndpointSummary"]>(
        [
          { head: "Name", cell: (e) => h("a", { href: "#/inbound/" + e.id }, e.name || e.id) },
          { head: "Mode", cell: (e) => modeName(e.mode) },
          { head: "Forwards to", cell: (e) => e.url || "—" },
          { head: "State", cell: (e) => receiving(e.paused) },
          { head: "Created", cell: (e) => when(e.created_at) },
        ],
        r.data,
        "No inbound endpoints yet.",
        "Inbound endpoints",
      ),
      pager("/inbound", ctx.query, r.meta.next_cursor),
    );
  } catch (e) {
    failed(ctx, "Inbound endpoints", e);
  }
}

export async function inboundNew(ctx: Ctx) {
  const out = alertBox();
  const form = h(
    "form",
    { class: "form", "aria-label": "New inbound endpoint" },
    field("Name", h("input", { name: "name", required: true, maxlength: 200 })),
    field("Mode", select("mode", [["forward", "Forward to a URL"], ["cli", "CLI (hookd listen)"]])),
    field("Forward to URL", h("input", { name: "url", type: "url", placeholder: "https://example.com/stripe" }), "Needed in forward mode."),
    providerFields(),
    field("Sign forwarded requests", h("input", { name: "signing_enabled", type: "checkbox", value: "on" })),
    h("button", { type: "submit" }, "Create inbound endpoint"),
    out,
  );
  onSubmit(form, out, async (v) => {
    const r = await api("post", "/v1/inbound-endpoints", {
      body: {
        name: v.name,
        mode: v.mode as Schemas["InboundMode"],
        ...(v.url ? { url: v.url } : {}),
        ...providerBody(v),
        signing_enabled: v.signing_enabled === "on",
      },
    });
    const d = r.data;
    // Shown on the next page drawn, whichever it is, so a navigation
    // during the request cannot lose them.
    flash(
      h(
        "div",
        null,
        secretOnce("Inbound endpoint created: its ingest URL", d.ingest_url, "Give this URL to the provider. It holds a secret token and is shown only now."),
        d.signing_secret ? secretOnce("Signing secret", d.signing_secret, "Forwarded requests are signed with it; shown only now.") : null,
      ),
    );
    location.hash = "#/inbound/" + d.id;
  });
  show(ctx, "New inbound endpoint", form);
}

export async function inboundDetail(ctx: Ctx) {
  const id = ctx.params[0];
  loading(ctx, "Inbound endpoint");
  try {
    const [r, logs, rej] = await Promise.all([
      api("get", "/v1/inbound-endpoints/{id}", { path: { id } }),
      api("get", "/v1/inbound-logs", { query: { inbound_endpoint_id: id, limit: 20 } }),
      api("get", "/v1/inbound-rejections", { query: { inbound_endpoint_id: id, limit: 5 } }),
    ]);
    const e = r.data;
    const out = alertBox();
    const checks = [
      e.verify_static_token ? "static token" : "",
      e.verify_hmac ? `HMAC ${e.hmac_algorithm} in ${e.hmac_header_name ?? "?"}` : "",
      e.timestamp_header_name ? `timestamp within ${e.timestamp_ttl_seconds ?? "?"} s` : "",
      e.verify_ip_allowlist ? `addresses ${e.allowed_cidrs.join(", ")}` : "",
    ].filter(Boolean);
    show(
      ctx,
      "Inbound endpoint",
      h("p", { class: "subtitle" }, e.name, " ", receiving(e.paused)),
      receiverActions(ctx, out, e, "Inbound endpoint", "#/inbound", {
        pause: () => api("post", "/v1/inbound-endpoints/{id}/pause", { path: { id } }),
        resume: () => api("post", "/v1/inbound-endpoints/{id}/resume", { path: { id } }),
        remove: () => api("delete", "/v1/inbound-endpoints/{id}", { path: { id } }),
      }),
      out,
      dl([
        ["Id", h("code", null, e.id)],
        ["Mode", modeName(e.mode)],
        ["Ingest URL", h("code", null, e.ingest_url)],
        ["Forwards to", e.url || "—"],
        ["Provider", e.provider ?? "—"],
        ["Checks", checks.length ? checks.join("; ") : "none"],
        ["De-duplicates by", e.idempotency_header_names.length ? e.idempotency_header_names.join(", ") : "—"],
        ["Answers providers with", String(e.ingest_response_code)],
        ["Expires", when(e.expires_at)],
        ["Created", when(e.created_at)],
      ]),
      h("h2", null, "Latest received messages"),
      receivedTable(logs.data),
      h("p", null, h("a", { href: "#/inbound/" + id + "/messages" }, "All received messages")),
      h("h2", null, "Latest rejections"),
      rejectionTable(rej.data),
      h("p", null, h("a", { href: link("/rejections", { inbound_endpoint_id: id }) }, "All rejections of this endpoint")),
    );
  } catch (e) {
    failed(ctx, "Inbound endpoint", e);
  }
}

function receivedTable(rows: Schemas["InboundLogEntry"][]) {
  return table<Schemas["InboundLogEntry"]>(
    [
      { head: "Message", cell: (m) => h("a", { href: "#/inbound-messages/" + m.message_id }, h("code", null, m.message_id)) },
      { head: "Status", cell: (m) => statusBadge(m.status) },
      { head: "Attempts", cell: (m) => String(m.attempt_count), cls: "num" },
      { head: "Response", cell: (m) => (m.response_status ? String(m.response_status) : (m.last_error ?? "—")) },
      { head: "Received → delivered", cell: (m) => ms(m.total_delivery_ms) },
      { head: "Received", cell: (m) => when(m.received_at) },
    ],
    rows,
    "Nothing received.",
    "Received messages",
  );
}

// A received message is held as paused by a cli-mode or a paused endpoint.
const inboundStatuses = statuses.map(([v, l]): [string, string] => [v, v === "paused" ? "Held (cli mode or paused)" : l]);

// inboundMessages lists everything an inbound endpoint received, by status,
// with cursor pages.
export async function inboundMessages(ctx: Ctx) {
  const id = ctx.params[0];
  const q = ctx.query;
  loading(ctx, "Received messages");
  try {
    const [ie, logs] = await Promise.all([
      api("get", "/v1/inbound-endpoints/{id}", { path: { id } }),
      api("get", "/v1/inbound-logs", {
        query: { inbound_endpoint_id: id, status: (q.status || undefined) as Schemas["MessageStatus"] | undefined, cursor: q.cursor || undefined, limit: 50 },
      }),
    ]);
    const form = h("form", { class: "filters", "aria-label": "Filter received messages" }, field("Status", select("status", inboundStatuses, q.status ?? "")), h("button", { type: "submit" }, "Filter"));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      location.hash = link("/inbound/" + id + "/messages", { status: formValues(form).status });
    });
    show(
      ctx,
      "Received messages",
      h("p", { class: "subtitle" }, h("a", { href: "#/inbound/" + id }, ie.data.name)),
      form,
      receivedTable(logs.data),
      pager("/inbound/" + id + "/messages", q, logs.meta.next_cursor),
    );
  } catch (e) {
    failed(ctx, "Received messages", e);
  }
}

function rejectionTable(rows: Schemas["InboundRejection"][]) {
  return table<Schemas["InboundRejection"]>(
    [
      { head: "Received", cell: (r) => when(r.received_at) },
      { head: "Endpoint", cell: (r) => (r.inbound_endpoint_id ? h("a", { href: "#/inbound/" + r.inbound_endpoint_id }, h("code", null, r.inbound_endpoint_id)) : "—") },
      { head: "Reason", cell: (r) => h("code", null, r.reason_code) },
      { head: "Detail", cell: (r) => r.reason_detail ?? "—" },
      { head: "Source", cell: (r) => r.source_ip ?? "—" },
      {
        head: "Headers",
        cell: (r) => (r.headers_redacted ? h("details", null, h("summary", null, "Show"), h("pre", { class: "code" }, pretty(r.headers_redacted))) : "—"),
      },
    ],
    rows,
    "No rejected requests.",
    "Rejected requests",
  );
}

export async function rejections(ctx: Ctx) {
  loading(ctx, "Rejected requests");
  try {
    const r = await api("get", "/v1/inbound-rejections", {
      query: { inbound_endpoint_id: ctx.query.inbound_endpoint_id || undefined, cursor: ctx.query.cursor || undefined, limit: 50 },
    });
    show(
      ctx,
      "Rejected requests",
      h("p", null, "Requests to ingest URLs that failed a check, kept for a week, with credentials in their headers redacted."),
      rejectionTable(r.data),
      pager("/rejections", ctx.query, r.meta.next_cursor),
    );
  } catch (e) {
    failed(ctx, "Rejected requests", e);
  }
}

export async function inboundMessage(ctx: Ctx) {
  const id = ctx.params[0];
  loading(ctx, "Received message");
  try {
    const [r, at] = await Promise.all([
      api("get", "/v1/inbound-messages/{id}", { path: { id } }),
      api("get", "/v1/inbound-messages/{id}/attempts", { path: { id } }),
    ]);
    const m = r.data;
    const out = alertBox();
    show(
      ctx,
      "Received message",
      h("p", { class: "subtitle" }, h("code", null, m.id), " ", statusBadge(m.status)),
      h(
        "div",
        { class: "toolbar" },
        m.status === "succeeded" || m.status === "failed_permanent"
          ? action(
              "Replay",
              async () => {
                const res = await api("post", "/v1/inbound-messages/{id}/replay", { path: { id } });
                flash(replaySummary(res.data));
                ctx.rerender();
              },
              { out },
            )
          : null,
        action(
          "Delete",
          async () => {
            await api("delete", "/v1/inbound-messages/{id}", { path: { id } });
            location.hash = "#/inbound/" + m.inbound_endpoint_id;
          },
          { out, kind: "danger", confirm: () => "Delete this received message?" },
        ),
      ),
      out,
      dl([
        ["Inbound endpoint", h("a", { href: "#/inbound/" + m.inbound_endpoint_id }, h("code", null, m.inbound_endpoint_id))],
        ["Received", when(m.received_at)],
        ["Delivered", when(m.delivered_at)],
        ["Received → delivered", ms(m.total_delivery_ms)],
        ["Attempts", String(m.attempt_count)],
        ["Last error", m.last_error ?? "—"],
        ["Size", `${m.size_bytes} bytes, ${m.content_type}`],
        ["Idempotency key", m.idempotency_key ?? "—"],
      ]),
      h("h2", null, "Forwarding attempts"),
      at.data.length ? at.data.map(attemptCard) : h("p", { class: "empty" }, "No attempts yet."),
    );
  } catch (e) {
    failed(ctx, "Received message", e);
  }
}
