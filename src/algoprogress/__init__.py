"""Measure the algorithmic efficiency of neural networks (Hernandez & Brown, 2020).

Modules, one job each: ``config`` (validation), ``architectures`` (models by name), ``data``
(images to FFCV), ``flops`` (the FLOP convention), ``loaders`` (FFCV pipelines), ``training``
(curves), ``curves`` (the curve schema), ``thresholds`` (compute at threshold), ``trend`` (the
regression on publication date), ``plots`` (figures).
"""

__version__ = "0.1.0"
