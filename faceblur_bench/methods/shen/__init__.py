"""Shen et al., "Exploiting Semantics for Face Image Deblurring" (IJCV 2020; CVPR 2018 release).

Importing the package registers the ``shen`` methods (:mod:`.method`).
"""
