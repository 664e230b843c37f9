// Uploads of the file browser: files and whole folder trees (drag-and-drop or pickers), with a
// progress bar per file and one for the total. Small files go as multipart with their relative
// path; big ones through tus so they resume after an interruption.
import { api, el, errorFrom, csrfToken, fmtBytes, isFolder, listAll } from "./common.js";
import { tusUpload, xhrSend } from "./tus.js";

// Must run inside the drop handler: DataTransfer items are only readable during the event.
export function entriesOf(dataTransfer) {
  const items = [...(dataTransfer.items || [])].filter((i) => i.kind === "file");
  const entries = items.map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
  if (entries.length && entries.every(Boolean)) return { entries };
  return { files: [...(dataTransfer.files || [])] };
}

function readEntries(reader) {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

async function walk(entry, prefix, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ file, path: prefix + entry.name });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    let count = 0;
    // readEntries returns at most ~100 entries per call: read until it returns none.
    for (let batch = await readEntries(reader); batch.length; batch = await readEntries(reader)) {
      count += batch.length;
      for (const child of batch) await walk(child, prefix + entry.name + "/", out);
    }
    if (!count) out.push({ folder: true, path: prefix + entry.name });
  }
}

// [{file, path}] (path relative to the target folder, "/"-separated, the file's name last) and
// [{folder: true, path}] for empty folders.
export async function collect(source) {
  const out = [];
  if (source.entries) {
    for (const entry of source.entries) await walk(entry, "", out);
  } else {
    for (const file of source.files) out.push({ file, path: file.webkitRelativePath || file.name });
  }
  return out;
}

export class UploadQueue {
  constructor({ panel, folderId, tusThreshold, tusChunk, parallel = 3, onDone }) {
    this.panel = panel;
    this.list = panel.querySelector("#upload-list");
    this.totalBar = panel.querySelector("#upload-total");
    this.totalText = panel.querySelector("#upload-total-text");
    this.folderId = folderId;
    this.tusThreshold = tusThreshold;
    this.tusChunk = tusChunk;
    this.parallel = Math.max(1, parallel);
    this.onDone = onDone;
    this.jobs = [];
    this.running = 0;
    this.folders = new Map(); // "a/b" -> Promise<folder id>
  }

  // target: the folder to upload into (the page's folder unless dropped onto a sub-folder).
  add(items, target = this.folderId) {
    this.panel.hidden = false;
    for (const item of items) {
      const job = { ...item, target, loaded: 0, size: item.folder ? 0 : item.file.size, state: "queued" };
      job.bar = el("progress", { max: "100", value: "0", "aria-label": `Progress of ${item.path}` });
      job.pct = el("span", { class: "pct" }, "0%");
      job.status = el("span", { class: "status muted" }, "waiting");
      job.abort = new AbortController();
      job.cancel = el("button", { type: "button", class: "small secondary cancel", "aria-label": `Cancel ${item.path}`, onclick: () => this.cancel(job) }, "Cancel");
      job.row = el("li", { class: "upload-item" + (item.folder ? " folder" : ""), dataset: { path: item.path } },
        el("span", { class: "upload-name", title: item.path }, item.path), el("span", { class: "muted size" }, item.folder ? "folder" : fmtBytes(item.file.size)),
        job.bar, job.pct, job.status, job.cancel);
      this.list.append(job.row);
      this.jobs.push(job);
    }
    this.updateTotal();
    this.pump();
  }

  updateTotal() {
    // A failed file adds nothing: 100% means every byte is stored, never "sent but refused".
    const size = this.jobs.reduce((s, j) => s + j.size, 0);
    const loaded = this.jobs.reduce((s, j) => s + (j.state === "done" ? j.size : j.state === "failed" ? 0 : Math.min(j.loaded, j.size)), 0);
    const allDone = this.jobs.every((j) => j.state === "done");
    let pct = size ? Math.floor((loaded / size) * 100) : allDone ? 100 : 0;
    if (!allDone) pct = Math.min(pct, 99);
    this.totalBar.value = pct;
    const failed = this.jobs.filter((j) => j.state === "failed").length;
    const left = this.jobs.filter((j) => j.state === "queued" || j.state === "sending").length;
    this.totalText.textContent = failed && !left ? `${pct}% (${failed} failed)` : `${pct}%`;
  }

  setJob(job, loaded, state, text) {
    job.loaded = loaded;
    if (state) job.state = state;
    const pct = job.size ? Math.floor((Math.min(loaded, job.size) / job.size) * 100) : job.state === "done" ? 100 : 0;
    const shown = job.state === "done" ? 100 : job.state === "failed" ? 0 : Math.min(pct, 99);
    job.bar.value = shown;
    job.pct.textContent = `${shown}%`;
    if (text !== undefined) job.status.textContent = text;
    this.updateTotal();
  }

