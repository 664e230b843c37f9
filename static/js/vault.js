// The vault pages: create a vault, unlock it, and browse, upload, download, preview, rename, move,
// delete, version and link its files, all encrypted and decrypted here (vault-crypto.js). The
// unlocked key lives in this module's memory only: never in storage, cookies or the URL.
import { api, listAll, notify, showError, el, fmtBytes, fmtDate } from "./common.js";
import { tusUpload } from "./tus.js";
import * as vc from "./vault-crypto.js";

const PREVIEW_TYPES = {
  png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif", webp: "image/webp",
  pdf: "application/pdf", txt: "text", md: "text", csv: "text", json: "text", log: "text", xml: "text",
  py: "text", js: "text", html: "text", css: "text", yaml: "text", yml: "text",
};
const typeOf = (name) => PREVIEW_TYPES[(name.split(".").pop() || "").toLowerCase()] || null;
const isFolder = (node) => node.type === "folder";

function message(err) {
  if (err instanceof vc.WrongPassphrase) return "Wrong passphrase. Nothing was unlocked.";
  if (err instanceof vc.Tampered) return `This file failed its integrity check and was not opened: ${err.message}`;
  return err && err.message ? err.message : String(err);
}

// --- Create ---------------------------------------------------------------------------------------

function setupCreate(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const passphrase = form.querySelector("#vault-new-passphrase").value;
    if (passphrase !== form.querySelector("#vault-confirm").value) return notify("The two passphrases differ.");
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    button.textContent = "Deriving the key…";
    try {
      const fields = await vc.newVault(passphrase);
      const vault = await api("POST", "/api/v1/vaults/", { json: { parent: form.dataset.parent, name: form.querySelector("#vault-name").value, ...fields } });
      window.location.assign(`/app/vaults/${vault.id}/`);
    } catch (err) {
      showError(err);
      button.disabled = false;
      button.textContent = "Create vault";
    }
  });
  form.querySelector("button[type=submit]").disabled = false; // the page ships it disabled until now
}

// --- Open vault -----------------------------------------------------------------------------------

