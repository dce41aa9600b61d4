"""The instant CLI (issue 29), part 2: a bad option VALUE — not only a bad name — answers before
torch is imported, with the same message and exit code 2 as the check that runs after it.

- Every command's usage errors (a ``--device`` misspelt, an ``--option`` value of the wrong
  type, an unknown ``--protocol``, a method unfit for ``s2v``, ``--weights`` not NAME=PATH, a
  bad ``--label``, unknown presets, make-split names, ...) run through the real entry point in
  one fresh interpreter that must not have loaded torch or any other network stack.
- The checks made before torch are the same rules as those made after it: the static option
  check and ``Method.validate_options`` raise the same message for every built-in method; the
  torch-free device check agrees with ``torch.device``.
"""

from __future__ import annotations

import pytest
from cli_helpers import probe

from faceblur_bench.errors import UsageError
from faceblur_bench.registry import methods as method_registry

#: (argv with {tmp} for a scratch folder, text the error must contain); each exits 2
CASES = [
    (["run", "-m", "wiener", "--device", "cudda"], "unknown --device 'cudda'; did you mean 'cuda'?"),
    (["run", "-m", "wiener", "--device", "cuda:x"], "unknown --device 'cuda:x'; did you mean 'cuda'?"),
    (["run", "-m", "wiener", "--device", "mps"], "--device mps is not supported"),
    (["run", "-m", "wiener", "--option", "balance=abc"], "option 'balance' for wiener must be float, got 'abc'"),
    (["run", "-m", "richardson-lucy", "-o", "num_iter=1.5"], "option 'num_iter' for richardson-lucy must be int, got 1.5"),
    (["run", "-m", "richardson-lucy", "-o", "num_iter=0"], "option 'num_iter' for richardson-lucy must be >= 1, got 0"),
    (["run", "-m", "yun", "-o", "noise_seed=-1"], "option 'noise_seed' for yun must be >= 0"),
    (["run", "--option", "balanse=0.1"], "takes option 'balanse'; did you mean 'balance'?"),  # default methods
    (["run", "-m", "wiener", "--protocol", "paperr"], "unknown protocol 'paperr'"),
    (["run", "-m", "wiener", "--protocol", "s2v"], "method 'wiener' restores one image per input and takes no moment"),
    (["run", "-m", "sappgan", "--weights", "nonexist.pth"], "--weights 'nonexist.pth' is not NAME=PATH"),
    (["run", "-m", "sappgan", "--weights", "vggfce16=/x"], "did you mean 'vggface16'"),
    (["run", "-m", "wiener", "--label", ""], "a label is a non-empty name on one line"),
    (["run", "-m", "wiener", "-m", "blurred", "--label", "wienr=W"], "did you mean 'wiener'"),
    (["score", "--restored", "{tmp}", "--reference", "{tmp}", "--device", "cpuu"], "did you mean 'cpu'"),
    (["score", "--restored", "{tmp}", "--reference", "{tmp}", "--weights", "vggface16"], "is not NAME=PATH"),
    (["runtime", "-m", "wienr"], "did you mean 'wiener'"),
    (["runtime", "-m", "wiener", "--device", "cudda"], "did you mean 'cuda'"),
    (["runtime", "-m", "wiener", "--dtype", "fp3"], "--dtype 'fp3' is not one of fp32, bf16"),
    (["runtime", "-m", "wiener", "--size", "12xa"], "--size '12xa' is not HxW"),
    (["runtime", "-m", "wiener", "-o", "balance=abc"], "option 'balance' for wiener must be float, got 'abc'"),
    (["table", "--split", "demo", "--methods", "wienr", "--results", "{tmp}"], "did you mean 'wiener'"),
    (["table", "--split", "demo", "--metrics", "psnrr", "--results", "{tmp}"], "did you mean 'psnr'"),
    (["figure", "--split", "demo", "--methods", "wienr", "--results", "{tmp}"], "did you mean 'wiener'"),
    (["figure", "--split", "demoo", "--methods", "wiener", "--results", "{tmp}"], "did you mean 'demo'"),
    (["figure", "--split", "demo", "--methods", "wiener", "--zoom", "1,2", "--results", "{tmp}"], "bad --zoom '1,2'"),
    (["plot", "--split", "demo", "--kind", "kernel-sise", "--results", "{tmp}"], "unknown --kind 'kernel-sise'"),
    (["plot", "--split", "demo", "--metric", "psnrr", "--results", "{tmp}"], "did you mean 'psnr'"),
    (["compare", "wiener", "blurred", "--split", "demo", "--metric", "psnrr", "--results", "{tmp}"], "did you mean 'psnr'"),
    (["make-split", "--sharp", "{tmp}", "--protocol", "msp", "--out", "{tmp}/o"], "did you mean 'mspl'"),
    (["make-split", "--sharp", "{tmp}", "--protocol", "mspl", "--out", "{tmp}/o", "--device", "cudda"], "did you mean 'cuda'"),
    (["make-split", "--sharp", "{tmp}", "--protocol", "mspl", "--out", "{tmp}/o", "--kernels", "splin"], "unknown kernel generator 'splin'"),
    (["make-split", "--sharp", "{tmp}", "--protocol", "mspl", "--out", "{tmp}/o", "--variant", "centr"], "unknown MSPL variant 'centr'"),
    (["make-split", "--sharp", "{tmp}", "--protocol", "mspl", "--out", "{tmp}/o", "--subset", "ffh"], "unknown MSPL subset 'ffh'"),
    (["make-split", "--sharp", "{tmp}", "--protocol", "shen", "--out", "{tmp}/o", "--noise", "shn"], "unknown noise preset 'shn'"),
    (["make-split", "--sharp", "{tmp}", "--protocol", "shen", "--out", "{tmp}/o", "--variant", "random"], "--variant applies to the mspl protocol only"),
    (["data", "verify", "demoo"], "did you mean 'demo'"),
    (["train", "cfmd", "--data-root", "{tmp}", "--out", "{tmp}/t", "--preset", "nop"], "unknown cfmd preset 'nop'"),
    (["train", "dfpg", "--data-root", "{tmp}", "--out", "{tmp}/t", "--preset", "b7"], "unknown dfpg preset 'b7'"),
    (["train", "cfmd", "--data-root", "{tmp}", "--out", "{tmp}/t", "--device", "cudda"], "did you mean 'cuda'"),
    (["train", "cfmd", "--data-root", "{tmp}", "--out", "{tmp}/t", "--set", "a"], "--set 'a' is not KEY=VALUE"),
    (["train", "cfmd", "--data-root", "{tmp}", "--out", "{tmp}/t", "--weights", "vggfce16=/x"], "did you mean 'vggface16'"),
    (["train", "wienr"], "no trainer 'wienr' (did you mean the method 'wiener'?): method 'wiener' learns nothing"),
    (["train", "cfmd-gan"], "No such command 'cfmd-gan'. Did you mean 'cfmd'"),
    (["train", "folder"], "no trainer is called 'folder'"),
]


