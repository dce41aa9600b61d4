"""Static metadata of the built-in trainers: what ``faceblur-bench train --help``, ``train NAME
--help`` and ``train presets`` show without importing torch or a method package.

:data:`CATALOG` holds one :func:`record` per trainer the built-in method packages register.
``tests/test_cli_listings.py`` imports them all and asserts ``record(...)`` equals each entry
here (``python tests/test_cli_listings.py`` rewrites it from the code). Plugin trainers are
described by :func:`record` from their loaded class.
"""

from __future__ import annotations

import difflib
from typing import Any

from ..errors import UnknownNameError, UsageError


def record(name: str, cls: Any, origin: str) -> dict[str, Any]:
    """The record of trainer class ``cls`` registered as ``name`` from ``origin``: description,
    what ``--data-root`` holds, the method that runs its checkpoints, presets in order (name,
    one-line description, configuration overrides), the default preset, and its extra options
    in order (``--<option>`` setting configuration ``key``; ``type`` int | float | str | bool)."""
    return {
        "description": cls.description, "data_help": cls.data_help, "method": cls.method,
        "presets": [{"name": p, "description": cls.preset_descriptions.get(p, ""),
                     "overrides": over} for p, over in cls.presets.items()],
        "default_preset": cls.default_preset,
        "cli_options": [{"option": opt, "key": spec.key, "type": spec.type.__name__,
                         "help": spec.help} for opt, spec in cls.cli_options.items()],
        "origin": origin}


