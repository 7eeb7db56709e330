// Quality-of-experience beacons (POST /api/qoe, kubevod.models.QoeBeacon): startup time,
// rebuffer count and time, watch time, bitrate switches, errors. Totals are cumulative per
// session (the server keeps the latest beacon of each session), sent every 30 s, when the
// page is hidden, and on pagehide with navigator.sendBeacon.

const ENDPOINT = "/api/qoe";

function sessionId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export class QoeReporter {
  constructor(videoId, { intervalMs = 30_000 } = {}) {
    this.videoId = videoId;
    this.session = sessionId();
    this.startupMs = null;
    this.rebufferCount = 0;
    this.rebufferMs = 0;
    this.watchMs = 0;
    this.switches = 0;
    this.errors = [];
    this.rendition = null;
    this.stallStart = null;
    this.playingSince = null;
    this.lastSent = "";
    this.timer = setInterval(() => this.send(), intervalMs);
    const flush = () => this.send({ final: true });
    addEventListener("pagehide", flush);
    document.addEventListener("visibilitychange", () => document.visibilityState === "hidden" && flush());
  }

  /** Follow a <video> element's events. */
  attach(video) {
    // Times count from navigation start (performance.timeOrigin): navigation-to-first-frame.
    const firstFrame = (at) => {
      if (this.startupMs !== null) return;
      this.startupMs = Math.round(at);
      this.send();
    };
    // The first frame is the first one composited while playing; rVFC gives its exact time.
    const watchFrames = () =>
      video.requestVideoFrameCallback((now, meta) => {
        if (video.paused || meta.mediaTime === undefined) return watchFrames();
        firstFrame(meta.presentationTime || now);
      });
    if ("requestVideoFrameCallback" in video) watchFrames();
    video.addEventListener("playing", () => {
      if (this.startupMs === null && !("requestVideoFrameCallback" in video)) firstFrame(performance.now());
      this.endStall();
      this.playingSince = performance.now();
    });
    video.addEventListener("waiting", () => {
      this.accrueWatch();
      // A stall after startup that the viewer did not cause by seeking is a rebuffer.
      if (this.startupMs !== null && !video.seeking && !video.ended && this.stallStart === null) {
        this.stallStart = performance.now();
        this.rebufferCount += 1;
      }
    });
    video.addEventListener("seeking", () => {
      // Time spent waiting for a seek is not a rebuffer.
      if (this.stallStart !== null) {
        this.rebufferCount = Math.max(0, this.rebufferCount - 1);
        this.stallStart = null;
      }
    });
    for (const type of ["pause", "ended"]) video.addEventListener(type, () => this.accrueWatch());
    video.addEventListener("error", () => {
      const err = video.error;
      if (err) this.noteError(`media:${err.code}${err.message ? ` ${err.message}` : ""}`);
    });
  }

  endStall() {
    if (this.stallStart !== null) {
      this.rebufferMs += performance.now() - this.stallStart;
      this.stallStart = null;
    }
  }

  accrueWatch() {
    if (this.playingSince !== null) {
      this.watchMs += performance.now() - this.playingSince;
      this.playingSince = null;
    }
  }

  noteSwitch(rendition) {
    if (this.rendition !== null && rendition !== this.rendition) this.switches += 1;
    this.rendition = rendition;
  }

  noteError(message) {
    if (this.errors.length < 20) this.errors.push(String(message).slice(0, 200));
  }

  /** The beacon body (QoeBeacon). */
  payload() {
    const now = performance.now();
    const stalled = this.stallStart !== null ? now - this.stallStart : 0;
    const playing = this.playingSince !== null ? now - this.playingSince : 0;
    return {
      video_id: this.videoId,
      session: this.session,
      startup_ms: this.startupMs,
      rebuffer_count: this.rebufferCount,
      rebuffer_ms: Math.round(this.rebufferMs + stalled),
      watch_ms: Math.round(this.watchMs + playing),
      switches: this.switches,
      errors: this.errors.slice(0, 20),
      rendition: this.rendition ? String(this.rendition).slice(0, 32) : null,
    };
  }

  /** Send the current totals unless nothing changed since the last beacon. */
  send({ final = false } = {}) {
    const body = this.payload();
    if (body.startup_ms === null && !body.errors.length) return;
    const text = JSON.stringify(body);
    if (text === this.lastSent) return;
    this.lastSent = text;
    const blob = new Blob([text], { type: "application/json" });
    if (final && navigator.sendBeacon?.(ENDPOINT, blob)) return;
    fetch(ENDPOINT, {
      method: "POST",
      body: text,
      headers: { "Content-Type": "application/json" },
      keepalive: true,
    }).catch(() => {});
  }
}
