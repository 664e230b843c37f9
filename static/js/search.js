// Search a workspace by name, tag, description and type; results link to where they live.
import { api, el, fmtBytes, fmtDate, iconFor, isFolder } from "./common.js";

const page = document.getElementById("search-page");
const form = document.getElementById("search-form");
const results = document.getElementById("results");

async function search() {
  const params = new URLSearchParams();
  for (const key of ["q", "type", "tag"]) {
    const value = form.elements[key].value.trim();
    if (value) params.set(key, value);
  }
  if (![...params.keys()].length) {
    results.replaceChildren();
    return;
  }
  history.replaceState(null, "", "?" + params);
  results.replaceChildren(el("p", { class: "muted" }, "Searching…"));
  let data;
  try {
    data = await api("GET", `/api/v1/workspaces/${page.dataset.workspace}/search/?${params}`);
  } catch (err) {
    results.replaceChildren(el("p", { class: "msg error", role: "alert" }, `Search failed: ${err.message}`));
    return;
  }
  const items = Array.isArray(data) ? data : data.results || [];
  if (!items.length) {
    results.replaceChildren(el("p", { class: "empty" }, "Nothing found."));
    return;
  }
  results.replaceChildren(el("p", { class: "muted" }, `${items.length}${data.next ? "+" : ""} result${items.length === 1 ? "" : "s"}`),
    resultsTable(items, "Search results"));
}

// The folder an item is in ("/Reports" for "/Reports/q3.pdf"; "/" at the top).
const folderOf = (path) => (path ? path.slice(0, path.lastIndexOf("/")) || "/" : "");

// Name (opening where the item lives), location, size and time; also the Recent and Starred pages'
// lists. `action(item)` (optional) adds a last cell with a button (the Starred view's star).
export function resultsTable(items, label, { action } = {}) {
  return el("table", { class: "table", "aria-label": label },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Name"), el("th", { scope: "col" }, "Location"),
        el("th", { scope: "col" }, "Size"), el("th", { scope: "col" }, "Modified"),
        action ? el("th", { scope: "col" }, el("span", { class: "sr-only" }, "Actions")) : null)),
      el("tbody", {}, items.map((item) => el("tr", { dataset: { id: item.id, name: item.name } },
        el("td", {}, el("span", { class: "icon", "aria-hidden": "true" }, iconFor(item)), " ",
          el("a", { href: `/app/open/${item.id}/` }, item.name),
          item.tags && item.tags.length ? el("span", { class: "tags" }, item.tags.map((t) => el("span", { class: "badge" }, t))) : null),
        el("td", { class: "long-word" }, folderOf(item.path)),
        el("td", { class: "nowrap" }, isFolder(item) ? "—" : fmtBytes(item.size)),
        el("td", {}, fmtDate(item.modified_at)),
        action ? el("td", { class: "cell-action" }, action(item)) : null))));
}

if (form) {
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    search();
  });
  const initial = new URLSearchParams(location.search);
  for (const key of ["type", "tag"]) if (initial.get(key)) form.elements[key].value = initial.get(key);
  search();
}
