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

// Name (opening where the item lives), location, size and time; also the Recent page's list.
export function resultsTable(items, label) {
  return el("table", { class: "table", "aria-label": label },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Name"), el("th", { scope: "col" }, "Location"),
        el("th", { scope: "col" }, "Size"), el("th", { scope: "col" }, "Modified"))),
      el("tbody", {}, items.map((item) => el("tr", { dataset: { id: item.id } },
        el("td", {}, el("span", { class: "icon", "aria-hidden": "true" }, iconFor(item)), " ",
          el("a", { href: `/app/open/${item.id}/` }, item.name),
          item.tags && item.tags.length ? el("span", { class: "tags" }, item.tags.map((t) => el("span", { class: "badge" }, t))) : null),
        el("td", {}, item.path || ""),
        el("td", {}, isFolder(item) ? "—" : fmtBytes(item.size)),
        el("td", {}, fmtDate(item.modified_at))))));
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
