// The poison-store admin console: one small script, no framework, no build step. It talks to the
// JSON API of the same service with a bearer token kept in this tab only (sessionStorage, never
// a cookie), builds every element with textContent (never HTML from data), and refreshes from
// the /events stream. See docs/ADMIN.md.

const BASE = document.documentElement.dataset.base || "";
const TOKEN_KEY = "poison-admin-token";
const PAGE_SIZE = 50;
/** Empty filtered pages followed at most this many times before asking the user to go on. */
const MAX_EMPTY_PAGES = 20;

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  me: null,
  /** Bumped on every navigation, so a slow answer for an old view is dropped. */
  view: 0,
  /** What the current view reloads on a change event. */
  reload: null,
  /** The key the detail view shows, to reload it only for its own changes. */
  detailKey: null,
  events: null,
  reloadTimer: null,
  pendingReload: false,
};

// ---- small helpers ---------------------------------------------------------------------------

/** An element: `attrs` are properties or attributes, children are nodes or text. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name in el && typeof value !== "string") el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const $ = (id) => document.getElementById(id);

function announce(text) {
  const region = $("announcer");
  region.textContent = "";
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

/** `42s`, `5m12s`, `3h05m`, `2d04h`, as the CLI prints ages. */
function age(iso, now) {
  if (!iso) return "–";
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return "?";
  let seconds = Math.max(0, Math.floor((now - then) / 1000));
  if (seconds < 60) return `${seconds}s`;
  const pad = (n) => String(n).padStart(2, "0");
  let minutes = Math.floor(seconds / 60);
  seconds %= 60;
  if (minutes < 60) return `${minutes}m${pad(seconds)}s`;
  const hours = Math.floor(minutes / 60);
  minutes %= 60;
  if (hours < 24) return `${hours}h${pad(minutes)}m`;
  return `${Math.floor(hours / 24)}d${pad(hours % 24)}h`;
}

function duration(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  return age(new Date(0).toISOString(), ms);
}

function time(iso, now) {
  if (!iso) return "–";
  return h("time", { datetime: iso, title: iso }, `${age(iso, now)} ago`);
}

function keyHref(key) {
  return `#/key/${encodeURIComponent(key)}`;
}

function encodeKey(key) {
  return encodeURIComponent(key);
}

class ApiError extends Error {
  constructor(status, code, message, detail) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = detail || {};
  }
}

