"""The nginx exporter's pure parts: access-log lines, stub_status, hit ratio, log tailing."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kubevod.nginx_exporter import (
    LOG_FORMAT,
    AccessRecord,
    CacheStats,
    LogTailer,
    NginxCollector,
    StubStatus,
    cache_label,
    hit_ratio,
    parse_access_line,
    parse_stub_status,
)

LINE = (
    '{"time":"2026-11-24T21:00:00+00:00","status":"200","cache":"HIT","method":"GET",'
    '"uri":"/media/videos/a/720p/1.m4s","bytes":"123456","request_time":"0.002"}'
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (LINE, AccessRecord(200, "HIT", "/media/videos/a/720p/1.m4s", 123456, 0.002)),
        # nginx writes "-" for a location without cache and for missing values
        (
            '{"status":"200","cache":"","uri":"/v/a/master.m3u8","bytes":"0","request_time":"-"}',
            AccessRecord(200, "NONE", "/v/a/master.m3u8", 0, None),
        ),
        ('{"status":"404","cache":"miss","uri":"/x"}', AccessRecord(404, "MISS", "/x", 0, None)),
        ('{"status":"200","cache":"-","uri":"/"}', AccessRecord(200, "NONE", "/", 0, None)),
        # a syslog header in front (access_log syslog:server=...)
        (
            '<190>Nov 24 21:00:00 nginx: {"status":"206","cache":"STALE","bytes":"10"}',
            AccessRecord(206, "STALE", "", 10, None),
        ),
        ("", None),
        ("127.0.0.1 - - [24/Nov/2026] GET / 200", None),
        ("{not json", None),
        ("[1, 2]", None),
    ],
)
def test_parse_access_line(line: str, expected: AccessRecord | None) -> None:
    assert parse_access_line(line) == expected


@pytest.mark.parametrize(
    ("value", "label"),
    [
        ("HIT", "HIT"),
        ("hit", "HIT"),
        ("REVALIDATED", "REVALIDATED"),
        ("BYPASS", "BYPASS"),
        ("-", "NONE"),
        ("", "NONE"),
        (None, "NONE"),
        ("WEIRD", "NONE"),
    ],
)
def test_cache_label(value: str | None, label: str) -> None:
    assert cache_label(value) == label


def test_log_format_is_the_json_the_parser_reads() -> None:
    assert "$upstream_cache_status" in LOG_FORMAT and "escape=json" in LOG_FORMAT
    body = LOG_FORMAT.split("'")[1]
    sample = body.replace("$status", "200").replace("$upstream_cache_status", "MISS")
    record = parse_access_line(sample.replace("$body_bytes_sent", "5").replace("$", ""))
    assert record is not None and record.cache == "MISS" and record.status == 200


# nginx's exact layout, trailing spaces included
STUB = (
    "Active connections: 3 \n"
    "server accepts handled requests\n"
    " 17 16 42 \n"
    "Reading: 0 Writing: 1 Waiting: 2 \n"
)


def test_parse_stub_status() -> None:
    assert parse_stub_status(STUB) == StubStatus(3, 17, 16, 42, 0, 1, 2)


def test_parse_stub_status_rejects_other_pages() -> None:
    with pytest.raises(ValueError, match="stub_status"):
        parse_stub_status("<html>404</html>")


@pytest.mark.parametrize(
    ("requests", "ratio"),
    [
        ({}, None),
        ({"NONE": 10}, None),  # no cache lookups at all
        ({"HIT": 3, "MISS": 1}, 0.75),
        ({"HIT": 1, "STALE": 1, "UPDATING": 1, "REVALIDATED": 1, "MISS": 2, "EXPIRED": 2}, 0.5),
        ({"BYPASS": 1, "HIT": 1, "NONE": 100}, 0.5),
        ({"MISS": 4}, 0.0),
    ],
)
def test_hit_ratio_counts_stale_and_revalidated_as_served_from_cache(
    requests: dict[str, int], ratio: float | None
) -> None:
    assert hit_ratio(requests) == ratio


def test_tailer_reads_only_new_complete_lines_and_survives_rotation(tmp_path: Path) -> None:
    log = tmp_path / "access.json"
    log.write_text("old line before start\n")
    tailer = LogTailer(log)
    assert tailer.read_lines() == []
    with log.open("a") as handle:
        handle.write("one\ntw")
    assert tailer.read_lines() == ["one"]
    with log.open("a") as handle:
        handle.write("o\nthree\n")
    assert tailer.read_lines() == ["two", "three"]
    log.rename(tmp_path / "access.json.1")  # logrotate: a new file appears
    log.write_text("four\n")
    assert tailer.read_lines() == ["four"]
    log.write_text("")  # copytruncate: seen once the file is shorter than what was read
    with log.open("a") as handle:
        handle.write("5\n")
    assert tailer.read_lines() == ["5"]


def test_tailer_of_a_file_that_appears_later_reads_it_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "later.json"
    tailer = LogTailer(log)
    assert tailer.read_lines() == []
    log.write_text("first\n")
    assert tailer.read_lines() == ["first"]


def scrape(registry: CollectorRegistry) -> dict[str, float]:
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            key = sample.name + "".join(f"{{{k}={v}}}" for k, v in sorted(sample.labels.items()))
            samples[key] = sample.value
    return samples


def test_collector_exposes_requests_bytes_and_ratio(tmp_path: Path) -> None:
    log = tmp_path / "access.json"
    log.write_text("")
    registry = CollectorRegistry()
    registry.register(NginxCollector(CacheStats(), access_log=log))
    assert math.isnan(scrape(registry)["kubevod_nginx_cache_hit_ratio"])

    with log.open("a") as handle:
        handle.write(LINE + "\n")
        handle.write(LINE.replace('"HIT"', '"MISS"') + "\n")
        handle.write(LINE.replace('"HIT"', '"HIT"') + "\n")
        handle.write(LINE.replace('"HIT"', '""') + "\n")
    samples = scrape(registry)
    assert samples["kubevod_nginx_cache_requests_total{status=HIT}"] == 2
    assert samples["kubevod_nginx_cache_requests_total{status=MISS}"] == 1
    assert samples["kubevod_nginx_cache_requests_total{status=NONE}"] == 1
    assert samples["kubevod_nginx_cache_requests_total{status=STALE}"] == 0
    assert samples["kubevod_nginx_cache_sent_bytes_total{status=HIT}"] == 2 * 123456
    assert samples["kubevod_nginx_cache_hit_ratio"] == pytest.approx(2 / 3)
    assert "kubevod_nginx_up" not in samples, "no stub_status asked for"
    # a second scrape reads nothing twice
    assert scrape(registry)["kubevod_nginx_cache_requests_total{status=HIT}"] == 2


def test_unreachable_stub_status_reads_as_down() -> None:
    registry = CollectorRegistry()
    registry.register(NginxCollector(CacheStats(), stub_status_url="http://127.0.0.1:9/status"))
    assert scrape(registry)["kubevod_nginx_up"] == 0
