// The tenant-facing viewer (GET /viewer, receiver/viewer/): this same UI in "viewer mode".
// The page carries data-mode="viewer"; the token comes from the URL fragment (#token=…), is
// taken out of the URL at once and kept in this module's memory only (never in storage, never
// in a URL a server sees). Admin features, the tenant picker and hidden columns are not shown;
// the detail view gets the event's inclusion-proof badge, checked in the browser.
import { $, api, clear, el, show } from "./app.js";

export const VIEWER = document.documentElement.dataset.mode === "viewer";
const BASE = "/viewer";
let token = null;
if (VIEWER) {
  const match = location.hash.match(/(?:^#|&)token=([^&]+)/);
  if (match) token = decodeURIComponent(match[1]);
  history.replaceState(null, "", location.pathname + location.search);
}

export const viewerToken = {
  get: () => token,
  set: (value) => { token = value || null; },
};

// admin-UI paths ("/", "/?q", "/events/id") → the viewer's ("/viewer", "/viewer?q", …)
export function viewerUrl(url) {
  if (url.startsWith(BASE)) return url;
  if (url === "/" || url.startsWith("/?")) return BASE + url.slice(1);
  return BASE + url;
}

export function adminPath(pathname) {
  return pathname.startsWith(BASE) ? pathname.slice(BASE.length) || "/" : pathname;
}

// the token's claims, for display only (the server checks the signature on every request)
function claims() {
  if (!token) return null;
  try {
    const body = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const data = JSON.parse(atob(body + "=".repeat((4 - (body.length % 4)) % 4)));
    if (typeof data.ten !== "string" || typeof data.exp !== "number") return null;
    return data.exp * 1000 > Date.now() ? data : null;
  } catch (err) {
    return null;
  }
}

let dressed = false;
function dress() {
  if (dressed) return;
  dressed = true;
  const root = document.documentElement;
  const brand = document.querySelector(".brand");
  brand.setAttribute("href", BASE);
  clear(brand);
  if (root.dataset.logo) brand.append(el("img", { className: "viewer-logo", src: root.dataset.logo, alt: "" }));
  brand.append(el("span", {}, root.dataset.title || "Audit log"));
  $("detail-back").setAttribute("href", BASE);
  // hidden, not removed: app.js still reaches these elements
  for (const node of [$("nav"), $("sign-out"), document.querySelector(".views"), $("f-tenant").closest(".field")]) {
    node.hidden = true;
    node.classList.add("viewer-off");
  }
  hideColumns(root.dataset.hidden ? root.dataset.hidden.split(",") : []);
}

// table header → the field its column shows; the tenant column is always hidden (one tenant)
const COLUMN_FIELDS = { Tenant: "tenant_id", User: "user_id", Action: "action", Outcome: "outcome",
  Resource: "resource_type", Event: "event_name", "IP address": "ip_address" };
function hideColumns(hidden) {
  const table = $("events-table");
  const drop = new Set(["tenant_id", ...hidden]);
  const indexes = [];
  table.tHead.rows[0].querySelectorAll("th").forEach((th, i) => {
    if (drop.has(COLUMN_FIELDS[th.textContent.trim()])) { th.hidden = true; indexes.push(i); }
  });
  if (!indexes.length) return;
  const hideCells = () => {
    for (const row of table.tBodies[0].rows) for (const i of indexes) if (row.cells[i]) row.cells[i].hidden = true;
  };
  new MutationObserver(hideCells).observe(table.tBodies[0], { childList: true });
}

// ensureSignedIn in viewer mode: no sign-in form, no /api/me (not a viewer route)
export function viewerSignedIn(session) {
  dress();
  const data = claims();
  if (!data) {
    token = null;
    session.me = null;
    show($("who"), false);
    const form = $("signin-form");
    form.replaceChildren(el("h1", {}, "This audit-log link has expired"),
      el("p", { className: "muted" }, "Open the audit log again from the page that showed it."));
    for (const id of ["view-search", "view-detail", "view-compliance", "view-alerts"]) show($(id), false);
    show($("view-signin"), true);
    return false;
  }
  session.me = { name: data.act || data.ten, role: "viewer", tenants: [data.ten], open: false };
  $("who-name").textContent = data.act ? `${data.ten} · ${data.act}` : data.ten;
  $("who-role").textContent = "read-only";
  show($("who"), true);
  show($("export-csv"), Boolean(data.x));
  show($("export-jsonl"), Boolean(data.x));
  return true;
}

// ---- proof badge: RFC 9162 inclusion of the event's leaf in the checkpoint's tree -------------
const hex = (bytes) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
const fromHex = (text) => new Uint8Array(text.match(/../g).map((h) => parseInt(h, 16)));
async function sha256(...parts) {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const buf = new Uint8Array(total);
  let at = 0;
  for (const p of parts) { buf.set(p, at); at += p.length; }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", buf));
}

async function inclusionHolds(doc) {
  const canonical = Uint8Array.from(atob(doc.canonical), (c) => c.charCodeAt(0));
  let r = await sha256(new Uint8Array([0]), canonical);
  if (hex(r) !== doc.leaf_hash) return false;
  const [origin, sizeText, rootText] = String(doc.checkpoint).split("\n");
  if (origin !== doc.origin || Number(sizeText) !== doc.tree_size) return false;
  let fn = doc.leaf_index;
  let sn = doc.tree_size - 1;
  if (fn > sn) return false;
  for (const h of doc.inclusion) {
    const p = fromHex(h);
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(new Uint8Array([1]), p, r);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = await sha256(new Uint8Array([1]), r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  const root = Uint8Array.from(atob(rootText), (c) => c.charCodeAt(0));
  return sn === 0 && hex(r) === hex(root);
}

export async function proofBadge(eventId) {
  const row = document.querySelector("#detail-body .title-row");
  const old = $("proof-badge");
  if (old) old.remove();
  const badge = el("span", { id: "proof-badge", className: "badge badge-other" }, "Checking proof…");
  row.append(badge);
  let doc;
  try {
    doc = await api(`/api/events/${encodeURIComponent(eventId)}/proof`, null, { quiet: true });
  } catch (err) {
    badge.textContent = err.status === 409 ? "Not yet in a signed checkpoint" : "No inclusion proof";
    badge.title = err.message;
    return;
  }
  const ok = await inclusionHolds(doc).catch(() => false);
  badge.className = `badge badge-${ok ? "success" : "failure"}`;
  badge.textContent = ok ? "✓ In the signed log" : "✗ Proof does not hold";
  badge.title = ok
    ? `Leaf ${doc.leaf_index} of ${doc.tree_size} in ${doc.origin}: checked in this browser against the signed checkpoint`
    : "The inclusion proof does not match the checkpoint";
}