def test_bad_values_answer_before_torch_with_exit_2(tmp_path):
    res = probe([[a.format(tmp=tmp_path) for a in argv] for argv, _ in CASES])
    for r, (argv, want) in zip(res, CASES):
        assert r["heavy"] == [], (argv, r["heavy"], r["err"])
        assert r["code"] == 2 and want in r["err"], (argv, r["code"], r["err"])
    # nothing was started: no results, split or training folder was written
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", [n for n, r in method_registry.static().items() if r["options"]])
def test_static_option_check_is_the_loaded_methods_rule(name):
    """For every built-in method with options: each option given a value of each wrong kind is
    refused before torch (record) with exactly the message of ``validate_options`` (class), and
    a value the class accepts passes the static check."""
    from faceblur_bench.cli.core import check_method_options

    cls = method_registry.get(name)
    for key, spec in cls.option_specs.items():
        for value in ("abc", 1.5, -1, "nan", True, "7"):
            try:
                cls.validate_options({key: value})
                expected = None
            except UsageError as exc:
                expected = exc.message
            try:
                check_method_options({name: {key: value}})
                got = None
            except UsageError as exc:
                got = exc.message
            assert got == expected, (name, key, value)


def test_protocol_fit_from_the_record_is_the_classes():
    from faceblur_bench.cli.core import check_method_options

    for name in method_registry.static():
        fits = method_registry.get(name).accepts_moment
        if fits:
            check_method_options({name: {}}, "s2v")
        else:
            with pytest.raises(UsageError, match="takes no moment"):
                check_method_options({name: {}}, "s2v")
    assert any(method_registry.get(n).accepts_moment for n in method_registry.static())


