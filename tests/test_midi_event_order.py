"""A CC's value and sequence number are published before the count that announces it.

``MidiInput``'s poller thread stores each controller message and then counts it in ``events``;
other threads (the knob reader, the tests) wait for ``events`` to reach k and then read
``cc_value`` / ``cc_seq``. If the count came first, a reader could see k events and still miss
the k-th CC (``KnobReader`` would keep the knob at its preset value for one more read). The
order is checked at every store, through a ``MidiInput`` whose ``events`` writes are watched.
"""

from __future__ import annotations

from vqblur.engine.stage.midi import MidiInput


class Watched(MidiInput):
    """Asserts, whenever ``events`` is set to k, that the CC being counted is already stored."""

    current: tuple[int, int, int] | None = None  # (channel, cc, value) being delivered

    def __setattr__(self, name, value):
        if name == "events" and value > 0 and self.current is not None:
            ch, cc, v = self.current
            assert self.cc_value[ch, cc] == v, "the count came before the value"
            assert self.cc_seq[ch, cc] == value, "the count came before the sequence number"
        super().__setattr__(name, value)


def test_the_count_comes_last():
    m = Watched(api="jack", client_name="vqtest-order")
    msgs = [(0, 16, 127), (3, 74, 0), (0, 16, 5), (15, 1, 64)]
    for k, (ch, cc, v) in enumerate(msgs, start=1):
        m.current = (ch, cc, v)
        m._callback(([0xB0 | ch, cc, v], 0.0))
        assert m.events == k and m.cc_seq[ch, cc] == k
    assert m.callback_errors == 0  # (the callback swallows exceptions: none was raised)
