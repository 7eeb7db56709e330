// Trickplay thumbnails over the seek bar: the tile for the time under the pointer (or the
// thumb while scrubbing), from the sprite sheets indexed by the video's thumbnails VTT,
// and what the time there is: not transcoded yet, or encoded when it is watched.
import { formatTime, playbackUrls } from "./common.js";
import { $, duration, growing, playableEnd, state, video } from "./page.js";
import { encodedAt } from "./parts.js";
import { Trickplay } from "./trickplay.js";

export function attachTrickplay(v) {
  const seek = $("seek");
  const preview = $("seek-preview");
  const thumb = $("seek-thumb");
  const vttUrl = playbackUrls(v).trickplay;
  const tp = vttUrl ? new Trickplay(vttUrl) : null;
  state.trickplay = tp;
  // Fetch the index once the first frame is up, so it never competes with startup.
  if (tp)
    video.addEventListener("playing", () => tp.load().then((ok) => ok && tp.preloadSprites()), {
      once: true,
    });

  const show = (clientX) => {
    const rect = seek.getBoundingClientRect();
    const frac = Math.min(1, Math.max(0, (clientX - rect.left) / rect.width));
    const t = frac * duration();
    let note = "";
    if (growing() && t > playableEnd()) note = "not transcoded yet";
    else if (!encodedAt(state.video, t)) note = "encoded when watched";
    $("seek-time").textContent = note ? `${formatTime(t)} · ${note}` : formatTime(t);
    const cue = tp?.at(t);
    if (cue) {
      const scale =
        cue.w > 0
          ? Math.min(1, 200 / cue.w) * (parseFloat(getComputedStyle(document.documentElement).fontSize) / 16)
          : 1;
      thumb.hidden = false;
      thumb.style.width = `${cue.w * scale}px`;
      thumb.style.height = `${cue.h * scale}px`;
      thumb.style.backgroundImage = `url("${cue.url}")`;
      if (cue.w) {
        thumb.style.backgroundPosition = `-${cue.x * scale}px -${cue.y * scale}px`;
        thumb.style.backgroundSize =
          scale === 1 ? "auto" : `${v.trickplay ? v.trickplay.columns * cue.w * scale : 0}px auto`;
      }
      thumb.dataset.src = cue.url;
    } else {
      thumb.hidden = true;
    }
    preview.hidden = false;
    const half = preview.offsetWidth / 2;
    preview.style.left = `${Math.min(rect.width - half, Math.max(half, clientX - rect.left))}px`;
  };
  seek.addEventListener("pointerenter", () => tp?.load().then((ok) => ok && tp.preloadSprites()));
  seek.addEventListener("pointermove", (e) => show(e.clientX));
  seek.addEventListener("pointerleave", () => (preview.hidden = true));
  $("seek-range").addEventListener("input", () => {
    const rect = seek.getBoundingClientRect();
    show(rect.left + (rect.width * Number($("seek-range").value)) / (duration() || 1));
  });
  $("seek-range").addEventListener("change", () => (preview.hidden = true));
}
