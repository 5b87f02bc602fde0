"""The conditional invertible neural network τ of Net2Net (Sec. 3, G.1).

Direction convention: ``forward(z, c)`` computes the residual ``v = τ⁻¹(z | c)`` with
``log|det ∂v/∂z|`` (the training direction); ``inverse(v, c)`` computes ``z = τ(v | c)``.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..base.blocks import in_blocks
from ..errors import ShapeError
from .actnorm import ActNorm
from .coupling import INNBlock
from .embedders import ConditionSpec, make_embedder
from .inference import InferenceForm
from .nll import gaussian_nll
from .projection import ConditionProjection
from .whitening import MAX_DIM as MAX_WHITENED_DIM
from .whitening import Whitening
from .wide_linear import WideLinear


def _full_precision(x: torch.Tensor) -> torch.autocast:
    """Autocast off for the enclosed maths (whitening), whatever autocast the caller set."""
    return torch.autocast(x.device.type, enabled=False)


def _forget_inference_form(module: "ConditionalINN", incompatible_keys: Any) -> None:
    module._inference_form = None


class ConditionalINN(nn.Module):
    """τ: whitening, then ``n_blocks`` × (alternating affine coupling, ActNorm, permutation), with embedder H.

    Args:
        dim: dimension D of the target representation z_Θ (any D ≥ 2).
        condition: what the source representation z_Φ looks like; picks H.
        n_blocks: number of INN blocks (paper: 20).
        hidden: width of every coupling subnet (paper: 8·D).
        depth: hidden layers per subnet (paper: 3).
        cond_dim: size of h = H(z_Φ) (paper: D).
        embed_hidden: width of the vector embedder's MLP.
        clamp: soft clamp of coupling log-scales.
        seed: seed of the initial weights and the fixed permutations (the global RNG is
            neither read nor advanced, so equal configs build equal flows).
        whiten: start with a fixed affine whitening fitted to the training targets
            (:class:`~n2n_hub.cinn.whitening.Whitening`); default: on for D ≤ 4096, where
            its D×D factor stays small. The resolved value is part of :meth:`config`.
        condition_projection: read a vector condition through K fitted class logits
            (:class:`~n2n_hub.cinn.projection.ConditionProjection`) instead of whole; K is
            the number of classes. The trainer fits it to the training pairs' labels before
            step 0 (:meth:`fit_condition`). None (default): the embedder reads the condition.
        condition_projection_kind: how the projection is fitted (``"probe"``: multinomial
            logistic regression).
    """

    kind = "cinn"
    # Bump when the module's structure changes for the same config, so cache keys change too.
    arch_version = 3

    def __init__(self, dim: int, condition: ConditionSpec, n_blocks: int = 20, hidden: int | None = None,
                 depth: int = 3, cond_dim: int | None = None, embed_hidden: int | None = None,
                 clamp: float = 2.0, seed: int = 0, whiten: bool | None = None,
                 condition_projection: int | None = None, condition_projection_kind: str = "probe") -> None:
        super().__init__()
        if dim < 2:
            raise ShapeError(f"the flow needs a target dimension >= 2, got {dim}")
        if n_blocks < 1:
            raise ValueError(f"n_blocks must be >= 1, got {n_blocks}")
        self.dim = dim
        self.condition = condition
        self.n_blocks = n_blocks
        self.hidden = hidden or 8 * dim
        self.depth = depth
        self.cond_dim = cond_dim or dim
        self.embed_hidden = embed_hidden or max(self.cond_dim, 256)
        self.clamp = clamp
        self.seed = seed
        self.whiten = dim <= MAX_WHITENED_DIM if whiten is None else bool(whiten)
        self.whitening = Whitening(dim) if self.whiten else None
        self.projection: ConditionProjection | None = None
        embedded = condition
        if condition_projection is not None:
            if condition.kind != "vector":
                raise ShapeError(f"condition_projection reads vector conditions; this flow's condition is "
                                 f"{condition.kind} {condition.shape}: drop condition_projection")
            self.projection = ConditionProjection(condition.shape[0], int(condition_projection),
                                                  condition_projection_kind)
            embedded = ConditionSpec((int(condition_projection),), "vector")
        # Initial weights come from ``seed`` too, drawn inside a forked RNG: building a flow
        # neither depends on nor advances the caller's global random state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.embedder = make_embedder(embedded, self.cond_dim, self.embed_hidden)
            # The condition's share of every subnet's first layer, for all 2·n subnets in one matmul.
            self.cond_proj = WideLinear(self.cond_dim, 2 * n_blocks * self.hidden)
            self.blocks = nn.ModuleList(
                INNBlock(dim, self.hidden, depth, clamp, seed=seed * 1_000_003 + i) for i in range(n_blocks)
            )
        self._inference_form: InferenceForm | None = None
        self.register_load_state_dict_post_hook(_forget_inference_form)  # also when loading assigns new tensors

    # -- construction -----------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild this module (stored in translator files)."""
        cfg = {
            "dim": self.dim, "condition": self.condition.to_dict(), "n_blocks": self.n_blocks,
            "hidden": self.hidden, "depth": self.depth, "cond_dim": self.cond_dim,
            "embed_hidden": self.embed_hidden, "clamp": self.clamp, "seed": self.seed, "whiten": self.whiten,
        }
        if self.projection is not None:  # absent otherwise: keys of flows without one stay as they were
            cfg["condition_projection"] = self.projection.out_features
            cfg["condition_projection_kind"] = self.projection.kind
        return cfg

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "ConditionalINN":
        cfg = dict(cfg)
        cfg["condition"] = ConditionSpec.from_dict(cfg["condition"])
        return cls(**cfg)

    # -- core maps --------------------------------------------------------------------
    def embed(self, c: torch.Tensor) -> list[torch.Tensor]:
        """h = H(c), projected once into each subnet's first layer."""
        return list(self.cond_proj(self.embedded(c)).chunk(2 * self.n_blocks, dim=-1))

    def embedded(self, c: torch.Tensor) -> torch.Tensor:
        """h = H(c), through the condition projection where the flow has one."""
        if self.projection is not None:
            c = self.projection(c)
        return self.embedder(c)

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(v, log|det ∂v/∂z|)`` with ``v = τ⁻¹(z | c)``."""
        cs = self.embed(c)
        logdet = z.new_zeros(z.shape[0])
        if self.whitening is not None:
            with _full_precision(z):  # a triangular solve: kept out of bf16 autocast
                z, logdet = self.whitening(z)
        for i, block in enumerate(self.blocks):
            z, ld = block(z, cs[2 * i], cs[2 * i + 1])
            logdet = logdet + ld
        return z, logdet

    def inverse(self, v: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``z = τ(v | c)``."""
        cs = self.embed(c)
        for i in reversed(range(self.n_blocks)):
            v, _ = self.blocks[i](v, cs[2 * i], cs[2 * i + 1], rev=True)
        if self.whitening is not None:
            with _full_precision(v):
                v, _ = self.whitening(v, rev=True)
        return v

    # -- the inference form: no log-dets, folded parts (n2n_hub.cinn.inference) ------------
    def inference_form(self) -> InferenceForm:
        """The folded form of the current weights, built on first use and again after they change."""
        form = self._inference_form
        if form is None or not form.matches(self):
            form = self._inference_form = InferenceForm(self)
        return form

    def _apply(self, fn, recurse: bool = True):  # type: ignore[override]
        self._inference_form = None  # .to(), .double(), ...: tensors are replaced, not written
        return super()._apply(fn, recurse)

    def train(self, mode: bool = True) -> "ConditionalINN":
        self._inference_form = None  # training is about to change the weights
        return super().train(mode)

    def _fast(self, x: torch.Tensor) -> bool:
        """Whether a call may take the inference form: eval mode, no gradients wanted, no autocast to honour.

        In training mode the plain modules run: an ActNorm may still initialise itself, and
        an optimiser may be writing the weights (torch's fused Adam does so without bumping
        the version counters the form checks; :meth:`train` drops the form).
        """
        return not (self.training or torch.is_grad_enabled() or torch.is_autocast_enabled(x.device.type))

    def sample_inverse(self, v: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``z = τ(v | c)`` as :meth:`inverse` gives it, through the inference form where no gradient is wanted."""
        if not self._fast(v):
            return self.inverse(v, c)
        form = self.inference_form()
        with torch.inference_mode():  # fewer dispatch layers per op: most of a batch-1 call
            z = form.inverse(v, self.embedded(c))
        return z.clone()  # an ordinary tensor again, which the caller may use under autograd

    def sample_residual(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``v = τ⁻¹(z | c)`` as :meth:`forward` gives it (without the log-det), through the inference form."""
        if not self._fast(z):
            return self(z, c)[0]
        form = self.inference_form()
        with torch.inference_mode():
            v = form.residual(z, self.embedded(c))
        return v.clone()

    def nll(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Per-sample NLL of z given c in nats (Eq. 4 plus the Gaussian constant)."""
        v, logdet = self(z, c)
        return gaussian_nll(v, logdet)

    def loss(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """The training objective of the translator contract: the per-sample NLL in nats."""
        return self.nll(z, c)

    def log_prob(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return -self.nll(z, c)

    @torch.no_grad()
    def initialize(self, z: torch.Tensor, c: torch.Tensor, whitening_rows: torch.Tensor | None = None) -> None:
        """Data-dependent initialisation (done lazily from the first training batch otherwise).

        The whitening is fitted to ``whitening_rows`` (the more rows, the better its covariance;
        the trainer passes the training targets), or to ``z``; ActNorm to the batch ``(z, c)``.
        """
        was = self.training
        self.train()
        if self.whitening is not None:
            self.whitening.initialize_from(z if whitening_rows is None else whitening_rows.to(z))
        for block in self.blocks:
            block.actnorm.reset()
        self(z, c)
        self.train(was)

    def data_init_rows(self) -> int:
        """How many training targets :meth:`initialize` wants as ``whitening_rows`` (0 without whitening).

        16·D rows give a D×D covariance a stable Cholesky factor; the trainer gives more where it has them.
        """
        return 16 * self.dim if self.whitening is not None else 0

    def needs_condition_fit(self) -> bool:
        """Whether a condition projection waits for :meth:`fit_condition` (then training needs labels)."""
        return self.projection is not None and not self.projection.is_fitted

    @torch.no_grad()
    def fit_condition(self, c: torch.Tensor, labels: torch.Tensor) -> None:
        """Fit the condition projection to all training conditions ``c`` and their class ids ``labels``."""
        if self.projection is None:
            raise ValueError("this flow has no condition projection to fit")
        self.projection.fit(self.condition.check(c, "training conditions"), labels)

    def condition_logits(self, c: torch.Tensor) -> torch.Tensor | None:
        """What the flow reads of ``c`` through its projection (class logits), or None without one."""
        if self.projection is None:
            return None
        return self.projection(self.condition.check(c))

    def needs_data_init(self) -> bool:
        """Whether an ActNorm or the whitening has not seen data yet (then :meth:`initialize` is due)."""
        norms = [m for m in self.modules() if isinstance(m, (ActNorm, Whitening))]
        return not all(m.is_initialized for m in norms)

    # -- user-facing operations -------------------------------------------------------
    def _check(self, z: torch.Tensor | None, c: torch.Tensor) -> torch.Tensor:
        c = self.condition.check(c)
        if z is not None:
            if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != self.dim:
                got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
                raise ShapeError(f"target representation has shape {got}, expected (B, {self.dim})")
            if z.shape[0] != c.shape[0]:
                raise ShapeError(f"got {z.shape[0]} targets but {c.shape[0]} conditions")
        return c

    @torch.no_grad()
    def sample(self, c: torch.Tensor, n: int = 1, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples z ~ p(z | c) per condition, shape ``(B, n, D)``.

        ``temperature`` scales v ~ N(0, I); below 1 trades diversity for typicality.
        """
        return self.sample_batch([(c, n, temperature, generator)])[0]

    @torch.no_grad()
    def sample_batch(self, requests: Sequence[tuple[torch.Tensor, int, float, torch.Generator | None]],
                     block: int | None = None) -> list[torch.Tensor]:
        """Several callers' samples in one pass of the flow: ``(B_i, n_i, D)`` per ``(c, n, temperature, generator)``.

        Each request draws its residuals from its own generator, in the order :meth:`sample`
        draws them; with ``block`` the flow runs on fixed blocks of that many rows (see
        :func:`~n2n_hub.base.blocks.in_blocks`), so a request's bits do not depend on the others.
        """
        ref = next(self.parameters())
        vs, cs, shapes = [], [], []
        for c, n, temperature, generator in requests:
            c = self._check(None, c).to(ref.device)
            if n < 1:
                raise ValueError(f"n must be >= 1, got {n}")
            if temperature < 0:
                raise ValueError(f"temperature must be >= 0, got {temperature}")
            b = c.shape[0]
            vs.append(torch.randn(b * n, self.dim, generator=generator, device=ref.device, dtype=ref.dtype)
                      * temperature)
            cs.append(c.repeat_interleave(n, dim=0))
            shapes.append((b, n))
        if not shapes:
            return []
        z = in_blocks(self.sample_inverse, torch.cat(vs), torch.cat(cs), block=block)
        out, start = [], 0
        for b, n in shapes:
            out.append(z[start:start + b * n].view(b, n, self.dim))
            start += b * n
        return out

    @torch.no_grad()
    def residual(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """v = τ⁻¹(z | c): what the condition does not determine about z."""
        c = self._check(z, c)
        return self.sample_residual(z, c)

    @torch.no_grad()
    def transfer(self, z_a: torch.Tensor, c_a: torch.Tensor, c_b: torch.Tensor) -> torch.Tensor:
        """Keep z_a's residual, swap its condition for c_b (exemplar-guided / unpaired, Eq. 6)."""
        v = self.residual(z_a, c_a)
        c_b = self._check(None, c_b)
        if c_b.shape[0] != v.shape[0]:
            raise ShapeError(f"got {v.shape[0]} exemplars but {c_b.shape[0]} new conditions")
        return self.sample_inverse(v, c_b)