async function api(path, { method = "GET", body, signal } = {}) {
  const headers = { accept: "application/json" };
  if (state.token) headers.authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(`${BASE}/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      signal,
    });
  } catch (error) {
    throw new ApiError(0, "NETWORK", `the admin service did not answer (${error.message})`);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const err = data?.error ?? { code: `HTTP_${response.status}`, message: response.statusText };
    throw new ApiError(response.status, err.code, err.message, err);
  }
  return data;
}

function stateBadge(record) {
  const live = record.liveness;
  const kind = record.state === "poisoned" ? "poisoned" : live?.stale ? "stale" : "in-progress";
  const label = kind === "stale" ? "in-progress, stale" : kind;
  return h("span", { class: `badge badge-${kind}` }, label);
}

function livenessText(record) {
  const live = record.liveness;
  if (!live || live.heartbeatAgeMs === null) return "no heartbeat";
  const ago =
    live.heartbeatAgeMs < 0
      ? `${duration(-live.heartbeatAgeMs)} in the future`
      : `${duration(live.heartbeatAgeMs)} ago`;
  return `${live.live ? "live" : "not live"}: heartbeat ${ago}${live.heartbeatIntervalMs ? `, every ${duration(live.heartbeatIntervalMs)}` : ""}`;
}

function livenessBadge(record) {
  const live = record.liveness;
  if (!live || live.heartbeatAgeMs === null)
    return h("span", { class: "liveness" }, "no heartbeat");
  return h(
    "span",
    { class: `liveness ${live.live ? "is-live" : "not-live"}` },
    h("span", { class: "dot", "aria-hidden": "true" }),
    live.live ? "live" : "not live",
    h("span", { class: "muted" }, ` · ${duration(Math.max(0, live.heartbeatAgeMs))} ago`),
  );
}

function errorSummary(record) {
  if (!record.error) return "–";
  return `${record.error.name}: ${record.error.message.split("\n", 1)[0]}`;
}

function problem(error) {
  const box = h(
    "div",
    { class: "problem", role: "alert" },
    h("strong", {}, error.code || "Error"),
    " ",
    error.message,
  );
  return box;
}

function show(...nodes) {
  const main = $("main");
  main.replaceChildren(...nodes);
}

function focusHeading() {
  const heading = $("main").querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: false });
  }
}

// ---- sign-in ---------------------------------------------------------------------------------

async function start() {
  window.addEventListener("hashchange", () => route(true));
  document.addEventListener("keydown", (event) => {
    if (event.key === "/" && !isTyping(event.target)) {
      const filter = $("filter-prefix");
      if (filter) {
        event.preventDefault();
        filter.focus();
      }
    }
  });
  await whoami();
}

function isTyping(target) {
  return (
    target instanceof HTMLInputElement ||
    target instanceof HTMLTextAreaElement ||
    target instanceof HTMLSelectElement
  );
}

async function whoami() {
  try {
    state.me = await api("/whoami");
  } catch (error) {
    if (error.status === 401) return signIn(state.token ? "That token was not accepted." : null);
    return show(h("h1", {}, "Poison keys"), problem(error), retryButton(whoami));
  }
  $("who").replaceChildren(
    h("span", { class: "muted" }, "signed in as "),
    h("strong", {}, state.me.name),
    ` (${state.me.role})`,
    state.token
      ? h("button", { type: "button", class: "link", onclick: signOut }, "Sign out")
      : null,
  );
  $("store").textContent = `${state.me.store.location} · ${state.me.store.namespace}`;
  connectEvents();
  route(false);
}

function retryButton(action) {
  return h("button", { type: "button", onclick: action }, "Retry");
}

function signIn(message) {
  state.me = null;
  state.view++;
  $("who").replaceChildren();
  $("store").textContent = "";
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    required: true,
    spellcheck: "false",
  });
  const form = h(
    "form",
    {
      class: "card signin",
      onsubmit: (event) => {
        event.preventDefault();
        state.token = input.value.trim();
        sessionStorage.setItem(TOKEN_KEY, state.token);
        whoami();
      },
    },
    h("label", { for: "token" }, "Access token"),
    input,
    h(
      "p",
      { class: "muted" },
      "Kept in this browser tab only and sent as a bearer header; never stored in a cookie. Ask the service's operator for a token (poison serve --add-token).",
    ),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
  show(
    h("h1", {}, "Sign in"),
    message ? problem({ code: "UNAUTHENTICATED", message }) : null,
    form,
  );
  input.focus();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.events?.abort();
  state.events = null;
  $("live").textContent = "";
  signIn(null);
}

// ---- routing ---------------------------------------------------------------------------------

function parseHash() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const split = hash.indexOf("?");
  const path = split === -1 ? hash : hash.slice(0, split);
  const query = new URLSearchParams(split === -1 ? "" : hash.slice(split + 1));
  return { path, query };
}

function route(focus) {
  if (!state.me) return;
  state.view++;
  state.reload = null;
  state.detailKey = null;
  const { path, query } = parseHash();
  for (const link of document.querySelectorAll("nav a")) link.removeAttribute("aria-current");
  if (path.startsWith("/key/")) {
    let key;
    try {
      key = decodeURIComponent(path.slice("/key/".length));
    } catch {
      key = path.slice("/key/".length);
    }
    $("nav-keys").setAttribute("aria-current", "page");
    detailView(key, focus);
  } else if (path === "/audit") {
    $("nav-audit").setAttribute("aria-current", "page");
    auditView(query, focus);
  } else {
    $("nav-keys").setAttribute("aria-current", "page");
    listView(query, focus);
  }
}

// ---- the list --------------------------------------------------------------------------------

function listView(query, focus) {
  const filters = {
    state: query.get("state") || "",
    prefix: query.get("prefix") || "",
    token: query.get("token") || "",
    operation: query.get("operation") || "",
  };
  const field = (name, label, input) =>
    h("div", { class: "field" }, h("label", { for: `filter-${name}` }, label), input);
  const text = (name, placeholder) =>
    h("input", {
      id: `filter-${name}`,
      name,
      type: "search",
      value: filters[name],
      placeholder,
      autocomplete: "off",
      spellcheck: "false",
    });
  const stateSelect = h(
    "select",
    { id: "filter-state", name: "state" },
    [
      ["", "any"],
      ["poisoned", "poisoned"],
      ["in-progress", "in-progress"],
      ["stale", "stale (in-progress, not live)"],
    ].map(([value, label]) => h("option", { value, selected: value === filters.state }, label)),
  );
  const form = h(
    "form",
    {
      class: "filters",
      role: "search",
      "aria-label": "Filter poison keys",
      onsubmit: (event) => {
        event.preventDefault();
        const data = new FormData(form);
        const params = new URLSearchParams();
        for (const [name, value] of data) if (String(value) !== "") params.set(name, String(value));
        const next = `#/${params.size ? `?${params}` : ""}`;
        if (location.hash === next) route(false);
        else location.hash = next;
      },
    },
    field("state", "State", stateSelect),
    field("prefix", "Key prefix", text("prefix", "table/")),
    field("token", "Token", text("token", "")),
    field("operation", "Operation", text("operation", "")),
    h(
      "div",
      { class: "field actions" },
      h("button", { type: "submit", class: "primary" }, "Filter"),
      h("a", { href: "#/", class: "button" }, "Reset"),
    ),
  );
  const results = h("section", { id: "results", "aria-label": "Poison keys" });
  show(h("h1", {}, "Poison keys"), form, results);
  if (focus) focusHeading();

  const pages = [null];
  let pageIndex = 0;
  const view = state.view;
  const load = async (announceIt) => {
    results.setAttribute("aria-busy", "true");
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(filters)) if (value) params.set(name, value);
    params.set("limit", String(PAGE_SIZE));
    let cursor = pages[pageIndex];
    let page;
    try {
      // With filters a page may be empty while more follow: follow a bounded number of them.
      for (let hop = 0; ; hop++) {
        if (cursor) params.set("cursor", cursor);
        page = await api(`/poisons?${params}`);
        if (page.records.length > 0 || page.cursor === null || hop >= MAX_EMPTY_PAGES) break;
        cursor = page.cursor;
      }
    } catch (error) {
      if (view !== state.view) return;
      results.removeAttribute("aria-busy");
      if (error.status === 401) return signIn("The token is no longer accepted.");
      results.replaceChildren(
        problem(error),
        retryButton(() => load(true)),
      );
      return;
    }
    if (view !== state.view) return;
    pages[pageIndex + 1] = page.cursor;
    results.replaceChildren(
      ...renderList(page, pageIndex, {
        previous:
          pageIndex > 0
            ? () => {
                pageIndex--;
                load(true);
              }
            : null,
        next: page.cursor
          ? () => {
              pageIndex++;
              load(true);
            }
          : null,
      }),
    );
    results.removeAttribute("aria-busy");
    if (announceIt)
      announce(
        `${page.records.length} key${page.records.length === 1 ? "" : "s"} on page ${pageIndex + 1}`,
      );
  };
  state.reload = () => load(false);
  load(true);
}

