// The search page's timeline (click or drag to zoom), facets (click to filter, ≠ to exclude) and
// the "0 results: did you mean" hint, all from GET /api/stats. Text-only rendering, as in app.js.
import { $, api, apiParams, clear, el, fromTimeInput, navigate, shortTime, show } from "./app.js";

const SVG = "http://www.w3.org/2000/svg";
const svg = (tag, attrs = {}) => {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
};
// facet key (the stats answer) → filter name (the URL), with a heading
const FACETS = [["action", "action", "Action"], ["outcome", "outcome", "Outcome"], ["user_id", "user", "User"],
  ["resource_type", "resource_type", "Resource type"], ["event_name", "event_name", "Event name"], ["ip_address", "ip", "IP address"]];

export function withFilter(query, name, value) {
  const next = new URLSearchParams(query);
  next.delete("cursor");
  next.delete("page");
  if (value === null) next.delete(name); else next.set(name, value);
  return `/?${next}`;
}

export function renderStats(stats, query) {
  $("stats").setAttribute("aria-busy", "false");
  if (!stats || !Array.isArray(stats.histogram)) { show($("stats"), false); return; }
  show($("stats"), true);
  renderHistogram(stats.histogram, query, stats.bucket_seconds);
  const facets = $("facets");
  clear(facets);
  for (const [key, name, heading] of FACETS) {
    const values = (stats.facets && stats.facets[key]) || [];
    const list = el("ul", { className: "facet-list" });
    for (const { value, count } of values) {
      if (value === "") {  // no filter selects "not set": shown, not a link
        list.append(el("li", { className: "facet-none" }, el("span", { className: "facet-label muted" }, "(none)"),
          el("span", { className: "facet-count" }, count.toLocaleString("en"))));
        continue;
      }
      const label = value;
      list.append(el("li", {},
        el("a", { className: "facet-value", href: withFilter(query, name, value), "data-internal": "", title: `${heading}: ${label}` },
          el("span", { className: "facet-label" }, label), el("span", { className: "facet-count" }, count.toLocaleString("en"))),
        el("a", { className: "facet-not", href: withFilter(query, name, `!${value}`), "data-internal": "", title: `Exclude ${heading}: ${label}`, "aria-label": `Exclude ${label}` }, "≠")));
    }
    facets.append(el("section", { className: "facet", "data-facet": name }, el("h3", {}, heading),
      values.length ? list : el("p", { className: "muted" }, "—")));
    const datalist = $(`dl-${name}`);
    if (datalist) {
      clear(datalist);
      for (const { value } of values) if (value !== "") datalist.append(el("option", { value }));
    }
  }
}

// "now", "now-15m" … (SPEC section 8) → epoch ms, against this browser's clock
const UNIT_MS = { s: 1e3, m: 6e4, h: 36e5, d: 864e5, w: 6048e5 };
export function timeMs(value) {
  const relative = String(value || "").trim().toLowerCase().match(/^now(?:\s*-\s*(\d{1,9})\s*([smhdw]))?$/);
  if (relative) return Date.now() - (relative[1] ? Number(relative[1]) * UNIT_MS[relative[2]] : 0);
  return Date.parse(fromTimeInput(value || ""));
}

function renderHistogram(buckets, query, bucketSeconds) {
  const box = $("histogram");
  clear(box);
  $("histogram-from").textContent = buckets.length ? shortTime(buckets[0].start) : "";
  $("histogram-to").textContent = "";
  if (!buckets.length) return;
  const starts = buckets.map((b) => Date.parse(b.start));
  // the server says how wide a bucket is; a relative until ("now-1h") is not the present
  const width = bucketSeconds > 0 ? bucketSeconds * 1000 : starts.length > 1 ? starts[1] - starts[0] : 0;
  const until = timeMs(query.get("until")) || Date.now();
  const endOf = (i) => (i + 1 < starts.length ? starts[i + 1] : width ? starts[i] + width : until);
  $("histogram-to").textContent = shortTime(new Date(endOf(buckets.length - 1)).toISOString());
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const n = buckets.length;
  const chart = svg("svg", { viewBox: `0 0 ${n * 10} 100`, preserveAspectRatio: "none", role: "img", class: "histogram-svg",
    "aria-label": `Events over time, ${n} bars` });
  const selection = svg("rect", { class: "histogram-selection", x: 0, y: 0, width: 0, height: 100 });
  chart.append(selection);
  buckets.forEach((b, i) => {
    const h = b.count ? Math.max(2, (b.count / max) * 96) : 0;
    const bar = svg("rect", { class: "bar", x: i * 10 + 1, y: 100 - h, width: 8, height: h, "data-i": i, "data-count": b.count });
    const tip = svg("title");
    tip.textContent = `${shortTime(b.start)}: ${b.count.toLocaleString("en")} events`;
    bar.append(tip);
    chart.append(svg("rect", { class: "bar-hit", x: i * 10, y: 0, width: 10, height: 100, "data-i": i }), bar);
  });
  const indexAt = (event) => {
    const box = chart.getBoundingClientRect();
    return Math.min(n - 1, Math.max(0, Math.floor(((event.clientX - box.left) / box.width) * n)));
  };
  let from = null;
  chart.addEventListener("pointerdown", (event) => { from = indexAt(event); chart.setPointerCapture(event.pointerId); event.preventDefault(); });
  chart.addEventListener("pointermove", (event) => {
    if (from === null) return;
    const to = indexAt(event);
    selection.setAttribute("x", Math.min(from, to) * 10);
    selection.setAttribute("width", (Math.abs(to - from) + 1) * 10);
  });
  chart.addEventListener("pointerup", (event) => {
    if (from === null) return;
    const to = indexAt(event);
    const lo = Math.min(from, to);
    const hi = Math.max(from, to);
    from = null;
    const next = new URLSearchParams(query);
    next.delete("cursor");
    next.delete("page");
    next.set("since", new Date(starts[lo]).toISOString());
    next.set("until", new Date(endOf(hi)).toISOString());
    navigate(`/?${next}`);
  });
  box.append(chart);
}

// "0 results: did you mean …": for each field given, the same search without it, and its top
// values that match the given one ignoring case, or that it is the start of (then as a prefix)
export async function suggest(query, stale) {
  const hints = [];
  for (const [key, name, heading] of FACETS) {
    const given = query.get(name);
    if (!given || given.startsWith("!") || given.includes("/") || query.getAll(name).length > 1) continue;
    const without = new URLSearchParams(query);
    without.delete(name);
    const params = apiParams(without);
    params.set("buckets", "1");
    let stats;
    try { stats = await api("/api/stats", params); } catch (err) { continue; }
    const wanted = given.replace(/\*$/, "").toLowerCase();
    const values = ((stats.facets && stats.facets[key]) || []).map((f) => f.value).filter((v) => v !== "");
    const same = values.filter((v) => v.toLowerCase() === wanted && v !== given);
    const starts = values.filter((v) => v.toLowerCase().startsWith(wanted) && v.toLowerCase() !== wanted);
    for (const v of same) hints.push([heading, name, v]);
    if (!same.length && starts.length) {
      const prefix = starts[0].slice(0, wanted.length);
      hints.push([heading, name, `${prefix}*`]);
    }
  }
  if (stale()) return;
  const box = $("did-you-mean");
  clear(box);
  if (!hints.length) return;
  box.append("0 results. Did you mean ");
  hints.forEach(([heading, name, value], i) => {
    if (i) box.append(" or ");
    box.append(el("a", { href: withFilter(query, name, value), "data-internal": "" }, `${heading.toLowerCase()} ${value}`));
  });
  box.append("?");
  show(box, true);
}

