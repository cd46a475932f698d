"""Engine speed-ups keep every prediction bit-identical: recorded figures of fa2, split-KV, stream-K,
hybrid, balanced and torch-flash plans (single and multi-wave, uniform and ragged) on two GPUs."""

import json

from engine_golden import PATH, figures


def test_predictions_match_the_recorded_figures_bit_for_bit():
    stored = json.loads(PATH.read_text())
    now = figures()
    assert set(now) == set(stored)
    assert {k: v for k, v in now.items() if stored[k] != v} == {}
