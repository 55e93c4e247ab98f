import { api, type Schemas } from "../client";
import { latencyChart, successChart, volumeChart } from "../charts";
import { h, ms, num, pct, when } from "../dom";
import { type Ctx, failed, loading, show } from "../page";
import { capped, link, table } from "../ui";

const windows = ["1h", "24h", "7d", "30d"] as const;
type Window = (typeof windows)[number];

export function health(e: Schemas["EndpointSummary"]): HTMLElement {
  if (e.disabled_at) return h("span", { class: "badge s-failed_permanent" }, "Disabled");
  if (e.paused) return h("span", { class: "badge s-paused" }, "Paused");
  if (e.consecutive_failures > 0) return h("span", { class: "badge s-pending_retry" }, `Failing (${e.consecutive_failures})`);
  return h("span", { class: "badge s-succeeded" }, "Healthy");
}

export function endpointTable(rows: Schemas["EndpointSummary"][], empty: string, caption: string) {
  return table(
    [
      { head: "Endpoint", cell: (e) => h("a", { href: "#/endpoints/" + e.id }, e.url) },
      { head: "Description", cell: (e) => e.description || "—" },
      { head: "Health", cell: health },
      { head: "Failing since", cell: (e) => when(e.failing_since) },
      { head: "Created", cell: (e) => when(e.created_at) },
    ],
    rows,
    empty,
    caption,
  );
}

export async function overview(ctx: Ctx) {
  const window: Window = (windows as readonly string[]).includes(ctx.query.window) ? (ctx.query.window as Window) : "24h";
  loading(ctx, "Overview");
  try {
    const [m, ts, o] = await Promise.all([
      api("get", "/v1/metrics", { query: { window } }),
      api("get", "/v1/metrics/timeseries", { query: { window } }),
      api("get", "/v1/overview"),
    ]);
    const d = m.data;
    const ov = o.data;
    const backlog = ov.queued + ov.delivering + ov.pending_retry;
    const anyCapped = [ov.queued, ov.delivering, ov.pending_retry].some((n) => n >= 10_000);
    const card = (label: string, value: string, sub?: HTMLElement | string) =>
      h("div", { class: "card" }, h("div", { class: "card-label" }, label), h("div", { class: "card-value" }, value), sub ? h("div", { class: "card-sub" }, sub) : null);
    show(
      ctx,
      "Overview",
      h(
        "nav",
        { class: "tabs", "aria-label": "Time window" },
        windows.map((w) => h("a", { href: link("/", { window: w }), "aria-current": w === window ? "page" : null }, w)),
      ),
      h(
        "div",
        { class: "cards" },
        card("Messages (" + window + ")", num(d.total_messages), `${num(d.succeeded)} delivered, ${num(d.failed)} failed`),
        card("Success rate", d.succeeded + d.failed ? pct(d.success_rate) : "—", `${num(d.retries)} retries`),
        card("Average latency", d.succeeded ? ms(d.avg_latency_ms) : "—"),
        card("Backlog", num(backlog) + (anyCapped ? "+" : ""), `${capped(ov.queued)} queued, ${capped(ov.delivering)} delivering, ${capped(ov.pending_retry)} retrying`),
        card("Paused", capped(ov.paused), "held by paused or disabled endpoints"),
        card("Dead-letter queue", capped(ov.dlq_size), h("a", { href: "#/dlq" }, "Open the DLQ")),
      ),
      h("div", { class: "charts" }, volumeChart(ts.data.buckets, window), successChart(ts.data.buckets, window), latencyChart(ts.data.buckets, window)),
      h("h2", null, "Failing endpoints"),
      endpointTable(ov.failing_endpoints, "No endpoint is failing.", "Failing endpoints"),
      h("h2", null, "Disabled endpoints"),
      endpointTable(ov.disabled_endpoints, "No endpoint is disabled.", "Disabled endpoints"),
    );
  } catch (e) {
    failed(ctx, "Overview", e);
  }
}
