// The hookd console: a hash-routed page that signs in with an API key and
// does everything through the public API.
import { ApiError, raw, session, setOnUnauthorized } from "./client";
import { clear, h } from "./dom";
import { type Ctx, type Page } from "./page";
import { apiKeys } from "./pages/apikeys";
import { dlq } from "./pages/dlq";
import { endpointDetail, endpointList, endpointNew } from "./pages/endpoints";
import { eventTypeDetail, eventTypes } from "./pages/eventtypes";
import { exportsPage } from "./pages/exports";
import { inboundDetail, inboundList, inboundMessage, inboundMessages, inboundNew, rejections } from "./pages/inbound";
import { messageDetail, messageList } from "./pages/messages";
import { overview } from "./pages/overview";
import { pullDetail, pullEvent, pullList, pullNew } from "./pages/pull";
import { alertBox, onSubmit } from "./ui";

const nav: [string, string][] = [
  ["/", "Overview"],
  ["/endpoints", "Endpoints"],
  ["/messages", "Messages"],
  ["/dlq", "DLQ"],
  ["/event-types", "Event types"],
  ["/inbound", "Inbound"],
  ["/pull", "Pull"],
  ["/rejections", "Rejections"],
  ["/exports", "Exports"],
  ["/api-keys", "API keys"],
];

const routes: [RegExp, Page][] = [
  [/^\/$/, overview],
  [/^\/endpoints$/, endpointList],
  [/^\/endpoints\/new$/, endpointNew],
  [/^\/endpoints\/([^/]+)$/, endpointDetail],
  [/^\/messages$/, messageList],
  [/^\/messages\/([^/]+)$/, messageDetail],
  [/^\/dlq$/, dlq],
  [/^\/event-types$/, eventTypes],
  [/^\/event-types\/([^/]+)$/, eventTypeDetail],
  [/^\/inbound$/, inboundList],
  [/^\/inbound\/new$/, inboundNew],
  [/^\/inbound\/([^/]+)$/, inboundDetail],
  [/^\/inbound\/([^/]+)\/messages$/, inboundMessages],
  [/^\/inbound-messages\/([^/]+)$/, inboundMessage],
  [/^\/rejections$/, rejections],
  [/^\/pull$/, pullList],
  [/^\/pull\/new$/, pullNew],
  [/^\/pull\/([^/]+)$/, pullDetail],
  [/^\/pull\/([^/]+)\/events\/([^/]+)$/, pullEvent],
  [/^\/exports$/, exportsPage],
  [/^\/api-keys$/, apiKeys],
];

const root = document.getElementById("app")!;
let generation = 0;
let signInNote = "";

function parseHash(): { path: string; query: Record<string, string> } {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, qs] = raw.split("?", 2);
  return { path: path || "/", query: Object.fromEntries(new URLSearchParams(qs ?? "")) };
}

function signOut(note = "") {
  session.signOut();
  signInNote = note;
  render();
}

function signIn() {
  const out = alertBox();
  if (signInNote) out.show(signInNote);
  const input = h("input", { id: "api-key", name: "key", type: "password", required: true, autocomplete: "off", spellcheck: "false" });
  const form = h(
    "form",
    { class: "form signin", "aria-label": "Sign in" },
    h("div", { class: "field" }, h("label", { for: "api-key" }, "API key"), input, h("small", null, "The key stays in this tab's session storage until you sign out or close the tab.")),
    h("button", { type: "submit" }, "Sign in"),
    out,
  );
  onSubmit(form, out, async (v) => {
    try {
      await raw("get", "/v1/projects", undefined, v.key); // the key works
    } catch (e) {
      throw e instanceof ApiError && e.status === 401 ? new Error("That API key was not accepted. Check it and try again.") : e;
    }
    session.signIn(v.key);
    signInNote = "";
    render();
  });
  document.title = "Sign in · hookd console";
  clear(root, h("main", { id: "main", class: "signin-page" }, h("h1", null, "hookd console"), h("p", null, "Sign in with an API key of your project."), form));
  input.focus();
}

// skipLink moves the focus to the page's content (not a route: the hash
// is the router's).
function skipLink(main: HTMLElement) {
  const a = h("a", { href: "#", class: "skip" }, "Skip to content");
  a.addEventListener("click", (ev) => {
    ev.preventDefault();
    (main.querySelector("h1") ?? main).focus();
  });
  return a;
}

function layout(path: string): HTMLElement {
  const main = h("main", { id: "main", tabindex: -1 });
  const current = "/" + (path.split("/")[1] ?? "");
  clear(
    root,
    skipLink(main),
    h(
      "header",
      { class: "top" },
      h("a", { href: "#/", class: "brand" }, "hookd"),
      h(
        "nav",
        { "aria-label": "Main" },
        h(
          "ul",
          null,
          nav.map(([p, label]) => {
            const active = p === current || (p === "/inbound" && current === "/inbound-messages");
            return h("li", null, h("a", { href: "#" + p, "aria-current": active ? "page" : null }, label));
          }),
        ),
      ),
      h("button", { type: "button", class: "secondary small", onclick: () => signOut("You signed out.") }, "Sign out"),
    ),
    main,
  );
  return main;
}

function render(again = false) {
  const gen = ++generation;
  if (!session.key()) {
    signIn();
    return;
  }
  const { path, query } = parseHash();
  const main = layout(path);
  for (const [re, page] of routes) {
    const m = re.exec(path);
    if (!m) continue;
    let params: string[];
    try {
      params = m.slice(1).map(decodeURIComponent);
    } catch {
      break; // a malformed escape: no such page
    }
    const ctx: Ctx = {
      main,
      params,
      query,
      again,
      // (only while this page is still the one shown)
      rerender: () => {
        if (gen === generation) render(true);
      },
      live: () => gen === generation,
    };
    void page(ctx);
    return;
  }
  document.title = "Not found · hookd console";
  clear(main, h("h1", null, "Not found"), h("p", null, "No such page. ", h("a", { href: "#/" }, "Go to the overview.")));
}

setOnUnauthorized(() => signOut("The API refused the key (it may have been deleted). Sign in again."));
window.addEventListener("hashchange", () => render());
render();
