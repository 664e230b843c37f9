// The file browser: listing (list or grid, sorted), multi-select and the actions on a selection,
// dialogs (new folder, rename, move/copy, delete, share, preview), the details panel and uploads.
import { api, copyText, dialogError, el, fmtBytes, fmtDate, iconFor, isFolder, kindName, listAll, notify, refreshQuota, showError } from "./common.js";
import { resolveConflicts } from "./conflicts.js";
import { openMenu } from "./contextmenu.js";
import { starButton, starSet } from "./stars.js";
import { collect, entriesOf, UploadQueue } from "./upload.js";

const root = document.getElementById("browser");
const folderId = root.dataset.folder;
const workspaceId = root.dataset.workspace;
const canEdit = root.dataset.canEdit === "1";
const listing = document.getElementById("listing");
const details = document.getElementById("details");

const state = {
  items: [],
  starred: new Set(), // ids the caller starred (from /api/v1/starred/)
  selected: new Set(),
  anchor: null,
  focus: null, // the item keyboard focus is on (one item is in the tab order)
  ordering: (localStorage.getItem("browser.ordering") || "name").replace("modified_at", "modified"),
  view: localStorage.getItem("browser.view") || "list",
};

const folderUrl = (id) => `/app/w/${workspaceId}/f/${id}/`;
const contentUrl = (id, version) => `/api/v1/nodes/${id}/content` + (version ? `?version=${version}` : "");
const previewUrl = (id) => `/app/preview/${id}/`;
const thumbnailUrl = (item) => `/app/thumbnail/${item.id}/?v=${item.version || ""}`;
const HAS_THUMBNAIL = /^(image\/(png|jpeg|gif|webp|bmp|tiff)|application\/pdf)/;

// The server's thumbnail (made by a worker after the upload); the kind's icon until it exists.
function thumbnail(item, size = 48) {
  const icon = () => el("span", { class: "big-icon", "aria-hidden": "true" }, iconFor(item, size));
  if (isFolder(item) || !HAS_THUMBNAIL.test(item.mime_type || "")) return icon();
  return el("img", { src: thumbnailUrl(item), alt: "", loading: "lazy", onerror: (e) => e.target.replaceWith(icon()) });
}
const ACCESS_WORDS = { view: "View", edit: "View and edit", manage: "View, edit and manage" };

// ---- listing ---------------------------------------------------------------------------------

function compare(a, b) {
  const desc = state.ordering.startsWith("-");
  const key = state.ordering.replace(/^-/, "");
  if (isFolder(a) !== isFolder(b)) return isFolder(a) ? -1 : 1; // folders first, as everywhere
  let r;
  if (key === "size") r = (a.size || 0) - (b.size || 0);
  else if (key === "modified") r = new Date(a.modified_at) - new Date(b.modified_at);
  else r = a.name.localeCompare(b.name, undefined, { numeric: true, sensitivity: "base" });
  return desc ? -r : r;
}

let loaded = 0;
let starsLoaded = null; // the caller's stars, asked for once with the first listing

export async function load() {
  listing.setAttribute("aria-busy", "true");
  const base = `/api/v1/nodes/${folderId}/children/?page_size=500`;
  try {
    try {
      state.items = await listAll(`${base}&ordering=${encodeURIComponent(state.ordering)}`);
    } catch (err) {
      if (err.status !== 400) throw err;
      state.items = await listAll(base); // an ordering the server does not offer: sort here
    }
  } catch (err) {
    listing.replaceChildren(el("p", { class: "msg error", role: "alert" }, `Could not list this folder: ${err.message}`));
    listing.setAttribute("aria-busy", "false");
    return;
  }
  await starsLoaded;
  const ids = new Set(state.items.map((i) => i.id));
  for (const id of [...state.selected]) if (!ids.has(id)) state.selected.delete(id);
  if (!ids.has(state.focus)) state.focus = null;
  render();
  listing.setAttribute("aria-busy", "false");
  if (loaded++) refreshQuota(); // the page came with fresh numbers; later loads follow changes
}

function render() {
  state.items.sort(compare);
  document.getElementById("sort").value = state.ordering;
  for (const b of document.querySelectorAll("[data-view]")) b.setAttribute("aria-pressed", String(b.dataset.view === state.view));
  if (!state.items.length) {
    listing.replaceChildren(el("div", { class: "empty" },
      el("p", {}, "This folder is empty."),
      canEdit ? el("p", { class: "muted" }, "Drop files or folders here, or use the upload buttons.") : null));
  } else {
    listing.replaceChildren(state.view === "grid" ? renderGrid() : renderTable());
  }
  renderSelection();
}

// ---- drag-and-drop inside the listing: rows onto a folder move them; files from the desktop
// dropped onto a folder upload into it.
const NODES_TYPE = "application/x-cloudstorage-nodes";
let startUpload = null; // set by the upload section when the caller may write here

