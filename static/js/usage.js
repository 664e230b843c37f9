// Usage page: the quota bar and two charts (by use: current files, old versions, trash; by file
// type), drawn as inline SVG, each with the same numbers in a table for screen readers.
import { api, el, fmtBytes } from "./common.js";

const page = document.getElementById("usage-page");
const workspaceId = page.dataset.workspace;
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#0b5cd5", "#7c3aed", "#c2410c", "#0f766e", "#be185d", "#4d7c0f", "#b45309", "#475569"];

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// Kinds of file the API names in lower case, as people write them.
const KIND_WORDS = { pdf: "PDF", images: "Images", image: "Images", video: "Videos", audio: "Audio", text: "Text", archives: "Archives", archive: "Archives", other: "Other" };

function label(key) {
  const words = key.replace(/_bytes$/, "").replace(/_/g, " ");
  return KIND_WORDS[words] || words.charAt(0).toUpperCase() + words.slice(1);
}

// rows: [{label, bytes, count?}] -> horizontal bars with their sizes.
function barChart(title, rows) {
  const max = Math.max(1, ...rows.map((r) => r.bytes));
  const rowH = 34;
  const width = 520;
  const labelW = 130;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${rows.length * rowH + 8}`, role: "img", "aria-label": title, class: "bars" });
  rows.forEach((row, i) => {
    const y = i * rowH + 4;
    const w = Math.max(2, ((width - labelW - 110) * row.bytes) / max);
    chart.append(svg("text", { x: 0, y: y + 20, class: "bar-label" }, row.label));
    chart.append(svg("rect", { x: labelW, y: y + 4, width: w, height: rowH - 12, rx: 4, fill: COLORS[i % COLORS.length] }));
    chart.append(svg("text", { x: labelW + w + 8, y: y + 20, class: "bar-value" }, fmtBytes(row.bytes) + (row.count !== undefined ? ` · ${row.count}` : "")));
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
    if (typeof usage.files === "number") facts.push(`${usage.files} files in ${usage.folders ?? 0} folders, ${usage.versions ?? 0} versions`);
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
