// "Save for offline": copy one quality of a finished video (a one-variant master playlist,
// its media playlists, init and media segments, poster, thumbnails, captions and metadata)
// into a Cache Storage cache that the service worker (sw.js) answers from when offline.
import { offlineCacheName, offlineMarkerUrl, playbackUrls } from "./common.js";

/** Attributes of an HLS tag line: `#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS="a,b"` -> {BANDWIDTH:"1",...}. */
export function parseAttributes(line) {
  const attrs = {};
  const body = line.slice(line.indexOf(":") + 1);
  const re = /([A-Z0-9-]+)=("[^"]*"|[^,]*)/g;
  let m;
  while ((m = re.exec(body))) attrs[m[1]] = m[2].startsWith('"') ? m[2].slice(1, -1) : m[2];
  return attrs;
}

/** Split a master playlist into header lines, EXT-X-MEDIA renditions and variants. */
export function parseMaster(text, baseUrl) {
  const lines = text
    .replace(/\r\n?/g, "\n")
    .split("\n")
    .map((l) => l.trim());
  const header = [];
  const media = [];
  const variants = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith("#EXT-X-MEDIA:")) {
      const attrs = parseAttributes(line);
      media.push({ line, attrs, url: attrs.URI ? new URL(attrs.URI, baseUrl).href : null });
    } else if (line.startsWith("#EXT-X-STREAM-INF:")) {
      let j = i + 1;
      while (j < lines.length && (!lines[j] || lines[j].startsWith("#"))) j++;
      const attrs = parseAttributes(line);
      const [w, hgt] = (attrs.RESOLUTION || "0x0").split("x").map(Number);
      variants.push({
        line,
        uri: lines[j],
        url: new URL(lines[j], baseUrl).href,
        attrs,
        bandwidth: +attrs.BANDWIDTH || 0,
        width: w,
        height: hgt,
      });
      i = j;
    } else if (line === "#EXTM3U" || /^#EXT-X-(VERSION|INDEPENDENT-SEGMENTS|START)/.test(line)) {
      header.push(line);
    }
  }
  return { header, media, variants };
}

/** A master playlist that offers only `variant` (and the renditions of its groups). */
export function singleVariantMaster(parsed, variant) {
  const groups = new Set([variant.attrs.AUDIO, variant.attrs.SUBTITLES].filter(Boolean));
  const media = parsed.media.filter((m) => groups.has(m.attrs["GROUP-ID"]) && m.attrs.TYPE !== "SUBTITLES");
  const line = variant.line.replace(/,SUBTITLES="[^"]*"/, "");
  return [...parsed.header, ...media.map((m) => m.line), line, variant.uri, ""].join("\n");
}

