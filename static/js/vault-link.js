// A public link to a vault file: the content key is in the URL fragment (#k=…), which the browser
// never sends; the ciphertext comes from the link's download URL and is decrypted here, whole and
// verified before anything is shown or saved.
import * as vc from "./vault-crypto.js";

const box = document.getElementById("vault-link");
const errorBox = document.getElementById("vault-link-error");
const status = document.getElementById("vault-link-status");
const view = document.getElementById("vault-link-view");
const previewButton = document.getElementById("vault-link-preview");
const name = box.dataset.name;
const TYPES = { png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif", webp: "image/webp", pdf: "application/pdf", txt: "text", md: "text", csv: "text", json: "text", log: "text" };
const type = TYPES[(name.split(".").pop() || "").toLowerCase()] || null;
let plain = null;

function fail(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
  status.textContent = "";
}

function linkKey() {
  const match = location.hash.match(/(?:^#|&)k=([A-Za-z0-9_-]{43})(?:&|$)/);
  return match ? vc.unb64url(match[1]) : null;
}

async function plaintext() {
  if (plain) return plain;
  const key = linkKey();
  if (!key) throw new vc.VaultError("This link is missing its key (the part after “#”). Ask for the whole link.");
  status.textContent = "Downloading and decrypting…";
  const response = await fetch(box.dataset.download, { credentials: "same-origin" });
  if (!response.ok) throw new vc.VaultError(`The download failed (${response.status}).`);
  plain = await vc.decryptAll(await response.arrayBuffer(), { rawKey: key });
  status.textContent = "Decrypted and verified.";
  return plain;
}

async function run(action) {
  errorBox.hidden = true;
  try {
    await action(await plaintext());
  } catch (err) {
    fail(err instanceof vc.Tampered ? `The file failed its integrity check and was not opened: ${err.message}` : err.message || String(err));
  }
}

document.getElementById("vault-link-download").addEventListener("click", () => run((bytes) => {
  const url = URL.createObjectURL(new Blob([bytes]));
  const a = Object.assign(document.createElement("a"), { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}));

if (type) {
  previewButton.hidden = false;
  previewButton.addEventListener("click", () => run((bytes) => {
    if (type === "text") {
      const pre = Object.assign(document.createElement("pre"), { className: "preview-text", textContent: new TextDecoder().decode(bytes.subarray(0, 512 * 1024)) });
      view.replaceChildren(pre);
      return;
    }
    const url = URL.createObjectURL(new Blob([bytes], { type }));
    const node = type === "application/pdf"
      ? Object.assign(document.createElement("iframe"), { className: "preview-pdf", src: url, title: name })
      : Object.assign(document.createElement("img"), { className: "preview-image", src: url, alt: name });
    view.replaceChildren(node);
  }));
}
if (!linkKey()) fail("This link is missing its key (the part after “#”). Ask for the whole link.");
