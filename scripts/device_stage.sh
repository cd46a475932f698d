#!/usr/bin/env bash
# One device call = one or more stages; every output goes under $OUT (see the device README's limits:
# at most 8 files come back). Usage on the device machine, from the repository root:
#   bash scripts/device_stage.sh STAGE [STAGE ...]
# Stages: info compile gputests cudnn cudnn_thresholds calibrate calibrate_fit quick accounting bench_standard
#         validate_fresh validate_quick (after calibrate_fit / quick: MAPE per strategy on the standard sweep)
#         calsel_plan calsel_full calsel_small calsel_timer (issue 21 item 1: budgeted calibration)
#         bench_auto bench_vs_sdpa cal_search oracle invariant_gputests invariant (issue 20: batch-invariant auto)
#         oracle_tuned (issue 20: the oracle study with auto:tune=3, on the GPU that came)
#         bench_now (the standard sweep on today's kernels, on the GPU that came; resumable)
#         cal_chunks (issue 20: the invariant planner's chunk plans on the cal-chunks sweep, on the GPU that came)
#         bench_vs_sdpa_tuned (issue 19: bench_vs_sdpa with auto:tune=3 beside auto; on the GPU that came, resumable)
#         serving_gputests bench_paged bench_fp8 bench_qlen bench_cal_serving cal_serving_small (issue 13, docs/serving.md)
#         bench_cal_fp8 (issue 18: the serving fit's long fp8 streams; any GPU) serving_auto (auto re-timed on the
#         serving sweeps of whichever GPU came)
#         land_gputests (the landing tree's GPU cases, before its serving sweeps are re-timed: docs/kernels.md)
#         splitkv_v3 streamk_last fa2_wave (issue 19: the pipelined merge vs v2's; stream-K's last-arrival epilogue vs
#         the tree; fa2's 1024-CTA slowdown) fa2_grid (issue 21: fa2's time by grid at fixed bytes, the wave structure)
#         fa2_tails (the wave drift: small tails behind 1-5 full waves at fixed bytes, on whichever GPU came)
#         rows64 (query tiles of 17-32 rows padded to 64?)
#         serving_cases serving_fp8 serving_paged serving_paged_fp8 serving_fp8_shapes serving_paged_warps serving_paged_fp8_warps fp8_streamk_w4 (issue 18: the fp8 / paged tile loop)
#         paged_ab paged_fp8_ab (issue 18: branch pagedsub's one index per page vs this tree, extracted under abnew/)
#         merge_ab (issue 20: branch mergeflat's merge pipelined across row groups vs this tree, extracted under abmerge/)
#         fdcombine_ab (issue 18: branch fdcombine's combine over 16-row blocks vs this tree, extracted under abfd/)
#         fp8loop_ab fp8loop_cal (issue 18: branch fp8loop's unmasked fp8 tile loop vs this tree, extracted under abfp8/)
#         fp8_three_per_sm (issue 18: fp8 at three CTAs per SM, 2 stages)
#         ffma_ab (issue 18: branch qffma, the fp8 score scale in the exponent, under abffma/)
#         ws_ab (issue 18: branch warpsplit, fp8 tiles cut into one part a warp, under abws/)
#         fp8_trees_land (issue 18: this tree, qffma and warpsplit on the fp8 sweep, the serving sweeps in the winner)
#         ws16_ab (branch warpsplit16, the per-warp parts on 16-bit caches too, under abws16/: the standard sweep)
#         lsum_ab lsum_land lsum_land_solo land_refit_auto (issue 18: branch lsum-land's tiles.py, the fp8 row sums reduced once a
#         segment and fp8pf's first-tile prefetch, under abls/: docs/kernels.md, "Ready to land"; land_refit_auto: the
#         next call, in the merged tree, on the machine lsum_land left warm)
#         pf_ab pf_lsum_ab cta_trace (issue 18: branch fp8pf; the engine's tail, where a launch's CTAs run)
#         head_dim_pad pad_tiles masked_read (head dims that are not powers of two; 160-224's KV tile, on whichever GPU came)
#         kernel_trace floor_check (issue 20: our attention launches traced CTA by CTA; the floor model against this
#         node's pure reads; on whichever GPU came)
#         fp8_probe (issue 18: the fp8 loop's time by ablation, loads / conversions / dots / softmax; any GPU)
#         fp8min_ab fp8min_land (issue 18: branch fp8min, the unmasked loop only past 16 whole tiles, under abfp8min/;
#         _land: then bench_fp8 and bench_cal_serving in the tree that won)
#         (read any *_ab pair here with scripts/tree_ab.py A.csv B.csv --by COLUMN)
#         mla_gputests bench_mla bench_cal_mla mla_grids bench_mla_auto (issue 23, docs/mla.md: after compile; the benches resume)
# The K/V-head kernels as shipped were timed on the H200 (2026-12-05 10:04-10:19 UTC), the MLA kernels and the
# oracle study 12:30-12:45 UTC, when `compile` recorded the resources table on the device. Each stage fits one
# call (<= 10 min); a machine's start can take minutes of the budget.
set -uo pipefail
export PYTHONPATH=. PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
stage() {
  local t0=$SECONDS
  echo "=== stage $1 ($(date +%T))"
  "stage_$1"
  echo "=== stage $1 done in $((SECONDS - t0)) s (exit $?)"
}
stage_info() {
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.total --format=csv
  python3 -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.get_device_name(), torch.backends.cudnn.version())"
}
stage_compile() {  # the device's table, installed for the later stages of this call
  python3 scripts/compile_table.py --out "$OUT/kernels_sm90.json" && cp "$OUT/kernels_sm90.json" attnsim/profiles/kernels_sm90.json
}
stage_gputests() {
  timeout 420 python3 -m pytest -q -x -p no:cacheprovider tests/kernels/test_kernels_gpu.py \
    tests/kernels/test_kernels_new_plans.py tests/kernels/test_kernels_decode.py 2>&1 | tee "$OUT/gputests.log" | tail -15
}
stage_cudnn() { python3 scripts/cudnn_geometry.py --out "$OUT/cudnn" --budget-s 40 | tail -60; }
stage_calibrate() { python3 -m attnsim calibrate --gpu h200 --measure-only --out "$OUT/h200.json"; }
stage_accounting() { python3 scripts/small_call_accounting.py --out "$OUT/acct" | tail -100; }
stage_calibrate_fit() {  # measure + fit here (16 cores), and plan the later stages with the new profile
  python3 -m attnsim calibrate --gpu h200 --out "$OUT/h200.json" && cp "$OUT/h200.json" attnsim/profiles/h200.json
}
stage_calsel_plan() { python3 -m attnsim calibrate --gpu h200 --plan-only --out "$OUT/cal180.json"; }
stage_calsel_full() {  # issue 21 item 1: the budgeted calibration as a user runs it (wall time = GPU + fit)
  local t0=$SECONDS
  # the measurements are written (cal180.data.json) before the fit: if the fit outlasts the call, refit
  # on a CPU with --from-data
  timeout 560 python3 -m attnsim calibrate --gpu h200 --budget 180 --out "$OUT/cal180.json" \
    2> >(tr '\r' '\n' | tail -40 >&2)
  echo "calibrate --budget 180 wall time: $((SECONDS - t0)) s"
}
stage_calsel_small() {  # a 30 s budget, measured only (refit on a CPU: calibrate --from-data)
  local t0=$SECONDS
  python3 -m attnsim calibrate --gpu h200 --budget 30 --measure-only --out "$OUT/cal30.json" \
    2> >(tr '\r' '\n' | tail -20 >&2)
  echo "calibrate --budget 30 --measure-only wall time: $((SECONDS - t0)) s"
}
stage_calsel_timer() {  # the per-point timer against the standard one (validation/point_cost.py)
  python3 scripts/calibration_timer_check.py --data "$OUT/cal30.data.json" --points 60 --out "$OUT/timer_check.csv"
}
stage_quick() {
  local t0=$SECONDS
  python3 -m attnsim calibrate --quick --gpu h200 --out "$OUT/h200_quick.json"
  echo "quick calibration wall time: $((SECONDS - t0)) s"
}
stage_validate_fresh() {  # calibrate_fit's profile scored on the committed standard sweep (none of its points fitted)
  python3 -m attnsim validate --gpu h200 --calibration "$OUT/h200.json" --measurements results/h200/bench.csv | tail -30
}
stage_validate_quick() {  # quick's profile, the same way
  python3 -m attnsim validate --gpu h200 --calibration "$OUT/h200_quick.json" --measurements results/h200/bench.csv | tail -30
}
stage_bench_auto() {  # the planner's choice on the standard sweep, appended to the committed sweep
  cp results/h200/bench.csv "$OUT/bench.csv"
  python3 -m attnsim bench --gpu h200 --resume --out "$OUT/bench.csv" --strategies auto 2>&1 | tail -12
}
gpu_key() {  # h200 or h100: the card that came (a call for the H200 may land on an H100), its results/ folder
  if nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200; then echo h200; else echo h100; fi
}
need_h200() {  # a stage that completes H200 results must not run on an H100
  [ "$(gpu_key)" = h200 ] || { echo "not an H200: stage skipped"; return 1; }
}
sweep_less() {  # $1: a committed sweep -> $OUT/$2 without the rows whose requested spec is one of $3 (comma list):
  # bench --resume re-times them
  python3 -c "import pandas as pd; d = pd.read_csv('$1', dtype=str, keep_default_na=False); \
d[~d['requested'].isin('$3'.split(','))].to_csv('$OUT/$2', index=False)"
}
sweep_less_auto_sdpa() { sweep_less "$1" bench.csv auto,torch-flash,torch-cudnn; }  # $1 -> $OUT/bench.csv
stage_bench_vs_sdpa() {  # issue 19's comparison in one session: `auto` (the profile as shipped) and both SDPA
  # backends re-timed on the standard sweep (the committed sweep less their rows, then --resume adds them)
  need_h200 || return 1
  sweep_less_auto_sdpa results/h200/bench.csv
  timeout 520 python3 -m attnsim bench --gpu h200 --resume --out "$OUT/bench.csv" \
    --strategies auto,torch-flash,torch-cudnn 2>&1 | tail -12
}
stage_bench_vs_sdpa_tuned() {  # bench_vs_sdpa with auto:tune=3 timed too (issue 19's table for the tuned planner,
  # bench/tune.py), on whichever GPU came (its profile; the H100's table is results/h100/bench_vs_sdpa_tuned.csv);
  # resumes from results/<gpu>/bench_tuned_partial.csv when an earlier call's CSV was put there
  local g base
  g=$(gpu_key)
  base=results/h100/bench_vs_sdpa.csv; [ "$g" = h200 ] && base=results/h200/bench.csv
  if [ -f "results/$g/bench_tuned_partial.csv" ]; then cp "results/$g/bench_tuned_partial.csv" "$OUT/bench.csv"
  else sweep_less_auto_sdpa "$base"; fi
  echo "bench_vs_sdpa_tuned on $g"
  timeout "${BENCH_TIMEOUT:-540}" python3 -m attnsim bench --gpu "$g" --resume --out "$OUT/bench.csv" \
    --strategies auto,auto:tune=3,torch-flash,torch-cudnn 2>&1 | tail -12
}
stage_cudnn_thresholds() {
  python3 scripts/cudnn_geometry.py --thresholds --time --out "$OUT/cudnn_thr" | tail -15
}
stage_cal_search() {  # issue 20: the planner's search axes where the oracle misses (scripts/cal_search_study.py, ~2-3 min)
  timeout 400 python3 scripts/cal_search_study.py --out "$OUT/cal_search.csv" 2>&1 | tail -8
}
stage_oracle() {  # the planner's oracle study (scripts/oracle_study.py; about 4 minutes)
  timeout 560 python3 scripts/oracle_study.py --out "$OUT/planner_oracle.csv" 2>&1 | tail -15
}
stage_oracle_tuned() {  # the oracle study with auto:tune=3 timed beside auto (bench/tune.py), on whichever GPU came
  # (its shipped profile); resumes from results/<gpu>/planner_oracle_partial.csv when an earlier call's CSV was put there
  local g
  g=$(gpu_key)
  [ -f "results/$g/planner_oracle_partial.csv" ] && cp "results/$g/planner_oracle_partial.csv" "$OUT/planner_oracle.csv"
  echo "oracle study on $g"
  timeout "${ORACLE_TIMEOUT:-560}" python3 scripts/oracle_study.py --gpu "$g" --resume --out "$OUT/planner_oracle.csv" 2>&1 | tail -15
}
stage_cal_chunks() {  # issue 20: the invariant planner's fixed chunk plans on the cal-chunks sweep, on whichever
  # GPU came (scripts/cal_chunks_study.py, ~600 rows); resumes from results/<gpu>/cal_chunks.csv
  local g
  g=$(gpu_key)
  [ -f "results/$g/cal_chunks.csv" ] && cp "results/$g/cal_chunks.csv" "$OUT/cal_chunks.csv"
  echo "cal-chunks study on $g"
  timeout "${CHUNKS_TIMEOUT:-540}" python3 scripts/cal_chunks_study.py --gpu "$g" --resume --out "$OUT/cal_chunks.csv" 2>&1 | tail -8
}
stage_invariant_gputests() {  # a sequence alone vs in other batches, bitwise, every invariant plan (~1 min)
  timeout 240 python3 -m pytest -q -x -p no:cacheprovider tests/kernels/test_kernels_invariant.py 2>&1 \
    | tee "$OUT/invariant_gputests.log" | tail -8
}
stage_invariant() {  # batch-invariant auto vs auto on the oracle workloads (scripts/invariant_study.py:
  # ~642 rows; planning ~2-3 min of CPU, then timing). Replay it on the CPU afterwards (invariant_replay.py).
  # Resumes from results/h200/invariant_oracle.csv when an earlier call's CSV was copied there.
  [ -f results/h200/invariant_oracle.csv ] && cp results/h200/invariant_oracle.csv "$OUT/invariant_oracle.csv"
  timeout 540 python3 scripts/invariant_study.py --resume --out "$OUT/invariant_oracle.csv" 2>&1 | tail -8
}
stage_bench_standard() {
  python3 -m attnsim bench --gpu h200 --calibration none --out "$OUT/bench.csv" \
    --strategies fa2,flashdecoding,streamk,torch-flash,torch-cudnn 2>&1 | tail -25
}
stage_bench_now() {  # the standard sweep re-timed on today's kernels, our three, auto and SDPA, on whichever GPU came
  # (its shipped profile plans auto); resumes from results/<gpu>/bench_partial.csv
  local g
  g=$(gpu_key)
  [ -f "results/$g/bench_partial.csv" ] && cp "results/$g/bench_partial.csv" "$OUT/bench.csv"
  timeout "${BENCH_TIMEOUT:-560}" python3 -m attnsim bench --gpu "$g" --resume --out "$OUT/bench.csv" \
    --strategies fa2,flashdecoding,streamk,torch-flash,torch-cudnn,auto 2>&1 | tail -25
}
stage_land_gputests() {  # the GPU cases of every kernel the landing branches touched (paged tiles, the merge,
  # FD's combine), the merged tree at once (~2.5 min on an H100): run before its sweeps are re-timed
  timeout 300 python3 -m pytest -q -x -p no:cacheprovider -m gpu tests/kernels/test_kernels_gpu.py \
    tests/kernels/test_kernels_decode.py tests/kernels/test_kernels_serving_gpu.py \
    tests/kernels/test_kernels_invariant.py 2>&1 | tee "$OUT/land_gputests.log" | tail -6
}
stage_serving_cases() {  # the serving kernels' CPU cases (paged / fp8 / verify, small shapes) run on the GPU (~1 min)
  timeout 240 python3 -m pytest -q -x -p no:cacheprovider tests/kernels/test_kernels_serving.py 2>&1 \
    | tee "$OUT/serving_cases.log" | tail -6
}
stage_serving_gputests() {  # paged / fp8 / verify kernels at small and real sizes vs the float64 reference
  timeout 480 python3 -m pytest -q -x -p no:cacheprovider tests/kernels/test_kernels_serving.py \
    tests/kernels/test_kernels_serving_gpu.py 2>&1 | tee "$OUT/serving_gputests.log" | tail -15
}
serving_sweep() {  # $1: sweep name, $2: CSV name, $3: extra specs, then more bench flags; our three kernels and
  # auto, every output checked, on $GPU's profile (default h200)
  timeout 280 python3 -m attnsim bench --gpu "${GPU:-h200}" --sweep "$1" \
    --strategies fa2,flashdecoding,streamk,auto${3:-} --out "$OUT/$2" "${@:4}" 2>&1 | tail -8
}
stage_bench_paged() { serving_sweep paged bench_paged.csv; }
# stream-K at 8 warps beside the 4-warp fp8 default: the bridge to results/h200/fp8_streamk_warps.csv
stage_bench_fp8() { serving_sweep fp8 bench_fp8.csv ,streamk:num_warps=8; }
stage_bench_qlen() { serving_sweep qlen bench_qlen.csv; }
stage_bench_cal_serving() { serving_sweep cal-serving cal_serving.csv; }
serving_auto_sweep() {  # $1: GPU key, $2: sweep name, $3: CSV name: the committed sweep of that GPU less its auto
  # rows, auto re-timed
  sweep_less "results/$1/$3" "$3" auto
  timeout 150 python3 -m attnsim bench --gpu "$1" --sweep "$2" --strategies auto --resume --out "$OUT/$3" 2>&1 | tail -3
}
stage_serving_auto() {  # issue 18: `auto` re-planned (today's profile) and re-timed on the four serving sweeps of
  # whichever GPU came, the other rows kept (their kernels are unchanged since the fp8 loop landed); an H200's CSVs
  # are what scripts/land3_refit.sh reads
  local g
  g=$(gpu_key)
  serving_auto_sweep "$g" fp8 bench_fp8.csv; serving_auto_sweep "$g" paged bench_paged.csv
  serving_auto_sweep "$g" qlen bench_qlen.csv; serving_auto_sweep "$g" cal-serving cal_serving.csv
}
# issue 18: long fp8 streams for the serving fit (bench/sweep.py cal-fp8), split-KV's default grid (<= 1 CTA/SM) too,
# on whichever GPU came (its profile); scripts/land3_refit.sh installs only an H200's
stage_bench_cal_fp8() { GPU=$(gpu_key) serving_sweep cal-fp8 cal_fp8.csv ,splitkv; }
stage_cal_serving_small() {  # the sweep's small calls added after its grid (bench/sweep.py cal_serving_small): the
  # committed rows are kept (bench --resume), only the new points are timed (~40 s)
  cp results/h200/cal_serving.csv "$OUT/cal_serving.csv"
  serving_sweep cal-serving cal_serving.csv "" --resume
}
# issue 23 (docs/mla.md, "The device session"): run `compile` first (it replaces the cross-compiled /r512
# entries); bench --estimate says ~1 min a sweep, rough: the timeout keeps each stage inside one call
mla_resume() {  # $1: CSV name; an earlier call's rows (copied to results/h200/) are kept and skipped (bench --resume)
  [ -f "results/h200/$1" ] && cp "results/h200/$1" "$OUT/$1"
}
stage_mla_gputests() {  # the MLA kernels on the GPU vs float64 (small cases, then full 512 + 64 shapes)
  timeout 300 python3 -m pytest -q -x -p no:cacheprovider tests/kernels/test_kernels_mla.py \
    tests/kernels/test_kernels_mla_gpu.py 2>&1 | tee "$OUT/mla_gputests.log" | tail -8
}
stage_bench_mla() {  # the MLA sweep (56 points) and the uncalibrated model's error on it
  mla_resume bench_mla.csv
  timeout "${MLA_TIMEOUT:-500}" python3 -m attnsim bench --gpu h200 --sweep mla --resume \
    --strategies fa2,flashdecoding,streamk,balanced,hybrid,flashmla,auto --out "$OUT/bench_mla.csv" 2>&1 | tail -8
  timeout 60 python3 -m attnsim validate --gpu h200 --measurements "$OUT/bench_mla.csv" --rows mla 2>&1 | tail -30
}
stage_mla_grids() {  # stream-K's MLA kernel at grids 8 / 33 on the cal-mla points: a held-out check of fit.MLA_TIES
  # (its per-CTA caps are fa2-mla's; at grid 132 the chip's share hides them), none of them fitted
  timeout 240 python3 -m attnsim bench --gpu h200 --sweep cal-mla --strategies streamk:grid=8,streamk:grid=33 \
    --out "$OUT/mla_grids.csv" 2>&1 | tail -4
}
stage_bench_mla_auto() {  # `auto` alone on the mla sweep, planned with the shipped (fitted) profile: replaces its rows
  timeout 300 python3 -m attnsim bench --gpu h200 --sweep mla --strategies auto --out "$OUT/bench_mla_auto.csv" 2>&1 | tail -8
}
stage_bench_cal_mla() {  # the MLA families' calibration points (56, none in `mla`): calibrate --add-points on a CPU
  mla_resume cal_mla.csv
  timeout "${MLA_TIMEOUT:-540}" python3 -m attnsim bench --gpu h200 --sweep cal-mla --resume \
    --strategies fa2,flashdecoding,streamk,balanced,flashmla --out "$OUT/cal_mla.csv" 2>&1 | tail -8
}
stage_splitkv_v3() {  # v3 vs v2merge in one run, split counts x1/4..x4 (scripts/splitkv_device.py; ~6 min)
  timeout 560 python3 scripts/splitkv_device.py --stage 3 --out "$OUT" 2>&1 | tail -40
}
stage_fa2_wave() {  # fa2 at 1024 CTAs slower on 12-05 than 12-03: the floor buffer or drift? (~2 min)
  timeout 400 python3 scripts/fa2_wave_ab.py --out "$OUT" 2>&1 | tail -30
}
stage_fa2_grid() {  # fa2 at grids 128-4096, fixed bytes (1 and 4 GiB d 128, 1 GiB d 64): where the waves cost (~3 min)
  timeout 500 python3 scripts/fa2_grid_study.py --out "$OUT" 2>&1 | tail -70
}
stage_fa2_tails() {  # the wave drift (engine._tail_rate): tails of 4-220 CTAs behind 1-5 full waves at fixed bytes, on
  # whichever GPU came (~30 s); results/h100/fa2_grid_tails.csv is the H100's, the model's fast_sms = 24 its traces'
  FA2_GRIDS="392 400 424 512 600 792 800 824 864 896 1024 1184 1200 1232 1280 1336 1584 1600 1656 1752 2048 2104 \
2200 4096" FA2_SIZES="128:1073741824 64:1073741824" timeout 300 python3 scripts/fa2_grid_study.py --out "$OUT" 2>&1 | tail -5
}
stage_rows64() {  # 17-32 query rows as 32-row mma.sync tiles vs padded to 64 (warpgroup mma), every kernel (~2 min)
  timeout 300 python3 scripts/rows64_ab.py --out "$OUT" 2>&1 | tail -45
}
stage_streamk_last() {  # tree vs last, uniform then ragged, then 100 graph replays (scripts/streamk_last_ab.py)
  for s in 1 2 3; do timeout 280 python3 scripts/streamk_last_ab.py --stage $s --out "$OUT" 2>&1 | tail -20 || break; done
}
serving_kernels() {  # $1: stage of scripts/serving_kernels_device.py (fp8 vs bf16 twins, paged vs contiguous)
  timeout 560 python3 scripts/serving_kernels_device.py --stage "$1" --out "$OUT" --previous results/h200 \
    --budget-s "${SK_BUDGET:-480}" 2>&1 | tail -30
}
stage_fp8_streamk_w4() {  # stream-K on an fp8 cache at 4 warps (the default since 2026-12-05) against 8, plus auto
  # on the fp8 sweep, and the cal-serving sweep's stream-K rows re-timed at the new default (for serving_fit)
  python3 -m attnsim bench --gpu h200 --sweep fp8 --strategies streamk,streamk:num_warps=8,auto \
    --out "$OUT/bench_fp8_w4.csv" 2>&1 | tail -6
  python3 -m attnsim bench --gpu h200 --sweep cal-serving --strategies streamk --out "$OUT/cal_serving_streamk.csv" 2>&1 | tail -4
}
stage_serving_fp8() { serving_kernels fp8; }
stage_serving_paged() { serving_kernels paged; }
stage_serving_paged_fp8() { serving_kernels paged-fp8; }
stage_serving_fp8_shapes() { serving_kernels fp8-shapes; }
stage_serving_paged_warps() { serving_kernels paged-warps; }
stage_serving_paged_fp8_warps() { serving_kernels paged-fp8-warps; }
ab_trees() {  # $1: a branch's tree extracted beside this one, or several, space-separated (untracked; remove after):
  #   mkdir DIR && git archive BRANCH attnsim scripts | tar -x -C DIR
  # the rest: a command run from the repository root once for this tree, then once for each branch, with AB_TREE
  # (main or DIR: output names) and AB_DIR (. or DIR) set, so that every side times the same points in one call
  local branches=$1 branch; shift
  for branch in $branches; do
    [ -d "$branch/attnsim" ] || { echo "$branch/attnsim missing: extract the branch there first"; return 1; }
  done
  for AB_TREE in main $branches; do
    AB_DIR=.; [ "$AB_TREE" = main ] || AB_DIR=$AB_TREE
    "$@"
  done
}
paged_tree() {  # $1: serving_kernels_device.py's paged or paged-fp8 stage, in AB_DIR's tree
  (cd "$AB_DIR" && timeout 280 python3 scripts/serving_kernels_device.py --stage "$1" --out "$OUT/${AB_TREE}_$1" \
    --budget-s "${SK_BUDGET:-240}" 2>&1 | tail -8)
}
# Issue 18 item 2: tiles of several pages loaded with one block-table index per page (branch pagedsub, under
# abnew/) against this tree's index per token row
stage_paged_ab() { ab_trees abnew paged_tree paged; }
stage_paged_fp8_ab() { ab_trees abnew paged_tree paged-fp8; }
merge_tree() {  # the qlen sweep's verify blocks (16-128 rows: 4-32 row groups) and their decode twins, split-KV and
  # stream-K's epilogue=last; then splitkv_device's small-call points (4 MB-1 GB, 1-2 merge steps), determinism too
  (cd "$AB_DIR" && timeout 280 python3 -m attnsim bench --gpu h200 --sweep qlen --strategies splitkv,streamk:epilogue=last \
    --out "$OUT/merge_ab_$AB_TREE.csv" 2>&1 | tail -3)
  mkdir -p "$OUT/merge_ab_$AB_TREE"
  PYTHONPATH="$AB_DIR" timeout 200 python3 scripts/splitkv_device.py --stage 5 --out "$OUT/merge_ab_$AB_TREE" 2>&1 | tail -14
}
# Issue 20: the last-arrival merge as one pipeline across row groups (branch mergeflat, under abmerge/)
stage_merge_ab() { ab_trees abmerge merge_tree; }
fdcombine_tree() {  # the qlen sweep (verify q-blocks of 16-128 rows and their decode twins), FlashDecoding and balanced
  (cd "$AB_DIR" && timeout 280 python3 -m attnsim bench --gpu h200 --sweep qlen --strategies flashdecoding,balanced \
    --out "$OUT/fdcombine_ab_$AB_TREE.csv" 2>&1 | tail -3)
}
# Issue 18: FlashDecoding's combine over 16-row blocks (branch fdcombine, under abfd/) against one CTA per q-block
stage_fdcombine_ab() { ab_trees abfd fdcombine_tree; }
# Issue 18: branch fp8loop's fp8 tile loop (full tiles unmasked, the tail masked; under abfp8/) against this tree
fp8loop_tree() {  # the fp8 sweep (fp8 points and their bf16 twins), our three kernels and auto
  (cd "$AB_DIR" && serving_sweep fp8 "fp8loop_$AB_TREE.csv")
}
stage_fp8loop_ab() { ab_trees abfp8 fp8loop_tree; }
stage_fp8min_ab() { ab_trees abfp8min fp8loop_tree; }  # branch fp8min (unmasked only past 16 whole tiles), under abfp8min/
stage_fp8min_land() {  # fp8min_ab, then the fp8 and cal-serving sweeps re-timed in the tree that won it (scripts/ab_pick.py:
  # fp8 rows' geomean, no loss at >= 256 MB), so that one call leaves what scripts/land3_refit.sh reads
  stage_fp8min_ab
  local tree=.
  python3 scripts/ab_pick.py "$OUT/fp8loop_main.csv" "$OUT/fp8loop_abfp8min.csv" --kv-dtype float8_e4m3fn \
    | tee "$OUT/fp8min_pick.txt" && tree=abfp8min
  echo "fp8 and cal-serving sweeps on: $tree"
  (cd "$tree" && stage_bench_fp8 && stage_bench_cal_serving)
}
# Issue 18: fp8 at three 4-warp CTAs per SM. FlashDecoding's fp8 kernel compiles to 168 registers; at 2 stages
# (74 KB of shared memory) three fit an SM, but kernels_serving_fp8-shapes.csv timed 2 stages only at grids of
# 224-264 (two a SM), where they lost. Balanced's LPT grid runs that kernel at any grid: 2 a SM at 3 stages, 2
# a SM at 2 stages, 3 a SM at 2 stages, with FlashDecoding as the anchor (the fp8 sweep and its bf16 twins, ~1 min)
stage_fp8_three_per_sm() {
  serving_sweep fp8 fp8_three_per_sm.csv ",balanced:grid=264,balanced:num_stages=2,grid=264,balanced:num_stages=2,grid=396"
}
stage_fp8loop_cal() {  # cal-serving on the branch's kernels (its fp8 rows are what the serving fit reads)
  (cd abfp8 && serving_sweep cal-serving cal_serving.csv)
}
fp8_sweep_in() {  # $1: a tree (this one, or a branch extracted beside it), $2: CSV name: the fp8 sweep run there
  # (our three kernels and auto, every output checked) on the GPU that came
  (cd "$1" && GPU=$(gpu_key) serving_sweep fp8 "$2")
}
fp8_ab_tree() { fp8_sweep_in "$AB_DIR" "${1}_$AB_TREE.csv"; }  # one side of ab_trees; $1: the CSVs' prefix
serving_fit_sweeps_in() {  # $1: the tree whose fp8 sweep won: on an H200, the other sweeps the serving fit reads
  # (scripts/land3_refit.sh) re-timed there (cal-fp8, cal-serving), and auto on paged and qlen (16-bit: no fp8 kernel)
  need_h200 || return 0
  cal_sweeps_in "$1"
  serving_auto_sweep h200 paged bench_paged.csv; serving_auto_sweep h200 qlen bench_qlen.csv
}
cal_sweeps_in() {  # $1: a tree: the serving fit's two fitting sweeps (cal-fp8, cal-serving) run there
  echo "cal-fp8, cal-serving sweeps on: $1"
  (cd "$1" && stage_bench_cal_fp8 && stage_bench_cal_serving)
}
# Issue 18: branch qffma (an fp8 cache's score scale applied in the softmax's exponent, one FFMA a score; extracted
# under abffma/), and branch warpsplit (a contiguous fp8 cache's tiles cut into four parts, one a warp, each its own
# online softmax, merged once a segment; under abws/), each against this tree on the fp8 sweep. Branch qreg (K moved
# into the mma layout as fp16 too) ran this way on an H100 and lost 11.5% (docs/kernels.md)
stage_ffma_ab() { ab_trees abffma fp8_ab_tree ffma; }
stage_ws_ab() { ab_trees abws fp8_ab_tree ws; }
# Issue 18, the three fp8 tile loops in one call: this tree, qffma and warpsplit on the fp8 sweep, then the serving
# fit's sweeps in the winner (warpsplit where it beats both, else qffma where it beats this tree, else this tree:
# scripts/ab_pick.py); 8 files back, ~6-7 min on an H200. The winner's fp8tree_*.csv is its bench_fp8.csv
stage_fp8_trees_land() {
  if [ ! -d abffma/attnsim ] || [ ! -d abws/attnsim ]; then
    echo "extract the branches first: mkdir abffma abws && git archive qffma attnsim scripts | tar -x -C abffma"
    echo "  && git archive warpsplit attnsim scripts | tar -x -C abws"
    return 1
  fi
  fp8_sweep_in . fp8tree_main.csv; fp8_sweep_in abffma fp8tree_qffma.csv; fp8_sweep_in abws fp8tree_warpsplit.csv
  local tree=. pick="python3 scripts/ab_pick.py --kv-dtype float8_e4m3fn" main="$OUT/fp8tree_main.csv"
  local qffma="$OUT/fp8tree_qffma.csv" warpsplit="$OUT/fp8tree_warpsplit.csv"
  if $pick "$main" "$warpsplit" && $pick "$qffma" "$warpsplit"; then tree=abws
  elif $pick "$main" "$qffma"; then tree=abffma; fi
  echo "winner: $tree" | tee "$OUT/fp8tree_pick.txt"
  serving_fit_sweeps_in "$tree"
}
# Issue 19 / 18: branch warpsplit16 (the per-warp parts for 16-bit caches too; under abws16/) against this tree on
# the standard sweep (FlashDecoding, split-KV, auto: ~2 min a tree on an H100), on whichever GPU came
ws16_tree() {
  (cd "$AB_DIR" && timeout 280 python3 -m attnsim bench --gpu "$(gpu_key)" --sweep standard \
    --strategies flashdecoding,splitkv,auto --out "$OUT/ws16_$AB_TREE.csv" 2>&1 | tail -6)
}
stage_ws16_ab() { ab_trees abws16 ws16_tree; }
# Issue 18: branch lsum (the fp8 whole tiles' row sums kept per score, reduced once a segment: 3 of 11 barriers
# and 30 of 601 instructions a FlashDecoding tile fewer; extracted under abls/) against this tree on the fp8 sweep,
# then, on an H200 and where it wins (scripts/ab_pick.py), the serving fit's sweeps re-timed in it (~5 min)
# lsum-land carries fp8pf too (merged 2026-12-07). The call's CSVs are also kept in out/lsum/ (ignored: a warm
# machine keeps it for the next call, land_refit_auto)
stage_lsum_land() {
  stage_lsum_ab || return 1
  python3 scripts/ab_pick.py "$OUT/lsum_main.csv" "$OUT/lsum_abls.csv" --kv-dtype float8_e4m3fn \
    | tee "$OUT/lsum_pick.txt" && { serving_fit_sweeps_in abls; keep_for_next_call out/lsum; return 0; }
  # lsum lost (or no pairs): this tree stays, and lsum_main.csv is its fp8 sweep on today's plans; on an H200 the
  # other sweeps' auto rows are re-timed on today's plans too (cal-fp8's kernels and plans are unchanged)
  need_h200 || return 0
  serving_auto_sweep h200 paged bench_paged.csv; serving_auto_sweep h200 qlen bench_qlen.csv
  serving_auto_sweep h200 cal-serving cal_serving.csv
}
stage_lsum_ab() { ab_trees abls fp8_ab_tree lsum; }
# lsum_land in less device time (a session whose budget cannot hold both sides of the A/B): abls's fp8 sweep only,
# read against the committed sweep of this GPU (another day's machine: ~1-2% of node spread, so the pick is a check,
# not the decision: two H100 A/Bs decided it), then, on an H200, cal-fp8 and cal-serving in abls (the fit's data;
# the committed paged and qlen sweeps stand: 16-bit kernels, lsum does not touch them); the CSVs stay in out/lsum/
stage_lsum_land_solo() {
  local committed=results/h200/bench_fp8.csv  # this tree's fp8 sweep on the GPU that came (H100: its A/B of 12-07)
  [ "$(gpu_key)" = h200 ] || committed=results/h100/ab_land_main.csv
  fp8_sweep_in abls lsum_abls.csv
  python3 scripts/ab_pick.py "$committed" "$OUT/lsum_abls.csv" --kv-dtype float8_e4m3fn | tee "$OUT/lsum_pick.txt"
  need_h200 || return 0
  cal_sweeps_in abls  # paged and qlen are 16-bit: their kernels do not change
  keep_for_next_call out/lsum && cp results/h200/bench_paged.csv results/h200/bench_qlen.csv out/lsum/  # for land_refit_auto
}
keep_for_next_call() { mkdir -p "$1" && cp "$OUT"/*.csv "$OUT"/*.txt "$1"/ 2>/dev/null; ls "$1"; }  # $1: an ignored dir
# The second call of a landing, on the machine lsum_land left warm (30 s), in the merged tree (locally first: git
# merge --ff-only lsum-land): the serving fit on lsum_land's sweeps (out/lsum/, the winner's fp8 sweep as
# bench_fp8.csv) here, the refitted profiles under $OUT/prof (the same fit as scripts/land3_refit.sh run locally on
# the call's files: compare before committing), then auto re-timed on the three held-out serving sweeps (~4 min)
stage_land_refit_auto() {
  need_h200 || return 1
  local d=out/lsum
  [ -f $d/lsum_abls.csv ] || { echo "$d: no lsum_land files here (a fresh machine?)"; return 1; }
  mkdir -p $d/in && cp $d/cal_fp8.csv $d/cal_serving.csv $d/bench_paged.csv $d/bench_qlen.csv $d/in/ \
    && cp $d/lsum_abls.csv $d/in/bench_fp8.csv || return 1
  PYTHON=python3 timeout 240 bash scripts/land3_refit.sh $d/in > "$OUT/refit.log" 2>&1 || { tail -20 "$OUT/refit.log"; return 1; }
  mkdir -p "$OUT/prof" && cp attnsim/profiles/h200.json attnsim/profiles/h100.json "$OUT/prof/"
  # the held-out sweeps only: cal-serving's auto rows are fitting data (the fit is of the plans that ran), so
  # re-timing them would move the fit and the plans again; these three leave the fit's inputs as they are
  serving_auto_sweep h200 fp8 bench_fp8.csv; serving_auto_sweep h200 paged bench_paged.csv
  serving_auto_sweep h200 qlen bench_qlen.csv
}
# Issue 18: branch fp8pf (an fp8 segment's first two tiles asked of L2 before q's conversion, which the first K/V
# loads wait behind; under abpf/: mkdir abpf && git archive HEAD attnsim scripts | tar -x -C abpf, then
# git show fp8pf:attnsim/kernels/tiles.py > abpf/attnsim/kernels/tiles.py), against this tree on the fp8 sweep
stage_pf_ab() { ab_trees abpf fp8_ab_tree pf; }
# this tree, abls/ (lsum) and abpf/ (fp8pf) on the fp8 sweep in one call: pfls_{main,abls,abpf}.csv
stage_pf_lsum_ab() { ab_trees "abls abpf" fp8_ab_tree pfls; }
# Issue 18: where the fp8 loop's time goes, by ablation (scripts/fp8_loop_probe.py: loads, + conversions, + dots,
# + softmax, on FlashDecoding's geometry, 512 MB; the 16-bit loop beside it), on whichever GPU came (~30 s)
stage_fp8_probe() { timeout 240 python3 scripts/fp8_loop_probe.py --out "$OUT/fp8_probe_$(gpu_key).csv"; }
# Issue 20 / the engine's tail (docs/validation.md, "Grids of 1-1.5 waves"): SM id, start and end of every CTA of a
# streaming read past one wave (scripts/cta_trace.py), on whichever GPU came (~20 s)
stage_cta_trace() { timeout 200 python3 scripts/cta_trace.py --out "$OUT/cta_trace_$(gpu_key)" | tail -40; }
# Issue 20 item 1 / the engine's waves and tails: our attention launches traced CTA by CTA (scripts/kernel_trace.py:
# fa2 across 1-2 waves, split-KV's small grids, the sweep's ragged d 64 batch), on whichever GPU came (~2-3 min)
stage_kernel_trace() { timeout 500 python3 scripts/kernel_trace.py --out "$OUT/kernel_trace_$(gpu_key)" | tail -40; }
# predictions' floor model (simulator/floor.py) against this node's pure reads of 0.5 MiB-4 GiB (~10 s)
stage_floor_check() { timeout 150 python3 scripts/floor_check.py --gpu "$(gpu_key)" | tee "$OUT/floor_check_$(gpu_key).txt"; }
# Head dims that are not powers of two (docs/kernels.md): d 96 / 160 against 128 / 256, every spec fp64-checked with
# its floor (~2 min); pad_tiles: d 160-224's 32-token KV tiles against 64-token ones (~1.5 min); on whichever GPU came
stage_head_dim_pad() { timeout 300 python3 scripts/head_dim_pad_check.py --out "$OUT" --name "head_dim_pad_$(gpu_key)" | tail -40; }
stage_pad_tiles() {
  timeout 300 python3 scripts/head_dim_pad_check.py --out "$OUT" --name "pad_tiles_$(gpu_key)" --pairs 160,192,224 \
    --specs auto,fa2,fa2:kv_tile_tokens=64,flashdecoding,flashdecoding:kv_tile_tokens=64,streamk,streamk:kv_tile_tokens=64 \
    | tail -40
}
# d 160's slowness without attention math: masked [32, W] tile reads vs flat reads vs the plain read (~1 min)
stage_masked_read() { timeout 280 python3 scripts/masked_read_probe.py --out "$OUT" | tail -25; }
for s in "$@"; do stage "$s"; done
