// Export with progress (issue 15 item 9): the export is fetched as a stream (the token in its
// Authorization header, never in a URL), rows and bytes counted as they arrive against the
// server's X-Total-Count, with Cancel; when it ends the file is handed to the browser's download
// under the server's file name. Text-only rendering, as in app.js.
import { $, show, visibleText } from "./app.js";

let running = null;  // the AbortController of the export under way

const megabytes = (n) => (n < 1024 * 1024 ? `${(n / 1024).toFixed(0)} KB` : `${(n / 1024 / 1024).toFixed(1)} MB`);

// rows ended in a chunk: newlines outside CSV quotes (a quoted cell may hold a newline; "" inside
// quotes toggles twice, so the parity stays right); JSON lines have no raw newline inside a row
function rowCounter(csv) {
  let quoted = false;
  return (bytes) => {
    let rows = 0;
    for (let i = 0; i < bytes.length; i += 1) {
      const b = bytes[i];
      if (b === 0x0a && !quoted) rows += 1;
      else if (csv && b === 0x22) quoted = !quoted;
    }
    return rows;
  };
}

function fileName(response, format) {
  const match = (response.headers.get("content-disposition") || "").match(/filename="([^"]+)"/);
  return match ? match[1] : `audit-events.${format}`;
}

function status(text) { $("export-status").textContent = visibleText(text); }

export function cancelExport() {
  if (running) running.abort();
}

export async function streamExport(format, params, token) {
  if (running) running.abort();
  const controller = new AbortController();
  running = controller;
  const bar = $("export-bar");
  bar.removeAttribute("value");
  show($("export-progress"), true);
  $("export-cancel").disabled = false;
  status("Starting the export…");
  let rows = 0;
  let bytes = 0;
  try {
    const headers = { accept: "*/*" };
    if (token) headers.authorization = `Bearer ${token}`;
    const response = await fetch(`/api/export.${format}?${params}`, { headers, signal: controller.signal, cache: "no-store" });
    if (!response.ok) {
      let reason = `The server answered ${response.status}.`;
      try { reason = (await response.json()).error || reason; } catch (err) { /* not JSON */ }
      throw new Error(reason);
    }
    const given = response.headers.get("x-total-count");
    const total = given === null ? NaN : Number(given);
    const count = rowCounter(format === "csv");
    let header = format === "csv";  // the CSV header line is not a row
    // every ~4 MB the chunks become a Blob: the browser's blob store (which may spill to disk)
    // holds a large export, not the page's heap
    const parts = [];
    let chunks = [];
    let pending = 0;
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      pending += value.length;
      if (pending >= 4 * 1024 * 1024) { parts.push(new Blob(chunks)); chunks = []; pending = 0; }
      bytes += value.length;
      rows += count(value);
      if (header && rows > 0) { rows -= 1; header = false; }
      if (total > 0) { bar.max = total; bar.value = Math.min(rows, total); }
      status(`${rows.toLocaleString("en")}${Number.isFinite(total) ? ` of ${total.toLocaleString("en")}` : ""} rows · ${megabytes(bytes)}`);
    }
    const blob = new Blob([...parts, ...chunks], { type: response.headers.get("content-type") || "application/octet-stream" });
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = fileName(response, format);
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    bar.max = 1;
    bar.value = 1;
    status(`Done: ${rows.toLocaleString("en")} rows · ${megabytes(bytes)} · ${link.download}`);
  } catch (err) {
    bar.max = 1;
    bar.value = 0;
    status(controller.signal.aborted
      ? `Cancelled after ${rows.toLocaleString("en")} rows (${megabytes(bytes)}); nothing was saved.`
      : `The export failed after ${rows.toLocaleString("en")} rows: ${err.message || err}`);
  } finally {
    if (running === controller) running = null;
    $("export-cancel").disabled = true;
  }
}
