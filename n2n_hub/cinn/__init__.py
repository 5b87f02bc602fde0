"""The conditional INN: pure torch, knows nothing about experts."""

from .actnorm import ActNorm
from .coupling import AlternatingCoupling, FixedPermutation, INNBlock
from .embedders import ConditionSpec, make_embedder
from .flow import ConditionalINN
from .projection import ConditionProjection, fit_probe
from .nll import gaussian_nll, nats_to_bits, standard_normal_nll_per_dim

__all__ = [
    "ActNorm", "AlternatingCoupling", "ConditionProjection", "ConditionSpec", "ConditionalINN", "FixedPermutation", "INNBlock",
    "fit_probe", "gaussian_nll", "make_embedder", "nats_to_bits", "standard_normal_nll_per_dim",
]
