import { api } from "../client";
import { h } from "../dom";
import { type Ctx, failed, flash, loading, show } from "../page";
import { action, alertBox, pager } from "../ui";
import { messageTable } from "./messages";

export async function dlq(ctx: Ctx) {
  loading(ctx, "Dead-letter queue");
  try {
    const [r, ov] = await Promise.all([
      api("get", "/v1/dlq/messages", { query: { cursor: ctx.query.cursor || undefined, limit: 50 } }),
      api("get", "/v1/overview"),
    ]);
    const page = r.data;
    const out = alertBox();
    const chosen = new Set<string>();
    const count = h("span", null, "0");
    const pick = (m: { message_id: string }) => {
      const box = h("input", { type: "checkbox", "aria-label": "Select " + m.message_id, value: m.message_id });
      box.addEventListener("change", () => {
        if (box.checked) chosen.add(m.message_id);
        else chosen.delete(m.message_id);
        count.textContent = String(chosen.size);
      });
      return box;
    };
    const total = ov.data.dlq_size;
    const summary = (res: { replayed: number; failed: number; stuck: number }) =>
      `Replayed ${res.replayed} message${res.replayed === 1 ? "" : "s"}` + (res.failed || res.stuck ? `; ${res.failed} could not be replayed, ${res.stuck} are still being delivered.` : ".");
    show(
      ctx,
      "Dead-letter queue",
      h("p", null, `${total}${ov.data.capped ? "+" : ""} message${total === 1 ? "" : "s"} failed for good and wait here until replayed or deleted.`),
      h(
        "div",
        { class: "toolbar" },
        action(
          "Replay selected",
          async () => {
            if (chosen.size === 0) throw new Error("Select the messages to replay first.");
            const res = await api("post", "/v1/messages/replay-batch", { body: { message_ids: [...chosen] } });
            flash(summary(res.data));
            ctx.rerender();
          },
          { out, kind: "primary", confirm: () => (chosen.size ? `Replay ${chosen.size} selected message${chosen.size === 1 ? "" : "s"}?` : null) },
        ),
        h("span", { class: "muted" }, count, " selected"),
        total > 0
          ? action(
              "Replay all",
              async () => {
                const res = await api("post", "/v1/messages/replay-all", { query: { status: "failed_permanent", limit: 1000 } });
                flash(summary(res.data));
                ctx.rerender();
              },
              { out, confirm: () => `Replay all ${total} message${total === 1 ? "" : "s"} in the dead-letter queue (up to 1,000 per click)?` },
            )
          : null,
      ),
      out,
      messageTable(page.messages, true, pick, (m) =>
        action(
          "Replay",
          async () => {
            await api("post", "/v1/dlq/replay/{id}", { path: { id: m.message_id } });
            flash(`Replayed ${m.message_id}.`);
            ctx.rerender();
          },
          { out, kind: "secondary small" },
        ),
      ),
      pager("/dlq", ctx.query, page.next_cursor),
    );
  } catch (e) {
    failed(ctx, "Dead-letter queue", e);
  }
}
