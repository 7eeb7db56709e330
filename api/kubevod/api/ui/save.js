// The "Save for offline" button and menu: pick a quality, watch the download, remove it.
import { formatBytes, h, icon } from "./common.js";
import { bindMenu, fillMenu } from "./menu.js";
import { offlineChoices, offlineRecord, removeOffline, saveForOffline } from "./offline.js";
import { $, formatBitrate, state, toast, videoId } from "./page.js";

let saving = null; // {controller, pct}
export async function setupOffline() {
  const button = $("btn-save");
  if (!("caches" in window) || !("serviceWorker" in navigator)) return;
  button.hidden = false;
  let record = await offlineRecord(videoId);
  const paint = () => {
    button.classList.toggle("active", Boolean(record));
    button.replaceChildren(
      icon(record ? "check" : "download"),
      ...(saving ? [h("span", { class: "save-pct" }, `${saving.pct}%`)] : []),
    );
    button.setAttribute(
      "aria-label",
      saving
        ? `Saving for offline, ${saving.pct}%`
        : record
          ? `Saved for offline (${record.rendition})`
          : "Save for offline",
    );
  };
  paint();
  bindMenu(button, $("menu-save"), (menu) => {
    if (saving) {
      fillMenu(menu, `Saving… ${saving.pct}%`, [
        { label: "Cancel", radio: false, onSelect: () => saving.controller.abort() },
      ]);
    } else if (record) {
      fillMenu(menu, `Saved on this device · ${record.rendition} · ${formatBytes(record.bytes)}`, [
        {
          label: "Remove from this device",
          radio: false,
          onSelect: async () => {
            await removeOffline(videoId);
            record = null;
            paint();
            toast("Removed from this device");
          },
        },
      ]);
    } else if (state.video.state !== "ready") {
      fillMenu(menu, "Save for offline", [
        { label: "Available when transcoding finishes", radio: false, disabled: true },
      ]);
    } else {
      fillMenu(
        menu,
        "Save for offline",
        [{ label: "Loading qualities…", radio: false, disabled: true }],
        () => {},
      );
      offlineChoices(state.video)
        .then((choice) => {
          if (menu.hidden) return;
          fillMenu(
            menu,
            "Save for offline at",
            choice.variants.map((variant) => ({
              label: variant.height ? `${variant.height}p` : formatBitrate(variant.bandwidth),
              detail: state.video.duration
                ? `≈ ${formatBytes((variant.bandwidth * state.video.duration) / 8)}`
                : formatBitrate(variant.bandwidth),
              radio: false,
              data: { height: String(variant.height || 0) },
              onSelect: () => runSave(choice, variant),
            })),
          );
          menu.querySelector("[role^=menuitem]")?.focus();
        })
        .catch((err) =>
          fillMenu(menu, "Save for offline", [{ label: err.message, radio: false, disabled: true }]),
        );
    }
  });
  async function runSave(choice, variant) {
    saving = { controller: new AbortController(), pct: 0 };
    paint();
    try {
      record = await saveForOffline(state.video, choice, variant, {
        signal: saving.controller.signal,
        onProgress: (done, total) => {
          saving.pct = Math.min(99, Math.floor((100 * done) / total));
          paint();
        },
      });
      state.offline = record;
      toast(`Saved for offline · ${record.rendition} · ${formatBytes(record.bytes)}`);
    } catch (err) {
      toast(err.name === "AbortError" ? "Download cancelled" : `Could not save: ${err.message}`);
    } finally {
      saving = null;
      paint();
    }
  }
}
