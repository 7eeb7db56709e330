// The player page: hls.js (or native HLS where there is no MSE) plus the controls, menus,
// trickplay, resume, "Save for offline" and QoE beacons of the modules it imports.
// window.kubevodPlayer (page.js) exposes the live state (used by tests).
import { formatTime, getJson, h, playbackUrls, registerServiceWorker, stateLabel } from "./common.js";
import { onKey, setupControls, updateParts, updatePreparing, updateQualityButton } from "./controls.js";
import {
  $,
  hideToast,
  levelLabel,
  player,
  seekTo,
  showMessage,
  state,
  store,
  toast,
  video,
  videoId,
} from "./page.js";
import { encodedAt, videoParts } from "./parts.js";
import { QoeReporter } from "./qoe.js";
import { resumePosition } from "./resume.js";

// ---- metadata ----------------------------------------------------------------------------

function renderDetails(v) {
  document.title = `${v.title || v.id} · kubevod`;
  $("video-title").textContent = v.title || v.id;
  const top = Math.max(0, ...(v.renditions || []).map((r) => r.height || 0));
  const meta = [
    v.duration > 0 ? formatTime(v.duration) : null,
    top ? `${top}p` : null,
    v.created_at ? new Date(v.created_at).toLocaleDateString() : null,
  ];
  $("video-meta").textContent = meta.filter(Boolean).join(" · ");
  $("video-description").textContent = v.description || "";
  $("video-tags").replaceChildren(
    ...(v.tags || []).map((t) =>
      h("li", {}, h("a", { class: "tag", href: `/?tag=${encodeURIComponent(t)}` }, `#${t}`)),
    ),
  );
  const banner = $("video-state");
  const growing = v.state === "transcoding" || v.state === "queued";
  banner.hidden = v.state === "ready";
  banner.dataset.state = v.state;
  if (growing) {
    const pct = Math.round(v.progress || 0);
    banner.replaceChildren(
      h("strong", {}, stateLabel(v)),
      h(
        "span",
        {},
        v.playable
          ? " You can watch what is ready; more arrives as it is made."
          : " Playback starts as soon as the first segments are ready.",
      ),
      h(
        "span",
        {
          class: "state-progress",
          role: "progressbar",
          "aria-label": "Transcoding progress",
          "aria-valuemin": 0,
          "aria-valuemax": 100,
          "aria-valuenow": pct,
        },
        h("span", { style: `width:${pct}%` }),
      ),
    );
  } else if (v.state === "failed") {
    banner.replaceChildren(h("strong", {}, "Transcoding failed. "), v.message || "");
  }
  $("live-badge").hidden = !growing;
  if ("mediaSession" in navigator) {
    const poster = playbackUrls(v).poster;
    navigator.mediaSession.metadata = new MediaMetadata({
      title: v.title || v.id,
      artist: "kubevod",
      artwork: poster ? [{ src: poster }] : [],
    });
  }
}

/**
 * Remember where media comes from, so the next visit's <head> can preconnect to it, and
 * whether links are signed (then it must not preload an unsigned master playlist).
 */
function rememberMediaOrigin(v) {
  try {
    const urls = playbackUrls(v);
    const origin = new URL(urls.poster || urls.trickplay || urls.hls, location.href).origin;
    localStorage.setItem("kubevod:media-origin", origin);
    localStorage.setItem("kubevod:signed-urls", new URL(urls.hls, location.href).search ? "1" : "");
  } catch {
    /* ignore */
  }
}

// ---- playback ----------------------------------------------------------------------------

/**
 * Start playback. `waited` is true when the page had to wait for the first segments: the
 * master playlist preloaded by the page's <head> was then an error, so fetch it afresh.
 */
