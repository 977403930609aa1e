"""Training configuration as dataclasses, read from TOML with `--set key=value` overrides."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vqblur.common.errors import UserError
from vqblur.common.framing import SplitLayout, split_layout
from vqblur.common.windows import is_asymmetric


@dataclass
class AudioConfig:
    """Signal parameters; see docs/ARCHITECTURE.md (latency = S - 1 + (F - 1) * hop, S the
    synthesis length: n_fft, or synthesis_len in the asymmetric framing)."""

    sample_rate: int = 48000
    n_fft: int = 320
    hop: int = 80
    model_bins: int = 160
    frames_per_column: int = 2
    log_eps: float = 1e-5
    # codec v4: the asymmetric framing (common/windows.py): an n_fft-long analysis window, the
    # synthesis window over the frame's last synthesis_len samples (0 = symmetric sqrt-Hann)
    synthesis_len: int = 0
    # codec v5: the split framing (common/framing.py): a long_n_fft-sample asymmetric window's
    # bins below crossover_hz, the n_fft window's above (0 = off: one window)
    long_n_fft: int = 0
    crossover_hz: float = 1500.0

    @property
    def asymmetric(self) -> bool:
        return is_asymmetric(self.n_fft, self.synthesis_len)

    @property
    def split(self) -> bool:
        return bool(self.long_n_fft)

    def split_layout(self) -> SplitLayout | None:
        """The split framing's layout (None when long_n_fft is 0)."""
        return split_layout(self.sample_rate, self.n_fft, self.long_n_fft, self.crossover_hz)

    @property
    def synthesis_samples(self) -> int:
        """Samples the synthesis window spans (n_fft in the symmetric framing)."""
        return self.synthesis_len if self.asymmetric else self.n_fft


@dataclass
class ModelConfig:
    """2-D conv VQ-VAE over (frequency x time), causal in time."""

    channels: list[int] = field(default_factory=lambda: [32, 64, 96])  # per frequency scale
    kernel_freq: int = 4  # frequency kernel of the down/up-sampling convs
    time_kernel: int = 2  # causal time kernel of the residual convs
    res_blocks: int = 2  # at the code resolution (rows)
    code_dim: int = 8  # factorised low-dimensional lookup (as in DAC)
    codebook_size: int = 256
    l2_normalise: bool = True
    leaky_slope: float = 0.1
    # codec v2 (defaults = the v1 model): see docs/CODEC.md
    rvq_levels: int = 1  # residual quantiser depth on the micro map (1 = a single quantiser)
    macro_factor: int = 0  # macro map rows = rows / macro_factor (0 = no macro map)
    down_time_kernel: int = 1  # causal time kernel of the last down conv and the decoder's input conv
    res_dilations: list[int] = field(default_factory=list)  # time dilation per res block (empty = all 1)
    quantizer_dropout: float = 0.0  # fraction of cells trained with only the first k micro levels
    # codec v3: "log" resamples the model bins onto a log-above-the-break axis before the
    # encoder and back after the decoder (rows of equal perceptual width; common/freqaxis.py)
    row_warp: str = "linear"
    row_warp_break_hz: float = 1000.0
    # codec v4: points of the warped axis the encoder sees (0 = model_bins, the square warp of
    # v3); rows = points / freq_downsample. Fewer points than bins needs row_warp "log"
    row_points: int = 0

    @property
    def freq_downsample(self) -> int:
        return 2 ** len(self.channels)


@dataclass
class VQConfig:
    """Vector quantiser: straight-through, EMA codebook, dead-code restarts, k-means init."""

    ema: bool = True
    decay: float = 0.99
    commitment: float = 0.25
    codebook_weight: float = 1.0  # used when ema = false
    restart_threshold: float = 1.0  # EMA count below which a code is dead
    restart_every: int = 50  # steps
    kmeans_init_iters: int = 10


@dataclass
class DataConfig:
    source: str = "gm"  # gm | nsynth | folder | mix (gm + second soundfont + packaged recordings) | packed (vqblur pack-data)
    path: str = ""  # cache root (gm, mix), folder, or the pack (.npz)
    train_count: int = 2000  # examples rendered for the gm source
    second_soundfont: str = "/usr/share/sounds/sf3/MuseScore_General_Full.sf3"  # mix only
    second_count: int = 600  # examples rendered from the second soundfont (mix only)
    mix_weights: list[float] = field(default_factory=lambda: [0.35, 0.25, 0.4])  # gm, second sf, recordings
    segment_frames: int = 64  # STFT frames per training segment (a multiple of F)
    valid_path: str = ""  # folder source: a folder of held-out audio to validate on ("" = a subset of path)
    workers: int = 2


