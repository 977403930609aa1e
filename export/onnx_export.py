"""PyTorch VQ-VAE -> two per-step ONNX graphs with explicit streaming state.

The step graphs follow docs/ARCHITECTURE.md ("Step graphs", bundle format 2): opset 17,
fixed shapes except the decoder's batch axis.

``encoder.onnx``: ``logmag`` float32 [1, F, model_bins] + ``enc_s{i}_in`` ->
``codes`` int64 [1, n_codes] + ``enc_s{i}_out``.
``decoder.onnx``: ``codes`` int64 [B, n_codes] + ``dec_s{i}_in`` [B, ...] ->
``logmag`` float32 [B, F, model_bins] + ``dec_s{i}_out`` [B, ...].

``n_codes = levels * rows + rows_macro`` (the flat layout of :func:`n_codes`).

States are the causal convolution caches, in the order of ``model.encoder_state_shapes()`` /
``model.decoder_state_shapes()`` (the order ``step`` consumes and produces them). The
per-bin normalisation and the codebook lookup are inside the graphs, so the engine feeds raw
log-magnitudes and gets raw log-magnitudes back.

Hygiene: the model is deep-copied and every parametrisation (``torch.nn.utils.parametrize``,
e.g. ``weight_norm``) and old-style ``weight_norm`` hook removed before tracing (the plain
weights are baked in); constants are folded by the exporter; the saved graphs pass
``onnx.checker.check_model(full_check=True)`` and carry inferred shapes for every value.
"""

from __future__ import annotations

import copy
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from vqblur.training.model import VQVAE

OPSET = 17
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
# export-only layer rewrites (export/fast_layers.py), measured in export/INT8.md and
# docs/MEASURING.md: every causal conv's state stacked along channels ("stacked": the step's
# Concat/Slice move whole blocks; enc + batch-2 dec 266 -> 247 us on the default model, after
# "noslice" had saved ~17%); the sub-pixel ConvTranspose measured slower (243 -> 261 us), so it
# is off; fast_codes (export/fast_codes.py): the quantisers and code lookups as constant
# tables, a few ops instead of dozens per column
DEFAULT_REWRITES = {"subpixel": False, "causal": "stacked", "constant_codebook": True,
                    "fast_codes": True}


@dataclass(frozen=True)
class StateInfo:
    name_in: str
    name_out: str
    shape: tuple[int, ...]

    def as_manifest(self) -> dict:
        return {"name_in": self.name_in, "name_out": self.name_out, "shape": list(self.shape)}


def state_infos(model: VQVAE) -> tuple[list[StateInfo], list[StateInfo]]:
    """(encoder states, decoder states) with the contract's names, in step order."""
    enc = [StateInfo(f"enc_s{i}_in", f"enc_s{i}_out", tuple(int(d) for d in s))
           for i, s in enumerate(model.encoder_state_shapes())]
    dec = [StateInfo(f"dec_s{i}_in", f"dec_s{i}_out", tuple(int(d) for d in s))
           for i, s in enumerate(model.decoder_state_shapes())]
    return enc, dec


def strip_parametrizations(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode with every parametrisation / weight-norm hook removed.

    ``parametrize.remove_parametrizations(..., leave_parametrized=True)`` keeps the current
    (parametrised) weight values as plain parameters, so the output does not change.
    """
    from torch.nn.utils import parametrize

    m = copy.deepcopy(model).eval()
    for module in m.modules():
        if parametrize.is_parametrized(module):
            # Not parametrize.remove_parametrizations: a deep copy shares the dynamically
            # created Parametrized<Class> with the original, and removing deletes the
            # property from that shared class, breaking the caller's model. Swap the copy
            # back to its plain class and store the evaluated weights instead.
            with torch.no_grad():
                values = {name: getattr(module, name).detach().clone()
                          for name in module.parametrizations.keys()}
            module.__class__ = module.__class__.__bases__[0]
            del module._modules["parametrizations"]
            for name, value in values.items():
                module.register_parameter(name, nn.Parameter(value, requires_grad=False))
        # old-style torch.nn.utils.weight_norm: weight_g / weight_v + a forward pre-hook
        if hasattr(module, "weight_g") and hasattr(module, "weight_v"):
            try:
                torch.nn.utils.remove_weight_norm(module)
            except ValueError:
                pass
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def has_parametrizations(model: nn.Module) -> bool:
    from torch.nn.utils import parametrize

    return any(parametrize.is_parametrized(mod) or hasattr(mod, "weight_g") for mod in model.modules())


def n_codes(model: VQVAE) -> int:
    """Length of a column's flat code vector: levels x rows micro codes, then the macro rows."""
    return model.levels * model.rows + model.rows_macro


class EncoderStep(nn.Module):
    """``(logmag [1,F,bins], *states) -> (codes [1, n_codes] int64, *new_states)``.

    ``codes`` is the flat layout: micro level 0 (rows), level 1 (rows), ..., then the macro map
    (rows / macro_factor); a v1 model has just its rows."""

    def __init__(self, model: VQVAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, logmag: torch.Tensor, *states: torch.Tensor):
        micro, macro, new = self.model.encoder_step(logmag, list(states))
        codes = micro.reshape(1, -1)
        if macro is not None:
            codes = torch.cat([codes, macro], dim=1)
        return (codes, *new)


class DecoderStep(nn.Module):
    """``(codes [B, n_codes] int64, *states [B, ...]) -> (logmag [B,F,bins], *new_states)``
    for B independent streams (the engine decodes the blurred and the clean codes at once).
    A micro code equal to the codebook size K is a dropped level (decodes as zero)."""

    def __init__(self, model: VQVAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, codes: torch.Tensor, *states: torch.Tensor):
        m = self.model
        n_micro = m.levels * m.rows
        micro = codes[:, :n_micro].reshape(codes.shape[0], m.levels, m.rows)
        macro = codes[:, n_micro:] if m.macro_factor else None
        y, new = m.decoder_step(micro, macro, list(states))
        return (y, *new)


def _export(module: nn.Module, args: tuple, input_names: list[str], output_names: list[str],
            opset: int, dynamic_axes: dict | None = None):
    import onnx

    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # the TorchScript exporter (dynamo=False) is deprecated but exports these step graphs
        # cleanly; the dynamo exporter is not needed for fixed-shape, control-flow-free graphs
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module, args, buf,
            input_names=input_names, output_names=output_names,
            opset_version=opset, do_constant_folding=True, dynamo=False,
            export_params=True, keep_initializers_as_inputs=False,
            dynamic_axes=dynamic_axes,
        )
    return onnx.load_from_string(buf.getvalue())


