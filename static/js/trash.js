// The trash: restore to the original place, delete forever, empty; days left per item.
import { api, dialogError, el, fmtBytes, fmtDate, iconFor, isFolder, listAll, notify, refreshQuota, showError } from "./common.js";

const page = document.getElementById("trash-page");
const workspaceId = page.dataset.workspace;
const trashDays = Number(page.dataset.trashDays || 30);
const canEdit = page.dataset.canEdit === "1";
const canManage = page.dataset.canManage === "1";
const box = document.getElementById("trash");
const DAY = 24 * 3600 * 1000;

function daysLeft(item) {
  if (typeof item.days_left === "number") return item.days_left;
  const end = item.purge_at || item.purges_at || item.expires_at;
  const endTime = end ? new Date(end).getTime() : new Date(item.deleted_at).getTime() + trashDays * DAY;
  return Math.max(0, Math.ceil((endTime - Date.now()) / DAY));
}

function confirmDialog(title, text, okLabel, submit) {
  const dialog = document.getElementById("confirm-dialog");
  dialog.querySelector("h2").textContent = title;
  dialog.querySelector("#confirm-dialog-text").textContent = text;
  const ok = dialog.querySelector("#confirm-dialog-ok");
  ok.textContent = okLabel;
  dialogError(dialog, "");
  dialog.querySelector("form").onsubmit = async (e) => {
    e.preventDefault();
    try {
      await submit();
      dialog.close();
    } catch (err) {
      dialogError(dialog, err.message);
    }
  };
  dialog.showModal();
}

async function restore(item) {
  try {
    const node = await api("POST", `/api/v1/trash/${item.id}/restore/`);
    const where = node && node.path ? node.path : item.original_path || "its folder";
    notify(`Restored “${item.name}” to ${where}.`, "success");
    await load();
  } catch (err) {
    showError(err);
  }
}

let loaded = 0;

async function load() {
  if (loaded++) refreshQuota();
  let items;
  try {
    items = await listAll(`/api/v1/workspaces/${workspaceId}/trash/`);
  } catch (err) {
    box.replaceChildren(el("p", { class: "msg error", role: "alert" }, `Could not load the trash: ${err.message}`));
    return;
  }
  const empty = document.getElementById("empty-trash");
  if (empty) empty.disabled = !items.length;
  if (!items.length) {
    box.replaceChildren(el("p", { class: "empty" }, "The trash is empty."));
  } else {
    box.replaceChildren(el("table", { class: "table", "aria-label": "Trash" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Name"), el("th", { scope: "col" }, "Original location"),
        el("th", { scope: "col" }, "Deleted"), el("th", { scope: "col" }, "Days left"), el("th", { scope: "col" }, "Size"),
        el("th", { scope: "col" }, el("span", { class: "sr-only" }, "Actions")))),
      el("tbody", {}, items.map((item) => {
        const left = daysLeft(item);
        return el("tr", { dataset: { id: item.id, name: item.name } },
          el("td", {}, el("span", { class: "icon", "aria-hidden": "true" }, iconFor(item)), " ", item.name),
          el("td", {}, item.original_path || "/"),
          el("td", {}, fmtDate(item.deleted_at)),
          el("td", {}, el("span", { class: "badge" + (left <= 3 ? " warn" : "") }, left === 1 ? "1 day" : `${left} days`)),
          el("td", {}, isFolder(item) ? "—" : fmtBytes(item.size)),
          el("td", { class: "actions" },
            canEdit ? el("button", { type: "button", class: "small", "aria-label": `Restore ${item.name}`, onclick: () => restore(item) }, "Restore") : null,
            canManage ? el("button", {
              type: "button", class: "small danger", "aria-label": `Delete ${item.name} forever`,
              onclick: () => confirmDialog("Delete forever?", `“${item.name}” will be deleted for good. This cannot be undone.`, "Delete forever", async () => {
                await api("DELETE", `/api/v1/trash/${item.id}/`);
                notify(`“${item.name}” was deleted for good.`, "success");
                await load();
              }),
            }, "Delete forever") : null));
      }))));
  }
  box.setAttribute("aria-busy", "false");
}

document.getElementById("empty-trash")?.addEventListener("click", () =>
  confirmDialog("Empty the trash?", "Everything in the trash will be deleted for good. This cannot be undone.", "Empty the trash", async () => {
    await api("DELETE", `/api/v1/workspaces/${workspaceId}/trash/`);
    notify("The trash is empty.", "success");
    await load();
  }));

load();
