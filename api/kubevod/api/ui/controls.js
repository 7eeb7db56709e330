// The player's controls: play/pause, seek bar, time, volume, quality menu, full screen,
// picture in picture, auto-hiding, and the keyboard shortcuts.
import { formatTime, h, icon } from "./common.js";
import { bindMenu, closeMenus, fillMenu } from "./menu.js";
import {
  $,
  duration,
  formatBitrate,
  growing,
  levelLabel,
  playableEnd,
  player,
  seekableEnd,
  seekTo,
  setIcon,
  showControls,
  state,
  store,
  toast,
  togglePlay,
  video,
  videoId,
} from "./page.js";
import { chunkAt, partsText, videoParts } from "./parts.js";
import { maybeSaveResume, saveResume } from "./resume.js";

const seekRange = $("seek-range");
let scrubbing = false;

export function updateTime() {
  const d = duration();
  const t = video.currentTime;
  $("time-current").textContent = formatTime(t);
  $("time-duration").textContent = formatTime(d);
  seekRange.max = String(d || 0);
  if (!scrubbing) seekRange.value = String(t);
  seekRange.setAttribute("aria-valuetext", `${formatTime(t)} of ${formatTime(d)}`);
  $("seek-played").style.width = d ? `${(100 * t) / d}%` : "0";
  let buffered = 0;
  for (let i = 0; i < video.buffered.length; i++)
    if (video.buffered.start(i) <= t + 0.5) buffered = Math.max(buffered, video.buffered.end(i));
  $("seek-buffered").style.width = d ? `${Math.min(100, (100 * buffered) / d)}%` : "0";
  // While transcoding: how much of the video exists yet, and the rest, out of reach.
  const ready = growing() && d ? Math.min(100, (100 * seekableEnd()) / d) : 0;
  $("seek-ready").style.width = `${ready}%`;
  const unavailable = $("seek-unavailable");
  unavailable.style.left = `${ready}%`;
  unavailable.style.width = growing() && d ? `${100 - ready}%` : "0";
  updateParts();
}

const percent = (t, d) => Math.round(Math.min(100, Math.max(0, (100 * t) / d)) * 1000) / 1000;
let partsKey = "";

/**
 * An on-demand video not encoded whole: its encoded parts as bands on the seek bar (like
 * the buffered range), and "3 of 8 parts encoded" as the seek slider's description.
 */
export function updateParts() {
  const d = duration();
  const parts = d ? videoParts(state.video) : null;
  const key = parts ? `${d}|${parts.total}|${parts.done}` : "";
  if (key === partsKey) return;
  partsKey = key;
  const seek = $("seek");
  const label = $("seek-parts-label");
  if (!parts) {
    $("seek-parts").replaceChildren();
    delete seek.dataset.partsDone;
    delete seek.dataset.partsTotal;
    label.textContent = "";
    seekRange.removeAttribute("aria-describedby");
    return;
  }
  $("seek-parts").replaceChildren(
    ...parts.encoded.map((r) =>
      h("span", {
        class: "seek-part",
        style: `left:${percent(r.start, d)}%;width:${percent(r.end - r.start, d)}%`,
        dataset: { start: r.start, end: r.end, first: r.first, last: r.last },
      }),
    ),
  );
  seek.dataset.partsDone = String(parts.done.length);
  seek.dataset.partsTotal = String(parts.total);
  label.textContent = `${partsText(parts)}; the others are encoded when you reach them.`;
  seekRange.setAttribute("aria-describedby", "seek-parts-label");
}

// The chunk the player waits for while it is being encoded (null: not waiting for one).
let preparing = null;

/** The time the waiting player needs next: where its buffer ends (a stall at the end of an
 * encoded part waits for the next part), or the position itself (a seek). */
function neededTime() {
  const t = video.currentTime;
  const b = video.buffered;
  for (let i = 0; i < b.length; i++) if (b.start(i) <= t + 0.1 && t < b.end(i)) return b.end(i) + 0.1;
  return t;
}

/**
 * While the player waits at a part of an on-demand video that is not encoded yet, say so
 * over the picture ("Preparing this part…"), until it plays or is left; the page then
 * follows the video's parts closely (state.pollNow).
 */