  // Stops a file: a waiting one never starts; a running one is aborted (and a tus upload is
  // terminated on the server, so its partial bytes and quota are released at once).
  cancel(job) {
    if (job.state === "queued") {
      this.setJob(job, 0, "failed", "cancelled");
      job.row.classList.add("failed");
      job.cancel.remove();
      if (this.jobs.every((j) => j.state === "done" || j.state === "failed")) this.onDone && this.onDone(this.jobs);
    } else if (job.state === "sending") {
      job.abort.abort();
    }
  }

  pump() {
    while (this.running < this.parallel) {
      const job = this.jobs.find((j) => j.state === "queued");
      if (!job) break;
      this.running++;
      job.state = "sending";
      this.run(job)
        .then(() => this.setJob(job, job.size, "done", "done"))
        .catch((err) => {
          this.setJob(job, job.loaded, "failed", err.message || "failed");
          job.row.classList.add("failed");
          job.status.setAttribute("role", "alert");
        })
        .finally(() => {
          job.cancel.remove();
          this.running--;
          if (this.jobs.every((j) => j.state === "done" || j.state === "failed")) this.onDone && this.onDone(this.jobs);
          this.pump();
        });
    }
  }

  async run(job) {
    this.setJob(job, 0, null, job.folder ? "creating" : "uploading");
    const parts = job.path.split("/");
    if (job.folder) {
      await this.ensureFolder(job.target, parts); // an empty folder of a dropped tree
      return;
    }
    // The conditions resolveConflicts set (single files only): see conflicts.js.
    const conditions = {};
    if (job.ifMatch) conditions["If-Match"] = job.ifMatch;
    if (job.ifNoneMatch) conditions["If-None-Match"] = job.ifNoneMatch;
    if (job.size >= this.tusThreshold) {
      // The server creates the folders of relative_path (a/b/name), as for multipart uploads.
      const name = parts[parts.length - 1];
      const metadata = { filename: name, parent: job.target, filetype: job.file.type || "application/octet-stream" };
      if (parts.length > 1) metadata.relative_path = job.path;
      job.status.textContent = "uploading (resumable)";
      await tusUpload(job.file, {
        metadata,
        createHeaders: conditions,
        chunkSize: this.tusChunk,
        signal: job.abort.signal,
        storageKey: `tus:${job.target}:${job.path}:${job.size}:${job.file.lastModified}`,
        onProgress: (sent) => this.setJob(job, sent),
      });
      return;
    }
    if (parts.length === 1 && Object.keys(conditions).length) {
      // A conditional write: PUT by name takes If-Match / If-None-Match (a multipart POST does not).
      const name = encodeURIComponent(parts[0]);
      const res = await xhrSend("PUT", `/api/v1/nodes/${job.target}/children/${name}`, {
        body: job.file,
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json", "Content-Type": job.file.type || "application/octet-stream", ...conditions },
        signal: job.abort.signal,
        onProgress: (loaded) => this.setJob(job, Math.min(loaded, job.size)),
      });
      if (res.status < 200 || res.status >= 300) throw errorFrom(res.status, res.data);
      return;
    }
    const form = new FormData();
    form.append("file", job.file, parts[parts.length - 1]);
    if (parts.length > 1) form.append("relative_path", job.path);
    const res = await xhrSend("POST", `/api/v1/nodes/${job.target}/children/`, {
      body: form,
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      signal: job.abort.signal,
      onProgress: (loaded, total) => this.setJob(job, Math.floor((loaded / (total || 1)) * job.size)),
    });
    if (res.status < 200 || res.status >= 300) throw errorFrom(res.status, res.data);
  }

  // The id of folder `names` under the target folder, created where missing; one request chain per
  // path, shared by every file in it.
  ensureFolder(target, names) {
    const key = target + ":" + names.join("/");
    if (!this.folders.has(key)) {
      const parentPromise = names.length > 1 ? this.ensureFolder(target, names.slice(0, -1)) : Promise.resolve(target);
      this.folders.set(key, parentPromise.then((parent) => folderChild(parent, names[names.length - 1])));
    }
    return this.folders.get(key);
  }
}

async function folderChild(parent, name) {
  try {
    const created = await api("POST", `/api/v1/nodes/${parent}/children/`, { json: { type: "folder", name } });
    return created.id;
  } catch (err) {
    if (err.status !== 409) throw err;
    const children = await listAll(`/api/v1/nodes/${parent}/children/`);
    const key = name.normalize("NFC").toLowerCase();
    const found = children.find((c) => isFolder(c) && c.name.normalize("NFC").toLowerCase() === key);
    if (!found) throw err;
    return found.id;
  }
}