function start(v, { waited = false } = {}) {
  const urls = playbackUrls(v);
  if (waited) {
    urls.hls += `${urls.hls.includes("?") ? "&" : "?"}t=${Date.now()}`;
    hideToast(); // "Waiting for the first segments…" is over
  }
  const resumeAt = resumePosition(v);
  const growing = v.state !== "ready";
  if (urls.poster) video.poster = urls.poster;
  for (const sub of urls.subtitles) {
    if (!sub.url) continue;
    video.append(
      h("track", {
        kind: "subtitles",
        label: sub.name || sub.language,
        srclang: sub.language || "und",
        src: sub.url,
        // No `default` attribute: captions.js decides, so a viewer's "Off" sticks.
        dataset: { kubevod: "1", default: sub.default ? "1" : "" },
      }),
    );
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
      // Start from the bandwidth measured on the last visit; only a first visit measures
      // the network with its first fragment before choosing a rung.
      abrEwmaDefaultEstimate: estimate > 0 ? Math.min(estimate, 200e6) : 500e3,
      testBandwidth: !(estimate > 0),
      backBufferLength: 60,
      maxBufferLength: 30,
      // A part of an on-demand video not encoded yet is answered once it is (the server
      // waits on_demand_wait_s, then says 503 "ask again"): wait and ask again, patiently.
      ...(videoParts(v) ? { fragLoadPolicy: ON_DEMAND_FRAG_POLICY } : {}),
    });
    state.hls = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, (_e, data) => {
      state.levels = data.levels.map((l, index) => ({
        index,
        height: l.height,
        width: l.width,
        bitrate: l.bitrate,
        name: l.name || levelLabel(l),
      }));
      updateQualityButton();
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => {
      state.currentLevel = data.level;
      const level = state.levels[data.level];
      if (level) state.qoe.noteSwitch(level.name);
      updateQualityButton();
    });
    hls.on(Hls.Events.FRAG_LOADING, (_e, data) => {
      if (data.frag.type === "main" && data.frag.sn !== "initSegment")
        state.requestedLevels.push(data.frag.level);
    });
    hls.on(Hls.Events.FRAG_LOADED, (_e, data) => {
      if (data.frag.type === "main" && data.frag.sn !== "initSegment")
        state.loadedLevels.push(data.frag.level);
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
      else if (recoveries <= 3 && data.type === Hls.ErrorTypes.NETWORK_ERROR)
        // A manifest that failed must be fetched again; otherwise resume fragment loading.
        setTimeout(
          () => (/^manifest/i.test(data.details) ? hls.loadSource(urls.hls) : hls.startLoad()),
          1000 * recoveries,
        );
      else
        showMessage(
          navigator.onLine === false
            ? "You are offline and this video is not saved on this device."
            : "This video cannot be played right now.",
          { retry: true },
        );
    });
    // A seek into a part of an on-demand video not encoded yet: its first fragment comes
    // from the lowest rung, which the server encodes first and alone (a moment, where the
    // whole ladder takes seconds); ABR climbs back once it has loaded. Capture: this runs
    // before hls.js's own "seeking" handler picks the fragment.
    video.addEventListener(
      "seeking",
      () => {
        if (hls.autoLevelEnabled && !encodedAt(state.video, video.currentTime))
          hls.nextLoadLevel = hls.minAutoLevel;
      },
      { capture: true },
    );
    hls.loadSource(urls.hls);
    hls.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    state.mode = "native";
    video.src = urls.hls;
    if (resumeAt)
      video.addEventListener("loadedmetadata", () => (video.currentTime = resumeAt), { once: true });
    updateQualityButton();
  } else {
    showMessage("This browser cannot play HLS video.");
    return;
  }
  if (resumeAt) {
    toast(
      [
        `Resuming at ${formatTime(resumeAt)}`,
        h("button", { class: "toast-action", type: "button", onclick: () => seekTo(0) }, "Start over"),
      ],
      6000,
    );
  }
  autoplay();
  // Off the critical path: these modules load while the first segments do.
  import("./captions.js").then((m) => m.setupCaptions());
  import("./seekbar.js").then((m) => m.attachTrickplay(v));
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
      toast(
        [
          h(
            "button",
            { class: "toast-action", type: "button", onclick: () => (video.muted = false) },
            "Tap to unmute",
          ),
        ],
        8000,
      );
    } catch {
      player.dataset.state = "paused";
    }
  }
}

// ---- main --------------------------------------------------------------------------------

/** hls.js's fragment loading for an on-demand video with parts still to encode. */
const ON_DEMAND_FRAG_POLICY = {
  default: {
    maxTimeToFirstByteMs: 30_000,
    maxLoadTimeMs: 120_000,
    timeoutRetry: { maxNumRetry: 4, retryDelayMs: 0, maxRetryDelayMs: 0 },
    errorRetry: { maxNumRetry: 10, retryDelayMs: 1000, maxRetryDelayMs: 4000 },
  },
};

/**
 * How long until the video's metadata is read again (ms), or null: fast until the first
 * segments exist, then to follow a transcode's progress; for an on-demand video not
 * encoded whole, to follow its parts (every second while the player waits for one).
 */
function pollDelay() {
  const v = state.video;
  if (!v) return null;
  if (v.state === "transcoding" || v.state === "queued") return state.mode ? 3000 : 1000;
  if (v.state === "ready" && videoParts(v)) return player.dataset.preparing !== undefined ? 1000 : 4000;
  return null;
}

let pollTimer = 0;
let polling = false;

function schedulePoll(ms = pollDelay()) {
  clearTimeout(pollTimer);
  if (ms !== null) pollTimer = setTimeout(poll, ms);
}

async function poll() {
  if (polling) return;
  polling = true;
  try {
    if (!document.hidden) {
      state.video = await getJson(`/api/videos/${encodeURIComponent(videoId)}`);
      renderDetails(state.video);
      if (!state.mode && state.video.playable) start(state.video, { waited: true });
      updateParts();
      updatePreparing();
    }
  } catch {
    /* keep polling */
  } finally {
    polling = false;
    schedulePoll();
  }
}

/** Read the metadata again now (a seek reached a part not encoded yet, or it played). */
state.pollNow = () => {
  if (!polling && pollDelay() !== null) schedulePoll(0);
};
document.addEventListener("visibilitychange", () => document.hidden || state.pollNow());

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
    showMessage(err.status === 404 ? "This video does not exist (any more)." : err.message, {
      retry: err.status !== 404,
    });
    $("video-title").textContent = err.status === 404 ? "Video not found" : "Cannot load this video";
    return;
  }
  renderDetails(state.video);
  rememberMediaOrigin(state.video);
  if (state.video.state === "failed")
    showMessage(state.video.message ? `Transcoding failed: ${state.video.message}` : "Transcoding failed.");
  else if (state.video.state === "ready" || state.video.playable) start(state.video);
  else {
    player.dataset.state = "waiting";
    toast("Waiting for the first segments…", 10_000);
  }
  schedulePoll();
  import("./save.js").then((m) => m.setupOffline());
  registerServiceWorker();
}

main();
