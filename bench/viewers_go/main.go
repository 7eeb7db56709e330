// Command viewers is a light load generator for the cache tier: N simulated
// HLS viewers, each playing like bench/viewers.py's client does, on one
// keep-alive HTTP/1.1 connection each. It prints one JSON object with counts
// and time-to-first-byte percentiles (ms).
//
// Each viewer waits a uniform random time in [0, ramp), fetches the master
// playlist, picks a video rung at random, fetches its media playlist and the
// audio playlist, both init segments, then one video + one audio segment every
// 4 s (real-time pace) from a random position, for -segments segments. TTFB is
// measured from writing the request to reading the status line, as in
// bench/viewers.py. Only the standard library is used; it talks to loopback only.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const segmentSeconds = 4 * time.Second

type conn struct {
	addr, host string
	c          net.Conn
	r          *bufio.Reader
	w          *bufio.Writer
}

// get returns the status, the body (if keep) and the time to first byte.
func (h *conn) get(path string, keep bool) (int, []byte, time.Duration, error) {
	if h.c == nil {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			return 0, nil, 0, err
		}
		h.c, h.r, h.w = c, bufio.NewReaderSize(c, 64<<10), bufio.NewWriter(c)
	}
	started := time.Now()
	fmt.Fprintf(h.w, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, h.host)
	if err := h.w.Flush(); err != nil {
		return 0, nil, 0, err
	}
	line, err := h.r.ReadString('\n')
	ttfb := time.Since(started)
	if err != nil {
		return 0, nil, ttfb, err
	}
	fields := strings.Fields(line)
	if len(fields) < 2 {
		return 0, nil, ttfb, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(fields[1])
	if err != nil {
		return 0, nil, ttfb, err
	}
	length, chunked := int64(0), false
	for {
		l, err := h.r.ReadString('\n')
		if err != nil {
			return status, nil, ttfb, err
		}
		if l == "\r\n" || l == "\n" {
			break
		}
		name, value, _ := strings.Cut(l, ":")
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "content-length":
			length, err = strconv.ParseInt(value, 10, 64)
			if err != nil {
				return status, nil, ttfb, err
			}
		case "transfer-encoding":
			chunked = strings.Contains(strings.ToLower(value), "chunked")
		}
	}
	var sink io.Writer = io.Discard
	var body strings.Builder
	if keep {
		sink = &body
	}
	if chunked {
		for {
			l, err := h.r.ReadString('\n')
			if err != nil {
				return status, nil, ttfb, err
			}
			size, err := strconv.ParseInt(strings.TrimSpace(strings.SplitN(l, ";", 2)[0]), 16, 64)
			if err != nil {
				return status, nil, ttfb, err
			}
			if size == 0 {
				if _, err := h.r.ReadString('\n'); err != nil {
					return status, nil, ttfb, err
				}
				break
			}
			if _, err := io.CopyN(sink, h.r, size); err != nil {
				return status, nil, ttfb, err
			}
			if _, err := h.r.ReadString('\n'); err != nil {
				return status, nil, ttfb, err
			}
		}
	} else if length > 0 {
		if _, err := io.CopyN(sink, h.r, length); err != nil {
			return status, nil, ttfb, errors.New("connection closed mid-body")
		}
	}
	return status, []byte(body.String()), ttfb, nil
}

func (h *conn) close() {
	if h.c != nil {
		h.c.Close()
	}
}

type stats struct {
	mu       sync.Mutex
	segment  []time.Duration
	manifest []time.Duration
	errors   []string
	segPaths map[string]struct{}
}

func playlistURIs(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

func tagURIs(text, tag string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, tag) && strings.Contains(line, `URI="`) {
			rest := strings.SplitN(line, `URI="`, 2)[1]
			out = append(out, strings.SplitN(rest, `"`, 2)[0])
		}
	}
	return out
}

func join(base, ref string) string {
	b, err := url.Parse(base)
	if err != nil {
		return ref
	}
	r, err := url.Parse(ref)
	if err != nil {
		return ref
	}
	return b.ResolveReference(r).String()
}

