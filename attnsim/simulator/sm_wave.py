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

Past one wave (engine._waves) the engine keeps one chip-wide clock, and packed_rate prices its streaming CTAs as
the block scheduler places them: it refills the slots that free first, up to all of an SM's, so the CTAs of a
partial wave crowd a few SMs (traced on the H100: a 116-CTA tail three to an SM on 26-30 SMs while 75-79 idle,
docs/validation.md) and share those SMs' streams.
"""

from __future__ import annotations

import heapq
from typing import Callable

import numpy as np

from attnsim.simulator.cost import BandwidthModel


class SmClock:
    """Per-SM virtual-work clocks of one wave: the event times [E], V_k at each event [E, K + 1], each CTA's
    SM class (SMs holding the same loads run alike: one clock each) and the classes' segments (a flat list,
    five numbers each: class, the event it came to hold k CTAs, k, its W and V_k then; each class's in event
    order, every class's first at event 0), whose W at every event [E, U] is laid out on first use."""

    def __init__(self, trace_t: np.ndarray, trace_v: np.ndarray, segments: list, class_of_cta: np.ndarray):
        self.trace_t, self.trace_v, self.class_of_cta = trace_t, trace_v, class_of_cta
        self._segments, self._work = segments, None

    def work_at_events(self) -> np.ndarray:
        """W of an SM of each class at every event [E, U] (non-decreasing down each column)."""
        if self._work is None:
            table = np.array(self._segments, np.float64).reshape(-1, 5)  # class, event, k (whole numbers), W, V_k
            cls, event, k = (table[:, i].astype(np.int64) for i in range(3))
            events = len(self.trace_t)
            # the segment each class is in at each event: the latest begun (a class's segments are listed
            # in event order, so their indices grow with their events; row 0 has every class's first)
            seg = np.zeros((events, int(cls.max()) + 1), np.int64)
            seg[event, cls] = np.arange(len(table))
            seg = np.maximum.accumulate(seg, axis=0)
            self._work = table[seg, 3] + self.trace_v[np.arange(events)[:, None], k[seg]] - table[seg, 4]
        return self._work

    def time_at(self, cta: np.ndarray, done_bytes: np.ndarray) -> np.ndarray:
        """When each `cta` [m] had streamed `done_bytes` [m] on its SM's clock, µs (linear between events)."""
        cols = self.work_at_events()[:, self.class_of_cta[cta]]  # [E, m]
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
    sm_rows = np.arange(sms)[:, None]
    if depth == 1:  # one CTA per SM (the common wave): nothing to sort within an SM
        loads, order = work[:, None], None
    else:
        loads = np.full(depth * sms, np.inf)
        loads[:grid] = work
        loads = loads.reshape(depth, sms).T  # [S, k_max]: row j holds CTAs j, j + S, ...
        order = np.argsort(loads, axis=1, kind="stable")
        loads = loads[sm_rows, order]
    classes, mult, class_of_sm = sm_classes(loads)
    ends, trace_t, trace_v, segments = _stream(classes, mult, bw)
    sorted_end = ends[class_of_sm]  # [S, k_max]: each SM's CTAs in the order of their loads
    if order is None:
        stream_end = sorted_end[:, 0]
    else:  # back to launch order: the entry (j, p) is CTA order[j, p] x S + j
        stream_end = np.empty_like(sorted_end)
        stream_end[sm_rows, order] = sorted_end
        stream_end = stream_end.T.reshape(-1)[:grid]
    class_of_cta = class_of_sm if order is None else class_of_sm[np.arange(grid) % sms]
    return np.zeros(grid), stream_end, SmClock(trace_t, trace_v, segments, class_of_cta)


