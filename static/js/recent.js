// The Recent view: the workspace's files by time of their last change, newest first.
import { api, el } from "./common.js";
import { resultsTable } from "./search.js";

const page = document.getElementById("recent-page");
const box = document.getElementById("recent");

async function load() {
  try {
    const data = await api("GET", `/api/v1/workspaces/${page.dataset.workspace}/search/?type=file&ordering=-modified&page_size=50`);
    const items = data.results || [];
    box.replaceChildren(items.length ? resultsTable(items, "Recent files") : el("p", { class: "empty" }, "No files yet."));
  } catch (err) {
    box.replaceChildren(el("p", { class: "msg error", role: "alert" }, `Could not load the recent files: ${err.message}`));
  }
  box.setAttribute("aria-busy", "false");
}

load();
