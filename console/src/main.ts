// The hookd console: a hash-routed page that signs in with an API key and
// does everything through the public API.
import { ApiError, raw, session, setOnUnauthorized } from "./client";
import { clear, h } from "./dom";
import { type Ctx, type Page } from "./page";
import { apiKeys } from "./pages/apikeys";
import { dlq } from "./pages/dlq";
import { endpointDetail, endpointList, endpointNew } from "./pages/endpoints";
import { eventTypes } from "./pages/eventtypes";
import { exportsPage } from "./pages/exports";
import { inboundDetail, inboundList, inboundMessage, inboundNew, rejections } from "./pages/inbound";
import { messageDetail, messageList } from "./pages/messages";
import { overview } from "./pages/overview";
import { alertBox, errorText } from "./ui";

const nav: [string, string][] = [
  ["/", "Overview"],
  ["/endpoints", "Endpoints"],
  ["/messages", "Messages"],
  ["/dlq", "DLQ"],
  ["/event-types", "Event types"],
  ["/inbound", "Inbound"],
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
  [/^\/inbound$/, inboundList],
  [/^\/inbound\/new$/, inboundNew],
  [/^\/inbound\/([^/]+)$/, inboundDetail],
  [/^\/inbound-messages\/([^/]+)$/, inboundMessage],
  [/^\/rejections$/, rejections],
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
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const key = input.value.trim();
    out.hide();
    try {
      await raw("get", "/v1/projects", undefined, key); // the key works
      session.signIn(key);
      signInNote = "";
      render();
    } catch (e) {
      out.show(e instanceof ApiError && e.status === 401 ? "That API key was not accepted. Check it and try again." : errorText(e));
    }
  });
  document.title = "Sign in · hookd console";
  clear(root, h("main", { id: "main", class: "signin-page" }, h("h1", null, "hookd console"), h("p", null, "Sign in with an API key of your project."), form));
  input.focus();
}

function layout(path: string): HTMLElement {
  const main = h("main", { id: "main" });
  const current = "/" + (path.split("/")[1] ?? "");
  clear(
    root,
    h("a", { href: "#main", class: "skip" }, "Skip to content"),
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

function render() {
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
    const ctx: Ctx = {
      main,
      params: m.slice(1).map(decodeURIComponent),
      query,
      rerender: render,
      live: () => gen === generation,
    };
    void page(ctx);
    return;
  }
  clear(main, h("h1", null, "Not found"), h("p", null, "No such page. ", h("a", { href: "#/" }, "Go to the overview.")));
}

setOnUnauthorized(() => signOut("The API refused the key (it may have been deleted). Sign in again."));
window.addEventListener("hashchange", render);
render();
