"""Every shell command in README.md and docs/*.md runs as written (issue 23: docs that drift fail
here, not in a reader's terminal).

How it works — new commands in the docs are picked up without touching this file:

1. **Blocks.** Every fenced block marked ``bash``, ``sh``, ``shell`` or ``console`` is read; in a
   ``console`` block only lines starting with ``$ `` are commands, and ``(exit N)`` in the output
   lines after one is its documented exit code. Lines ending in ``\\`` are joined, ``#`` comments
   dropped, ``A && B`` become two commands, ``[optional]`` parts are left out, and
   ``faceblur-bench a | b | c`` (a list of alternatives) becomes one command per alternative.
   Each block is one test; its commands run in order in one working directory (a block may
   gate on what an earlier command of it wrote, as docs/ci.md does).
2. **Launchers.** ``torchrun … -m faceblur_bench ARGS`` and ``srun torchrun …`` run as
   ``faceblur-bench ARGS`` (``-m faceblur_bench.train ARGS`` as ``faceblur-bench train ARGS``):
   the command's names and options are what can drift; the launcher is torch's.
3. **Not run** (:data:`NOT_RUN`): commands that are not faceblur-bench (``pip install``,
   ``python -m pytest``, ``export``, shell variables, ``#SBATCH``), downloads (``weights fetch``:
   no network in tests) and the README's set-up block (``.ci/run`` runs it from scratch).
4. **Small data** (:func:`substitute`, placeholders made once per session by :func:`doc_env`):
   a data root holding the demo split and a 2-image ``lai-real`` split replaces ``/data``,
   ``DATA``, ``/data/MSPL`` and every ``--data-root``; ``~/photos`` is a folder with one face
   photo; ``faces/``, ``gt/``, ``outputs/`` hold two demo faces (``outputs/`` named
   ``<stem>_out.png``); ``results/ci-baseline`` is the repository's; ``RUN``/``runs/…`` outputs go to the
   block's directory; ``--nproc N`` runs as one process; every ``run`` without ``--limit`` gets
   ``--limit 2`` — unless a later command of its block runs ``check`` (a gate needs the whole
   split, as the recipe says; such a block is marked ``slow``: docs/ci.md's takes ~3 min on two
   busy cores, the rest of this file ~30 s).
5. **Expected outcome**: exit 0, or the documented code, or exit 2 with a message about an input
   the reader must supply that the small data lacks (a checkpoint, MSPL's files:
   :data:`MISSING_INPUT`; exit 1 only for loss-network weights the reader fetches,
   :data:`WEIGHTS_MISSING`) — never an unknown name or option (:data:`NAME_ERROR`), which is
   what drifted docs produce.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(bash|sh|shell|console)[ \t]*\n(.*?)^```", re.S | re.M)

#: first words of commands that are not faceblur-bench's (installers, the test runner, shell)
NOT_RUN = ("pip", "python", "export", "#SBATCH", "head=", "cd", "git")
#: faceblur-bench commands that download (the tests have no network): not run
DOWNLOADS = re.compile(r"\bweights fetch\b")
#: an exit-2 message about an input the reader supplies (allowed: the small data lacks it)
MISSING_INPUT = re.compile(
    r"not found|does not exist|no such file|missing|no trained weights|no checkpoint|"
    r"expected layout|no samples|not a file|not a directory|cannot be read|no [\w ]+ folder|"
    r"holds no runs", re.I)
#: exit 1 allowed only for weights the reader fetches (a trainer's loss network)
WEIGHTS_MISSING = re.compile(r"not found .*weights fetch", re.I)
#: what drifted docs produce: a name or option the program does not know
NAME_ERROR = re.compile(r"unknown (method|metric|split|option|trainer|preset|layout|name)|"
                        r"did you mean|no such option|got unexpected extra|usage:", re.I)


def _blocks() -> list[tuple[str, list[tuple[str, int | None]]]]:
    """``[(id, [(command, documented exit code or None)])]`` of every doc."""
    out = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            line_no = text[:m.start()].count("\n") + 1
            cmds = _commands(m.group(2), m.group(1) == "console")
            if path.name == "README.md" and any("pip install -e" in c for c, _ in cmds):
                continue  # the set-up block: .ci/run runs it from scratch
            if cmds:
                out.append((f"{path.relative_to(REPO)}:{line_no}", cmds))
    return out


def _commands(body: str, console: bool) -> list[tuple[str, int | None]]:
    lines = body.splitlines()
    cmds: list[tuple[str, int | None]] = []
    if console:
        for i, ln in enumerate(lines):
            if ln.startswith("$ "):
                code = None
                for after in lines[i + 1:]:
                    if after.startswith("$ "):
                        break
                    if (m := re.search(r"\(exit (\d+)\)", after)):
                        code = int(m.group(1))
                cmds.append((ln[2:], code))
        return [(c, code) for raw, code in cmds for c in _expand(raw)]
    joined = re.sub(r"\\\n\s*", " ", body)
    return [(c, None) for ln in joined.splitlines() for c in _expand(ln)]


def _expand(line: str) -> list[str]:
    line = re.sub(r"(^|\s)#.*$", "", line).strip()  # comments
    line = re.sub(r"\s\[[^\]]*\]", "", line)  # [optional] parts
    out = []
    for part in (p.strip() for p in line.split("&&")):
        if not part:
            continue
        m = re.match(r"(faceblur-bench \S+(?: \| \S+)+)$", part)
        if m:  # "faceblur-bench methods | splits | metrics": alternatives
            out += [f"faceblur-bench {w.strip()}" for w in part[len("faceblur-bench "):].split("|")]
            continue
        out.append(part)
    return out


def _launch(cmd: str) -> str | None:
    """The faceblur-bench command line of ``cmd`` (launchers unwrapped), None when not one."""
    cmd = re.sub(r"^srun\s+", "", cmd)
    if cmd.startswith("torchrun"):
        m = re.search(r"-m faceblur_bench(\.train)?\s+(.*)$", cmd)
        if m is None:
            return None
        return "faceblur-bench " + ("train " if m.group(1) else "") + m.group(2)
    if cmd.startswith("faceblur-bench"):
        return cmd
    return None


def substitute(cmd: str, env: dict[str, Path], later: list[str]) -> list[str]:
    """``cmd`` as argv with the small data of :func:`doc_env` (see the module docstring)."""
    s = cmd.replace("results/ci-baseline", str(REPO / "results" / "ci-baseline"))
    s = s.replace("~/photos", str(env["photos"]))
    for folder in ("faces", "gt", "outputs"):  # `--sharp faces/`, `--restored outputs/` ...
        s = re.sub(rf"(\s){folder}/(\s|$)", rf"\g<1>{env[folder]}/\g<2>", s)
    s = re.sub(r"(--data-root\s+)\S+", rf"\g<1>{env['data']}", s)
    s = re.sub(r"(--nproc(?:-per-node)?\s+)\d+", r"\g<1>1", s)
    s = s.replace("/shared/results", "results")
    argv = shlex.split(s)[1:]
    argv = [str(env["data"]) if a in ("DATA", "/data", "/data/MSPL") else a for a in argv]
    if argv[:1] == ["run"] and "--limit" not in argv and not any(" check " in f" {c} " for c in later):
        argv += ["--limit", "2"]
    if argv[:1] == ["run"] and "--data-root" not in argv:
        argv += ["--data-root", str(env["data"])]
    return argv


@pytest.fixture(scope="session")
def doc_env(demo_data_root, tmp_path_factory) -> dict[str, Path]:
    """Small data every doc command may name: the demo split and a 2-image ``lai-real`` under
    one data root, a folder with one face photo."""
    from PIL import Image
    from skimage import data as skdata
    from test_report_helpers import write_lai_real

    write_lai_real(demo_data_root / "lai-real")
    photos = tmp_path_factory.mktemp("photos")
    Image.fromarray(skdata.astronaut()).save(photos / "astronaut.png")
    # two 128x128 faces (make-split --sharp), and restored/ground-truth folders for `score`
    faces, gt, outputs = (tmp_path_factory.mktemp(n) for n in ("faces", "gt", "outputs"))
    for p in sorted((demo_data_root / "demo" / "sharp").glob("*.png"))[:2]:
        (faces / p.name).write_bytes(p.read_bytes())
        (gt / p.name).write_bytes(p.read_bytes())
        (outputs / f"{p.stem}_out.png").write_bytes(p.read_bytes())
    return {"data": demo_data_root, "photos": photos, "faces": faces, "gt": gt, "outputs": outputs}


BLOCKS = _blocks()


def test_docs_have_commands():
    """The extraction finds the docs' commands (a broken fence pattern would test nothing)."""
    ids = [b for b, _ in BLOCKS]
    assert any(i.startswith("docs/ci.md") for i in ids) and any(i.startswith("README.md") for i in ids)
    assert ("faceblur-bench splits", None) in [c for _, cmds in BLOCKS for c in cmds]


