// Shared helpers of the dashboard: the API client (session cookie + CSRF header), readable error
// messages, notices, formatting and a tiny DOM builder. Plain ES module, no dependencies.

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta && meta.content) return meta.content;
  const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

const STATUS_TEXT = {
  400: "The request was not valid.",
  401: "Your session has ended. Please log in again.",
  403: "You do not have permission to do that.",
  404: "That item no longer exists, or you cannot see it.",
  409: "That conflicts with an existing item.",
  413: "That is more than the storage left in this workspace.",
  429: "Too many requests. Please wait a moment and try again.",
};

// The API's one error shape is {"error": {"code", "message", "details"}}; anything else (a proxy's
// HTML page, an empty body) still becomes a sentence a person can read.
export function errorFrom(status, data) {
  const err = data && data.error;
  if (err && err.message) return new ApiError(status, err.code || "error", err.message, err.details);
  if (data && typeof data.detail === "string") return new ApiError(status, "error", data.detail);
  const fallback = STATUS_TEXT[status] || (status >= 500 ? "The server had a problem. Please try again." : `Request failed (${status}).`);
  return new ApiError(status, "http_" + status, fallback);
}

export async function api(method, url, { json, body, headers = {} } = {}) {
  const opts = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
  if (!["GET", "HEAD"].includes(method)) opts.headers["X-CSRFToken"] = csrfToken();
  if (json !== undefined) {
    opts.body = JSON.stringify(json);
    opts.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    opts.body = body;
  }
  let res;
  try {
    res = await fetch(url, opts);
  } catch (e) {
    throw new ApiError(0, "network", "The server could not be reached. Check the connection and try again.");
  }
  const text = res.status === 204 ? "" : await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (e) {
    data = null;
  }
  if (!res.ok) throw errorFrom(res.status, data);
  return data;
}

// Every page of a cursor-paginated list: {results, next} (DRF) or a bare array.
export async function listAll(url, limit = 5000) {
  let items = [];
  let next = url;
  while (next && items.length < limit) {
    const data = await api("GET", next);
    if (Array.isArray(data)) return items.concat(data);
    items = items.concat(data.results || data.items || []);
    next = data.next || null;
  }
  return items;
}

// Toasts: one corner of the screen, in the top layer (a popover), so an open dialog's backdrop
// never covers them. `undo` adds an Undo button that runs it once and dismisses the toast.
function toastBox() {
  let box = document.getElementById("notices");
  if (!box) {
    box = el("div", { id: "notices", class: "toasts", popover: "manual", "aria-live": "polite" });
    document.body.append(box);
  }
  if (box.parentElement !== document.body) document.body.append(box);
  // Showing it again puts it above a dialog opened after it.
  if (box.matches(":popover-open")) box.hidePopover();
  box.showPopover();
  return box;
}

export function notify(message, kind = "error", { undo } = {}) {
  const box = toastBox();
  const dismiss = () => {
    item.remove();
    if (!box.children.length) box.hidePopover();
  };
  const undoButton = undo
    ? el("button", {
      type: "button", class: "link",
      onclick: async () => {
        dismiss();
        try {
          await undo();
        } catch (err) {
          showError(err);
        }
      },
    }, "Undo")
    : null;
  const item = el("div", { class: "msg " + kind, role: kind === "error" ? "alert" : "status" },
    el("span", {}, message),
    el("span", { class: "toast-actions" }, undoButton,
      el("button", { type: "button", class: "link dismiss", "aria-label": "Dismiss", onclick: dismiss }, "×")));
  box.append(item);
  // A few at a time (the newest): a quick run of actions must not pile notices over the page or an
  // open dialog. Fewer on a phone, where each one is a line of the screen.
  const most = window.matchMedia("(max-width: 600px)").matches ? 2 : 3;
  while (box.children.length > most) box.firstElementChild.remove();
  if (kind !== "error") setTimeout(dismiss, undo ? 10000 : 6000);
}

