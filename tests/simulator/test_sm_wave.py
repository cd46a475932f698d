"""Per-SM sharing (simulator/sm_wave.py) against fluid times worked out by hand.

With a chip bandwidth far above the CTAs' (B = 1e12 bytes/µs) every CTA's chip-wide share is its
solo rate b, so a CTA on an SM with k streaming CTAs streams at min(b, R / k)."""

from __future__ import annotations

import numpy as np
import pytest

from attnsim.simulator.cost import BandwidthModel
from attnsim.simulator.engine import _single_wave
from attnsim.simulator.sm_wave import sm_single_wave

S = 132
b = 100.0  # bytes/µs of a CTA alone


def _bw(sm_rate: float) -> BandwidthModel:
    return BandwidthModel(cta_rate=b, hbm_rate=1e12, knee=1000.0, sm_count=S, sm_stream_rate=sm_rate)


def test_doubled_sms_end_last():
    # grid S + 16: SMs 0-15 hold CTAs j and j + S; two co-resident CTAs stream 1.5 b together
    work = np.full(S + 16, 300.0)
    _, end, _ = sm_single_wave(work, S, _bw(1.5 * b))
    doubled = np.r_[0:16, S:S + 16]
    assert end[doubled] == pytest.approx(300.0 / 75.0)
    assert np.delete(end, doubled) == pytest.approx(300.0 / b)


def test_sm_mate_speeds_up_when_its_neighbour_ends():
    # SM 0 holds 100 and 300 bytes: both at R / 2 = 60 until t = 100 / 60, then the long one alone at
    # min(b, R) = 100 for its last 200 bytes: ends at 5/3 + 2
    work = np.full(S + 1, 50.0)
    work[0], work[S] = 100.0, 300.0
    _, end, clock = sm_single_wave(work, S, _bw(120.0))
    assert end[0] == pytest.approx(100.0 / 60.0)
    assert end[S] == pytest.approx(100.0 / 60.0 + 2.0)
    assert end[1] == pytest.approx(0.5)
    # the long CTA had streamed 100 bytes when its neighbour ended, and 200 a second later
    assert clock.time_at(np.array([S, S]), np.array([100.0, 200.0])) == pytest.approx([5 / 3, 5 / 3 + 1])


@pytest.mark.parametrize("grid", [1, 7, 132, 200, 396])
def test_no_binding_limit_is_the_shared_clock(grid):
    rng = np.random.default_rng(grid)
    work = rng.choice([1e4, 2e4, 3e4], grid)
    bw = BandwidthModel(cta_rate=2e4, hbm_rate=3e6, knee=2.5, sm_count=S, sm_stream_rate=1e12)
    _, end, _ = sm_single_wave(work, S, bw)
    _, shared_end, _, _ = _single_wave(work, BandwidthModel(cta_rate=2e4, hbm_rate=3e6, knee=2.5, sm_count=S))
    np.testing.assert_allclose(end, shared_end, rtol=1e-12)


def _math_bw(sm_math: float, cta_math: float = np.inf) -> BandwidthModel:
    return BandwidthModel(cta_rate=b, hbm_rate=1e12, knee=1000.0, sm_math_rate=sm_math, sm_count=S,
                          cta_math_rate=cta_math, sm_stream_rate=1e12)


def test_the_math_cap_is_split_by_each_sms_own_ctas():
    # tile math of 80 bytes/µs per SM: a CTA alone on its SM streams min(b, 80), two on one SM 40 each,
    # not the chip-wide average 80 x S / grid the multi-wave share uses
    work = np.full(S + 40, 400.0)
    _, end, _ = sm_single_wave(work, S, _math_bw(80.0))
    doubled = np.r_[0:40, S:S + 40]
    assert end[doubled] == pytest.approx(400.0 / 40.0)
    assert np.delete(end, doubled) == pytest.approx(400.0 / 80.0)


def test_a_ctas_own_math_limit_binds_where_its_sm_is_idle():
    # 60 bytes/µs for what the CTA's warps retire: a lone CTA gets min(b, 80, 60); a pair min(40, 60) each
    work = np.full(S + 1, 120.0)
    _, end, _ = sm_single_wave(work, S, _math_bw(80.0, cta_math=60.0))
    assert end[1] == pytest.approx(120.0 / 60.0)
    assert end[[0, S]] == pytest.approx([120.0 / 40.0] * 2)


def test_a_fuller_wave_of_math_bound_ctas_streams_more_per_sm():
    # the same bytes over S + 40 CTAs (40 SMs doubled) and 2S - 8 (124 doubled): the launch ends with its
    # doubled SMs either way, so the fuller grid is (2S - 8) / (S + 40) faster
    total = 1e6
    ends = [sm_single_wave(np.full(g, total / g), S, _math_bw(80.0))[1].max() for g in (S + 40, 2 * S - 8)]
    assert ends[0] / ends[1] == pytest.approx((2 * S - 8) / (S + 40))


def test_a_third_cta_adds_nothing_to_an_sm_whose_bytes_in_flight_two_fill():
    # R = 1.5 b < 2 b: every SM with two or three CTAs asks for R. The chip (B = S b, a hard knee) shares
    # its rate in proportion to the asks: 2/3 R = b per SM, so CTAs on tripled SMs stream at b / 3 against
    # b / 2 on doubled ones; once the doubled SMs end the 20 tripled ones ask 20 R << B and get it all
    work = np.full(2 * S + 20, 300.0)
    bw = BandwidthModel(cta_rate=b, hbm_rate=S * b, knee=1000.0, sm_count=S, sm_stream_rate=1.5 * b)
    _, end, _ = sm_single_wave(work, S, bw)
    tripled = np.r_[0:20, S:S + 20, 2 * S:2 * S + 20]
    assert np.delete(end, tripled) == pytest.approx(300.0 / 50.0, rel=1e-3)
    t_doubled = 300.0 / 50.0
    assert end[tripled] == pytest.approx(t_doubled + (300.0 - t_doubled * b / 3) / 50.0, rel=1e-3)
