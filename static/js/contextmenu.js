// The file browser's one context menu: right-click on an item and its ⋮ button open the same
// list of actions. A popover: the browser closes it on Escape or a click elsewhere, and it sits in
// the top layer, above the listing and the bottom action bar.
import { el } from "./common.js";

let menu = null;

export function closeMenu() {
  if (menu && menu.matches(":popover-open")) menu.hidePopover();
}

// entries: [{label, run, danger?}]; (x, y) is where the menu opens, kept inside the window.
export function openMenu({ x, y, entries, label, returnFocus }) {
  closeMenu();
  const buttons = entries.map((entry) => el("button", {
    type: "button", role: "menuitem", class: entry.danger ? "danger" : null,
    onclick: () => {
      closeMenu();
      entry.run();
    },
  }, entry.label));
  menu = el("div", { class: "ctx-menu", role: "menu", "aria-label": label, popover: "auto" }, buttons);
  const current = menu;
  current.addEventListener("toggle", (event) => {
    if (event.newState !== "closed") return;
    current.remove();
    if (returnFocus && !document.querySelector("dialog[open]")) returnFocus.focus();
  });
  current.addEventListener("keydown", (event) => {
    const i = buttons.indexOf(document.activeElement);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      buttons[(i + step + buttons.length) % buttons.length].focus();
    }
  });
  document.body.append(current);
  current.showPopover();
  const box = current.getBoundingClientRect();
  current.style.left = `${Math.max(4, Math.min(x, window.innerWidth - box.width - 4))}px`;
  current.style.top = `${Math.max(4, Math.min(y, window.innerHeight - box.height - 4))}px`;
  buttons[0]?.focus();
}
