// Captions: the WebVTT <track>s of a video, a menu to pick one (or none), the "c" shortcut,
// the viewer's choice remembered (a language, or "off"), and cues kept clear of the controls.
import { bindMenu, fillMenu } from "./menu.js";
import { $, player, store, toast, video } from "./page.js";

function ourTracks() {
  return [...video.querySelectorAll("track[data-kubevod]")].map((el) => el.track);
}

export function setupCaptions() {
  const elements = [...video.querySelectorAll("track[data-kubevod]")];
  const tracks = elements.map((el) => el.track);
  const button = $("btn-cc");
  button.hidden = tracks.length === 0;
  if (!tracks.length) return;
  // Hide any tracks the browser found in the stream itself, so the menu is the single source.
  for (const t of video.textTracks) if (!tracks.includes(t)) t.mode = "disabled";
  const wanted = store.get("captions");
  const byDefault = elements.find((el) => el.dataset.default === "1")?.track;
  const pick = wanted === "off" ? null : tracks.find((t) => t.language === wanted) || byDefault;
  selectCaptions(pick || null, { persist: false });
  for (const el of elements) el.addEventListener("load", liftCues);
  new MutationObserver(liftCues).observe(player, { attributes: true, attributeFilter: ["data-controls"] });
  bindMenu(button, $("menu-cc"), (menu) => {
    const entries = [
      {
        label: "Off",
        checked: !tracks.some((t) => t.mode === "showing"),
        data: { lang: "off" },
        onSelect: () => selectCaptions(null),
      },
    ];
    for (const t of tracks)
      entries.push({
        label: t.label || t.language,
        detail: t.language,
        checked: t.mode === "showing",
        data: { lang: t.language },
        onSelect: () => selectCaptions(t),
      });
    fillMenu(menu, "Captions", entries);
  });
}

let lastCaptions = null;
function selectCaptions(track, { persist = true } = {}) {
  for (const t of ourTracks()) t.mode = t === track ? "showing" : "disabled";
  if (track) lastCaptions = track;
  $("btn-cc").classList.toggle("active", Boolean(track));
  $("btn-cc").setAttribute("aria-pressed", String(Boolean(track)));
  if (persist) store.set("captions", track ? track.language : "off");
  liftCues();
}

export function toggleCaptions() {
  const tracks = ourTracks();
  if (!tracks.length) return;
  const on = tracks.some((t) => t.mode === "showing");
  selectCaptions(on ? null : lastCaptions || tracks[0]);
  toast(on ? "Captions off" : `Captions: ${(lastCaptions || tracks[0]).label}`, 1500);
}

/** While the controls show, place cues just above them; otherwise at the bottom as usual. */
function liftCues() {
  const up = player.dataset.controls !== "hidden";
  const height = video.getBoundingClientRect().height || 1;
  const controls = $("controls").getBoundingClientRect().height;
  const line = Math.max(50, 100 - (100 * controls) / height); // % from the top
  for (const t of ourTracks()) {
    if (t.mode !== "showing" || !t.cues) continue;
    for (const cue of t.cues) {
      cue.snapToLines = !up;
      cue.line = up ? line : "auto";
      cue.lineAlign = up ? "end" : "start";
    }
  }
}
