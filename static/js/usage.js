// Usage page: the quota bar and two charts (by use: current files, old versions, trash; by file
// type), drawn as HTML bars, each with the same numbers in a table ("Show as a table").
import { api, el, fmtBytes } from "./common.js";

const page = document.getElementById("usage-page");
const workspaceId = page.dataset.workspace;
const COLORS = ["#0b5cd5", "#7c3aed", "#c2410c", "#0f766e", "#be185d", "#4d7c0f", "#b45309", "#475569"];

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

// Kinds of file the API names in lower case, as people write them.
const KIND_WORDS = { pdf: "PDF", images: "Images", image: "Images", video: "Videos", audio: "Audio", text: "Text", archives: "Archives", archive: "Archives", other: "Other" };

function label(key) {
  const words = key.replace(/_bytes$/, "").replace(/_/g, " ");
  return KIND_WORDS[words] || words.charAt(0).toUpperCase() + words.slice(1);
}

// rows: [{label, bytes, count?}] -> horizontal bars with their sizes. HTML, not a scaled SVG: the
// words keep their size on a phone.
function barChart(title, rows) {
  const max = Math.max(1, ...rows.map((r) => r.bytes));
  const chart = el("div", { class: "bars", role: "img", "aria-label": title });
  rows.forEach((row, i) => {
    const fill = el("span", { class: "bar-fill" });
    fill.style.width = `calc((100% - 7rem) * ${(row.bytes / max).toFixed(4)})`;
    fill.style.background = COLORS[i % COLORS.length];
    chart.append(el("span", { class: "bar-name" }, row.label),
      el("span", { class: "bar-line" }, fill,
        el("span", { class: "bar-amount" }, fmtBytes(row.bytes) + (row.count !== undefined ? ` · ${plural(row.count, "file")}` : ""))));
  });
  const table = el("table", { class: "table compact sr-only-table" },
    el("caption", { class: "sr-only" }, title),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "What"), el("th", { scope: "col" }, "Size"),
      rows.some((r) => r.count !== undefined) ? el("th", { scope: "col" }, "Files") : null)),
    el("tbody", {}, rows.map((r) => el("tr", {}, el("td", {}, r.label), el("td", {}, fmtBytes(r.bytes)),
      r.count !== undefined ? el("td", {}, String(r.count)) : null))));
  return [chart, el("details", {}, el("summary", {}, "Show as a table"), table)];
}

function useRows(usage) {
  if ("current_bytes" in usage) {
    return [
      { label: "Current files", bytes: usage.current_bytes, count: usage.files },
      { label: "Older versions", bytes: usage.versions_bytes || 0 },
      { label: "Trash", bytes: usage.trash_bytes || 0 },
    ];
  }
  const source = usage.by_use || usage.categories || usage.breakdown || usage;
  if (Array.isArray(source)) return source.map((r) => ({ label: label(r.name || r.category || r.use || "?"), bytes: Number(r.bytes ?? r.size ?? 0) }));
  const skip = new Set(["used_bytes", "quota_bytes", "free_bytes", "available_bytes", "plan_bytes"]);
  return Object.entries(source)
    .filter(([k, v]) => k.endsWith("_bytes") && !skip.has(k) && typeof v === "number")
    .map(([k, v]) => ({ label: label(k), bytes: v }));
}

function typeRows(data) {
  const list = Array.isArray(data) ? data : data.results || data.types || data.file_types || data.by_type || [];
  const rows = Array.isArray(list) ? list : Object.entries(list).map(([k, v]) => ({ type: k, ...(typeof v === "object" ? v : { bytes: v }) }));
  return rows
    .map((r) => ({ label: label(String(r.type || r.category || r.kind || r.mime_type || r.name || "other")), bytes: Number(r.bytes ?? r.size ?? r.total_bytes ?? 0), count: r.count ?? r.files ?? r.file_count }))
    .sort((a, b) => b.bytes - a.bytes);
}

function quota(usage) {
  const used = usage.used_bytes ?? Number(page.dataset.used);
  const total = usage.quota_bytes ?? Number(page.dataset.quota);
  const pct = total ? Math.min(100, Math.round((used / total) * 100)) : 0;
  const bar = document.getElementById("quota-bar");
  bar.setAttribute("aria-valuenow", String(pct));
  bar.querySelector("span").style.width = pct + "%";
  bar.classList.toggle("full", pct >= 90);
  document.querySelector('[data-testid="quota-used"]').textContent = fmtBytes(used);
  document.querySelector('[data-testid="quota-total"]').textContent = fmtBytes(total);
}

async function load() {
  const useBox = document.getElementById("use-chart");
  const typeBox = document.getElementById("types-chart");
  try {
    const usage = await api("GET", `/api/v1/workspaces/${workspaceId}/usage/`);
    quota(usage);
    const rows = useRows(usage);
    const facts = [];
    if (typeof usage.files === "number") facts.push(`${plural(usage.files, "file")} in ${plural(usage.folders ?? 0, "folder")}, ${plural(usage.versions ?? 0, "version")}`);
    if (usage.dedup_saved_bytes) facts.push(`${fmtBytes(usage.dedup_saved_bytes)} saved by deduplication`);
    useBox.replaceChildren(...(rows.length ? barChart("Storage by use", rows) : [el("p", { class: "muted" }, "No data yet.")]),
      ...facts.map((f) => el("p", { class: "muted" }, f)));
  } catch (err) {
    useBox.replaceChildren(el("p", { class: "msg error", role: "alert" }, `Could not load the usage: ${err.message}`));
  }
  try {
    const rows = typeRows(await api("GET", `/api/v1/workspaces/${workspaceId}/usage/file-types/`));
    typeBox.replaceChildren(...(rows.length ? barChart("Storage by type of file", rows) : [el("p", { class: "muted" }, "No files yet.")]));
  } catch (err) {
    typeBox.replaceChildren(el("p", { class: "msg error", role: "alert" }, `Could not load the file types: ${err.message}`));
  }
}

load();