@dataclass
class TrainConfig:
    seed: int = 0
    batch_size: int = 32
    steps: int = 4000
    max_minutes: float = 0.0  # stop after this wall time (0 = no limit)
    max_cpu_minutes: float = 0.0  # stop after this much process CPU time (0 = no limit; ablations)
    lr: float = 2e-3
    lr_min: float = 1e-4
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    sc_weight: float = 1.0  # spectral-convergence term
    level_weight: float = 0.0  # per-frame log-energy term (holds the level; 0 = off, the v1 loss)
    l1_weight: float = 1.0  # L1 on normalised log-magnitude
    mel_weight: float = 0.0  # mel-scale LSD (dB, 80 dB range) on the model's STFT (training/mel_loss.py; 0 = off)
    log_every: int = 10
    checkpoint_every: int = 250
    eval_every: int = 250
    eval_examples: int = 32
    threads: int = 0  # torch threads (0 = torch's default)
    init_from: str = ""  # checkpoint whose weights start the run (fine-tuning); "" = fresh weights
    refit_normaliser: bool = False  # fine-tuning: refit the per-bin normalisation on this run's data
    weight_ema: float = 0.0  # > 0: evaluate and save (best.pt, model.pt) an exponential average of the weights, this decay per step
    patience: int = 0  # stop when validation's patience_metric has not improved for this many evaluations (0 = off)
    patience_metric: str = "lsd_db"  # a key of the evaluation (lower is better; train()'s hooks may add keys)
    patience_min_delta: float = 0.0  # an improvement smaller than this does not count
    watts_per_core: float = 10.0  # CPU energy estimate; see common/energy.py


