// Long values and what changed inside them (issue 15 item 5): a value longer than its place
// allows is cut, with "Show all" and "Copy"; the diff marks the words (or, in short values, the
// characters) that changed; the raw JSON of an event. Nodes are built from text only (el()),
// so no value ever reaches innerHTML.
import { el } from "./app.js";

// "Copy": the clipboard when the page may use it, else the text selected for Ctrl-C
async function copyText(text, button, selectable) {
  let done = false;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      done = true;
    }
  } catch (err) {
    done = false;
  }
  if (!done && selectable) {
    const range = document.createRange();
    range.selectNodeContents(selectable);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  const label = button.textContent;
  button.textContent = done ? "Copied" : "Selected: press Ctrl-C";
  setTimeout(() => { button.textContent = label; }, 1500);
  button.dataset.copied = done ? "yes" : "selected";
}

function copyButton(text, selectable, compact = false) {
  const button = el("button", { type: "button", className: "btn-link value-copy", title: "Copy the whole value", "aria-label": "Copy the whole value" }, "Copy");
  button.addEventListener("click", (event) => { event.preventDefault(); copyText(text, button, selectable()); });
  return button;
}

// a value cut to `chars` characters, with a toggle to show it all and a copy button; compact
// (table rows): the two as small marks, so the row stays one line
export function longValue(value, chars = 200, compact = false) {
  const text = String(value);
  if (text.length <= chars) return el("span", { className: "value" }, text);
  const shown = el("span", { className: "value-text" }, `${text.slice(0, chars)}…`);
  const more = `Show all ${text.length.toLocaleString("en")} characters`;
  const toggle = el("button", { type: "button", className: "btn-link value-toggle", "aria-expanded": "false",
    "aria-label": more, title: more }, compact ? "+" : more);
  const box = el("span", { className: `value value-long${compact ? " value-compact" : ""}` }, shown, " ", toggle, " ", copyButton(text, () => shown, compact));
  toggle.addEventListener("click", (event) => {
    event.preventDefault();
    const open = toggle.getAttribute("aria-expanded") !== "true";
    shown.replaceChildren(...el("span", {}, open ? text : `${text.slice(0, chars)}…`).childNodes);
    box.classList.toggle("value-open", open);
    toggle.setAttribute("aria-expanded", String(open));
    toggle.setAttribute("aria-label", open ? "Show less" : more);
    toggle.textContent = compact ? (open ? "−" : "+") : open ? "Show less" : more;
  });
  return box;
}

// a long value's diff: unchanged runs cut to their ends around each change (as a unified diff's
// context) until "Show all" shows the whole value
const CONTEXT = 40;
function clamped(pieces, text, chars) {
  const full = () => pieceNodes(pieces);
  if (text.length <= chars) return el("div", { className: "value-text" }, ...full());
  const short = () => pieces.flatMap(([kind, piece], i) => {
    if (kind !== "same" || piece.length <= 2 * CONTEXT + 20) return pieceNodes([[kind, piece]]);
    const gap = (n) => el("span", { className: "diff-gap", title: `${n.toLocaleString("en")} unchanged characters` }, "…");
    const head = i === 0 ? "" : piece.slice(0, CONTEXT);
    const tail = i === pieces.length - 1 ? "" : piece.slice(-CONTEXT);
    return [el("span", {}, head), gap(piece.length - head.length - tail.length), el("span", {}, tail)];
  });
  const inner = el("div", { className: "value-text value-cut" }, ...short());
  const more = `Show all ${text.length.toLocaleString("en")} characters`;
  const toggle = el("button", { type: "button", className: "btn-link value-toggle", "aria-expanded": "false" }, more);
  toggle.addEventListener("click", (event) => {
    event.preventDefault();
    const open = toggle.getAttribute("aria-expanded") !== "true";
    inner.replaceChildren(...(open ? full() : short()));
    inner.classList.toggle("value-cut", !open);
    toggle.setAttribute("aria-expanded", String(open));
    toggle.textContent = open ? "Show less" : more;
  });
  return el("div", { className: "value value-long" }, inner, toggle, " ", copyButton(text, () => inner));
}

// ---- the diff inside a value -----------------------------------------------------------------
const WORDS = /\s+|[\p{L}\p{N}_]+|[^\s\p{L}\p{N}_]/gu;
const MAX_CELLS = 250_000;  // the LCS table's size limit; past it the changed middle is one piece

// [kind, text] pieces of before and after: kind "same", "del" (before only) or "ins" (after only)
export function diffPieces(before, after) {
  const words = (s) => s.match(WORDS) || [];
  let a = words(before);
  let b = words(after);
  // short values of a word or two: what changed inside the word, character by character
  if (a.length <= 3 && b.length <= 3 && before.length <= 200 && after.length <= 200) {
    a = Array.from(before);
    b = Array.from(after);
  }
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head += 1;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail += 1;
  const midA = a.slice(head, a.length - tail);
  const midB = b.slice(head, b.length - tail);
  const left = [];
  const right = [];
  const push = (list, kind, text) => {
    if (!text) return;
    const last = list[list.length - 1];
    if (last && last[0] === kind) last[1] += text; else list.push([kind, text]);
  };
  const prefix = a.slice(0, head).join("");
  push(left, "same", prefix);
  push(right, "same", prefix);
  if ((midA.length + 1) * (midB.length + 1) > MAX_CELLS) {
    push(left, "del", midA.join(""));
    push(right, "ins", midB.join(""));
  } else {
    // longest common subsequence of the changed middle
    const n = midA.length;
    const m = midB.length;
    const table = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i -= 1) {
      for (let j = m - 1; j >= 0; j -= 1) {
        table[i][j] = midA[i] === midB[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && midA[i] === midB[j]) { push(left, "same", midA[i]); push(right, "same", midB[j]); i += 1; j += 1; }
      else if (j < m && (i === n || table[i][j + 1] >= table[i + 1][j])) { push(right, "ins", midB[j]); j += 1; }
      else { push(left, "del", midA[i]); i += 1; }
    }
  }
  const suffix = a.slice(a.length - tail).join("");
  push(left, "same", suffix);
  push(right, "same", suffix);
  return [left, right];
}

const pieceNodes = (pieces) => pieces.map(([kind, text]) => (kind === "same" ? el("span", {}, text)
  : el(kind === "del" ? "del" : "ins", { className: `diff-${kind}` }, text)));

// the Before and After cells of one changed field: a value present on both sides is diffed
export function diffCells(before, after, shown, chars = 400) {
  if (before === undefined || after === undefined || before === null || after === null) {
    return [el("td", { className: "diff-old" }, longValue(shown(before), chars)),
      el("td", { className: "diff-new" }, longValue(shown(after), chars))];
  }
  const oldText = shown(before);
  const newText = shown(after);
  const [left, right] = diffPieces(oldText, newText);
  return [el("td", { className: "diff-old" }, clamped(left, oldText, chars)),
    el("td", { className: "diff-new" }, clamped(right, newText, chars))];
}

// ---- raw JSON ----------------------------------------------------------------------------
export function renderRaw(box, event) {
  const json = JSON.stringify(event, null, 2);
  const pre = el("pre", { className: "raw-json", tabIndex: 0 }, json);
  box.replaceChildren(pre, el("p", {}, copyButton(json, () => pre)));
}
