// The Starred view: the caller's starred files and folders, in every workspace.
import { api, el } from "./common.js";
import { resultsTable } from "./search.js";

const box = document.getElementById("starred");

async function load() {
  try {
    const items = await api("GET", "/api/v1/starred/");
    box.replaceChildren(items.length ? resultsTable(items, "Starred") : el("p", { class: "empty" }, "Nothing starred yet."));
  } catch (err) {
    box.replaceChildren(el("p", { class: "msg error", role: "alert" }, `Could not load the starred items: ${err.message}`));
  }
  box.setAttribute("aria-busy", "false");
}

load();
