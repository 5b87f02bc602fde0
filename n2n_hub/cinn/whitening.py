"""A fixed, data-fitted affine whitening: the flow's first layer.

Expert latents are often strongly correlated: the animals VAE-GAN's 128-d encodings keep
98 % of their variance in 20 directions. Affine couplings with per-dimension ActNorm learn
such a near-degenerate covariance slowly, and until they do, samples leave the thin region
the decoder was trained on. Whitening with the training targets' mean and Cholesky factor
turns the target isotropic before the first coupling, so the couplings only model what is
left; sampling errors in the low-variance directions shrink by the same factor on the way
back. It is an exact, volume-tracked affine map, so the flow's density is still p(z | c).
"""

from __future__ import annotations

import torch

from .fitted import FittedOnce

# Ridge added to the covariance, relative to its mean variance: keeps the Cholesky factor
# well conditioned when the data are rank-deficient (constant or duplicated dimensions).
RELATIVE_RIDGE = 1e-4
# Above this dimension the two D×D factors cost more memory than the flow itself.
MAX_DIM = 4096


class Whitening(FittedOnce):
    """``v = L⁻¹ (z − μ)`` with μ and ``L Lᵀ = Σ + ridge·I`` fitted from data.

    Like ActNorm, it is fitted once, from data: by :meth:`fit` (the trainer passes the
    whole training target set) or else from the first batch seen in training mode.
    Mean and factors are buffers: saved with the weights, never trained.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("lower", torch.eye(dim))

    @torch.no_grad()
    def fit(self, z: torch.Tensor) -> None:
        """Set μ and L from rows of z (N×D, N ≥ 2), in float64 for a stable factorisation."""
        if z.dim() != 2 or z.shape[1] != self.dim or z.shape[0] < 2:
            raise ValueError(f"whitening needs at least 2 rows of dimension {self.dim}, got {tuple(z.shape)}")
        x = z.detach().to(torch.float64)
        mean = x.mean(0)
        centred = x - mean
        cov = centred.T @ centred / x.shape[0]
        ridge = RELATIVE_RIDGE * max(float(cov.diagonal().mean()), 1e-12)
        lower = torch.linalg.cholesky(cov + ridge * torch.eye(self.dim, dtype=torch.float64, device=x.device))
        self.mean.copy_(mean.to(self.mean.dtype))
        self.lower.copy_(lower.to(self.lower.dtype))
        self.mark_fitted()

    def initialize_from(self, z: torch.Tensor) -> None:
        """Data-dependent initialisation: fit μ and L to the rows of ``z``."""
        self.fit(z)

    @property
    def is_initialized(self) -> bool:
        """Whether μ and L have been fitted (or loaded)."""
        return self._fitted

    def forward(self, x: torch.Tensor, rev: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(y, log|det dy/dx|)`` per sample; ``rev`` maps v back to z."""
        if not rev and self.training and not self._fitted:
            self.fit(x)
        log_det = -self.lower.diagonal().to(torch.promote_types(x.dtype, torch.float32)).log().sum()  # log|det ∂v/∂z|
        if rev:
            return torch.addmm(self.mean, x, self.lower.T), (-log_det).expand(x.shape[0])
        return self.whiten(x), log_det.expand(x.shape[0])

    def whiten(self, z: torch.Tensor) -> torch.Tensor:
        """``v = L⁻¹ (z − μ)``, without the log-det (the flow's inference form calls this too).

        A triangular solve rather than a stored inverse: exact to the working precision,
        whatever dtype the module was cast to after fitting. Half precisions solve in float32
        (torch has no bfloat16 solve on the CPU) and return their own dtype.
        """
        work = torch.promote_types(z.dtype, torch.float32)
        lower_t, centred = self.lower.T.to(work), (z - self.mean).to(work)
        return torch.linalg.solve_triangular(lower_t, centred, upper=True, left=False).to(z.dtype)
