// Stars: a person's own bookmarks on files and folders. One toggle button, the same in the list,
// the grid, the details panel and the Starred view (PUT / DELETE /api/v1/nodes/{id}/star/).
import { api, el, notify } from "./common.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const STAR_PATH = "M12 2.8l2.8 5.9 6.4.8-4.7 4.4 1.2 6.4L12 17.2l-5.7 3.1 1.2-6.4-4.7-4.4 6.4-.8z";

export function starIcon(size = 18) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", size);
  svg.setAttribute("height", size);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "star-icon");
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", STAR_PATH);
  svg.append(path);
  return svg;
}

// Stars or unstars `item` on the server and says so; `undo` (optional) goes with the notice.
export async function starSet(item, starred, { undo } = {}) {
  await api(starred ? "PUT" : "DELETE", `/api/v1/nodes/${item.id}/star/`);
  notify(starred ? `Starred “${item.name}”.` : `Removed the star from “${item.name}”.`, "success", { undo });
}

// A toggle button (aria-pressed): filled when starred, an outline otherwise. `onToggle()` does the
// work; `text` adds a visible word beside the icon (the details panel).
export function starButton(item, starred, onToggle, { text = false } = {}) {
  return el("button", {
    type: "button",
    class: "star-toggle" + (text ? " small secondary" : ""),
    "aria-pressed": String(starred),
    "aria-label": `Star ${item.name}`,
    title: starred ? "Starred: click to remove the star" : "Add a star",
    onclick: (event) => {
      event.stopPropagation();
      onToggle();
    },
  }, starIcon(text ? 16 : 18), text ? (starred ? " Starred" : " Star") : null);
}
