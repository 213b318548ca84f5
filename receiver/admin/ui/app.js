// otel-audit admin UI: search (totals, timeline, facets, saved views), event detail, compliance,
// alerts. No framework, no build step.
// Every value from the server is rendered with textContent (text(), el()); nothing from the
// data ever reaches innerHTML or a URL scheme. The token is never kept by the page: sign-in trades
// it for an HttpOnly session cookie (receiver/admin/session.py), shared by this origin's tabs.
// Bidirectional controls in a value are shown as visible ⟨U+202E⟩ marks, never obeyed, and each
// non-ASCII value is isolated (<bdi>), so no value can reorder the text around it.

import { renderAlerts } from "./alerts.js";
import { initRetention, renderRetention } from "./retention.js";
import { countCell, renderIntegrity, renderProof } from "./integrity.js";
import { diffCells, longValue, renderRaw } from "./values.js";
import { cancelExport, streamExport } from "./exports.js";
import { renderStreams } from "./streams.js";
import { renderStats, suggest } from "./stats.js";
import { deleteView, renderSavedViews, saveView } from "./views.js";
import { VIEWER, adminPath, proofBadge, viewerSignedIn, viewerToken, viewerUrl } from "./viewer.js";

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
    else if (key.startsWith("data-") || key.startsWith("aria-")) node.setAttribute(key, value);
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
sessionStorage.removeItem(TOKEN_KEY);  // where an older version of this page kept the token
const session = {
  // viewer mode (viewer.js) keeps its token in memory and sends it; the admin UI has its session cookie
  get token() { return VIEWER ? viewerToken.get() : null; },
  set token(value) { if (VIEWER) viewerToken.set(value); },
  me: null,
  // why the user is on the sign-in page (a revoked token, an expired session, another tab's sign-out)
  signedOut: "",
};
// tabs of this origin tell each other about a sign-out, so none keeps showing data
const tabs = "BroadcastChannel" in window ? new BroadcastChannel("otel-audit-session") : null;

class ApiError extends Error {
  constructor(status, message, body) { super(message); this.status = status; this.body = body; }
}

async function api(path, params, options = {}) {
  const url = params ? `${path}?${params}` : path;
  // the custom header: the server refuses a cookie-authenticated state change without it (CSRF)
  const headers = { accept: "application/json", "x-requested-with": "otel-audit", ...(options.headers || {}) };
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
    signedOut(body);
    route();
  }
  if (!response.ok) {
    throw new ApiError(response.status, (body && body.error) || `The server answered ${response.status}.`, body);
  }
  return body;
}

// ---- formatting -------------------------------------------------------------------------
function utcTime(iso) {
  if (!iso) return "";
  return iso.replace("T", " ").replace(/\.(\d{3})\d*Z$/, ".$1").replace(/Z$/, "");
}
// ---- time zone of the display: UTC (default) or the browser's local time ------------------
const TZ_KEY = "otel-audit-tz";
const useLocal = () => localStorage.getItem(TZ_KEY) === "local";
const pad = (n, width = 2) => String(n).padStart(width, "0");
function localTime(iso, millis = true) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return utcTime(iso);
  const text = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return millis ? `${text}.${pad(d.getMilliseconds(), 3)}` : text;
}
// a stored time as the display zone shows it (the table, the detail page, the histogram axis)
const shortTime = (iso) => (iso && useLocal() ? localTime(iso) : utcTime(iso));
const zoneName = () => (useLocal() ? "local time" : "UTC");
// since/until: relative ("now-7d") stays as typed; an ISO time is shown in the display zone
function toTimeInput(value) {
  if (!value || /^now/i.test(value)) return value || "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return value;
  return useLocal() ? localTime(value, false) : utcTime(d.toISOString()).slice(0, 19);
}
// and back: a time without a zone is read in the display zone; anything else goes to the server as typed
function fromTimeInput(raw) {
  const value = raw.trim();
  if (!value) return "";
  if (/^now/i.test(value)) return value.toLowerCase().replace(/\s+/g, "");
  const m = value.match(/^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?$/);
  if (!m) return value;
  const [y, mo, d, h = "0", mi = "0", sec = "0", frac = "0"] = m.slice(1);
  const ms = Number(frac.padEnd(3, "0").slice(0, 3));
  const date = useLocal()
    ? new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec), ms)
    : new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec), ms));
  return Number.isNaN(date.getTime()) ? value : date.toISOString().replace(".000Z", "Z");
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
function searchUrl(values) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) {
    if (Array.isArray(value)) for (const v of value) params.append(key, v);
    else if (value !== "" && value !== null && value !== undefined) params.set(key, value);
  }
  const query = params.toString();
  return query ? `/?${query}` : "/";
}

