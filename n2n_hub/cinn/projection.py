"""A fixed, data-fitted projection of the condition: what the flow reads of z_Φ.

A sentence embedding carries the class of a caption in a few directions and its phrasing in
all the others. A flow that reads the whole 384-d embedding learns the class from the
phrasings it saw in training, and prompts phrased otherwise (synonyms, descriptions) fall
off that manifold. A linear probe fitted to the training captions' class labels keeps only
the class evidence: the flow then reads the probe's K class logits, which prompts of any
phrasing move the way the text itself does.

The probe is a multinomial logistic regression with a small L2 penalty, fitted full-batch
by L-BFGS in float64 from zero weights, on standardised features: no random numbers, so the
same data always give the same weights. Like the whitening, it is fitted once before the
flow trains, and its weights are buffers (saved with the translator, never trained).
"""

from __future__ import annotations

import torch

from .fitted import FittedOnce

from ..errors import InputError, ShapeError, TrainingError

PROJECTION_KINDS = ("probe",)
# L2 penalty on the standardised weights, per mean training example: enough to keep the
# logits finite on separable captions, small against the data term.
PROBE_L2 = 1e-3
PROBE_MAX_ITER = 500


def fit_probe(x: torch.Tensor, labels: torch.Tensor, num_classes: int, l2: float = PROBE_L2,
              max_iter: int = PROBE_MAX_ITER) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight (K, C), bias (K,))`` of a multinomial logistic regression, ``logits = x @ weight.T + bias``.

    Deterministic: identical rows are merged with their counts as weights (the objective is
    unchanged), features are standardised, and L-BFGS starts from zero in float64.
    """
    if x.dim() != 2 or labels.dim() != 1 or x.shape[0] != labels.shape[0] or x.shape[0] < 2:
        raise ShapeError(f"a probe needs N >= 2 rows of features and N labels, got {tuple(x.shape)} and "
                         f"{tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ShapeError(f"probe labels must be integer class ids, got dtype {labels.dtype}")
    labels = labels.long().cpu()
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise InputError(f"the training labels run from {int(labels.min())} to {int(labels.max())}, but the "
                         f"condition projection has {num_classes} classes; set condition_projection to the "
                         "number of classes")
    x64 = x.detach().to("cpu", torch.float64).reshape(x.shape[0], -1)
    if not torch.isfinite(x64).all():
        raise TrainingError("the training conditions contain NaN/inf, so the condition projection cannot be "
                            "fitted: check the data")
    rows, inverse = torch.unique(torch.cat([x64, labels[:, None].double()], 1), dim=0, return_inverse=True)
    weights = torch.bincount(inverse, minlength=rows.shape[0]).double()
    weights = weights / weights.sum()
    xs, ys = rows[:, :-1], rows[:, -1].long()
    mean = (weights[:, None] * xs).sum(0)
    std = ((weights[:, None] * (xs - mean) ** 2).sum(0)).sqrt().clamp_min(1e-12)
    xs = (xs - mean) / std
    w = torch.zeros(num_classes, xs.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, history_size=20, tolerance_grad=1e-10,
                            tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        nll = torch.nn.functional.cross_entropy(xs @ w.T + b, ys, reduction="none")
        loss = (weights * nll).sum() + 0.5 * l2 * w.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    w_raw = (w.detach() / std)  # fold the standardisation into the weights
    return w_raw, b.detach() - w_raw @ mean


class ConditionProjection(FittedOnce):
    """``x ↦ x @ weightᵀ + bias``: a vector condition of C entries read as K class logits.

    Fitted by :meth:`fit` to labelled training conditions (:func:`fit_probe`); until then it
    refuses to run, because an unfitted projection would hand the flow constant zeros.
    """

    def __init__(self, in_features: int, out_features: int, kind: str = "probe") -> None:
        super().__init__()
        if kind not in PROJECTION_KINDS:
            raise InputError(f"unknown condition_projection_kind {kind!r}; use one of {PROJECTION_KINDS}")
        if out_features < 1:
            raise InputError(f"condition_projection must be >= 1 (the number of classes), got {out_features}")
        self.kind = kind
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight", torch.zeros(out_features, in_features))
        self.register_buffer("bias", torch.zeros(out_features))

    @torch.no_grad()
    def fit(self, x: torch.Tensor, labels: torch.Tensor) -> None:
        """Fit the probe to conditions ``x`` (N×C) and their class ids ``labels`` (N,)."""
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ShapeError(f"the condition projection reads {self.in_features} entries per row, got "
                             f"{tuple(x.shape)}")
        weight, bias = fit_probe(x, labels, self.out_features)
        self.weight.copy_(weight.to(self.weight))
        self.bias.copy_(bias.to(self.bias))
        self.mark_fitted()

    @property
    def is_fitted(self) -> bool:
        return self._fitted

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._fitted:
            raise TrainingError(
                f"this translator's condition projection ({self.kind}, {self.out_features} classes) was never "
                "fitted, so it cannot read conditions: train it on pairs with class labels (the trainer fits "
                "it before the first step), or load a trained translator file")
        return torch.addmm(self.bias.to(x.dtype), x, self.weight.T.to(x.dtype))
