// The parts of an on-demand video: which stretches of its timeline are encoded yet.
// The one place in the UI that turns a video's `plan` and `chunks_done` into times; the
// arithmetic is kubevod.models.MediaPlan.segments() and kubevod.timeline.plan_chunks
// (Timeline.regular) ported as they are, so a part here is exactly the server's chunk.

const EPS = 1e-6;

/** Python's round(x, 6), close enough (ties differ only at 1e-7). */
const round6 = (x) => Math.round(x * 1e6) / 1e6;

/** timeline.frame_at: the first frame of an `fps` grid at or after `seconds`. */
export function frameAt(seconds, fps) {
  return Math.max(0, Math.ceil(seconds * fps - EPS));
}

/** Timeline.regular(first, every).cuts_before(duration). */
function cutsBefore(plan, duration) {
  const every = plan.every;
  const first = Math.min(plan.first, every);
  const count = Math.max(0, Math.ceil((duration - first) / every));
  return Array.from({ length: count }, (_, k) => first + k * every);
}

/** MediaPlan.segments(): [start, duration] of every planned segment (starts from `offset`). */
export function planSegments(plan) {
  const edges = [0];
  for (const cut of cutsBefore(plan, plan.duration)) {
    const at = frameAt(cut, plan.fps) / plan.fps;
    if (at < plan.duration - EPS) edges.push(at);
  }
  edges.push(plan.duration);
  const offset = plan.offset || 0;
  return edges.slice(1).map((b, i) => [round6(offset + edges[i]), round6(b - edges[i])]);
}

/**
 * plan_chunks(plan.timeline(), duration, fps, chunk_seconds, first_chunk_seconds):
 * [{index, first, count, last}].
 */
export function planChunks(plan) {
  const { duration, fps, chunk_seconds: seconds } = plan;
  const firstSeconds = plan.first_chunk_seconds ?? null;
  if (!(seconds > 0) || !(fps > 0) || (firstSeconds !== null && !(firstSeconds > 0))) {
    throw new Error("chunk length and frame rate must be positive");
  }
  const endFrame = frameAt(duration, fps);
  const cuts = cutsBefore(plan, duration).filter((c) => frameAt(c, fps) < endFrame);
  const edges = [[0, 0]]; // [first segment, start] of each chunk
  cuts.forEach((cut, i) => {
    const least = edges.length === 1 && firstSeconds !== null ? firstSeconds : seconds;
    if (cut - edges.at(-1)[1] >= least - EPS) edges.push([i + 1, cut]);
  });
  if (edges.length > 1 && duration - edges.at(-1)[1] < seconds / 2) edges.pop();
  const total = cuts.length + 1;
  return edges.map(([first], i) => {
    const count = (i + 1 < edges.length ? edges[i + 1][0] : total) - first;
    return { index: i, first, count, last: first + count - 1 };
  });
}

/**
 * Every chunk with its span on the player's clock, [start, end) in seconds: from the
 * start of its first segment to the end of its last. The player counts from the
 * playlist's first segment, so the plan's `offset` is taken off.
 */
export function chunkSpans(plan) {
  const segments = planSegments(plan);
  const offset = plan.offset || 0;
  const startOf = (i) => (i < segments.length ? segments[i][0] - offset : plan.duration);
  return planChunks(plan).map((c) => ({
    ...c,
    start: round6(startOf(c.first)),
    end: c.last + 1 < segments.length ? round6(startOf(c.last + 1)) : plan.duration,
  }));
}

const cache = new WeakMap();

/**
 * The parts of a ready on-demand video that is not complete yet, or null (eager, complete,
 * still registering, or no plan): {total, done (chunk indices encoded), chunks (every chunk's span),
 * encoded (the encoded spans, neighbours merged: [{start, end, first, last}])}.
 */
export function videoParts(video) {
  const plan = video?.plan;
  if (!plan || video.policy !== "onDemand" || video.state !== "ready") return null;
  let chunks = cache.get(plan);
  if (!chunks) {
    try {
      chunks = chunkSpans(plan);
    } catch {
      return null;
    }
    cache.set(plan, chunks);
  }
  const doneSet = new Set((video.chunks_done || []).filter((i) => i >= 0 && i < chunks.length));
  if (doneSet.size >= chunks.length) return null; // complete: the whole video exists
  const encoded = [];
  for (const c of chunks) {
    if (!doneSet.has(c.index)) continue;
    const last = encoded.at(-1);
    if (last && last.last === c.index - 1) Object.assign(last, { end: c.end, last: c.index });
    else encoded.push({ start: c.start, end: c.end, first: c.index, last: c.index });
  }
  return { total: chunks.length, done: [...doneSet].sort((a, b) => a - b), chunks, encoded };
}

/** The chunk whose span holds time `t` (the last one for `t` at or past the end). */
export function chunkAt(parts, t) {
  const { chunks } = parts;
  let lo = 0;
  let hi = chunks.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (chunks[mid].start <= t + EPS) lo = mid;
    else hi = mid - 1;
  }
  return chunks[lo];
}

/**
 * Whether time `t` of the video is encoded (always, for a video that is not on demand). An
 * on-demand video still registering has only the chunks its registration recorded so far.
 */
export function encodedAt(video, t) {
  const registering = video?.policy === "onDemand" && video.state === "transcoding";
  const parts = videoParts(registering ? { ...video, state: "ready" } : video);
  return !parts || parts.done.includes(chunkAt(parts, t).index);
}

/** "3 of 8 parts encoded". */
export function partsText(parts) {
  return `${parts.done.length} of ${parts.total} ${parts.total === 1 ? "part" : "parts"} encoded`;
}
