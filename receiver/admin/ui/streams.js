// The Streams page (admin role): GET /api/streams — each log stream's kind, destination,
// tenants, positions, lag in events and seconds, backlog state, deliveries, failures and last
// error. Credentials never reach the page: only the destination's address is shown, never the
// stream's secret, token, keys or headers. Text-only rendering, as in app.js.
import { $, api, clear, el, show, shortTime, showView, visibleText } from "./app.js";

let streamsSeq = 0;
export async function renderStreams() {
  const seq = ++streamsSeq;
  showView("streams");
  $("streams-error").textContent = "";
  let answer;
  try {
    answer = await api("/api/streams");
  } catch (err) {
    if (seq !== streamsSeq) return;
    $("streams-error").textContent = visibleText(err.message);
    clear($("streams-body"));
    show($("streams-empty"), false);
    return;
  }
  if (seq !== streamsSeq) return;
  const body = $("streams-body");
  clear(body);
  for (const stream of answer.streams) body.append(streamRow(stream));
  show($("streams-empty"), answer.streams.length === 0);
  $("streams-updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
}

function destination(stream) {
  const c = stream.config || {};
  if (stream.kind === "syslog") return `${c.host}:${c.port}${c.tls ? " (TLS)" : ""} · ${c.format}`;
  if (stream.kind === "s3") return `s3://${c.bucket}/${c.prefix || ""} · ${c.format === "parquet" ? "Parquet" : "NDJSON.gz"}`;
  return c.url || c.endpoint || "";
}

function positions(stream) {
  const entries = Object.entries(stream.positions || {});
  if (!entries.length) return el("span", { className: "muted" }, "nothing delivered yet");
  return el("div", {}, ...entries.map(([log, next]) => el("div", { className: "nowrap" }, el("code", {}, log), ` next ${next}`)));
}

function seconds(value) {
  if (!value) return "0 s";
  if (value < 120) return `${value.toFixed(1)} s`;
  if (value < 7200) return `${Math.round(value / 60)} min`;
  return `${(value / 3600).toFixed(1)} h`;
}

function streamRow(stream) {
  const over = stream.backlog_exceeded;
  const state = !stream.enabled ? ["warn", "disabled"] : over ? ["bad", "backlog over limit"] : ["ok", "ok"];
  const error = stream.last_error
    ? el("div", {}, el("span", { className: "error-text" }, stream.last_error),
      stream.last_error_at ? el("div", { className: "muted" }, shortTime(stream.last_error_at)) : null)
    : el("span", { className: "muted" }, "—");
  const delivered = stream.delivered_events === undefined
    ? el("span", { className: "muted" }, "not delivered here")
    : `${stream.delivered_events.toLocaleString()} in ${stream.delivered_batches.toLocaleString()} batch${stream.delivered_batches === 1 ? "" : "es"}`;
  return el("tr", { "data-stream": stream.name },
    el("td", {}, el("strong", {}, stream.name),
      el("div", { className: "muted" }, !stream.enabled ? "disabled: not delivered"
        : stream.delivering_here ? "delivered by this receiver" : "delivered by another receiver, or starting")),
    el("td", {}, el("code", {}, stream.kind), el("div", { className: "muted stream-destination" }, destination(stream))),
    el("td", {}, (stream.tenants || []).join(", ")),
    el("td", { className: "stream-positions" }, positions(stream)),
    el("td", { className: "num stream-lag-events" }, stream.lag_events.toLocaleString(),
      el("div", { className: "muted" }, `limit ${stream.backlog_limit.toLocaleString()}`)),
    el("td", { className: "num stream-lag-seconds" }, seconds(stream.lag_seconds)),
    el("td", {}, el("span", { className: `status status-${state[0]}` }, state[1])),
    el("td", { className: "num stream-delivered" }, delivered),
    el("td", { className: "num stream-failures" }, String(stream.failures ?? "—")),
    el("td", { className: "stream-error" }, error));
}
