import { api } from "../client";
import { h, num } from "../dom";
import { type Ctx, failed, flash, loading, show } from "../page";
import { action, alertBox, capped, pager, replaySummary } from "../ui";
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
    const perClick = Math.min(total, 1000);
    show(
      ctx,
      "Dead-letter queue",
      h("p", null, `${capped(total)} message${total === 1 ? "" : "s"} failed for good and wait here until replayed or deleted.`),
      h(
        "div",
        { class: "toolbar" },
        action(
          "Replay selected",
          async () => {
            if (chosen.size === 0) throw new Error("Select the messages to replay first.");
            const res = await api("post", "/v1/messages/replay-batch", { body: { message_ids: [...chosen] } });
            flash(replaySummary(res.data));
            ctx.rerender();
          },
          { out, kind: "primary", confirm: () => (chosen.size ? `Replay ${chosen.size} selected message${chosen.size === 1 ? "" : "s"}?` : null) },
        ),
        h("span", { class: "muted", "aria-live": "polite" }, count, " selected"),
        total > 0
          ? action(
              "Replay all",
              async () => {
                const res = await api("post", "/v1/messages/replay-all", { query: { status: "failed_permanent", limit: 1000 } });
                flash(replaySummary(res.data));
                ctx.rerender();
              },
              {
                out,
                confirm: () =>
                  total > perClick
                    ? `Replay the oldest ${num(perClick)} of the ${capped(total)} messages in the dead-letter queue?`
                    : `Replay all ${total} message${total === 1 ? "" : "s"} in the dead-letter queue?`,
              },
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
