import { api, type Schemas } from "../client";
import { h, ms, num, pct, when } from "../dom";
import { type Ctx, failed, flash, loading, show } from "../page";
import { messageTable } from "./messages";
import { endpointTable, health } from "./overview";
import { action, alertBox, csv, dl, field, onSubmit, pager, secretOnce, select, table } from "../ui";

export async function endpointList(ctx: Ctx) {
  loading(ctx, "Endpoints");
  try {
    const r = await api("get", "/v1/endpoints", { query: { cursor: ctx.query.cursor || undefined, limit: 50 } });
    show(
      ctx,
      "Endpoints",
      h("p", null, h("a", { href: "#/endpoints/new", class: "button" }, "New endpoint")),
      endpointTable(r.data, "No endpoints yet. Create one to send messages to it.", "Endpoints"),
      pager("/endpoints", ctx.query, r.meta.next_cursor),
    );
  } catch (e) {
    failed(ctx, "Endpoints", e);
  }
}

const schemes: [string, string][] = [
  ["hookbridge", "HookBridge (X-Webhook-Signature)"],
  ["standard_webhooks", "Standard Webhooks (webhook-signature)"],
];

// endpointFields are the inputs of the create and edit forms.
function endpointFields(e?: Schemas["Endpoint"]) {
  return [
    field("URL", h("input", { name: "url", type: "url", required: true, value: e?.url ?? "", placeholder: "https://example.com/webhooks", autocomplete: "off" })),
    field("Description", h("input", { name: "description", value: e?.description ?? "", maxlength: 500 })),
    field("Signature scheme", select("signature_scheme", schemes, e?.signature_scheme ?? "hookbridge")),
    field("Event types", h("input", { name: "event_types", value: (e?.event_types ?? []).join(", ") }), "Comma-separated, wildcards like order.* allowed; empty receives every type."),
    field("Owner id", h("input", { name: "owner_id", value: e?.owner_id ?? "", maxlength: 255 }), "Your own customer's id, to publish events to their endpoints only."),
    field("Rate limit (requests per second)", h("input", { name: "rate_limit_rps", type: "number", min: 0, value: e?.rate_limit_rps || "" }), "Empty: no limit."),
  ];
}

// endpointBody is the create or PATCH body of the form's values. On
// PATCH an emptied field is sent empty, so it clears (no owner, no limit).
function endpointBody(v: Record<string, string>, patch: boolean) {
  return {
    url: v.url,
    description: v.description,
    signature_scheme: v.signature_scheme as Schemas["SignatureScheme"],
    event_types: csv(v.event_types),
    ...(v.owner_id || patch ? { owner_id: v.owner_id } : {}),
    ...(v.rate_limit_rps || patch ? { rate_limit_rps: Number(v.rate_limit_rps || 0) } : {}),
  };
}

export async function endpointNew(ctx: Ctx) {
  const out = alertBox();
  const form = h(
    "form",
    { class: "form", "aria-label": "New endpoint" },
    endpointFields(),
    field("Sign deliveries", h("input", { name: "hmac_enabled", type: "checkbox", checked: true, value: "on" })),
    h("button", { type: "submit" }, "Create endpoint"),
    out,
  );
  onSubmit(form, out, async (v) => {
    const r = await api("post", "/v1/endpoints", { body: { ...endpointBody(v, false), hmac_enabled: v.hmac_enabled === "on" } });
    const d = r.data;
    // Shown on the next page drawn, whichever it is: the secret is never
    // lost to a navigation during the request.
    flash(
      d.signing_secret
        ? secretOnce("Endpoint created: its signing secret", d.signing_secret, "This secret is shown only now. Give it to the receiver so it can check signatures.")
        : "Endpoint created.",
    );
    location.hash = "#/endpoints/" + d.id;
  });
  show(ctx, "New endpoint", form);
}