function navigate(url, replace = false) {
  if (VIEWER) url = viewerUrl(url);
  if (replace) history.replaceState({ depth: (history.state && history.state.depth) || 0 }, "", url);
  else history.pushState({ depth: ((history.state && history.state.depth) || 0) + 1 }, "", url);
  route();
}

// ---- views ------------------------------------------------------------------------------
const VIEWS = ["signin", "search", "detail", "compliance", "alerts", "retention", "streams"];
function showView(name) {
  for (const view of VIEWS) show($(`view-${view}`), view === name);
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", link.dataset.nav === name || (name === "detail" && link.dataset.nav === "search"));
  }
}

// a 401 after being signed in: remember why, to say it on the sign-in page
function signedOut(body) {
  const reason = body && body.signed_out ? body.error : "";
  if (session.me || reason) {
    session.signedOut = reason ? `Signed out: ${reason}.` : "Signed out: the server no longer accepts this session.";
  }
  session.me = null;
  tenantsCache = null;
}

async function ensureSignedIn() {
  if (VIEWER) return viewerSignedIn(session);
  if (!session.me) {
    try {
      session.me = await api("/api/me", null, { quiet: true });
    } catch (err) {
      if (err.status !== 401) throw err;
      signedOut(err.body);
    }
  }
  if (!session.me) {
    show($("nav"), false);
    show($("who"), false);
    showView("signin");
    $("signin-notice").textContent = visibleText(session.signedOut);
    $("signin-token").focus();
    return false;
  }
  setText($("who-name"), session.me.name);
  setText($("who-role"), session.me.role);
  show($("sign-out"), !session.me.open);
  show($("nav"), true);
  show($("nav-streams"), session.me.role === "admin");
  show($("who"), true);
  // the retention API is admin-only: its link is not offered to auditors
  for (const link of document.querySelectorAll("[data-admin-only]")) show(link, session.me.role === "admin");
  return true;
}

async function signIn(event) {
  event.preventDefault();
  const token = $("signin-token").value.trim();
  $("signin-error").textContent = "";
  try {
    await api("/api/session", null, { method: "POST", quiet: true, headers: { authorization: `Bearer ${token}` } });
    session.me = await api("/api/me", null, { quiet: true });
  } catch (err) {
    $("signin-error").textContent = err.status === 401 ? "This token is not known to the server." : visibleText(err.message);
    return;
  }
  $("signin-token").value = "";
  if (tabs) tabs.postMessage("signed-in");
  session.signedOut = "";
  $("signin-notice").textContent = "";
  route();
}

let tenantsCache = null;
async function tenants() {
  if (!tenantsCache) tenantsCache = VIEWER ? session.me.tenants : (await api("/api/tenants")).tenants;
  return tenantsCache;
}

async function fillTenantSelect(select, selected, allowAll) {
  const list = await tenants();
  clear(select);
  if (allowAll) select.append(el("option", { value: "" }, "All tenants"));
  for (const tenant of list) select.append(el("option", { value: tenant }, tenant));
  // a tenant named in the URL but not listed: offered only to a token for every tenant (whose list
  // holds only tenants with events); a scoped token's out-of-scope tenant is never put in its list
  const everyTenant = session.me && (session.me.tenants || []).includes("*");
  if (selected && !list.includes(selected) && everyTenant) select.append(el("option", { value: selected }, selected));
  select.value = selected || (allowAll ? "" : list[0] || "");
}

