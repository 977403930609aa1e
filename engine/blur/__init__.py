"""The blur: resample a zone of the code grid from what its neighbours say, and turn the
decoder's change into a level-true, smooth effect placed on a perceptual frequency axis.

numpy only (part of the engine: never imports torch). One module per job:

* :mod:`.table` -- the Naive Bayes table: format, validation, loading, neighbour offsets;
* :mod:`.sampler` -- the streaming sampler (one code column per step);
* :mod:`.gibbs` -- the offline Gibbs blur of a whole grid (full neighbourhood);
* :mod:`.zone` -- knob values -> the zone's weight per bin and the rows under it;
* :mod:`.codeblur` -- a channel's blur on codec v2's two codemaps (the ``scale`` knob);
* :mod:`.shaping` -- blur v2: the change ``dec(b) - dec(c)`` placed, smoothed, level-matched.

The knob mappings (T = 4 t^2, the perceptual centre axis) live in :mod:`vqblur.engine.knobs`.
"""

from vqblur.engine.blur.gibbs import blur_grid
from vqblur.engine.blur.sampler import TIME_EDGE_COLUMNS, ZoneSampler, zone_probabilities, zone_profile
from vqblur.engine.blur.table import (OFFSETS_8, OFFSETS_CAUSAL, NBTable, load_nb_table, parse_offsets,
                                      select_offsets)
from vqblur.engine.knobs import T_KNOB_MAX, T_MIN, knob_to_temperature

__all__ = [
    "NBTable", "load_nb_table", "parse_offsets", "select_offsets", "OFFSETS_8", "OFFSETS_CAUSAL",
    "zone_profile", "zone_probabilities", "TIME_EDGE_COLUMNS", "ZoneSampler", "blur_grid",
    "knob_to_temperature", "T_KNOB_MAX", "T_MIN",
]
