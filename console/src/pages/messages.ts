import { api, raw, url, type Schemas } from "../client";
import { h, ms, pretty, when } from "../dom";
import { type Ctx, failed, flash, loading, show } from "../page";
import { action, alertBox, copyButton, dl, errorText, field, formValues, isoFromLocal, link, pager, select, statusBadge, table } from "../ui";

type Summary = Schemas["MessageSummary"];

export function messageTable(rows: Summary[], withEndpoint = true, pick?: (m: Summary) => HTMLElement, act?: (m: Summary) => HTMLElement): HTMLElement {
  return table<Summary>(
    [
      ...(pick ? [{ head: "Select", cell: pick }] : []),
      { head: "Message", cell: (m) => h("a", { href: "#/messages/" + m.message_id }, h("code", null, m.message_id)) },
      ...(withEndpoint ? [{ head: "Endpoint", cell: (m: Summary) => h("a", { href: "#/endpoints/" + m.endpoint_id }, m.endpoint) }] : []),
      { head: "Status", cell: (m) => statusBadge(m.status) },
      { head: "Event type", cell: (m) => m.event_type ?? "—" },
      { head: "Attempts", cell: (m) => String(m.attempt_count), cls: "num" },
      { head: "Response", cell: (m) => (m.response_status ? String(m.response_status) : (m.last_error ?? "—")) },
      { head: "Latency", cell: (m) => ms(m.response_latency_ms), cls: "num" },
      { head: "Created", cell: (m) => when(m.created_at) },
      ...(act ? [{ head: "Actions", cell: act }] : []),
    ],
    rows,
    "No messages match.",
    "Messages",
  );
}

// statuses are the message statuses a log filters by, with their labels.
export const statuses: [string, string][] = [
  ["", "Any status"],
  ["queued", "Queued"],
  ["delivering", "Delivering"],
  ["succeeded", "Delivered"],
  ["pending_retry", "Retrying"],
  ["failed_permanent", "Failed"],
  ["paused", "Paused"],
];

function localValue(iso: string | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d.getTime())) return "";
  const off = d.getTimezoneOffset() * 60000;
  return new Date(d.getTime() - off).toISOString().slice(0, 16);
}

export async function messageList(ctx: Ctx) {
  const q = ctx.query;
  loading(ctx, "Messages");
  try {
    const [r, eps] = await Promise.all([
      api("get", "/v1/logs", {
        query: {
          status: (q.status || undefined) as Schemas["MessageStatus"] | undefined,
          endpoint_id: q.endpoint_id || undefined,
          event_type: q.event_type || undefined,
          start_time: q.start_time || undefined,
          end_time: q.end_time || undefined,
          cursor: q.cursor || undefined,
          limit: 50,
        },
      }),
      api("get", "/v1/endpoints", { query: { limit: 100 } }),
    ]);
    // A list of the endpoints to choose from, or, when there are more
    // than one page of them, a field for the endpoint's id.
    const endpointOptions: [string, string][] = [["", "Any endpoint"], ...eps.data.map((e): [string, string] => [e.id, e.description ? `${e.url} — ${e.description}` : e.url])];
    if (q.endpoint_id && !eps.data.some((e) => e.id === q.endpoint_id)) endpointOptions.push([q.endpoint_id, q.endpoint_id]);
    const endpointInput = eps.meta.has_more
      ? h("input", { name: "endpoint_id", value: q.endpoint_id ?? "", placeholder: "ep_…", autocomplete: "off" })
      : select("endpoint_id", endpointOptions, q.endpoint_id ?? "");
    const form = h(
      "form",
      { class: "filters", "aria-label": "Filter messages" },
      field("Status", select("status", statuses, q.status ?? "")),
      field("Endpoint", endpointInput),
      field("Event type", h("input", { name: "event_type", value: q.event_type ?? "", placeholder: "order.created" })),
      field("From", h("input", { name: "start_time", type: "datetime-local", value: localValue(q.start_time) })),
      field("To", h("input", { name: "end_time", type: "datetime-local", value: localValue(q.end_time) })),
      h("button", { type: "submit" }, "Filter"),
      h("a", { href: "#/messages" }, "Clear"),
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const v = formValues(form);
      location.hash = link("/messages", {
        status: v.status,
        endpoint_id: v.endpoint_id,
        event_type: v.event_type,
        start_time: isoFromLocal(v.start_time) ?? "",
        end_time: isoFromLocal(v.end_time) ?? "",
      });
    });
    const byId = h(
      "form",
      { class: "filters", "aria-label": "Open a message by id" },
      field("Message id", h("input", { name: "id", required: true, placeholder: "01…", autocomplete: "off", spellcheck: "false" })),
      h("button", { type: "submit", class: "secondary" }, "Open"),
    );
    byId.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const id = formValues(byId).id;
      if (id) location.hash = "#/messages/" + encodeURIComponent(id);
    });
    show(ctx, "Messages", form, byId, messageTable(r.data), pager("/messages", q, r.meta.next_cursor));
  } catch (e) {
    failed(ctx, "Messages", e);
  }
}

