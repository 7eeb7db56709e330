// Seek-bar thumbnails: parse the trickplay WebVTT (cues whose text is `sprite.jpg#xywh=x,y,w,h`)
// and answer "which tile shows time t".

/** Seconds from a WebVTT timestamp ("01:02.500" or "1:01:02.500"). */
export function parseTimestamp(text) {
  const parts = text.trim().split(":").map(Number);
  if (parts.some((p) => !Number.isFinite(p))) return NaN;
  return parts.reduce((acc, p) => acc * 60 + p, 0);
}

/**
 * Parse a thumbnails VTT into cues {start, end, url, x, y, w, h}; relative sprite URLs are
 * resolved against `baseUrl` (the VTT's own URL) and keep its query (a signed-URL token).
 */
export function parseThumbnailVtt(text, baseUrl) {
  const cues = [];
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  for (let i = 0; i < lines.length; i++) {
    const timing = lines[i].match(/^\s*([\d:.]+)\s+-->\s+([\d:.]+)/);
    if (!timing) continue;
    const target = (lines[i + 1] || "").trim();
    if (!target) continue;
    const [file, fragment = ""] = target.split("#");
    const xywh = fragment.match(/xywh=(\d+),(\d+),(\d+),(\d+)/);
    const resolved = new URL(file, baseUrl);
    // A relative sheet is the same video's: the VTT's signed query covers it too (docs/architecture.md §7).
    const relative = !/^([a-z][a-z0-9+.-]*:|\/)/i.test(file);
    if (relative && !resolved.search) resolved.search = new URL(baseUrl).search;
    const url = resolved.href;
    const cue = { start: parseTimestamp(timing[1]), end: parseTimestamp(timing[2]), url };
    if (xywh) Object.assign(cue, { x: +xywh[1], y: +xywh[2], w: +xywh[3], h: +xywh[4] });
    if (Number.isFinite(cue.start) && Number.isFinite(cue.end)) cues.push(cue);
  }
  return cues.sort((a, b) => a.start - b.start);
}

export class Trickplay {
  constructor(vttUrl) {
    this.vttUrl = new URL(vttUrl, location.href).href;
    this.cues = [];
    this.loaded = new Set(); // sprite URLs fully decoded
    this.ready = null;
  }

  /** Fetch and parse the VTT once; never rejects (no thumbnails is not an error). */
  load() {
    this.ready ??= fetch(this.vttUrl)
      .then((resp) => (resp.ok ? resp.text() : ""))
      .then((text) => {
        this.cues = parseThumbnailVtt(text, this.vttUrl);
        return this.cues.length > 0;
      })
      .catch(() => false);
    return this.ready;
  }

  /** Decode every sprite sheet in the background so hovering shows tiles at once. */
  preloadSprites() {
    for (const url of new Set(this.cues.map((c) => c.url))) {
      if (this.loaded.has(url)) continue;
      const img = new Image();
      img.decoding = "async";
      img.onload = () => this.loaded.add(url);
      img.src = url;
    }
  }

  /** The cue covering time `t`, else the last one before it (binary search); null if none. */
  at(t) {
    const cues = this.cues;
    let lo = 0;
    let hi = cues.length - 1;
    let best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (cues[mid].start <= t) {
        best = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return best >= 0 ? cues[best] : cues[0] || null;
  }
}
