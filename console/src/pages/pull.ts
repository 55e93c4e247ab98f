import { api, type Schemas } from "../client";
import { bytes, h, ms, pretty, when } from "../dom";
import { type Ctx, failed, flash, loading, show } from "../page";
import { action, alertBox, dl, field, onSubmit, pager, secretOnce, table } from "../ui";
import { providerBody, providerFields, receiverActions, receiving } from "./inbound";
import { headerTable } from "./messages";

const eventStates: Record<string, string> = { stored: "Stored", fetched: "Fetched", delivered: "Acknowledged" };

function eventBadge(status: string) {
  return h("span", { class: "badge s-" + (status === "delivered" ? "succeeded" : status === "fetched" ? "queued" : "paused") }, eventStates[status] ?? status);
}

export async function pullList(ctx: Ctx) {
  loading(ctx, "Pull endpoints");
  try {
    const r = await api("get", "/v1/pull-endpoints", { query: { cursor: ctx.query.cursor || undefined, limit: 50 } });
    show(
      ctx,
      "Pull endpoints",
      h("p", null, "Receive webhooks from providers and hold them until your service fetches and acknowledges them."),
      h("p", null, h("a", { href: "#/pull/new", class: "button" }, "New pull endpoint")),
      table<Schemas["PullEndpointSummary"]>(
        [
          { head: "Name", cell: (e) => h("a", { href: "#/pull/" + e.id }, e.name || e.id) },
          { head: "State", cell: (e) => receiving(e.paused) },
          { head: "Created", cell: (e) => when(e.created_at) },
        ],
        r.data,
        "No pull endpoints yet.",
        "Pull endpoints",
      ),
      pager("/pull", ctx.query, r.meta.next_cursor),
    );
  } catch (e) {
    failed(ctx, "Pull endpoints", e);
  }
}

export async function pullNew(ctx: Ctx) {
  const out = alertBox();
  const form = h(
    "form",
    { class: "form", "aria-label": "New pull endpoint" },
    field("Name", h("input", { name: "name", required: true, maxlength: 200 })),
    providerFields(),
    field("Keep events (days)", h("input", { name: "retention_days", type: "number", min: 1, max: 90, value: 7 })),
    h("button", { type: "submit" }, "Create pull endpoint"),
    out,
  );
  onSubmit(form, out, async (v) => {
    const r = await api("post", "/v1/pull-endpoints", {
      body: {
        name: v.name,
        retention_days: Number(v.retention_days || 7),
        ...providerBody(v),
      },
    });
    flash(secretOnce("Pull endpoint created: its ingest URL", r.data.ingest_url, "Give this URL to the provider. It holds a secret token and is shown only now."));
    location.hash = "#/pull/" + r.data.id;
  });
  show(ctx, "New pull endpoint", form);
}