function dndAttrs(item) {
  if (!canEdit) return {};
  const attrs = {
    draggable: "true",
    ondragstart: (e) => {
      const ids = state.selected.has(item.id) ? [...state.selected] : [item.id];
      e.dataTransfer.setData(NODES_TYPE, JSON.stringify(ids));
      e.dataTransfer.effectAllowed = "move";
    },
  };
  if (!isFolder(item)) return attrs;
  const accepts = (e) => e.dataTransfer && [...e.dataTransfer.types].some((t) => t === NODES_TYPE || t === "Files");
  return {
    ...attrs,
    ondragover: (e) => {
      if (!accepts(e)) return;
      e.preventDefault();
      e.stopPropagation();
      e.currentTarget.classList.add("drop-target");
    },
    ondragleave: (e) => e.currentTarget.classList.remove("drop-target"),
    ondrop: (e) => {
      if (!accepts(e)) return;
      e.preventDefault();
      e.stopPropagation();
      e.currentTarget.classList.remove("drop-target");
      document.getElementById("dropzone").classList.remove("dragging");
      const moving = e.dataTransfer.getData(NODES_TYPE);
      if (moving) moveInto(JSON.parse(moving).filter((id) => id !== item.id), item);
      else if (startUpload) startUpload(entriesOf(e.dataTransfer), item.id);
    },
  };
}

async function moveInto(ids, folder) {
  const items = state.items.filter((i) => ids.includes(i.id));
  if (!items.length) return;
  await eachItem(items, (i) => api("PATCH", `/api/v1/nodes/${i.id}/`, { json: { parent: folder.id } }),
    (n) => `Moved ${n === 1 ? "1 item" : n + " items"} to “${folder.name}”.`, undoMove);
  state.selected.clear();
  await load();
}

function nameCell(item) {
  if (isFolder(item)) return el("a", { href: folderUrl(item.id), class: "node-name" }, item.name);
  return el("button", { type: "button", class: "link node-name", onclick: () => openPreview(item) }, item.name);
}

// The star toggle of a row or tile: always there (an outline until starred), so a tap stars.
const starOf = (item) => starButton(item, state.starred.has(item.id), () => toggleStar(item));

function checkbox(item) {
  return el("input", {
    type: "checkbox",
    class: "select",
    "aria-label": `Select ${item.name}`,
    checked: state.selected.has(item.id),
    onclick: (e) => toggle(item.id, e.target.checked, e.shiftKey),
  });
}

function sortHeader(label, key) {
  const active = state.ordering.replace(/^-/, "") === key;
  const desc = state.ordering.startsWith("-");
  const th = el("th", { scope: "col", class: `col-${key}`, "aria-sort": active ? (desc ? "descending" : "ascending") : "none" },
    el("button", {
      type: "button", class: "th-sort",
      onclick: () => setOrdering(active && !desc ? "-" + key : key),
    }, label, active ? (desc ? " ▼" : " ▲") : ""));
  return th;
}

function renderTable() {
  const all = el("input", {
    type: "checkbox", "aria-label": "Select all",
    checked: state.items.length > 0 && state.selected.size === state.items.length,
    onclick: (e) => selectAll(e.target.checked),
  });
  return el("table", { class: "table files", "aria-label": "Files" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col", class: "col-check" }, all), sortHeader("Name", "name"),
      sortHeader("Size", "size"), sortHeader("Modified", "modified"), el("th", { scope: "col", class: "col-menu" }, el("span", { class: "sr-only" }, "Actions")))),
    el("tbody", {}, state.items.map((item) =>
      el("tr", { class: state.selected.has(item.id) ? "selected" : "", dataset: { id: item.id, name: item.name }, ...dndAttrs(item), ...pointerAttrs(item) },
        el("td", { class: "col-check" }, checkbox(item)),
        el("td", { class: "col-name" }, el("span", { class: "name-line" },
          el("span", { class: "icon", "aria-hidden": "true" }, iconFor(item)), el("span", { class: "name-text" }, nameCell(item),
            item.tags && item.tags.length ? el("span", { class: "tags" }, item.tags.map((t) => el("span", { class: "badge" }, t))) : null),
          starOf(item))),
        el("td", { class: "nowrap" }, isFolder(item) ? "—" : fmtBytes(item.size)),
        el("td", { class: "col-modified" }, fmtDate(item.modified_at)),
        el("td", { class: "col-menu" }, menuButton(item))))));
}

function renderGrid() {
  return el("ul", { class: "grid-view", "aria-label": "Files" }, state.items.map((item) => {
    const thumb = thumbnail(item);
    return el("li", { class: "tile" + (state.selected.has(item.id) ? " selected" : ""), dataset: { id: item.id, name: item.name }, ...dndAttrs(item), ...pointerAttrs(item) },
      el("div", { class: "tile-head" }, checkbox(item), menuButton(item)), el("div", { class: "thumb" }, thumb), nameCell(item),
      el("div", { class: "tile-foot" }, el("small", { class: "muted" }, isFolder(item) ? "Folder" : fmtBytes(item.size)), starOf(item)));
  }));
}

