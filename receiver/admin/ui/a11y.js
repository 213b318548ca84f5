// Keyboard and screen-reader support (issue 15 item 12), beside app.js without touching its views:
// the skip link goes to the first result on the search page (else to the page's heading), and
// when the view changes focus moves to the new view's heading, so a screen reader says where it is.
// The results summary is an aria-live region in index.html.

const views = () => [...document.querySelectorAll("main > .view")];
const visibleView = () => views().find((view) => !view.hidden) || null;
// the heading to land on: the view's first visible <h1>, else the view itself
function headingOf(view) {
  const heading = [...view.querySelectorAll("h1")].find((h) => !h.closest("[hidden]"));
  const target = heading || view;
  if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
  return target;
}

const skip = document.getElementById("skip-link");
const firstResult = () => {
  const view = visibleView();
  return view && view.id === "view-search" ? document.querySelector("#events-body tr a") : null;
};
skip.addEventListener("focus", () => {
  skip.textContent = firstResult() ? "Skip to results" : "Skip to content";
});
skip.addEventListener("click", (event) => {
  event.preventDefault();
  const view = visibleView();
  const target = firstResult() || (view ? headingOf(view) : document.getElementById("main"));
  target.focus();
});

// focus follows a change of view (not the first render: the page load keeps the browser's focus;
// not the sign-in view: app.js puts focus in its token field)
let current = null;
const onViews = () => {
  const view = visibleView();
  if (!view || view === current) return;
  const first = current === null;
  current = view;
  if (first || view.id === "view-signin") return;
  headingOf(view).focus({ preventScroll: false });
};
const watch = new MutationObserver(onViews);
for (const view of views()) watch.observe(view, { attributes: true, attributeFilter: ["hidden"] });
// the detail page's heading appears when its event has loaded: move on to it from the bare view
const detailBody = document.getElementById("detail-body");
if (detailBody) {
  new MutationObserver(() => {
    const view = document.getElementById("view-detail");
    if (!detailBody.hidden && document.activeElement === view) headingOf(view).focus();
  }).observe(detailBody, { attributes: true, attributeFilter: ["hidden"] });
}

// a table that scrolls sideways (phones) and holds nothing focusable becomes a focusable, named
// region, so it can be scrolled from the keyboard (WCAG 2.1.1)
const FOCUSABLE = "a[href], button, input, select, textarea, summary, [tabindex]";
function markScrollable(wrap) {
  const scrolls = wrap.scrollWidth > wrap.clientWidth + 1 && !wrap.querySelector(FOCUSABLE);
  if (scrolls && !wrap.hasAttribute("tabindex")) {
    const heading = wrap.closest(".card")?.querySelector("h2");
    wrap.setAttribute("tabindex", "0");
    wrap.setAttribute("role", "region");
    wrap.setAttribute("aria-label", heading ? heading.textContent : "Table");
  } else if (!scrolls && wrap.getAttribute("role") === "region") {
    for (const name of ["tabindex", "role", "aria-label"]) wrap.removeAttribute(name);
  }
}
const sizes = new ResizeObserver((entries) => {
  for (const entry of entries) markScrollable(entry.target.closest(".table-wrap"));
});
for (const wrap of document.querySelectorAll(".table-wrap")) {
  sizes.observe(wrap);
  for (const table of wrap.querySelectorAll("table")) sizes.observe(table);
}