export function updatePreparing() {
  const waiting = ["buffering", "loading"].includes(player.dataset.state);
  const parts = waiting ? videoParts(state.video) : null;
  let chunk = null;
  if (parts) {
    const here = chunkAt(parts, neededTime()).index;
    // Once shown it stays until the wait ends, even when the part is recorded done first.
    if (here === preparing || !parts.done.includes(here)) chunk = here;
  }
  if (chunk === preparing) return;
  const started = preparing === null;
  preparing = chunk;
  const box = $("player-preparing");
  if (chunk === null) {
    delete player.dataset.preparing;
    box.replaceChildren();
    state.pollNow?.(); // the part just played is done: show it on the bar soon
    return;
  }
  player.dataset.preparing = String(chunk);
  box.replaceChildren(
    h("p", { class: "player-preparing-title" }, "Preparing this part…"),
    h(
      "p",
      { class: "player-preparing-detail" },
      `Part ${chunk + 1} of ${parts.total} is being encoded; playback goes on in a moment.`,
    ),
  );
  if (started) state.pollNow?.();
}

function updatePlayButton() {
  const paused = video.paused || video.ended;
  setIcon($("btn-play"), paused ? "play" : "pause");
  $("btn-play").setAttribute("aria-label", paused ? "Play (k)" : "Pause (k)");
  $("big-play").hidden = !paused || player.dataset.state === "error";
}

function updateVolume() {
  const muted = video.muted || video.volume === 0;
  setIcon($("btn-mute"), muted ? "mute" : "volume");
  $("btn-mute").setAttribute("aria-label", muted ? "Unmute (m)" : "Mute (m)");
  $("volume").value = String(muted ? 0 : video.volume);
  $("volume").style.setProperty("--fill", `${(muted ? 0 : video.volume) * 100}%`);
}

export function updateQualityButton() {
  const button = $("btn-quality");
  const level = state.levels[state.hls?.currentLevel ?? -1];
  const auto = !state.hls || state.hls.autoLevelEnabled;
  state.autoLevel = auto;
  button.replaceChildren(
    icon("gear"),
    ...(level && level.height >= 720 ? [h("span", { class: "hd-badge", "aria-hidden": "true" }, "HD")] : []),
  );
  button.setAttribute("aria-label", `Quality: ${auto ? "Auto" : level ? levelLabel(level) : "Auto"}`);
  button.hidden = state.mode === "native" || state.levels.length < 2;
}

function fullscreen() {
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  else if (player.requestFullscreen) player.requestFullscreen().catch(() => {});
  else if (video.webkitEnterFullscreen) video.webkitEnterFullscreen();
}