// ---- search -----------------------------------------------------------------------------
function currentQuery() {
  return new URLSearchParams(location.search);
}

// the filters of the search in the URL as /api/ parameters; the audit trail's own events are
// left out unless "Show audit-log reads" is on (trail=1) or the search asks for them by name
const TRAIL_EXCLUDED = "!audit.audit_log.*";
// the total of the search on screen (the export asks before writing more than EXPORT_CONFIRM rows)
let lastTotal = null;
const EXPORT_CONFIRM = 10000;
// set by the pager: after the page renders, the results' top is scrolled into view
let scrollToResults = false;
function apiParams(query) {
  const params = new URLSearchParams();
  for (const name of FILTERS) for (const value of query.getAll(name)) if (value) params.append(name, value);
  const asked = query.getAll("event_name").filter((v) => !v.startsWith("!"));
  if (!query.get("trail") && !asked.some((v) => v.startsWith("audit.audit_log"))) params.append("event_name", TRAIL_EXCLUDED);
  return params;
}

// each search render's number: an answer arriving after a newer search started is dropped, so a
// quick second search (or a page change) is never overwritten by the first one's late answer
let searchSeq = 0;
async function renderSearch() {
  const seq = ++searchSeq;
  const stale = () => seq !== searchSeq;
  showView("search");
  const query = currentQuery();
  const form = $("filters");
  for (const name of FILTERS) {
    const input = form.elements[name];
    const value = query.getAll(name).join(",");
    if (name === "tenant") continue;
    input.value = name === "since" || name === "until" ? toTimeInput(value) : value;
  }
  form.elements.limit.value = query.get("limit") || "50";
  $("f-trail").checked = Boolean(query.get("trail"));
  $("f-tz").value = useLocal() ? "local" : "utc";
  for (const label of document.querySelectorAll("[data-tz-label]")) label.textContent = zoneName();
  $("th-time").textContent = `Time (${zoneName()})`;
  renderSavedViews();
  await fillTenantSelect(form.elements.tenant, query.get("tenant") || "", true);
  if (stale()) return;

  const params = apiParams(query);
  const statsParams = new URLSearchParams(params);
  statsParams.set("buckets", "40");
  params.set("limit", form.elements.limit.value);
  if (query.get("cursor")) params.set("cursor", query.get("cursor"));
  const page = Number(query.get("page") || "1");

  $("search-error").textContent = "";
  show($("did-you-mean"), false);
  $("results-summary").textContent = "Searching…";
  lastTotal = null;
  $("stats").setAttribute("aria-busy", "true");
  const statsAnswer = api("/api/stats", statsParams).catch(() => null);
  let answer;
  try {
    answer = await api("/api/events", params);
  } catch (err) {
    if (stale()) return;
    $("results-summary").textContent = "";
    $("search-error").textContent = visibleText(err.message);
    clear($("events-body"));
    show($("events-empty"), false);
    show($("stats"), false);
    $("stats").setAttribute("aria-busy", "false");
    $("page-newer").disabled = true;
    $("page-older").disabled = true;
    scrollToResults = false;
    return;
  }
  if (stale()) return;
  const body = $("events-body");
  clear(body);
  for (const event of answer.events) body.append(eventRow(event));
  show($("events-empty"), answer.events.length === 0);
  const active = FILTERS.filter((name) => query.get(name)).length;
  const limit = Number(form.elements.limit.value);
  const first = (page - 1) * limit + 1;
  const total = typeof answer.total === "number" ? answer.total : null;
  lastTotal = total;
  const shown = answer.events.length ? ` · showing ${first.toLocaleString("en")}–${(first + answer.events.length - 1).toLocaleString("en")}` : "";
  $("results-summary").textContent =
    (total === null ? `${answer.events.length} events on this page` : `${total.toLocaleString("en")} event${total === 1 ? "" : "s"}`) +
    `${shown} · newest first` + (active ? ` · ${active} filter${active === 1 ? "" : "s"} active` : "");
  $("page-label").textContent = `Page ${page}`;
  $("page-newer").disabled = page <= 1;
  $("page-older").disabled = !answer.next_cursor;
  $("page-older").dataset.cursor = answer.next_cursor || "";
  const stats = await statsAnswer;
  if (stale()) return;
  renderStats(stats, query);
  if (scrollToResults) {
    scrollToResults = false;
    const top = $("results-card").getBoundingClientRect().top + window.scrollY - $("nav").closest("header").offsetHeight - 8;
    window.scrollTo(0, Math.max(0, top));
  }
  if (total === 0) await suggest(query, stale);
}

