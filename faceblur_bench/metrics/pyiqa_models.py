"""The static list of pyiqa no-reference models behind the ``pyiqa-<name>`` metrics
(:mod:`.pyiqa_nr`), apart from the metric code: it imports neither torch nor pyiqa, so the metric
catalog (:mod:`.catalog`) describes these metrics without importing them.
"""

from __future__ import annotations

import importlib.util

from .. import weights as wts

#: the pyiqa release this list and the weight entries were read from
PYIQA_TESTED = "0.1.16"
INSTALL_HINT = "install faceblur-bench[iqa]"

#: (pyiqa name, pyiqa architecture, lower is better, pyiqa's rough score range) of every pyiqa
#: 0.1.16 no-reference model scored per image (DEFAULT_CONFIGS with metric_mode 'NR')
NR_MODELS: tuple[tuple[str, str, bool, str], ...] = (
    ("piqe", "PIQE", True, "0, 100"),
    ("niqe", "NIQE", True, "~0, ~100"),
    ("niqe_matlab", "NIQE", True, "~0, ~100"),
    ("ilniqe", "ILNIQE", True, "~0, ~100"),
    ("brisque", "BRISQUE", True, "~0, ~150"),
    ("brisque_matlab", "BRISQUE", True, "~0, ~100"),
    ("nrqm", "NRQM", False, "~0, ~10"),
    ("pi", "PI", True, "~0, ~"),
    ("cnniqa", "CNNIQA", False, "~0, ~1"),
    ("musiq", "MUSIQ", False, "~0, ~100"),
    ("musiq-ava", "MUSIQ", False, "1, 10"),
    ("musiq-paq2piq", "MUSIQ", False, "~0, ~100"),
    ("musiq-spaq", "MUSIQ", False, "~0, ~100"),
    ("nima", "NIMA", False, "0, 10"),
    ("nima-koniq", "NIMA", False, "~0, ~1"),
    ("nima-spaq", "NIMA", False, "~0, ~1"),
    ("nima-vgg16-ava", "NIMA", False, "0, 10"),
    ("paq2piq", "PAQ2PIQ", False, "~0, ~100"),
    ("dbcnn", "DBCNN", False, "~0, ~1"),
    ("maniqa", "MANIQA", False, "~0, ~1"),
    ("maniqa-pipal", "MANIQA", False, "~0, ~1"),
    ("maniqa-kadid", "MANIQA", False, "~0, ~1"),
    ("clipiqa", "CLIPIQA", False, "0, 1"),
    ("clipiqa+", "CLIPIQA", False, "0, 1"),
    ("clipiqa+_vitL14_512", "CLIPIQA", False, "0, 1"),
    ("clipiqa+_rn50_512", "CLIPIQA", False, "0, 1"),
    ("fgresq", "FGResQ", False, "0, 1"),
    ("tres", "TReS", False, "~0, ~100"),
    ("tres-flive", "TReS", False, "~0, ~100"),
    ("hyperiqa", "HyperNet", False, "~0, ~1"),
    ("metaiqa", "MetaIQA", False, "0, 1"),
    ("uranker", "URanker", False, "~-1, ~2"),
    ("entropy", "Entropy", False, "0, 8"),
    ("topiq_nr", "CFANet", False, "~0, ~1"),
    ("topiq_nr-flive", "CFANet", False, "~0, ~1"),
    ("topiq_nr-spaq", "CFANet", False, "~0, ~1"),
    ("topiq_nr-face", "CFANet", False, "~0, ~1"),
    ("topiq_nr_swin-face", "CFANet", False, "~0, ~1"),
    ("topiq_nr-face-v1", "CFANet", False, "~0, ~1"),
    ("topiq_iaa", "CFANet", False, "1, 10"),
    ("topiq_iaa_res50", "CFANet", False, "1, 10"),
    ("laion_aes", "LAIONAes", False, "~1, ~10"),
    ("liqe", "LIQE", False, "1, 5"),
    ("liqe_mix", "LIQE", False, "1, 5"),
    ("wadiqam_nr", "WaDIQaM", False, "~-1, ~0.1"),
    ("qalign", "QAlign", False, "1, 5"),
    ("qalign_8bit", "QAlign", False, "1, 5"),
    ("qalign_4bit", "QAlign", False, "1, 5"),
    ("qrealign", "QReAlign", False, "0, 1"),
    ("qrealign-mini", "QReAlign", False, "0, 1"),
    ("qrealign-lite", "QReAlign", False, "0, 1"),
    ("qrealign-pro", "QReAlign", False, "0, 1"),
    ("compare2score", "Compare2Score", False, "0, 100"),
    ("unique", "UNIQUE", False, "~-3, ~3"),
    ("arniqa", "ARNIQA", False, "0, 1"),
    ("arniqa-live", "ARNIQA", False, "0, 1"),
    ("arniqa-csiq", "ARNIQA", False, "0, 1"),
    ("arniqa-tid", "ARNIQA", False, "0, 1"),
    ("arniqa-kadid", "ARNIQA", False, "0, 1"),
    ("arniqa-clive", "ARNIQA", False, "0, 1"),
    ("arniqa-flive", "ARNIQA", False, "0, 1"),
    ("arniqa-spaq", "ARNIQA", False, "0, 1"),
    ("maclip", "MACLIP", False, "0, 1"),
    ("qualiclip", "QualiCLIP", False, "0, 1"),
    ("qualiclip+", "QualiCLIP", False, "0, 1"),
    ("qualiclip+-clive", "QualiCLIP", False, "0, 1"),
    ("qualiclip+-flive", "QualiCLIP", False, "0, 1"),
    ("qualiclip+-spaq", "QualiCLIP", False, "0, 1"),
    ("afine_nr", "AFINE", True, "-2, 2"),
)

