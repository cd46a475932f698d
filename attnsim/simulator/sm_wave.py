"""One wave of CTAs whose SMs stream at a limited rate: the per-SM sharing of cost.BandwidthModel.

A launch that fits its resident slots (grid <= SMs x blocks per SM) dispatches CTA i to SM i % S
(round-robin, engine.LaunchTimeline.cta_slot). Between events an SM holding k streaming CTAs asks for
min(k b, sm_stream_rate), the chip's rate is shared in proportion to the asks and the SM's CTAs split its
share (cost.BandwidthModel.load_rates). So at a grid g with S < g < 2S the g - S SMs holding two CTAs
stream each CTA slower than the single ones, at 2S < g < 3S the SMs with a third CTA stream it no faster
than two, and the launch ends when they do (docs/planner.md, "per-SM sharing").

The engine's one virtual-work clock (all CTAs at one rate) becomes one clock per SM: every CTA of an
SM streams at that SM's rate, so a CTA ends when its SM's clock reaches its bytes. Every SM holding k
CTAs streams at the same rate, so one integral per k, V_k(t) = the bytes an SM holding k CTAs since 0
would have streamed by t, says where each SM's clock is: W = W0 + V_k(t) - V_k(t0) since it came to
hold k at t0. The next CTA end of the SMs holding k is the least V_k target (a heap per k), so an event
(the next CTA end on any SM; SMs ending at one V_k target: one event) costs O(log S + K) Python, not a
pass over every SM: ragged launches, whose SMs all end apart, have ~S events (the planner's slowest).
"""

from __future__ import annotations

import heapq

import numpy as np

from attnsim.simulator.cost import BandwidthModel


class SmClock:
    """Per-SM virtual-work clocks of one wave: the event times [E], V_k at each event [E, K + 1], each CTA's
    SM class (SMs holding the same loads run alike: one clock each) and the classes' segments (flat: class,
    the event it came to hold k CTAs, k, its W and V_k then), laid out [U, K + 1] on first use."""

    def __init__(self, trace_t: np.ndarray, trace_v: np.ndarray, segments: list, class_of_cta: np.ndarray):
        self.trace_t, self.trace_v, self.class_of_cta = trace_t, trace_v, class_of_cta
        self._segments, self._table = segments, None

    def _segment_table(self) -> tuple:
        """(event, k, W, V_k) [U, K + 1] of each class's segments in event order, padded with segments that
        start after every event."""
        if self._table is None:
            cls, event, k, w, v = (np.asarray(col) for col in zip(*self._segments))
            order = np.lexsort((event, cls))
            cls = cls[order]
            first = np.searchsorted(cls, cls)  # each segment's rank within its class
            rank = np.arange(len(cls)) - first
            shape = (int(cls.max()) + 1, self.trace_v.shape[1])
            table = [np.full(shape, np.iinfo(np.int64).max), np.zeros(shape, np.int64), np.zeros(shape),
                     np.zeros(shape)]
            for dense, values in zip(table, (event, k, w, v)):
                dense[cls, rank] = values[order]
            self._table = tuple(table)
        return self._table

    def work_at_events(self, classes: np.ndarray) -> np.ndarray:
        """W of an SM of each of `classes` [m] at every event [E, m] (non-decreasing down each column)."""
        seg_event, seg_k, seg_w, seg_v = self._segment_table()
        wanted, column = np.unique(classes, return_inverse=True)  # many peers share a class
        events = np.arange(len(self.trace_t))
        seg = (seg_event[wanted][None, :, :] <= events[:, None, None]).sum(axis=2) - 1  # [E, distinct]
        col = wanted[None, :]
        work = seg_w[col, seg] + self.trace_v[events[:, None], seg_k[col, seg]] - seg_v[col, seg]
        return work[:, column.reshape(-1)]

    def time_at(self, cta: np.ndarray, done_bytes: np.ndarray) -> np.ndarray:
        """When each `cta` [m] had streamed `done_bytes` [m] on its SM's clock, µs (linear between events)."""
        cols = self.work_at_events(self.class_of_cta[cta])  # [E, m]
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
    classes, mult, class_of_sm = sm_classes(loads)
    ends, trace_t, trace_v, segments = _stream(classes, mult, bw)
    stream_end = np.empty(grid)
    cta = order * sms + np.arange(sms)[:, None]  # CTA id of each sorted entry
    valid = cta < grid
    stream_end[cta[valid]] = ends[class_of_sm][valid]
    return np.zeros(grid), stream_end, SmClock(trace_t, trace_v, segments, class_of_sm[np.arange(grid) % sms])


def sm_classes(loads: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct rows [U, k_max], SMs holding each [U], class of each SM [S]) of the SMs' sorted loads."""
    if loads.shape[1] == 1:  # one CTA per SM (the common wave): np.unique of a column is cheaper
        values, class_of_sm, mult = np.unique(loads[:, 0], return_inverse=True, return_counts=True)
        return values[:, None], mult, class_of_sm.reshape(-1)
    order = np.lexsort(loads.T[::-1])
    rows = loads[order]
    new = np.r_[True, (rows[1:] != rows[:-1]).any(axis=1)]
    sorted_class = np.cumsum(new) - 1
    class_of_sm = np.empty(len(loads), np.int64)
    class_of_sm[order] = sorted_class
    return rows[new], np.bincount(sorted_class), class_of_sm


def _stream(loads: np.ndarray, mult: np.ndarray, bw: BandwidthModel):
    """(end [U, k_max], event times [E], V_k [E, K + 1], segments) of SM classes streaming their sorted
    `loads` (inf: none), `mult` [U] SMs each; segments as SmClock takes them."""
    classes, depth = loads.shape
    rows, weight = loads.tolist(), mult.tolist()
    count = np.isfinite(loads).sum(axis=1).tolist()
    holding = np.bincount(count, weights=mult, minlength=depth + 1).tolist()  # SMs streaming k CTAs
    heaps = [[] for _ in range(depth + 1)]  # per k: (V_k target at the class's next CTA end, class)
    for u, c in enumerate(count):
        if c:
            heaps[c].append((rows[u][0], u))
    for heap in heaps:
        heapq.heapify(heap)
    segments = [(u, 0, c, 0.0, 0.0) for u, c in enumerate(count)]  # (class, event, k, W, V_k)
    pos, v, t = [0] * classes, [0.0] * (depth + 1), 0.0
    end = np.full(loads.shape, np.nan)
    trace_t, trace_v = [0.0], [v]
    rates = bw.load_rates(depth + 1)
    while any(heaps):
        rate = rates(holding)
        dt, k_next = min(((heaps[k][0][0] - v[k]) / rate[k], k) for k in range(1, depth + 1) if heaps[k])
        target = heaps[k_next][0][0]
        dt = max(dt, 0.0)
        t += dt
        v = [v[k] + rate[k] * dt for k in range(depth + 1)]
        v[k_next] = target  # exactly: the SMs ending now are at their loads
        event = len(trace_t)
        while heaps[k_next] and heaps[k_next][0][0] == target:
            _, u = heapq.heappop(heaps[k_next])
            w, p = rows[u][pos[u]], pos[u]
            while p < count[u] and rows[u][p] <= w:
                end[u, p] = t
                p += 1
            pos[u], k = p, count[u] - p
            holding[k_next] -= weight[u]
            holding[k] += weight[u]
            segments.append((u, event, k, w, v[k]))
            if k:
                heapq.heappush(heaps[k], (v[k] + rows[u][p] - w, u))
        trace_t.append(t)
        trace_v.append(v)
    return end, np.asarray(trace_t), np.asarray(trace_v), segments
