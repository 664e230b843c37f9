// A small tus 1.0 client (core + creation + termination): big files go up in chunks, and an upload
// interrupted by a network error or a closed tab resumes from the server's offset.
import { csrfToken, errorFrom } from "./common.js";

const TUS = "1.0.0";

function b64(text) {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

// XMLHttpRequest rather than fetch: only XHR reports upload progress.
export function xhrSend(method, url, { body = null, headers = {}, onProgress, signal } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    if (onProgress) xhr.upload.onprogress = (e) => onProgress(e.loaded, e.total);
    xhr.onload = () => {
      let data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch (e) {
        data = null;
      }
      resolve({ status: xhr.status, data, header: (name) => xhr.getResponseHeader(name) });
    };
    xhr.onerror = () => reject(Object.assign(new Error("The connection was interrupted."), { network: true }));
    xhr.onabort = () => reject(Object.assign(new Error("Upload cancelled."), { aborted: true }));
    if (signal) signal.addEventListener("abort", () => xhr.abort());
    xhr.send(body);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function serverOffset(url) {
  const res = await xhrSend("HEAD", url, { headers: { "Tus-Resumable": TUS } });
  if (res.status === 200 || res.status === 204) return Number(res.header("Upload-Offset") || 0);
  return null;
}

/**
 * Upload `file` through the tus endpoint. metadata: {filename, parent, ...}. storageKey remembers
 * the upload URL in localStorage so a reload can resume it. onProgress(sentBytes, totalBytes).
 */
export async function tusUpload(file, { endpoint = "/api/v1/uploads/", metadata, createHeaders = {}, chunkSize = 5 * 1024 * 1024, storageKey, onProgress, signal, retries = 5 }) {
  const common = { "Tus-Resumable": TUS, "X-CSRFToken": csrfToken() };
  let url = storageKey ? localStorage.getItem(storageKey) : null;
  let offset = 0;
  if (url) {
    const known = await serverOffset(url).catch(() => null);
    if (known === null) url = null;
    else offset = known;
  }
  if (!url) {
    const meta = Object.entries(metadata).map(([k, v]) => `${k} ${b64(String(v))}`).join(",");
    const res = await xhrSend("POST", endpoint, {
      headers: { ...common, ...createHeaders, "Upload-Length": String(file.size), "Upload-Metadata": meta },
      signal,
    });
    if (res.status !== 201) throw errorFrom(res.status, res.data);
    url = new URL(res.header("Location"), window.location.href).toString();
    if (storageKey) localStorage.setItem(storageKey, url);
  }
  onProgress && onProgress(offset, file.size);
  let failures = 0;
  let last = null;
  while (offset < file.size || (file.size === 0 && !last)) {
    const end = Math.min(offset + chunkSize, file.size);
    try {
      last = await xhrSend("PATCH", url, {
        body: file.slice(offset, end),
        headers: { ...common, "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" },
        onProgress: (loaded) => onProgress && onProgress(offset + loaded, file.size),
        signal,
      });
    } catch (err) {
      if (err.aborted) {
        await tusCancel(url).catch(() => {}); // the server frees the partial upload now, not at expiry
        if (storageKey) localStorage.removeItem(storageKey);
        throw err;
      }
      if (++failures > retries) throw err;
      await sleep(Math.min(1000 * 2 ** failures, 15000));
      const known = await serverOffset(url).catch(() => null);
      if (known !== null) offset = known;
      continue;
    }
    if (last.status === 204 || last.status === 200) {
      offset = Number(last.header("Upload-Offset") || end);
      failures = 0;
      onProgress && onProgress(offset, file.size);
      if (file.size === 0) break;
    } else if (last.status === 409) {
      // Offsets disagree (e.g. a retried chunk had arrived after all): ask the server where it is.
      const known = await serverOffset(url);
      if (known === null) throw errorFrom(last.status, last.data);
      offset = known;
    } else {
      if (storageKey && (last.status === 404 || last.status === 410)) localStorage.removeItem(storageKey);
      throw errorFrom(last.status, last.data);
    }
  }
  if (storageKey) localStorage.removeItem(storageKey);
  return last;
}

export async function tusCancel(url) {
  return xhrSend("DELETE", url, { headers: { "Tus-Resumable": TUS, "X-CSRFToken": csrfToken() } });
}