function renderList(page, pageIndex, paging) {
  const now = Date.parse(page.now);
  if (page.records.length === 0) {
    return [
      h(
        "p",
        { class: "empty" },
        pageIndex === 0 ? "No poison keys match. Nothing is quarantined here." : "No more keys.",
      ),
    ];
  }
  const head = ["Key", "State", "Heartbeat", "Operation", "Owner", "Age", "Error"];
  const rows = page.records.map((record) =>
    h(
      "tr",
      {},
      h(
        "th",
        { scope: "row", dataset: { label: "Key" } },
        h("a", { href: keyHref(record.key), class: "key" }, record.key),
      ),
      h("td", { dataset: { label: "State" } }, stateBadge(record)),
      h("td", { dataset: { label: "Heartbeat" } }, livenessBadge(record)),
      h("td", { dataset: { label: "Operation" } }, record.operation ?? "–"),
      h("td", { dataset: { label: "Owner" } }, record.owner ?? "–"),
      h("td", { dataset: { label: "Age" } }, time(record.createdAt, now)),
      h("td", { dataset: { label: "Error" }, class: "error-summary" }, errorSummary(record)),
    ),
  );
  const table = h(
    "table",
    { class: "records" },
    h("caption", { class: "visually-hidden" }, `Poison keys, page ${pageIndex + 1}`),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        head.map((title) => h("th", { scope: "col" }, title)),
      ),
    ),
    h("tbody", {}, rows),
  );
  const nav = h(
    "nav",
    { class: "paging", "aria-label": "Pages" },
    h(
      "button",
      { type: "button", disabled: !paging.previous, onclick: paging.previous },
      "← Previous page",
    ),
    h(
      "span",
      { class: "muted" },
      `Page ${pageIndex + 1} · ${page.records.length} key${page.records.length === 1 ? "" : "s"}`,
    ),
    h("button", { type: "button", disabled: !paging.next, onclick: paging.next }, "Next page →"),
  );
  return [h("div", { class: "table-wrap" }, table), nav];
}

