import { api, type Schemas } from "../client";
import { h, pretty, when } from "../dom";
import { type Ctx, failed, flash, loading, show } from "../page";
import { action, alertBox, dl, errorText, field, onSubmit, pager, table } from "../ui";

// parseSchema reads the schema field: undefined when empty, a refusal in
// words when it is not JSON.
function parseSchema(text: string | undefined): Record<string, never> | undefined {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as Record<string, never>;
  } catch (e) {
    throw new Error("The schema is not JSON: " + errorText(e));
  }
}

export async function eventTypes(ctx: Ctx) {
  loading(ctx, "Event types");
  try {
    const r = await api("get", "/v1/event-types", { query: { cursor: ctx.query.cursor || undefined, limit: 50 } });
    const out = alertBox();
    const listOut = alertBox();
    const form = h(
      "form",
      { class: "form", "aria-label": "New event type" },
      field("Name", h("input", { name: "name", required: true, maxlength: 100, pattern: "[A-Za-z0-9._\\-]+", placeholder: "order.created" })),
      field("Description", h("input", { name: "description", maxlength: 1000 })),
      field("Payload JSON Schema", h("textarea", { name: "schema", rows: 4, spellcheck: "false" }), "Optional. Published payloads that do not match it are refused."),
      h("button", { type: "submit" }, "Create event type"),
      out,
    );
    onSubmit(form, out, async (v) => {
      const schema = parseSchema(v.schema);
      await api("post", "/v1/event-types", { body: { name: v.name, description: v.description || undefined, schema, archived: false } });
      flash(`Event type ${v.name} created.`);
      ctx.rerender();
    });
    show(
      ctx,
      "Event types",
      form,
      h("h2", null, "Event types"),
      listOut,
      table<Schemas["EventType"]>(
        [
          { head: "Name", cell: (t) => h("a", { href: "#/event-types/" + encodeURIComponent(t.name) }, h("code", null, t.name)) },
          { head: "Description", cell: (t) => t.description || "—" },
          { head: "Schema", cell: (t) => (t.schema ? h("details", null, h("summary", null, "Show"), h("pre", { class: "code" }, pretty(JSON.stringify(t.schema)))) : "none") },
          { head: "State", cell: (t) => (t.archived ? "archived" : "active") },
          { head: "Updated", cell: (t) => when(t.updated_at) },
          {
            head: "Actions",
            cell: (t) =>
              h(
                "span",
                { class: "row-actions" },
                action(
                  t.archived ? "Unarchive" : "Archive",
                  async () => (await api("patch", "/v1/event-types/{name}", { path: { name: t.name }, body: { archived: !t.archived } }), ctx.rerender()),
                  { out: listOut, kind: "secondary small" },
                ),
                action("Delete", async () => (await api("delete", "/v1/event-types/{name}", { path: { name: t.name } }), ctx.rerender()), {
                  out: listOut,
                  kind: "danger small",
                  confirm: () => `Delete the event type ${t.name}?`,
                }),
              ),
          },
        ],
        r.data,
        "No event types yet. Events may still be published with any type unless the project requires known types.",
        "Event types",
      ),
      pager("/event-types", ctx.query, r.meta.next_cursor),
    );
  } catch (e) {
    failed(ctx, "Event types", e);
  }
}

export async function eventTypeDetail(ctx: Ctx) {
  const name = ctx.params[0];
  loading(ctx, "Event type");
  try {
    const r = await api("get", "/v1/event-types/{name}", { path: { name } });
    const t = r.data;
    const out = alertBox();
    const form = h(
      "form",
      { class: "form", "aria-label": "Edit event type" },
      field("Description", h("input", { name: "description", maxlength: 1000, value: t.description })),
      field(
        "Payload JSON Schema",
        h("textarea", { name: "schema", rows: 8, spellcheck: "false" }, t.schema ? JSON.stringify(t.schema, null, 2) : ""),
        "Published payloads that do not match it are refused. Empty: no schema.",
      ),
      field("Archived", h("input", { name: "archived", type: "checkbox", value: "on", checked: t.archived })),
      h("button", { type: "submit" }, "Save changes"),
      out,
    );
    onSubmit(form, out, async (v) => {
      const schema = parseSchema(v.schema);
      await api("patch", "/v1/event-types/{name}", {
        path: { name },
        // (an empty schema removes it)
        body: { description: v.description, schema: schema ?? ({} as Record<string, never>), archived: v.archived === "on" },
      });
      flash("Saved.");
      ctx.rerender();
    });
    show(
      ctx,
      "Event type",
      h("p", { class: "subtitle" }, h("code", null, t.name), " ", t.archived ? "archived" : "active"),
      dl([
        ["Created", when(t.created_at)],
        ["Updated", when(t.updated_at)],
      ]),
      form,
      h("p", null, h("a", { href: "#/messages?event_type=" + encodeURIComponent(t.name) }, "Its messages")),
    );
  } catch (e) {
    failed(ctx, "Event type", e);
  }
}