/** Absolute URLs of the init section(s) and segments of a media playlist; throws if not final. */
export function mediaPlaylistUrls(text, baseUrl) {
  const urls = [];
  if (!/^#EXT-X-ENDLIST/m.test(text)) throw new Error("This video is still being transcoded.");
  for (const raw of text.replace(/\r\n?/g, "\n").split("\n")) {
    const line = raw.trim();
    if (line.startsWith("#EXT-X-MAP:")) {
      const uri = parseAttributes(line).URI;
      if (uri) urls.push(new URL(uri, baseUrl).href);
    } else if (line && !line.startsWith("#")) {
      urls.push(new URL(line, baseUrl).href);
    }
  }
  return [...new Set(urls)];
}

async function fetchOk(url, signal) {
  const resp = await fetch(url, { signal, cache: "no-store" });
  if (!resp.ok) throw new Error(`Download failed (${resp.status}) for ${new URL(url).pathname}`);
  return resp;
}

/** The variants of a video's master playlist, highest first (for the save menu). */
export async function offlineChoices(video, signal) {
  const masterUrl = new URL(playbackUrls(video).hls, location.href).href;
  const parsed = parseMaster(await (await fetchOk(masterUrl, signal)).text(), masterUrl);
  return { masterUrl, parsed, variants: [...parsed.variants].sort((a, b) => b.bandwidth - a.bandwidth) };
}

/**
 * Save `variant` of `video` for offline viewing.
 * onProgress(doneBytes, totalBytesEstimate, doneFiles, totalFiles) is called as files arrive.
 * Returns the marker record {video, rendition, bytes, savedAt}.
 */
export async function saveForOffline(video, choice, variant, { onProgress = () => {}, signal } = {}) {
  const cache = await caches.open(offlineCacheName(video.id));
  const put = (url, body, type) => cache.put(url, new Response(body, { headers: { "Content-Type": type } }));
  try {
    const playlists = [variant.url];
    const groups = new Set([variant.attrs.AUDIO].filter(Boolean));
    for (const m of choice.parsed.media)
      if (m.url && groups.has(m.attrs["GROUP-ID"]) && m.attrs.TYPE === "AUDIO") playlists.push(m.url);

    const files = [];
    const texts = new Map();
    for (const url of playlists) {
      const text = await (await fetchOk(url, signal)).text();
      texts.set(url, text);
      files.push(...mediaPlaylistUrls(text, url));
    }
    const abs = (u) => (u ? new URL(u, location.href).href : null);
    const urls = playbackUrls(video);
    const trickVtt = abs(urls.trickplay);
    const extras = [abs(urls.poster), trickVtt, ...urls.subtitles.map((s) => abs(s.url))].filter(Boolean);
    const all = [...new Set([...files, ...extras])];
    const duration = video.duration || 0;
    const estimate = Math.max(1, (variant.bandwidth * duration) / 8);
    let bytes = 0;
    let done = 0;
    const queue = [...all];
    const worker = async () => {
      while (queue.length) {
        const url = queue.shift();
        let resp;
        try {
          resp = await fetchOk(url, signal);
        } catch (err) {
          if (extras.includes(url) && err.name !== "AbortError") continue; // optional extras
          throw err;
        }
        const blob = await resp.blob();
        await cache.put(
          url,
          new Response(blob, {
            headers: { "Content-Type": resp.headers.get("Content-Type") || "application/octet-stream" },
          }),
        );
        if (url === trickVtt) {
          const { parseThumbnailVtt } = await import("./trickplay.js");
          for (const cue of parseThumbnailVtt(await blob.text(), url))
            if (!all.includes(cue.url)) all.push(cue.url), queue.push(cue.url), extras.push(cue.url);
        }
        bytes += blob.size;
        done += 1;
        onProgress(bytes, Math.max(estimate, bytes), done, all.length);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);

    for (const [url, text] of texts) await put(url, text, "application/vnd.apple.mpegurl");
    await put(choice.masterUrl, singleVariantMaster(choice.parsed, variant), "application/vnd.apple.mpegurl");
    await put(
      new URL(`/api/videos/${encodeURIComponent(video.id)}`, location.href).href,
      JSON.stringify(video),
      "application/json",
    );
    const record = {
      video,
      rendition: variant.height ? `${variant.height}p` : `${Math.round(variant.bandwidth / 1000)}k`,
      bytes,
      savedAt: new Date().toISOString(),
    };
    await put(offlineMarkerUrl(video.id), JSON.stringify(record), "application/json");
    if (navigator.storage?.persist) navigator.storage.persist().catch(() => {});
    return record;
  } catch (err) {
    await caches.delete(offlineCacheName(video.id));
    throw err;
  }
}

/** The marker record of a saved video, or null. */
export async function offlineRecord(videoId) {
  if (!("caches" in window)) return null;
  const resp = await caches.match(offlineMarkerUrl(videoId), { cacheName: offlineCacheName(videoId) });
  return resp ? resp.json() : null;
}

export function removeOffline(videoId) {
  return caches.delete(offlineCacheName(videoId));
}