// ---- one key ---------------------------------------------------------------------------------

function detailView(key, focus) {
  const view = state.view;
  state.detailKey = key;
  const heading = h(
    "h1",
    { class: "key-title" },
    h("span", { class: "visually-hidden" }, "Poison key "),
    h("code", {}, key),
  );
  const body = h(
    "div",
    { id: "detail", "aria-busy": "true" },
    h("p", { class: "muted" }, "Loading…"),
  );
  const history = h(
    "section",
    { "aria-labelledby": "history-title" },
    h("h2", { id: "history-title" }, "History"),
    h("div", { id: "history" }),
  );
  show(h("a", { href: "#/", class: "back" }, "← All keys"), heading, body, history);
  if (focus) focusHeading();

  const load = async () => {
    let detail = null;
    let failure = null;
    const [poison, audit] = await Promise.allSettled([
      api(`/poisons/${encodeKey(key)}`),
      api(`/audit?${new URLSearchParams({ key, limit: "20" })}`),
    ]);
    if (view !== state.view) return;
    if (poison.status === "fulfilled") detail = poison.value;
    else failure = poison.reason;
    if (failure?.status === 401) return signIn("The token is no longer accepted.");
    body.removeAttribute("aria-busy");
    if (detail) body.replaceChildren(...renderDetail(detail));
    else if (failure?.code === "POISON_NOT_FOUND")
      body.replaceChildren(
        h(
          "p",
          { class: "empty" },
          "This key is not present: nothing quarantines the resource now. Its history is below.",
        ),
      );
    else body.replaceChildren(problem(failure), retryButton(load));
    const list = $("history");
    if (audit.status === "fulfilled")
      list.replaceChildren(renderAudit(audit.value.entries, Date.now(), false));
    else list.replaceChildren(problem(audit.reason));
  };
  state.reload = load;
  load();
}

