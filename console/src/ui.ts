// Building blocks shared by the pages.
import { ApiError } from "./client";
import { type Child, clear, h } from "./dom";

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return e.status ? `${e.message} (${e.code}, HTTP ${e.status})` : e.message;
  return e instanceof Error ? e.message : String(e);
}

// alert is a message region that screen readers announce.
export function alertBox(kind: "error" | "ok" = "error"): HTMLDivElement & { show(text: Child): void; hide(): void } {
  const el = h("div", { class: "alert " + kind, role: kind === "error" ? "alert" : "status", hidden: true }) as HTMLDivElement & {
    show(text: Child): void;
    hide(): void;
  };
  el.show = (text) => {
    clear(el, text);
    el.hidden = false;
  };
  el.hide = () => {
    clear(el);
    el.hidden = true;
  };
  return el;
}

// action is a button that runs f, disabled meanwhile, and shows a refusal
// in words in the given alert (or one of its own next to it).
export function action(label: string, f: () => Promise<unknown>, opts: { confirm?: () => string | null; out?: ReturnType<typeof alertBox>; kind?: string } = {}) {
  const out = opts.out ?? alertBox();
  const b = h("button", { type: "button", class: opts.kind ?? "secondary" }, label);
  b.addEventListener("click", async () => {
    const question = opts.confirm?.();
    if (question && !window.confirm(question)) return;
    b.disabled = true;
    out.hide();
    try {
      await f();
    } catch (e) {
      out.show(errorText(e));
    } finally {
      b.disabled = false;
    }
  });
  return opts.out ? b : h("span", { class: "action" }, b, out);
}

const statusNames: Record<string, string> = {
  queued: "Queued",
  delivering: "Delivering",
  succeeded: "Delivered",
  pending_retry: "Retrying",
  failed_permanent: "Failed",
  paused: "Paused",
};

export function statusBadge(status: string): HTMLSpanElement {
  return h("span", { class: "badge s-" + status }, statusNames[status] ?? status);
}

export function table<T>(cols: { head: string; cell: (row: T) => Child; cls?: string }[], rows: T[], empty: string, caption?: string): HTMLElement {
  if (rows.length === 0) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      null,
      caption ? h("caption", { class: "sr-only" }, caption) : null,
      h("thead", null, h("tr", null, cols.map((c) => h("th", { scope: "col", class: c.cls }, c.head)))),
      h(
        "tbody",
        null,
        rows.map((r) => h("tr", null, cols.map((c) => h("td", { class: c.cls }, c.cell(r))))),
      ),
    ),
  );
}

// pager links to the next page of a list (cursor in the hash query).
export function pager(base: string, query: Record<string, string>, next: string | null | undefined): HTMLElement {
  const links: Child[] = [];
  if (query.cursor) links.push(h("a", { href: link(base, { ...query, cursor: "" }) }, "First page"));
  if (next) links.push(h("a", { href: link(base, { ...query, cursor: next }), rel: "next" }, "Next page"));
  return h("nav", { class: "pager", "aria-label": "Pages" }, links);
}

export function link(base: string, query: Record<string, string>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v) q.set(k, v);
  const qs = q.toString();
  return "#" + base + (qs ? "?" + qs : "");
}

export function field(label: string, input: HTMLElement, hint?: string): HTMLElement {
  const id = input.id || "f-" + Math.random().toString(36).slice(2, 9);
  input.id = id;
  const hintEl = hint ? h("small", { id: id + "-hint" }, hint) : null;
  if (hintEl) input.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hintEl);
}

export function select(name: string, options: [string, string][], value = ""): HTMLSelectElement {
  return h(
    "select",
    { name },
    options.map(([v, l]) => h("option", { value: v, selected: v === value }, l)),
  );
}

export function dl(items: [string, Child][]): HTMLElement {
  return h(
    "dl",
    { class: "facts" },
    items.map(([k, v]) => [h("dt", null, k), h("dd", null, v ?? "—")]),
  );
}

// secretOnce shows a secret that the API returns only once, with a copy
// button and a warning.
export function secretOnce(title: string, secret: string, note: string): HTMLElement {
  const code = h("code", { class: "secret" }, secret);
  return h(
    "section",
    { class: "once", "aria-label": title },
    h("h2", null, title),
    h("p", null, note),
    h("div", { class: "secret-row" }, code, copyButton(() => secret)),
  );
}

// copyButton copies text to the clipboard and says so.
export function copyButton(text: () => string, label = "Copy"): HTMLButtonElement {
  const b = h("button", { type: "button", class: "secondary small" }, label);
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text());
      b.textContent = "Copied";
    } catch {
      b.textContent = "Copy failed: select the text";
    }
    setTimeout(() => (b.textContent = label), 2000);
  });
  return b;
}

// formValues reads a form's named fields as strings.
export function formValues(form: HTMLFormElement): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new FormData(form).entries()) out[k] = typeof v === "string" ? v.trim() : "";
  return out;
}

export function csv(s: string | undefined): string[] {
  return (s ?? "")
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
}

// isoFromLocal turns a datetime-local value into RFC 3339 (UTC).
export function isoFromLocal(v: string | undefined): string | undefined {
  if (!v) return undefined;
  const d = new Date(v);
  return isNaN(d.getTime()) ? undefined : d.toISOString();
}

// onSubmit runs f when the form is submitted, with the form's controls
// disabled until it settles (so a double click sends one request), and
// shows a refusal in words in out.
export function onSubmit(form: HTMLFormElement, out: ReturnType<typeof alertBox>, f: (values: Record<string, string>) => Promise<unknown>) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (form.dataset.busy) return;
    const values = formValues(form);
    const controls = [...form.querySelectorAll<HTMLInputElement | HTMLButtonElement | HTMLSelectElement | HTMLTextAreaElement>("input, button, select, textarea")];
    const was = controls.map((c) => c.disabled);
    form.dataset.busy = "1";
    controls.forEach((c) => (c.disabled = true));
    out.hide();
    try {
      await f(values);
    } catch (e) {
      out.show(errorText(e));
    } finally {
      delete form.dataset.busy;
      controls.forEach((c, i) => (c.disabled = was[i]));
    }
  });
}

// replaySummary says what a replay did, from the counts the API answers.
export function replaySummary(r: { replayed: number; failed: number; stuck: number }): string {
  const n = (k: number) => `${k} message${k === 1 ? "" : "s"}`;
  let text = `Replayed ${n(r.replayed)}.`;
  if (r.failed) text += ` ${n(r.failed)} could not be replayed.`;
  if (r.stuck) text += ` ${n(r.stuck)} ${r.stuck === 1 ? "is" : "are"} still being delivered.`;
  return text;
}

// capped shows a count that stopped at the API's cap with a "+".
export function capped(n: number, cap = 10_000): string {
  return n.toLocaleString() + (n >= cap ? "+" : "");
}
