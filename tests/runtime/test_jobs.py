"""Batch job lists: settings layering, output names, and clear errors for bad job files."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidrefocus.errors import ConfigError, InputError
from vidrefocus.runtime.factory import IDENTITY
from vidrefocus.runtime.jobs import (
    JobSettings,
    check_inside,
    jobs_from_file,
    jobs_from_folder,
    load_batch,
)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jobs.yaml"
    path.write_text(text)
    return path


def test_settings_layer_flags_then_defaults_then_job(tmp_path: Path) -> None:
    (tmp_path / "depth").mkdir()
    (tmp_path / "lossless.yaml").write_text("encode: {codec: ffv1}\n")
    path = _write(
        tmp_path,
        "defaults:\n"
        "  options: {encode: {crf: 20}, lens.f_number: 2.8}\n"
        "jobs:\n"
        "  - {input: a.mp4, depth: depth, focus: '0s:2m', options: {lens: {f_number: 4}}}\n"
        "  - {input: clips/b.mov, output: flat/b.mkv, command: transcode, config: lossless.yaml}\n",
    )
    flags = JobSettings(command="refocus", options={"encode.crf": 30, "bokeh.blades": 6})
    a, b = jobs_from_file(path, tmp_path / "out", flags)
    assert (a.command, a.name) == ("refocus", "jobs[0] (a.mp4)")
    # relative paths are the job file's; outputs keep the input's container when they can
    assert a.input == tmp_path / "a.mp4"
    assert a.output == tmp_path / "out" / "a.mp4"
    assert a.config.depth.path == str(tmp_path / "depth")
    assert (a.config.encode.crf, a.config.lens.f_number, a.config.bokeh.blades) == (20, 4, 6)
    assert a.factory.kwargs == {"focus": "0s:2m", "focus_file": None}
    assert (b.command, b.factory) == ("transcode", IDENTITY)
    assert b.output == tmp_path / "out" / "flat" / "b.mkv"
    assert (b.config.encode.codec, b.config.encode.crf) == ("ffv1", 20)


def test_default_output_takes_a_container_the_codec_fits(tmp_path: Path) -> None:
    path = _write(tmp_path, "- {input: a.mp4, command: transcode, options: {encode.codec: ffv1}}")
    (job,) = jobs_from_file(path, tmp_path / "out")
    assert job.output.name == "a.mkv"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("jobs: [", "not valid YAML"),
        ("42", "expected a list of jobs"),
        ("[]", "the job list is empty"),
        ("{jobs: [], extra: 1}", "top level: unknown key 'extra' (known keys: defaults, jobs)"),
        ("{defaults: {focs: 1}, jobs: []}", "unknown key 'defaults.focs' (known keys: command"),
        ("- {input: a.mp4, focus_fle: k.yaml}", "jobs[0] (a.mp4): unknown key 'focus_fle'"),
        ("- {input: a.mp4}\n- {output: b.mp4}", "jobs[1]: 'input' is missing"),
        ("- not a mapping", "jobs[0]: a job is a mapping"),
        ("- {input: a.mp4, command: dance}", "jobs[0] (a.mp4): 'command'"),
        ("- {input: a.mp4, options: {lens.fnumber: 2}}", "jobs[0] (a.mp4): options: unknown"),
        ("- {input: a.mp4, options: {lens: {f_number: 0.1}}}", "'lens.f_number'"),
        ("- {input: a.mp4, preset: nope}", "unknown preset 'nope'"),
        ("- {input: a.mp4, config: missing.yaml}", "missing.yaml: no such config file"),
        ("- {input: a.mp4, command: transcode, depth: d}", "'depth' applies to refocus jobs"),
        ("- {input: a.mp4, output: /tmp/x.mp4}", "jobs[0] (a.mp4): output '/tmp/x.mp4' is not"),
        ("- {input: a.mp4, output: ../../etc/x.mp4}", "is not a name inside the output folder"),
        ("- {input: a.mp4, output: sub/../x.mp4}", "absolute paths and '..' are refused"),
        ("- {input: a.mp4, output: x.txt}", "needs a video extension"),
        ("- {input: a.mp4}\n- {input: sub/a.mp4}", "jobs[0] (a.mp4) and jobs[1] (a.mp4) both"),
        ("- {input: out/a.mp4}", "would replace its input"),
    ],
)
def test_bad_job_files_name_the_job(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_batch(path, tmp_path / "out")
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_unknown_option_names_the_job_and_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "- {input: a.mp4, options: {lens.fnumber: 2}}")
    with pytest.raises(ConfigError, match=r"jobs\[0\] \(a.mp4\): options: unknown key 'lens"):
        load_batch(path, tmp_path / "out")


def test_folder_takes_videos_and_their_depth(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("b.mov", "a.mp4", "notes.txt", ".hidden.mp4"):
        (clips / name).touch()
    (clips / "a_depth").mkdir()
    a, b = jobs_from_folder(clips, tmp_path / "out")
    assert [a.name, b.name] == ["a.mp4", "b.mov"]
    assert a.config.depth.path == str(clips / "a_depth")
    assert b.config.depth.path is None  # its refocus job fails when it runs: no depth
    (t,) = jobs_from_folder(clips, tmp_path / "out", JobSettings(command="transcode"))[:1]
    assert (t.command, t.config.depth.path) == ("transcode", None)


def test_folder_and_source_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no videos found"):
        jobs_from_folder(tmp_path, tmp_path / "out")
    with pytest.raises(InputError, match="no such job file or folder"):
        load_batch(tmp_path / "nope.yaml", tmp_path / "out")
    (tmp_path / "a.mp4").touch()
    with pytest.raises(ConfigError, match="would replace its input"):
        jobs_from_folder(tmp_path, tmp_path)


def _escape_link(tmp_path: Path, name: str, *, folder: bool = True) -> Path:
    """A symlink `out/<name>` to somewhere outside the output folder; returns that place."""
    outside = tmp_path / "elsewhere"
    outside.mkdir(exist_ok=True)
    target = outside if folder else outside / "victim.mp4"
    if not folder:
        target.write_bytes(b"not ours")
    (tmp_path / "out").mkdir(exist_ok=True)
    (tmp_path / "out" / name).symlink_to(target)
    return target


@pytest.mark.parametrize(
    ("link", "folder", "output", "message"),
    [
        # a subfolder of the output folder that is a link out of it
        ("link", True, "link/x.mp4", "jobs[0] (a.mp4): output link/x.mp4 leaves the output"),
        # the output file itself is a link out
        ("x.mp4", False, "x.mp4", "jobs[0] (a.mp4): output x.mp4 leaves the output folder"),
        # the hidden work folder the clip's chunks go to (and are deleted from) is a link out
        (".x.mp4.vidrefocus-work", True, "x.mp4", "jobs[0] (a.mp4): work folder .x.mp4"),
    ],
)
def test_symlinks_out_of_the_output_folder_are_refused(
    tmp_path: Path, link: str, folder: bool, output: str, message: str
) -> None:
    target = _escape_link(tmp_path, link, folder=folder)
    path = _write(tmp_path, f"- {{input: a.mp4, output: {output}, command: transcode}}")
    with pytest.raises(InputError) as info:
        load_batch(path, tmp_path / "out")
    text = str(info.value)
    assert text.startswith(f"{path}: {message}")
    assert f"{tmp_path / 'out' / link} is a symlink to {target}" in text
    assert "give a name inside it, or remove the link" in text


def test_symlinks_that_stay_inside_are_fine(tmp_path: Path) -> None:
    # the output folder itself may be a link, and links between its own subfolders too
    real = tmp_path / "disk" / "out"
    (real / "2024").mkdir(parents=True)
    (tmp_path / "out").symlink_to(real)
    (real / "latest").symlink_to(real / "2024")
    path = _write(tmp_path, "- {input: a.mp4, output: latest/x.mp4, command: transcode}")
    (job,) = load_batch(path, tmp_path / "out")
    assert job.output == tmp_path / "out" / "latest" / "x.mp4"
    assert job.output.resolve() == real / "2024" / "x.mp4"


def test_folder_batch_refuses_a_symlinked_output(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "a.mp4").touch()
    _escape_link(tmp_path, "a.mp4", folder=False)
    with pytest.raises(InputError, match=r"clips: a\.mp4: output a\.mp4 leaves the output"):
        jobs_from_folder(clips, tmp_path / "out", JobSettings(command="transcode"))


def test_check_inside_refuses_an_output_elsewhere(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"job: output .*other/x\.mp4 leaves the output folder"):
        check_inside("job", tmp_path / "other" / "x.mp4", tmp_path / "out")
    check_inside("job", tmp_path / "out" / "sub" / "x.mp4", tmp_path / "out")