// ---- pointer and keyboard: click selects (Ctrl/Cmd adds, Shift extends), double click opens,
// right-click and the ⋮ button open the context menu; arrows move, Enter opens.

function openItem(item) {
  if (isFolder(item)) location.href = folderUrl(item.id);
  else openPreview(item);
}

function clickSelect(item, event) {
  if (event.shiftKey) toggle(item.id, true, true, !(event.ctrlKey || event.metaKey));
  else if (event.ctrlKey || event.metaKey) toggle(item.id, !state.selected.has(item.id), false);
  else selectOnly(item.id);
  state.focus = item.id;
}

function pointerAttrs(item) {
  return {
    tabindex: state.focus === item.id || (!state.focus && item === state.items[0]) ? "0" : "-1",
    onclick: (event) => {
      if (event.target.closest("a, button, input, label")) return;
      clickSelect(item, event);
    },
    ondblclick: (event) => {
      if (event.target.closest("button, input")) return;
      openItem(item);
    },
    oncontextmenu: (event) => {
      event.preventDefault();
      if (!state.selected.has(item.id)) selectOnly(item.id);
      showMenu(event.clientX, event.clientY, event.currentTarget);
    },
  };
}

function menuButton(item) {
  return el("button", {
    type: "button", class: "row-menu", "aria-label": "More actions", "aria-haspopup": "menu", title: "More actions",
    onclick: (event) => {
      if (!state.selected.has(item.id)) selectOnly(item.id);
      const box = event.currentTarget.getBoundingClientRect();
      showMenu(box.left, box.bottom, event.currentTarget);
    },
  }, "⋮");
}

// The actions of the context menu follow the selection, as the selection bar does.
function showMenu(x, y, returnFocus) {
  const items = selectedItems();
  const one = items.length === 1 ? items[0] : null;
  const entries = [];
  if (one) entries.push({ label: isFolder(one) ? "Open" : "Preview", run: () => openItem(one) });
  entries.push({ label: "Download", run: actions.download });
  if (one) entries.push({ label: "Details", run: actions.details });
  if (one) entries.push({ label: state.starred.has(one.id) ? "Remove star" : "Add star", run: () => toggleStar(one) });
  if (canEdit) {
    if (one) entries.push({ label: "Rename", run: actions.rename });
    entries.push({ label: "Move", run: actions.move }, { label: "Copy", run: actions.copy });
    if (one) entries.push({ label: "Share", run: actions.share });
    entries.push({ label: "Delete", run: actions.delete, danger: true });
  }
  openMenu({ x, y, entries, label: one ? `Actions for ${one.name}` : `Actions for ${items.length} items`, returnFocus });
}

async function toggleStar(item) {
  const starring = !state.starred.has(item.id);
  try {
    await starSet(item, starring);
  } catch (err) {
    showError(err);
    return;
  }
  starring ? state.starred.add(item.id) : state.starred.delete(item.id);
  render();
  paintDetailsStar(item);
}

// The details panel's own star button follows the item's state wherever it was toggled.
function paintDetailsStar(item) {
  const holder = details.querySelector(".details-star");
  if (!holder || details.hidden || holder.dataset.id !== item.id) return;
  holder.replaceChildren(starButton(item, state.starred.has(item.id), () => toggleStar(item), { text: true }));
}

// Asked for beside the first listing, so the rows come with their stars: a star tapped at once is
// never undone by a late answer.
async function loadStars() {
  try {
    state.starred = new Set((await api("GET", "/api/v1/starred/")).map((n) => n.id));
  } catch (err) {
    // Stars are a convenience: the listing works without them.
  }
}

function focusItem(id) {
  state.focus = id;
  for (const node of listing.querySelectorAll("[data-id]")) node.tabIndex = node.dataset.id === id ? 0 : -1;
  listing.querySelector(`[data-id="${CSS.escape(id)}"]`)?.focus();
}

listing.addEventListener("keydown", (event) => {
  const node = event.target.closest("[data-id]");
  if (!node || event.target !== node) return;
  const index = state.items.findIndex((i) => i.id === node.dataset.id);
  const item = state.items[index];
  const step = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 }[event.key];
  if (step) {
    event.preventDefault();
    const next = state.items[Math.max(0, Math.min(state.items.length - 1, index + step))];
    if (event.shiftKey) toggle(next.id, true, true, true);
    else if (!(event.ctrlKey || event.metaKey)) selectOnly(next.id);
    focusItem(next.id);
  } else if (event.key === "Enter") {
    event.preventDefault();
    openItem(item);
  } else if (event.key === " ") {
    event.preventDefault();
    toggle(item.id, !state.selected.has(item.id), false);
  } else if (event.key === "ContextMenu" || (event.shiftKey && event.key === "F10")) {
    event.preventDefault();
    if (!state.selected.has(item.id)) selectOnly(item.id);
    const box = node.getBoundingClientRect();
    showMenu(box.left + 24, box.bottom, node);
  }
});

function setOrdering(ordering) {
  state.ordering = ordering;
  localStorage.setItem("browser.ordering", ordering);
  load();
}

