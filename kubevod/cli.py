"""The ``kubevod`` command line: local mode, the library from the terminal, and the demo.

``serve`` runs everything in one process; ``add``/``list``/``show``/``rm`` talk
to a running server (``--server``, ``KUBEVOD_SERVER``, or the one recorded in
``<data>/server.json``) and otherwise work on the data folder directly.
Reasons for failures are one line on stderr, and the exit code is non-zero.

Start-up time counts (``kubevod add`` is timed to a playable video, bench/startup.py):
what only some commands need (tables, the server, the transcoder, the version) is
imported inside them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from kubevod.errors import InvalidInput, KubevodError, NotFound
from kubevod.local.settings import LocalSettings, load
from kubevod.models import TranscodePolicy

if TYPE_CHECKING:
    from kubevod.jobs import IngestRequest

T = TypeVar("T")

app = typer.Typer(
    name="kubevod",
    help="Self-hosted video on demand: one process on a laptop, or declarative on k3s.",
    no_args_is_help=True,
    add_completion=False,
)

Json = dict[str, Any]

DATA_HELP = "Data folder (catalog, media). [env KUBEVOD_DATA; default ~/.local/share/kubevod]"
SERVER_HELP = "URL of a running server. [env KUBEVOD_SERVER; default: the one using --data]"
CONFIG_HELP = "TOML config file. [default <data>/kubevod.toml]"
ALLOWED_HOST_HELP = (
    "Another Host name to answer to, e.g. nas.lan (repeat for more). [env KUBEVOD_ALLOWED_HOSTS]"
)
ON_DEMAND_HELP = (
    "--on-demand: register now (probe, poster, the first seconds); encode the rest when it is"
    " watched."
)
ADD_POLICY_HELP = (
    ON_DEMAND_HELP + " --eager: encode all of it now. (Default: the server's, see serve --help.)"
)
SERVE_POLICY_HELP = (
    "How videos added without --on-demand/--eager of their own are transcoded. --on-demand:"
    " register each now (probe, poster, the first seconds); encode the rest when it is watched."
    " --eager: encode each whole at once. (Env KUBEVOD_DEFAULT_POLICY; default eager. The watch"
    " folder is on demand unless KUBEVOD_WATCH_POLICY=eager.)"
)


def _version(value: bool) -> None:
    if value:
        from kubevod.__about__ import __version__

        typer.echo(f"kubevod {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """kubevod: transcode, store and stream your own videos."""


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line reason on stderr and exit non-zero."""
    typer.echo("error: " + " ".join(message.split()), err=True)
    raise typer.Exit(code)


def settings_from(config: Path | None, **flags: Any) -> LocalSettings:
    try:
        return load(flags, config_file=config)
    except InvalidInput as exc:
        fail(str(exc), 2)


def _setup_logging() -> None:
    from kubevod.logs import setup_logging
    from kubevod.telemetry import setup_telemetry

    setup_logging(service="kubevod")
    setup_telemetry("kubevod", component="local")


@app.command()
def serve(
    data: Path | None = typer.Option(None, "--data", help=DATA_HELP),
    host: str | None = typer.Option(None, "--host", help="Interface. [default 127.0.0.1]"),
    port: int | None = typer.Option(None, "--port", help="TCP port. [default 8080]"),
    watch: Path | None = typer.Option(None, "--watch", help="Add new video files from here."),
    workers: int | None = typer.Option(None, "--workers", help="Parallel transcodes. [1]"),
    allowed_host: list[str] = typer.Option([], "--allowed-host", help=ALLOWED_HOST_HELP),
    on_demand: bool | None = typer.Option(None, "--on-demand/--eager", help=SERVE_POLICY_HELP),
    config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
) -> None:
    """Run the API, the player and the transcoder in one process (Ctrl-C stops cleanly).

    Beyond loopback (--host 0.0.0.0) every change needs a token: KUBEVOD_API_TOKEN, or
    one made at start and printed once.
    """
    from kubevod.local.server import serve as run_server

    settings = settings_from(
        config,
        data=data,
        host=host,
        port=port,
        watch=watch,
        workers=workers,
        allowed_hosts=allowed_host or None,
        default_policy=_policy(on_demand),
    )
    _setup_logging()
    try:
        code = run_server(settings, echo=_say)
    except KubevodError as exc:
        fail(str(exc))
    raise typer.Exit(code)


