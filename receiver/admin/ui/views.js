// Saved views: named searches (their URL) kept in this browser's localStorage.
import { $, clear, currentQuery, el } from "./app.js";

const VIEWS_KEY = "otel-audit-views";
function savedViews() {
  try { return JSON.parse(localStorage.getItem(VIEWS_KEY) || "[]").filter((v) => v && typeof v.name === "string" && typeof v.url === "string" && v.url.startsWith("/?")); } catch (err) { return []; }
}
export function renderSavedViews() {
  const select = $("views");
  clear(select);
  select.append(el("option", { value: "" }, "—"));
  const here = viewUrl();
  for (const view of savedViews()) select.append(el("option", { value: view.url }, view.name));
  select.value = savedViews().some((v) => v.url === here) ? here : "";
}
function viewUrl() {
  const query = currentQuery();
  query.delete("cursor");
  query.delete("page");
  return `/?${query}`;
}
export function saveView() {
  const name = $("view-name").value.trim();
  if (!name) { $("view-name").focus(); return; }
  const views = savedViews().filter((v) => v.name !== name);
  views.push({ name, url: viewUrl() });
  views.sort((a, b) => a.name.localeCompare(b.name));
  localStorage.setItem(VIEWS_KEY, JSON.stringify(views));
  $("view-name").value = "";
  renderSavedViews();
}
export function deleteView() {
  const url = $("views").value;
  if (!url) return;
  localStorage.setItem(VIEWS_KEY, JSON.stringify(savedViews().filter((v) => v.url !== url)));
  renderSavedViews();
}