def sm_classes(loads: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct rows [U, k_max], SMs holding each [U], class of each SM [S]) of the SMs' sorted loads,
    the rows in lexicographic order."""
    order = np.argsort(loads[:, 0], kind="stable") if loads.shape[1] == 1 else np.lexsort(loads.T[::-1])
    rows = loads[order]
    new = np.empty(len(rows), bool)  # rows[i] starts a new class
    new[0] = True
    (rows[1:] != rows[:-1]).any(axis=1, out=new[1:])
    sorted_class = new.cumsum() - 1
    class_of_sm = np.empty(len(loads), np.int64)
    class_of_sm[order] = sorted_class
    return rows[new], np.bincount(sorted_class), class_of_sm


def _stream(loads: np.ndarray, mult: np.ndarray, bw: BandwidthModel):
    """(end [U, k_max], event times [E], V_k [E, K + 1], segments) of SM classes streaming their sorted
    `loads` (inf: none), `mult` [U] SMs each; segments as SmClock takes them. The loop runs on Python
    floats and lists (array scalars cost ~10x per operation); ends are filled into lists, then an array."""
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
    segments = [x for u, c in enumerate(count) for x in (u, 0, c, 0.0, 0.0)]  # (class, event, k, W, V_k) flat
    pos, v, t = [0] * classes, [0.0] * (depth + 1), 0.0
    end = [np.nan] * (classes * depth)  # [U, k_max] flat
    trace_t, trace_v = [0.0], list(v)  # trace_v: [E, K + 1] flat
    rates, levels = bw.load_rates(depth + 1), range(1, depth + 1)
    pop, push = heapq.heappop, heapq.heappush
    while any(heaps):
        rate = rates(holding)
        k_next = 0  # the k whose next CTA end comes first (ties: the lowest k)
        for k in levels:
            if heaps[k]:
                dt_k = (heaps[k][0][0] - v[k]) / rate[k]
                if not k_next or dt_k < dt:
                    dt, k_next = dt_k, k
        heap = heaps[k_next]
        target = heap[0][0]
        if dt < 0.0:  # max(dt, 0.0)
            dt = 0.0
        t += dt
        v = [v_k + r_k * dt for v_k, r_k in zip(v, rate)]
        v[k_next] = target  # exactly: the SMs ending now are at their loads
        event = len(trace_t)
        while heap and heap[0][0] == target:
            u = pop(heap)[1]
            row, p, n = rows[u], pos[u], count[u]
            w = row[p]
            while p < n and row[p] <= w:
                end[u * depth + p] = t
                p += 1
            pos[u], k = p, n - p
            holding[k_next] -= weight[u]
            holding[k] += weight[u]
            segments += (u, event, k, w, v[k])
            if k:
                push(heaps[k], (v[k] + row[p] - w, u))
        trace_t.append(t)
        trace_v += v
    return (np.array(end).reshape(classes, depth), np.array(trace_t), np.array(trace_v).reshape(-1, depth + 1),
            segments)


def packed_rate(bw: BandwidthModel, per_sm: int) -> Callable[[int], float]:
    """rate(n) -> bytes/µs of a CTA on the most crowded SM when n CTAs stream packed `per_sm` to an SM (the last SM
    holding the rest) under the per-SM limit, load_rates' shares of n // per_sm full SMs and one partial: on the
    engine's one clock every CTA streams at it, so a uniform wave ends when its most crowded SMs do (the partial
    SM's few CTAs, done early in fact, cost nothing then). A full wave is sm_single_wave's; a partial one is its
    CTAs crowded onto n / per_sm SMs instead of one an SM. Each n is worked out once (waves repeat a few counts)."""
    shares, rates = bw.load_rates(per_sm + 1), {}

    def rate(n: int) -> float:
        if n not in rates:
            full, rest = divmod(max(int(n), 1), per_sm)
            holding = [0] * (per_sm + 1)
            holding[per_sm] = full
            if rest:
                holding[rest] = 1
            per_k = shares(holding)
            rates[n] = per_k[per_sm] if full else per_k[rest]
        return rates[n]
    return rate
