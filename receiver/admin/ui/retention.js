// The Retention page (issue 15 item 7): per-tenant policies, what is hot, archived and expiring
// next, legal holds with who and why (placed and released by admins), and the retention job's
// history (its own audit events). The API is admin-only (receiver/admin/retention_api.py), so
// auditors are not shown the page's link and get the API's reason if they open it.
// Text-only rendering, as in app.js.
import { $, api, clear, el, searchUrl, show, shortTime, showView, visibleText } from "./app.js";

// the actor the retention job records its runs under (receiver/retention/events.py)
const JOB_ACTOR = "otel-audit-retention";

const count = (n) => Number(n || 0).toLocaleString("en");
function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(n || 0);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}
const day = (iso) => (iso ? String(iso).slice(0, 10) : "—");

let retentionSeq = 0;
export async function renderRetention() {
  const seq = ++retentionSeq;
  showView("retention");
  const problem = $("retention-error");
  problem.textContent = "";
  show($("retention-body"), false);
  $("retention-loading").hidden = false;
  let answer;
  try {
    answer = await api("/api/retention/status");
  } catch (err) {
    if (seq !== retentionSeq) return;
    $("retention-loading").hidden = true;
    problem.textContent = err.status === 404
      ? "Retention is not set up on this receiver."
      : visibleText(err.message);
    return;
  }
  if (seq !== retentionSeq) return;
  $("retention-loading").hidden = true;
  const tenants = answer.tenants || [];
  const body = $("retention-body-rows");
  clear(body);
  for (const t of tenants) body.append(tenantRow(t));
  show($("retention-empty"), tenants.length === 0);
  const select = $("hold-tenant");
  clear(select);
  for (const t of tenants) if (!t.legal_hold) select.append(el("option", { value: t.tenant }, t.tenant));
  show($("hold-form"), select.options.length > 0);
  show($("retention-body"), true);
  await renderHistory(seq);
}

function tenantRow(t) {
  const hold = t.legal_hold;
  const holdCell = el("td", { className: "hold-cell" });
  if (hold) {
    holdCell.append(el("span", { className: "status status-warn" }, "On hold"),
      el("div", {}, "by ", el("strong", {}, hold.actor || "—"), ` since ${day(hold.since)}`),
      el("div", { className: "muted hold-reason" }, hold.reason || "(no reason given)"),
      releaseForm(t.tenant));
  } else {
    holdCell.append(el("span", { className: "muted" }, "No hold"));
  }
  return el("tr", { "data-tenant": t.tenant },
    el("th", { scope: "row" }, el("a", { href: searchUrl({ tenant: t.tenant }), "data-internal": "" }, t.tenant)),
    el("td", {}, el("div", {}, t.preset || "custom"),
      el("div", { className: "muted" }, `hot ${t.hot_days} d · kept ${t.retain_days} d`)),
    el("td", { className: "num" }, count(t.hot_rows),
      el("div", { className: "muted" }, t.hot_oldest ? `${day(t.hot_oldest)} – ${day(t.hot_newest)}` : "—")),
    el("td", { className: "num" }, `${count(t.archived_rows)} in ${count(t.archived_days)} d`,
      el("div", { className: "muted" }, t.archived_days ? `${day(t.archived_first_day)} – ${day(t.archived_last_day)} · ${bytes(t.archived_bytes)}` : "—")),
    el("td", { className: "nowrap" }, hold ? el("span", { className: "muted" }, "held: nothing expires") : day(t.next_expiry)),
    holdCell);
}

function releaseForm(tenant) {
  const id = `release-${tenant.replace(/[^A-Za-z0-9_-]/g, "_")}`;
  const reason = el("input", { id, name: "reason", required: true, maxLength: 1024, spellcheck: false });
  const problem = el("p", { className: "error", role: "alert" });
  const form = el("form", { className: "release-form" },
    el("label", { htmlFor: id }, "Why release it"), reason, problem,
    el("button", { type: "submit", className: "btn btn-small" }, "Release hold"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    try {
      await api(`/api/holds/${encodeURIComponent(tenant)}`, new URLSearchParams({ reason: reason.value }), { method: "DELETE" });
    } catch (err) {
      problem.textContent = visibleText(err.message);
      return;
    }
    await renderRetention();
  });
  return el("details", {}, el("summary", {}, "Release"), form);
}

async function placeHold(event) {
  event.preventDefault();
  const problem = $("hold-error");
  problem.textContent = "";
  try {
    await api("/api/holds", null, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ tenant: $("hold-tenant").value, reason: $("hold-reason").value }),
    });
  } catch (err) {
    problem.textContent = visibleText(err.message);
    return;
  }
  $("hold-reason").value = "";
  await renderRetention();
}

// the job's runs are audit events of its own actor: archived days, expired partitions, log
// retention records; newest first, each linking to the event
async function renderHistory(seq) {
  const body = $("retention-history").tBodies[0];
  clear(body);
  let answer;
  try {
    answer = await api("/api/events", new URLSearchParams({ user: JOB_ACTOR, limit: "50" }));
  } catch (err) {
    if (seq === retentionSeq) $("retention-history-error").textContent = visibleText(err.message);
    return;
  }
  if (seq !== retentionSeq) return;
  for (const e of answer.events) {
    body.append(el("tr", {},
      el("td", { className: "nowrap" }, el("a", { href: `/events/${encodeURIComponent(e.id)}`, "data-internal": "" }, shortTime(e.created_at))),
      el("td", {}, e.tenant_id),
      el("td", {}, el("code", {}, e.action)),
      el("td", {}, e.resource_type, e.resource_id ? el("span", { className: "muted" }, ` / ${e.resource_id}`) : null),
      el("td", { className: "muted" }, e.reason || "—")));
  }
  show($("retention-history-empty"), answer.events.length === 0);
  $("retention-history-all").setAttribute("href", searchUrl({ user: JOB_ACTOR, trail: "1" }));
}

async function runNow() {
  const problem = $("hold-error");
  problem.textContent = "";
  $("retention-run").disabled = true;
  try {
    await api("/api/retention/run", null, { method: "POST" });
  } catch (err) {
    problem.textContent = visibleText(err.message);
  } finally {
    $("retention-run").disabled = false;
  }
  await renderRetention();
}

export function initRetention() {
  $("hold-form").addEventListener("submit", placeHold);
  $("retention-run").addEventListener("click", runNow);
}
