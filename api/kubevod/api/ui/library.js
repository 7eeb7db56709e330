// The library page: a grid of posters with search, sort, paging, and live progress
// for videos still transcoding. Falls back to the videos saved on this device when offline.
import {
  formatTime,
  getJson,
  h,
  icon,
  offlineCacheName,
  offlineMarkerUrl,
  playbackUrls,
  registerServiceWorker,
  savedVideoIds,
  stateLabel,
} from "./common.js";
import { videoParts } from "./parts.js";

const PAGE = 48;
const POLL_MS = 2000;

const grid = document.getElementById("grid");
const statusBox = document.getElementById("status");
const countBox = document.getElementById("library-count");
const moreButton = document.getElementById("more");
const searchInput = document.getElementById("q");
const sortSelect = document.getElementById("sort");

const params = new URLSearchParams(location.search);
const state = {
  q: params.get("q") || "",
  tag: params.get("tag") || "",
  sort: params.get("sort") || "-created",
  items: [],
  total: 0,
  saved: new Set(),
  pollTimer: 0,
  controller: null,
};
searchInput.value = state.q;
sortSelect.value = state.sort;

function listUrl(offset, limit) {
  const p = new URLSearchParams();
  if (state.q) p.set("q", state.q);
  if (state.tag) p.set("tag", state.tag);
  if (state.sort !== "-created") p.set("sort", state.sort);
  if (offset) p.set("offset", String(offset));
  p.set("limit", String(limit));
  return `/api/videos?${p}`;
}

function relativeDate(iso) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return "";
  const days = Math.floor((Date.now() - t) / 86_400_000);
  if (days < 1) return "Today";
  if (days < 2) return "Yesterday";
  if (days < 30) return `${days} days ago`;
  return new Date(t).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

function cardFor(video) {
  const poster = playbackUrls(video).poster;
  const busy = video.state === "transcoding" || video.state === "queued";
  const pct = Math.max(0, Math.min(100, Math.round(video.progress || 0)));
  const parts = videoParts(video); // on demand, not encoded whole
  const thumb = h(
    "div",
    { class: "thumb" },
    poster
      ? h("img", { src: poster, alt: "", loading: "lazy", decoding: "async", width: 320, height: 180 })
      : h("div", { class: "thumb-placeholder" }, icon("film")),
    video.state !== "ready" ? h("span", { class: `badge badge-${video.state}` }, stateLabel(video)) : null,
    parts
      ? h(
          "span",
          {
            class: "badge badge-ondemand",
            title: "Encoded on demand: the other parts are encoded when they are watched",
          },
          `On demand · ${parts.done.length} of ${parts.total} ${parts.total === 1 ? "part" : "parts"}`,
        )
      : null,
    state.saved.has(video.id)
      ? h("span", { class: "badge badge-offline", title: "Saved on this device" }, icon("offline"), "Offline")
      : null,
    video.duration > 0 ? h("span", { class: "duration" }, formatTime(video.duration)) : null,
    busy
      ? h(
          "div",
          {
            class: "progress",
            role: "progressbar",
            "aria-label": `Transcoding progress of ${video.title || video.id}`,
            "aria-valuemin": 0,
            "aria-valuemax": 100,
            "aria-valuenow": pct,
          },
          h("span", { style: `width:${pct}%` }),
        )
      : null,
    video.state === "ready" || video.playable ? h("span", { class: "play-hint" }, icon("play")) : null,
  );
  const meta = [relativeDate(video.created_at), ...(video.tags || []).slice(0, 3).map((t) => `#${t}`)]
    .filter(Boolean)
    .join(" · ");
  return h(
    "li",
    { class: "card", dataset: { id: video.id, state: video.state } },
    h(
      "a",
      { class: "card-link", href: `/watch/${encodeURIComponent(video.id)}` },
      thumb,
      h(
        "div",
        { class: "card-body" },
        h("h2", { class: "card-title" }, video.title || video.id),
        video.state === "failed" && video.message
          ? h("p", { class: "card-meta card-error" }, video.message)
          : h("p", { class: "card-meta" }, meta),
      ),
    ),
  );
}

