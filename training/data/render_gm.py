"""Render an NSynth-like corpus from a General MIDI soundfont with FluidSynth.

Each example is ``duration`` seconds long (4 s, as in NSynth): the note is held ``hold``
seconds (3 s), then released. Mono, 16-bit PCM, at the requested sample rate (48 kHz).

Three kinds of example (``kind`` in ``examples.json``):

* ``note``   one melodic program (bank 0) x one pitch from the family's playable range x
             one velocity; a seeded subsample of the full grid.
* ``drum``   one hit of a drum kit (bank 128, MIDI channel 10) x key x velocity.
* ``phrase`` short polyphonic phrases so the model hears more than single notes: chords,
             arpeggios, and duets (two programs at once).

Splits
    ``train``  FluidR3_GM, every melodic program and drum kit except the held-out ones.
    ``valid``  FluidR3_GM, only the held-out instruments (:data:`HOLDOUT_PROGRAMS`,
               :data:`HOLDOUT_KITS`): whole instruments the training split never contains.
               The held-out set is fixed (it does not depend on the seed).
    ``test``   TimGM6mb (a different soundfont), every program and kit.

On disk (the cache)::

    <root>/nsynth-gm-<split>/examples.json     NSynth's own format, keyed by note_str
    <root>/nsynth-gm-<split>/audio/<note_str>.wav
    <root>/nsynth-gm-<split>/params.json       the parameters it was rendered with

A rerun with the same parameters finds ``params.json`` equal and renders nothing.

Determinism: the example list is drawn in the parent process from
``np.random.default_rng([seed, split])``; each example is rendered on a fresh synth (the
soundfont is loaded once per worker and shared), and audio is taken with
``fluid_synth_write_float`` (``get_samples`` goes through ``write_s16``, which adds dither
noise that depends on how many samples the synth rendered before, and a re-used synth
carries voice state from one example into the next: the bytes would depend on the order
in which the workers happened to get their examples). Same parameters -> same bytes, for
any ``workers``.

Renders whose peak is below :data:`SILENCE_DBFS` are skipped (some programs produce
nothing at some pitches); the next candidates of the shuffled grid take their place, so
a split normally has exactly ``count`` examples.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

log = logging.getLogger(__name__)

RENDER_VERSION = 1

SOUNDFONT_DIR = Path("/usr/share/sounds/sf2")
SOUNDFONTS = {
    "train": "FluidR3_GM.sf2",
    "valid": "FluidR3_GM.sf2",
    "test": "TimGM6mb.sf2",
}
SPLITS = ("train", "valid", "test")
SPLIT_CODE = {"train": 0, "valid": 1, "test": 2}
DEFAULT_COUNTS = {"train": 2000, "valid": 200, "test": 200}

# NSynth's family ids 0..10, then ours.
FAMILIES = (
    "bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string",
    "synth_lead", "vocal",
    "synth_pad", "effects", "drum", "phrase",
)
FAMILY_ID = {name: i for i, name in enumerate(FAMILIES)}

# GM program groups of 8 -> family (exceptions below).
_GROUP_FAMILY = (
    "keyboard", "mallet", "organ", "guitar", "bass", "string", "string", "brass",
    "reed", "flute", "synth_lead", "synth_pad", "synth_pad", "guitar", "mallet", "effects",
)
_PROGRAM_FAMILY_EXCEPTIONS = {
    46: "string",   # orchestral harp
    47: "mallet",   # timpani
    52: "vocal", 53: "vocal", 54: "vocal",  # choir aahs, voice oohs, synth voice
    55: "brass",    # orchestra hit
    64: "reed", 65: "reed", 66: "reed", 67: "reed",  # saxes
    68: "reed", 69: "reed", 70: "reed", 71: "reed",  # oboe, english horn, bassoon, clarinet
    85: "vocal",    # lead 6 (voice)
    108: "mallet",  # kalimba
    109: "reed", 111: "reed",  # bagpipe, shanai
    110: "string",  # fiddle
    112: "mallet", 113: "mallet", 114: "mallet", 115: "mallet",
    116: "mallet", 117: "mallet", 118: "mallet", 119: "mallet",  # percussive group
}
# Playable MIDI pitch range per family (inclusive).
FAMILY_RANGE = {
    "bass": (28, 67),
    "brass": (40, 84),
    "flute": (55, 96),
    "guitar": (40, 84),
    "keyboard": (21, 108),
    "mallet": (48, 96),
    "organ": (24, 96),
    "reed": (40, 84),
    "string": (28, 96),
    "synth_lead": (36, 96),
    "vocal": (43, 81),
    "synth_pad": (36, 84),
    "effects": (48, 72),
}
_PROGRAM_RANGE_EXCEPTIONS = {
    40: (55, 100),  # violin
    41: (48, 88),   # viola
    42: (36, 76),   # cello
    43: (28, 60),   # contrabass
    58: (28, 65),   # tuba
    70: (34, 75),   # bassoon
    72: (72, 108),  # piccolo
    47: (36, 60),   # timpani
}

VELOCITIES = (40, 60, 80, 100, 127)

# Held out for the valid split: one program from each group of 8 (fixed, seed-independent).
HOLDOUT_PROGRAMS = tuple(sorted(g * 8 + (3 * g + 5) % 8 for g in range(16)))
DRUM_KITS = (0, 8, 16, 24, 25, 32, 40, 48)  # GM2 kits present in both soundfonts
HOLDOUT_KITS = (25, 40)  # TR-808, brush
DRUM_KEYS = (35, 81)  # GM percussion key map, inclusive
DRUM_CHANNEL = 9

SILENCE_DBFS = -70.0

CHORDS = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10), "sus4": (0, 5, 7), "dim": (0, 3, 6), "power": (0, 7, 12),
}
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10),
          "pentatonic": (0, 2, 4, 7, 9)}


def program_family(program: int) -> str:
    return _PROGRAM_FAMILY_EXCEPTIONS.get(program, _GROUP_FAMILY[program // 8])


def program_range(program: int) -> tuple[int, int]:
    return _PROGRAM_RANGE_EXCEPTIONS.get(program, FAMILY_RANGE[program_family(program)])


def split_programs(split: str) -> list[int]:
    if split == "valid":
        return list(HOLDOUT_PROGRAMS)
    if split == "train":
        return [p for p in range(128) if p not in HOLDOUT_PROGRAMS]
    return list(range(128))


def split_kits(split: str) -> list[int]:
    if split == "valid":
        return list(HOLDOUT_KITS)
    if split == "train":
        return [k for k in DRUM_KITS if k not in HOLDOUT_KITS]
    return list(DRUM_KITS)


def default_soundfont(split: str) -> Path:
    return SOUNDFONT_DIR / SOUNDFONTS[split]


# --------------------------------------------------------------------------------------
# Example specs (drawn in the parent, rendered in the workers)


@dataclass
class Spec:
    """One example to render: its NSynth metadata plus the MIDI events that make it."""

    note_str: str
    kind: str  # note | drum | phrase
    pitch: int
    velocity: int
    instrument: int
    instrument_str: str
    family: str
    # channel -> (bank, program)
    programs: dict[int, tuple[int, int]]
    # (time_s, on: bool, channel, key, velocity), in time order
    events: list[tuple[float, bool, int, int, int]]
    extra: dict[str, Any] = field(default_factory=dict)

    def meta(self, sample_rate: int) -> dict[str, Any]:
        m = {
            "note_str": self.note_str,
            "pitch": self.pitch,
            "velocity": self.velocity,
            "instrument": self.instrument,
            "instrument_str": self.instrument_str,
            "instrument_family": FAMILY_ID[self.family],
            "instrument_family_str": self.family,
            "instrument_source": 2,
            "instrument_source_str": "synthetic",
            "sample_rate": sample_rate,
            "qualities": [0] * 10,
            "qualities_str": [],
            "kind": self.kind,
        }
        m.update(self.extra)
        return m


def _note_spec(program: int, pitch: int, velocity: int, hold: float) -> Spec:
    fam = program_family(program)
    inst_str = f"{fam}_synthetic_{program:03d}"
    return Spec(
        note_str=f"{inst_str}-{pitch:03d}-{velocity:03d}", kind="note", pitch=pitch,
        velocity=velocity, instrument=program, instrument_str=inst_str, family=fam,
        programs={0: (0, program)},
        events=[(0.0, True, 0, pitch, velocity), (hold, False, 0, pitch, velocity)],
        extra={"programs": [program]},
    )


def _drum_spec(kit: int, key: int, velocity: int, hold: float) -> Spec:
    inst = 128 + kit
    inst_str = f"drum_synthetic_{inst:03d}"
    return Spec(
        note_str=f"{inst_str}-{key:03d}-{velocity:03d}", kind="drum", pitch=key,
        velocity=velocity, instrument=inst, instrument_str=inst_str, family="drum",
        programs={DRUM_CHANNEL: (128, kit)},
        events=[(0.0, True, DRUM_CHANNEL, key, velocity),
                (hold, False, DRUM_CHANNEL, key, velocity)],
        extra={"drum_kit": kit},
    )


def _clip_pitch(p: int, lo: int, hi: int) -> int:
    while p < lo:
        p += 12
    while p > hi:
        p -= 12
    return int(min(max(p, lo), hi))


def _phrase_spec(index: int, programs: Sequence[int], seed: int, split: str,
                 hold: float) -> Spec:
    """A seeded phrase: chord changes, an arpeggio, or a duet of two programs."""
    rng = np.random.default_rng([seed, SPLIT_CODE[split], 7, index])
    ptype = str(rng.choice(["chord", "arpeggio", "duet"]))
    vel = int(rng.choice(VELOCITIES))
    p0 = int(rng.choice(programs))
    lo, hi = program_range(p0)
    root = int(rng.integers(max(lo, 36), max(min(hi - 12, 84), max(lo, 36)) + 1))
    events: list[tuple[float, bool, int, int, int]] = []
    chans = {0: (0, p0)}
    used = [p0]

    def v() -> int:
        return int(np.clip(vel + rng.integers(-12, 13), 1, 127))

    if ptype == "chord":
        names = list(CHORDS)
        n_chords = int(rng.integers(1, 4))
        t_edges = np.linspace(0.0, hold, n_chords + 1)
        degrees = [0, 5, 7, 9, 3, -5]
        for c in range(n_chords):
            ch = CHORDS[str(rng.choice(names))]
            base = root + (0 if c == 0 else int(rng.choice(degrees)))
            for iv in ch:
                k = _clip_pitch(base + iv, lo, hi)
                events.append((float(t_edges[c]), True, 0, k, v()))
                events.append((float(t_edges[c + 1]), False, 0, k, 0))
    elif ptype == "arpeggio":
        ch = CHORDS[str(rng.choice(list(CHORDS)))]
        step = float(rng.choice([0.125, 0.1875, 0.25, 0.375]))
        pattern = [iv + 12 * o for o in range(2) for iv in ch]
        if rng.random() < 0.5:
            pattern = pattern + pattern[-2:0:-1]
        legato = float(rng.uniform(0.6, 1.5))
        t, i = 0.0, 0
        while t < hold - 1e-9:
            k = _clip_pitch(root + pattern[i % len(pattern)], lo, hi)
            off = min(t + step * legato, hold)
            events.append((t, True, 0, k, v()))
            events.append((off, False, 0, k, 0))
            t += step
            i += 1
    else:  # duet: a low line on one program, a melody on another
        p1 = int(rng.choice([p for p in programs if p != p0] or [p0]))
        chans[1] = (0, p1)
        used.append(p1)
        lo1, hi1 = program_range(p1)
        scale = SCALES[str(rng.choice(list(SCALES)))]
        for chan, (plo, phi), base in ((0, (lo, hi), root), (1, (lo1, hi1), root + 12)):
            t = 0.0
            while t < hold - 1e-9:
                dur = float(rng.choice([0.25, 0.375, 0.5, 0.75, 1.0]))
                deg = int(rng.integers(0, len(scale) * 2))
                k = _clip_pitch(base + scale[deg % len(scale)] + 12 * (deg // len(scale)),
                                plo, phi)
                end = min(t + dur, hold)
                events.append((t, True, chan, k, v()))
                events.append((end, False, chan, k, 0))
                t = end
    # offs before ons at equal times, so a repeated key re-strikes
    events.sort(key=lambda e: (e[0], e[1]))
    inst_str = f"phrase_synthetic_{index:03d}"
    return Spec(
        note_str=f"{inst_str}-{root:03d}-{vel:03d}", kind="phrase", pitch=root,
        velocity=vel, instrument=p0, instrument_str=inst_str, family="phrase",
        programs=chans, events=events,
        extra={"programs": used, "phrase_type": ptype},
    )


def plan_candidates(split: str, seed: int, hold: float, programs: Iterable[int] | None = None,
                    kits: Iterable[int] | None = None) -> dict[str, Any]:
    """Shuffled candidate lists (lazily for phrases), one per kind."""
    rng = np.random.default_rng([seed, SPLIT_CODE[split]])
    progs = sorted(programs) if programs is not None else split_programs(split)
    kits_ = sorted(kits) if kits is not None else split_kits(split)
    grid = [(p, k, v) for p in progs for k in range(program_range(p)[0], program_range(p)[1] + 1)
            for v in VELOCITIES]
    notes = [grid[i] for i in rng.permutation(len(grid))]
    dgrid = [(kit, k, v) for kit in kits_ for k in range(DRUM_KEYS[0], DRUM_KEYS[1] + 1)
             for v in VELOCITIES]
    drums = [dgrid[i] for i in rng.permutation(len(dgrid))]
    return {
        "note": [_note_spec(p, k, v, hold) for p, k, v in notes],
        "drum": [_drum_spec(kit, k, v, hold) for kit, k, v in drums],
        "phrase": lambda i: _phrase_spec(i, progs, seed, split, hold),
    }


# --------------------------------------------------------------------------------------
# Rendering (worker side)

_W: dict[str, Any] = {}


def _bind(name: str, restype, *argtypes):
    import fluidsynth

    fn = getattr(fluidsynth._fl, name)
    fn.argtypes = list(argtypes)
    fn.restype = restype
    return fn


def _init_worker(soundfont: str, sample_rate: int, gain: float) -> None:
    """Load the soundfont once per process; every example then gets a fresh synth.

    A synth keeps per-voice-slot state (filter and amplitude ramps) from the voices it
    played before: re-using one synth makes the first block of an example depend on the
    previous example. A fresh ``fluid_synth`` costs about 1 ms; the loaded soundfont is
    shared (``fluid_synth_add_sfont`` / ``fluid_synth_remove_sfont``), so nothing is
    parsed again.
    """
    import fluidsynth

    vp, ci = ctypes.c_void_p, ctypes.c_int
    # fluidsynth warns about empty channels whenever a synth has no soundfont yet
    _bind("fluid_set_log_function", vp, ci, vp, vp)(2, None, None)  # FLUID_WARN
    holder = fluidsynth.Synth(
        gain=gain, samplerate=sample_rate, channels=16,
        **{"synth.reverb.active": 0, "synth.chorus.active": 0, "synth.cpu-cores": 1,
           "synth.polyphony": 256},
    )
    sfid = holder.sfload(soundfont)
    if sfid < 0:
        raise RuntimeError(f"fluidsynth could not load soundfont {soundfont}")
    get_sfont = _bind("fluid_synth_get_sfont_by_id", vp, vp, ci)
    _W.update(
        holder=holder, sfont=get_sfont(holder.synth, sfid), sr=sample_rate,
        new=_bind("new_fluid_synth", vp, vp),
        delete=_bind("delete_fluid_synth", None, vp),
        add=_bind("fluid_synth_add_sfont", ci, vp, vp),
        remove=_bind("fluid_synth_remove_sfont", ci, vp, vp),
        select=_bind("fluid_synth_program_select", ci, vp, ci, ci, ci, ci),
        noteon=_bind("fluid_synth_noteon", ci, vp, ci, ci, ci),
        noteoff=_bind("fluid_synth_noteoff", ci, vp, ci, ci),
        write=_bind("fluid_synth_write_float", ci, vp, ci, vp, ci, ci, vp, ci, ci),
    )


def _render_frames(synth, n: int) -> np.ndarray:
    left = np.zeros(n, np.float32)
    right = np.zeros(n, np.float32)
    if n > 0:
        _W["write"](synth, n, left.ctypes.data, 0, 1, right.ctypes.data, 0, 1)
    return (left + right) * np.float32(0.5)


def render_spec(spec: Spec, duration: float) -> np.ndarray:
    """Render one example on a fresh synth -> float32 mono ``[round(duration * sr)]``.

    ``fluid_synth_write_float`` rather than ``get_samples`` (``write_s16``): the latter
    adds dither whose phase depends on everything rendered before.
    """
    w = _W
    synth = w["new"](w["holder"].settings)
    if not synth:
        raise RuntimeError("fluidsynth could not create a synth")
    try:
        sfid = w["add"](synth, w["sfont"])
        for chan, (bank, prog) in spec.programs.items():
            if w["select"](synth, chan, sfid, bank, prog) != 0:
                raise RuntimeError(f"preset {bank}:{prog} missing from the soundfont")
        sr = w["sr"]
        total = int(round(duration * sr))
        out = np.zeros(total, np.float32)
        pos = 0
        for t, on, chan, key, vel in spec.events:
            at = min(int(round(t * sr)), total)
            if at > pos:
                out[pos:at] = _render_frames(synth, at - pos)
                pos = at
            if on:
                w["noteon"](synth, chan, key, vel)
            else:
                w["noteoff"](synth, chan, key)
        if total > pos:
            out[pos:] = _render_frames(synth, total - pos)
        return out
    finally:
        w["remove"](synth, w["sfont"])  # the soundfont stays owned by the holder synth
        w["delete"](synth)


def _render_task(task: tuple[Spec, float, str]) -> tuple[str, float]:
    """Worker: render, skip if silent, else write the wav. Returns (note_str, peak)."""
    import soundfile as sf

    spec, duration, audio_dir = task
    y = render_spec(spec, duration)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak < 10 ** (SILENCE_DBFS / 20):
        return spec.note_str, peak
    pcm = np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)
    path = Path(audio_dir) / f"{spec.note_str}.wav"
    tmp = path.with_suffix(".tmp.wav")
    sf.write(str(tmp), pcm, _W["sr"], subtype="PCM_16")
    os.replace(tmp, path)
    return spec.note_str, peak


# --------------------------------------------------------------------------------------
# Driver


@dataclass
class RenderParams:
    split: str
    count: int
    seed: int
    sample_rate: int
    soundfont: str
    soundfont_size: int
    duration: float = 4.0
    hold: float = 3.0
    gain: float = 0.5
    drum_fraction: float = 0.1
    phrase_fraction: float = 0.2
    velocities: tuple[int, ...] = VELOCITIES
    holdout_programs: tuple[int, ...] = HOLDOUT_PROGRAMS
    holdout_kits: tuple[int, ...] = HOLDOUT_KITS
    version: int = RENDER_VERSION

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        return json.loads(json.dumps(d))  # tuples -> lists, for a stable comparison


def split_dir(root: str | Path, split: str, tag: str = "") -> Path:
    """``<root>/nsynth-gm-<split>`` (``-<tag>`` appended for a non-default soundfont's cache)."""
    return Path(root) / (f"nsynth-gm-{split}-{tag}" if tag else f"nsynth-gm-{split}")


def rendered_count(root: str | Path, split: str, tag: str = "") -> int | None:
    """How many examples the split rendered under ``root`` holds (its params.json), or None
    when it is not rendered (or unreadable)."""
    d = split_dir(root, split, tag)
    try:
        if not (d / "examples.json").is_file():
            return None
        return int(json.loads((d / "params.json").read_text())["count"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _kind_counts(count: int, drum_fraction: float, phrase_fraction: float) -> dict[str, int]:
    n_drum = int(round(count * drum_fraction))
    n_phrase = int(round(count * phrase_fraction))
    n_note = max(count - n_drum - n_phrase, 0)
    return {"note": n_note, "drum": n_drum, "phrase": n_phrase}


def render_split(
    root: str | Path,
    split: str,
    count: int | None = None,
    *,
    seed: int = 0,
    sample_rate: int = 48000,
    workers: int | None = None,
    soundfont: str | Path | None = None,
    duration: float = 4.0,
    hold: float = 3.0,
    gain: float = 0.5,
    drum_fraction: float = 0.1,
    phrase_fraction: float = 0.2,
    progress: bool = True,
    force: bool = False,
    tag: str = "",
) -> Path:
    """Render (or reuse) ``<root>/nsynth-gm-<split>``; returns that folder."""
    from vqblur.common.errors import UserError

    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    count = DEFAULT_COUNTS[split] if count is None else int(count)
    if count < 1:
        raise UserError(f"count must be at least 1, got {count}")
    if not 0 < hold <= duration:
        raise UserError(f"need 0 < hold <= duration, got hold={hold}, duration={duration}")
    sf_path = Path(soundfont) if soundfont else default_soundfont(split)
    if not sf_path.is_file():
        raise UserError(
            f"soundfont {sf_path} not found (Debian: apt-get install fluid-soundfont-gm "
            f"timgm6mb-soundfont)")
    params = RenderParams(
        split=split, count=count, seed=int(seed), sample_rate=int(sample_rate),
        soundfont=sf_path.name, soundfont_size=sf_path.stat().st_size, duration=float(duration),
        hold=float(hold), gain=float(gain), drum_fraction=float(drum_fraction),
        phrase_fraction=float(phrase_fraction),
    )
    out = split_dir(root, split, tag)
    out.parent.mkdir(parents=True, exist_ok=True)
    # One renderer per split at a time (e.g. every rank of a torchrun job calls this): the
    # others wait on the lock, then find the cache filled.
    import fcntl

    with open(out.parent / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _render_split_locked(out, params, sf_path, workers, progress, force)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _render_split_locked(out: Path, params: RenderParams, sf_path: Path,
                         workers: int | None, progress: bool, force: bool) -> Path:
    split, count, seed, hold = params.split, params.count, params.seed, params.hold
    pfile = out / "params.json"
    if not force and pfile.is_file() and (out / "examples.json").is_file():
        try:
            if json.loads(pfile.read_text()) == params.to_json():
                log.info("reusing rendered %s split in %s", split, out)
                return out
        except (OSError, json.JSONDecodeError):
            pass
    # (Re)render: clear only what this renderer writes.
    audio = out / "audio"
    for p in (pfile, out / "examples.json"):
        p.unlink(missing_ok=True)
    if audio.is_dir():
        shutil.rmtree(audio)
    audio.mkdir(parents=True, exist_ok=True)

    targets = _kind_counts(count, params.drum_fraction, params.phrase_fraction)
    cands = plan_candidates(split, seed, hold)
    examples = _render_all(targets, cands, params, sf_path, audio, workers, progress)

    (out / "examples.json").write_text(json.dumps(examples, indent=1))
    pfile.write_text(json.dumps(params.to_json(), indent=1))
    return out


def _render_all(targets: dict[str, int], cands: dict[str, Any], params: RenderParams,
                sf_path: Path, audio: Path, workers: int | None,
                progress: bool) -> dict[str, dict]:
    from vqblur.common.progress import progress_bar

    workers = max(1, int(workers if workers else (os.cpu_count() or 1)))
    total = sum(targets.values())
    accepted: dict[str, list[Spec]] = {k: [] for k in targets}
    next_i = {k: 0 for k in targets}
    n_silent = 0
    max_phrase_tries = 10 * targets["phrase"] + 20

    pool = None
    if workers > 1:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # safe even after torch has started its threads
        pool = ctx.Pool(workers, initializer=_init_worker,
                        initargs=(str(sf_path), params.sample_rate, params.gain))
    else:
        _init_worker(str(sf_path), params.sample_rate, params.gain)
    bar = progress_bar(total, desc=f"render {params.split}", unit="ex", quiet=not progress)
    try:
        while True:
            batch: list[Spec] = []
            for kind, want in targets.items():
                deficit = want - len(accepted[kind])
                for _ in range(deficit):
                    if kind == "phrase":
                        if next_i[kind] >= max_phrase_tries:
                            break
                        spec = cands["phrase"](next_i[kind])
                    else:
                        if next_i[kind] >= len(cands[kind]):
                            break
                        spec = cands[kind][next_i[kind]]
                    next_i[kind] += 1
                    batch.append(spec)
            if not batch:
                break
            tasks = [(s, params.duration, str(audio)) for s in batch]
            it = (pool.imap(_render_task, tasks, chunksize=4) if pool
                  else map(_render_task, tasks))
            results = {}
            for name, peak in it:
                results[name] = peak
                if peak >= 10 ** (SILENCE_DBFS / 20):
                    bar.update(1)
            for s in batch:  # in candidate order: deterministic for any worker count
                if results[s.note_str] >= 10 ** (SILENCE_DBFS / 20):
                    accepted[s.kind].append(s)
                else:
                    n_silent += 1
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    if n_silent:
        log.info("%s: skipped %d silent renders", params.split, n_silent)
    for kind, want in targets.items():
        if len(accepted[kind]) < want:
            log.warning("%s: only %d of %d %s examples could be rendered (grid exhausted)",
                        params.split, len(accepted[kind]), want, kind)
    examples: dict[str, dict] = {}
    for kind in ("note", "drum", "phrase"):
        for s in sorted(accepted[kind], key=lambda s: s.note_str):
            examples[s.note_str] = s.meta(params.sample_rate)
    return dict(sorted(examples.items()))
