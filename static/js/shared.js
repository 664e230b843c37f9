// "Shared with me": what other people shared with the caller, with who shared it and how.
import { el, fmtBytes, fmtDate, iconFor, isFolder, listAll } from "./common.js";

const box = document.getElementById("shared");

// A share may carry its node nested ({node: {...}}) or flattened; either way we need the node.
function nodeOf(share) {
  return share.node && typeof share.node === "object" ? share.node : { ...share, id: share.node_id || share.node || share.id };
}

function sharerOf(share) {
  const by = share.shared_by || share.created_by || share.owner;
  if (by && typeof by === "object") return by.email || by.name || "";
  return by || share.shared_by_email || "";
}

async function load() {
  let shares;
  try {
    shares = await listAll("/api/v1/shared-with-me/");
  } catch (err) {
    box.replaceChildren(el("p", { class: "msg error", role: "alert" }, `Could not load what was shared with you: ${err.message}`));
    box.setAttribute("aria-busy", "false");
    return;
  }
  if (!shares.length) {
    box.replaceChildren(el("p", { class: "empty" }, "Nothing has been shared with you yet."));
  } else {
    box.replaceChildren(el("table", { class: "table", "aria-label": "Shared with me" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Name"), el("th", { scope: "col" }, "Shared by"),
        el("th", { scope: "col" }, "Access"), el("th", { scope: "col" }, "Size"), el("th", { scope: "col" }, "Shared"))),
      el("tbody", {}, shares.map((share) => {
        const node = nodeOf(share);
        const name = node.name || share.name || "(unnamed)";
        const open = isFolder(node)
          ? el("a", { href: `/app/open/${node.id}/`, class: "node-name" }, name)
          : el("a", { href: `/api/v1/nodes/${node.id}/content`, class: "node-name", download: name }, name);
        return el("tr", { dataset: { id: node.id, name } },
          el("td", {}, el("span", { class: "icon", "aria-hidden": "true" }, iconFor(node)), " ", open,
            isFolder(node) ? null : [" ", el("a", { href: `/app/preview/${node.id}/`, class: "small", target: "_blank", rel: "noopener", "aria-label": `Preview ${name}` }, "preview")]),
          el("td", {}, sharerOf(share), share.workspace && share.workspace.name ? el("small", { class: "muted" }, ` · ${share.workspace.name}`) : null),
          el("td", {}, el("span", { class: "badge" }, share.permission || node.permission || "view")),
          el("td", {}, isFolder(node) ? "—" : fmtBytes(node.size)),
          el("td", {}, fmtDate(share.created_at)));
      }))));
  }
  box.setAttribute("aria-busy", "false");
}

load();
