// otel-audit admin UI: search, event detail, compliance. No framework, no build step.
// Every value from the server is rendered with textContent (text(), el()); nothing from the
// data ever reaches innerHTML or a URL scheme. The token lives in sessionStorage only.
// Bidirectional controls in a value are shown as visible ⟨U+202E⟩ marks, never obeyed, and each
// non-ASCII value is isolated (<bdi>), so no value can reorder the text around it.

const TOKEN_KEY = "otel-audit-token";
const FILTERS = ["q", "tenant", "since", "until", "user", "action", "outcome",
  "resource_type", "resource_id", "ip", "event_name"];
const $ = (id) => document.getElementById(id);

// ---- tiny DOM helpers (text only) --------------------------------------------------------
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const codePoint = (ch) => `U+${ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
// text → nodes: the text, with each bidirectional control replaced by a visible mark
function textNodes(value) {
  const text = String(value);
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(BIDI_CONTROLS)) {
    if (match.index > last) nodes.push(document.createTextNode(text.slice(last, match.index)));
    const mark = document.createElement("span");
    mark.className = "bidi-mark";
    mark.title = "bidirectional control character (not applied)";
    mark.textContent = `⟨${codePoint(match[0])}⟩`;
    nodes.push(mark);
    last = match.index + match[0].length;
  }
  if (last < text.length || nodes.length === 0) nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}
// one value as an isolated run (its direction cannot leak into the text around it); ASCII text
// has no right-to-left letters or controls, so it stays a plain text node
const ASCII = /^[\x00-\x7f]*$/;
function isolated(value) {
  const text = String(value);
  if (ASCII.test(text)) return document.createTextNode(text);
  const bdi = document.createElement("bdi");
  bdi.append(...textNodes(text));
  return bdi;
}
// for places that hold plain text only (option labels, titles)
const visibleText = (value) => String(value).replace(BIDI_CONTROLS, (ch) => `⟨${codePoint(ch)}⟩`);
const setText = (node, ...parts) => node.replaceChildren(...parts.map((p) => (p instanceof Node ? p : isolated(p))));

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "className") node.className = value;
    else if (key === "title") node.title = visibleText(value);
    else if (key === "href") node.setAttribute("href", value);
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    if (child instanceof Node) node.append(child);
    else if (tag === "option") node.append(visibleText(child));
    else node.append(isolated(child));
  }
  return node;
}
const clear = (node) => node.replaceChildren();
const show = (node, visible) => { node.hidden = !visible; };

// ---- session and API --------------------------------------------------------------------
const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY);
  },
  me: null,
};

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, params, options = {}) {
  const url = params ? `${path}?${params}` : path;
  const headers = { accept: "application/json" };
  if (session.token) headers.authorization = `Bearer ${session.token}`;
  let response;
  try {
    response = await fetch(url, { ...options, headers, cache: "no-store" });
  } catch (err) {
    throw new ApiError(0, "The server cannot be reached.");
  }
  let body = null;
  try { body = await response.json(); } catch (err) { body = null; }
  if (response.status === 401 && !options.quiet) {
    session.token = null;
    session.me = null;
    route();
  }
  if (!response.ok) {
    throw new ApiError(response.status, (body && body.error) || `The server answered ${response.status}.`);
  }
  return body;
}

// ---- formatting -------------------------------------------------------------------------
function shortTime(iso) {
  if (!iso) return "";
  return iso.replace("T", " ").replace(/\.(\d{3})\d*Z$/, ".$1").replace(/Z$/, "");
}
function display(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "string") return value === "" ? "—" : value;
  return JSON.stringify(value);
}
function outcomeBadge(outcome) {
  const kind = ["success", "failure", "denied"].includes(outcome) ? outcome : "other";
  return el("span", { className: `badge badge-${kind}` }, outcome || "—");
}
// datetime-local ⇄ ISO UTC (the form's times are UTC, as labelled)
const toLocalInput = (iso) => (iso ? iso.replace(/Z$|[+-]00:?00$/, "").slice(0, 19) : "");
const fromLocalInput = (value) => (value ? `${value.length === 16 ? `${value}:00` : value}Z` : "");

function searchUrl(values) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) if (value) params.set(key, value);
  const query = params.toString();
  return query ? `/?${query}` : "/";
}

function navigate(url, replace = false) {
  if (replace) history.replaceState({ depth: (history.state && history.state.depth) || 0 }, "", url);
  else history.pushState({ depth: ((history.state && history.state.depth) || 0) + 1 }, "", url);
  route();
}

// ---- views ------------------------------------------------------------------------------
const VIEWS = ["signin", "search", "detail", "compliance"];
function showView(name) {
  for (const view of VIEWS) show($(`view-${view}`), view === name);
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", link.dataset.nav === name || (name === "detail" && link.dataset.nav === "search"));
  }
}

async function ensureSignedIn() {
  if (!session.me) {
    try {
      session.me = await api("/api/me", null, { quiet: true });
    } catch (err) {
      if (err.status !== 401) throw err;
      session.me = null;
    }
  }
  if (!session.me) {
    show($("nav"), false);
    show($("who"), false);
    showView("signin");
    $("signin-token").focus();
    return false;
  }
  setText($("who-name"), session.me.name);
  setText($("who-role"), session.me.role);
  show($("sign-out"), !session.me.open);
  show($("nav"), true);
  show($("who"), true);
  return true;
}

async function signIn(event) {
  event.preventDefault();
  const token = $("signin-token").value.trim();
  $("signin-error").textContent = "";
  session.token = token;
  try {
    session.me = await api("/api/me", null, { quiet: true });
  } catch (err) {
    session.token = null;
    $("signin-error").textContent = err.status === 401 ? "This token is not known to the server." : visibleText(err.message);
    return;
  }
  $("signin-token").value = "";
  route();
}

let tenantsCache = null;
async function tenants() {
  if (!tenantsCache) tenantsCache = (await api("/api/tenants")).tenants;
  return tenantsCache;
}

async function fillTenantSelect(select, selected, allowAll) {
  const list = await tenants();
  clear(select);
  if (allowAll) select.append(el("option", { value: "" }, "All tenants"));
  for (const tenant of list) select.append(el("option", { value: tenant }, tenant));
  if (selected && !list.includes(selected)) select.append(el("option", { value: selected }, selected));
  select.value = selected || (allowAll ? "" : list[0] || "");
}

// ---- search -----------------------------------------------------------------------------
function currentQuery() {
  return new URLSearchParams(location.search);
}

async function renderSearch() {
  showView("search");
  const query = currentQuery();
  const form = $("filters");
  for (const name of FILTERS) {
    const input = form.elements[name];
    const value = query.get(name) || "";
    if (name === "tenant") continue;
    input.value = name === "since" || name === "until" ? toLocalInput(value) : value;
  }
  form.elements.limit.value = query.get("limit") || "50";
  await fillTenantSelect(form.elements.tenant, query.get("tenant") || "", true);

  const params = new URLSearchParams();
  for (const name of FILTERS) if (query.get(name)) params.set(name, query.get(name));
  params.set("limit", form.elements.limit.value);
  if (query.get("cursor")) params.set("cursor", query.get("cursor"));
  const page = Number(query.get("page") || "1");

  $("search-error").textContent = "";
  $("results-summary").textContent = "Searching…";
  let answer;
  try {
    answer = await api("/api/events", params);
  } catch (err) {
    $("results-summary").textContent = "";
    $("search-error").textContent = visibleText(err.message);
    clear($("events-body"));
    show($("events-empty"), false);
    return;
  }
  const body = $("events-body");
  clear(body);
  for (const event of answer.events) body.append(eventRow(event));
  show($("events-empty"), answer.events.length === 0);
  const active = FILTERS.filter((name) => query.get(name)).length;
  $("results-summary").textContent =
    `${answer.events.length} event${answer.events.length === 1 ? "" : "s"} on this page · newest first` +
    (active ? ` · ${active} filter${active === 1 ? "" : "s"} active` : "");
  $("page-label").textContent = `Page ${page}`;
  $("page-newer").disabled = page <= 1;
  $("page-older").disabled = !answer.next_cursor;
  $("page-older").dataset.cursor = answer.next_cursor || "";
}

function eventRow(event) {
  const link = el("a", { href: `/events/${encodeURIComponent(event.id)}`, "data-internal": "" },
    shortTime(event.created_at));
  link.title = visibleText(event.created_at);
  const resource = el("span", {}, event.resource_type,
    event.resource_id ? el("span", { className: "muted" }, ` / ${event.resource_id}`) : null);
  return el("tr", {},
    el("td", { className: "nowrap" }, link),
    el("td", {}, event.tenant_id),
    el("td", {}, event.user_id || el("span", { className: "muted" }, "anonymous")),
    el("td", {}, el("code", {}, event.action)),
    el("td", {}, outcomeBadge(event.outcome)),
    el("td", {}, resource),
    el("td", { className: "muted nowrap" }, event.event_name),
    el("td", { className: "nowrap" }, event.ip_address));
}

function formValues() {
  const form = $("filters");
  const values = {};
  for (const name of FILTERS) {
    const raw = form.elements[name].value.trim();
    values[name] = name === "since" || name === "until" ? fromLocalInput(raw) : raw;
  }
  if (form.elements.limit.value !== "50") values.limit = form.elements.limit.value;
  return values;
}

function submitSearch(event) {
  if (event) event.preventDefault();
  navigate(searchUrl(formValues()));
}

function quickRange(days) {
  const form = $("filters");
  if (days === 0) {
    form.elements.since.value = "";
    form.elements.until.value = "";
  } else {
    const since = new Date(Date.now() - days * 86400 * 1000).toISOString();
    form.elements.since.value = toLocalInput(since);
    form.elements.until.value = "";
  }
  submitSearch();
}

function olderPage() {
  const query = currentQuery();
  query.set("cursor", $("page-older").dataset.cursor);
  query.set("page", String(Number(query.get("page") || "1") + 1));
  navigate(`/?${query}`);
}

function newerPage() {
  if (history.state && history.state.depth > 0) { history.back(); return; }
  const query = currentQuery();
  query.delete("cursor");
  query.delete("page");
  navigate(searchUrl(Object.fromEntries(query)));
}

async function exportFormat(format) {
  const query = currentQuery();
  const params = new URLSearchParams();
  for (const name of FILTERS) if (query.get(name)) params.set(name, query.get(name));
  try {
    const { ticket } = await api("/api/export-tickets", null, { method: "POST" });
    params.set("ticket", ticket);
  } catch (err) {
    $("search-error").textContent = visibleText(err.message);
    return;
  }
  const link = el("a", { href: `/api/export.${format}?${params}`, download: "" });
  document.body.append(link);
  link.click();
  link.remove();
}

// ---- detail -----------------------------------------------------------------------------
const DETAIL_FIELDS = [
  ["id", "Event id"], ["created_at", "Time (UTC)"], ["received_at", "Received (UTC)"],
  ["tenant_id", "Tenant"], ["user_id", "User"], ["actor_type", "Actor type"], ["action", "Action"],
  ["outcome", "Outcome"], ["resource_type", "Resource type"], ["resource_id", "Resource id"],
  ["event_name", "Event name"], ["reason", "Reason"], ["ip_address", "IP address"],
  ["user_agent", "User agent"], ["session_id", "Session"], ["service_name", "Service"],
  ["http_method", "HTTP method"], ["http_route", "HTTP route"], ["http_status", "HTTP status"],
  ["trace_id", "Trace id"], ["span_id", "Span id"],
];

async function renderDetail(eventId) {
  showView("detail");
  show($("detail-body"), false);
  $("detail-error").textContent = "";
  let event;
  try {
    event = await api(`/api/events/${encodeURIComponent(eventId)}`);
  } catch (err) {
    $("detail-error").textContent = err.status === 404 ? "No such event, or it is not visible to you." : visibleText(err.message);
    return;
  }
  setText($("detail-title"), event.event_name);
  const outcome = $("detail-outcome");
  setText(outcome, event.outcome);
  outcome.className = `badge badge-${["success", "failure", "denied"].includes(event.outcome) ? event.outcome : "other"}`;
  // each value isolated: a control in one (say the resource id) cannot reverse the rest
  setText($("detail-subtitle"),
    event.user_id || "anonymous", " · ", event.action, " · ", event.resource_type,
    ...(event.resource_id ? [" ", event.resource_id] : []),
    " · ", `${shortTime(event.created_at)} UTC`, " · tenant ", event.tenant_id);
  const flags = String((event.attributes || {})["otel_audit.flags"] || "").split(",");
  show($("detail-bidi"), flags.includes("bidi_control"));

  const related = $("detail-related");
  clear(related);
  const relatedLink = (label, values) => el("a", { className: "btn btn-chip", href: searchUrl({ tenant: event.tenant_id, ...values }), "data-internal": "" }, label);
  related.append(el("span", { className: "muted" }, "What else: "));
  if (event.user_id) related.append(relatedLink("Same user", { user: event.user_id }));
  if (event.resource_id) related.append(relatedLink("Same resource", { resource_type: event.resource_type, resource_id: event.resource_id }));
  if (event.ip_address) related.append(relatedLink("Same IP address", { ip: event.ip_address }));

  const fields = $("detail-fields");
  clear(fields);
  for (const [key, label] of DETAIL_FIELDS) {
    const value = event[key];
    const dd = el("dd", {}, key === "trace_id" || key === "span_id" || key === "id" ? el("code", {}, display(value)) : display(value));
    fields.append(el("dt", {}, label), dd);
  }

  const changes = event.changes && typeof event.changes === "object" ? Object.entries(event.changes) : [];
  const diffBody = $("detail-changes").tBodies[0];
  clear(diffBody);
  for (const [field, change] of changes) {
    const isPair = change && typeof change === "object" && ("old" in change || "new" in change);
    const before = isPair ? change.old : undefined;
    const after = isPair ? change.new : change;
    diffBody.append(el("tr", {},
      el("th", { scope: "row" }, field),
      el("td", { className: "diff-old" }, display(before)),
      el("td", { className: "diff-new" }, display(after))));
  }
  show($("detail-changes"), changes.length > 0);
  show($("detail-changes-empty"), changes.length === 0);

  const attrs = Object.entries(event.attributes || {});
  const attrBody = $("detail-attributes").tBodies[0];
  clear(attrBody);
  for (const [key, value] of attrs) attrBody.append(el("tr", {}, el("th", { scope: "row" }, key), el("td", {}, display(value))));
  show($("detail-attributes"), attrs.length > 0);
  show($("detail-attributes-empty"), attrs.length === 0);
  show($("detail-body"), true);
}

// ---- compliance -------------------------------------------------------------------------
async function renderCompliance() {
  showView("compliance");
  $("compliance-error").textContent = "";
  const select = $("c-tenant");
  const wanted = currentQuery().get("tenant") || "";
  await fillTenantSelect(select, wanted, false);
  const tenant = select.value;
  show($("compliance-body"), false);
  show($("verify-panel"), false);
  if (!tenant) {
    $("compliance-error").textContent = "No tenant has events yet.";
    return;
  }
  renderVerify(tenant);
  let report;
  try {
    report = await api("/api/compliance", new URLSearchParams({ tenant }));
  } catch (err) {
    $("compliance-error").textContent = visibleText(err.message);
    return;
  }
  setText($("compliance-summary"),
    `${report.total_events} stored event${report.total_events === 1 ? "" : "s"} for `, report.tenant,
    report.newest_event ? ` · newest ${shortTime(report.newest_event)} UTC` : "");
  const body = $("categories").tBodies[0];
  clear(body);
  for (const cat of report.categories) {
    const status = cat.last_24h > 0 ? ["Recorded today", "ok"] : cat.last_30d > 0 ? ["Recorded this month", "warn"] : ["None in 30 days", "bad"];
    body.append(el("tr", {},
      el("th", { scope: "row" }, cat.label),
      el("td", { className: "nowrap" }, cat.requirement),
      el("td", { className: "muted" }, cat.definition),
      el("td", { className: "num" }, cat.last_24h.toLocaleString("en")),
      el("td", { className: "num" }, cat.last_30d.toLocaleString("en")),
      el("td", { className: "nowrap" }, cat.last_seen ? shortTime(cat.last_seen) : "—"),
      el("td", {}, el("span", { className: `status status-${status[1]}` }, status[0]))));
  }
  const fieldsBody = $("field-completeness").tBodies[0];
  clear(fieldsBody);
  for (const field of report.fields) {
    fieldsBody.append(el("tr", {},
      el("th", { scope: "row" }, field.label),
      el("td", { className: "muted" }, field.definition),
      el("td", { className: "num" }, field.missing.toLocaleString("en")),
      el("td", {}, el("span", { className: `status status-${field.complete ? "ok" : "warn"}` },
        field.complete ? "Every event" : "Incomplete"))));
  }
  show($("compliance-body"), true);
}

// Tamper-evidence status comes from GET /api/verify when the server has it; when the route
// does not answer, the panel stays hidden: no status is ever shown that was not computed.
async function renderVerify(tenant) {
  let result;
  try {
    result = await api("/api/verify", new URLSearchParams({ tenant }), { quiet: true });
  } catch (err) {
    return;
  }
  if (!result || typeof result !== "object") return;
  const entry = Array.isArray(result.tenants) ? result.tenants.find((t) => t.tenant === tenant) || result : result;
  const verdict = [entry.ok, entry.intact, entry.valid].find((v) => typeof v === "boolean");
  const statusWord = typeof entry.status === "string" ? entry.status.toLowerCase() : "";
  const intact = verdict !== undefined ? verdict : ["ok", "intact", "valid"].includes(statusWord) ? true
    : ["damaged", "broken", "tampered", "failed", "invalid"].includes(statusWord) ? false : undefined;
  if (intact === undefined) return;
  const status = $("verify-status");
  clear(status);
  const detail = entry.summary || entry.message || entry.detail || "";
  const broken = entry.first_bad_seq ?? entry.first_bad_sequence ?? entry.sequence;
  status.append(el("span", { className: `status status-${intact ? "ok" : "bad"}` }, intact ? "Chain intact" : "Chain broken"),
    detail ? ` ${detail}` : "",
    !intact && broken !== undefined && broken !== null ? ` · first bad sequence ${broken}` : "");
  show($("verify-panel"), true);
}

// ---- router -----------------------------------------------------------------------------
async function route() {
  try {
    if (!(await ensureSignedIn())) return;
    const path = location.pathname;
    const detail = path.match(/^\/events\/([^/]+)$/);
    if (detail) await renderDetail(decodeURIComponent(detail[1]));
    else if (path === "/compliance") await renderCompliance();
    else await renderSearch();
  } catch (err) {
    const target = $("search-error");
    showView("search");
    target.textContent = visibleText(err.message || String(err));
  }
}

function interceptLinks(event) {
  const link = event.target.closest("a[data-internal]");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin) return;
  event.preventDefault();
  if (link.id === "detail-back" && history.state && history.state.depth > 0) { history.back(); return; }
  navigate(url.pathname + url.search);
}

function init() {
  if (!history.state) history.replaceState({ depth: 0 }, "", location.href);
  $("signin-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => {
    session.token = null;
    session.me = null;
    tenantsCache = null;
    navigate("/", true);
  });
  $("filters").addEventListener("submit", submitSearch);
  $("reset").addEventListener("click", () => navigate("/"));
  for (const button of document.querySelectorAll("[data-range]")) {
    button.addEventListener("click", () => quickRange(Number(button.dataset.range)));
  }
  $("page-older").addEventListener("click", olderPage);
  $("page-newer").addEventListener("click", newerPage);
  $("export-csv").addEventListener("click", () => exportFormat("csv"));
  $("export-jsonl").addEventListener("click", () => exportFormat("jsonl"));
  $("c-tenant").addEventListener("change", () => navigate(`/compliance?${new URLSearchParams({ tenant: $("c-tenant").value })}`));
  document.addEventListener("click", interceptLinks);
  window.addEventListener("popstate", route);
  route();
}

init();
