"""Energy accounting without torch (training's cost, `vqblur bench`, the demo use it).

Order of preference, best first:

1. **NVML** (``use_gpu=True`` and ``pynvml`` importable): the GPU's cumulative energy counter
   (``nvmlDeviceGetTotalEnergyConsumption``, mJ). Measured, but only the GPU's energy: it is
   the right meter when the work runs on that GPU. The streaming engine runs on the CPU, so the
   benchmark does not ask for it.
2. **Intel RAPL** (``/sys/class/powercap/intel-rapl:N/energy_uj``, package domains, when
   readable): measured, for the *whole package*, all processes included (a background job
   inflates it). Counter wrap-around is handled with ``max_energy_range_uj``.
3. **Estimate**: this process's CPU time (user + system, all threads) x a per-core power
   figure. The default, 10 W per busy core, is an assumption: a server core's share of package
   power under load (e.g. a 205 W, 20-core Xeon is about 10 W/core at TDP). Override it with
   ``--watts-per-core``. Idle power of the machine is not attributed to the process.

Every reading carries ``method`` (``"measured"`` | ``"estimated"``) and ``source`` (a sentence
saying which counter or figure was used), so a number is never shown without its provenance.

CO2e uses a fixed grid carbon intensity, :data:`GRID_G_CO2E_PER_KWH` (documented in
:data:`GRID_SOURCE`); pass another figure to :func:`co2e_grams` for a known local grid.
"""

from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass

DEFAULT_WATTS_PER_CORE = 10.0
WATTS_SOURCE = ("assumed 10 W per busy core (a server core's share of package TDP, "
                "e.g. 205 W / 20 cores); override with --watts-per-core")
GRID_G_CO2E_PER_KWH = 400.0
GRID_SOURCE = ("400 g CO2e/kWh: rough world-average grid carbon intensity "
               "(order of magnitude of the Ember / IEA world averages, 2023-2024)")

__all__ = [
    "DEFAULT_WATTS_PER_CORE", "WATTS_SOURCE", "GRID_G_CO2E_PER_KWH", "GRID_SOURCE",
    "EnergyReading", "EnergyMeter", "co2e_grams", "rapl_domains", "available_methods",
]


def rapl_domains(pattern: str = "/sys/class/powercap/intel-rapl:[0-9]*/energy_uj") -> list[str]:
    """Readable RAPL package energy counters (top-level domains only: no double counting)."""
    out = []
    for f in sorted(glob.glob(pattern)):
        try:
            with open(f) as fh:
                int(fh.read())
            out.append(f)
        except (OSError, ValueError):
            pass
    return out


def _rapl_max(path: str) -> float | None:
    try:
        with open(os.path.join(os.path.dirname(path), "max_energy_range_uj")) as fh:
            return int(fh.read()) / 1e6
    except (OSError, ValueError):
        return None


def _nvml():
    try:
        import pynvml  # type: ignore

        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
        return pynvml, h
    except Exception:
        return None


def available_methods(use_gpu: bool = False) -> list[str]:
    """What this machine offers, best first: some of "nvml", "rapl", then always "estimate"."""
    m = []
    if use_gpu and _nvml() is not None:
        m.append("nvml")
    if rapl_domains():
        m.append("rapl")
    m.append("estimate")
    return m


@dataclass
class EnergyReading:
    joules: float
    method: str  # "measured" | "estimated"
    source: str
    cpu_seconds: float
    wall_seconds: float

    def as_dict(self) -> dict:
        return {
            "energy_j": self.joules,
            "energy_method": self.method,
            "energy_source": self.source,
            "cpu_seconds": self.cpu_seconds,
            "wall_seconds": self.wall_seconds,
        }


class EnergyMeter:
    """Energy since construction (or :meth:`restart`); :meth:`read` any number of times.

    ``watts_per_core`` is used only by the estimate; ``None`` means the default figure.
    ``force_estimate`` skips the counters (tests, or a package shared with other jobs).
    """

    def __init__(self, watts_per_core: float | None = None, use_gpu: bool = False,
                 force_estimate: bool = False) -> None:
        self.user_watts = watts_per_core is not None
        self.watts_per_core = float(watts_per_core if watts_per_core is not None else DEFAULT_WATTS_PER_CORE)
        if not self.watts_per_core > 0:
            raise ValueError(f"watts per core must be positive, got {watts_per_core}")
        self.nvml = None if force_estimate or not use_gpu else _nvml()
        self.rapl = [] if force_estimate or self.nvml is not None else rapl_domains()
        self._rapl_max = [_rapl_max(f) for f in self.rapl]
        self.restart()

    def restart(self) -> None:
        self.t0 = time.perf_counter()
        self.cpu0 = time.process_time()
        self._last = self._counters()
        self._acc = 0.0

    def _counters(self) -> list[float] | None:
        if self.nvml is not None:
            pynvml, h = self.nvml
            try:
                return [pynvml.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0]
            except Exception:
                self.nvml = None
                return None
        if self.rapl:
            try:
                vals = []
                for f in self.rapl:
                    with open(f) as fh:
                        vals.append(int(fh.read()) / 1e6)
                return vals
            except (OSError, ValueError):
                self.rapl = []
        return None

    @property
    def method(self) -> str:
        return "measured" if (self.nvml is not None or self.rapl) else "estimated"

    @property
    def source(self) -> str:
        if self.nvml is not None:
            return "NVML total energy counter (GPU 0 only)"
        if self.rapl:
            return f"Intel RAPL package counters ({len(self.rapl)} package(s), whole package, all processes)"
        fig = (f"{self.watts_per_core:g} W per busy core (user figure)" if self.user_watts
               else WATTS_SOURCE)
        return f"process CPU time x {fig}"

    def read(self) -> EnergyReading:
        cpu = time.process_time() - self.cpu0
        wall = time.perf_counter() - self.t0
        now = self._counters() if self._last is not None else None
        if now is not None and self._last is not None:
            for i, (a, b) in enumerate(zip(self._last, now)):
                d = b - a
                if d < 0:  # RAPL counter wrapped
                    mx = self._rapl_max[i] if i < len(self._rapl_max) else None
                    d = d + mx if mx else 0.0
                self._acc += d
            self._last = now
            return EnergyReading(self._acc, "measured", self.source, cpu, wall)
        return EnergyReading(cpu * self.watts_per_core, "estimated", self.source, cpu, wall)


def co2e_grams(joules: float, g_per_kwh: float = GRID_G_CO2E_PER_KWH) -> float:
    """Grams CO2e for ``joules`` at a grid intensity in g/kWh (default :data:`GRID_G_CO2E_PER_KWH`)."""
    return float(joules) / 3.6e6 * float(g_per_kwh)