def finalize(model_proto, path: Path, doc: str = ""):
    """Shape inference + full checker, then save. Returns the checked ModelProto."""
    import onnx

    model_proto.producer_name = "vqblur-export"
    if doc:
        model_proto.doc_string = doc
    inferred = onnx.shape_inference.infer_shapes(model_proto, check_type=True, strict_mode=True,
                                                 data_prop=True)
    onnx.checker.check_model(inferred, full_check=True)
    onnx.save(inferred, str(path))
    return inferred


def export_step_graphs(model: VQVAE, out_dir: str | Path, opset: int = OPSET,
                       rewrites: dict | None = None,
                       ) -> tuple[Path, Path, list[StateInfo], list[StateInfo]]:
    """Write ``encoder.onnx`` and ``decoder.onnx`` into ``out_dir``.

    The decoder graph has a dynamic leading axis ``batch`` on every input and output: one run
    decodes several streams (the manifest's state shapes keep batch 1).

    ``rewrites``: keyword arguments for :func:`vqblur.export.fast_layers.apply_rewrites`
    (None: ``DEFAULT_REWRITES``; ``{"subpixel": False, "causal": None}`` traces the model's
    own layers unchanged). Returns (encoder path, decoder path, encoder states, decoder states).
    """
    if opset < 17:
        raise ValueError(f"opset {opset} < 17 (the bundle contract needs 17 or newer)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = strip_parametrizations(model)
    F, bins = m.frames, m.bins
    from vqblur.export.fast_layers import apply_rewrites

    rw = dict(DEFAULT_REWRITES if rewrites is None else rewrites)
    fast_codes = rw.pop("fast_codes", False)
    apply_rewrites(m, **rw)
    enc_states, dec_states = state_infos(m)  # after rewriting: a rewrite may re-lay a state
    if fast_codes:
        from vqblur.export.fast_codes import install_fast_codes

        install_fast_codes(m)

    enc_args = (torch.zeros(1, F, bins),) + tuple(torch.zeros(s.shape) for s in enc_states)
    enc_proto = _export(EncoderStep(m), enc_args,
                        ["logmag"] + [s.name_in for s in enc_states],
                        ["codes"] + [s.name_out for s in enc_states], opset)
    enc_path = out / ENCODER_FILE
    finalize(enc_proto, enc_path,
             "vqblur encoder step: raw log-magnitude column [1,F,bins] + states -> codes [1,n_codes] + states")

    # the decoder takes a batch of B streams (dynamic axis 0 of codes, states and outputs)
    dec_args = (torch.zeros(2, n_codes(m), dtype=torch.int64),) + tuple(
        torch.zeros((2, *s.shape[1:])) for s in dec_states)
    dec_in = ["codes"] + [s.name_in for s in dec_states]
    dec_out = ["logmag"] + [s.name_out for s in dec_states]
    dec_proto = _export(DecoderStep(m), dec_args, dec_in, dec_out, opset,
                        dynamic_axes={n: {0: "batch"} for n in dec_in + dec_out})
    dec_path = out / DECODER_FILE
    finalize(dec_proto, dec_path,
             "vqblur decoder step: codes [B,n_codes] + states [B,...] -> raw log-magnitude [B,F,bins] + states")
    return enc_path, dec_path, enc_states, dec_states


def optimize_offline(path: str | Path, out_path: str | Path | None = None) -> Path:
    """onnxruntime's offline graph optimisation at the *basic* level (portable standard ops:
    constant folding, redundant-node elimination), saved as a plain ONNX file.

    Not used by default: the engine opens its sessions with ORT_ENABLE_ALL anyway, which does
    the same work (and more) at load time; see export/INT8.md for the measurement.
    """
    import onnxruntime as ort

    path = Path(path)
    out_path = Path(out_path) if out_path else path
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.optimized_model_filepath = str(out_path)
    so.log_severity_level = 3
    ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    return out_path