@dataclass
class Config:
    audio: AudioConfig = field(default_factory=AudioConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    vq: VQConfig = field(default_factory=VQConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def row_points(self) -> int:
        """Height of the encoder's input: model.row_points, or model_bins when 0."""
        return int(self.model.row_points) or self.audio.model_bins

    @property
    def rows(self) -> int:
        return self.row_points // self.model.freq_downsample

    @property
    def latency_samples(self) -> int:
        a = self.audio
        return a.synthesis_samples - 1 + (a.frames_per_column - 1) * a.hop

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _apply(obj: Any, values: dict[str, Any], where: str) -> None:
    names = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in values.items():
        if key not in names:
            raise UserError(f"{where}: unknown key '{key}' (known: {', '.join(sorted(names))})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise UserError(f"{where}: '{key}' must be a table")
            _apply(current, value, f"{where}.{key}")
        else:
            setattr(obj, key, _coerce(value, current, f"{where}.{key}"))


def _coerce(value: Any, current: Any, where: str) -> Any:
    if isinstance(current, bool):
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes"):
                return True
            if value.lower() in ("0", "false", "no"):
                return False
            raise UserError(f"{where}: expected true/false, got {value!r}")
        return bool(value)
    if isinstance(current, list):
        if isinstance(value, str):
            value = [type(current[0])(v) for v in value.split(",")] if current else \
                [_number(v) for v in value.split(",") if v.strip()]
        return list(value)
    try:
        return type(current)(value)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{where}: cannot use {value!r} ({exc})") from exc


def _number(text: str) -> int | float | str:
    """'3' -> 3, '0.5' -> 0.5, anything else unchanged (list items of an empty default)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def from_dict(values: dict[str, Any], where: str = "config") -> Config:
    cfg = Config()
    _apply(cfg, values, where)
    validate(cfg)
    return cfg


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Read a TOML config (tables audio/model/vq/data/train), then apply `key.sub=value` overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise UserError(f"config file not found: {p}")
        try:
            values = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"{p}: malformed TOML: {exc}") from exc
    cfg = Config()
    _apply(cfg, values, str(path or "config"))
    apply_overrides(cfg, overrides)
    validate(cfg)
    return cfg


#: the tables a resumed run may change: the model's shapes (``model``, ``audio``) are the checkpoint's
RESUMABLE_TABLES = ("train", "data", "vq")


def apply_overrides(cfg: Config, overrides: list[str] | None, tables: tuple[str, ...] | None = None) -> None:
    """``key.sub=value`` overrides (``--set``) onto ``cfg``, in place; ``tables``: the only
    top-level tables they may name (a resume's :data:`RESUMABLE_TABLES`), None: any."""
    for item in overrides or []:
        if "=" not in item:
            raise UserError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if tables is not None and parts[0] not in tables:
            raise UserError(f"--set {key.strip()}: a resumed run keeps its checkpoint's {parts[0]} table "
                            f"(only {', '.join(t + '.*' for t in tables)} can change on --resume)")
        nested: dict[str, Any] = {}
        cur = nested
        for part in parts[:-1]:
            cur = cur.setdefault(part, {})
        cur[parts[-1]] = raw.strip()
        _apply(cfg, nested, "--set")


def _validate_split(cfg: Config) -> None:
    """codec v5's split framing: audio.long_n_fft > 0."""
    a = cfg.audio
    if a.long_n_fft < 0:
        raise UserError(f"audio.long_n_fft ({a.long_n_fft}) must be 0 (one window) or the long window's length")
    if a.synthesis_len:
        raise UserError(f"audio.synthesis_len ({a.synthesis_len}) must be 0 with the split framing "
                        f"(audio.long_n_fft {a.long_n_fft}): its long window's synthesis spans the last "
                        f"audio.n_fft ({a.n_fft}) samples already")
    try:
        layout = a.split_layout()
    except ValueError as exc:
        raise UserError(f"audio.long_n_fft / audio.crossover_hz: {exc}") from exc
    if a.n_fft % a.hop or a.n_fft // a.hop < 2:
        raise UserError("audio.hop must divide n_fft at least twice")
    if a.model_bins != layout.model_bins:
        raise UserError(f"audio.model_bins ({a.model_bins}) must be the split framing's "
                        f"{layout.model_bins} ({len(layout.long_bins)} bins of the {a.long_n_fft}-sample "
                        f"window below {a.crossover_hz:g} Hz, {len(layout.short_bins)} of the "
                        f"{a.n_fft}-sample window above)")
    if cfg.model.row_warp != "log":
        raise UserError("the split framing (audio.long_n_fft > 0) needs model.row_warp = \"log\" "
                        "(its bins are not evenly spaced)")


def validate(cfg: Config) -> None:
    a = cfg.audio
    m = cfg.model
    if a.long_n_fft:
        _validate_split(cfg)
    elif a.model_bins > a.n_fft // 2 + 1:
        raise UserError("audio.model_bins exceeds n_fft/2+1")
    if m.row_points < 0 or m.row_points > a.model_bins:
        raise UserError(f"model.row_points ({m.row_points}) must be 0 (= audio.model_bins) or at most "
                        f"audio.model_bins ({a.model_bins})")
    if cfg.row_points != a.model_bins and m.row_warp != "log":
        raise UserError(f"model.row_points ({m.row_points}) differs from audio.model_bins ({a.model_bins}): "
                        "that needs model.row_warp = \"log\" (the linear rows have one point per bin)")
    if cfg.row_points % m.freq_downsample:
        what = "model.row_points" if m.row_points else "audio.model_bins"
        raise UserError(f"{what} ({cfg.row_points}) must be divisible by {m.freq_downsample} "
                        f"(2 ** len(model.channels))")
    if a.synthesis_len < 0 or a.synthesis_len > a.n_fft:
        raise UserError(f"audio.synthesis_len ({a.synthesis_len}) must be 0 (symmetric) or less than "
                        f"audio.n_fft ({a.n_fft})")
    if a.asymmetric:
        if a.synthesis_len % 2:
            raise UserError(f"audio.synthesis_len ({a.synthesis_len}) must be even")
        if a.synthesis_len % a.hop or a.synthesis_len // a.hop < 2:
            raise UserError(f"audio.hop ({a.hop}) must divide audio.synthesis_len ({a.synthesis_len}) "
                            "at least twice")
        if m.row_warp != "log":
            raise UserError("the asymmetric framing (audio.synthesis_len < audio.n_fft) needs "
                            "model.row_warp = \"log\" (its fine bins are warped onto model.row_points points)")
    if cfg.data.segment_frames % a.frames_per_column:
        raise UserError("data.segment_frames must be a multiple of audio.frames_per_column")
    if m.rvq_levels < 1:
        raise UserError("model.rvq_levels must be at least 1")
    if m.macro_factor and cfg.rows % m.macro_factor:
        raise UserError(f"rows ({cfg.rows}) must be divisible by model.macro_factor ({m.macro_factor})")
    if not 0.0 <= m.quantizer_dropout < 1.0:
        raise UserError("model.quantizer_dropout must be in [0, 1)")
    if m.down_time_kernel < 1 or any(d < 1 for d in m.res_dilations):
        raise UserError("model.down_time_kernel and model.res_dilations must be >= 1")
    if cfg.data.source == "mix" and len(cfg.data.mix_weights) != 3:
        raise UserError("data.mix_weights needs 3 weights: gm, second soundfont, recordings")
    if a.n_fft % a.hop or a.n_fft // a.hop < 2:
        raise UserError("audio.hop must divide n_fft at least twice")
