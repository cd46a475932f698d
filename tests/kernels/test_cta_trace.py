"""The CTA trace probe (scripts/cta_trace.py) asks for the grids it says (one full wave of k CTAs an SM, then
tails) and its summary reads a trace as stated: the first wave's end spread and how many SMs hold 1, 2, ...
of the tail's CTAs."""

import numpy as np

from script_helpers import load_script

trace = load_script("cta_trace")


def test_grids_are_a_full_wave_then_tails_past_it():
    grids = trace.grids_for(132, 2)
    assert grids[0] == 264 and all(g > 264 for g in grids[1:])
    assert grids[1:5] == [268, 292, 330, 396] and grids[-1] == 2 * 264 + 4


def test_summary_counts_the_tails_sms_and_its_starts():
    sms, k = 4, 2
    wave = sms * k
    first = np.array([[p % sms, 0, 100 if p < wave - 2 else 80] for p in range(wave)])  # two CTAs end early
    tail = np.array([[1, 80, 150], [1, 80, 150], [3, 100, 140]])  # SM 1 takes two, SM 3 one
    line = trace.summary(np.vstack([first, tail]), wave, sms)
    assert "first wave ends p10/p50/p90 0.800/1/1.000 of 0.1 us" in line
    assert "tail of 3: SMs holding 1/2/3/4.. of it 1/1" in line
    assert "starts p10/p50/p90 0.800/0.800/0.960" in line
