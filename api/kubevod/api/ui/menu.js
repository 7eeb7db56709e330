// Popup menus of the player (quality, captions, save for offline): a button that toggles a
// role="menu" list of role="menuitemradio"/"menuitem" buttons, with keyboard support.
import { h, icon } from "./common.js";

const openMenus = new Set();

/** Close every open menu (e.g. on Escape or a click elsewhere). */
export function closeMenus({ restoreFocus = false } = {}) {
  for (const close of [...openMenus]) close(restoreFocus);
}

export function anyMenuOpen() {
  return openMenus.size > 0;
}

/**
 * Wire `button` to toggle `menu`; `build()` is called on each open to fill the menu.
 * Returns {open, close, refresh}.
 */
export function bindMenu(button, menu, build) {
  const close = (restoreFocus) => {
    menu.hidden = true;
    button.setAttribute("aria-expanded", "false");
    openMenus.delete(close);
    if (restoreFocus) button.focus();
  };
  const items = () => [...menu.querySelectorAll("[role^=menuitem]:not([disabled])")];
  const open = () => {
    closeMenus();
    build(menu);
    menu.hidden = false;
    button.setAttribute("aria-expanded", "true");
    openMenus.add(close);
    const list = items();
    (list.find((el) => el.getAttribute("aria-checked") === "true") || list[0])?.focus();
  };
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    if (menu.hidden) open();
    else close(false);
  });
  menu.addEventListener("click", (event) => event.stopPropagation());
  menu.addEventListener("keydown", (event) => {
    const list = items();
    const i = list.indexOf(document.activeElement);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const next = event.key === "ArrowDown" ? (i + 1) % list.length : (i - 1 + list.length) % list.length;
      list[next]?.focus();
    } else if (event.key === "Home" || event.key === "End") {
      event.preventDefault();
      (event.key === "Home" ? list[0] : list[list.length - 1])?.focus();
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      close(true);
    } else if (event.key === "Tab") {
      close(false);
    }
    event.stopPropagation();
  });
  return {
    open,
    close: () => close(false),
    refresh: () => {
      if (!menu.hidden) build(menu);
    },
  };
}

/**
 * Fill a menu with items: [{label, detail, checked, disabled, onSelect, radio=true}] and an
 * optional heading. Selecting an item runs onSelect and closes the menu.
 */
export function fillMenu(menu, heading, entries, after = () => closeMenus({ restoreFocus: true })) {
  const nodes = [];
  if (heading) nodes.push(h("div", { class: "menu-heading", "aria-hidden": "true" }, heading));
  for (const entry of entries) {
    const radio = entry.radio !== false;
    nodes.push(
      h(
        "button",
        {
          type: "button",
          class: "menu-item",
          role: radio ? "menuitemradio" : "menuitem",
          "aria-checked": radio ? String(Boolean(entry.checked)) : null,
          disabled: entry.disabled || null,
          dataset: entry.data || {},
          onclick: () => {
            entry.onSelect?.();
            after();
          },
        },
        h("span", { class: "menu-check" }, radio && entry.checked ? icon("check") : null),
        h("span", { class: "menu-label" }, entry.label),
        entry.detail ? h("span", { class: "menu-detail" }, entry.detail) : null,
      ),
    );
  }
  menu.replaceChildren(...nodes);
}

document.addEventListener("click", () => closeMenus());