export async function copyText(text, done = "Copied to the clipboard.") {
  try {
    await navigator.clipboard.writeText(text);
  } catch (e) {
    // Clipboard API refused (permissions, insecure origin): fall back to a selected text field.
    const area = el("textarea", { class: "sr-only" }, text);
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  notify(done, "success");
}

export function showError(err) {
  notify(err && err.message ? err.message : String(err), "error");
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// One size format everywhere, the same as the server's pages (Django's filesizeformat).
export function fmtBytes(n) {
  n = Number(n) || 0;
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  if (i === 0) return n === 1 ? "1 byte" : `${n} bytes`;
  return `${n.toFixed(1)} ${units[i]}`;
}

const RELATIVE = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

// One date format everywhere: relative for the last day ("5 minutes ago"), the locale's date
// (with the time) otherwise.
export function fmtDate(value) {
  if (!value) return "";
  const d = new Date(value);
  if (isNaN(d)) return String(value);
  const seconds = (d.getTime() - Date.now()) / 1000;
  if (Math.abs(seconds) < 60) return "just now";
  if (Math.abs(seconds) < 3600) return RELATIVE.format(Math.round(seconds / 60), "minute");
  if (Math.abs(seconds) < 86400) return RELATIVE.format(Math.round(seconds / 3600), "hour");
  return d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

// Dates the server rendered (<time data-local>) take the same format as the scripts' dates.
for (const time of document.querySelectorAll("time[data-local]")) {
  time.textContent = fmtDate(time.getAttribute("datetime"));
}

// A small inline SVG icon per kind of node (no icon font, no emoji font needed).
const ICON_COLORS = { folder: "#e0a100", image: "#15803d", pdf: "#b42318", text: "#475569", video: "#7c3aed", audio: "#be185d", archive: "#92400e", file: "#0b5cd5" };

function kindOf(node) {
  if ((node.type || node.kind) === "folder") return "folder";
  const mime = node.mime_type || "";
  if (mime.startsWith("image/")) return "image";
  if (mime === "application/pdf") return "pdf";
  if (mime.startsWith("text/") || mime.includes("json") || mime.includes("xml")) return "text";
  if (mime.startsWith("video/")) return "video";
  if (mime.startsWith("audio/")) return "audio";
  if (mime.includes("zip") || mime.includes("compressed") || mime.includes("tar")) return "archive";
  return "file";
}

const KIND_NAMES = { image: "Image", pdf: "PDF document", text: "Text", video: "Video", audio: "Audio", archive: "Archive", file: "File", folder: "Folder" };

// A file's kind in words ("PDF document"), with its extension: what people call it, not a MIME type.
export function kindName(node) {
  const dot = node.name ? node.name.lastIndexOf(".") : -1;
  const ext = dot > 0 ? node.name.slice(dot + 1).toUpperCase() : "";
  const kind = KIND_NAMES[kindOf(node)];
  return ext && kindOf(node) !== "pdf" ? `${kind} (${ext})` : kind;
}

export function iconFor(node, size = 20) {
  const kind = kindOf(node);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", size);
  svg.setAttribute("height", size);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "node-icon " + kind);
  const path = document.createElementNS(ns, "path");
  path.setAttribute("fill", ICON_COLORS[kind]);
  path.setAttribute("d", kind === "folder"
    ? "M2 6a2 2 0 0 1 2-2h5l2 2h9a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2z"
    : "M6 2h8l6 6v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm7 1.5V9h5.5z");
  svg.append(path);
  return svg;
}

export function isFolder(node) {
  return (node.type || node.kind) === "folder";
}

// Dialog helpers: [data-close] buttons close their dialog; an error line inside shows API errors.
export function dialogError(dialog, message) {
  const p = dialog.querySelector(".dialog-error");
  if (!p) return message ? showError({ message }) : undefined;
  p.textContent = message || "";
  p.hidden = !message;
}

document.addEventListener("click", (event) => {
  const closer = event.target.closest("[data-close]");
  if (closer) closer.closest("dialog")?.close("cancel");
});

// Labels styled as buttons (for hidden file inputs) answer Enter and Space like buttons do.
document.addEventListener("keydown", (event) => {
  const label = event.target.closest && event.target.closest("label[data-keyclick]");
  if (label && (event.key === "Enter" || event.key === " ")) {
    event.preventDefault();
    document.getElementById(label.htmlFor)?.click();
  }
});

// The server's messages (after a form post) join the same toasts as the scripts' messages.
for (const list of document.querySelectorAll("ul.messages")) {
  for (const item of list.querySelectorAll(".msg")) notify(item.textContent.trim(), item.classList.contains("error") ? "error" : "success");
  list.remove();
}

// [data-copy="#id"] buttons copy that element's text (a new API token, a link).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (button) copyText(document.querySelector(button.dataset.copy)?.textContent.trim() || "");
});