const phases = [
  ["dns_ms", "DNS"],
  ["tcp_connect_ms", "Connect"],
  ["tls_handshake_ms", "TLS"],
  ["ttfb_ms", "First byte"],
  ["transfer_ms", "Transfer"],
] as const;

// timingBar draws an attempt's phases side by side, each as wide as its
// share of the attempt, with the numbers in words beside it.
function timingBar(a: Schemas["Attempt"]): HTMLElement {
  const t = a.timings;
  const total = phases.reduce((sum, [k]) => sum + (t[k] ?? 0), 0);
  const bar = h("div", { class: "timing", role: "img", "aria-label": "Timing: " + phases.map(([k, l]) => `${l} ${ms(t[k])}`).join(", ") });
  for (const [k, l] of phases) {
    const v = t[k];
    if (!v || total <= 0) continue;
    const seg = h("span", { class: "seg seg-" + k, title: `${l}: ${ms(v)}` });
    seg.style.width = Math.max(0.5, (v / total) * 100).toFixed(2) + "%";
    bar.appendChild(seg);
  }
  const legend = h(
    "ul",
    { class: "legend" },
    phases.map(([k, l]) => h("li", null, h("span", { class: "swatch seg-" + k }), `${l} ${ms(t[k])}`)),
  );
  return h("div", { class: "timing-wrap" }, bar, legend);
}

export function headerTable(hs: Record<string, string>, caption: string) {
  return table(
    [
      { head: "Header", cell: ([k]: [string, string]) => h("code", null, k) },
      { head: "Value", cell: ([, v]: [string, string]) => h("code", { class: "wrap" }, v) },
    ],
    Object.entries(hs).sort(([a], [b]) => a.localeCompare(b)),
    "None.",
    caption,
  );
}

export function attemptCard(a: Schemas["Attempt"]): HTMLElement {
  return h(
    "section",
    { class: "attempt", "aria-label": "Attempt " + a.attempt_no },
    h(
      "h3",
      null,
      `Attempt ${a.attempt_no}: `,
      a.outcome === "success" ? "delivered" : a.outcome === "retryable" ? "failed, retried" : "failed for good",
      a.response_status ? ` (HTTP ${a.response_status})` : "",
    ),
    dl([
      ["Started", when(a.started_at)],
      ["Duration", ms(a.duration_ms)],
      ["Address", a.resolved_ip ?? "—"],
      ["Connection", a.conn_reused ? "reused" : "new"],
      ...(a.retry_type ? ([["Next attempt", `${a.retry_type} retry track${a.retry_after_seconds ? `, after ${a.retry_after_seconds} s` : ""}`]] as [string, string][]) : []),
    ]),
    timingBar(a),
    a.error_text ? h("p", { class: "error-text" }, "Error: ", a.error_text) : null,
    h("details", null, h("summary", null, "Request headers"), headerTable(a.request_headers, "Request headers")),
    h("details", null, h("summary", null, "Response headers"), headerTable(a.response_headers, "Response headers")),
    h(
      "details",
      { open: !!a.response_body },
      h("summary", null, "Response body" + (a.response_body_truncated ? " (truncated)" : "")),
      a.response_body ? h("pre", { class: "code" }, a.response_body) : h("p", { class: "empty" }, "Empty."),
    ),
  );
}

