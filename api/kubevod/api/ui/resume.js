// Resume where the viewer left off: the position is kept in localStorage per video.
import { duration, store, video, videoId } from "./page.js";

/** Resume only past the first seconds and before the very end (then start over). */
const RESUME_MIN_S = 3;
function resumeEndMargin(duration) {
  return Math.max(3, 0.03 * duration);
}

export function resumePosition(v) {
  const saved = store.get(`resume:${videoId}`);
  if (!saved || !(saved.t >= RESUME_MIN_S)) return 0;
  const duration = v.duration || saved.d || 0;
  return duration && saved.t > duration - resumeEndMargin(duration) ? 0 : saved.t;
}

let lastResumeSave = 0;
export function maybeSaveResume() {
  if (performance.now() - lastResumeSave > 5000) saveResume();
}

export function saveResume() {
  lastResumeSave = performance.now();
  const d = duration();
  const t = video.currentTime;
  if (t >= RESUME_MIN_S && (!d || t < d - resumeEndMargin(d)))
    store.set(`resume:${videoId}`, { t: Math.round(t * 10) / 10, d, at: Date.now() });
  else if (d && t >= d - resumeEndMargin(d)) store.remove(`resume:${videoId}`);
}
addEventListener("pagehide", saveResume);
