// Uploading a name that exists: ask whether the upload replaces the file (as its new version) or
// is kept beside it as "name (conflicted copy 2026-11-30 2215).ext", as sync clients name them.
import { el } from "./common.js";

const key = (name) => name.normalize("NFC").toLowerCase();

function pad(n) {
  return String(n).padStart(2, "0");
}

export function conflictedName(name, taken, now = new Date()) {
  const dot = name.lastIndexOf(".");
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
  const stamp = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())} ${pad(now.getHours())}${pad(now.getMinutes())}`;
  let candidate = `${stem} (conflicted copy ${stamp})${ext}`;
  for (let n = 2; taken.has(key(candidate)); n++) candidate = `${stem} (conflicted copy ${stamp} ${n})${ext}`;
  return candidate;
}

// items: the upload's [{file, path}]; existing: the target folder's children. Resolves to the items
// to upload (renamed where the person chose "Keep both") or null when they cancelled.
//
// Each single file also gets the condition the server checks when it stores it (If-Match /
// If-None-Match, checked again under the commit's lock): "Replace" replaces the version the person
// saw and no other, and a new name stays new. If someone else changed or created the file in the
// meantime, that upload fails with the server's message instead of silently overwriting their work.
export function resolveConflicts(items, existing) {
  const taken = new Set(existing.map((c) => key(c.name)));
  const etags = new Map(existing.filter((c) => (c.type || c.kind) !== "folder").map((c) => [key(c.name), c.sha256]));
  const single = items.filter((i) => i.file && !i.path.includes("/"));
  for (const i of single) {
    const sha = etags.get(key(i.path));
    if (sha === undefined) i.ifNoneMatch = "*";
    else if (sha) i.ifMatch = `"${sha}"`;
  }
  // Only single files clash: a dropped folder merges into a folder of the same name.
  const clashing = single.filter((i) => etags.has(key(i.path)));
  if (!clashing.length) return Promise.resolve(items);
  const dialog = document.getElementById("conflict-dialog");
  dialog.querySelector("h2").textContent = clashing.length === 1
    ? `“${clashing[0].path}” already exists here` : `${clashing.length} files already exist here`;
  dialog.querySelector("#conflict-dialog-text").textContent = clashing.length === 1
    ? "Replace it (the current content stays in the version history), or keep both files?"
    : "Replace them (the current content stays in the version history), or keep both files?";
  const more = clashing.length > 5 ? [el("li", { class: "muted" }, `and ${clashing.length - 5} more`)] : [];
  dialog.querySelector("#conflict-list").replaceChildren(...clashing.slice(0, 5).map((i) => el("li", {}, i.path)), ...more);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      if (dialog.returnValue === "replace") resolve(items);
      else if (dialog.returnValue === "keep") {
        for (const i of clashing) {
          i.path = conflictedName(i.path, taken);
          taken.add(key(i.path));
          delete i.ifMatch;
          i.ifNoneMatch = "*";
        }
        resolve(items);
      } else resolve(null);
    }, { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}
