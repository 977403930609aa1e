"""Export-only code paths of the step graphs: the quantisers and code lookups with few ops.

The model's own ``encoder_step`` / ``decoder_step`` are written for clarity: per residual
level a distance matrix, an argmin, a gather and a subtraction; per level a codebook gather
(with a zero row for "dropped") and an add; the macro map through a transposed conv. Traced
as is, that is dozens of tiny ONNX nodes per column, each costing a few microseconds in
onnxruntime. Here the same numbers come from constant tables baked at export time:

* **nearest code**: ``argmin_k (|c_k|^2 - 2 r . c_k)`` as one MatMul with the constant
  ``-2 C^T`` plus the constant ``|c|^2`` (the ``|r|^2`` term does not change the argmin);
* **micro lookup**: one Gather from the stacked tables of every level (``L x (K+1)`` rows, row
  K of each level zero) at ``code + level * (K+1)``, then one ReduceSum over the levels;
* **macro up-sampling**: the transposed conv (kernel = stride = macro_factor, no overlap) is a
  function of each macro code alone, so it becomes a table ``[K, D, macro_factor]`` (bias
  included) and one Gather.

:func:`install_fast_codes` swaps ``encoder_step`` / ``decoder_step`` on a deep-copied model
before tracing; the parity check compares the graphs with the original model.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F


@torch.no_grad()
def _tables(model) -> dict[str, torch.Tensor]:
    qs = model.micro_quantizers()
    K, D = model.K, qs[0].dim
    t: dict[str, torch.Tensor] = {}
    cbs = [q.codebook().detach().clone() for q in qs]
    t["neg2cbT"] = [(-2.0 * cb).t().contiguous() for cb in cbs]  # [D, K] per level
    t["cb2"] = [cb.pow(2).sum(1) for cb in cbs]  # [K]
    t["cb"] = cbs
    t["stack"] = torch.cat([torch.cat([cb, cb.new_zeros(1, D)]) for cb in cbs])  # [L*(K+1), D]
    t["offsets"] = (torch.arange(model.levels) * (K + 1)).reshape(1, -1, 1)  # [1, L, 1]
    if model.macro_factor:
        mq = model.macro_quantizer
        mcb = mq.codebook().detach().clone()
        t["m_neg2cbT"] = (-2.0 * mcb).t().contiguous()
        t["m_cb2"] = mcb.pow(2).sum(1)
        up = model.macro_up  # ConvTranspose2d(D, D, (f, 1), stride (f, 1))
        w = up.weight[:, :, :, 0]  # [D_in, D_out, f]
        table = torch.einsum("kd,dof->kof", mcb, w)  # [K, D_out, f]
        if up.bias is not None:
            table = table + up.bias[None, :, None]
        t["m_up"] = table.contiguous()
    return t


def install_fast_codes(model) -> None:
    """Replace ``model.encoder_step`` / ``model.decoder_step`` (instance attributes) by the
    table-driven versions above. Call on a copy (export does)."""
    t = _tables(model)
    L = model.levels
    f = model.macro_factor
    qs = model.micro_quantizers()
    l2 = [q.l2 for q in qs]

    def nearest(r, neg2cbT, cb2):
        """r [N, D] -> codes [N] (argmin of |c|^2 - 2 r.c)."""
        return torch.argmin(torch.matmul(r, neg2cbT) + cb2, dim=1)

    def macro_up(codes_m):
        """[B, Rm] -> [B, D, rows, 1] (the transposed conv as a table)."""
        B, Rm = codes_m.shape
        v = t["m_up"][codes_m]  # [B, Rm, D, f]
        return v.permute(0, 2, 1, 3).reshape(B, -1, Rm * f)[..., None]

    def encoder_step(self, logmag_col, states):
        x = self.normalise_column(logmag_col)  # normalised, on the rows' axis
        new: list[torch.Tensor] = []
        z = self.encoder.net.step(x[..., None], iter(states), new)  # [1, D, rows, 1]
        macro = None
        if f:
            m = self.macro_down(z)[0, :, :, 0].t()  # [Rm, D]
            macro = nearest(m, t["m_neg2cbT"], t["m_cb2"])[None]  # [1, Rm]
            z = z - macro_up(macro)
        r = z[0, :, :, 0].t()  # [rows, D]
        codes = []
        for level in range(L):
            if l2[level]:
                r = F.normalize(r, dim=1)
            k = nearest(r, t["neg2cbT"][level], t["cb2"][level])
            codes.append(k)
            if level < L - 1:
                r = r - t["cb"][level][k]
        return torch.stack(codes)[None], macro, new  # [1, L, rows]

    def decoder_step(self, micro, macro, states):
        idx = micro + t["offsets"]  # [B, L, rows]
        z = t["stack"][idx].sum(dim=1)  # [B, rows, D]
        z = z.transpose(1, 2)[..., None]  # [B, D, rows, 1]
        if f:
            z = z + macro_up(macro)
        new: list[torch.Tensor] = []
        y = self.decoder.net.step(z, iter(states), new)[..., 0]
        return self.denormalise_column(y), new

    model.encoder_step = types.MethodType(encoder_step, model)
    model.decoder_step = types.MethodType(decoder_step, model)
