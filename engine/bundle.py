"""Model bundle reader (and the manifest writer the export code uses).

A bundle is a folder (see docs/ARCHITECTURE.md, "Bundle")::

    manifest.json   encoder.onnx   decoder.onnx   nb_table.npz

``load_bundle(path)`` verifies it before anything runs: the manifest parses, its format name
and ``format_version`` are known (a newer version is refused), every required key is there
with a sane value, every file named in ``files`` exists and matches its sha256, the encoder,
decoder and NB files are among them, and the NB table's array shapes match ``rows`` and
``codebook_size`` (read from the .npy headers only, the arrays are not loaded). Any failure is
a :class:`vqblur.common.errors.BundleError` whose message starts with the offending file's path.

numpy only: no onnxruntime, no torch. The ONNX graphs' input/output names are checked against
the manifest's state specs when :class:`vqblur.engine.codec.OnnxCodec` opens its sessions.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vqblur.common.errors import BundleError

FORMAT_NAME = "vqblur-bundle"
FORMAT_VERSION = 2  # 2: codec v2 (levels, macro map, batched decoder); 1 still loads
MANIFEST_NAME = "manifest.json"
WINDOW_NAME = "sqrt_hann_periodic"  # the symmetric framing (codec v1-v3)
ASYM_WINDOW_NAME = "asym_sqrt_hann"  # codec v4: long analysis window, synthesis over the last synthesis_len
SPLIT_WINDOW_NAME = "split_sqrt_hann"  # codec v5: the split framing (vqblur.common.framing)

# Plausibility bounds: a manifest outside them is refused before anything is allocated from
# it (a hostile or corrupted manifest must not turn into a MemoryError or a hang).
LIMITS = {
    "sample_rate": (1000, 768_000),
    "n_fft": (2, 65_536),
    "frames_per_column": (1, 64),
    "codebook_size": (2, 65_536),
}
MAX_STATE_ELEMENTS = 1 << 26  # 64 Mi floats (256 MB) per state tensor
MAX_NB_COL_OFFSET = 1024  # |d_col| of a Naive Bayes neighbour, in code columns

# Keys every manifest must carry (the engine needs them). Optional: created, normalisation,
# precision, training.
REQUIRED_KEYS = (
    "format",
    "format_version",
    "sample_rate",
    "n_fft",
    "hop",
    "window",
    "log_eps",
    "model_bins",
    "frames_per_column",
    "rows",
    "codebook_size",
    "latency_samples",
    "encoder",
    "decoder",
    "nb",
    "files",
)


@dataclass(frozen=True)
class StateSpec:
    """One streaming state tensor of a step graph: float32, zeros at reset."""

    name_in: str
    name_out: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Bundle:
    """A verified model bundle: the manifest plus typed fields and absolute paths."""

    root: Path
    manifest: dict[str, Any] = field(repr=False)
    sample_rate: int
    n_fft: int
    hop: int
    frames_per_column: int
    rows: int
    codebook_size: int
    model_bins: int
    latency_samples: int
    log_eps: float
    encoder_path: Path
    decoder_path: Path
    encoder_states: tuple[StateSpec, ...]
    decoder_states: tuple[StateSpec, ...]
    nb_path: Path
    precision: str = "fp32"
    format_version: int = 1
    levels: int = 1  # micro residual levels (format 2); 1 = one code per cell
    rows_macro: int = 0  # rows of the macro map (0 = none)
    macro_factor: int = 0  # micro rows per macro row
    nb_macro_path: Path | None = None
    row_warp: str = "linear"  # "linear" (rows of bins/rows bins) or "log" (codec v3, equal perceptual width)
    row_warp_break_hz: float = 1000.0
    # codec v4 (vqblur.common.windows): the synthesis window spans the frame's last synthesis_len
    # samples (0 = the symmetric sqrt-Hann framing, synthesis over all n_fft)
    synthesis_len: int = 0
    row_points: int = 0  # points of the warped axis the encoder sees (0 here: as many as model_bins)
    # codec v5 (vqblur.common.framing): the split framing's long window (0 = one window) and the
    # crossover between its bins and the n_fft window's
    long_n_fft: int = 0
    crossover_hz: float = 1500.0

    def __post_init__(self) -> None:
        if not self.row_points:
            object.__setattr__(self, "row_points", self.model_bins)

    @property
    def asymmetric(self) -> bool:
        return 0 < self.synthesis_len < self.n_fft

    @property
    def synthesis_samples(self) -> int:
        """Samples the synthesis window spans (``n_fft`` in the symmetric framing)."""
        return self.synthesis_len if self.asymmetric else self.n_fft

    @property
    def split(self) -> bool:
        return bool(self.long_n_fft)

    def split_layout(self):
        """The split framing's :class:`vqblur.common.framing.SplitLayout` (where each model bin
        comes from), or None for a one-window bundle."""
        from vqblur.common.framing import split_layout

        return split_layout(self.sample_rate, self.n_fft, self.long_n_fft, self.crossover_hz)

    def model_bin_hz(self) -> np.ndarray:
        """Centre frequency of each model bin [model_bins] (the split framing's are not evenly
        spaced)."""
        layout = self.split_layout()
        if layout is not None:
            return layout.bin_hz()
        return np.arange(self.model_bins, dtype=np.float64) * self.sample_rate / self.n_fft

    def row_edges_hz(self):
        """Frequency edges of the micro rows, [rows + 1] Hz (the log warp spans 0 Hz to the top
        model bin, ``(model_bins - 1) * sample_rate / n_fft``, or the split framing's top bin,
        whatever the number of points)."""
        from vqblur.common.freqaxis import row_edges_hz, warp_hz

        if self.split:
            u = np.arange(self.rows + 1) / self.rows
            return warp_hz(u, self.row_warp_break_hz, float(self.model_bin_hz()[-1]))
        return row_edges_hz(self.rows, self.sample_rate, self.n_fft, self.model_bins,
                            self.row_warp, self.row_warp_break_hz)

    @property
    def n_codes(self) -> int:
        """Length of a column's flat code vector: ``levels * rows`` micro codes (level 0 first),
        then ``rows_macro`` macro codes (docs/ARCHITECTURE.md "Step graphs")."""
        return self.levels * self.rows + self.rows_macro

    @property
    def decoder_batched(self) -> bool:
        """Format 2 decoders take a batch of streams (the detail knob's two decodes in one call)."""
        return self.format_version >= 2

    @property
    def n_bins(self) -> int:
        """rfft bins (n_fft/2 + 1); bins >= model_bins pass through with the input magnitude."""
        return self.n_fft // 2 + 1

    @property
    def column_samples(self) -> int:
        """Samples per code column (frames_per_column * hop)."""
        return self.frames_per_column * self.hop


def framing_latency(n_fft: int, hop: int, frames_per_column: int, synthesis_len: int = 0) -> int:
    """The engine's latency for this framing: ``S - 1 + (F - 1) * R`` (ARCHITECTURE.md), S the
    synthesis window's length: ``N``, or ``synthesis_len`` in the asymmetric framing (codec v4)."""
    S = synthesis_len if 0 < synthesis_len < n_fft else n_fft
    return S - 1 + (frames_per_column - 1) * hop


def window_name(n_fft: int, synthesis_len: int = 0, long_n_fft: int = 0) -> str:
    """The manifest's ``window`` for a framing: ``split_sqrt_hann`` for the split framing
    (``long_n_fft`` > 0), ``asym_sqrt_hann`` when asymmetric, else ``sqrt_hann_periodic``."""
    if long_n_fft:
        return SPLIT_WINDOW_NAME
    return ASYM_WINDOW_NAME if 0 < synthesis_len < n_fft else WINDOW_NAME


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def _safe_rel(root: Path, rel: Any, where: Path, key: str) -> Path:
    if not isinstance(rel, str) or not rel:
        raise BundleError(f"{where}: '{key}' must be a file name, got {rel!r}")
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts:
        raise BundleError(f"{where}: '{key}' = {rel!r} must be a path inside the bundle folder")
    return root / p


def _int_key(m: dict, key: str, where: Path, minimum: int = 1) -> int:
    v = m[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise BundleError(f"{where}: '{key}' must be an integer >= {minimum}, got {v!r}")
    if key in LIMITS:
        lo, hi = LIMITS[key]
        if not lo <= v <= hi:
            raise BundleError(f"{where}: '{key}' = {v} is outside the supported range {lo}..{hi}")
    return v


def _states(m: dict, part: str, where: Path) -> tuple[StateSpec, ...]:
    spec = m[part]
    if not isinstance(spec, dict) or "file" not in spec:
        raise BundleError(f"{where}: '{part}' must be an object with a 'file' key")
    states = spec.get("states", [])
    if not isinstance(states, list):
        raise BundleError(f"{where}: '{part}.states' must be a list")
    out = []
    for i, s in enumerate(states):
        try:
            shape = tuple(int(d) for d in s["shape"])
            if any(d < 1 for d in shape):
                raise ValueError("non-positive dimension")
            if int(np.prod(shape, dtype=object)) > MAX_STATE_ELEMENTS:
                raise ValueError(f"shape {list(shape)} has more than {MAX_STATE_ELEMENTS} elements")
            out.append(StateSpec(str(s["name_in"]), str(s["name_out"]), shape))
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(
                f"{where}: '{part}.states[{i}]' needs name_in, name_out and a positive shape ({exc})"
            ) from None
    return tuple(out)


def _npy_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Array shapes in an .npz from the .npy headers, without loading the data."""
    shapes: dict[str, tuple[int, ...]] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                if not name.endswith(".npy"):
                    continue
                with zf.open(name) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, _ = np.lib.format.read_array_header_1_0(f)
                    else:
                        shape, _, _ = np.lib.format.read_array_header_2_0(f)
                shapes[name[:-4]] = tuple(shape)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise BundleError(f"{path}: not a readable .npz ({exc})") from None
    return shapes


def check_nb_shapes(path: Path, rows: int, codebook_size: int) -> None:
    """Refuse an NB table whose shapes do not match the bundle (ARCHITECTURE.md table)."""
    shapes = _npy_shapes(path)
    K = codebook_size
    for key in ("log_prior", "log_row", "log_neigh", "offsets"):
        if key not in shapes:
            raise BundleError(f"{path}: NB table has no '{key}' array")
    if shapes["log_prior"] != (K,):
        raise BundleError(f"{path}: 'log_prior' has shape {shapes['log_prior']}, expected ({K},)")
    if shapes["log_row"] != (rows, K):
        raise BundleError(f"{path}: 'log_row' has shape {shapes['log_row']}, expected ({rows}, {K})")
    ln = shapes["log_neigh"]
    if len(ln) != 3 or ln[1:] != (K, K):
        raise BundleError(f"{path}: 'log_neigh' has shape {ln}, expected (O, {K}, {K})")
    if shapes["offsets"] != (ln[0], 2):
        raise BundleError(f"{path}: 'offsets' has shape {shapes['offsets']}, expected ({ln[0]}, 2)")
    # the offsets are tiny: read them and refuse neighbours no sampler could hold in memory
    try:
        with np.load(path, allow_pickle=False) as z:
            offs = np.asarray(z["offsets"])
    except Exception as exc:  # ValueError (pickled), zipfile/OSError ...
        raise BundleError(f"{path}: cannot read 'offsets' ({exc})") from None
    if offs.dtype.kind not in "iuf" or (offs.dtype.kind == "f" and not np.isfinite(offs).all()):
        raise BundleError(f"{path}: 'offsets' must be integers, got dtype {offs.dtype}")
    if offs.size and (np.abs(offs[:, 0]).max() >= rows or np.abs(offs[:, 1]).max() > MAX_NB_COL_OFFSET):
        raise BundleError(
            f"{path}: 'offsets' {offs.tolist()[:8]}... reach outside the grid: |d_row| must be "
            f"< rows ({rows}) and |d_col| <= {MAX_NB_COL_OFFSET}"
        )


def load_bundle(path: str | Path, verify_hashes: bool = True) -> Bundle:
    """Read and verify a bundle folder (or its manifest.json). Raises BundleError."""
    root = Path(path)
    if root.name == MANIFEST_NAME and root.is_file():
        root = root.parent
    if not root.exists():
        raise BundleError(f"{root}: bundle folder does not exist")
    if not root.is_dir():
        raise BundleError(f"{root}: a bundle is a folder (with {MANIFEST_NAME}), not a file")
    root = root.resolve()
    mpath = root / MANIFEST_NAME
    if mpath.exists() and not mpath.is_file():
        raise BundleError(f"{mpath}: manifest is not a regular file")
    if not mpath.is_file():
        raise BundleError(f"{root}: not a vqblur bundle (no {MANIFEST_NAME} in {root})")
    try:
        m = json.loads(mpath.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{mpath}: manifest is not valid JSON ({exc})") from None
    if not isinstance(m, dict):
        raise BundleError(f"{mpath}: manifest must be a JSON object")

    if m.get("format") != FORMAT_NAME:
        raise BundleError(f"{mpath}: 'format' is {m.get('format')!r}, expected {FORMAT_NAME!r}")
    fv = m.get("format_version")
    if isinstance(fv, bool) or not isinstance(fv, int):
        raise BundleError(f"{mpath}: 'format_version' must be an integer, got {fv!r}")
    if fv > FORMAT_VERSION:
        raise BundleError(
            f"{mpath}: format_version {fv} is newer than this engine reads ({FORMAT_VERSION}); "
            "update vqblur"
        )
    if fv < 1:
        raise BundleError(f"{mpath}: format_version {fv} is not a valid version")
    missing = [k for k in REQUIRED_KEYS if k not in m]
    if missing:
        raise BundleError(f"{mpath}: missing key(s): {', '.join(missing)}")

    sr = _int_key(m, "sample_rate", mpath)
    n_fft = _int_key(m, "n_fft", mpath, 2)
    hop = _int_key(m, "hop", mpath)
    F = _int_key(m, "frames_per_column", mpath)
    rows = _int_key(m, "rows", mpath)
    K = _int_key(m, "codebook_size", mpath, 2)
    model_bins = _int_key(m, "model_bins", mpath)
    latency = _int_key(m, "latency_samples", mpath, 0)
    if n_fft % hop != 0 or n_fft // hop < 2:
        raise BundleError(f"{mpath}: 'hop' {hop} must divide 'n_fft' {n_fft} at least twice")
    synthesis_len = _int_key(m, "synthesis_len", mpath, 0) if "synthesis_len" in m else 0
    if synthesis_len > n_fft:
        raise BundleError(f"{mpath}: 'synthesis_len' {synthesis_len} exceeds 'n_fft' {n_fft}")
    if synthesis_len == n_fft:
        synthesis_len = 0  # the symmetric framing
    asymmetric = synthesis_len > 0
    if asymmetric and (synthesis_len % 2 or synthesis_len % hop or synthesis_len // hop < 2):
        raise BundleError(f"{mpath}: 'synthesis_len' {synthesis_len} must be even and a multiple of "
                          f"'hop' {hop}, at least twice")
    window = m["window"]
    if window not in (WINDOW_NAME, ASYM_WINDOW_NAME, SPLIT_WINDOW_NAME):
        raise BundleError(f"{mpath}: 'window' is {window!r}, this engine supports {WINDOW_NAME!r} "
                          f"and {ASYM_WINDOW_NAME!r} (one window) and {SPLIT_WINDOW_NAME!r} (the split "
                          "framing)")
    long_n_fft = _int_key(m, "long_n_fft", mpath, 0) if "long_n_fft" in m else 0
    crossover_hz = 1500.0
    if "crossover_hz" in m:
        c = m["crossover_hz"]
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not np.isfinite(c):
            raise BundleError(f"{mpath}: 'crossover_hz' must be a number, got {c!r}")
        crossover_hz = float(c)
    layout = None
    if window == SPLIT_WINDOW_NAME and not long_n_fft:
        raise BundleError(f"{mpath}: 'window' is {SPLIT_WINDOW_NAME!r}, which needs the split framing's "
                          f"'long_n_fft' (more than 0); this manifest has {m.get('long_n_fft', 'none')}")
    if long_n_fft:
        if window != SPLIT_WINDOW_NAME:
            raise BundleError(f"{mpath}: 'window' is {window!r}, but 'long_n_fft' {long_n_fft} is the "
                              f"split framing: its window is {SPLIT_WINDOW_NAME!r}")
        if synthesis_len:
            raise BundleError(f"{mpath}: 'synthesis_len' {synthesis_len} must be 0 with the split framing "
                              f"('long_n_fft' {long_n_fft})")
        if long_n_fft > LIMITS["n_fft"][1]:
            raise BundleError(f"{mpath}: 'long_n_fft' {long_n_fft} is outside the supported range "
                              f"up to {LIMITS['n_fft'][1]}")
        from vqblur.common.framing import split_layout

        try:
            layout = split_layout(sr, n_fft, long_n_fft, crossover_hz)
        except ValueError as exc:
            raise BundleError(f"{mpath}: 'long_n_fft' / 'crossover_hz': {exc}") from None
        if model_bins != layout.model_bins:
            raise BundleError(f"{mpath}: 'model_bins' is {model_bins}, but the split framing (n_fft {n_fft}, "
                              f"long_n_fft {long_n_fft}, crossover {crossover_hz:g} Hz) has "
                              f"{layout.model_bins}")
        if m.get("row_warp", "linear") != "log":
            raise BundleError(f"{mpath}: the split framing needs 'row_warp' 'log' (its bins are not "
                              f"evenly spaced), not {m.get('row_warp', 'linear')!r}")
    elif window != window_name(n_fft, synthesis_len):
        if asymmetric:
            raise BundleError(f"{mpath}: 'window' is {window!r}, but 'synthesis_len' {synthesis_len} < "
                              f"'n_fft' {n_fft} is the asymmetric framing: its window is {ASYM_WINDOW_NAME!r}")
        raise BundleError(f"{mpath}: 'window' is {window!r}, which needs an asymmetric 'synthesis_len' "
                          f"(more than 0, less than 'n_fft' {n_fft}); this manifest has "
                          f"{m.get('synthesis_len', 'none')}")
    if layout is None and model_bins > n_fft // 2 + 1:
        raise BundleError(f"{mpath}: 'model_bins' {model_bins} exceeds n_fft/2+1 = {n_fft // 2 + 1}")
    row_points = _int_key(m, "row_points", mpath) if "row_points" in m else model_bins
    if not rows <= row_points <= model_bins:
        raise BundleError(f"{mpath}: 'row_points' {row_points} must lie between 'rows' {rows} and "
                          f"'model_bins' {model_bins}")
    want = framing_latency(n_fft, hop, F, synthesis_len)
    if latency != want:
        how = "S-1+(F-1)R, S = synthesis_len" if asymmetric else "N-1+(F-1)R"
        raise BundleError(
            f"{mpath}: 'latency_samples' is {latency}, but the framing ({how}) gives {want}"
        )
    try:
        log_eps = float(m["log_eps"])
    except (TypeError, ValueError):
        raise BundleError(f"{mpath}: 'log_eps' must be a number, got {m['log_eps']!r}") from None
    if not (log_eps > 0 and np.isfinite(log_eps)):
        raise BundleError(f"{mpath}: 'log_eps' must be a positive number, got {log_eps!r}")

    files = m["files"]
    if not isinstance(files, dict) or not files:
        raise BundleError(f"{mpath}: 'files' must map file names to sha256 digests")
    enc_states = _states(m, "encoder", mpath)
    dec_states = _states(m, "decoder", mpath)
    if not isinstance(m["nb"], dict) or "file" not in m["nb"]:
        raise BundleError(f"{mpath}: 'nb' must be an object with a 'file' key")
    enc_path = _safe_rel(root, m["encoder"]["file"], mpath, "encoder.file")
    dec_path = _safe_rel(root, m["decoder"]["file"], mpath, "decoder.file")
    nb_path = _safe_rel(root, m["nb"]["file"], mpath, "nb.file")
    for key, rel in (("encoder", m["encoder"]["file"]), ("decoder", m["decoder"]["file"]),
                     ("nb", m["nb"]["file"])):
        if rel not in files:
            raise BundleError(f"{mpath}: '{key}' file {rel!r} has no sha256 in 'files'")

    for rel, digest in files.items():
        fpath = _safe_rel(root, rel, mpath, f"files[{rel!r}]")
        if not fpath.is_file():
            raise BundleError(f"{fpath}: missing file (listed in {MANIFEST_NAME})")
        if not isinstance(digest, str) or len(digest) != 64:
            raise BundleError(f"{mpath}: sha256 of {rel!r} is not a 64-hex-digit string")
        if verify_hashes:
            got = sha256_file(fpath)
            if got != digest.lower():
                raise BundleError(
                    f"{fpath}: sha256 mismatch (file altered, truncated or replaced): "
                    f"manifest says {digest[:12]}..., file is {got[:12]}..."
                )

    check_nb_shapes(nb_path, rows, K)
    levels, rows_macro, macro_factor, nb_macro_path = 1, 0, 0, None
    if fv >= 2:
        for key in ("levels", "rows_macro", "macro_factor"):
            if key not in m:
                raise BundleError(f"{mpath}: missing key {key!r} (format_version 2)")
        levels = _int_key(m, "levels", mpath)
        rows_macro = _int_key(m, "rows_macro", mpath, 0)
        macro_factor = _int_key(m, "macro_factor", mpath, 0)
        if levels > 64:
            raise BundleError(f"{mpath}: 'levels' = {levels} is outside the supported range 1..64")
        if rows_macro and (not macro_factor or rows_macro * macro_factor != rows):
            raise BundleError(f"{mpath}: 'rows_macro' {rows_macro} x 'macro_factor' {macro_factor} "
                              f"must equal 'rows' {rows}")
        if rows_macro:
            spec = m.get("nb_macro")
            if not isinstance(spec, dict) or "file" not in spec:
                raise BundleError(f"{mpath}: a macro map needs 'nb_macro' (an object with a 'file' key)")
            if spec["file"] not in files:
                raise BundleError(f"{mpath}: 'nb_macro' file {spec['file']!r} has no sha256 in 'files'")
            nb_macro_path = _safe_rel(root, spec["file"], mpath, "nb_macro.file")
            check_nb_shapes(nb_macro_path, rows_macro, K)

    row_warp = m.get("row_warp", "linear")
    if row_warp not in ("linear", "log"):
        raise BundleError(f"{mpath}: 'row_warp' must be 'linear' or 'log', not {row_warp!r}")
    if row_warp == "linear" and row_points != model_bins:
        raise BundleError(f"{mpath}: 'row_points' {row_points} differs from 'model_bins' {model_bins}: "
                          "that needs 'row_warp' 'log'")
    try:
        warp_break = float(m.get("row_warp_break_hz", 1000.0))
    except (TypeError, ValueError):
        warp_break = float("nan")
    if not warp_break > 0:
        raise BundleError(f"{mpath}: 'row_warp_break_hz' must be a positive number")
    return Bundle(
        root=root,
        manifest=m,
        sample_rate=sr,
        n_fft=n_fft,
        hop=hop,
        frames_per_column=F,
        rows=rows,
        codebook_size=K,
        model_bins=model_bins,
        latency_samples=latency,
        log_eps=log_eps,
        encoder_path=enc_path,
        decoder_path=dec_path,
        encoder_states=enc_states,
        decoder_states=dec_states,
        nb_path=nb_path,
        precision=str(m.get("precision", "fp32")),
        format_version=fv,
        levels=levels,
        rows_macro=rows_macro,
        macro_factor=macro_factor,
        nb_macro_path=nb_macro_path,
        row_warp=row_warp,
        row_warp_break_hz=warp_break,
        synthesis_len=synthesis_len,
        row_points=row_points,
        long_n_fft=long_n_fft,
        crossover_hz=crossover_hz,
    )


def default_bundle_path() -> Path:
    """The shipped bundle ``presets/default_bundle/`` (package data of ``vqblur.presets``).

    Raises BundleError when it is not there (not exported yet, or a broken install).
    """
    from importlib import resources

    try:
        p = Path(str(resources.files("vqblur.presets") / "default_bundle"))
    except ModuleNotFoundError:  # pragma: no cover - broken install
        raise BundleError("vqblur.presets: package not installed; pass --bundle DIR") from None
    if not (p / MANIFEST_NAME).is_file():
        raise BundleError(
            f"{p}: no default model bundle shipped here (no {MANIFEST_NAME}); "
            "pass --bundle DIR, or export one with `vqblur export`"
        )
    return p


def load_default_bundle() -> Bundle:
    return load_bundle(default_bundle_path())


def write_manifest(root: str | Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write ``root/manifest.json``, filling ``files`` with the sha256 of every bundle file.

    Hashes every name already in ``manifest["files"]`` plus the encoder, decoder and NB files;
    fills in ``format``/``format_version`` if absent. Returns the manifest as written.
    """
    root = Path(root)
    m = dict(manifest)
    m.setdefault("format", FORMAT_NAME)
    m.setdefault("format_version", FORMAT_VERSION)
    names = list(dict(m.get("files") or {}).keys())
    for part in ("encoder", "decoder", "nb", "nb_macro"):
        spec = m.get(part)
        if isinstance(spec, dict) and "file" in spec and spec["file"] not in names:
            names.append(spec["file"])
    files = {}
    for rel in names:
        fpath = root / rel
        if not fpath.is_file():
            raise BundleError(f"{fpath}: cannot hash a missing bundle file")
        files[rel] = sha256_file(fpath)
    m["files"] = files
    (root / MANIFEST_NAME).write_text(json.dumps(m, indent=2) + "\n", encoding="utf-8")
    return m
