"""examples/media_publisher.py and media_recorder.py: real media, end to end, through a server."""

from __future__ import annotations

import asyncio
import fractions
import json
import os
import signal
import sys
from pathlib import Path

import pytest

av = pytest.importorskip("av", reason="the media extra is not installed")

from roomsignal.server import SignalingServer  # noqa: E402
from roomsignal.tokens import mint  # noqa: E402

from .conftest import EXAMPLES, SECRET, load_example  # noqa: E402

publisher = load_example("media_publisher")
recorder = load_example("media_recorder")


def make_clip(path: Path, seconds: float = 1.0) -> None:
    """A small file with video (160x120, 30 fps) and audio, made with PyAV."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=30)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        audio = container.add_stream("aac", rate=48000)
        for i in range(int(seconds * 30)):
            frame = av.VideoFrame(160, 120, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([(i * 8) % 256]) * plane.buffer_size)
            frame.pts = i
            frame.time_base = fractions.Fraction(1, 30)
            for packet in video.encode(frame):
                container.mux(packet)
        for i in range(int(seconds * 48000 / 1024)):
            sound = av.AudioFrame(format="fltp", layout="mono", samples=1024)
            sound.planes[0].update(bytes(sound.planes[0].buffer_size))
            sound.sample_rate = 48000
            sound.pts = i * 1024
            for packet in audio.encode(sound):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                container.mux(packet)


async def run_pair(
    server: SignalingServer, frames: int, *, file: str | None = None, record: str | None = None
) -> tuple[dict[str, object], int]:
    stop, publishing = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        publisher.main(
            server.url,
            mint(SECRET, "lobby"),
            name="studio",
            file=file,
            size=(160, 120),
            stop=stop,
            publishing=publishing,
        )
    )
    try:
        result = await asyncio.wait_for(
            recorder.main(
                server.url,
                mint(SECRET, "lobby"),
                target="studio",
                frames=frames,
                record=record,
                timeout=10,
            ),
            20,
        )
    finally:
        stop.set()
        served = await asyncio.wait_for(task, 10)
    return result, served


async def test_the_recorder_counts_frames_of_the_generated_pattern(
    server: SignalingServer,
) -> None:
    result, served = await run_pair(server, 20)
    assert result["frames"] == 20
    assert (result["width"], result["height"]) == (160, 120)
    assert isinstance(result["first_frame_s"], float) and 0 < result["first_frame_s"] < 10
    assert isinstance(result["audio_frames"], int) and result["audio_frames"] > 0
    assert served == 1


async def test_a_file_is_published_and_recorded(server: SignalingServer, tmp_path: Path) -> None:
    clip, out = tmp_path / "clip.mp4", tmp_path / "out.mp4"
    make_clip(clip)
    result, _ = await run_pair(server, 15, file=str(clip), record=str(out))
    assert result["frames"] == 15 and (result["width"], result["height"]) == (160, 120)
    with av.open(str(out)) as recorded:
        kinds = {stream.type for stream in recorded.streams}
        decoded = sum(1 for _ in recorded.decode(video=0))
    assert kinds == {"audio", "video"}
    assert decoded > 0


async def script(name: str, *args: str) -> asyncio.subprocess.Process:
    """Start ``examples/<name>.py`` in its own process."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / f"{name}.py"),
        *args,
        env={**os.environ, "ROOMSIGNAL_SECRET": SECRET},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(proc: asyncio.subprocess.Process, timeout: float = 60) -> tuple[str, str]:
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return out.decode(), err.decode()


async def test_the_scripts_exit_0_and_print_the_json_last(server: SignalingServer) -> None:
    url = ["--url", server.url, "--session", "cli"]
    size = ["--width", "160", "--height", "120"]
    pub = await script("media_publisher", *url, "--name", "cam", *size)
    try:
        rec = await script(
            "media_recorder", *url, "--target", "cam", "--frames", "10", "--timeout", "20"
        )
        out, err = await finish(rec)
        assert rec.returncode == 0, err
        last = json.loads(out.strip().splitlines()[-1])
        assert last["frames"] == 10 and (last["width"], last["height"]) == (160, 120)
        assert set(last) == {"frames", "width", "height", "first_frame_s", "audio_frames"}
    finally:
        pub.send_signal(signal.SIGINT)  # Ctrl-C: leaves cleanly
        pub_out, pub_err = await finish(pub)
    assert pub.returncode == 0, pub_err
    assert "left after serving 1 subscription(s)" in pub_out


async def test_a_target_that_never_publishes_is_one_line_and_exit_1(
    server: SignalingServer,
) -> None:
    rec = await script(
        "media_recorder", "--url", server.url, "--target", "nobody", "--timeout", "0.3"
    )
    _, err = await finish(rec)
    assert rec.returncode == 1
    assert err.strip() == "media-recorder: 'nobody' did not publish within 0.3 s"


def test_bad_input_is_one_line_and_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nowhere = ["--url", "ws://127.0.0.1:9", "--secret", SECRET]
    assert publisher.cli([*nowhere, "--file", str(tmp_path / "missing.mp4")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("media-publisher: ") and "missing.mp4" in err
    assert len(err.strip().splitlines()) == 1
    assert recorder.cli([*nowhere, "--target", "x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("media-recorder: 901 ") and len(err.strip().splitlines()) == 1
    for argv in ([*nowhere], [*nowhere, "--target", "x", "--frames", "0"]):
        with pytest.raises(SystemExit) as usage:
            recorder.cli(argv)
        assert usage.value.code == 2
        assert "error: " in capsys.readouterr().err
