// Charts drawn as SVG: a bar chart of volume by outcome and line charts of
// success rate and latency. Each carries a text summary for screen readers.
import type { Schemas } from "./client";
import { h, s } from "./dom";

type Bucket = Schemas["MetricsBucket"];

const W = 400;
const H = 150;
const PAD = { l: 44, r: 8, t: 8, b: 22 };

function frame(title: string, summary: string, maxLabel: string, first: string, last: string, ...body: SVGElement[]) {
  const svg = s(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${title}: ${summary}`, class: "chart-svg" },
    s("line", { x1: PAD.l, y1: H - PAD.b, x2: W - PAD.r, y2: H - PAD.b, class: "axis" }),
    s("line", { x1: PAD.l, y1: PAD.t, x2: PAD.l, y2: H - PAD.b, class: "axis" }),
    s("text", { x: PAD.l - 4, y: PAD.t + 10, class: "tick", "text-anchor": "end" }, maxLabel),
    s("text", { x: PAD.l - 4, y: H - PAD.b, class: "tick", "text-anchor": "end" }, "0"),
    s("text", { x: PAD.l, y: H - 6, class: "tick" }, first),
    s("text", { x: W - PAD.r, y: H - 6, class: "tick", "text-anchor": "end" }, last),
    ...body,
  );
  return h("figure", { class: "chart" }, h("figcaption", null, title), svg);
}

function label(iso: string, window: string): string {
  const d = new Date(iso);
  if (window === "1h") return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  if (window === "24h") return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  return d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

const plotW = W - PAD.l - PAD.r;
const plotH = H - PAD.t - PAD.b;

export function volumeChart(buckets: Bucket[], window: string): HTMLElement {
  const max = Math.max(1, ...buckets.map((b) => b.total));
  const bw = plotW / Math.max(1, buckets.length);
  const bars: SVGElement[] = [];
  buckets.forEach((b, i) => {
    let y = H - PAD.b;
    for (const [v, cls] of [
      [b.succeeded, "ok"],
      [b.retrying, "retry"],
      [b.failed, "fail"],
    ] as [number, string][]) {
      if (v <= 0) continue;
      const hgt = (v / max) * plotH;
      y -= hgt;
      bars.push(s("rect", { x: PAD.l + i * bw + bw * 0.1, y, width: Math.max(1, bw * 0.8), height: hgt, class: "bar " + cls }));
    }
  });
  const total = buckets.reduce((a, b) => a + b.total, 0);
  const failed = buckets.reduce((a, b) => a + b.failed, 0);
  const first = buckets[0]?.timestamp;
  const last = buckets[buckets.length - 1]?.timestamp;
  const fig = frame(
    "Messages",
    `${total} messages in ${buckets.length} buckets, ${failed} failed, at most ${max} in one bucket`,
    String(max),
    first ? label(first, window) : "",
    last ? label(last, window) : "",
    ...bars,
  );
  fig.appendChild(
    h(
      "ul",
      { class: "legend" },
      [
        ["ok", "delivered"],
        ["retry", "retrying"],
        ["fail", "failed"],
      ].map(([cls, text]) => h("li", null, h("span", { class: "swatch bar-" + cls }), text)),
    ),
  );
  return fig;
}

function line(values: (number | null)[], max: number): SVGElement[] {
  const step = plotW / Math.max(1, values.length - 1);
  const pts: string[] = [];
  const dots: SVGElement[] = [];
  values.forEach((v, i) => {
    if (v === null) return;
    const x = PAD.l + (values.length === 1 ? plotW / 2 : i * step);
    const y = H - PAD.b - (v / max) * plotH;
    pts.push(`${x.toFixed(1)},${y.toFixed(1)}`);
    dots.push(s("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 3, class: "dot" }));
  });
  return [s("polyline", { points: pts.join(" "), class: "line" }), ...dots];
}

export function successChart(buckets: Bucket[], window: string): HTMLElement {
  const values = buckets.map((b) => (b.succeeded + b.failed > 0 ? b.succeeded / (b.succeeded + b.failed) : null));
  const known = values.filter((v): v is number => v !== null);
  const min = known.length ? Math.min(...known) : null;
  return frame(
    "Success rate",
    min === null ? "no finished messages" : `lowest ${(min * 100).toFixed(1)} % over ${known.length} buckets`,
    "100 %",
    buckets[0] ? label(buckets[0].timestamp, window) : "",
    buckets.length ? label(buckets[buckets.length - 1].timestamp, window) : "",
    ...line(values, 1),
  );
}

export function latencyChart(buckets: Bucket[], window: string): HTMLElement {
  const values = buckets.map((b) => (b.succeeded > 0 ? b.avg_latency_ms : null));
  const known = values.filter((v): v is number => v !== null);
  const max = Math.max(1, ...known);
  return frame(
    "Average latency",
    known.length ? `highest ${Math.round(max)} ms over ${known.length} buckets` : "no delivered messages",
    Math.round(max) + " ms",
    buckets[0] ? label(buckets[0].timestamp, window) : "",
    buckets.length ? label(buckets[buckets.length - 1].timestamp, window) : "",
    ...line(values, max),
  );
}