function renderDetail({ record, now: nowIso }) {
  const now = Date.parse(nowIso);
  const row = (label, value) => [h("dt", {}, label), h("dd", {}, value)];
  const canClear = state.me?.role === "operator";
  const actions = h(
    "div",
    { class: "actions" },
    canClear
      ? h(
          "button",
          {
            type: "button",
            class: "danger",
            id: "clear-button",
            onclick: () => openClearDialog(record),
          },
          "Clear this key…",
        )
      : h("p", { class: "muted" }, "Clearing a key needs the operator role."),
  );
  const facts = h(
    "dl",
    { class: "facts" },
    row("State", stateBadge(record)),
    row("Heartbeat", livenessText(record)),
    row("Token", h("code", {}, record.token)),
    row("Operation", record.operation ?? "–"),
    row("Owner", record.owner ?? "–"),
    row(
      "Created",
      h(
        "span",
        {},
        time(record.createdAt, now),
        h("span", { class: "muted" }, ` (${record.createdAt})`),
      ),
    ),
    row(
      "Updated",
      h(
        "span",
        {},
        time(record.updatedAt, now),
        h("span", { class: "muted" }, ` (${record.updatedAt})`),
      ),
    ),
  );
  const parts = [actions, facts];
  if (record.error) {
    parts.push(
      h(
        "section",
        { "aria-labelledby": "error-title" },
        h("h2", { id: "error-title" }, "Error"),
        h(
          "p",
          { class: "error-line" },
          h("strong", {}, record.error.name),
          ": ",
          record.error.message,
        ),
        h("p", { class: "muted" }, "recorded ", time(record.error.at, now)),
        record.error.stack
          ? h(
              "pre",
              { class: "stack", tabindex: "0", "aria-label": "Stack trace" },
              record.error.stack,
            )
          : null,
      ),
    );
  }
  if (record.data !== undefined) {
    parts.push(
      h(
        "section",
        { "aria-labelledby": "data-title" },
        h("h2", { id: "data-title" }, "Repair data"),
        h(
          "pre",
          { class: "data", tabindex: "0", "aria-label": "Repair data as JSON" },
          JSON.stringify(record.data, null, 2),
        ),
      ),
    );
  }
  return parts;
}

// ---- the clear dialog ------------------------------------------------------------------------

function openClearDialog(record) {
  const dialog = $("clear-dialog");
  const live = record.liveness?.live === true;
  const reason = h("textarea", { id: "clear-reason", name: "reason", required: true, rows: 3 });
  const typed = h("input", {
    id: "clear-confirm",
    name: "confirm",
    type: "text",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const override = h("input", { id: "clear-override", name: "override", type: "checkbox" });
  const overrideField = h(
    "div",
    { class: "field checkbox", hidden: !live },
    override,
    h(
      "label",
      { for: "clear-override" },
      "Clear it even though the holder is live: its run loses the key and aborts",
    ),
  );
  const message = h("div", { id: "clear-message" });
  const submit = h("button", { type: "submit", class: "danger", disabled: true }, "Clear key");
  const validate = () => {
    submit.disabled =
      reason.value.trim() === "" ||
      typed.value !== record.key ||
      (!overrideField.hidden && !override.checked);
  };
  for (const input of [reason, typed, override]) input.addEventListener("input", validate);
  override.addEventListener("change", validate);

  const livenessNote = h(
    "p",
    { class: live ? "warning" : "muted", id: "clear-liveness" },
    live
      ? `The holder is live (${livenessText(record)}): its operation is most likely still running. Stop it first if you can.`
      : `No live holder (${livenessText(record)}).`,
  );
  const form = h(
    "form",
    {
      method: "dialog",
      onsubmit: async (event) => {
        event.preventDefault();
        validate();
        if (submit.disabled) return;
        submit.disabled = true;
        message.replaceChildren(h("p", { class: "muted" }, "Clearing…"));
        try {
          const result = await api(`/poisons/${encodeKey(record.key)}/clear`, {
            method: "POST",
            body: {
              reason: reason.value.trim(),
              expectedToken: record.token,
              ...(override.checked ? { evenIfAlive: true } : {}),
            },
          });
          cleared(dialog, record, result);
        } catch (error) {
          if (error.code === "HOLDER_ALIVE") {
            overrideField.hidden = false;
            livenessNote.className = "warning";
            livenessNote.textContent = `The holder is live now${error.detail.record ? ` (${livenessText({ liveness: error.detail.liveness })})` : ""}: nothing was cleared. Tick the box below only if you are sure its operation is gone.`;
          }
          message.replaceChildren(problem(error));
          validate();
        }
      },
    },
    h("h2", { id: "clear-title" }, "Clear poison key"),
    h(
      "p",
      {},
      "Only clear a key once the resource has been inspected and repaired. This is written to the audit log as ",
      h("strong", {}, state.me.name),
      ".",
    ),
    h(
      "p",
      { class: "key-line" },
      h("code", {}, record.key),
      " held by ",
      h("code", {}, record.token),
      ` (${record.state})`,
    ),
    livenessNote,
    h(
      "div",
      { class: "field" },
      h("label", { for: "clear-reason" }, "Reason (for the audit log)"),
      reason,
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: "clear-confirm" }, "Type the key to confirm"),
      typed,
    ),
    overrideField,
    message,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"),
      submit,
    ),
  );
  dialog.replaceChildren(form);
  dialog.onclose = () => {
    if (state.pendingReload) {
      state.pendingReload = false;
      state.reload?.();
    }
    $("clear-button")?.focus();
  };
  dialog.showModal();
  reason.focus();
}