export async function messageDetail(ctx: Ctx) {
  const id = ctx.params[0];
  loading(ctx, "Message");
  try {
    const [r, at] = await Promise.all([
      api("get", "/v1/messages/{id}", { path: { id } }),
      api("get", "/v1/messages/{id}/attempts", { path: { id } }),
    ]);
    // The endpoint's URL beside its id (none once the endpoint is deleted).
    const endpointURL = await api("get", "/v1/endpoints/{id}", { path: { id: r.data.endpoint_id } }).then(
      (e) => e.data.url,
      () => "",
    );
    let payload: string;
    try {
      payload = pretty(await (await raw("get", url("/v1/messages/{id}/payload", { id }))).text());
    } catch (e) {
      payload = "The payload is not available: " + errorText(e);
    }
    const m = r.data;
    const out = alertBox();
    const act = (label: string, f: () => Promise<{ message?: string } | undefined>, confirm?: string) =>
      action(
        label,
        async () => {
          const res = await f();
          flash(res?.message ?? label + ": done.");
          ctx.rerender();
        },
        { out, confirm: confirm ? () => confirm : undefined },
      );
    // The actions the message's status allows (the API still has the last
    // word: a refusal, say after someone else acted, is shown in words).
    const waiting = m.status === "pending_retry";
    const finished = m.status === "succeeded" || m.status === "failed_permanent";
    show(
      ctx,
      "Message",
      h("p", { class: "subtitle" }, h("code", null, m.id), " ", statusBadge(m.status)),
      h(
        "div",
        { class: "toolbar" },
        waiting ? act("Retry now", () => api("post", "/v1/messages/{id}/retry-now", { path: { id } })) : null,
        waiting ? act("Cancel", () => api("post", "/v1/messages/{id}/cancel", { path: { id } }), "Cancel this message? It will not be delivered.") : null,
        finished ? act("Replay", () => api("post", "/v1/messages/{id}/replay", { path: { id } })) : null,
        action(
          "Delete",
          async () => {
            await api("delete", "/v1/messages/{id}", { path: { id } });
            flash("Message deleted.");
            location.hash = "#/messages";
          },
          { out, kind: "danger", confirm: () => "Delete this message and its payload?" },
        ),
      ),
      out,
      dl([
        ["Endpoint", h("span", null, h("a", { href: "#/endpoints/" + m.endpoint_id }, endpointURL || m.endpoint_id), endpointURL ? [" ", h("code", null, m.endpoint_id)] : null)],
        ["Event", m.event_type ? `${m.event_type} (${m.event_id ?? ""})` : "—"],
        ["Attempts", String(m.attempt_count)],
        ["Replays", String(m.replay_count)],
        ["Next attempt", when(m.next_attempt_at)],
        ["Waiting behind", m.waiting_behind ? h("a", { href: "#/messages/" + m.waiting_behind }, m.waiting_behind) : "—"],
        ["Last error", m.last_error ?? "—"],
        ["Created", when(m.created_at)],
        ["Delivered", when(m.delivered_at)],
        ["Idempotency key", m.idempotency_key ?? "—"],
        ["Size", `${m.size_bytes} bytes, ${m.content_type}`],
      ]),
      h("h2", null, "Payload ", copyButton(() => payload, "Copy payload")),
      h("pre", { class: "code", tabindex: 0, "aria-label": "Payload" }, payload),
      h("h2", null, "Attempts"),
      at.data.length ? at.data.map(attemptCard) : h("p", { class: "empty" }, "No attempts yet."),
    );
  } catch (e) {
    failed(ctx, "Message", e);
  }
}