// ---- selection -------------------------------------------------------------------------------

// `range` extends from the anchor (the last item clicked) to `id`; `replace` drops the rest first.
function toggle(id, on, range, replace = false) {
  const ids = state.items.map((i) => i.id);
  if (range && state.anchor && ids.includes(state.anchor)) {
    if (replace) state.selected.clear();
    const [a, b] = [ids.indexOf(state.anchor), ids.indexOf(id)].sort((x, y) => x - y);
    for (const i of ids.slice(a, b + 1)) on ? state.selected.add(i) : state.selected.delete(i);
  } else {
    on ? state.selected.add(id) : state.selected.delete(id);
    state.anchor = id;
  }
  paintSelection();
}

function selectOnly(id) {
  state.selected = new Set([id]);
  state.anchor = id;
  paintSelection();
}

function paintSelection() {
  for (const row of listing.querySelectorAll("[data-id]")) {
    const sel = state.selected.has(row.dataset.id);
    row.classList.toggle("selected", sel);
    const box = row.querySelector("input.select");
    if (box) box.checked = sel;
  }
  renderSelection();
}

function selectAll(on) {
  state.selected = new Set(on ? state.items.map((i) => i.id) : []);
  render();
}

function selectedItems() {
  return state.items.filter((i) => state.selected.has(i.id));
}

function renderSelection() {
  const bar = document.getElementById("selection-bar");
  const n = state.selected.size;
  bar.hidden = n === 0;
  document.getElementById("selection-count").textContent = n === 1 ? "1 item selected" : `${n} items selected`;
  for (const b of bar.querySelectorAll("[data-single]")) b.disabled = n !== 1;
  const all = listing.querySelector('thead input[type="checkbox"]');
  if (all) {
    all.checked = n > 0 && n === state.items.length;
    all.indeterminate = n > 0 && n < state.items.length;
  }
}

// ---- dialogs ---------------------------------------------------------------------------------

// Opens a form dialog; `submit(value)` may throw an API error, shown in the dialog, which stays open.
function formDialog(dialog, { title, okLabel, setup, submit }) {
  dialog.querySelector("h2").textContent = title;
  const ok = dialog.querySelector('button[type="submit"]');
  ok.textContent = okLabel;
  dialogError(dialog, "");
  setup && setup();
  const form = dialog.querySelector("form");
  form.onsubmit = async (event) => {
    event.preventDefault();
    ok.disabled = true;
    try {
      await submit();
      dialog.close("ok");
    } catch (err) {
      dialogError(dialog, err.message);
    } finally {
      ok.disabled = false;
    }
  };
  dialog.showModal();
}

function nameDialog({ title, okLabel, value = "", submit }) {
  const dialog = document.getElementById("name-dialog");
  const input = dialog.querySelector("#name-input");
  formDialog(dialog, {
    title, okLabel,
    setup: () => {
      input.value = value;
      setTimeout(() => {
        input.focus();
        const dot = value.lastIndexOf(".");
        input.setSelectionRange(0, dot > 0 ? dot : value.length);
      });
    },
    submit: () => submit(input.value.trim()),
  });
}

function confirmDialog({ title, text, okLabel, submit }) {
  const dialog = document.getElementById("confirm-dialog");
  formDialog(dialog, { title, okLabel, setup: () => (dialog.querySelector("#confirm-dialog-text").textContent = text), submit });
}

// Folder picker for move and copy: browse from the top the caller can reach.
function pickerDialog({ title, okLabel, exclude, submit }) {
  const dialog = document.getElementById("picker-dialog");
  const list = dialog.querySelector("#picker-list");
  const crumbs = dialog.querySelector("#picker-crumbs");
  let trail = [{ id: root.dataset.pickerRoot, name: root.dataset.pickerRootName }];
  const show = async () => {
    const here = trail[trail.length - 1];
    crumbs.replaceChildren(...trail.map((c, i) => el("li", {},
      i === trail.length - 1 ? el("span", { "aria-current": "location" }, c.name)
        : el("button", { type: "button", class: "link", onclick: () => { trail = trail.slice(0, i + 1); show(); } }, c.name))));
    list.replaceChildren(el("li", { class: "muted" }, "Loading…"));
    try {
      const folders = (await listAll(`/api/v1/nodes/${here.id}/children/`)).filter((c) => isFolder(c) && !exclude.has(c.id));
      folders.sort((a, b) => a.name.localeCompare(b.name));
      list.replaceChildren(...(folders.length ? folders.map((f) => el("li", {},
        el("button", { type: "button", class: "picker-item", onclick: () => { trail.push({ id: f.id, name: f.name }); show(); } }, iconFor(f), " ", f.name)))
        : [el("li", { class: "muted" }, "No folders inside.")]));
    } catch (err) {
      dialogError(dialog, err.message);
    }
  };
  formDialog(dialog, { title, okLabel, setup: show, submit: () => submit(trail[trail.length - 1].id) });
}

