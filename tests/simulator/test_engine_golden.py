"""Engine speed-ups keep every prediction identical: recorded figures of fa2, split-KV, stream-K,
hybrid, balanced and torch-flash plans (single and multi-wave, uniform and ragged) on two GPUs.

Identical to 1e-12 relative, not to the bit: NumPy sums arrays pairwise in SIMD lanes whose width follows the
host's CPU (AVX-512 or AVX2), so the last bit or two of a figure differs between hosts (an AMD EPYC without
AVX-512 gives h200 flashdecoding:splits=3 0x1.d62f5c4421227p+4 where the recording host gave ...225p+4). Any
change to the model moves a figure by far more than 1e-12."""

import json

from engine_golden import PATH, figures, moved

REL_TOL = 1e-12


def test_predictions_match_the_recorded_figures():
    stored = json.loads(PATH.read_text())
    now = figures()
    assert set(now) == set(stored)
    assert moved(stored, now, REL_TOL) == {}
