import { api, session, type Schemas } from "../client";
import { h, when } from "../dom";
import { type Ctx, failed, flash, loading, show } from "../page";
import { action, alertBox, field, onSubmit, secretOnce, select, table } from "../ui";

export async function apiKeys(ctx: Ctx) {
  loading(ctx, "API keys");
  try {
    const r = await api("get", "/v1/api-keys");
    const out = alertBox();
    const mine = session.key() ?? "";
    const form = h(
      "form",
      { class: "form", "aria-label": "New API key" },
      field("Label", h("input", { name: "label", maxlength: 100, placeholder: "ci, billing-service…" })),
      field("Mode", select("mode", [["live", "live"], ["test", "test"]])),
      h("button", { type: "submit" }, "Create API key"),
      out,
    );
    onSubmit(form, out, async (v) => {
      const k = await api("post", "/v1/api-keys", { body: { label: v.label || undefined, mode: v.mode as Schemas["ApiKeyMode"] } });
      flash(secretOnce("New API key", k.data.key, "Shown only now: store it where the service that uses it can read it."));
      ctx.rerender();
    });
    show(
      ctx,
      "API keys",
      form,
      h("h2", null, "Keys"),
      table<Schemas["ApiKey"]>(
        [
          { head: "Label", cell: (k) => k.label || "—" },
          { head: "Prefix", cell: (k) => h("code", null, k.prefix + "…") },
          { head: "Mode", cell: (k) => k.mode },
          { head: "Created", cell: (k) => when(k.created_at) },
          { head: "Last used", cell: (k) => when(k.last_used_at) },
          {
            head: "Actions",
            cell: (k) =>
              mine.startsWith(k.prefix)
                ? h("span", { class: "muted" }, "This session's key")
                : action("Delete", async () => (await api("delete", "/v1/api-keys/{keyId}", { path: { keyId: k.key_id } }), ctx.rerender()), {
                    out,
                    kind: "danger small",
                    confirm: () => `Delete the key ${k.prefix}…? Services using it stop working at once.`,
                  }),
          },
        ],
        r.data,
        "No API keys.",
        "API keys",
      ),
    );
  } catch (e) {
    failed(ctx, "API keys", e);
  }
}