func viewer(addr, host, videoID string, st *stats, segments int, ramp time.Duration, rng *rand.Rand) {
	if ramp > 0 {
		time.Sleep(time.Duration(rng.Float64() * float64(ramp)))
	}
	h := &conn{addr: addr, host: host}
	defer h.close()
	fail := func(err error) { st.mu.Lock(); st.errors = append(st.errors, err.Error()); st.mu.Unlock() }
	manifest := func(path string) (string, error) {
		status, body, ttfb, err := h.get(path, true)
		if err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		st.mu.Lock()
		st.manifest = append(st.manifest, ttfb)
		st.mu.Unlock()
		if status != 200 {
			return "", fmt.Errorf("%s: %d", path, status)
		}
		return string(body), nil
	}
	media := func(path string) error {
		status, _, ttfb, err := h.get(path, false)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if status != 200 {
			return fmt.Errorf("%s: %d", path, status)
		}
		st.mu.Lock()
		st.segment = append(st.segment, ttfb)
		st.segPaths[path] = struct{}{}
		st.mu.Unlock()
		return nil
	}
	masterPath := "/v/" + videoID + "/master.m3u8"
	master, err := manifest(masterPath)
	if err != nil {
		fail(err)
		return
	}
	variants, audios := playlistURIs(master), tagURIs(master, "#EXT-X-MEDIA:TYPE=AUDIO")
	if len(variants) == 0 || len(audios) == 0 {
		fail(fmt.Errorf("%s: no variant or audio playlist", masterPath))
		return
	}
	variant := join(masterPath, variants[rng.Intn(len(variants))])
	audio := join(masterPath, audios[0])
	videoPL, err := manifest(variant)
	if err != nil {
		fail(err)
		return
	}
	audioPL, err := manifest(audio)
	if err != nil {
		fail(err)
		return
	}
	var videoSegs, audioSegs []string
	for _, u := range playlistURIs(videoPL) {
		videoSegs = append(videoSegs, join(variant, u))
	}
	for _, u := range playlistURIs(audioPL) {
		audioSegs = append(audioSegs, join(audio, u))
	}
	for _, pl := range [][2]string{{videoPL, variant}, {audioPL, audio}} {
		maps := tagURIs(pl[0], "#EXT-X-MAP")
		if len(maps) == 0 {
			fail(fmt.Errorf("%s: no EXT-X-MAP", pl[1]))
			return
		}
		if err := media(join(pl[1], maps[0])); err != nil {
			fail(err)
			return
		}
	}
	if len(videoSegs)-segments <= 0 || len(audioSegs) < len(videoSegs) {
		fail(fmt.Errorf("%s: %d segments, %d wanted", variant, len(videoSegs), segments))
		return
	}
	first := rng.Intn(len(videoSegs) - segments)
	began := time.Now()
	for k := 0; k < segments; k++ {
		if err := media(videoSegs[first+k]); err != nil {
			fail(err)
			return
		}
		if err := media(audioSegs[first+k]); err != nil {
			fail(err)
			return
		}
		if d := time.Until(began.Add(time.Duration(k+1) * segmentSeconds)); d > 0 {
			time.Sleep(d)
		}
	}
}

// pct is Python's statistics.quantiles(values, n=100, method="inclusive")[p-1], in ms.
func pct(values []time.Duration, p int) float64 {
	if len(values) == 0 {
		return -1
	}
	s := make([]float64, len(values))
	for i, v := range values {
		s[i] = float64(v) / float64(time.Millisecond)
	}
	sort.Float64s(s)
	if len(s) == 1 {
		return s[0]
	}
	m := len(s) - 1
	j := p * m / 100
	delta := float64(p*m - j*100)
	if j+1 >= len(s) {
		return s[len(s)-1]
	}
	return (s[j]*(100-delta) + s[j+1]*delta) / 100
}

func main() {
	port := flag.Int("port", 0, "cache tier port on 127.0.0.1")
	host := flag.String("host", "kubevod.local", "Host header")
	videoID := flag.String("video", "viewers", "video id")
	viewers := flag.Int("viewers", 1000, "simulated viewers")
	segments := flag.Int("segments", 8, "video + audio segments per viewer")
	ramp := flag.Float64("ramp", 4.0, "seconds over which viewers join")
	seed := flag.Int64("seed", 7, "random seed")
	flag.Parse()
	if *port == 0 {
		fmt.Fprintln(os.Stderr, "viewers: -port is required")
		os.Exit(2)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(*port))
	st := &stats{segPaths: map[string]struct{}{}}
	root := rand.New(rand.NewSource(*seed))
	var wg sync.WaitGroup
	began := time.Now()
	for i := 0; i < *viewers; i++ {
		rng := rand.New(rand.NewSource(root.Int63()))
		wg.Add(1)
		go func() {
			defer wg.Done()
			viewer(addr, *host, *videoID, st, *segments, time.Duration(*ramp*float64(time.Second)), rng)
		}()
	}
	wg.Wait()
	wall := time.Since(began).Seconds()
	out := map[string]any{
		"client": "go", "viewers": *viewers, "segments": *segments, "wall_s": wall,
		"errors": st.errors, "segment_requests": len(st.segment),
		"distinct_segments": len(st.segPaths), "manifest_requests": len(st.manifest),
		"seg_p50": pct(st.segment, 50), "seg_p99": pct(st.segment, 99),
		"man_p50": pct(st.manifest, 50), "man_p99": pct(st.manifest, 99),
	}
	if st.errors == nil {
		out["errors"] = []string{}
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