function cleared(dialog, record, result) {
  const entry = result.audit;
  const close = h(
    "button",
    { type: "button", class: "primary", onclick: () => dialog.close() },
    "Done",
  );
  dialog.replaceChildren(
    h(
      "div",
      { class: "cleared" },
      h("h2", { id: "clear-title" }, "Key cleared"),
      h("p", {}, h("code", {}, record.key), " is no longer quarantined."),
      entry
        ? h(
            "div",
            { class: "audit-entry", role: "status" },
            h("h3", {}, "Audit entry"),
            h(
              "dl",
              { class: "facts" },
              h("dt", {}, "Action"),
              h("dd", {}, entry.action + (entry.evenIfAlive ? " (even if alive)" : "")),
              h("dt", {}, "Actor"),
              h("dd", {}, entry.actor),
              h("dt", {}, "Reason"),
              h("dd", {}, entry.reason),
              h("dt", {}, "At"),
              h("dd", {}, h("time", { datetime: entry.at }, entry.at)),
              h("dt", {}, "Entry"),
              h("dd", {}, h("code", {}, entry.id)),
            ),
          )
        : h("p", { class: "muted" }, "The audit entry could not be read back; see the audit log."),
      h("div", { class: "actions" }, close),
    ),
  );
  state.pendingReload = true;
  announce(`Cleared ${record.key}; audited as ${state.me.name}`);
  close.focus();
}

// ---- the audit log ---------------------------------------------------------------------------

function auditView(query, focus) {
  const key = query.get("key") || "";
  const input = h("input", {
    id: "audit-key",
    name: "key",
    type: "search",
    value: key,
    autocomplete: "off",
    spellcheck: "false",
  });
  const form = h(
    "form",
    {
      class: "filters",
      role: "search",
      "aria-label": "Filter the audit log",
      onsubmit: (event) => {
        event.preventDefault();
        location.hash = input.value
          ? `#/audit?${new URLSearchParams({ key: input.value })}`
          : "#/audit";
      },
    },
    h("div", { class: "field" }, h("label", { for: "audit-key" }, "Exact key"), input),
    h(
      "div",
      { class: "field actions" },
      h("button", { type: "submit", class: "primary" }, "Filter"),
    ),
  );
  const results = h("section", { id: "results", "aria-label": "Audit entries" });
  show(h("h1", {}, "Audit log"), form, results);
  if (focus) focusHeading();
  const pages = [null];
  let pageIndex = 0;
  const view = state.view;
  const load = async () => {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (key) params.set("key", key);
    if (pages[pageIndex]) params.set("cursor", pages[pageIndex]);
    let page;
    try {
      page = await api(`/audit?${params}`);
    } catch (error) {
      if (view !== state.view) return;
      if (error.status === 401) return signIn("The token is no longer accepted.");
      results.replaceChildren(problem(error), retryButton(load));
      return;
    }
    if (view !== state.view) return;
    pages[pageIndex + 1] = page.cursor;
    results.replaceChildren(
      renderAudit(page.entries, Date.now(), true),
      h(
        "nav",
        { class: "paging", "aria-label": "Pages" },
        h(
          "button",
          {
            type: "button",
            disabled: pageIndex === 0,
            onclick: () => {
              pageIndex--;
              load();
            },
          },
          "← Newer",
        ),
        h("span", { class: "muted" }, `Page ${pageIndex + 1}`),
        h(
          "button",
          {
            type: "button",
            disabled: !page.cursor,
            onclick: () => {
              pageIndex++;
              load();
            },
          },
          "Older →",
        ),
      ),
    );
  };
  state.reload = load;
  load();
}

