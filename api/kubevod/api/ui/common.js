// Shared helpers for the library and the player: formatting, URLs, fetch, service worker.
// Plain ES module, no build step.

/** Format seconds as m:ss or h:mm:ss. */
export function formatTime(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) seconds = 0;
  const s = Math.floor(seconds % 60);
  const m = Math.floor((seconds / 60) % 60);
  const h = Math.floor(seconds / 3600);
  const ss = String(s).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** Human size such as "12.4 MB". */
export function formatBytes(bytes) {
  if (!Number.isFinite(bytes) || bytes <= 0) return "0 B";
  const units = ["B", "kB", "MB", "GB", "TB"];
  const i = Math.min(units.length - 1, Math.floor(Math.log10(bytes) / 3));
  const v = bytes / 10 ** (3 * i);
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/**
 * The URL of a stored object: the media origin serves key `videos/<id>/<rest>` at
 * `/media/<id>/<rest>` (kubevod.manifests.common.media_url). Used only where the API's
 * `playback` URLs do not already say it.
 */
export function mediaUrl(video, key) {
  if (!key) return null;
  if (/^(https?:)?\/\//.test(key) || key.startsWith("/")) return key;
  const rest = key.startsWith("videos/") ? key.slice("videos/".length) : `${video.id}/${key}`;
  return `/media/${rest.split("/").map(encodeURIComponent).join("/")}`;
}

/** Playback URLs, preferring what the API says (`video.playback`) over the agreed defaults. */
export function playbackUrls(video) {
  const pb = video.playback || {};
  const id = encodeURIComponent(video.id);
  return {
    hls: pb.hls || pb.master || pb.master_m3u8 || `/v/${id}/master.m3u8`,
    dash: pb.dash || pb.mpd || pb.manifest_mpd || `/v/${id}/manifest.mpd`,
    poster: pb.poster || (video.poster_key ? mediaUrl(video, video.poster_key) : null),
    trickplay: pb.trickplay || (video.trickplay?.vtt_key ? mediaUrl(video, video.trickplay.vtt_key) : null),
    subtitles:
      pb.subtitles ||
      (video.subtitles || []).map((s) => ({
        name: s.name,
        language: s.language,
        default: s.default,
        url: mediaUrl(video, s.key),
      })),
  };
}

// A private library's token (kubevod.api.deps.require_reader). `kubevod serve` prints a
// link ending in #token=...: the fragment never reaches a server, a proxy or a log. It is
// kept in this origin's localStorage, removed from the address bar, and sent as a bearer
// token on the UI's own API reads. Players fetch manifests and media with the signed
// links the API hands out, which need no header.
const TOKEN_KEY = "kubevod.token";

function takeTokenFromUrl() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!match) return;
  try {
    localStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
  } catch {
    /* storage disabled: the token works for this page only */
    sessionToken = decodeURIComponent(match[1]);
  }
  history.replaceState(null, "", location.pathname + location.search);
}

let sessionToken = null;
takeTokenFromUrl();

/** The stored bearer token, or null. */
export function apiToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || sessionToken;
  } catch {
    return sessionToken;
  }
}

