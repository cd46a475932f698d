"""Event-driven execution of a Schedule on the GPU's CTA slots.

Launches run one after another, each after its launch overhead. Within a launch, CTAs are
dispatched in launch order to free slots (slots = SMs x blocks per SM). A CTA first streams its
bytes at the shared rate (cost.BandwidthModel), then spends its fixed time holding its slot; a host
CTA also waits until each peer has published its partial. An output merged by its last arrival
(no waiting) bills the merge to the contributor that publishes last (_arrival_us): the launch is
dispatched once to learn which one, then again with that merge time added to those CTAs (it delays
their slots' next CTAs).

Streaming is a fluid model: between events every streaming CTA progresses at the same rate, so we
track one "virtual work" clock W (bytes streamed by a CTA that has streamed since t = 0) and a CTA
that starts at W0 finishes streaming when W = W0 + its bytes. Events are cohorts of CTAs that start
together and have the same bytes, so a uniform launch costs a handful of events, not one per CTA.
A family with a per-SM stream limit (CostParams.sm_stream_gbps) runs a launch that fits its slots on
one clock per SM instead (simulator/sm_wave.py): the CTAs of a crowded SM stream slower. Past its slots
such a launch keeps the one clock, its streaming CTAs priced as packed onto as few SMs as they fill
(sm_wave.packed_rate: the block scheduler refills freed slots SM by SM, so a partial wave crowds few SMs).
A uniform launch's last partial wave may instead start ahead on the SMs that stream faster (GpuSpec.fast_sms,
_tail_rate): behind one full wave a small one starts early, behind two or more it costs only its bytes.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass

import numpy as np

from attnsim.errors import InputError
from attnsim.simulator import cost, merge_cost, reuse
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.occupancy import resident_capacity
from attnsim.simulator.schedule import LAST_ARRIVAL, Launch, Schedule
from attnsim.simulator.sm_wave import packed_rate, sm_single_wave


@dataclass(frozen=True, eq=False)
class LaunchTimeline:
    """What one launch did. Times in µs from the start of the schedule; arrays [grid]."""

    name: str
    start_us: float  # when its first CTA could start (after the launch overhead)
    end_us: float
    slots: int  # resident CTA capacity (SMs x blocks per SM)
    cta_start_us: np.ndarray
    cta_stream_end_us: np.ndarray
    cta_end_us: np.ndarray
    cta_slot: np.ndarray  # which slot ran the CTA; SM = slot % sm_count (round-robin dispatch)


@dataclass(frozen=True, eq=False)
class SimResult:
    schedule: Schedule
    total_us: float
    launches: tuple[LaunchTimeline, ...]
    bytes_moved: float  # HBM traffic: the plan's bytes less what an MLA plan's q-blocks re-read from L2
    hbm_read_gbps: float
    sm_count: int

    @property
    def achieved_gbps(self) -> float:
        return self.bytes_moved / self.total_us / cost.GBPS_TO_BYTES_PER_US

    @property
    def bw_fraction(self) -> float:
        return self.achieved_gbps / self.hbm_read_gbps

    def sm_busy_us(self) -> np.ndarray:
        """Time each SM had at least its CTAs' slots occupied, summed over CTAs. float64 [sm_count]."""
        busy = np.zeros(self.sm_count)
        for tl in self.launches:
            np.add.at(busy, tl.cta_slot % self.sm_count, tl.cta_end_us - tl.cta_start_us)
        return busy


def simulate(schedule: Schedule, gpu: GpuSpec) -> SimResult:
    clock = 0.0
    timelines = []
    for launch in schedule.launches:
        params = gpu.cost_for(launch.family)
        clock += params.launch_overhead_us
        tl = _simulate_launch(schedule, launch, gpu, clock)
        timelines.append(tl)
        clock = tl.end_us
    hbm_bytes = schedule.total_bytes() - reuse.l2_hit_bytes(gpu, schedule.attention, schedule.workload)
    return SimResult(schedule, clock, tuple(timelines), hbm_bytes, gpu.hbm_read_gbps, gpu.sm_count)