def _say(line: str) -> None:
    typer.echo(line)
    sys.stdout.flush()


def _library(settings: LocalSettings, server: str | None) -> Any:
    from kubevod.local.client import DirectLibrary, HttpLibrary, server_url, token_for

    url = server_url(settings, server)
    if url:
        return HttpLibrary(url, token=token_for(settings, url))
    return DirectLibrary(settings.layout)


def _on_library(
    settings: LocalSettings, server: str | None, action: Callable[[Any], T], *, missing: str
) -> T:
    """Run ``action(library)`` and close the library; a failure ends the command in one line.

    Args:
        settings: where the library is (a running server or the data folder).
        server: the ``--server`` flag, if given.
        action: what to do with the open library.
        missing: the line printed when the video (or the library) does not exist.

    Returns:
        What ``action`` returned.
    """
    try:
        library = _library(settings, server)
        try:
            return action(library)
        finally:
            library.close()
    except NotFound:
        fail(missing)
    except KubevodError as exc:
        fail(str(exc))


def play_url(base: str | None, video: Json) -> str | None:
    """The link a person opens to watch ``video`` (pure)."""
    if not base:
        return None
    return f"{base}/watch/{video['id']}"


def _policy(on_demand: bool | None) -> TranscodePolicy | None:
    """The policy a ``--on-demand/--eager`` flag names (None: not given) (pure)."""
    if on_demand is None:
        return None
    return TranscodePolicy.ON_DEMAND if on_demand else TranscodePolicy.EAGER


def _source(raw: str) -> str:
    from kubevod.local.ingest import is_url

    return raw if is_url(raw) else str(Path(raw).expanduser().absolute())