export async function pullDetail(ctx: Ctx) {
  const id = ctx.params[0];
  loading(ctx, "Pull endpoint");
  try {
    const status = ctx.query.status as "stored" | "fetched" | "delivered" | undefined;
    const [r, evs] = await Promise.all([
      api("get", "/v1/pull-endpoints/{id}", { path: { id } }),
      api("get", "/v1/pull-endpoints/{id}/events", { path: { id }, query: { status: status || undefined, cursor: ctx.query.cursor || undefined, limit: 50 } }),
    ]);
    const e = r.data;
    const out = alertBox();
    const chosen = new Set<string>();
    const count = h("span", null, "0");
    const pick = (ev: Schemas["PullEventSummary"]) => {
      const box = h("input", { type: "checkbox", "aria-label": "Select " + ev.id });
      box.addEventListener("change", () => {
        if (box.checked) chosen.add(ev.id);
        else chosen.delete(ev.id);
        count.textContent = String(chosen.size);
      });
      return box;
    };
    const need = () => {
      if (chosen.size === 0) throw new Error("Select the events first.");
      return [...chosen];
    };
    const plural = (n: number) => `${n} event${n === 1 ? "" : "s"}`;
    show(
      ctx,
      "Pull endpoint",
      h("p", { class: "subtitle" }, e.name, " ", receiving(e.paused)),
      receiverActions(ctx, out, e, "Pull endpoint", "#/pull", {
        pause: () => api("post", "/v1/pull-endpoints/{id}/pause", { path: { id } }),
        resume: () => api("post", "/v1/pull-endpoints/{id}/resume", { path: { id } }),
        remove: () => api("delete", "/v1/pull-endpoints/{id}", { path: { id } }),
      }),
      out,
      dl([
        ["Id", h("code", null, e.id)],
        ["Ingest URL", h("code", null, e.ingest_url)],
        ["Provider", e.provider ?? "—"],
        ["Events", `${e.counts.stored} stored, ${e.counts.fetched} fetched, ${e.counts.delivered} acknowledged`],
        ["Kept", `${e.retention_days} days`],
        ["Created", when(e.created_at)],
      ]),
      h("h2", null, "Events"),
      h(
        "nav",
        { class: "tabs", "aria-label": "Event state" },
        [
          ["", "All"],
          ["stored", "Stored"],
          ["fetched", "Fetched"],
          ["delivered", "Acknowledged"],
        ].map(([s, l]) => h("a", { href: "#/pull/" + id + (s ? "?status=" + s : ""), "aria-current": (status ?? "") === s ? "page" : null }, l)),
      ),
      h(
        "div",
        { class: "toolbar" },
        action(
          "Acknowledge selected",
          async () => {
            const res = await api("post", "/v1/pull-endpoints/{id}/events/ack", { path: { id }, body: { event_ids: need() } });
            flash(`Acknowledged ${plural(res.data.acknowledged)}.`);
            ctx.rerender();
          },
          { out, kind: "primary", confirm: () => (chosen.size ? `Acknowledge ${plural(chosen.size)}?` : null) },
        ),
        action(
          "Delete selected",
          async () => {
            const res = await api("post", "/v1/pull-endpoints/{id}/events/delete-batch", { path: { id }, body: { message_ids: need() } });
            flash(`Deleted ${plural(res.data.deleted_count)}.`);
            ctx.rerender();
          },
          { out, kind: "danger", confirm: () => (chosen.size ? `Delete ${plural(chosen.size)}?` : null) },
        ),
        h("span", { class: "muted", "aria-live": "polite" }, count, " selected"),
      ),
      table<Schemas["PullEventSummary"]>(
        [
          { head: "Select", cell: pick },
          { head: "Event", cell: (ev) => h("a", { href: `#/pull/${id}/events/${ev.id}` }, h("code", null, ev.id)) },
          { head: "Type", cell: (ev) => ev.event_type ?? "—" },
          { head: "State", cell: (ev) => eventBadge(ev.status) },
          { head: "Size", cell: (ev) => bytes(ev.size_bytes), cls: "num" },
          { head: "Received", cell: (ev) => when(ev.received_at) },
        ],
        evs.data,
        "No events.",
        "Events",
      ),
      pager("/pull/" + id, ctx.query, evs.meta.next_cursor),
    );
  } catch (e) {
    failed(ctx, "Pull endpoint", e);
  }
}

export async function pullEvent(ctx: Ctx) {
  const [id, eventId] = ctx.params;
  loading(ctx, "Pull event");
  try {
    // preview: looking does not count as the service's fetch.
    const r = await api("get", "/v1/pull-endpoints/{id}/events/{eventId}", { path: { id, eventId }, query: { preview: true } });
    const ev = r.data;
    const out = alertBox();
    const payload = ev.payload_encoding === "base64" ? fromBase64(String(ev.payload)) : pretty(typeof ev.payload === "string" ? ev.payload : JSON.stringify(ev.payload));
    show(
      ctx,
      "Pull event",
      h("p", { class: "subtitle" }, h("code", null, ev.id), " ", eventBadge(ev.status)),
      h(
        "div",
        { class: "toolbar" },
        ev.status !== "delivered"
          ? action(
              "Acknowledge",
              async () => {
                await api("post", "/v1/pull-endpoints/{id}/events/ack", { path: { id }, body: { event_ids: [eventId] } });
                flash("Acknowledged.");
                ctx.rerender();
              },
              { out },
            )
          : null,
        action(
          "Delete",
          async () => {
            await api("delete", "/v1/pull-endpoints/{id}/events/{eventId}", { path: { id, eventId } });
            flash("Event deleted.");
            location.hash = "#/pull/" + id;
          },
          { out, kind: "danger", confirm: () => "Delete this event?" },
        ),
      ),
      out,
      dl([
        ["Pull endpoint", h("a", { href: "#/pull/" + id }, h("code", null, id))],
        ["Type", ev.event_type ?? "—"],
        ["Received", when(ev.received_at)],
        ["Fetched", when(ev.fetched_at)],
        ["Acknowledged", when(ev.delivered_at)],
        ["Received → acknowledged", ms(ev.timing.total_lifecycle_ms)],
        ["Size", `${ev.size_bytes} bytes, ${ev.content_type}`],
      ]),
      h("h2", null, "Payload"),
      h("pre", { class: "code", tabindex: 0, "aria-label": "Payload" }, payload),
      h("h2", null, "Headers"),
      headerTable(ev.headers, "Headers"),
    );
  } catch (e) {
    failed(ctx, "Pull event", e);
  }
}

// fromBase64 shows a payload the API sent as base64 (bytes it could not
// embed unchanged): as text when they are UTF-8, else as base64.
function fromBase64(b64: string): string {
  try {
    const bin = atob(b64);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    return pretty(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return "(binary, shown as base64) " + b64;
  }
}
