"""Run every benchmark in turn: ``python -m bench`` (what ``make bench`` does).

Each benchmark prints ratios against a baseline measured side by side in the
same run and writes its section of docs/benchmarks-*.md. Pass names to run a
subset: ``python -m bench transcode api_manifests``.
"""

from __future__ import annotations

import importlib
import sys
import time

ALL = (
    "transcode", "api_manifests", "startup", "nginx_cache", "viewers", "tracing_overhead", "fetch",
    "passthrough", "uvicorn_impl", "chunks", "on_demand",
)  # fmt: skip


def main(argv: list[str]) -> int:
    names = argv or list(ALL)
    failed: list[str] = []
    for name in names:
        if name not in ALL:
            print(f"unknown benchmark {name!r}; choose from {', '.join(ALL)}", file=sys.stderr)
            return 2
        print(f"== bench.{name}", flush=True)
        start = time.monotonic()
        module = importlib.import_module(f"bench.{name}")
        saved = sys.argv
        sys.argv = [f"bench.{name}"]
        try:
            result = module.main()
        except SystemExit as exit_:
            result = exit_.code
        finally:
            sys.argv = saved
        if result not in (None, 0):
            failed.append(name)
        print(f"== bench.{name} done in {time.monotonic() - start:.0f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