function eventRow(event) {
  const link = el("a", { href: `/events/${encodeURIComponent(event.id)}`, "data-internal": "" },
    shortTime(event.created_at));
  link.title = visibleText(event.created_at);
  const resource = el("span", {}, longValue(event.resource_type, 24, true),
    event.resource_id ? el("span", { className: "muted" }, " / ", longValue(event.resource_id, 40, true)) : null);
  return el("tr", {},
    el("td", { className: "nowrap" }, link),
    el("td", {}, event.tenant_id),
    el("td", {}, event.user_id ? longValue(event.user_id, 48, true) : el("span", { className: "muted" }, "anonymous")),
    el("td", {}, el("code", {}, longValue(event.action, 32, true))),
    el("td", {}, outcomeBadge(event.outcome)),
    el("td", {}, resource),
    el("td", { className: "muted nowrap" }, event.event_name),
    el("td", { className: "nowrap" }, event.ip_address));
}

// a field may hold several values, comma-separated (OR'd; "!x" excludes), as SPEC section 8 allows;
// not the resource id, whose values may hold commas
const MULTI = new Set(["user", "action", "resource_type", "ip", "event_name"]);
function formValues() {
  const form = $("filters");
  const values = {};
  for (const name of FILTERS) {
    const raw = form.elements[name].value.trim();
    if (name === "since" || name === "until") values[name] = fromTimeInput(raw);
    else if (MULTI.has(name) && raw.includes(",")) values[name] = raw.split(",").map((v) => v.trim()).filter(Boolean);
    else values[name] = raw;
  }
  if (form.elements.limit.value !== "50") values.limit = form.elements.limit.value;
  if ($("f-trail").checked) values.trail = "1";
  return values;
}

function submitSearch(event) {
  if (event) event.preventDefault();
  navigate(searchUrl(formValues()));
}

// a quick range stays relative (since=now-7d), so a bookmark keeps meaning "the last 7 days"
function quickRange(since) {
  const form = $("filters");
  form.elements.since.value = since;
  form.elements.until.value = "";
  submitSearch();
}

function olderPage() {
  scrollToResults = true;
  const query = currentQuery();
  query.set("cursor", $("page-older").dataset.cursor);
  query.set("page", String(Number(query.get("page") || "1") + 1));
  navigate(`/?${query}`);
}

function newerPage() {
  scrollToResults = true;
  if (history.state && history.state.depth > 0) { history.back(); return; }
  const query = currentQuery();
  query.delete("cursor");
  query.delete("page");
  navigate(`/?${query}`);
}

