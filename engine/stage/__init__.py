"""The live stage: the engine on an audio interface, with its knobs on MIDI and OSC.

The DSP core (``vqblur.engine.core`` and its parts) is block in / block out and never imports
this package; the stage puts it on a device. One module per job:

* :mod:`~vqblur.engine.stage.devices` -- PortAudio devices: list, find by index or name, name
  the JACK client;
* :mod:`~vqblur.engine.stage.realtime` -- real-time (SCHED_FIFO) priority for a thread;
* :mod:`~vqblur.engine.stage.runner` -- :class:`LiveRunner`: the audio callback and the
  worker that runs the engine, around the lock-free rings of :mod:`~vqblur.engine.stage.ring`;
* :mod:`~vqblur.engine.stage.stats` -- :class:`LiveStats`, the runner's counters;
* :mod:`~vqblur.engine.stage.status` -- the status loop (:func:`run_live`) and its line;
* :mod:`~vqblur.engine.stage.audio` -- ``vqblur live``'s audio process (the runner and the
  engine, nothing else) and the control process's handle on it, :class:`AudioProcess`;
  :mod:`~vqblur.engine.stage.share` -- the memory the two share (counters, knobs, meters);
* knobs: :mod:`~vqblur.engine.stage.midi` (controllers, maps, learn),
  :mod:`~vqblur.engine.stage.osc` (the OSC server), :mod:`~vqblur.engine.stage.control`
  (the merge the worker reads, and the pump that hands it to the audio process);
* the live view: :mod:`~vqblur.engine.stage.tap` (the engine's column tap),
  :mod:`~vqblur.engine.stage.viewstate` (the numbers it shows),
  :mod:`~vqblur.engine.stage.view` (its process).
"""
