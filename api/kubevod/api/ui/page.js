// Shared state and small helpers of the player page (watch.html): the elements, the live
// state object (window.kubevodPlayer), localStorage access, toasts and seeking.
import { h, icon } from "./common.js";
import { anyMenuOpen } from "./menu.js";

export const $ = (id) => document.getElementById(id);
export const videoId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
export const video = $("video");
export const player = $("player");
export const store = {
  get(key, fallback = null) {
    try {
      const v = localStorage.getItem(`kubevod:${key}`);
      return v === null ? fallback : JSON.parse(v);
    } catch {
      return fallback;
    }
  },
  set(key, value) {
    try {
      localStorage.setItem(`kubevod:${key}`, JSON.stringify(value));
    } catch {
      /* private mode or full: not worth failing playback for */
    }
  },
  remove(key) {
    try {
      localStorage.removeItem(`kubevod:${key}`);
    } catch {
      /* ignore */
    }
  },
};

/** Live state, readable by tests and handy in the console. */
export const state = (window.kubevodPlayer = {
  videoId,
  video: null, // the catalog entry
  mode: null, // "hls.js" | "native"
  hls: null,
  levels: [], // [{index, height, width, bitrate, name}]
  requestedLevels: [], // level index of every video fragment requested, in order
  loadedLevels: [], // level index of every video fragment loaded, in order
  currentLevel: -1,
  autoLevel: true,
  startupMs: null,
  trickplay: null,
  qoe: null,
  errors: [],
});

export function setIcon(button, name) {
  button.replaceChildren(icon(name));
}

let toastTimer = 0;
export function toast(content, ms = 3500) {
  const box = $("toast");
  box.replaceChildren(...[content].flat());
  box.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => box.classList.remove("show"), ms);
}

export function hideToast() {
  clearTimeout(toastTimer);
  $("toast").classList.remove("show");
}

export function showMessage(text, { retry = false } = {}) {
  const box = $("player-message");
  box.replaceChildren(
    h("p", {}, text),
    ...(retry
      ? [h("button", { class: "button", type: "button", onclick: () => location.reload() }, "Try again")]
      : []),
  );
  box.hidden = false;
  player.dataset.state = "error";
}

export function levelLabel(level) {
  return level.height ? `${level.height}p` : `${Math.round(level.bitrate / 1000)} kb/s`;
}

export function formatBitrate(bps) {
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(1)} Mb/s` : `${Math.round(bps / 1e3)} kb/s`;
}

export function togglePlay() {
  if (video.paused || video.ended) video.play().catch(() => {});
  else video.pause();
}

/** Seek, within what exists: while transcoding, only up to the last segment made. */
export function seekTo(t) {
  let end = playableEnd();
  // Playing right behind the end of what exists: a seek forward stays where it is.
  if (t > video.currentTime) end = Math.max(end, video.currentTime);
  video.currentTime = Math.max(0, Math.min(end, t));
  showControls();
}

/** How far before the end of what exists a seek lands at most, while transcoding (s): at
 * the very end there is no frame to show until the next segment arrives. */
const EDGE_GUARD_S = 0.5;

/**
 * The latest time a seek may go to: the end of the video, or while transcoding (a growing
 * EVENT playlist) just before the end of the last segment made. An on-demand video's
 * playlist lists its whole timeline: a seek anywhere is answered (the server encodes it).
 */
export function playableEnd() {
  if (growing()) return Math.max(0, seekableEnd() - EDGE_GUARD_S);
  return (Number.isFinite(video.duration) ? video.duration : seekableEnd()) || 0;
}

/** True while the video is still being transcoded (its playlists grow). */
export function growing() {
  return Boolean(state.video) && state.video.state !== "ready";
}

export function seekableEnd() {
  const s = video.seekable;
  return s.length ? s.end(s.length - 1) : 0;
}

/**
 * The length the seek bar spans: the media's duration, or, while transcoding, the
 * source's full length (the part made so far is shown as "ready" on the bar).
 */
export function duration() {
  const media = Number.isFinite(video.duration) && video.duration > 0 ? video.duration : seekableEnd();
  const full = state.video?.duration || 0;
  return growing() ? Math.max(media, full) : media || full;
}

let hideTimer = 0;
export function showControls() {
  player.dataset.controls = "visible";
  clearTimeout(hideTimer);
  hideTimer = setTimeout(() => {
    if (
      !video.paused &&
      !anyMenuOpen() &&
      !player.contains(document.activeElement?.closest?.(".controls") ?? null)
    )
      player.dataset.controls = "hidden";
  }, 2800);
}
