"""Training-side math of a DDPM with learned variance (improved DDPM, as DiT trains).

    gd = GaussianDiffusion.linear(1000)
    x_t = gd.q_sample(x0, t, noise)
    out = gd.losses(model_output, x0, x_t, t, noise)     # loss = mse + vb, per sample; x0_hat
        model_output (B, 2C, H, W): eps and the variance interpolation v in [-1, 1]

loss = MSE(eps_hat, eps) + VB, where VB is the KL between the true posterior
q(x_{t-1} | x_t, x0) and the model's Gaussian (mean from the *detached* eps,
log variance interpolated between the clipped posterior variance and beta_t),
or the discretised decoder NLL at t = 0, in bits per dimension. Without
learned variance (C output channels) the loss is the MSE alone.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["GaussianDiffusion", "normal_kl", "discretized_gaussian_log_likelihood", "DIT_SCHEDULE"]

# DiT's noise schedule (facebookresearch/DiT diffusion/__init__.py create_diffusion: linear betas over 1000 steps,
# gaussian_diffusion.get_named_beta_schedule("linear")): the training losses here and the sampler
# (sas.generators.dit.dit_scheduler) both read it
DIT_SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02}


def normal_kl(mean1, logvar1, mean2, logvar2):
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def _approx_std_normal_cdf(x):
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def discretized_gaussian_log_likelihood(x, means, log_scales):
    """Log-likelihood of data in [-1, 1] discretised to 256 bins under a Gaussian."""
    centered = x - means
    inv_stdv = torch.exp(-log_scales)
    cdf_plus = _approx_std_normal_cdf(inv_stdv * (centered + 1.0 / 255.0))
    cdf_min = _approx_std_normal_cdf(inv_stdv * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_delta))


def _at(table: Tensor, t: Tensor, ndim: int) -> Tensor:
    """table[t] as (B, 1, ..., 1) float32; the table already lives on t's device (GaussianDiffusion._on)."""
    return table[t].view(-1, *([1] * (ndim - 1)))


class GaussianDiffusion:
    def __init__(self, betas: Tensor):
        b = betas.double()
        self.num_timesteps = b.numel()
        acp = torch.cumprod(1 - b, 0)
        acp_prev = torch.cat([torch.ones(1, dtype=b.dtype), acp[:-1]])
        self.betas, self.alphas_cumprod = b, acp
        self.sqrt_acp, self.sqrt_1m_acp = acp.sqrt(), (1 - acp).sqrt()
        self.sqrt_recip_acp, self.sqrt_recipm1_acp = (1 / acp).sqrt(), (1 / acp - 1).sqrt()
        post_var = b * (1 - acp_prev) / (1 - acp)
        self.posterior_log_variance_clipped = torch.log(torch.cat([post_var[1:2], post_var[1:]]))
        self.posterior_mean_coef1 = b * acp_prev.sqrt() / (1 - acp)
        self.posterior_mean_coef2 = (1 - acp_prev) * (1 - b).sqrt() / (1 - acp)
        self.log_betas = torch.log(b)
        self._device_tables: dict = {}

    _TABLES = ("sqrt_acp", "sqrt_1m_acp", "sqrt_recip_acp", "sqrt_recipm1_acp", "posterior_log_variance_clipped",
               "posterior_mean_coef1", "posterior_mean_coef2", "log_betas")

    def _on(self, device) -> dict:
        """The schedule tables as float32 on `device`, copied there once (computed in float64 on the host,
        then cast, as the original's _extract_into_tensor does per lookup)."""
        key = str(device)
        if key not in self._device_tables:
            self._device_tables[key] = {n: getattr(self, n).float().to(device) for n in self._TABLES}
        return self._device_tables[key]

    def __getstate__(self):                               # pickles (ddp_spawn) without device copies
        return {**self.__dict__, "_device_tables": {}}

    @classmethod
    def linear(cls, timesteps: int = DIT_SCHEDULE["num_train_timesteps"], beta_start: float = DIT_SCHEDULE["beta_start"],
               beta_end: float = DIT_SCHEDULE["beta_end"]) -> "GaussianDiffusion":
        scale = 1000 / timesteps
        return cls(torch.linspace(scale * beta_start, scale * beta_end, timesteps, dtype=torch.float64))

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        T = self._on(t.device)
        return _at(T["sqrt_acp"], t, x0.dim()) * x0 + _at(T["sqrt_1m_acp"], t, x0.dim()) * noise

    def predict_x0(self, x_t: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        T = self._on(t.device)
        return _at(T["sqrt_recip_acp"], t, x_t.dim()) * x_t - _at(T["sqrt_recipm1_acp"], t, x_t.dim()) * eps

    def _posterior_mean(self, x0, x_t, t):
        T = self._on(t.device)
        return _at(T["posterior_mean_coef1"], t, x0.dim()) * x0 + _at(T["posterior_mean_coef2"], t, x0.dim()) * x_t

    def vb(self, eps: Tensor, v: Tensor, x0: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """Variational bound term (B,) in bits/dim for a model output eps (detached by the caller) and v."""
        T = self._on(t.device)
        min_log = _at(T["posterior_log_variance_clipped"], t, x0.dim())
        max_log = _at(T["log_betas"], t, x0.dim())
        frac = (v + 1) / 2
        model_logvar = frac * max_log + (1 - frac) * min_log
        model_mean = self._posterior_mean(self.predict_x0(x_t, t, eps), x_t, t)
        true_mean = self._posterior_mean(x0, x_t, t)
        kl = normal_kl(true_mean, min_log, model_mean, model_logvar).flatten(1).mean(1) / math.log(2.0)
        nll = -discretized_gaussian_log_likelihood(x0, model_mean, 0.5 * model_logvar).flatten(1).mean(1) / math.log(2.0)
        return torch.where(t == 0, nll, kl)

    def losses(self, model_output: Tensor, x0: Tensor, x_t: Tensor, t: Tensor, noise: Tensor) -> dict:
        C = x0.shape[1]
        eps = model_output[:, :C].float()
        mse = ((eps - noise) ** 2).flatten(1).mean(1)
        out = {"mse": mse, "x0_hat": self.predict_x0(x_t, t, eps)}
        if model_output.shape[1] == 2 * C:
            out["vb"] = self.vb(eps.detach(), model_output[:, C:].float(), x0, x_t, t)
            out["loss"] = mse + out["vb"]
        else:
            out["loss"] = mse
        return out