@pytest.mark.parametrize("text", ["cpu", "cuda", "cuda:0", "cuda:12", "cpu:0", "auto", "AUTO", " cpu ",
                                  "cudda", "cuda:x", "cuda:-1", "cuda:01", "cuda:", "CUDA", "tpu", "mps",
                                  "meta", "xla:1", "cuda:0:1", "", "c"])
def test_device_spelling_check_agrees_with_torch(text):
    """The torch-free check refuses exactly the spellings ``resolve_device`` refuses for their
    spelling (unknown or unsupported), with the same message; availability is torch's."""
    from faceblur_bench.devices import check_device_name, resolve_device

    try:
        check_device_name(text)
        early = None
    except UsageError as exc:
        early = exc.message
    try:
        resolve_device(text)
        late = None
    except UsageError as exc:
        late = exc.message
    if early is not None:
        assert late == early
    else:  # a spelling it lets through is cpu, auto or a cuda device: only availability can fail
        assert late is None or "no CUDA device is available" in late or "CUDA device(s)" in late


@pytest.mark.filterwarnings("ignore:'mkldnn' is no longer used")
def test_torch_parses_every_device_type_named_unsupported():
    import torch

    from faceblur_bench.devices import TORCH_DEVICE_TYPES

    for t in TORCH_DEVICE_TYPES:
        assert torch.device(t).type == t


def test_engine_refuses_a_checkpoint_the_method_ignores(tmp_path, demo_data_root):
    """``RunConfig(checkpoint=...)`` for a method that reads none is refused by the engine too —
    a registered one and a method object built in a notebook (no registry record) — before
    anything is written; a method that reads one is not refused for it."""
    from faceblur_bench.engine import RunConfig, evaluate
    from faceblur_bench.methods.base import Method

    class Identity(Method):
        name = "notebook-identity"

        def restore(self, blurred):
            return blurred

    ck = tmp_path / "weights.pth"
    ck.write_bytes(b"x")
    for method in ("blurred", Identity()):
        cfg = RunConfig(method=method, split="demo", data_root=demo_data_root, limit=1,
                        metrics=["psnr"], results_dir=tmp_path / "out", device="cpu", checkpoint=ck)
        with pytest.raises(UsageError, match=r"takes no checkpoint \(it would be ignored\)") as exc:
            evaluate(cfg)
        assert "drop --checkpoint" in exc.value.hint and "dfpg" in exc.value.hint
    assert not (tmp_path / "out").exists()
    # dfpg reads one: refused for what the file is, never for taking one
    with pytest.raises(Exception) as other:  # noqa: PT011 — any error but the ignored-checkpoint one
        evaluate(RunConfig(method="dfpg", split="demo", data_root=demo_data_root, limit=1, metrics=["psnr"],
                           results_dir=tmp_path / "out2", device="cpu", checkpoint=ck))
    assert "takes no checkpoint" not in str(other.value)