def _param(block: list[tuple[str, int | None]]):
    # a block that gates with `check` runs its whole split (docs/ci.md: ~3 min on 2 busy cores)
    gates = any(" check " in f" {c} " for c, _ in block)
    return pytest.param(block, marks=[pytest.mark.slow] if gates else [])


@pytest.mark.parametrize("block", [_param(b) for _, b in BLOCKS], ids=[i for i, _ in BLOCKS])
def test_doc_block_runs_as_written(block, doc_env, tmp_path, monkeypatch, capsys):
    from cli_helpers import main_inprocess

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FACEBLUR_DATA", str(doc_env["data"]))
    ran = 0
    for k, (cmd, documented) in enumerate(block):
        line = _launch(cmd)
        if line is None or cmd.split()[0] in NOT_RUN or DOWNLOADS.search(line):
            continue
        argv = substitute(line, doc_env, [c for c, _ in block[k + 1:]])
        code, out, err = main_inprocess(argv, capsys)
        ran += 1
        said = f"`{cmd}` (ran as {argv}) exited {code}:\n{out[-1500:]}\n{err[-1500:]}"
        if documented is not None:
            assert code == documented, said
        elif code == 1:
            assert WEIGHTS_MISSING.search(err) and not NAME_ERROR.search(err), said
        elif code != 0:
            assert code == 2 and MISSING_INPUT.search(err) and not NAME_ERROR.search(err), said
    if ran == 0:
        pytest.skip("no faceblur-bench command in this block (installers/launchers only)")
    assert os.environ.get("FACEBLUR_DATA") == str(doc_env["data"]), sys.argv
