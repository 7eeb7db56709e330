// The player page: hls.js (or native HLS where there is no MSE), custom controls, quality and
// captions menus, trickplay thumbnails, resume position, keyboard shortcuts, "Save for
// offline", and QoE beacons. window.kubevodPlayer exposes the live state (used by tests).
import { formatBytes, formatTime, getJson, h, icon, playbackUrls, registerServiceWorker, stateLabel } from "./common.js";
import { anyMenuOpen, bindMenu, closeMenus, fillMenu } from "./menu.js";
import { offlineChoices, offlineRecord, removeOffline, saveForOffline } from "./offline.js";
import { QoeReporter } from "./qoe.js";
import { Trickplay } from "./trickplay.js";

const $ = (id) => document.getElementById(id);
const videoId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
const video = $("video");
const player = $("player");
const store = {
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
const state = (window.kubevodPlayer = {
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

// ---- small UI helpers --------------------------------------------------------------------

function setIcon(button, name) {
  button.replaceChildren(icon(name));
}

let toastTimer = 0;
function toast(content, ms = 3500) {
  const box = $("toast");
  box.replaceChildren(...[content].flat());
  box.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => box.classList.remove("show"), ms);
}

function showMessage(text, { retry = false } = {}) {
  const box = $("player-message");
  box.replaceChildren(h("p", {}, text), ...(retry ? [h("button", { class: "button", type: "button", onclick: () => location.reload() }, "Try again")] : []));
  box.hidden = false;
  player.dataset.state = "error";
}

function levelLabel(level) {
  return level.height ? `${level.height}p` : `${Math.round(level.bitrate / 1000)} kb/s`;
}

function formatBitrate(bps) {
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(1)} Mb/s` : `${Math.round(bps / 1e3)} kb/s`;
}

// ---- metadata ----------------------------------------------------------------------------

function renderDetails(v) {
  document.title = `${v.title || v.id} · kubevod`;
  $("video-title").textContent = v.title || v.id;
  const top = Math.max(0, ...(v.renditions || []).map((r) => r.height || 0));
  const meta = [v.duration > 0 ? formatTime(v.duration) : null, top ? `${top}p` : null, v.created_at ? new Date(v.created_at).toLocaleDateString() : null];
  $("video-meta").textContent = meta.filter(Boolean).join(" · ");
  $("video-description").textContent = v.description || "";
  $("video-tags").replaceChildren(...(v.tags || []).map((t) => h("li", {}, h("a", { class: "tag", href: `/?tag=${encodeURIComponent(t)}` }, `#${t}`))));
  const banner = $("video-state");
  const growing = v.state === "transcoding" || v.state === "queued";
  banner.hidden = v.state === "ready";
  banner.dataset.state = v.state;
  if (growing) {
    const pct = Math.round(v.progress || 0);
    banner.replaceChildren(
      h("strong", {}, stateLabel(v)),
      h("span", {}, v.playable ? " You can watch what is ready; more arrives as it is made." : " Playback starts as soon as the first segments are ready."),
      h("span", { class: "state-progress", role: "progressbar", "aria-label": "Transcoding progress", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct }, h("span", { style: `width:${pct}%` })),
    );
  } else if (v.state === "failed") {
    banner.replaceChildren(h("strong", {}, "Transcoding failed. "), v.message || "");
  }
  $("live-badge").hidden = !growing;
  if ("mediaSession" in navigator) {
    const poster = playbackUrls(v).poster;
    navigator.mediaSession.metadata = new MediaMetadata({ title: v.title || v.id, artist: "kubevod", artwork: poster ? [{ src: poster }] : [] });
  }
}

/** Remember where media comes from, so the next visit's <head> can preconnect to it. */
function rememberMediaOrigin(v) {
  try {
    const urls = playbackUrls(v);
    const origin = new URL(urls.poster || urls.trickplay || urls.hls, location.href).origin;
    localStorage.setItem("kubevod:media-origin", origin);
  } catch {
    /* ignore */
  }
}

// ---- playback ----------------------------------------------------------------------------

/** Resume only past the first seconds and before the very end (then start over). */
const RESUME_MIN_S = 3;
function resumeEndMargin(duration) {
  return Math.max(3, 0.03 * duration);
}

function resumePosition(v) {
  const saved = store.get(`resume:${videoId}`);
  if (!saved || !(saved.t >= RESUME_MIN_S)) return 0;
  const duration = v.duration || saved.d || 0;
  return duration && saved.t > duration - resumeEndMargin(duration) ? 0 : saved.t;
}

/**
 * Start playback. `waited` is true when the page had to wait for the first segments: the
 * master playlist preloaded by the page's <head> was then an error, so fetch it afresh.
 */
function start(v, { waited = false } = {}) {
  const urls = playbackUrls(v);
  if (waited) urls.hls += `${urls.hls.includes("?") ? "&" : "?"}t=${Date.now()}`;
  const resumeAt = resumePosition(v);
  const growing = v.state !== "ready";
  if (urls.poster) video.poster = urls.poster;
  for (const sub of urls.subtitles) {
    if (!sub.url) continue;
    video.append(h("track", { kind: "subtitles", label: sub.name || sub.language, srclang: sub.language || "und", src: sub.url, default: sub.default || null, dataset: { kubevod: "1" } }));
  }
  const Hls = window.Hls;
  const hasMse = Boolean(window.ManagedMediaSource || window.MediaSource);
  if (Hls?.isSupported() && hasMse) {
    state.mode = "hls.js";
    const estimate = store.get("bandwidth");
    const hls = new Hls({
      // A growing (EVENT) playlist starts at its beginning, not at the "live" edge.
      startPosition: resumeAt || (growing ? 0 : -1),
      capLevelToPlayerSize: true,
      enableWebVTT: false, // captions come from the <track> elements above
      // Start from the bandwidth measured on the last visit; only a first visit spends its
      // first fragment on measuring (lowest rung first).
      abrEwmaDefaultEstimate: estimate > 0 ? Math.min(estimate, 200e6) : 500e3,
      testBandwidth: !(estimate > 0),
      backBufferLength: 60,
      maxBufferLength: 30,
    });
    state.hls = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, (_e, data) => {
      state.levels = data.levels.map((l, index) => ({ index, height: l.height, width: l.width, bitrate: l.bitrate, name: l.name || levelLabel(l) }));
      updateQualityButton();
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => {
      state.currentLevel = data.level;
      const level = state.levels[data.level];
      if (level) state.qoe.noteSwitch(level.name);
      updateQualityButton();
    });
    hls.on(Hls.Events.FRAG_LOADING, (_e, data) => {
      if (data.frag.type === "main" && data.frag.sn !== "initSegment") state.requestedLevels.push(data.frag.level);
    });
    hls.on(Hls.Events.FRAG_LOADED, (_e, data) => {
      if (data.frag.type === "main" && data.frag.sn !== "initSegment") state.loadedLevels.push(data.frag.level);
      const bw = hls.bandwidthEstimate;
      if (bw > 0) store.set("bandwidth", Math.round(bw));
    });
    hls.on(Hls.Events.LEVEL_UPDATED, (_e, data) => {
      $("live-badge").hidden = !data.details.live;
    });
    let recoveries = 0;
    hls.on(Hls.Events.ERROR, (_e, data) => {
      if (!data.fatal) return;
      const what = `${data.type}:${data.details}`;
      state.errors.push(what);
      state.qoe.noteError(what);
      if (recoveries++ < 3 && data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      else if (recoveries <= 3 && data.type === Hls.ErrorTypes.NETWORK_ERROR) setTimeout(() => hls.startLoad(), 1000 * recoveries);
      else showMessage(navigator.onLine === false ? "You are offline and this video is not saved on this device." : "This video cannot be played right now.", { retry: true });
    });
    hls.loadSource(urls.hls);
    hls.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    state.mode = "native";
    video.src = urls.hls;
    if (resumeAt) video.addEventListener("loadedmetadata", () => (video.currentTime = resumeAt), { once: true });
    updateQualityButton();
  } else {
    showMessage("This browser cannot play HLS video.");
    return;
  }
  if (resumeAt) {
    toast([`Resuming at ${formatTime(resumeAt)}`, h("button", { class: "toast-action", type: "button", onclick: () => seekTo(0) }, "Start over")], 6000);
  }
  autoplay();
  loadTrickplay(v);
  setupCaptions();
}

async function autoplay() {
  try {
    await video.play();
  } catch (err) {
    if (err.name !== "NotAllowedError") return;
    // The browser wants a gesture for sound: start muted and offer to unmute.
    video.muted = true;
    try {
      await video.play();
      toast([h("button", { class: "toast-action", type: "button", onclick: () => (video.muted = false) }, "Tap to unmute")], 8000);
    } catch {
      player.dataset.state = "paused";
    }
  }
}

function togglePlay() {
  if (video.paused || video.ended) video.play().catch(() => {});
  else video.pause();
}

function seekTo(t) {
  const end = Number.isFinite(video.duration) ? video.duration : seekableEnd();
  video.currentTime = Math.max(0, Math.min(end || 0, t));
  showControls();
}

function seekableEnd() {
  const s = video.seekable;
  return s.length ? s.end(s.length - 1) : 0;
}

function duration() {
  return Number.isFinite(video.duration) && video.duration > 0 ? video.duration : seekableEnd() || state.video?.duration || 0;
}

// ---- controls ----------------------------------------------------------------------------

const seekRange = $("seek-range");
let scrubbing = false;

function updateTime() {
  const d = duration();
  const t = video.currentTime;
  $("time-current").textContent = formatTime(t);
  $("time-duration").textContent = formatTime(d);
  seekRange.max = String(d || 0);
  if (!scrubbing) seekRange.value = String(t);
  seekRange.setAttribute("aria-valuetext", `${formatTime(t)} of ${formatTime(d)}`);
  $("seek-played").style.width = d ? `${(100 * t) / d}%` : "0";
  let buffered = 0;
  for (let i = 0; i < video.buffered.length; i++) if (video.buffered.start(i) <= t + 0.5) buffered = Math.max(buffered, video.buffered.end(i));
  $("seek-buffered").style.width = d ? `${Math.min(100, (100 * buffered) / d)}%` : "0";
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

let hideTimer = 0;
function showControls() {
  player.dataset.controls = "visible";
  clearTimeout(hideTimer);
  hideTimer = setTimeout(() => {
    if (!video.paused && !anyMenuOpen() && !player.contains(document.activeElement?.closest?.(".controls") ?? null)) player.dataset.controls = "hidden";
  }, 2800);
}

function updateQualityButton() {
  const button = $("btn-quality");
  const level = state.levels[state.hls?.currentLevel ?? -1];
  const auto = !state.hls || state.hls.autoLevelEnabled;
  state.autoLevel = auto;
  button.replaceChildren(icon("gear"), ...(level && level.height >= 720 ? [h("span", { class: "hd-badge", "aria-hidden": "true" }, "HD")] : []));
  button.setAttribute("aria-label", `Quality: ${auto ? "Auto" : level ? levelLabel(level) : "Auto"}`);
  button.hidden = state.mode === "native" || state.levels.length < 2;
}

function fullscreen() {
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  else if (player.requestFullscreen) player.requestFullscreen().catch(() => {});
  else if (video.webkitEnterFullscreen) video.webkitEnterFullscreen();
}

function setupControls() {
  for (const [id, name] of [["btn-back", "back10"], ["btn-fwd", "fwd10"], ["btn-fullscreen", "fullscreen"], ["btn-pip", "pip"], ["btn-cc", "cc"], ["btn-save", "download"]]) setIcon($(id), name);
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
    $("btn-fullscreen").setAttribute("aria-label", document.fullscreenElement ? "Exit full screen (f)" : "Full screen (f)");
  });
  if (document.pictureInPictureEnabled) {
    $("btn-pip").hidden = false;
    $("btn-pip").addEventListener("click", () => (document.pictureInPictureElement ? document.exitPictureInPicture() : video.requestPictureInPicture()).catch(() => {}));
  }
  seekRange.addEventListener("input", () => {
    scrubbing = true;
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
  video.addEventListener("timeupdate", () => {
    updateTime();
    maybeSaveResume();
  });
  for (const type of ["durationchange", "progress", "loadedmetadata"]) video.addEventListener(type, updateTime);
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
      .map((l) => ({ label: levelLabel(l), detail: formatBitrate(l.bitrate), checked: current === l.index, data: { level: String(l.index) }, onSelect: () => setLevel(l.index) }));
    entries.push({ label: "Auto", detail: current === -1 && playingLevel ? levelLabel(playingLevel) : "", checked: current === -1, data: { level: "-1" }, onSelect: () => setLevel(-1) });
    fillMenu(menu, "Quality", entries);
  });

  if ("mediaSession" in navigator) {
    navigator.mediaSession.setActionHandler("seekbackward", () => seekTo(video.currentTime - 10));
    navigator.mediaSession.setActionHandler("seekforward", () => seekTo(video.currentTime + 10));
  }
}

/** Force a quality level (index into hls.levels), or -1 for automatic. */
function setLevel(index) {
  const hls = state.hls;
  if (!hls) return;
  hls.currentLevel = index; // switches at once, flushing what was buffered at the old level
  updateQualityButton();
  toast(index === -1 ? "Quality: Auto" : `Quality: ${levelLabel(state.levels[index])}`, 1800);
}
state.setLevel = setLevel;

// ---- captions ----------------------------------------------------------------------------

function ourTracks() {
  return [...video.querySelectorAll("track[data-kubevod]")].map((el) => el.track);
}

function setupCaptions() {
  const tracks = ourTracks();
  const button = $("btn-cc");
  button.hidden = tracks.length === 0;
  if (!tracks.length) return;
  // Hide any tracks the browser found in the stream itself, so the menu is the single source.
  for (const t of video.textTracks) if (!tracks.includes(t)) t.mode = "disabled";
  const wanted = store.get("captions");
  const pick = wanted ? tracks.find((t) => t.language === wanted) : tracks.find((t) => t.mode === "showing");
  selectCaptions(pick || null, { persist: false });
  bindMenu(button, $("menu-cc"), (menu) => {
    const entries = [{ label: "Off", checked: !tracks.some((t) => t.mode === "showing"), onSelect: () => selectCaptions(null) }];
    for (const t of tracks) entries.push({ label: t.label || t.language, detail: t.language, checked: t.mode === "showing", onSelect: () => selectCaptions(t) });
    fillMenu(menu, "Captions", entries);
  });
}

let lastCaptions = null;
function selectCaptions(track, { persist = true } = {}) {
  for (const t of ourTracks()) t.mode = t === track ? "showing" : "disabled";
  if (track) lastCaptions = track;
  $("btn-cc").classList.toggle("active", Boolean(track));
  $("btn-cc").setAttribute("aria-pressed", String(Boolean(track)));
  if (persist) store.set("captions", track ? track.language : null);
}

function toggleCaptions() {
  const tracks = ourTracks();
  if (!tracks.length) return;
  const on = tracks.some((t) => t.mode === "showing");
  selectCaptions(on ? null : lastCaptions || tracks[0]);
  toast(on ? "Captions off" : `Captions: ${(lastCaptions || tracks[0]).label}`, 1500);
}

// ---- trickplay ---------------------------------------------------------------------------

function loadTrickplay(v) {
  const seek = $("seek");
  const preview = $("seek-preview");
  const thumb = $("seek-thumb");
  const vttUrl = playbackUrls(v).trickplay;
  const tp = vttUrl ? new Trickplay(vttUrl) : null;
  state.trickplay = tp;
  // Fetch the index once the first frame is up, so it never competes with startup.
  if (tp) video.addEventListener("playing", () => tp.load().then((ok) => ok && tp.preloadSprites()), { once: true });

  const show = (clientX) => {
    const rect = seek.getBoundingClientRect();
    const frac = Math.min(1, Math.max(0, (clientX - rect.left) / rect.width));
    const t = frac * duration();
    $("seek-time").textContent = formatTime(t);
    const cue = tp?.at(t);
    if (cue) {
      const scale = cue.w > 0 ? Math.min(1, 200 / cue.w) * (parseFloat(getComputedStyle(document.documentElement).fontSize) / 16) : 1;
      thumb.hidden = false;
      thumb.style.width = `${cue.w * scale}px`;
      thumb.style.height = `${cue.h * scale}px`;
      thumb.style.backgroundImage = `url("${cue.url}")`;
      if (cue.w) {
        thumb.style.backgroundPosition = `-${cue.x * scale}px -${cue.y * scale}px`;
        thumb.style.backgroundSize = scale === 1 ? "auto" : `${v.trickplay ? v.trickplay.columns * cue.w * scale : 0}px auto`;
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
  seekRange.addEventListener("input", () => {
    const rect = seek.getBoundingClientRect();
    show(rect.left + (rect.width * Number(seekRange.value)) / (duration() || 1));
  });
  seekRange.addEventListener("change", () => (preview.hidden = true));
}

// ---- resume ------------------------------------------------------------------------------

let lastResumeSave = 0;
function maybeSaveResume() {
  if (performance.now() - lastResumeSave > 5000) saveResume();
}

function saveResume() {
  lastResumeSave = performance.now();
  const d = duration();
  const t = video.currentTime;
  if (t >= RESUME_MIN_S && (!d || t < d - resumeEndMargin(d))) store.set(`resume:${videoId}`, { t: Math.round(t * 10) / 10, d, at: Date.now() });
  else if (d && t >= d - resumeEndMargin(d)) store.remove(`resume:${videoId}`);
}
addEventListener("pagehide", saveResume);

// ---- keyboard ----------------------------------------------------------------------------

function onKey(event) {
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
    ArrowUp: onRange ? null : () => (video.volume = Math.min(1, video.volume + 0.1), (video.muted = false)),
    ArrowDown: onRange ? null : () => (video.volume = Math.max(0, video.volume - 0.1)),
    f: fullscreen,
    m: () => (video.muted = !video.muted),
    c: toggleCaptions,
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

// ---- save for offline --------------------------------------------------------------------

let saving = null; // {controller, pct}
async function setupOffline(v) {
  const button = $("btn-save");
  if (!("caches" in window) || !("serviceWorker" in navigator)) return;
  button.hidden = false;
  let record = await offlineRecord(videoId);
  const paint = () => {
    button.classList.toggle("active", Boolean(record));
    button.replaceChildren(icon(record ? "check" : "download"), ...(saving ? [h("span", { class: "save-pct" }, `${saving.pct}%`)] : []));
    button.setAttribute("aria-label", saving ? `Saving for offline, ${saving.pct}%` : record ? `Saved for offline (${record.rendition})` : "Save for offline");
  };
  paint();
  bindMenu(button, $("menu-save"), (menu) => {
    if (saving) {
      fillMenu(menu, `Saving… ${saving.pct}%`, [{ label: "Cancel", radio: false, onSelect: () => saving.controller.abort() }]);
    } else if (record) {
      fillMenu(menu, `Saved on this device · ${record.rendition} · ${formatBytes(record.bytes)}`, [
        { label: "Remove from this device", radio: false, onSelect: async () => { await removeOffline(videoId); record = null; paint(); toast("Removed from this device"); } },
      ]);
    } else if (state.video.state !== "ready") {
      fillMenu(menu, "Save for offline", [{ label: "Available when transcoding finishes", radio: false, disabled: true }]);
    } else {
      fillMenu(menu, "Save for offline", [{ label: "Loading qualities…", radio: false, disabled: true }], () => {});
      offlineChoices(state.video)
        .then((choice) => {
          if (menu.hidden) return;
          fillMenu(
            menu,
            "Save for offline at",
            choice.variants.map((variant) => ({
              label: variant.height ? `${variant.height}p` : formatBitrate(variant.bandwidth),
              detail: state.video.duration ? `≈ ${formatBytes((variant.bandwidth * state.video.duration) / 8)}` : formatBitrate(variant.bandwidth),
              radio: false,
              data: { height: String(variant.height || 0) },
              onSelect: () => runSave(choice, variant),
            })),
          );
          menu.querySelector("[role^=menuitem]")?.focus();
        })
        .catch((err) => fillMenu(menu, "Save for offline", [{ label: err.message, radio: false, disabled: true }]));
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

// ---- main --------------------------------------------------------------------------------

async function pollWhileGrowing() {
  while (state.video && (state.video.state === "transcoding" || state.video.state === "queued")) {
    // Poll fast until the first segments exist, then just to follow the progress.
    await new Promise((r) => setTimeout(r, state.mode ? 3000 : 1000));
    try {
      state.video = await getJson(`/api/videos/${encodeURIComponent(videoId)}`);
      renderDetails(state.video);
      if (!state.mode && state.video.playable) start(state.video, { waited: true });
    } catch {
      /* keep polling */
    }
  }
}

async function main() {
  setupControls();
  document.addEventListener("keydown", onKey);
  $("btn-shortcuts").addEventListener("click", () => $("shortcuts").showModal());
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(videoId)) {
    showMessage("This link does not point to a video.");
    return;
  }
  state.qoe = new QoeReporter(videoId);
  state.qoe.attach(video);
  try {
    state.video = await getJson(`/api/videos/${encodeURIComponent(videoId)}`);
  } catch (err) {
    showMessage(err.status === 404 ? "This video does not exist (any more)." : err.message, { retry: err.status !== 404 });
    $("video-title").textContent = err.status === 404 ? "Video not found" : "Cannot load this video";
    return;
  }
  renderDetails(state.video);
  rememberMediaOrigin(state.video);
  if (state.video.state === "failed") showMessage(state.video.message ? `Transcoding failed: ${state.video.message}` : "Transcoding failed.");
  else if (state.video.state === "ready" || state.video.playable) start(state.video);
  else {
    player.dataset.state = "waiting";
    toast("Waiting for the first segments…", 10_000);
  }
  pollWhileGrowing();
  setupOffline(state.video);
  registerServiceWorker();
}

main();