/** Render the grid, reusing cards whose video did not change (no flicker while polling). */
function render() {
  const existing = new Map([...grid.children].map((li) => [li.dataset.id, li]));
  const nodes = state.items.map((video) => {
    const key = JSON.stringify([
      video.state,
      Math.round(video.progress || 0),
      video.title,
      video.poster_key,
      video.duration,
      video.message,
      (video.chunks_done || []).length,
      state.saved.has(video.id),
    ]);
    const old = existing.get(video.id);
    if (old && old.dataset.key === key) return old;
    const card = cardFor(video);
    card.dataset.key = key;
    return card;
  });
  grid.replaceChildren(...nodes);
  grid.setAttribute("aria-busy", "false");
  const noun = state.total === 1 ? "video" : "videos";
  if (state.tag) {
    countBox.replaceChildren(
      `${state.total} ${noun} tagged `,
      h(
        "button",
        { class: "chip", type: "button", "aria-label": `Remove the filter #${state.tag}`, onclick: clearTag },
        `#${state.tag}`,
        h("span", { "aria-hidden": "true" }, " ×"),
      ),
    );
  } else {
    countBox.textContent = state.q ? `${state.total} ${noun} found` : `${state.total} ${noun}`;
  }
  moreButton.hidden = state.items.length >= state.total;
  if (!state.items.length) {
    statusBox.replaceChildren(
      state.q || state.tag
        ? h(
            "p",
            { class: "empty" },
            state.q ? `Nothing matches “${state.q}”.` : `Nothing is tagged #${state.tag}.`,
          )
        : h(
            "div",
            { class: "empty" },
            h("p", { class: "empty-title" }, "No videos yet"),
            h(
              "p",
              { class: "muted" },
              "Add one with ",
              h("code", {}, "kubevod add ./movie.mkv"),
              " or ",
              h("code", {}, "kubectl apply -f video.yaml"),
              ".",
            ),
          ),
    );
  } else {
    statusBox.replaceChildren();
  }
  schedulePoll();
}

function schedulePoll() {
  clearTimeout(state.pollTimer);
  const busy = state.items.some((v) => v.state === "transcoding" || v.state === "queued");
  if (busy && !document.hidden) state.pollTimer = setTimeout(refresh, POLL_MS);
}

async function load({ append = false } = {}) {
  state.controller?.abort();
  const controller = new AbortController();
  state.controller = controller;
  const offset = append ? state.items.length : 0;
  try {
    const page = await getJson(listUrl(offset, PAGE), { signal: controller.signal });
    state.items = append ? state.items.concat(page.items) : page.items;
    state.total = page.total;
    render();
  } catch (err) {
    if (err.name === "AbortError") return;
    await showOffline(err);
  }
}

/** Re-fetch everything shown so far, to update progress and states in place. */
async function refresh() {
  try {
    const limit = Math.max(PAGE, state.items.length);
    const page = await getJson(listUrl(0, limit));
    state.items = page.items;
    state.total = page.total;
    render();
  } catch {
    schedulePoll();
  }
}

/** When the API cannot be reached, list what was saved on this device. */
async function showOffline(err) {
  const ids = await savedVideoIds();
  const videos = [];
  for (const id of ids) {
    const resp = await (await caches.open(offlineCacheName(id))).match(offlineMarkerUrl(id));
    if (resp) videos.push((await resp.json()).video);
  }
  state.items = videos;
  state.total = videos.length;
  state.saved = ids;
  render();
  statusBox.replaceChildren(
    h(
      "div",
      { class: "notice" },
      h("p", {}, err.message, videos.length ? " Showing the videos saved on this device." : ""),
      h("button", { class: "button", type: "button", onclick: () => load() }, "Try again"),
    ),
  );
}

let debounce = 0;
searchInput.addEventListener("input", () => {
  clearTimeout(debounce);
  debounce = setTimeout(() => {
    state.q = searchInput.value.trim();
    state.tag = "";
    syncUrl();
    load();
  }, 250);
});
searchInput.form.addEventListener("submit", (event) => {
  event.preventDefault();
  clearTimeout(debounce);
  state.q = searchInput.value.trim();
  state.tag = "";
  syncUrl();
  load();
});
sortSelect.addEventListener("change", () => {
  state.sort = sortSelect.value;
  syncUrl();
  load();
});
moreButton.addEventListener("click", () => load({ append: true }));
document.addEventListener("visibilitychange", () =>
  document.hidden ? clearTimeout(state.pollTimer) : refresh(),
);
// "/" focuses search, as on most video sites.
document.addEventListener("keydown", (event) => {
  if (event.key === "/" && document.activeElement !== searchInput) {
    event.preventDefault();
    searchInput.focus();
  }
});

function clearTag() {
  state.tag = "";
  syncUrl();
  load();
}

function syncUrl() {
  const p = new URLSearchParams();
  if (state.q) p.set("q", state.q);
  if (state.tag) p.set("tag", state.tag);
  if (state.sort !== "-created") p.set("sort", state.sort);
  history.replaceState(null, "", p.toString() ? `/?${p}` : "/");
}

savedVideoIds().then((ids) => {
  state.saved = ids;
  if (ids.size && state.items.length) render();
});
load();
registerServiceWorker();