// Runs `fn` for every item; reports how many worked and every failure with its name. `undo`
// (given the items that worked) puts an Undo button on the report.
async function eachItem(items, fn, doneText, undo) {
  const done = [];
  const failures = [];
  for (const item of items) {
    try {
      await fn(item);
      done.push(item);
    } catch (err) {
      failures.push(`${item.name}: ${err.message}`);
    }
  }
  if (done.length) notify(doneText(done.length), "success", undo ? { undo: () => undo(done) } : {});
  for (const f of failures) notify(f, "error");
  return failures;
}

// Undo of a move puts every item back in the folder it came from; of a delete, restores it from
// the trash; both reload the listing.
async function undoMove(items) {
  await eachItem(items, (i) => api("PATCH", `/api/v1/nodes/${i.id}/`, { json: { parent: i.parent } }),
    (n) => (n === 1 ? "Moved 1 item back." : `Moved ${n} items back.`));
  await load();
}

async function undoDelete(items) {
  await eachItem(items, (i) => api("POST", `/api/v1/trash/${i.id}/restore/`),
    (n) => (n === 1 ? "Restored 1 item." : `Restored ${n} items.`));
  await load();
}

const actions = {
  "new-folder": () => nameDialog({
    title: "New folder", okLabel: "Create",
    submit: async (name) => {
      await api("POST", `/api/v1/nodes/${folderId}/children/`, { json: { type: "folder", name } });
      notify(`Folder “${name}” created.`, "success");
      await load();
    },
  }),
  rename: () => {
    const [item] = selectedItems();
    nameDialog({
      title: `Rename “${item.name}”`, okLabel: "Rename", value: item.name,
      submit: async (name) => {
        await api("PATCH", `/api/v1/nodes/${item.id}/`, { json: { name } });
        notify(`Renamed to “${name}”.`, "success", {
          undo: async () => {
            await api("PATCH", `/api/v1/nodes/${item.id}/`, { json: { name: item.name } });
            notify(`Renamed back to “${item.name}”.`, "success");
            await load();
          },
        });
        state.selected.clear(); // a later action must not act on the renamed item by surprise
        await load();
      },
    });
  },
  move: () => {
    const items = selectedItems();
    pickerDialog({
      title: items.length === 1 ? `Move “${items[0].name}”` : `Move ${items.length} items`, okLabel: "Move here",
      exclude: new Set(items.map((i) => i.id)),
      submit: async (target) => {
        if (target === folderId) throw new Error("The items are already in this folder.");
        const failures = await eachItem(items, (i) => api("PATCH", `/api/v1/nodes/${i.id}/`, { json: { parent: target } }),
          (n) => (n === 1 ? "Moved 1 item." : `Moved ${n} items.`), undoMove);
        state.selected.clear();
        await load();
        if (failures.length === items.length) throw new Error(failures[0]);
      },
    });
  },
  copy: () => {
    const items = selectedItems();
    pickerDialog({
      title: items.length === 1 ? `Copy “${items[0].name}”` : `Copy ${items.length} items`, okLabel: "Copy here",
      exclude: new Set(items.filter(isFolder).map((i) => i.id)),
      submit: async (target) => {
        const failures = await eachItem(items, (i) => api("POST", `/api/v1/nodes/${i.id}/copy/`, { json: { parent: target } }),
          (n) => (n === 1 ? "Copied 1 item." : `Copied ${n} items.`));
        await load();
        if (failures.length === items.length) throw new Error(failures[0]);
      },
    });
  },
  delete: () => {
    const items = selectedItems();
    confirmDialog({
      title: "Move to the trash?", okLabel: "Delete",
      text: items.length === 1 ? `“${items[0].name}” will be moved to the trash.` : `${items.length} items will be moved to the trash.`,
      submit: async () => {
        await eachItem(items, (i) => api("DELETE", `/api/v1/nodes/${i.id}/`),
          (n) => (n === 1 ? "Moved 1 item to the trash." : `Moved ${n} items to the trash.`), undoDelete);
        state.selected.clear();
        await load();
      },
    });
  },
  download: () => {
    // One anchor click per item: files stream from the API, folders as zip.
    for (const item of selectedItems()) {
      const a = el("a", { href: isFolder(item) ? `/api/v1/nodes/${item.id}/zip` : contentUrl(item.id), download: item.name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
    }
  },
  details: () => openDetails(selectedItems()[0]),
  share: () => openShare(selectedItems()[0]),
  clear: () => selectAll(false),
  "uploads-close": () => (document.getElementById("uploads").hidden = true),
  "uploads-fold": () => foldUploads(!document.getElementById("uploads").classList.contains("collapsed")),
};

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-action]");
  if (!button || !actions[button.dataset.action]) return;
  event.preventDefault();
  actions[button.dataset.action]();
});

for (const b of document.querySelectorAll("[data-view]")) {
  b.addEventListener("click", () => {
    state.view = b.dataset.view;
    localStorage.setItem("browser.view", state.view);
    render();
  });
}
document.getElementById("sort").addEventListener("change", (e) => setOrdering(e.target.value));

