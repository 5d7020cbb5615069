// Building DOM nodes safely: text is always set as text (never parsed as HTML).

/**
 * Create an element. `attrs` keys: `class`, `text`, `dataset`, `on<Event>` handlers,
 * boolean or string attributes; children are nodes or strings (added as text nodes).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

/** Mark a region busy (screen readers, and the CSS shows a spinner). */
export function busy(el, on) {
  el.setAttribute("aria-busy", on ? "true" : "false");
}

export function price(value) {
  return value === null || value === undefined ? "price n/a" : `¥${Number(value).toFixed(2)}`;
}

export function categoryParts(path) {
  return String(path || "").split("/").filter(Boolean);
}

const PALETTE = ["#e65100", "#d32f2f", "#1e88e5", "#388e3c", "#8e24aa", "#d84315", "#00897b",
  "#6d4c41", "#3949ab", "#827717", "#d81b60", "#546e7a"];

/** A stable colour for a string (category, handle). */
export function colourOf(text) {
  let hash = 0;
  for (const ch of String(text)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

/** A round avatar with the handle's first letter. */
export function avatar(handle, size = "") {
  const el = h("span", { class: `avatar ${size}`, "aria-hidden": "true", text: initial(handle) });
  el.style.setProperty("--avatar-bg", colourOf(handle));
  return el;
}

function initial(text) {
  const first = [...String(text || "?")][0] || "?";
  return first.toUpperCase();
}

export function kolBadge() {
  return h("span", { class: "kol-badge", title: "Key opinion leader (influencer)", text: "KOL" });
}

export function timeAgo(iso) {
  if (!iso) return "";
  const then = new Date(iso);
  const seconds = (Date.now() - then.getTime()) / 1000;
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return then.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}