/** GET JSON; throws an Error whose message a person can read. */
export async function getJson(url, { signal } = {}) {
  let resp;
  const token = apiToken();
  const sameOrigin = new URL(url, location.href).origin === location.origin;
  const withToken = Boolean(token && sameOrigin);
  // With a token, credentials "omit" (no cookies are used anyway) also keeps the page's
  // <link rel=preload> of the listing, fetched without the header, from being reused.
  const init = withToken
    ? { signal, headers: { Authorization: `Bearer ${token}` }, credentials: "omit" }
    : { signal };
  try {
    resp = await fetch(url, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new Error(navigator.onLine === false ? "You are offline." : "Cannot reach the server.");
  }
  if (!resp.ok) {
    let detail = `${resp.status} ${resp.statusText}`;
    try {
      const body = await resp.json();
      const msg = body.message || body.detail;
      if (typeof msg === "string") detail = msg;
    } catch {
      /* not JSON: keep the status line */
    }
    if (resp.status === 401) {
      detail = "This library is private: open the link kubevod printed (ending in #token=…).";
    }
    const error = new Error(detail);
    error.status = resp.status;
    throw error;
  }
  return resp.json();
}

/** Human label of a video's state. */
export function stateLabel(video) {
  switch (video.state) {
    case "transcoding":
      return `Transcoding ${Math.round(video.progress || 0)}%`;
    case "queued":
      return "Queued";
    case "failed":
      return "Failed";
    default:
      return "Ready";
  }
}

/** Create an element: h("div", {class: "x", onclick}, child, "text"). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Inline SVG icon from the sprite-free set below (24x24, currentColor). */
export function icon(name, label) {
  const span = document.createElement("span");
  span.className = "icon";
  if (label) {
    span.setAttribute("role", "img");
    span.setAttribute("aria-label", label);
  } else {
    span.setAttribute("aria-hidden", "true");
  }
  span.innerHTML = `<svg viewBox="0 0 24 24" width="24" height="24" focusable="false">${ICONS[name] || ""}</svg>`;
  return span;
}

export const ICONS = {
  play: '<path d="M8 5.5v13a1 1 0 0 0 1.5.86l10.5-6.5a1 1 0 0 0 0-1.72L9.5 4.64A1 1 0 0 0 8 5.5Z" fill="currentColor"/>',
  pause:
    '<rect x="6" y="5" width="4" height="14" rx="1" fill="currentColor"/><rect x="14" y="5" width="4" height="14" rx="1" fill="currentColor"/>',
  back10:
    '<path d="M12 5V2L7 6l5 4V7a6 6 0 1 1-6 6H4a8 8 0 1 0 8-8Z" fill="currentColor"/><text x="12" y="16.2" font-size="6.5" text-anchor="middle" fill="currentColor" font-family="system-ui,sans-serif" font-weight="700">10</text>',
  fwd10:
    '<path d="M12 5V2l5 4-5 4V7a6 6 0 1 0 6 6h2a8 8 0 1 1-8-8Z" fill="currentColor"/><text x="12" y="16.2" font-size="6.5" text-anchor="middle" fill="currentColor" font-family="system-ui,sans-serif" font-weight="700">10</text>',
  volume:
    '<path d="M4 9h4l5-4v14l-5-4H4z" fill="currentColor"/><path d="M16 8.5a5 5 0 0 1 0 7M18.5 6a8.5 8.5 0 0 1 0 12" stroke="currentColor" stroke-width="2" fill="none" stroke-linecap="round"/>',
  mute: '<path d="M4 9h4l5-4v14l-5-4H4z" fill="currentColor"/><path d="m16 9 5 6m0-6-5 6" stroke="currentColor" stroke-width="2" stroke-linecap="round"/>',
  cc: '<rect x="3" y="5" width="18" height="14" rx="3" fill="none" stroke="currentColor" stroke-width="2"/><path d="M10.5 10.2a2.2 2.2 0 1 0 0 3.6M17 10.2a2.2 2.2 0 1 0 0 3.6" stroke="currentColor" stroke-width="1.8" fill="none" stroke-linecap="round"/>',
  gear: '<path d="M12 8.5a3.5 3.5 0 1 0 0 7 3.5 3.5 0 0 0 0-7Zm8.2 5-.1-3 2-1.6-2-3.4-2.4.9a8 8 0 0 0-2.6-1.5L14.7 2h-4l-.4 2.5a8 8 0 0 0-2.6 1.5l-2.4-.9-2 3.4 2 1.6v3l-2 1.6 2 3.4 2.4-.9a8 8 0 0 0 2.6 1.5l.4 2.5h4l.4-2.5a8 8 0 0 0 2.6-1.5l2.4.9 2-3.4-2-1.6Z" fill="none" stroke="currentColor" stroke-width="1.7" stroke-linejoin="round"/>',
  download:
    '<path d="M12 4v11m0 0-4.5-4.5M12 15l4.5-4.5M5 19h14" stroke="currentColor" stroke-width="2" fill="none" stroke-linecap="round" stroke-linejoin="round"/>',
  check:
    '<path d="m5 12.5 4.5 4.5L19 7.5" stroke="currentColor" stroke-width="2.2" fill="none" stroke-linecap="round" stroke-linejoin="round"/>',
  fullscreen:
    '<path d="M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5" stroke="currentColor" stroke-width="2" fill="none" stroke-linecap="round" stroke-linejoin="round"/>',
  exitFullscreen:
    '<path d="M9 4v5H4M15 4v5h5M9 20v-5H4M15 20v-5h5" stroke="currentColor" stroke-width="2" fill="none" stroke-linecap="round" stroke-linejoin="round"/>',
  pip: '<rect x="3" y="5" width="18" height="14" rx="2" fill="none" stroke="currentColor" stroke-width="2"/><rect x="12" y="11" width="7" height="6" rx="1" fill="currentColor"/>',
  search:
    '<circle cx="11" cy="11" r="6.5" fill="none" stroke="currentColor" stroke-width="2"/><path d="m16 16 4.5 4.5" stroke="currentColor" stroke-width="2" stroke-linecap="round"/>',
  back: '<path d="M15 5 8 12l7 7" stroke="currentColor" stroke-width="2.2" fill="none" stroke-linecap="round" stroke-linejoin="round"/>',
  offline:
    '<path d="M12 4v9m0 0-3.5-3.5M12 13l3.5-3.5" stroke="currentColor" stroke-width="2" fill="none" stroke-linecap="round" stroke-linejoin="round"/><path d="M5 17.5h14" stroke="currentColor" stroke-width="2" stroke-linecap="round"/>',
  trash:
    '<path d="M5 7h14M10 7V5h4v2m-7 0 1 12h8l1-12" stroke="currentColor" stroke-width="2" fill="none" stroke-linecap="round" stroke-linejoin="round"/>',
  film: '<rect x="3" y="4" width="18" height="16" rx="2.5" fill="none" stroke="currentColor" stroke-width="2"/><path d="M7 4v16M17 4v16M3 9h4M3 15h4M17 9h4M17 15h4" stroke="currentColor" stroke-width="2"/>',
};

/** Register the service worker (scope /); never fails the page. */
export function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return Promise.resolve(null);
  return navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch((err) => {
    console.warn("kubevod: service worker not registered", err);
    return null;
  });
}

/** Name of the Cache Storage cache that holds one saved video. */
export function offlineCacheName(videoId) {
  return `kubevod-video-${videoId}`;
}

/** URL of the marker entry written last when a video is completely saved. */
export function offlineMarkerUrl(videoId) {
  return `/__offline__/${encodeURIComponent(videoId)}.json`;
}

/** Ids of the videos completely saved for offline viewing. */
export async function savedVideoIds() {
  const ids = new Set();
  if (!("caches" in window)) return ids;
  for (const name of await caches.keys()) {
    if (!name.startsWith("kubevod-video-")) continue;
    const id = name.slice("kubevod-video-".length);
    if (await (await caches.open(name)).match(offlineMarkerUrl(id))) ids.add(id);
  }
  return ids;
}