export function setupControls() {
  for (const [id, name] of [
    ["btn-back", "back10"],
    ["btn-fwd", "fwd10"],
    ["btn-fullscreen", "fullscreen"],
    ["btn-pip", "pip"],
    ["btn-cc", "cc"],
    ["btn-save", "download"],
  ])
    setIcon($(id), name);
  $("big-play").append(icon("play"));
  $("btn-play").addEventListener("click", togglePlay);
  $("big-play").addEventListener("click", togglePlay);
  $("btn-back").addEventListener("click", () => seekTo(video.currentTime - 10));
  $("btn-fwd").addEventListener("click", () => seekTo(video.currentTime + 10));
  $("btn-mute").addEventListener("click", () => (video.muted = !video.muted));
  $("volume").addEventListener("input", (e) => {
    video.volume = Number(e.target.value);
    video.muted = video.volume === 0;
  });
  $("btn-fullscreen").addEventListener("click", fullscreen);
  document.addEventListener("fullscreenchange", () => {
    setIcon($("btn-fullscreen"), document.fullscreenElement ? "exitFullscreen" : "fullscreen");
    $("btn-fullscreen").setAttribute(
      "aria-label",
      document.fullscreenElement ? "Exit full screen (f)" : "Full screen (f)",
    );
  });
  if (document.pictureInPictureEnabled) {
    $("btn-pip").hidden = false;
    $("btn-pip").addEventListener("click", () =>
      (document.pictureInPictureElement
        ? document.exitPictureInPicture()
        : video.requestPictureInPicture()
      ).catch(() => {}),
    );
  }
  seekRange.addEventListener("input", () => {
    scrubbing = true;
    // While transcoding the thumb stops at the end of what exists: no seek past it.
    if (growing()) {
      const limit = Math.max(playableEnd(), video.currentTime);
      if (Number(seekRange.value) > limit) seekRange.value = String(limit);
    }
    const t = Number(seekRange.value);
    $("seek-played").style.width = `${(100 * t) / (duration() || 1)}%`;
    $("time-current").textContent = formatTime(t);
  });
  seekRange.addEventListener("change", () => {
    scrubbing = false;
    seekTo(Number(seekRange.value));
  });

  // Tap or click the picture: show the controls first on touch, otherwise play/pause.
  video.addEventListener("click", () => {
    if (player.dataset.controls === "hidden" && matchMedia("(pointer: coarse)").matches) showControls();
    else togglePlay();
  });
  video.addEventListener("dblclick", fullscreen);
  player.addEventListener("pointermove", showControls);
  player.addEventListener("focusin", showControls);

  video.addEventListener("play", updatePlayButton);
  video.addEventListener("pause", () => {
    updatePlayButton();
    saveResume();
    showControls();
  });
  video.addEventListener("ended", () => {
    updatePlayButton();
    store.remove(`resume:${videoId}`);
  });
  video.addEventListener("playing", () => {
    player.dataset.state = "playing";
    if (state.startupMs === null) state.startupMs = Math.round(performance.now());
    showControls();
  });
  video.addEventListener("waiting", () => (player.dataset.state = "buffering"));
  video.addEventListener("seeking", () => (player.dataset.state = "buffering"));
  video.addEventListener("seeked", () => (player.dataset.state = video.paused ? "paused" : "playing"));
  for (const type of ["waiting", "seeking", "seeked", "playing", "pause", "canplay"])
    video.addEventListener(type, updatePreparing);
  video.addEventListener("timeupdate", () => {
    updateTime();
    maybeSaveResume();
  });
  for (const type of ["durationchange", "progress", "loadedmetadata"])
    video.addEventListener(type, updateTime);
  video.addEventListener("volumechange", () => {
    updateVolume();
    store.set("volume", { v: video.volume, m: video.muted });
  });
  const vol = store.get("volume");
  if (vol) {
    video.volume = Math.min(1, Math.max(0, Number(vol.v) || 0));
    video.muted = Boolean(vol.m);
  }
  updatePlayButton();
  updateVolume();
  updateQualityButton();

  bindMenu($("btn-quality"), $("menu-quality"), (menu) => {
    const hls = state.hls;
    const current = hls && !hls.autoLevelEnabled ? hls.currentLevel : -1;
    const playingLevel = state.levels[state.currentLevel];
    const entries = [...state.levels]
      .sort((a, b) => b.bitrate - a.bitrate)
      .map((l) => ({
        label: levelLabel(l),
        detail: formatBitrate(l.bitrate),
        checked: current === l.index,
        data: { level: String(l.index) },
        onSelect: () => setLevel(l.index),
      }));
    entries.push({
      label: "Auto",
      detail: current === -1 && playingLevel ? levelLabel(playingLevel) : "",
      checked: current === -1,
      data: { level: "-1" },
      onSelect: () => setLevel(-1),
    });
    fillMenu(menu, "Quality", entries);
  });

  if ("mediaSession" in navigator) {
    navigator.mediaSession.setActionHandler("seekbackward", () => seekTo(video.currentTime - 10));
    navigator.mediaSession.setActionHandler("seekforward", () => seekTo(video.currentTime + 10));
  }
}

/** Force a quality level (index into hls.levels), or -1 for automatic. */
export function setLevel(index) {
  const hls = state.hls;
  if (!hls) return;
  hls.currentLevel = index; // switches at once, flushing what was buffered at the old level
  updateQualityButton();
  toast(index === -1 ? "Quality: Auto" : `Quality: ${levelLabel(state.levels[index])}`, 1800);
}
state.setLevel = setLevel;

export function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
  if ($("shortcuts").open) return;
  const target = event.target;
  const tag = target.tagName;
  if (tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable) return;
  if (tag === "INPUT" && target.type !== "range") return;
  const onButton = tag === "BUTTON" || tag === "A";
  const onRange = tag === "INPUT";
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  const actions = {
    " ": onButton ? null : togglePlay,
    k: togglePlay,
    j: () => seekTo(video.currentTime - 10),
    l: () => seekTo(video.currentTime + 10),
    ArrowLeft: onRange ? null : () => seekTo(video.currentTime - 5),
    ArrowRight: onRange ? null : () => seekTo(video.currentTime + 5),
    ArrowUp: onRange ? null : () => ((video.volume = Math.min(1, video.volume + 0.1)), (video.muted = false)),
    ArrowDown: onRange ? null : () => (video.volume = Math.max(0, video.volume - 0.1)),
    f: fullscreen,
    m: () => (video.muted = !video.muted),
    c: () => import("./captions.js").then((m) => m.toggleCaptions()),
    "?": () => $("shortcuts").showModal(),
    Escape: () => closeMenus({ restoreFocus: true }),
  };
  if (/^[0-9]$/.test(key) && !onRange) actions[key] = () => seekTo((duration() * Number(key)) / 10);
  const action = actions[key];
  if (!action) return;
  event.preventDefault();
  action();
  showControls();
}