def _simulate_launch(schedule: Schedule, launch: Launch, gpu: GpuSpec, t0: float) -> LaunchTimeline:
    slots, start, stream_end, end, slot = _run_launch(schedule, launch, gpu)
    return LaunchTimeline(launch.name, t0, t0 + float(end.max(initial=0.0)), slots, t0 + start,
                          t0 + stream_end, t0 + end, slot)


def launch_span_us(schedule: Schedule, launch: Launch, gpu: GpuSpec) -> float:
    """How long a launch runs after its launch overhead (until its last CTA ends), µs: what simulate
    adds to its clock for the launch, bit for bit (simulator/fit_times.py sums these)."""
    return float(_run_launch(schedule, launch, gpu)[3].max(initial=0.0))


def _run_launch(schedule: Schedule, launch: Launch, gpu: GpuSpec):
    """(slots, start, stream end, end, slot) of every CTA [grid], µs from the launch's start."""
    slots = resident_capacity(gpu, launch.resources)
    if slots == 0:
        raise InputError("resources", f"{launch.name} CTA ({launch.resources}) cannot launch on {gpu.name}")
    bw = cost.bandwidth_model(gpu, launch, schedule)
    fast_slots = gpu.fast_sms * (slots // gpu.sm_count)  # a uniform multi-wave launch's tail may run ahead there
    work = cost.cta_work_bytes(launch)
    params = gpu.cost_for(launch.family)
    fixed = cost.cta_fixed_us(params, launch, schedule)
    if params.wide_tile_ns_per_row_token:
        fixed = fixed + cost.wide_tile_us(params, launch, schedule)
    start, stream_end, ready, slot, clock = _dispatch(schedule, launch, work, fixed, slots, bw, fast_slots)
    if launch.name == "attention" and (schedule.reductions.host_cta == LAST_ARRIVAL).any():
        merge = merge_cost.last_arrival_merge_us(gpu.cost_for(launch.merge_family or launch.family),
                                                 schedule.reductions,
                                                 _arrival_us(schedule, launch, ready + fixed, clock), launch.grid,
                                                 schedule.workload)
        # now that the last arrivals are known: they hold their slots for the merge
        fixed = fixed + merge
        if launch.grid > slots:  # a longer hold delays the CTA dispatched to the slot next; in one wave
            # every CTA starts at t = 0, so its stream (and so its readiness) is the same: only its end moves
            start, stream_end, ready, slot, _ = _dispatch(schedule, launch, work, fixed, slots, bw, fast_slots)
    return slots, start, stream_end, ready + fixed, slot


def _dispatch(schedule: Schedule, launch: Launch, work: np.ndarray, fixed: np.ndarray, slots: int,
              bw: cost.BandwidthModel, fast_slots: int = 0):
    """(start, stream end, ready, slot) of every CTA [grid], µs from the launch's start, and the clock
    that says when a CTA had streamed some of its bytes (_WorkClock or sm_wave.SmClock). A CTA ends at
    ready + fixed: ready is when its fixed tail starts (its stream's end, or a host's last peer's
    publication); `fixed` moves the stream only past one wave (the slot's next CTA waits for it)."""
    if launch.grid <= slots and bw.sm_stream_rate != math.inf:  # per-SM limit: CTA i on SM i % S
        start, stream_end, clock = sm_single_wave(work, bw.sm_count, bw)
        slot = np.arange(launch.grid)
    elif launch.grid <= slots:
        start, stream_end, trace_t, trace_w = _single_wave(work, bw)
        slot = np.arange(launch.grid)
        clock = _WorkClock(start, trace_t, trace_w)  # start all zeros: every CTA starts at t = 0, W = 0
    else:
        start, stream_end, w_start, slot, trace_t, trace_w = _waves(work, fixed, slots, bw, fast_slots)
        clock = _WorkClock(w_start, trace_t, trace_w)
    ready = stream_end
    if launch.name == "attention" and len(schedule.reductions):
        ready = _host_ready(schedule, stream_end, clock)
    return start, stream_end, ready, slot, clock


@dataclass(frozen=True, eq=False)
class _WorkClock:
    """The launch's one virtual-work clock: W at each CTA's start [grid], the trace's times and W's."""

    w_start: np.ndarray
    trace_t: np.ndarray
    trace_w: np.ndarray

    def time_at(self, cta: np.ndarray, done_bytes: np.ndarray) -> np.ndarray:
        """When each `cta` had streamed `done_bytes` of its work, µs."""
        return np.interp(self.w_start[cta] + done_bytes, self.trace_w, self.trace_t)


def _arrival_us(schedule: Schedule, launch: Launch, cta_end_us: np.ndarray, clock) -> np.ndarray:
    """When each Reductions peer arrives at its output's counter, µs [n_peers]: a contribution that
    is its CTA's last streamed work arrives when the CTA ends (the CTA's fixed tail comes first);
    an earlier one (a stream-K CTA's first segment) once its bytes are streamed."""
    red, segs = schedule.reductions, launch.segments
    cta_kv_bytes = np.bincount(segs.cta, weights=segs.kv_bytes, minlength=launch.grid)
    arrival = cta_end_us[red.peer_cta]
    early = ~(red.peer_done_bytes >= cta_kv_bytes[red.peer_cta])  # none where every CTA streams one output
    if early.any():  # the clock is read only for those (time_at is per peer)
        arrival[early] = clock.time_at(red.peer_cta[early], red.peer_done_bytes[early])
    return arrival


def _single_wave(work: np.ndarray, bw: cost.BandwidthModel):
    """All CTAs start at t = 0; they finish streaming in order of their bytes (vectorised)."""
    n = len(work)
    if n and work.min() == work.max():  # uniform: all n CTAs stream side by side to the end
        t_end = (work[0] - 0.0) / bw.per_cta(n)
        return np.zeros(n), np.full(n, t_end), np.array([0.0, t_end]), np.array([0.0, work[0]])
    ordered = np.sort(work)
    new_level = np.empty(n, dtype=bool)  # ordered[i] starts a new byte level
    new_level[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new_level[1:])
    first = np.flatnonzero(new_level)
    levels, streaming = ordered[first], n - first  # CTAs streaming before each level
    trace_w = np.concatenate(([0.0], levels))
    trace_t = np.concatenate(([0.0], np.cumsum((trace_w[1:] - trace_w[:-1]) / bw.per_cta(streaming))))
    return np.zeros(n), trace_t[1:][np.searchsorted(levels, work)], trace_t, trace_w


def _waves(work: np.ndarray, fixed: np.ndarray, slots: int, bw: cost.BandwidthModel, fast_slots: int):
    """More CTAs than slots: dispatch cohorts in launch order as slots free up.

    A cohort is every CTA dispatched at one instant with the same bytes and fixed time, whether or not
    they are neighbours in launch order (a split-KV grid alternates a long and a short split): they
    stream and release their slots together, so one event serves them all, and their slots return in
    launch order, as one event per run of neighbours would return them. The event loop runs on Python
    floats and lists (the same IEEE operations in the same order as array scalars, several times
    faster); per-CTA arrays are filled from the runs dispatched at the end."""
    n = len(work)
    changes = np.flatnonzero((work[1:] != work[:-1]) | (fixed[1:] != fixed[:-1])) + 1
    if len(changes) == 0:
        return _uniform_waves(n, work[0], fixed[0], slots, bw, fast_slots)
    run_ends = np.concatenate((changes, [n])).tolist()  # end of each run of equal (work, fixed)
    work_of, fixed_of = work.tolist(), fixed.tolist()
    free = list(range(slots - 1, -1, -1))  # a stack (top = end); slot ids are reused LIFO
    sizes, t_starts, w_starts, stream_ends, tail_us, cohort_slots = [], [], [], [], [], []  # per cohort
    piece_sizes, piece_cohorts, piece_slots = [], [], []  # per run (or part of one) dispatched, CTA order
    opened = {}  # (bytes, fixed) -> the cohort opened at this instant (before the next event)
    streaming, tails = [], []  # heaps: (W at stream end, cohort) and (t release, cohort)
    push, pop, inf = heapq.heappush, heapq.heappop, math.inf  # bound once: the loop runs ~10^3 times a launch
    t = w = 0.0
    n_streaming, next_cta, run = 0, 0, 0
    trace_t, trace_w = [0.0], [0.0]
    rate_at = _rate_at(bw, slots)
    rates = {}  # per-CTA rate by streaming count: waves repeat the same few counts
    while next_cta < n or streaming or tails:
        while free and next_cta < n:  # dispatch the next run (or as much of it as slots allow)
            while run_ends[run] <= next_cta:
                run += 1
            size = min(run_ends[run], next_cta + len(free)) - next_cta
            taken = free[-size:][::-1]
            del free[-size:]
            cohort = opened.get((work_of[next_cta], fixed_of[next_cta]))
            if cohort is None:
                cohort = opened[work_of[next_cta], fixed_of[next_cta]] = len(sizes)
                push(streaming, (w + work_of[next_cta], cohort))
                sizes.append(0), t_starts.append(t), w_starts.append(w), stream_ends.append(0.0)
                tail_us.append(fixed_of[next_cta]), cohort_slots.append([])
            sizes[cohort] += size
            cohort_slots[cohort] += taken
            piece_sizes.append(size), piece_cohorts.append(cohort), piece_slots.append(taken)
            n_streaming += size
            next_cta += size
        opened.clear()
        rate = rates.get(n_streaming)
        if rate is None:
            rate = rates[n_streaming] = rate_at(n_streaming)
        t_stream = t + (streaming[0][0] - w) / rate if streaming else inf
        if not tails or t_stream <= tails[0][0]:
            w_end, cohort = pop(streaming)
            t, w = t_stream, w_end
            stream_ends[cohort] = t
            n_streaming -= sizes[cohort]
            push(tails, (t + tail_us[cohort], cohort))
        else:
            t_tail, cohort = pop(tails)
            w += rate * (t_tail - t) if n_streaming else 0.0
            t = t_tail
            free.extend(cohort_slots[cohort][::-1])
        trace_t.append(t)
        trace_w.append(w)
    start, w_start, stream_end = (np.repeat(np.asarray(v, np.float64)[piece_cohorts], piece_sizes)
                                  for v in (t_starts, w_starts, stream_ends))
    slot = np.fromiter(itertools.chain.from_iterable(piece_slots), np.int64, n)
    return start, stream_end, w_start, slot, np.asarray(trace_t), np.asarray(trace_w)


def _rate_at(bw: cost.BandwidthModel, slots: int):
    """rate(n) -> bytes/µs of each of n CTAs streaming past one wave: the chip's share, or under a per-SM limit
    that of CTAs packed slots / SMs to an SM (sm_wave.packed_rate)."""
    if bw.sm_stream_rate == math.inf:
        return bw.per_cta_at
    return packed_rate(bw, max(1, slots // bw.sm_count))


FAST_SM_LEAD = 0.23  # of a wave: how much sooner the fast SMs free their slots, each wave (H100 traces: 0.22-0.28)


def _tail_rate(tail: int, full: int, slots: int, fast_slots: int, rate: float, wave_rate: float) -> float:
    """Bytes/µs of each CTA of a uniform launch's last partial wave (`tail` CTAs behind `full` full waves), as the
    engine's one clock counts it from the full waves' end: `rate` as it streams (packed), unless it starts ahead on
    the fast SMs' slots (`fast_slots`: GpuSpec.fast_sms x CTAs an SM), which the block scheduler refills first. They
    free FAST_SM_LEAD of a wave sooner each wave (`wave_rate`: a full wave's per-CTA rate), so:
    - behind one full wave, a tail that fits them starts that much before the wave ends (its stream time less the
      lead, but never less than its bytes' share of a full wave's time);
    - behind w >= 2, each fast slot is about one tail CTA ahead per wave past the first (a tail CTA packed three to
      an SM takes ~0.44 of a wave): a tail of at most fast slots x (w - 1) CTAs ends with the full waves, costing
      only its bytes at their aggregate.
    Measured at fixed bytes (results/h100/fa2_grid_tails.csv, 396 slots, 72 fast): 2 waves + 8 / 32 / 72 CTAs end with
    2 waves, + 104 pay a whole packed tail (docs/validation.md, "Wave drift")."""
    share = wave_rate * slots / tail  # its bytes at the full waves' aggregate
    if fast_slots and full >= 2 and tail <= fast_slots * (full - 1):
        return share
    if fast_slots and full == 1 and tail <= fast_slots:
        return 1.0 / max(1.0 / rate - FAST_SM_LEAD / wave_rate, 1.0 / share)  # per byte: its time less the lead
    return rate


def _uniform_waves(n: int, work, fixed, slots: int, bw: cost.BandwidthModel, fast_slots: int):
    """_waves when every CTA has the same bytes and fixed time: each wave is one cohort of `slots`
    CTAs (the last one smaller) that streams alone, so the event loop reduces to one step per wave,
    with the same float operations in the same order. Slots are reused LIFO: wave CTA i runs on slot i."""
    sizes = [slots] * (n // slots) + ([n % slots] if n % slots else [])
    t = w = 0.0
    wave_t, wave_w, wave_end = [], [], []  # per wave: start time, W at start, stream end time
    trace_t, trace_w = [0.0], [0.0]
    rate_at, rates = _rate_at(bw, slots), {}
    for size in sizes:
        rate = rates.get(size)
        if rate is None:
            rate = rates[size] = rate_at(size)
        if size < slots:
            rate = _tail_rate(size, n // slots, slots, fast_slots, rate, rates[slots])
        wave_t.append(t)
        wave_w.append(w)
        w_end = w + work
        t = t + (w_end - w) / rate
        w = w_end
        wave_end.append(t)
        t = t + fixed  # the cohort releases its slots; nothing streams meanwhile, so W holds
        trace_t += [wave_end[-1], t]
        trace_w += [w, w]
    start, w_start = np.repeat(wave_t, sizes), np.repeat(wave_w, sizes)
    stream_end = np.repeat(wave_end, sizes)
    slot = np.arange(n) % slots
    return start, stream_end, w_start, slot, np.asarray(trace_t), np.asarray(trace_w)


def _host_ready(schedule: Schedule, stream_end, clock) -> np.ndarray:
    """When each CTA may start its fixed tail: hosts wait for every peer's partial to be published."""
    red = schedule.reductions
    hosts = red.host_cta >= 0
    if not hosts.any():
        return stream_end
    peer_t = clock.time_at(red.peer_cta, red.peer_done_bytes)  # publication times
    n_peers = red.peer_offsets[1:] - red.peer_offsets[:-1]
    if n_peers.min() > 0:  # every row has peers: reduce each row's contiguous run
        latest = np.maximum.reduceat(peer_t, red.peer_offsets[:-1])
    else:
        latest = np.full(len(red), -np.inf)
        np.maximum.at(latest, np.repeat(np.arange(len(red)), n_peers), peer_t)
    ready = stream_end.copy()
    np.maximum.at(ready, red.host_cta[hosts], latest[hosts])
    return ready
