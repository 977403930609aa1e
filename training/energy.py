"""Energy accounting for training and inference.

Order of preference: NVML's cumulative energy counter on an NVIDIA GPU (measured), Intel
RAPL package counters under /sys/class/powercap (measured), otherwise an estimate:
process CPU seconds x a per-core power figure.

The default per-core figure, 10 W, is an assumption: a server core's share of package
power under full load (e.g. a 205 W, 20-core Xeon is ~10 W/core at TDP). Override it with
`--watts-per-core` / `train.watts_per_core`; the method and the figure are always recorded.
"""

from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass

DEFAULT_WATTS_PER_CORE = 10.0
WATTS_SOURCE = "assumed 10 W per busy core (server core's share of package TDP); override with --watts-per-core"
GRID_G_CO2E_PER_KWH = 400.0
GRID_SOURCE = "400 g CO2e/kWh: rough world-average grid carbon intensity (Ember/IEA order of magnitude)"


def _rapl_files() -> list[str]:
    files = sorted(glob.glob("/sys/class/powercap/intel-rapl:[0-9]*/energy_uj"))
    readable = []
    for f in files:
        try:
            with open(f) as fh:
                int(fh.read())
            readable.append(f)
        except (OSError, ValueError):
            pass
    return readable


def _nvml_handle():
    try:
        import pynvml  # type: ignore

        pynvml.nvmlInit()
        return pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
    except Exception:
        return None


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
    """Cumulative energy since construction: `read()` any number of times."""

    def __init__(self, watts_per_core: float = DEFAULT_WATTS_PER_CORE, use_gpu: bool = False) -> None:
        self.watts_per_core = watts_per_core
        self.t0 = time.perf_counter()
        self.cpu0 = time.process_time()
        self.nvml = _nvml_handle() if use_gpu else None
        self.rapl = _rapl_files()
        self.e0 = self._counter()

    def _counter(self) -> float | None:
        if self.nvml is not None:
            pynvml, handle = self.nvml
            try:
                return pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0  # mJ -> J
            except Exception:
                self.nvml = None
        if self.rapl:
            total = 0.0
            for f in self.rapl:
                with open(f) as fh:
                    total += int(fh.read()) / 1e6
            return total
        return None

    def read(self) -> EnergyReading:
        cpu = time.process_time() - self.cpu0
        wall = time.perf_counter() - self.t0
        now = self._counter()
        if now is not None and self.e0 is not None:
            source = "NVML total energy counter (GPU 0)" if self.nvml is not None else "Intel RAPL package counters (whole package, all processes)"
            return EnergyReading(now - self.e0, "measured", source, cpu, wall)
        src = WATTS_SOURCE if self.watts_per_core == DEFAULT_WATTS_PER_CORE else f"{self.watts_per_core} W per busy core (user figure)"
        return EnergyReading(cpu * self.watts_per_core, "estimated", f"process CPU time x {src}", cpu, wall)


def co2e_grams(joules: float) -> float:
    return joules / 3.6e6 * GRID_G_CO2E_PER_KWH


def rank_world() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