// Keyboard: Delete moves the selection to the trash, F2 renames, Ctrl/Cmd+A selects all.
document.addEventListener("keydown", (event) => {
  if (document.querySelector("dialog[open]") || event.target.matches("input:not([type=checkbox]), textarea, select")) return;
  if (event.key === "Delete" && canEdit && state.selected.size) actions.delete();
  else if (event.key === "F2" && canEdit && state.selected.size === 1) actions.rename();
  else if ((event.ctrlKey || event.metaKey) && event.key === "a" && listing.contains(document.activeElement)) {
    event.preventDefault();
    selectAll(true);
  }
});

// ---- preview ---------------------------------------------------------------------------------

async function openPreview(item) {
  const dialog = document.getElementById("preview-dialog");
  const body = dialog.querySelector("#preview-body");
  dialog.querySelector("h2").textContent = item.name;
  dialog.querySelector("#preview-download").href = contentUrl(item.id);
  const mime = (item.mime_type || "").split(";")[0];
  body.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  dialog.showModal();
  if (mime.startsWith("image/")) {
    body.replaceChildren(el("img", { src: previewUrl(item.id), alt: item.name, class: "preview-image" }));
  } else if (mime === "application/pdf") {
    body.replaceChildren(el("iframe", { src: previewUrl(item.id), title: `PDF ${item.name}`, class: "preview-pdf" }));
  } else if (mime.startsWith("video/")) {
    // The server answers Range requests: the player fetches what it plays, and seeks.
    body.replaceChildren(el("video", { src: previewUrl(item.id), controls: true, preload: "metadata", class: "preview-video" }));
  } else if (mime.startsWith("audio/")) {
    body.replaceChildren(el("audio", { src: previewUrl(item.id), controls: true, preload: "metadata", class: "preview-audio" }));
  } else if (mime.startsWith("text/") || ["application/json", "application/xml", "application/javascript"].includes(mime)) {
    try {
      const res = await fetch(previewUrl(item.id), { credentials: "same-origin" });
      if (!res.ok) throw new Error(`The preview could not be loaded (${res.status}).`);
      body.replaceChildren(el("pre", { class: "preview-text", tabindex: "0" }, await res.text()));
    } catch (err) {
      body.replaceChildren(el("p", { class: "msg error", role: "alert" }, err.message));
    }
  } else {
    body.replaceChildren(el("p", {}, "There is no preview for this type of file. Download it to open it."));
  }
}

// ---- details panel ---------------------------------------------------------------------------

async function openDetails(item) {
  details.hidden = false;
  details.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  let node;
  try {
    node = await api("GET", `/api/v1/nodes/${item.id}/`);
  } catch (err) {
    details.replaceChildren(el("p", { class: "msg error", role: "alert" }, err.message));
    return;
  }
  const tags = el("input", { id: "details-tags", value: (node.tags || []).join(", "), disabled: !canEdit });
  const desc = el("textarea", { id: "details-description", rows: "3", disabled: !canEdit }, node.description || "");
  const versions = el("ol", { class: "versions", reversed: true }, el("li", { class: "muted" }, "Loading…"));
  const picture = thumbnail(node, 96);
  if (picture.tagName === "IMG") picture.classList.add("details-thumb");
  details.replaceChildren(
    el("div", { class: "details-head" }, el("h2", { tabindex: "-1" }, iconFor(node), " ", node.name),
      el("button", { type: "button", class: "small secondary", "aria-label": "Close details", onclick: () => (details.hidden = true) }, "×")),
    el("p", { class: "details-star", dataset: { id: node.id } },
      starButton(node, state.starred.has(node.id), () => toggleStar(node), { text: true })),
    ...(picture.tagName === "IMG" ? [picture] : []), // replaceChildren would print a null as "null"
    el("dl", { class: "meta" },
      el("dt", {}, "Type"), el("dd", {}, isFolder(node) ? "Folder" : kindName(node)),
      isFolder(node) ? null : [el("dt", {}, "Size"), el("dd", {}, fmtBytes(node.size))],
      el("dt", {}, "Path"), el("dd", {}, node.path || ""),
      el("dt", {}, "Modified"), el("dd", {}, fmtDate(node.modified_at)),
      el("dt", {}, "Created"), el("dd", {}, fmtDate(node.created_at)),
      isFolder(node) ? null : [el("dt", {}, "Version"), el("dd", {}, String(node.version || ""))],
      el("dt", {}, "You can"), el("dd", {}, ACCESS_WORDS[node.permission] || "")),
    el("form", {
      class: "details-form",
      onsubmit: async (e) => {
        e.preventDefault();
        const tagList = tags.value.split(",").map((t) => t.trim()).filter(Boolean);
        try {
          await api("PATCH", `/api/v1/nodes/${node.id}/`, { json: { tags: tagList, description: desc.value } });
          notify("Details saved.", "success");
          await load();
        } catch (err) {
          showError(err);
        }
      },
    },
    el("label", { for: "details-tags" }, "Tags (comma-separated)"), tags,
    el("label", { for: "details-description" }, "Description"), desc,
    canEdit ? el("button", { type: "submit" }, "Save details") : null),
    ...(isFolder(node) ? [] : [el("h3", {}, "Versions"), versions]),
  );
  if (!isFolder(node)) loadVersions(node, versions);
  details.querySelector("h2").focus(); // screen readers follow to the panel
}