async function exportFormat(format) {
  const params = apiParams(currentQuery());
  if (lastTotal !== null && lastTotal > EXPORT_CONFIRM &&
      !window.confirm(`Export ${lastTotal.toLocaleString("en")} events as ${format === "csv" ? "CSV" : "JSON lines"}? Large exports take a while; narrow the filters for a smaller file.`)) return;
  // streamed with progress and Cancel (exports.js)
  await streamExport(format, params, session.token);
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
    ...(event.resource_id ? [" ", event.resource_id.length > 80 ? `${event.resource_id.slice(0, 80)}…` : event.resource_id] : []),
    " · ", `${shortTime(event.created_at)} ${zoneName()}`, " · tenant ", event.tenant_id);
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
    if (VIEWER && !(key in event)) continue;  // a field the viewer's config hides
    const value = event[key];
    const dd = el("dd", {}, key === "trace_id" || key === "span_id" || key === "id" ? el("code", {}, display(value)) : longValue(display(value), 160));
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
      el("th", { scope: "row" }, longValue(field, 80)),
      ...diffCells(before, after, display)));
  }
  show($("detail-changes"), changes.length > 0);
  show($("detail-changes-empty"), changes.length === 0);

  const attrs = Object.entries(event.attributes || {});
  const attrBody = $("detail-attributes").tBodies[0];
  clear(attrBody);
  for (const [key, value] of attrs) attrBody.append(el("tr", {}, el("th", { scope: "row" }, longValue(key, 80)), el("td", {}, longValue(display(value), 300))));
  show($("detail-attributes"), attrs.length > 0);
  show($("detail-attributes-empty"), attrs.length === 0);
  renderRaw($("detail-raw-body"), event);
  show($("detail-body"), true);
  // the viewer's badge (viewer.js) there, the proof card (integrity.js) here
  show($("detail-proof").closest(".card"), !VIEWER);
  if (VIEWER) proofBadge(event.id);
  else renderProof(event.id);
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
  renderIntegrity(tenant);
  let report;
  try {
    report = await api("/api/compliance", new URLSearchParams({ tenant }));
  } catch (err) {
    $("compliance-error").textContent = visibleText(err.message);
    return;
  }
  setText($("compliance-summary"),
    el("a", { href: searchUrl({ tenant: report.tenant, trail: "1" }), "data-internal": "", className: "count-link" },
      `${report.total_events.toLocaleString("en")} stored event${report.total_events === 1 ? "" : "s"}`), " for ", report.tenant,
    report.newest_event ? ` · newest ${utcTime(report.newest_event)} UTC` : "",
    report.unchained_events ? el("span", { className: "status status-bad unchained-note" },
      `${report.unchained_events.toLocaleString("en")} outside the tamper-evidence log`) : "");
  const body = $("categories").tBodies[0];
  clear(body);
  for (const cat of report.categories) {
    const status = cat.last_24h > 0 ? ["Recorded today", "ok"] : cat.last_30d > 0 ? ["Recorded this month", "warn"] : ["None in 30 days", "bad"];
    body.append(el("tr", {},
      el("th", { scope: "row" }, cat.label),
      el("td", { className: "nowrap" }, cat.requirement),
      el("td", { className: "muted" }, cat.definition),
      countCell(cat.last_24h, report.tenant, cat.searches, "now-24h"),
      countCell(cat.last_30d, report.tenant, cat.searches, "now-30d"),
      el("td", { className: "nowrap" }, cat.last_seen ? utcTime(cat.last_seen) : "—"),
      el("td", {}, el("span", { className: `status status-${status[1]}` }, status[0]))));
  }
  const fieldsBody = $("field-completeness").tBodies[0];
  clear(fieldsBody);
  for (const field of report.fields) {
    fieldsBody.append(el("tr", {},
      el("th", { scope: "row" }, field.label),
      el("td", { className: "muted" }, field.definition),
      countCell(field.missing, report.tenant, field.searches),
      el("td", {}, el("span", { className: `status status-${field.complete ? "ok" : "warn"}` },
        field.complete ? "Every event" : "Incomplete"))));
  }
  const schemas = report.schemas || [];
  const schemaBody = $("schema-counts").tBodies[0];
  clear(schemaBody);
  for (const s of schemas) {
    schemaBody.append(el("tr", {},
      el("th", { scope: "row" }, s.event_name),
      el("td", {}, s.version),
      el("td", { className: "num" }, s.valid.toLocaleString("en")),
      el("td", { className: "num" }, s.flagged.toLocaleString("en")),
      el("td", { className: "num" }, s.rejected.toLocaleString("en"))));
  }
  show($("schemas-card"), schemas.length > 0);
  renderFindings(report.findings || []);
  show($("compliance-body"), true);
}