@app.command()
def add(
    source: str = typer.Argument(..., help="A video file or an http(s) URL."),
    title: str = typer.Option("", "--title", help="Title. [default: the file name]"),
    tag: list[str] = typer.Option([], "--tag", help="A tag (repeat for more)."),
    server: str | None = typer.Option(None, "--server", help=SERVER_HELP),
    data: Path | None = typer.Option(None, "--data", help=DATA_HELP),
    no_wait: bool = typer.Option(False, "--no-wait", help="Return once it is registered."),
    on_demand: bool | None = typer.Option(None, "--on-demand/--eager", help=ADD_POLICY_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the video as JSON at the end."),
    config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
) -> None:
    """Add a video and show its progress until it is playable, then until it is ready.

    With --on-demand it is ready once registered (probe, poster, the first seconds);
    the rest is encoded when it is watched.
    """
    from kubevod.jobs import IngestRequest
    from kubevod.local.client import server_url

    settings = settings_from(config, data=data, server=server)
    try:
        request = IngestRequest(
            source=_source(source), title=title, tags=tag, policy=_policy(on_demand)
        )
    except ValueError as exc:
        fail(f"invalid request: {exc}", 2)
    url = server_url(settings, server)
    console = Console(stderr=as_json, highlight=False)
    try:
        final = _add_via_server(settings, url, request, console, no_wait) if url else None
        if url is None:
            final = _add_direct(settings, request, console, no_wait)
    except KubevodError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        if url:
            console.print("Stopped following; the server goes on transcoding (`kubevod list`).")
        else:
            console.print("Stopped; the video stays queued for the next `kubevod serve`.")
        raise typer.Exit(130) from None
    assert final is not None
    if final.get("state") == "ready" and not no_wait:
        link = play_url(url, final)
        console.print(f"Ready{': ' + link if link else ''}")
        if final.get("policy") == TranscodePolicy.ON_DEMAND:
            console.print("On demand: the rest is encoded when it is watched.")
    if as_json:
        typer.echo(json.dumps(final, indent=2))
    if final.get("state") == "failed":
        fail(f"{final.get('id')}: transcode failed: {final.get('message') or 'no reason given'}")


def _announce(console: Console, video: Json) -> None:
    title = video.get("title") or video["id"]
    console.print(f"{title} (id {video['id']}): {video.get('state', '?')}")


def _add_via_server(
    settings: LocalSettings, url: str, request: IngestRequest, console: Console, no_wait: bool
) -> Json:
    from kubevod.local.client import HttpLibrary, token_for
    from kubevod.local.progress import follow

    library = HttpLibrary(url, token=token_for(settings, url))
    try:
        video = library.add(request)
        _announce(console, video)
        if no_wait:
            return video
        return follow(
            lambda: library.get(video["id"]), console, play_url=lambda v: play_url(url, v)
        )
    finally:
        library.close()


def _add_direct(
    settings: LocalSettings, request: IngestRequest, console: Console, no_wait: bool
) -> Json:
    """No server runs: transcode in this process (or only register it with --no-wait)."""
    from kubevod.local.client import video_json
    from kubevod.local.progress import follow
    from kubevod.local.server import LocalRuntime

    with LocalRuntime(settings) as runtime:
        video = runtime.ingestor.ingest(request)
        _announce(console, video_json(video))
        if no_wait:
            console.print("Queued: it is transcoded when `kubevod serve` runs.")
            return video_json(video)
        runtime.pool.start()
        return follow(
            lambda: video_json(runtime.catalog.get(video.id)),
            console,
            play_url=lambda v: None,
        )


@app.command("list")
def list_videos(
    query: str | None = typer.Option(None, "--query", "-q", help="Match title or tag."),
    limit: int = typer.Option(100, "--limit", min=1, max=1000),
    offset: int = typer.Option(0, "--offset", min=0),
    as_json: bool = typer.Option(False, "--json", help="The API's page JSON: items, total..."),
    server: str | None = typer.Option(None, "--server", help=SERVER_HELP),
    data: Path | None = typer.Option(None, "--data", help=DATA_HELP),
    config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
) -> None:
    """The library as a table (or JSON)."""
    from rich.table import Table

    settings = settings_from(config, data=data, server=server)
    try:
        library = _library(settings, server)
    except NotFound:
        page: Json = {"items": [], "total": 0, "offset": offset, "limit": limit}
    except KubevodError as exc:
        fail(str(exc))
    else:
        try:
            page = library.list(query=query, limit=limit, offset=offset)
        except KubevodError as exc:
            fail(str(exc))
        finally:
            library.close()
    if as_json:
        typer.echo(json.dumps(page, indent=2))
        return
    table = Table("ID", "TITLE", "STATE", "PROGRESS", "DURATION", "TAGS", box=None)
    for video in page.get("items", []):
        table.add_row(
            str(video.get("id")),
            str(video.get("title", "")),
            str(video.get("state", "")),
            f"{float(video.get('progress') or 0):.0f}%",
            _duration(video.get("duration")),
            ", ".join(video.get("tags") or []),
        )
    Console(highlight=False).print(table)
    typer.echo(f"{page.get('total', 0)} video(s)")


def _duration(seconds: Any) -> str:
    try:
        total = round(float(seconds or 0))
    except (TypeError, ValueError):
        return "-"
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@app.command()
def show(
    video_id: str = typer.Argument(..., metavar="ID"),
    as_json: bool = typer.Option(False, "--json", help="The API's video JSON."),
    server: str | None = typer.Option(None, "--server", help=SERVER_HELP),
    data: Path | None = typer.Option(None, "--data", help=DATA_HELP),
    config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
) -> None:
    """Everything known about one video."""
    from rich.table import Table

    settings = settings_from(config, data=data, server=server)
    video, base = _on_library(
        settings,
        server,
        lambda library: (library.get(video_id), getattr(library, "url", None)),
        missing=f"no video with id {video_id!r}",
    )
    if as_json:
        typer.echo(json.dumps(video, indent=2))
        return
    table = Table(box=None, show_header=False)
    renditions = [str(r.get("name")) for r in video.get("renditions") or []]
    rows = {
        "id": video.get("id"),
        "title": video.get("title"),
        "state": video.get("state"),
        "progress": f"{float(video.get('progress') or 0):.0f}%",
        "playable": "yes" if video.get("playable") else "no",
        "policy": video.get("policy") or TranscodePolicy.EAGER,
        "duration": _duration(video.get("duration")),
        "renditions": ", ".join(renditions) or "-",
        "tags": ", ".join(video.get("tags") or []) or "-",
        "source": video.get("source"),
        "message": video.get("message") or "-",
        "watch": play_url(base, video) or "-",
    }
    for key, value in rows.items():
        table.add_row(key, str(value))
    Console(highlight=False).print(table)


@app.command()
def rm(
    video_id: str = typer.Argument(..., metavar="ID"),
    as_json: bool = typer.Option(False, "--json", help='Print {"removed": ID}.'),
    server: str | None = typer.Option(None, "--server", help=SERVER_HELP),
    data: Path | None = typer.Option(None, "--data", help=DATA_HELP),
    config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
) -> None:
    """Remove a video, its media and its transcode."""
    settings = settings_from(config, data=data, server=server)
    _on_library(
        settings,
        server,
        lambda library: library.remove(video_id),
        missing=f"no video with id {video_id!r}",
    )
    typer.echo(json.dumps({"removed": video_id}) if as_json else f"Removed {video_id}")


DEMO_SECONDS = 20


def demo_argv(ffmpeg: str, out: Path, seconds: int = DEMO_SECONDS) -> list[str]:
    """ffmpeg command of the demo video: 720p testsrc2 with a sine tone (pure)."""
    return [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=f=440:beep_factor=4:sample_rate=48000:duration={seconds}",
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-ac", "2", "-b:a", "128k", "-shortest", str(out),
    ]  # fmt: skip


def _free_port(host: str, wanted: int) -> int:
    import socket

    for port in (wanted, 0):
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    return wanted


@app.command()
def demo(
    data: Path | None = typer.Option(None, "--data", help=DATA_HELP),
    host: str | None = typer.Option(None, "--host", help="Interface. [default 127.0.0.1]"),
    port: int | None = typer.Option(None, "--port", help="TCP port. [default 8080, else free]"),
    config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
) -> None:
    """Make a short demo video and serve it on the embedded default (what `make run` does)."""
    from kubevod.jobs import IngestRequest
    from kubevod.local.server import serve as run_server

    settings = settings_from(config, data=data, host=host, port=port)
    if port is None:
        chosen = _free_port(settings.host, settings.port)
        if chosen != settings.port:
            typer.echo(f"Port {settings.port} is busy; using {chosen}.")
        settings = settings.model_copy(update={"port": chosen})
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        fail("ffmpeg is not installed: run `scripts/testenv debian` (or `make run`)")
    out = settings.data / "demo" / "kubevod-demo.mp4"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        typer.echo(f"Making a {DEMO_SECONDS} s demo video: {out}")
        tmp = out.with_name(".making-" + out.name)
        done = subprocess.run(demo_argv(ffmpeg, tmp), capture_output=True, text=True)
        if done.returncode != 0:
            fail(f"ffmpeg could not make the demo video: {done.stderr.strip()[-300:]}")
        tmp.replace(out)
    _setup_logging()
    request = IngestRequest(source=str(out), title="kubevod demo", tags=["demo"])
    try:
        code = run_server(settings, add=[request], echo=_say)
    except KubevodError as exc:
        fail(str(exc))
    raise typer.Exit(code)


if __name__ == "__main__":  # pragma: no cover
    app()
