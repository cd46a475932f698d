"""One wave of CTAs whose SMs stream at a limited rate: the per-SM sharing of cost.BandwidthModel.

A launch that fits its resident slots (grid <= SMs x blocks per SM) dispatches CTA i to SM i % S
(round-robin, engine.LaunchTimeline.cta_slot). Between events an SM holding k streaming CTAs asks for
min(k b, sm_stream_rate), the chip's rate is shared in proportion to the asks and the SM's CTAs split its
share (cost.BandwidthModel.per_cta_by_load). So at a grid g with S < g < 2S the g - S SMs holding two CTAs
stream each CTA slower than the single ones, at 2S < g < 3S the SMs with a third CTA stream it no faster
than two, and the launch ends when they do (docs/planner.md, "per-SM sharing").

The engine's one virtual-work clock (all CTAs at one rate) becomes one clock per SM: every CTA of an
SM streams at that SM's rate, so a CTA ends when its SM's clock reaches its bytes. The loop is
vectorised over SMs: W [S] bytes, the CTAs of each SM sorted by bytes [S, k_max]; an event is the
next CTA end on any SM (ties on several SMs: one event), about (levels x distinct SM loads) events.
"""

from __future__ import annotations

import numpy as np

from attnsim.simulator.cost import BandwidthModel


class SmClock:
    """Per-SM virtual-work clocks of one wave: times [E] and W [E, S] at each event."""

    def __init__(self, trace_t: np.ndarray, trace_w: np.ndarray, sm_of_cta: np.ndarray):
        self.trace_t, self.trace_w, self.sm_of_cta = trace_t, trace_w, sm_of_cta

    def time_at(self, cta: np.ndarray, done_bytes: np.ndarray) -> np.ndarray:
        """When each `cta` [m] had streamed `done_bytes` [m] on its SM's clock, µs (linear between events)."""
        cols = self.trace_w[:, self.sm_of_cta[cta]]  # [E, m], non-decreasing down each column
        done = np.asarray(done_bytes, np.float64)
        after = np.minimum((cols < done).sum(axis=0), len(self.trace_t) - 1)  # first event with W >= done
        before = np.maximum(after - 1, 0)
        idx = np.arange(len(done))
        w0, w1 = cols[before, idx], cols[after, idx]
        t0, t1 = self.trace_t[before], self.trace_t[after]
        frac = np.where(w1 > w0, (done - w0) / np.where(w1 > w0, w1 - w0, 1.0), 1.0)
        return t0 + np.clip(frac, 0.0, 1.0) * (t1 - t0)


def sm_single_wave(work: np.ndarray, sm_count: int, bw: BandwidthModel):
    """(start, stream end, clock) of a single wave of CTAs with bytes `work` [grid] under the per-SM
    limit; start is all zeros."""
    grid = len(work)
    sms = min(sm_count, grid)
    depth = -(-grid // sms)  # k_max: CTAs on the most crowded SM
    loads = np.full(depth * sms, np.inf)
    loads[:grid] = work
    loads = loads.reshape(depth, sms).T  # [S, k_max]: row j holds CTAs j, j + S, ...
    order = np.argsort(loads, axis=1, kind="stable")
    loads = np.take_along_axis(loads, order, axis=1)
    ends = _stream(loads, bw)
    stream_end = np.empty(grid)
    cta = order * sms + np.arange(sms)[:, None]  # CTA id of each sorted entry
    valid = cta < grid
    stream_end[cta[valid]] = ends[0][valid]
    return np.zeros(grid), stream_end, SmClock(ends[1], ends[2], np.arange(grid) % sms)


def _stream(loads: np.ndarray, bw: BandwidthModel):
    """(end [S, k_max], event times [E], W [E, S]) of SMs streaming their sorted `loads` (inf: none)."""
    sms, depth = loads.shape
    rows = np.arange(sms)
    pos = np.zeros(sms, np.int64)  # next unfinished CTA per SM
    count = np.isfinite(loads).sum(axis=1)
    w, t = np.zeros(sms), 0.0
    end = np.full(loads.shape, np.nan)
    padded = np.concatenate((loads, np.full((sms, 1), np.inf)), axis=1)  # so pos == depth reads inf
    trace_t, trace_w = [0.0], [w.copy()]
    while (pos < count).any():
        k = count - pos  # streaming CTAs per SM
        rate = bw.per_cta_by_load(np.bincount(k, minlength=depth + 1))[k]
        nxt = padded[rows, pos]
        t_end = t + (nxt - w) / rate
        t_next = float(t_end.min())
        hit = t_end == t_next
        w = np.where(hit, nxt, np.minimum(w + rate * (t_next - t), nxt))
        t = t_next
        done = hit[:, None] & (loads <= w[:, None]) & np.isnan(end)
        end[done] = t
        pos = np.where(hit, (loads <= w[:, None]).sum(axis=1), pos)
        trace_t.append(t)
        trace_w.append(w.copy())
    return end, np.asarray(trace_t), np.vstack(trace_w)