// Source gaps and journal tampering (receiver/integrity/findings.py), one line each.
function renderFindings(findings) {
  const list = $("findings-list");
  clear(list);
  if (!findings.length) {
    list.append(el("li", {}, el("span", { className: "status status-ok" }, "Complete"),
      " every numbered event sent arrived; no journal damage"));
    return;
  }
  for (const f of findings) {
    const label = f.kind === "source-gap" ? "Events never arrived" : "Journal damage";
    list.append(el("li", {}, el("span", { className: "status status-bad" }, label), ` ${f.detail}`));
  }
}

// ---- router -----------------------------------------------------------------------------
async function route() {
  try {
    if (!(await ensureSignedIn())) return;
    const path = VIEWER ? adminPath(location.pathname) : location.pathname;
    const detail = path.match(/^\/events\/([^/]+)$/);
    if (detail) await renderDetail(decodeURIComponent(detail[1]));
    else if (path === "/compliance") await renderCompliance();
    else if (path === "/alerts") await renderAlerts();
    else if (path === "/retention") await renderRetention();
    else if (path === "/streams") await renderStreams();
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
  $("sign-out").addEventListener("click", async () => {
    try { await api("/api/session", null, { method: "DELETE", quiet: true }); } catch (err) { /* signed out here anyway */ }
    session.me = null;
    tenantsCache = null;
    if (tabs) tabs.postMessage("signed-out");
    navigate("/", true);
  });
  if (tabs) {
    tabs.addEventListener("message", (event) => {
      if (event.data === "signed-in" && !session.me) { session.signedOut = ""; route(); return; }
      if (event.data !== "signed-out" || !session.me) return;
      session.me = null;
      tenantsCache = null;
      session.signedOut = "Signed out in another tab.";
      route();
    });
  }
  $("filters").addEventListener("submit", submitSearch);
  $("reset").addEventListener("click", () => navigate("/"));
  for (const button of document.querySelectorAll("[data-range]")) {
    button.addEventListener("click", () => quickRange(button.dataset.range));
  }
  $("f-trail").addEventListener("change", submitSearch);
  $("f-tz").addEventListener("change", () => {
    const since = fromTimeInput($("f-since").value);
    const until = fromTimeInput($("f-until").value);
    localStorage.setItem(TZ_KEY, $("f-tz").value);
    $("f-since").value = toTimeInput(since);
    $("f-until").value = toTimeInput(until);
    route();
  });
  $("views").addEventListener("change", () => { if ($("views").value) navigate($("views").value); });
  $("save-view").addEventListener("click", saveView);
  $("delete-view").addEventListener("click", deleteView);
  $("a-status").addEventListener("change", () => navigate(`/alerts?${new URLSearchParams({ status: $("a-status").value })}`));
  $("page-older").addEventListener("click", olderPage);
  $("page-newer").addEventListener("click", newerPage);
  $("export-csv").addEventListener("click", () => exportFormat("csv"));
  $("export-jsonl").addEventListener("click", () => exportFormat("jsonl"));
  $("export-cancel").addEventListener("click", cancelExport);
  $("streams-refresh").addEventListener("click", () => renderStreams());
  $("c-tenant").addEventListener("change", () => navigate(`/compliance?${new URLSearchParams({ tenant: $("c-tenant").value })}`));
  initRetention();
  document.addEventListener("click", interceptLinks);
  window.addEventListener("popstate", route);
  route();
}

init();

// for the view modules (stats.js, views.js, alerts.js)
export { $, el, clear, show, api, visibleText, shortTime, searchUrl, navigate, currentQuery, apiParams, fromTimeInput, showView };