function setupVault(root) {
  const state = { id: root.dataset.vault, record: null, keys: null, trail: [], nodes: [] };
  const canEdit = root.dataset.canEdit === "1";
  const tusThreshold = Number(root.dataset.tusThreshold);
  const tusChunk = Number(root.dataset.tusChunk);
  const listing = document.getElementById("vault-listing");
  const panel = document.getElementById("vault-panel");
  const progress = document.getElementById("vault-progress");
  const unlockForm = document.getElementById("vault-unlock");
  const lockedBox = document.getElementById("vault-locked");
  const openBox = document.getElementById("vault-open");
  const folderId = () => state.trail[state.trail.length - 1].id;

  unlockForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("vault-passphrase");
    const button = unlockForm.querySelector("button");
    button.disabled = true;
    button.textContent = "Unlocking…";
    try {
      state.record = await api("GET", `/api/v1/vaults/${state.id}/`);
      state.keys = await vc.unlock(state.record, input.value);
      input.value = "";
      state.trail = await trailTo(new URLSearchParams(location.search).get("folder"));
      lockedBox.hidden = true;
      openBox.hidden = false;
      await refresh();
    } catch (err) {
      notify(message(err));
    } finally {
      button.disabled = false;
      button.textContent = "Unlock";
    }
  });
  unlockForm.querySelector("button").disabled = false; // the page ships it disabled until now

  // The folders from the vault down to `id` (the vault itself when `id` is not inside it).
  async function trailTo(id) {
    const top = { id: state.id, name: state.record.name };
    if (!id || id === state.id) return [top];
    const chain = [];
    let node = await api("GET", `/api/v1/nodes/${id}/`);
    while (node && node.id !== state.id && chain.length < 64) {
      chain.unshift({ id: node.id, name: node.name });
      node = node.parent ? await api("GET", `/api/v1/nodes/${node.parent}/`) : null;
    }
    return node ? [top, ...chain] : [top];
  }

  function crumbs() {
    const list = document.getElementById("vault-crumbs");
    list.replaceChildren(...state.trail.map((step, index) => el("li", {},
      index === state.trail.length - 1
        ? el("span", { "aria-current": "page" }, step.name)
        : el("a", { href: "#", onclick: (e) => { e.preventDefault(); go(index); } }, step.name))));
  }

  async function go(index) {
    state.trail = state.trail.slice(0, index + 1);
    await refresh();
  }

  async function refresh() {
    crumbs();
    history.replaceState(null, "", `${location.pathname}${state.trail.length > 1 ? `?folder=${folderId()}` : ""}`);
    listing.setAttribute("aria-busy", "true");
    try {
      state.nodes = await listAll(`/api/v1/nodes/${folderId()}/children/?ordering=name`);
    } catch (err) {
      showError(err);
      state.nodes = [];
    }
    const rows = state.nodes.map((node) => el("tr", { dataset: { name: node.name, id: node.id } },
      el("td", {}, isFolder(node)
        ? el("a", { href: "#", onclick: (e) => { e.preventDefault(); state.trail.push({ id: node.id, name: node.name }); refresh(); } }, `📁 ${node.name}`)
        : node.name),
      el("td", {}, isFolder(node) ? "" : sizeText(node.size)),
      el("td", {}, fmtDate(node.modified_at)),
      el("td", { class: "vault-actions" }, el("div", {}, isFolder(node) ? folderActions(node) : fileActions(node)))));
    listing.replaceChildren(rows.length
      ? el("table", { class: "table" },
          el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", {}, "Size"), el("th", {}, "Modified"), el("th", {}, el("span", { class: "sr-only" }, "Actions")))),
          el("tbody", {}, rows))
      : el("p", { class: "empty muted" }, "This folder is empty."));
    listing.setAttribute("aria-busy", "false");
  }

  function sizeText(cipherBytes) {
    const plain = vc.plainSize(cipherBytes);
    return plain === null ? "not a vault file" : fmtBytes(plain);
  }

  const small = (label, onclick, extra = {}) => el("button", { type: "button", class: "small secondary", onclick, ...extra }, label);

  function fileActions(node) {
    const type = typeOf(node.name);
    return [
      type && small("Preview", () => guard(preview(node, type)), { "aria-label": `Preview ${node.name}` }),
      small("Download", () => guard(download(node)), { "aria-label": `Download ${node.name}` }),
      small("Versions", () => guard(versions(node))),
      canEdit && small("Link", () => guard(makeLink(node))),
      ...commonActions(node),
    ];
  }

  const folderActions = (node) => commonActions(node);

  function commonActions(node) {
    if (!canEdit) return [];
    return [
      small("Rename", () => renameForm(node)),
      small("Move", () => moveForm(node)),
      small("Delete", () => guard(remove(node)), { class: "small danger" }),
    ];
  }

  async function guard(promise) {
    try {
      await promise;
    } catch (err) {
      notify(message(err));
    }
  }

  function showPanel(title, ...content) {
    panel.hidden = false;
    panel.replaceChildren(el("div", { class: "details-head" }, el("h2", {}, title),
      el("button", { type: "button", class: "link dismiss", "aria-label": "Close", onclick: closePanel }, "×")), ...content);
  }

  function closePanel() {
    for (const img of panel.querySelectorAll("img, iframe")) URL.revokeObjectURL(img.src);
    panel.hidden = true;
    panel.replaceChildren();
  }

  // Every byte is verified before any is shown or saved: decryptAll fails whole or returns whole.
  async function plaintextOf(node, version) {
    progress.textContent = `Downloading and decrypting ${node.name}…`;
    try {
      const response = await fetch(`/api/v1/nodes/${node.id}/content${version ? `?version=${version}` : ""}`, { credentials: "same-origin" });
      if (!response.ok) throw new Error(`The download failed (${response.status}).`);
      return await vc.decryptAll(await response.arrayBuffer(), { vault: state.keys });
    } finally {
      progress.textContent = "";
    }
  }

  async function download(node, version) {
    const plain = await plaintextOf(node, version);
    const url = URL.createObjectURL(new Blob([plain]));
    const link = el("a", { href: url, download: node.name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }

  async function preview(node, type) {
    const plain = await plaintextOf(node, null);
    if (type === "text") {
      return showPanel(node.name, el("pre", { class: "preview-text", "data-testid": "vault-preview-text" }, new TextDecoder().decode(plain.subarray(0, 512 * 1024))));
    }
    const url = URL.createObjectURL(new Blob([plain], { type }));
    const body = type === "application/pdf"
      ? el("iframe", { class: "preview-pdf", src: url, title: node.name })
      : el("img", { class: "preview-image", src: url, alt: node.name, "data-testid": "vault-preview-image" });
    showPanel(node.name, body);
  }

  async function versions(node) {
    const list = await api("GET", `/api/v1/nodes/${node.id}/versions/`);
    showPanel(`Versions of ${node.name}`, el("ul", { class: "versions plain-list" }, list.map((v) => el("li", { class: "version" },
      `v${v.number} · ${sizeText(v.size)} · ${fmtDate(v.created_at)}${v.current ? " (current)" : ""} `,
      small("Download", () => guard(download(node, v.number))),
      canEdit && !v.current && small("Restore", () => guard(api("POST", `/api/v1/nodes/${node.id}/versions/${v.number}/restore/`).then(() => { notify(`Restored v${v.number} as a new version.`, "ok"); closePanel(); refresh(); })))))));
  }

  // The link's URL carries the file's content key after "#": browsers never send a fragment to a
  // server, so the key reaches the recipient and no log.
  async function makeLink(node) {
    const head = await fetch(`/api/v1/nodes/${node.id}/content`, { headers: { Range: `bytes=0-${vc.HEADER - 1}` }, credentials: "same-origin" });
    if (!head.ok) throw new Error(`The file could not be read (${head.status}).`);
    const key = await vc.contentKeyOf(await head.arrayBuffer(), state.keys);
    const link = await api("POST", `/api/v1/nodes/${node.id}/links/`, { json: { permission: "view" } });
    const url = new URL(link.url, location.href).toString() + "#k=" + vc.b64url(key);
    key.fill(0);
    showPanel(`Public link to ${node.name}`,
      el("p", { class: "muted" }, "Anyone with this whole link can download and decrypt this one file. The key after # never reaches the server."),
      el("input", { readonly: true, value: url, class: "link-url", "data-testid": "vault-link-url", "aria-label": "Link", onfocus: (e) => e.target.select() }));
  }

  async function remove(node) {
    await api("DELETE", `/api/v1/nodes/${node.id}/`);
    notify(`"${node.name}" moved to the trash; restore it from the Trash page.`, "ok");
    await refresh();
  }

  function renameForm(node) {
    const input = el("input", { value: node.name, required: true, id: "vault-rename", maxlength: 255 });
    showPanel(`Rename ${node.name}`, el("form", { class: "dialog-form", onsubmit: (e) => {
      e.preventDefault();
      guard(api("PATCH", `/api/v1/nodes/${node.id}/`, { json: { name: input.value } }).then(() => { closePanel(); refresh(); }));
    } }, el("label", { for: "vault-rename" }, "New name"), input, el("div", { class: "dialog-actions" }, el("button", { type: "submit" }, "Rename"))));
  }

  // Targets inside the vault only: the folder above and the folders beside the item.
  function moveForm(node) {
    const targets = [];
    if (state.trail.length > 1) targets.push(state.trail[state.trail.length - 2]);
    for (const other of state.nodes) if (isFolder(other) && other.id !== node.id) targets.push({ id: other.id, name: other.name });
    if (!targets.length) return notify("There is no other folder in this vault to move it to. Create one first.");
    const select = el("select", { id: "vault-move-target" }, targets.map((t) => el("option", { value: t.id }, t.name)));
    showPanel(`Move ${node.name}`, el("form", { class: "dialog-form", onsubmit: (e) => {
      e.preventDefault();
      guard(api("PATCH", `/api/v1/nodes/${node.id}/`, { json: { parent: select.value } }).then(() => { closePanel(); refresh(); }));
    } }, el("label", { for: "vault-move-target" }, "Into folder"), select, el("div", { class: "dialog-actions" }, el("button", { type: "submit" }, "Move"))));
  }

  function passphraseForm() {
    const current = el("input", { type: "password", id: "vault-current", required: true, autocomplete: "current-password" });
    const next = el("input", { type: "password", id: "vault-next", required: true, minlength: 8, autocomplete: "new-password" });
    const again = el("input", { type: "password", id: "vault-next-again", required: true, minlength: 8, autocomplete: "new-password" });
    showPanel("Change passphrase", el("form", { class: "dialog-form", onsubmit: (e) => {
      e.preventDefault();
      if (next.value !== again.value) return notify("The two new passphrases differ.");
      guard((async () => {
        const fields = await vc.rewrap(state.record, current.value, next.value);
        state.record = await api("PUT", `/api/v1/vaults/${state.id}/key`, { json: fields });
        closePanel();
        notify("Passphrase changed. The files were not touched; only the vault key was wrapped again.", "ok");
      })());
    } }, el("label", { for: "vault-current" }, "Current passphrase"), current,
      el("label", { for: "vault-next" }, "New passphrase"), next,
      el("label", { for: "vault-next-again" }, "New passphrase again"), again,
      el("div", { class: "dialog-actions" }, el("button", { type: "submit" }, "Change passphrase"))));
  }

  // A folder upload's "a/b/name": the folders are made (or found: a 409 names the existing one).
  async function folderFor(parts) {
    let parent = folderId();
    for (const name of parts) {
      try {
        parent = (await api("POST", `/api/v1/nodes/${parent}/children/`, { json: { type: "folder", name } })).id;
      } catch (err) {
        if (err.code !== "name_conflict" || !err.details.existing_id) throw err;
        parent = err.details.existing_id;
      }
    }
    return parent;
  }

  async function upload(files) {
    for (const file of files) {
      const path = (file.webkitRelativePath || file.name).split("/");
      const name = path.pop();
      try {
        const parent = await folderFor(path);
        const blob = await vc.encryptBlob(state.keys, file, (done, total) => {
          progress.textContent = `Encrypting ${name}: ${Math.floor((100 * done) / Math.max(total, 1))}%`;
        });
        progress.textContent = `Uploading ${name}…`;
        if (blob.size >= tusThreshold) {
          // The ciphertext is a fixed Blob, so a dropped chunk resumes from the server's offset.
          await tusUpload(blob, { metadata: { filename: name, parent }, chunkSize: tusChunk,
            onProgress: (sent, total) => { progress.textContent = `Uploading ${name}: ${Math.floor((100 * sent) / total)}%`; } });
        } else {
          await api("PUT", `/api/v1/nodes/${parent}/children/${encodeURIComponent(name)}`, { body: blob, headers: { "Content-Type": "application/octet-stream" } });
        }
        notify(`${name} encrypted and uploaded.`, "ok");
      } catch (err) {
        notify(`${name}: ${message(err)}`);
      }
    }
    progress.textContent = "";
    await refresh();
  }

  root.addEventListener("click", (event) => {
    const action = event.target.closest("[data-action]")?.dataset.action;
    if (action === "lock") {
      state.keys = null;
      state.record = null;
      closePanel();
      listing.replaceChildren();
      openBox.hidden = true;
      lockedBox.hidden = false;
    } else if (action === "passphrase") {
      passphraseForm();
    } else if (action === "new-folder") {
      const input = el("input", { id: "vault-folder-name", required: true, maxlength: 255 });
      showPanel("New folder", el("form", { class: "dialog-form", onsubmit: (e) => {
        e.preventDefault();
        guard(api("POST", `/api/v1/nodes/${folderId()}/children/`, { json: { type: "folder", name: input.value } }).then(() => { closePanel(); refresh(); }));
      } }, el("label", { for: "vault-folder-name" }, "Name"), input, el("div", { class: "dialog-actions" }, el("button", { type: "submit" }, "Create"))));
    }
  });
  for (const id of ["vault-pick-files", "vault-pick-folder"]) {
    const input = document.getElementById(id);
    if (input) input.addEventListener("change", () => { upload([...input.files]); input.value = ""; });
  }
  const zone = document.getElementById("vault-dropzone");
  if (canEdit) {
    zone.addEventListener("dragover", (e) => e.preventDefault());
    zone.addEventListener("drop", (e) => { e.preventDefault(); upload([...e.dataTransfer.files]); });
  }
}

const createForm = document.getElementById("vault-create");
if (createForm) setupCreate(createForm);
const vaultRoot = document.getElementById("vault");
if (vaultRoot) setupVault(vaultRoot);