async function loadVersions(node, list) {
  try {
    const all = await listAll(`/api/v1/nodes/${node.id}/versions/`);
    all.sort((a, b) => b.number - a.number);
    list.replaceChildren(...all.map((v) => el("li", { class: "version" },
      el("span", {}, `v${v.number}`, v.number === node.version ? " (current)" : "", ` · ${fmtBytes(v.size)} · ${fmtDate(v.created_at)}`,
        v.restored_from ? ` · restored from v${v.restored_from}` : ""),
      el("a", { href: contentUrl(node.id, v.number), download: node.name, class: "small" }, "Download"),
      canEdit && v.number !== node.version
        ? el("button", {
          type: "button", class: "small secondary", "aria-label": `Restore version ${v.number}`,
          onclick: async () => {
            try {
              await api("POST", `/api/v1/nodes/${node.id}/versions/${v.number}/restore/`);
              notify(`Version ${v.number} restored as the newest version.`, "success");
              await load();
              openDetails(node);
            } catch (err) {
              showError(err);
            }
          },
        }, "Restore")
        : null)));
  } catch (err) {
    list.replaceChildren(el("li", { class: "msg error", role: "alert" }, err.message));
  }
}

// ---- share dialog ----------------------------------------------------------------------------

function shareEmail(share) {
  if (share.email) return share.email;
  if (share.user && typeof share.user === "object") return share.user.email || share.user.name || share.user.id;
  return share.user_email || share.user || "";
}

function linkUrl(link) {
  const url = link.url || `/s/${link.token}`;
  return new URL(url, window.location.origin).toString();
}

async function openShare(item) {
  const dialog = document.getElementById("share-dialog");
  dialog.querySelector("h2").textContent = `Share “${item.name}”`;
  dialogError(dialog, "");
  const shareList = dialog.querySelector("#share-list");
  const linkList = dialog.querySelector("#link-list");

  const loadShares = async () => {
    try {
      const shares = await listAll(`/api/v1/nodes/${item.id}/shares/`);
      shareList.replaceChildren(...(shares.length ? shares.map((s) => {
        const email = shareEmail(s);
        const select = el("select", {
          "aria-label": `Permission of ${email}`,
          onchange: async (e) => {
            try {
              await api("PATCH", `/api/v1/shares/${s.id}/`, { json: { permission: e.target.value } });
              notify(`${email} can now ${e.target.value}.`, "success");
            } catch (err) {
              dialogError(dialog, err.message);
            }
          },
        }, el("option", { value: "view", selected: s.permission === "view" }, "Can view"),
        el("option", { value: "edit", selected: s.permission === "edit" }, "Can edit"));
        // A reshare whose creator can no longer edit the item gives no access (until they can again).
        const off = s.active === false ? el("small", { class: "muted" }, "not in effect: whoever shared it can no longer edit it") : null;
        if (s.inherited) {
          // A share of a folder above: changed or revoked there, not here.
          return el("li", { class: "share-row", dataset: { email } }, el("span", { class: "grow" }, email),
            el("span", { class: "badge" }, s.permission), el("small", { class: "muted" }, "through a folder above"), off);
        }
        return el("li", { class: "share-row", dataset: { email } }, el("span", { class: "grow" }, email), select, off,
          el("button", {
            type: "button", class: "small danger", "aria-label": `Revoke access of ${email}`,
            onclick: async () => {
              try {
                await api("DELETE", `/api/v1/shares/${s.id}/`);
                notify(`${email} no longer has access.`, "success");
                loadShares();
              } catch (err) {
                dialogError(dialog, err.message);
              }
            },
          }, "Revoke"));
      }) : [el("li", { class: "muted" }, "Not shared with anyone yet.")]));
    } catch (err) {
      dialogError(dialog, err.message);
    }
  };

  const loadLinks = async () => {
    try {
      const links = (await listAll(`/api/v1/nodes/${item.id}/links/`)).filter((l) => !l.revoked_at && l.state !== "revoked");
      linkList.replaceChildren(...(links.length ? links.map((l) => {
        const url = linkUrl(l);
        const facts = [l.permission === "upload" ? "upload only" : "view",
          l.has_password || l.password_protected ? "password" : null,
          l.expires_at ? `expires ${fmtDate(l.expires_at)}` : null,
          l.max_downloads ? `${l.download_count || 0}/${l.max_downloads} downloads` : null,
          l.state && l.state !== "active" ? l.state.replace(/_/g, " ") : null].filter(Boolean).join(" · ");
        return el("li", { class: "link-row" },
          el("input", { type: "text", readonly: true, value: url, class: "link-url", "aria-label": "Link address", onfocus: (e) => e.target.select() }),
          el("button", { type: "button", class: "small", onclick: () => copyText(url, "Link copied to the clipboard.") }, "Copy link"),
          el("button", {
            type: "button", class: "small danger", "aria-label": "Revoke link",
            onclick: async () => {
              try {
                await api("DELETE", `/api/v1/links/${l.id}/`);
                notify("Link revoked.", "success");
                loadLinks();
              } catch (err) {
                dialogError(dialog, err.message);
              }
            },
          }, "Revoke"),
          el("small", { class: "muted link-facts" }, facts));
      }) : [el("li", { class: "muted" }, "No public links.")]));
    } catch (err) {
      dialogError(dialog, err.message);
    }
  };

  dialog.querySelector("#share-form").onsubmit = async (e) => {
    e.preventDefault();
    const email = dialog.querySelector("#share-email");
    try {
      await api("POST", `/api/v1/nodes/${item.id}/shares/`, { json: { email: email.value.trim(), permission: dialog.querySelector("#share-permission").value } });
      notify(`Shared with ${email.value.trim()}.`, "success");
      email.value = "";
      dialogError(dialog, "");
      loadShares();
    } catch (err) {
      dialogError(dialog, err.message);
    }
  };
  dialog.querySelector("#link-form").onsubmit = async (e) => {
    e.preventDefault();
    const body = { permission: dialog.querySelector("#link-permission").value };
    const password = dialog.querySelector("#link-password").value;
    const expires = dialog.querySelector("#link-expires").value;
    const max = dialog.querySelector("#link-max").value;
    if (password) body.password = password;
    if (expires) body.expires_at = new Date(`${expires}T23:59:59`).toISOString();
    if (max) body.max_downloads = Number(max);
    const button = e.target.querySelector('button[type="submit"]');
    button.disabled = true;
    button.textContent = "Creating…";
    try {
      const link = await api("POST", `/api/v1/nodes/${item.id}/links/`, { json: body });
      dialogError(dialog, "");
      e.target.reset();
      await loadLinks();
      if (link) copyText(linkUrl(link), "Link created and copied to the clipboard.").catch(() => {});
    } catch (err) {
      dialogError(dialog, err.message);
    } finally {
      button.disabled = false;
      button.textContent = "Create link";
    }
  };
  shareList.replaceChildren();
  linkList.replaceChildren();
  dialog.showModal();
  await Promise.all([loadShares(), loadLinks()]);
}

