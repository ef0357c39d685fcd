"""The ffmpeg command builder: every command line is put together from the same small pieces."""

from __future__ import annotations

from pathlib import Path

import ffmpeg

from faceswap.media.ffmpeg import PREFIX, QUIET, command, ffmpeg_exe, file_url, graph_args, input_args


def test_command_starts_with_the_binary_and_the_prefix() -> None:
    assert command() == [ffmpeg_exe(), *PREFIX]
    assert command(QUIET, ["-i", "x"]) == [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-i",
        "x",
    ]


def test_graph_args_leave_out_the_program_and_overwrite_only_when_asked() -> None:
    graph = ffmpeg.input("in.mkv").output("out.mp4", vcodec="libx264")
    assert graph_args(graph) == ["-i", "in.mkv", "-vcodec", "libx264", "out.mp4", "-y"]
    assert graph_args(graph, overwrite=False) == ["-i", "in.mkv", "-vcodec", "libx264", "out.mp4"]


def test_input_args_confine_a_user_file_to_itself(tmp_path: Path) -> None:
    args = input_args(tmp_path / "concat:a.mp4")
    assert args[-2:] == ["-i", file_url(tmp_path / "concat:a.mp4")]
    assert args[args.index("-protocol_whitelist") + 1] == "file"
    assert "hls" not in args[args.index("-format_whitelist") + 1].split(",")


def test_the_reader_and_the_writers_build_on_the_same_prefix(tmp_path: Path) -> None:
    from faceswap.media.reader import VideoSource
    from faceswap.media.writer.encoder import graph_command

    graph = ffmpeg.input("pipe:").output(file_url(tmp_path / "x.mp4"))
    assert graph_command(graph)[:5] == command(QUIET)
    source = VideoSource.__new__(VideoSource)
    source.path = tmp_path / "v.mp4"
    assert VideoSource._command(source, 0, 3)[:5] == command(QUIET)
