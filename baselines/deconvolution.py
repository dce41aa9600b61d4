"""Non-blind deconvolution baselines with the sample's TRUE kernel (oracle references).

``wiener``: ``skimage.restoration.wiener`` per channel, balance 0.05 (option ``balance``).
``richardson-lucy``: ``skimage.restoration.richardson_lucy`` per channel, 10 iterations (option
``num_iter``).

Both pad each channel by the kernel size with reflection before deconvolving and crop after
(the FFT Wiener filter assumes circular boundaries and RL zero padding; without the padding,
border ringing costs 3-6 dB on 128x128 faces). The defaults were chosen on the demo split (RL
with 30 iterations and Wiener with balance 0.01 amplify the sigma=2/255 noise below the blurred
input's PSNR).

Both read the kernel the split provides (``Split.kernel``); they are oracles, not blind methods —
an upper reference for what knowing the blur buys. On a split without kernels the run refuses to
start (the engine checks ``uses_kernel``) with a message naming the split.
Images are processed as float64 in [0,1].
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar, Sequence

import numpy as np
import torch
from skimage import restoration

from faceblur_bench.errors import MethodOutputError
from faceblur_bench.methods.base import Method, Option


class _KernelDeconvolution(Method):
    uses_kernel = True

    @abstractmethod
    def _deconvolve_channel(self, channel: np.ndarray, psf: np.ndarray) -> np.ndarray:
        """Deconvolve one float64 [0,1] channel with the unit-sum kernel ``psf``."""

    def restore(self, blurred: torch.Tensor, meta: Sequence[dict] | None = None) -> torch.Tensor:
        out = torch.empty_like(blurred)
        imgs = blurred.detach().cpu().double().numpy()
        for i in range(imgs.shape[0]):
            psf = None if meta is None else meta[i].get("kernel")
            if psf is None:
                raise MethodOutputError(f"{self.name} needs the true blur kernel of each sample",
                                        "use a split that provides kernels")
            psf = np.asarray(psf, dtype=np.float64)
            psf = psf / psf.sum()
            p = psf.shape[0]
            res = np.stack([self._deconvolve_channel(np.pad(imgs[i, c], p, mode="reflect"), psf)[p:-p, p:-p]
                            for c in range(imgs.shape[1])])
            out[i] = torch.from_numpy(np.clip(res, 0.0, 1.0)).to(out)
        return out

    def num_parameters(self) -> int:
        return 0


class Wiener(_KernelDeconvolution):
    description = "Oracle Wiener deconvolution with the true kernel (skimage.restoration.wiener, balance 0.05)"
    option_specs: ClassVar[dict[str, Option]] = {
        "balance": Option(float, 0.05, "regularisation weight of skimage's Wiener filter", minimum=0.0)}

    def _deconvolve_channel(self, channel: np.ndarray, psf: np.ndarray) -> np.ndarray:
        return restoration.wiener(channel, psf, balance=self.options.get("balance", 0.05), clip=True)


class RichardsonLucy(_KernelDeconvolution):
    description = "Oracle Richardson-Lucy deconvolution with the true kernel (skimage, 10 iterations)"
    option_specs: ClassVar[dict[str, Option]] = {
        "num_iter": Option(int, 10, "Richardson-Lucy iterations", minimum=1)}

    def _deconvolve_channel(self, channel: np.ndarray, psf: np.ndarray) -> np.ndarray:
        n = self.options.get("num_iter", 10)
        return restoration.richardson_lucy(channel, psf, num_iter=n, clip=True)