// ---- uploads ---------------------------------------------------------------------------------

// The upload panel folds to its title line (with the total); a new upload unfolds it.
function foldUploads(folded) {
  const panel = document.getElementById("uploads");
  panel.classList.toggle("collapsed", folded);
  const button = panel.querySelector('[data-action="uploads-fold"]');
  button.textContent = folded ? "Show" : "Collapse";
  button.setAttribute("aria-expanded", String(!folded));
}

if (canEdit) {
  const queue = new UploadQueue({
    panel: document.getElementById("uploads"),
    folderId,
    tusThreshold: Number(root.dataset.tusThreshold || 8 * 1024 * 1024),
    tusChunk: Number(root.dataset.tusChunk || 5 * 1024 * 1024),
    parallel: Number(root.dataset.uploadParallel || 3),
    onDone: (jobs) => {
      const failed = jobs.filter((j) => j.state === "failed").length;
      if (!failed) foldUploads(true); // done: out of the way of the listing and the details
      const files = jobs.filter((j) => !j.folder).length;
      if (!failed) notify(`Uploaded ${files} file${files === 1 ? "" : "s"}.`, "success");
      load();
    },
  });
  const start = async (source, target = folderId) => {
    try {
      const items = await collect(source);
      const existing = target === folderId ? state.items : await listAll(`/api/v1/nodes/${target}/children/`);
      const chosen = await resolveConflicts(items, existing);
      if (!chosen) return;
      foldUploads(false);
      queue.add(chosen, target);
    } catch (err) {
      showError(err);
    }
  };
  startUpload = start;
  for (const id of ["pick-files", "pick-folder"]) {
    const input = document.getElementById(id);
    input.addEventListener("change", () => {
      start({ files: [...input.files] });
      input.value = "";
    });
  }
  // A drop that misses the zone must not make the browser open the file in place of the app.
  for (const type of ["dragover", "drop"]) window.addEventListener(type, (e) => e.preventDefault());
  const zone = document.getElementById("dropzone");
  let depth = 0;
  zone.addEventListener("dragenter", (e) => {
    e.preventDefault();
    depth++;
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = "copy";
  });
  zone.addEventListener("dragleave", () => {
    if (--depth <= 0) zone.classList.remove("dragging");
  });
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    zone.classList.remove("dragging");
    if (e.dataTransfer && ![...e.dataTransfer.types].includes(NODES_TYPE)) start(entriesOf(e.dataTransfer));
  });
}

starsLoaded = loadStars();
load();
