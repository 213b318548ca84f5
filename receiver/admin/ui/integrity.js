// Tamper evidence in the UI (issue 15 item 6): the Compliance page's panel (GET
// /api/integrity-status: any role, within its tenants; events in no log and findings count as
// damage, so such a tenant is never green), links from every countable figure to its events,
// and an event's proof status on its detail page (GET /api/events/{id}/proof, its inclusion path
// checked here against the checkpoint's root with Web Crypto). Text-only rendering, as in app.js.
import { $, api, clear, el, searchUrl, show, visibleText } from "./app.js";

// ---- count links --------------------------------------------------------------------------
// a count and the searches (SPEC section 8 filters, OR'd) that list its events; one search: the
// count is its link; several: the count, then one link per part; none: plain text, saying why
export function countCell(count, tenant, searches, since) {
  const text = Number(count).toLocaleString("en");
  const cell = el("td", { className: "num" });
  const url = (filters) => searchUrl({ tenant, ...(since ? { since } : {}), ...filters,
    ...(Object.values(filters).flat().some((v) => String(v).startsWith("audit.audit_log")) ? { trail: "1" } : {}) });
  if (!Number(count)) {
    cell.append(text);
  } else if (!searches || !searches.length) {
    cell.append(el("span", { title: "no search filter selects exactly these events" }, text));
  } else if (searches.length === 1) {
    cell.append(el("a", { href: url(searches[0]), "data-internal": "", className: "count-link" }, text));
  } else {
    cell.append(text, " ");
    searches.forEach((filters, i) => cell.append(
      el("a", { href: url(filters), "data-internal": "", className: "count-link count-part", title: `part ${i + 1} of ${searches.length}` }, `(${i + 1})`)));
  }
  return cell;
}

// ---- the Compliance page's tamper-evidence panel -------------------------------------------
let integritySeq = 0;
export async function renderIntegrity(tenant) {
  const seq = ++integritySeq;
  const panel = $("verify-panel");
  const status = $("verify-status");
  const details = $("verify-details");
  clear(status);
  clear(details);
  status.append(el("span", { className: "status status-pending" }, "Checking…"),
    " verifying this tenant's logs and checkpoints; this can take a few seconds");
  panel.setAttribute("aria-busy", "true");
  show(panel, true);
  let result;
  try {
    result = await api("/api/integrity-status", new URLSearchParams({ tenant }));
  } catch (err) {
    if (seq !== integritySeq) return;
    panel.setAttribute("aria-busy", "false");
    clear(status);
    status.append(el("span", { className: "status status-warn" }, "Not checked"), ` ${visibleText(err.message)}`);
    return;
  }
  if (seq !== integritySeq) return;
  panel.setAttribute("aria-busy", "false");
  const intact = result.status === "intact";
  clear(status);
  status.append(el("span", { className: `status status-${intact ? "ok" : "bad"}` }, intact ? "Intact" : "Damaged"),
    ` ${Number(result.events).toLocaleString("en")} events in the tamper-evidence log, ${Number(result.checkpoints).toLocaleString("en")} signed checkpoints`);
  if (result.unchained > 0) {
    details.append(el("li", { className: "damage", "data-kind": "unchained" },
      el("strong", {}, `${Number(result.unchained).toLocaleString("en")} events are outside the tamper-evidence log`),
      ": nothing proves they were not added, changed or removed."));
  }
  for (const d of result.damages || []) {
    if (d.kind === "unchained") continue;
    details.append(el("li", { className: "damage", "data-kind": d.kind }, el("strong", {}, d.kind), `: ${d.detail}`));
  }
  for (const f of result.findings || []) {
    details.append(el("li", { className: "damage", "data-kind": f.kind }, el("strong", {}, f.kind), `: ${f.detail}`));
  }
  if (!result.signatures_checked) details.append(el("li", { className: "muted" }, "Signatures not checked: the receiver has no public key."));
  if (!result.external_copy) details.append(el("li", { className: "muted" }, "No published checkpoint copy was compared: a rewrite by someone holding the signing key cannot be excluded."));
}

// ---- an event's proof ------------------------------------------------------------------------
const hexToBytes = (hex) => Uint8Array.from(hex.match(/../g) || [], (h) => parseInt(h, 16));
const b64ToBytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
const toHex = (bytes) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
async function sha256(...parts) {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { all.set(p, at); at += p.length; }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", all));
}

// RFC 9162 section 2.1.3.2: the root the inclusion path leads to, or null if it is malformed
async function rootFromInclusion(leafIndex, treeSize, leafHash, path) {
  if (leafIndex >= treeSize) return null;
  let fn = leafIndex;
  let sn = treeSize - 1;
  let r = leafHash;
  for (const hex of path) {
    const p = hexToBytes(hex);
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(Uint8Array.of(1), p, r);
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = await sha256(Uint8Array.of(1), r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}

// the proof's canonical bytes hash to its leaf hash, its inclusion path leads to the root its
// checkpoint states, and the checkpoint names the same log and tree size
export async function checkProof(proof) {
  if (!globalThis.crypto || !crypto.subtle) return { ok: null, why: "this browser cannot hash here (not a secure context)" };
  const [origin, size, rootB64] = String(proof.checkpoint || "").split("\n");
  if (origin !== proof.origin || Number(size) !== proof.tree_size) return { ok: false, why: "the checkpoint names another log or tree size" };
  const leaf = await sha256(Uint8Array.of(0), b64ToBytes(proof.canonical));
  if (toHex(leaf) !== String(proof.leaf_hash).toLowerCase()) return { ok: false, why: "the event's bytes do not hash to its leaf" };
  const root = await rootFromInclusion(proof.leaf_index, proof.tree_size, leaf, proof.inclusion || []);
  if (!root || toHex(root) !== toHex(b64ToBytes(rootB64))) return { ok: false, why: "the inclusion path does not lead to the checkpoint's root" };
  return { ok: true, why: "" };
}

export async function renderProof(eventId) {
  const box = $("detail-proof");
  clear(box);
  box.append(el("span", { className: "status status-pending" }, "Checking…"), " fetching this event's inclusion proof");
  box.setAttribute("aria-busy", "true");
  let proof;
  try {
    proof = await api(`/api/events/${encodeURIComponent(eventId)}/proof`, null, { quiet: true });
  } catch (err) {
    box.setAttribute("aria-busy", "false");
    clear(box);
    box.append(el("span", { className: `status status-${err.status === 409 ? "warn" : "bad"}` }, "Not verified"), ` ${visibleText(err.message)}`);
    return;
  }
  const verdict = await checkProof(proof).catch((err) => ({ ok: false, why: String(err) }));
  box.setAttribute("aria-busy", "false");
  clear(box);
  const label = verdict.ok ? "Verified" : verdict.ok === null ? "Not checked" : "Not verified";
  box.append(el("span", { className: `status status-${verdict.ok ? "ok" : verdict.ok === null ? "warn" : "bad"}` }, label),
    verdict.ok ? " included in its log: the path from its leaf leads to the signed checkpoint's root" : ` ${verdict.why}`,
    el("dl", { className: "fields proof-fields" },
      el("dt", {}, "Log"), el("dd", {}, el("code", {}, proof.origin)),
      el("dt", {}, "Leaf index"), el("dd", {}, Number(proof.leaf_index).toLocaleString("en")),
      el("dt", {}, "Checkpoint"), el("dd", {}, `tree size ${Number(proof.tree_size).toLocaleString("en")}`,
        el("pre", { className: "checkpoint-note" }, proof.checkpoint))));
}