#: the no-reference scores face-restoration benchmarks report; ``run`` adds them by default on
#: splits without ground truth
DEFAULT_NO_REFERENCE: tuple[str, ...] = ("pyiqa-niqe", "pyiqa-brisque", "pyiqa-musiq",
                                         "pyiqa-maniqa", "pyiqa-clipiqa")

#: weight entries (faceblur_bench.weights) per model, with the create_metric keyword that takes
#: the resolved file (None: pyiqa only reads its own cache, e.g. CLIP's)
MODEL_WEIGHTS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "niqe": (("pyiqa-niqe-params", "pretrained_model_path"),),
    "brisque": (("pyiqa-brisque-svm", "pretrained_model_path"),),
    "musiq": (("pyiqa-musiq-koniq", "pretrained_model_path"),),
    "maniqa": (("pyiqa-maniqa-koniq", "pretrained_model_path"),),
    "clipiqa": (("clip-rn50", None),),
}


def pyiqa_installed() -> bool:
    """Whether ``pyiqa`` can be imported (checked without importing it)."""
    return importlib.util.find_spec("pyiqa") is not None


def protocol(name: str, arch: str, lower: bool, rng: str) -> str:
    """The one-line protocol of metric ``pyiqa-<name>`` (pyiqa architecture ``arch``, direction,
    score range ``rng``, where its files live); says to install the extra when pyiqa is absent."""
    files = [f"$TORCH_HOME/hub/{wts.KNOWN[e].cache}/{wts.KNOWN[e].filename}"
             for e, _ in MODEL_WEIGHTS.get(name, ()) if e in wts.KNOWN]
    where = ", ".join(files) if files else "the files pyiqa downloads into $TORCH_HOME/hub/pyiqa"
    text = (f"pyiqa (IQA-PyTorch, tested {PYIQA_TESTED}) '{name}' ({arch}), no reference: restored "
            f"RGB uint8/255 in [0,1] at its own size (pyiqa's resize/crop policy); score ~[{rng}], "
            f"{'lower' if lower else 'higher'} is better; mean over images; weights: {where}")
    return text if pyiqa_installed() else f"{text} — {INSTALL_HINT}"
