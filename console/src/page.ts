// What every page gets: where to render, the route's parts, and a way to
// render the current route again after an action changed what it shows.
import { type Child, clear, h } from "./dom";
import { errorText } from "./ui";

export interface Ctx {
  main: HTMLElement;
  params: string[];
  query: Record<string, string>;
  rerender(): void;
  // again is true when the page is drawn again in place (after an action),
  // false when the user came to it.
  again: boolean;
  // live is false once the user has gone elsewhere: a late answer must not
  // draw over the next page.
  live(): boolean;
}

export type Page = (ctx: Ctx) => Promise<void>;

let flashed: string | HTMLElement = "";

// flash shows text (in a status box) or an element (such as a secret shown
// once) on the next page drawn, after an action re-renders or navigates,
// then forgets it.
export function flash(what: string | HTMLElement) {
  flashed = what;
}

// show replaces the page with a heading and its content; the heading takes
// the focus so screen readers announce the new page.
export function show(ctx: Ctx, title: string, ...content: Child[]) {
  if (!ctx.live()) return;
  document.title = title + " · hookd console";
  const h1 = h("h1", { tabindex: -1 }, title);
  // The flashed note waits for the page itself (not its "Loading…").
  const loadingOnly = content.some((c) => c instanceof HTMLElement && c.classList.contains("loading"));
  const note = loadingOnly ? null : typeof flashed === "string" ? (flashed ? h("div", { class: "alert ok", role: "status" }, flashed) : null) : flashed;
  if (!loadingOnly) flashed = "";
  // Drawn again in place, the control that had the focus keeps it (its
  // new copy, found by its label); a new page puts it on the heading, so
  // screen readers announce the page.
  const had = ctx.again && document.activeElement instanceof HTMLElement && ctx.main.contains(document.activeElement) ? document.activeElement : null;
  const label = had ? `${had.tagName}|${had.textContent ?? ""}` : "";
  clear(ctx.main, h1, note, ...content);
  if (!ctx.again) {
    h1.focus({ preventScroll: true });
    return;
  }
  if (label) {
    const same = [...ctx.main.querySelectorAll<HTMLElement>("button, a, input, select, textarea")].find((el) => `${el.tagName}|${el.textContent ?? ""}` === label);
    (same ?? h1).focus({ preventScroll: true });
  }
}

export function loading(ctx: Ctx, title: string) {
  show(ctx, title, h("p", { class: "loading", role: "status" }, "Loading…"));
}

export function failed(ctx: Ctx, title: string, e: unknown) {
  show(ctx, title, h("div", { class: "alert error", role: "alert" }, errorText(e)));
}
