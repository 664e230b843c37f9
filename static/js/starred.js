// The Starred view: the caller's starred files and folders, in every workspace. Each row's star
// takes it off the list (with Undo).
import { api, el, showError } from "./common.js";
import { resultsTable } from "./search.js";
import { starButton, starSet } from "./stars.js";

const box = document.getElementById("starred");

function unstar(item) {
  return async () => {
    try {
      await starSet(item, false, {
        undo: async () => {
          await starSet(item, true);
          await load();
        },
      });
    } catch (err) {
      showError(err);
      return;
    }
    await load();
  };
}

async function load() {
  box.setAttribute("aria-busy", "true");
  try {
    const items = await api("GET", "/api/v1/starred/");
    box.replaceChildren(items.length
      ? resultsTable(items, "Starred", { action: (item) => starButton(item, true, unstar(item)) })
      : el("p", { class: "empty" }, "Nothing starred yet."));
  } catch (err) {
    box.replaceChildren(el("p", { class: "msg error", role: "alert" }, `Could not load the starred items: ${err.message}`));
  }
  box.setAttribute("aria-busy", "false");
}

load();