def lookup_preset(kind: str, table: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """Override dict ``table[name]`` (case-insensitive); unknown -> UnknownNameError naming ``kind``.
    Torch-free: ``train NAME --preset`` is checked against a static record before torch loads."""
    by_upper = {k.upper(): k for k in table}
    key = by_upper.get(name.upper())
    if key is None:
        raise UnknownNameError(kind, name, list(table), difflib.get_close_matches(name, list(table), n=2)
                               or difflib.get_close_matches(name.upper(), list(by_upper), n=2))
    return table[key]


def preset_overrides(trainer: str, presets: dict[str, dict[str, Any]], name: str) -> tuple[str, dict[str, Any]]:
    """(name as declared, overrides) of preset ``name`` of ``trainer`` (case-insensitive), or a
    usage error: the trainer has no presets, or an unknown name ("did you mean"). Used to build a
    configuration and, from a trainer's static record, by ``train NAME`` before torch loads."""
    if not presets:
        raise UsageError(f"trainer {trainer!r} has no presets (--preset {name})", "omit --preset")
    over = lookup_preset(f"{trainer} preset", presets, name)
    return next(k for k in presets if k.upper() == name.upper()), over


CATALOG: dict[str, dict[str, Any]] = {
    'cfmd': {
        'description': ('CFMD-GAN (Lee, Han & Heo): ContAda MIMO-UNet G(b,u) + U-Net D with '
                        'moment regressor Q; Charbonnier x3 + LPIPS + adv + λ_Q; Adam 1e-4 '
                        'x0.99/epoch; batch 8; 200 epochs'),
        'data_help': ('300VW blur windows as genBlurDataset.py writes them: '
                      'blur/{vid}/blurNNN/{mid}.png, sharp/{vid}/blurNNN/{mid}/{frame}.png and '
                      'train_filelist.txt (FMR order; required unless --preset no-fmr); the '
                      "release's 83 training videos are used"),
        'method': 'cfmd-gan',
        'presets': [{'name': 'paper',
                     'description': 'paper objective (Charbonnier x3 + LPIPS + adv enc/dec + λ_Q '
                                    'regression), CADC+CACA+FMR',
                     'overrides': {}},
                    {'name': 'released',
                     'description': "authors' train.py losses without its bugs (L1 x3, no LPIPS, "
                                    'λ_adv 0.01, Q weight ½)',
                     'overrides': {'loss': {'pixel': 'l1',
                                            'lambda_per': 0.0,
                                            'lambda_adv': 0.01,
                                            'lambda_ar': 0.05,
                                            'lambda_q': 0.5,
                                            'd_gan_scale': 0.5}}},
                    {'name': 'cadc-only',
                     'description': 'Table 5 row 1: CADC, no CACA',
                     'overrides': {'model': {'generator': {'cadc': True, 'caca': False}}}},
                    {'name': 'caca-only',
                     'description': 'Table 5 row 2: CACA, no CADC',
                     'overrides': {'model': {'generator': {'cadc': False, 'caca': True}}}},
                    {'name': 'no-fmr',
                     'description': 'Table 5 row 3: temporal frame order instead of FMR',
                     'overrides': {'data': {'frame_order': 'temporal'}}},
                    {'name': 'paper-block',
                     'description': "paper's ContAda block and 64-ch bilinear mapping (Fig. 6) "
                                    "instead of the release's",
                     'overrides': {'model': {'generator': {'variant': 'paper'}}}}],
        'default_preset': 'paper',
        'cli_options': [{'option': 'frame_order',
                         'key': 'data.frame_order',
                         'type': 'str',
                         'help': 'fmr (train_filelist.txt order) or temporal'},
                        {'option': 'crop',
                         'key': 'data.crop',
                         'type': 'int',
                         'help': 'training crop size in pixels (256)'}],
        'origin': 'faceblur_bench.methods.cfmd.training',
    },
    'dfpg': {
        'description': ('DFPGnet (Jung et al., WACV 2022): prior stream + channel-attention '
                        'feature discriminator; λ_adv 0.05, λ_prior 1; Adam G 1e-4 / D 1e-5 '
                        'x0.99/epoch; batch 16; 300 epochs'),
        'data_help': ('the MSPL training layout: train_img/, train_label/ (19-class) or '
                      'train_label_cls4/, optional trainkernels/blur_k{13..27}.mat and '
                      'validationset/{gt,blur}/'),
        'method': 'dfpg',
        'presets': [{'name': 'B1',
                     'description': 'deblurring stream only, L_pixel',
                     'overrides': {'model': {'generator': {'prior_stream': False,
                                                           'feature_transform': False},
                                             'discriminator': {'channel_attention': False}},
                                   'loss': {'perceptual': False,
                                            'prior': False,
                                            'adversarial': False}}},
                    {'name': 'B2',
                     'description': 'B1 + VGGFace perceptual loss',
                     'overrides': {'model': {'generator': {'prior_stream': False,
                                                           'feature_transform': False},
                                             'discriminator': {'channel_attention': False}},
                                   'loss': {'perceptual': True,
                                            'prior': False,
                                            'adversarial': False}}},
                    {'name': 'B3',
                     'description': '+ prior stream without feature transforms, L_prior',
                     'overrides': {'model': {'generator': {'prior_stream': True,
                                                           'feature_transform': False},
                                             'discriminator': {'channel_attention': False}},
                                   'loss': {'perceptual': False,
                                            'prior': True,
                                            'adversarial': False}}},
                    {'name': 'B4',
                     'description': '+ SSFT/SFT feature transforms',
                     'overrides': {'model': {'generator': {'prior_stream': True,
                                                           'feature_transform': True},
                                             'discriminator': {'channel_attention': False}},
                                   'loss': {'perceptual': False,
                                            'prior': True,
                                            'adversarial': False}}},
                    {'name': 'B5',
                     'description': '+ feature discriminator (no channel attention)',
                     'overrides': {'model': {'generator': {'prior_stream': True,
                                                           'feature_transform': True},
                                             'discriminator': {'channel_attention': False}},
                                   'loss': {'perceptual': False,
                                            'prior': True,
                                            'adversarial': True}}},
                    {'name': 'B6',
                     'description': '+ channel-attention discriminator and prior loss (full '
                                    'DFPGnet)',
                     'overrides': {'model': {'generator': {'prior_stream': True,
                                                           'feature_transform': True},
                                             'discriminator': {'channel_attention': True}},
                                   'loss': {'perceptual': False,
                                            'prior': True,
                                            'adversarial': True}}}],
        'default_preset': 'B6',
        'cli_options': [],
        'origin': 'faceblur_bench.methods.dfpg.training',
    },
    'mspl-gan': {
        'description': ('MSPL-GAN (Lee et al. 2020): 4 stacked U-Nets, stage-masked L1 + '
                        'adversarial 0.05 + VGGFace L1 0.05; Adam 1e-4 (G, D) x0.99/epoch; batch '
                        '16; 200 epochs'),
        'data_help': ('the MSPL training layout: train_img/, train_label_cls4/ (4-class) or '
                      'train_label/ (19-class, merged to 4), optional '
                      'trainkernels/blur_k{13..27}.mat and validationset/{gt,blur}/'),
        'method': 'mspl-gan',
        'presets': [{'name': 'full',
                     'description': 'stage L1 + adversarial ×0.05 + VGGFace L1 ×0.05 (the paper)',
                     'overrides': {'loss': {'adversarial': True, 'vgg': True}}},
                    {'name': 'no-adv',
                     'description': 'stage L1 + VGGFace L1 (no discriminator)',
                     'overrides': {'loss': {'adversarial': False, 'vgg': True}}},
                    {'name': 'no-vgg',
                     'description': 'stage L1 + adversarial',
                     'overrides': {'loss': {'adversarial': True, 'vgg': False}}},
                    {'name': 'l1',
                     'description': 'stage L1 only (what the released trainer optimised: it '
                                    'detached D/VGG inputs)',
                     'overrides': {'loss': {'adversarial': False, 'vgg': False}}}],
        'default_preset': 'full',
        'cli_options': [],
        'origin': 'faceblur_bench.methods.mspl.training',
    },
    'sappgan': {
        'description': ('SAPPGAN (Han et al., IEEE Access 2023): DFPGnet generator + SAPP '
                        'discriminator, PW loss, coarse-to-fine α; λ = 1, 1, 0.06; Adam 1e-4 '
                        'x0.99/epoch; batch 16; 300 epochs'),
        'data_help': ('the MSPL training layout: train_img/, train_label/ (19-class) or '
                      'train_label_cls4/, optional trainkernels/blur_k{13..27}.mat and '
                      'validationset/{gt,blur}/'),
        'method': 'sappgan',
        'presets': [{'name': 'S0',
                     'description': 'DFPGnet generator, L_pixel + L_feat, no adversarial loss',
                     'overrides': {'loss': {'adversarial': False,
                                            'prediction_weighted': False,
                                            'coarse_to_fine': False},
                                   'model': {'discriminator': {'conditional': False}}}},
                    {'name': 'S1',
                     'description': '+ U-Net discriminator (per-image + per-pixel BCE)',
                     'overrides': {'loss': {'adversarial': True,
                                            'prediction_weighted': False,
                                            'coarse_to_fine': False},
                                   'model': {'discriminator': {'conditional': False}}}},
                    {'name': 'S2',
                     'description': '+ U-Net discriminator with PW loss',
                     'overrides': {'loss': {'adversarial': True,
                                            'prediction_weighted': True,
                                            'coarse_to_fine': False},
                                   'model': {'discriminator': {'conditional': False}}}},
                    {'name': 'S3',
                     'description': '+ SAPP discriminator (pixel-wise projection), no PW',
                     'overrides': {'loss': {'adversarial': True,
                                            'prediction_weighted': False,
                                            'coarse_to_fine': False},
                                   'model': {'discriminator': {'conditional': True}}}},
                    {'name': 'S4',
                     'description': '+ SAPP discriminator + PW loss',
                     'overrides': {'loss': {'adversarial': True,
                                            'prediction_weighted': True,
                                            'coarse_to_fine': False},
                                   'model': {'discriminator': {'conditional': True}}}},
                    {'name': 'S5',
                     'description': '+ SAPP + PW + coarse-to-fine α (full SAPPGAN)',
                     'overrides': {'loss': {'adversarial': True,
                                            'prediction_weighted': True,
                                            'coarse_to_fine': True},
                                   'model': {'discriminator': {'conditional': True}}}}],
        'default_preset': 'S5',
        'cli_options': [],
        'origin': 'faceblur_bench.methods.sappgan.training',
    },
    'shen': {
        'description': ('Shen et al. (IJCV 2020): G_c, P, G_f in four progressive stages '
                        '(200k/60k/200k/100k it), eq. 11 weights 50, 1e-4, 1e-5, 5e-5; Adam 4e-5 '
                        '/ P 5e-6; batch 16'),
        'data_help': ('sharp aligned faces with 11-class Helen labels: images/{name}.png|jpg and '
                      'labels/{name}.png (or labels/{name}/{name}_lbl00..10.png); '
                      'docs/methods-shen.md'),
        'method': 'shen',
        'presets': [{'name': 'ijcv',
                     'description': 'IJCV 2020: coarse net, parsing net on its output, fine net '
                                    "(the paper's 'Ours')",
                     'overrides': {'model': {'shen': {}}}},
                    {'name': 'n2',
                     'description': 'IJCV with 2 cascaded fine deblurring nets (Table 8)',
                     'overrides': {'model': {'shen': {'fine_nets': 2}}}},
                    {'name': 'n3',
                     'description': 'IJCV with 3 cascaded fine deblurring nets (Table 8)',
                     'overrides': {'model': {'shen': {'fine_nets': 3}}}},
                    {'name': 'n2-shared',
                     'description': 'IJCV applying one fine net twice (Table 8, shared weights)',
                     'overrides': {'model': {'shen': {'fine_nets': 2, 'share_fine': True}}}},
                    {'name': 'n3-shared',
                     'description': 'IJCV applying one fine net three times (Table 8, shared '
                                    'weights)',
                     'overrides': {'model': {'shen': {'fine_nets': 3, 'share_fine': True}}}},
                    {'name': 'k5',
                     'description': 'IJCV with a 5x5 first layer (Table 7)',
                     'overrides': {'model': {'shen': {'first_kernel': 5}}}},
                    {'name': 'k9',
                     'description': 'IJCV with a 9x9 first layer (Table 7)',
                     'overrides': {'model': {'shen': {'first_kernel': 9}}}},
                    {'name': 'k13',
                     'description': 'IJCV with a 13x13 first layer (Table 7)',
                     'overrides': {'model': {'shen': {'first_kernel': 13}}}},
                    {'name': 'lc-only',
                     'description': 'Table 4 row 1: G_f trained with L_c only (no L_s, L_VGG, '
                                    'L_adv)',
                     'overrides': {'loss': {'lambda_s': 0.0,
                                            'lambda_vgg': 0.0,
                                            'lambda_adv': 0.0}}},
                    {'name': 'equal-ls',
                     'description': 'Table 4 row 2: L_c + equal-weight L_s (the CVPR 2018 loss), '
                                    'no L_VGG / L_adv',
                     'overrides': {'loss': {'structural': 'equal',
                                            'lambda_vgg': 0.0,
                                            'lambda_adv': 0.0}}},
                    {'name': 'adaptive-ls',
                     'description': 'Table 4 row 3: L_c + adaptive L_s, no L_VGG / L_adv',
                     'overrides': {'loss': {'lambda_vgg': 0.0, 'lambda_adv': 0.0}}}],
        'default_preset': 'ijcv',
        'cli_options': [{'option': 'stage',
                         'key': 'schedule.stage',
                         'type': 'int',
                         'help': 'Run only stage N (1 G_c, 2 P, 3 G_f, 4 joint); 0 runs all four'},
                        {'option': 'init_from',
                         'key': 'schedule.init_from',
                         'type': 'str',
                         'help': "Checkpoint of the previous stage's run whose networks to start "
                                 'from'}],
        'origin': 'faceblur_bench.methods.shen.training',
    },
    'yun': {
        'description': ('Yun et al. (joint face SR and deblurring): joint x8 SR + deblurring GAN, '
                        'LSGAN D_g + D_l, L_GAN + 100 L_pix + 10 L_VGG, Adam 2e-4 (0.5, 0.999)'),
        'data_help': ("the release's trainx8/ (32x32), wblur/, GT/, fmask/ (256x256) folders; or "
                      'sharp faces in train_img/ (+ train_label/ 19-class maps for the face '
                      'mask), blurred and x8-downsampled on the fly'),
        'method': 'yun',
        'presets': [{'name': 'paper',
                     'description': 'as the paper describes: 7-layer Ds, VGG-19 pool1-5, batch '
                                    '64, D_l added after 200 epochs, flips',
                     'overrides': {'batch_size': 64,
                                   'model': {'discriminator': {'layers': 7}},
                                   'loss': {'vgg_layers': ['pool1',
                                                           'pool2',
                                                           'pool3',
                                                           'pool4',
                                                           'pool5'],
                                            'vgg_weights': [1.0, 1.0, 1.0, 1.0, 1.0],
                                            'local_from_epoch': 200},
                                   'data': {'hflip': True}}},
                    {'name': 'notebooks',
                     'description': 'as the released notebooks train: PatchGAN Ds, VGG-19 '
                                    'relu1_1-5_1 (1/32..1), batch 16, no staging',
                     'overrides': {}}],
        'default_preset': 'notebooks',
        'cli_options': [],
        'origin': 'faceblur_bench.methods.yun.training',
    },
}
