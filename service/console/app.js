// The console's shell: signing in (token in this tab's session storage), who is signed
// in, the navigation and the screens. Every screen talks to segport through ./gql.js.

import { Api } from "./gql.js";
import { h, field, formError, notice } from "./ui.js";
import { connectionsScreen } from "./connections.js";
import { exportsScreen, exportEditor } from "./exports.js";
import { runsScreen, runScreen } from "./runs.js";
import { scheduleScreen } from "./schedule.js";
import { segmentsScreen } from "./segments.js";

const TOKEN_KEY = "segport.console.token";
const root = document.getElementById("app");

const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  signIn(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

let signedOutReason = null;
const api = new Api("/graphql", session.token, (reason) => {
  // The server refused the token (expired, revoked, wrong secret): back to sign-in.
  if (signedOutReason !== null) return;
  signedOutReason = reason;
  session.signOut();
  queueMicrotask(() => start());
});

/** What the caller's roles allow; the server decides again on every request. */
function permissions(roles) {
  const admin = roles.includes("admin");
  const contributor = admin || roles.includes("contributor");
  return {
    manageConnections: admin,
    seeConnections: contributor,
    manageExports: contributor,
    changeSchedule: admin,
  };
}

/** A token arriving in the URL fragment (#token=...): keep it, then take it out of the URL. */
function takeTokenFromFragment() {
  const fragment = new URLSearchParams(window.location.hash.replace(/^#/, ""));
  const token = fragment.get("token");
  if (!token) return;
  session.signIn(token);
  // The address bar (and the history entry) must not keep the token.
  history.replaceState(null, "", `${window.location.pathname}${window.location.search}#/exports`);
}

/** What /oauth/callback sent back (?connection=&status= or ?error=&message=), once. */
function takeOAuthReturn() {
  const query = new URLSearchParams(window.location.search);
  if (!query.has("status") && !query.has("error")) return null;
  const result = {
    connection: query.get("connection"),
    connected: query.get("status") === "connected",
    error: query.get("error"),
    message: query.get("message"),
  };
  history.replaceState(null, "", `${window.location.pathname}#/connections`);
  return result;
}

function signInScreen(reason) {
  const input = h("input", {
    type: "password",
    name: "token",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const tokenField = field("Access token", input, {
    hint: "Paste the token you were given (segport token, or the one `make run` prints). "
      + "It is kept in this tab only.",
    path: ["token"],
  });
  const form = h(
    "form",
    { class: "card sign-in", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in to segport"),
    reason ? notice(`You were signed out: ${reason}`, "warning") : null,
    tokenField.wrapper,
    formError(),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    session.signIn(token);
    signedOutReason = null;
    start();
  });
  root.replaceChildren(h("main", { id: "main", class: "sign-in-page" }, form));
  input.focus();
}

const ROUTES = [
  [/^#\/exports\/new$/, (ctx) => exportEditor(ctx, null)],
  [/^#\/exports\/([^/]+)\/edit$/, (ctx, id) => exportEditor(ctx, decodeURIComponent(id))],
  [/^#\/exports\/([^/]+)\/runs$/, (ctx, id) => runsScreen(ctx, decodeURIComponent(id))],
  [/^#\/runs\/([^/]+)$/, (ctx, id) => runScreen(ctx, decodeURIComponent(id))],
  [/^#\/connections$/, (ctx) => connectionsScreen(ctx)],
  [/^#\/schedule$/, (ctx) => scheduleScreen(ctx)],
  [/^#\/segments$/, (ctx) => segmentsScreen(ctx)],
  [/^#\/exports$/, (ctx) => exportsScreen(ctx)],
];

let current = { stop: () => {} };
let expiryTimer = null;

/** When the token's `exp` claim says it ends (ms since the epoch), if it says. */
function tokenExpiry(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(payload));
    return typeof claims.exp === "number" ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

/** Show the sign-in when the token runs out, even if the page makes no request then. */
function watchExpiry(token) {
  clearTimeout(expiryTimer);
  const ends = tokenExpiry(token);
  if (ends === null) return;
  const wait = ends - Date.now();
  // Timers longer than about 24.8 days fire at once; the server says no in time anyway.
  if (wait > 2 ** 31 - 1) return;
  expiryTimer = setTimeout(() => {
    session.signOut();
    start("your token expired");
  }, Math.max(0, wait));
}

function shell(viewer, can) {
  const links = [
    ["#/exports", "Exports"],
    can.seeConnections ? ["#/connections", "Connections"] : null,
    ["#/schedule", "Schedule"],
    ["#/segments", "Segments"],
  ].filter(Boolean);
  const nav = h(
    "nav",
    { "aria-label": "Console" },
    h("ul", {}, links.map(([href, text]) => h("li", {}, h("a", { href }, text)))),
  );
  const signOut = h("button", { type: "button", class: "link" }, "Sign out");
  signOut.addEventListener("click", () => {
    session.signOut();
    signedOutReason = null;
    start("you signed out");
  });
  const header = h(
    "header",
    { class: "top" },
    h("a", { class: "brand", href: "#/exports" }, "segport"),
    nav,
    h(
      "p",
      { class: "who", id: "who" },
      "Signed in as ",
      h("strong", { class: "who-sub" }, viewer.sub),
      " · ",
      h("span", { class: "who-roles" }, viewer.roles.join(", ") || "no role"),
      " ",
      signOut,
    ),
  );
  const main = h("main", { id: "main", tabindex: "-1" });
  // The fragment is the router's: the skip link moves the focus without changing it.
  const skip = h("a", { class: "skip", href: "#main" }, "Skip to content");
  skip.addEventListener("click", (event) => {
    event.preventDefault();
    main.focus();
  });
  root.replaceChildren(skip, header, main);
  return { main, nav };
}

async function route(ctx) {
  current.stop();
  const hash = window.location.hash || "#/exports";
  for (const link of ctx.nav.querySelectorAll("a")) {
    const active = hash.startsWith(link.getAttribute("href"));
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  for (const [pattern, screen] of ROUTES) {
    const match = hash.match(pattern);
    if (match) {
      const stops = [];
      current = { stop: () => stops.splice(0).forEach((stop) => stop()) };
      ctx.onLeave = (stop) => stops.push(stop);
      ctx.main.replaceChildren(h("p", { class: "loading", role: "status" }, "Loading…"));
      try {
        const view = await screen(ctx, ...match.slice(1));
        ctx.main.replaceChildren(view);
        const heading = ctx.main.querySelector("h1");
        if (heading && ctx.focusHeading) heading.focus();
      } catch (error) {
        const forbidden = error.code === "FORBIDDEN";
        ctx.main.replaceChildren(
          h("h1", { tabindex: "-1" }, forbidden ? "Not for your role" : "Something went wrong"),
          notice(error.message, forbidden ? "warning" : "error"),
        );
      }
      return;
    }
  }
  window.location.hash = "#/exports";
}

async function start(reason) {
  current.stop();
  clearTimeout(expiryTimer);
  takeTokenFromFragment();
  if (!session.token()) {
    signInScreen(reason || signedOutReason);
    return;
  }
  let viewer;
  try {
    viewer = (await api.request("query Whoami { viewer { sub roles } }")).viewer;
  } catch (error) {
    session.signOut();
    signInScreen(signedOutReason || error.message);
    return;
  }
  signedOutReason = null;
  watchExpiry(session.token());
  const can = permissions(viewer.roles);
  const { main, nav } = shell(viewer, can);
  const ctx = {
    api,
    viewer,
    can,
    main,
    nav,
    oauthReturn: takeOAuthReturn(),
    focusHeading: false,
    navigate: (hash) => {
      if (window.location.hash === hash) route(ctx);
      else window.location.hash = hash;
    },
    refresh: () => route(ctx),
  };
  window.onhashchange = () => {
    ctx.focusHeading = true;
    route(ctx);
  };
  await route(ctx);
}

start();