// Phones: the side menu folds behind the top bar's Menu button.
const navToggle = document.querySelector(".nav-toggle");
const app = document.querySelector(".app");
if (navToggle && app) {
  navToggle.hidden = false;
  navToggle.addEventListener("click", () => {
    const open = app.classList.toggle("nav-open");
    navToggle.setAttribute("aria-expanded", String(open));
  });
}

// The workspace switcher navigates on change; without JavaScript its Go button submits.
for (const form of document.querySelectorAll("form[data-autosubmit]")) {
  form.querySelector("select")?.addEventListener("change", () => form.submit());
}

// Bars rendered by the server carry their width as data-percent: the pages' policy (CSP) allows no
// style="" attribute, but a script may set the style.
for (const bar of document.querySelectorAll("span[data-percent]")) {
  bar.style.width = Math.min(100, Number(bar.dataset.percent) || 0) + "%";
}

// The side menu's quota bar, refreshed after uploads and deletions without reloading the page.
export async function refreshQuota() {
  const box = document.querySelector(".quota-mini[data-workspace]");
  if (!box) return;
  try {
    const ws = await api("GET", `/api/v1/workspaces/${box.dataset.workspace}/`);
    const pct = ws.quota_bytes ? Math.min(100, (ws.used_bytes / ws.quota_bytes) * 100) : 0;
    box.querySelector(".bar span").style.width = pct.toFixed(1) + "%";
    box.querySelector(".bar").setAttribute("aria-label", `${fmtBytes(ws.used_bytes)} of ${fmtBytes(ws.quota_bytes)} used`);
    box.querySelector(".quota-text").textContent = `${fmtBytes(ws.used_bytes)} of ${fmtBytes(ws.quota_bytes)}`;
  } catch (err) {
    // The bar is a convenience; the usage page shows the numbers with errors spelled out.
  }
}

// Phones stack the cells of a table (every .table but the file list) and hide its headings: each
// cell takes its column's heading as data-label, which the phone layout shows before the value
// ("Size: 3 bytes"). The first column (the name) and columns without a visible heading need none.
function labelCells(table) {
  const heads = [...table.querySelectorAll("thead th")].map((th) => (th.querySelector(".sr-only") ? "" : th.textContent.trim()));
  for (const row of table.querySelectorAll("tbody tr")) {
    [...row.children].forEach((cell, i) => {
      if (i > 0 && heads[i] && cell.colSpan === 1 && !cell.hasAttribute("data-label")) cell.dataset.label = heads[i];
    });
  }
}

function labelTables(root) {
  const around = root.closest("table.table:not(.files)"); // rows added to a table already there
  if (around) labelCells(around);
  for (const table of root.querySelectorAll("table.table:not(.files)")) labelCells(table);
}

labelTables(document.body);
new MutationObserver((changes) => {
  for (const change of changes) for (const node of change.addedNodes) if (node.nodeType === 1) labelTables(node);
}).observe(document.body, { childList: true, subtree: true });