export async function endpointDetail(ctx: Ctx) {
  const id = ctx.params[0];
  loading(ctx, "Endpoint");
  try {
    const [r, keys, stats, msgs] = await Promise.all([
      api("get", "/v1/endpoints/{id}", { path: { id } }),
      api("get", "/v1/endpoints/{id}/signing-keys", { path: { id } }),
      api("get", "/v1/metrics", { query: { window: "24h", endpoint_id: id } }),
      api("get", "/v1/logs", { query: { endpoint_id: id, limit: 10 } }),
    ]);
    const e = r.data;
    const out = alertBox();
    const formOut = alertBox();
    const form = h("form", { class: "form", "aria-label": "Edit endpoint" }, endpointFields(e), h("button", { type: "submit" }, "Save changes"), formOut);
    onSubmit(form, formOut, async (v) => {
      await api("patch", "/v1/endpoints/{id}", { path: { id }, body: endpointBody(v, true) });
      flash("Saved.");
      ctx.rerender();
    });
    const keyOut = alertBox();
    const s = stats.data;
    show(
      ctx,
      "Endpoint",
      h("p", { class: "subtitle" }, e.description ? e.description + " · " : "", e.url, " ", health({ ...e, created_at: e.created_at })),
      h(
        "div",
        { class: "toolbar" },
        e.paused
          ? action("Resume", async () => (await api("post", "/v1/endpoints/{id}/resume", { path: { id } }), ctx.rerender()), { out })
          : action("Pause", async () => (await api("post", "/v1/endpoints/{id}/pause", { path: { id } }), ctx.rerender()), { out }),
        action(
          "Delete endpoint",
          async () => {
            await api("delete", "/v1/endpoints/{id}", { path: { id } });
            location.hash = "#/endpoints";
          },
          { out, kind: "danger", confirm: () => `Delete the endpoint ${e.url}? Its messages stop being delivered.` },
        ),
        h("a", { href: "#/messages?endpoint_id=" + encodeURIComponent(id) }, "All its messages"),
      ),
      out,
      dl([
        ["Id", h("code", null, e.id)],
        ["Description", e.description || "—"],
        ["Signature scheme", e.signature_scheme],
        ["Signing", e.hmac_enabled ? "on" : "off"],
        ["Authentication", e.auth ? `${e.auth.type} (${e.auth.hint})` : "none"],
        ["Event types", e.event_types.length ? e.event_types.join(", ") : "every type"],
        ["Owner id", e.owner_id ?? "—"],
        ["Ordering", e.ordering],
        ["Consecutive failures", String(e.consecutive_failures)],
        ["Disabled", e.disabled_at ? `${when(e.disabled_at)}: ${e.disabled_reason ?? ""}` : "no"],
        ["Created", when(e.created_at)],
      ]),
      h("h2", null, "Last 24 hours"),
      h(
        "div",
        { class: "cards" },
        h("div", { class: "card" }, h("div", { class: "card-label" }, "Messages"), h("div", { class: "card-value" }, num(s.total_messages))),
        h("div", { class: "card" }, h("div", { class: "card-label" }, "Success rate"), h("div", { class: "card-value" }, s.succeeded + s.failed ? pct(s.success_rate) : "—")),
        h("div", { class: "card" }, h("div", { class: "card-label" }, "Average latency"), h("div", { class: "card-value" }, s.succeeded ? ms(s.avg_latency_ms) : "—")),
        h("div", { class: "card" }, h("div", { class: "card-label" }, "Retries"), h("div", { class: "card-value" }, num(s.retries))),
      ),
      h("h2", null, "Signing keys"),
      table(
        [
          { head: "Key", cell: (k) => h("code", null, k.key_hint) },
          { head: "Id", cell: (k) => h("code", null, k.id) },
          { head: "Created", cell: (k) => when(k.created_at) },
          {
            head: "Actions",
            // (an endpoint keeps at least one key)
            cell: (k) =>
              keys.data.length < 2
                ? h("span", { class: "muted" }, "The only key")
                : action(
                "Delete key",
                async () => (await api("delete", "/v1/endpoints/{id}/signing-keys/{keyId}", { path: { id, keyId: k.id } }), ctx.rerender()),
                { out: keyOut, kind: "danger small", confirm: () => `Delete the signing key ${k.key_hint}?` },
              ),
          },
        ],
        keys.data,
        "No signing keys.",
        "Signing keys",
      ),
      h(
        "div",
        { class: "toolbar" },
        keys.data.length >= 2
          ? h("span", { class: "muted" }, "An endpoint has at most two keys: delete the old one once receivers use the new one.")
          : action(
          "Add signing key",
          async () => {
            const k = await api("post", "/v1/endpoints/{id}/signing-keys", { path: { id } });
            flash(secretOnce("New signing secret", k.data.signing_secret, "Shown only now. Deliveries are signed with every active key until you delete the old one."));
            ctx.rerender();
          },
          { out: keyOut },
        ),
      ),
      keyOut,
      h("h2", null, "Latest messages"),
      messageTable(msgs.data, false),
      h("h2", null, "Edit"),
      form,
    );
  } catch (e) {
    failed(ctx, "Endpoint", e);
  }
}
