// The Alerts page: GET /api/alerts by status, a link to each alert's events (its events_query)
// and a review form posting JSON to /api/alerts/{id}/review. Text-only rendering, as in app.js.
import { $, api, clear, currentQuery, el, searchUrl, show, shortTime, showView, visibleText } from "./app.js";

let alertsSeq = 0;
export async function renderAlerts() {
  const seq = ++alertsSeq;
  showView("alerts");
  const status = currentQuery().get("status") || "all";
  $("a-status").value = status;
  $("alerts-error").textContent = "";
  clear($("alerts-body"));
  show($("alerts-empty"), false);
  let answer;
  try {
    answer = await api("/api/alerts", new URLSearchParams({ status }));
  } catch (err) {
    if (seq !== alertsSeq) return;
    $("alerts-error").textContent = visibleText(err.message);
    clear($("alerts-body"));
    return;
  }
  if (seq !== alertsSeq) return;
  const body = $("alerts-body");
  clear(body);
  for (const alert of answer.alerts) body.append(alertRow(alert));
  show($("alerts-empty"), answer.alerts.length === 0);
}

function alertRow(alert) {
  const group = Object.entries(alert.group || {}).map(([k, v]) => `${k}=${v}`).join(", ");
  const last = (alert.reviews || [])[alert.reviews.length - 1];
  const status = el("td", { className: "alert-status" },
    el("span", { className: `status status-${alert.status === "open" ? "bad" : alert.status === "reviewed" ? "ok" : "warn"}` }, alert.status),
    last ? el("div", { className: "muted" }, `${last.reviewer}: ${last.note}`) : null);
  const events = el("a", { href: searchUrl({ ...alert.events_query, trail: "" }), "data-internal": "", className: "alert-events" },
    `${alert.count} event${alert.count === 1 ? "" : "s"}`);
  return el("tr", { "data-alert": alert.id },
    el("td", { className: "nowrap" }, shortTime(alert.fired_at)),
    el("td", {}, el("code", {}, alert.rule)),
    el("td", {}, alert.tenant),
    el("td", {}, alert.severity || "—"),
    el("td", {}, group || "—"),
    el("td", { className: "num" }, events),
    status,
    el("td", {}, reviewForm(alert)));
}

function reviewForm(alert) {
  const id = alert.id;
  const note = el("textarea", { id: `note-${id}`, name: "note", rows: 3, required: true, maxLength: 4000 });
  const status = el("select", { id: `status-${id}`, name: "status" },
    el("option", { value: "reviewed" }, "reviewed"), el("option", { value: "acknowledged" }, "acknowledged"));
  const problem = el("p", { className: "error", role: "alert" });
  const form = el("form", { className: "review-form" },
    el("label", { htmlFor: `note-${id}` }, "Note (finding)"), note,
    el("label", { htmlFor: `status-${id}` }, "Status"), status, problem,
    el("button", { type: "submit", className: "btn btn-primary btn-small" }, "Record review"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    try {
      await api(`/api/alerts/${encodeURIComponent(id)}/review`, null, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ note: note.value, status: status.value }),
      });
    } catch (err) {
      problem.textContent = visibleText(err.message);
      return;
    }
    await renderAlerts();
  });
  return el("details", {}, el("summary", {}, "Review"), form);
}

