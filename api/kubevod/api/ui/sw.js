// kubevod service worker (served at /sw.js, scope /).
// - App shell (pages, scripts, styles, hls.js): network first, cached copy when offline.
// - Saved videos (caches named kubevod-video-<id>, written by offline.js): media objects are
//   immutable, so they are answered from the cache first; manifests and metadata go to the
//   network first and fall back to the saved copy, so a saved video plays with the network off.
const SHELL_CACHE = "kubevod-shell-v1";
const SHELL = [
  "/",
  "/ui/index.html",
  "/ui/watch.html",
  "/ui/app.css",
  "/ui/common.js",
  "/ui/library.js",
  "/ui/player.js",
  "/ui/page.js",
  "/ui/controls.js",
  "/ui/parts.js",
  "/ui/captions.js",
  "/ui/seekbar.js",
  "/ui/resume.js",
  "/ui/save.js",
  "/ui/menu.js",
  "/ui/trickplay.js",
  "/ui/qoe.js",
  "/ui/offline.js",
  "/ui/vendor/hls.min.js",
  "/ui/icons/icon.svg",
  "/ui/manifest.webmanifest",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(SHELL_CACHE);
      // One missing file must not keep the worker from installing.
      await Promise.all(SHELL.map((url) => cache.add(new Request(url, { cache: "reload" })).catch(() => {})));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith("kubevod-shell-") && name !== SHELL_CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

function isShell(url) {
  return url.pathname === "/" || url.pathname.startsWith("/ui/") || url.pathname === "/sw.js";
}

/** Network first; on failure (offline, server down) the cached copy, if any. */
async function networkFirst(request, { cacheName = null, fallback = null } = {}) {
  try {
    const response = await fetch(request);
    if (cacheName && response.ok && request.method === "GET") {
      const copy = response.clone();
      caches
        .open(cacheName)
        .then((cache) => cache.put(request, copy))
        .catch(() => {});
    }
    return response;
  } catch (err) {
    const cached =
      (await caches.match(request, { ignoreVary: true })) || (fallback && (await caches.match(fallback)));
    if (cached) return cached;
    throw err;
  }
}

/**
 * Manifests and metadata: straight to the network unless the video is saved on this device.
 * A saved one is revalidated with the server (bypassing the HTTP cache, which may hold the
 * full multi-rung master) and falls back to the saved single-rung copy when that fails.
 */
async function savedFallback(request) {
  const saved = await caches.match(request, { ignoreVary: true });
  if (!saved) return fetch(request);
  try {
    return await fetch(request, { cache: "no-cache" });
  } catch {
    return saved;
  }
}

/** Cache first for immutable media objects of saved videos; otherwise straight to the network. */
async function cacheFirst(request) {
  const cached = await caches.match(request.url, { ignoreVary: true });
  return cached || fetch(request);
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin && !url.pathname.startsWith("/media/")) return;
  // Byte-range requests for saved media are answered from the cache only as whole files;
  // leave ranges to the network (hls.js requests whole segments).
  if (request.headers.has("range")) return;

  if (request.mode === "navigate") {
    const fallback = url.pathname.startsWith("/watch/") ? "/ui/watch.html" : "/ui/index.html";
    event.respondWith(networkFirst(request, { fallback }));
  } else if (url.pathname.startsWith("/media/")) {
    event.respondWith(cacheFirst(request));
  } else if (url.pathname.startsWith("/v/") || url.pathname.startsWith("/api/videos/")) {
    event.respondWith(savedFallback(request));
  } else if (url.pathname === "/ui/vendor/hls.min.js") {
    // Pinned third-party file: serve the cached copy at once, refresh it in the background.
    event.respondWith(
      caches.match(request).then((cached) => {
        const fresh = fetch(request).then((response) => {
          if (response.ok) {
            const copy = response.clone();
            caches
              .open(SHELL_CACHE)
              .then((c) => c.put(request, copy))
              .catch(() => {});
          }
          return response;
        });
        if (cached) {
          fresh.catch(() => {});
          return cached;
        }
        return fresh;
      }),
    );
  } else if (isShell(url)) {
    event.respondWith(networkFirst(request, { cacheName: SHELL_CACHE }));
  }
});