function renderAudit(entries, now, withKey) {
  if (entries.length === 0) return h("p", { class: "empty" }, "No audit entries.");
  const head = ["When", "Action", ...(withKey ? ["Key"] : []), "Actor", "Reason", "Token"];
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "audit" },
      h("caption", { class: "visually-hidden" }, "Audit entries, newest first"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          head.map((title) => h("th", { scope: "col" }, title)),
        ),
      ),
      h(
        "tbody",
        {},
        entries.map((entry) =>
          h(
            "tr",
            {},
            h("td", { dataset: { label: "When" } }, time(entry.at, now)),
            h(
              "td",
              { dataset: { label: "Action" } },
              h("span", { class: `badge badge-${entry.action}` }, entry.action),
              entry.evenIfAlive ? " (even if alive)" : "",
            ),
            withKey
              ? h(
                  "td",
                  { dataset: { label: "Key" } },
                  h("a", { href: keyHref(entry.key), class: "key" }, entry.key),
                )
              : null,
            h("td", { dataset: { label: "Actor" } }, entry.actor),
            h("td", { dataset: { label: "Reason" } }, entry.reason),
            h(
              "td",
              { dataset: { label: "Token" } },
              h("code", {}, entry.token ?? entry.record?.token ?? "–"),
            ),
          ),
        ),
      ),
    ),
  );
}

// ---- live refresh ----------------------------------------------------------------------------

/** Server-Sent Events read with fetch (EventSource cannot send the bearer header). */
function connectEvents() {
  state.events?.abort();
  const controller = new AbortController();
  state.events = controller;
  const indicator = $("live");
  let attempt = 0;
  const run = async () => {
    while (!controller.signal.aborted) {
      try {
        const headers = { accept: "text/event-stream" };
        if (state.token) headers.authorization = `Bearer ${state.token}`;
        const response = await fetch(`${BASE}/api/v1/events`, {
          headers,
          signal: controller.signal,
          cache: "no-store",
          credentials: "omit",
        });
        if (response.status === 401) return;
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        indicator.textContent = "● live";
        indicator.className = "live on";
        attempt = 0;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          buffer += value;
          let end = buffer.indexOf("\n\n");
          while (end !== -1) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = block
              .split("\n")
              .filter((line) => line.startsWith("data:"))
              .map((line) => line.slice(5).trimStart())
              .join("\n");
            if (data) onChange(JSON.parse(data));
            end = buffer.indexOf("\n\n");
          }
        }
      } catch (error) {
        if (controller.signal.aborted) return;
        void error;
      }
      indicator.textContent = "○ reconnecting";
      indicator.className = "live off";
      attempt++;
      await new Promise((resolve) =>
        setTimeout(resolve, Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5))),
      );
    }
  };
  run();
}

function onChange(event) {
  if (state.detailKey !== null && event.type !== "resync" && event.key !== state.detailKey) return;
  if ($("clear-dialog").open) {
    state.pendingReload = true;
    return;
  }
  clearTimeout(state.reloadTimer);
  state.reloadTimer = setTimeout(() => state.reload?.(), 300);
}

start();
