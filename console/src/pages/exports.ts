import { api, raw, url, type Schemas } from "../client";
import { bytes, h, when } from "../dom";
import { type Ctx, failed, flash, loading, show } from "../page";
import { action, alertBox, field, isoFromLocal, onSubmit, pager, select, table } from "../ui";

// download fetches the export's file with the signed-in key (the API
// answers a redirect to a signed link, which fetch follows) and saves it.
async function download(x: Schemas["Export"]) {
  const res = await raw("get", url("/v1/exports/{id}/download", { id: x.id }));
  const blob = await res.blob();
  const a = h("a", { href: URL.createObjectURL(blob), download: `hookd-export-${x.id}.csv` });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

export async function exportsPage(ctx: Ctx) {
  loading(ctx, "Exports");
  try {
    const r = await api("get", "/v1/exports", { query: { cursor: ctx.query.cursor || undefined, limit: 50 } });
    const out = alertBox();
    const day = new Date(Date.now() - 24 * 3600 * 1000);
    const local = (d: Date) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
    const form = h(
      "form",
      { class: "form", "aria-label": "New export" },
      field("From", h("input", { name: "start_time", type: "datetime-local", required: true, value: local(day) })),
      // (to the next minute: the field has no seconds, and the messages of
      // the current minute belong in it)
      field("To", h("input", { name: "end_time", type: "datetime-local", required: true, value: local(new Date(Date.now() + 60_000)) })),
      field(
        "Status",
        select("status", [
          ["", "Any status"],
          ["succeeded", "Delivered"],
          ["failed_permanent", "Failed"],
          ["pending_retry", "Retrying"],
          ["queued", "Queued"],
          ["paused", "Paused"],
        ]),
      ),
      field("Direction", select("direction", [["outbound", "Outbound (sent)"], ["inbound", "Inbound (received)"]])),
      h("button", { type: "submit" }, "Create export"),
      out,
    );
    onSubmit(form, out, async (v) => {
      await api("post", "/v1/exports", {
        body: {
          start_time: isoFromLocal(v.start_time) ?? "",
          end_time: isoFromLocal(v.end_time) ?? "",
          ...(v.status ? { status: v.status as Schemas["MessageStatus"] } : {}),
          direction: v.direction as Schemas["ExportDirection"],
        },
      });
      flash("Export created. It is ready to download when its status is completed.");
      ctx.rerender();
    });
    const listOut = alertBox();
    show(
      ctx,
      "Exports",
      h("p", null, "CSV files of message history. Refresh to see an export's progress."),
      form,
      h("h2", null, "Exports"),
      listOut,
      table<Schemas["Export"]>(
        [
          { head: "Created", cell: (x) => when(x.created_at) },
          { head: "Window", cell: (x) => `${when(x.filter_start_time)} – ${when(x.filter_end_time)}` },
          { head: "Direction", cell: (x) => x.filter_direction },
          { head: "Status", cell: (x) => x.status + (x.error_message ? `: ${x.error_message}` : "") },
          { head: "Rows", cell: (x) => String(x.row_count), cls: "num" },
          { head: "Size", cell: (x) => bytes(x.file_size_bytes), cls: "num" },
          { head: "Expires", cell: (x) => when(x.expires_at) },
          {
            head: "Actions",
            cell: (x) =>
              h(
                "span",
                { class: "row-actions" },
                x.status === "completed" ? action("Download", () => download(x), { out: listOut, kind: "secondary small" }) : null,
                action(
                  "Delete",
                  async () => (await api("delete", "/v1/exports/{id}", { path: { id: x.id } }), ctx.rerender()),
                  { out: listOut, kind: "danger small", confirm: () => "Delete this export and its file?" },
                ),
              ),
          },
        ],
        r.data,
        "No exports yet.",
        "Exports",
      ),
      pager("/exports", ctx.query, r.meta.next_cursor),
    );
  } catch (e) {
    failed(ctx, "Exports", e);
  }
}
