#!/usr/bin/env bash
# Issue 10's target on records that seisseg did not generate: the network (thresholds tuned on one
# or more records) against tuned STA/LTA (thresholds tuned on the same records), both scored on another.
#
# Two record pairs, each tuning records and a test record (different seeds):
#   foreign: benchmarks/foreign_record.py (other velocity model, wavelets, attenuation, noise and
#            unlabelled transients: see its header);
#   seisseg: seisseg synth --continuous, for comparison.
# For each pair and method: seisseg detect --tune-on TUNE --in test.h5, then seisseg evaluate
# --truth test.h5 --json. Prints one JSON line per (record, method) with event F1, precision, recall,
# false detections per hour, the share of P arrivals picked within 10 ms and the pick MAE, then one
# JSON line saying whether the target holds on the foreign records:
#   unet event F1 >= sta-lta event F1 + 0.10  and  unet P hit rate within 10 ms >= 0.60.
#
# Usage:
#   benchmarks/detect_foreign.sh --seisseg BIN [--weights W.safetensors] [--out DIR] [--duration S]
#       [--receivers W] [--snr-db LO:HI] [--events-per-minute R] [--tune-seed N[,N...]] [--test-seed N]
#       [--python PY] [--no-seisseg-pair]
# Without --weights, `seisseg demo --out DIR/demo --record-seconds 0` trains the demo's network and
# its DIR/demo/weights.safetensors is used (several minutes on a 2-core CPU).
# Defaults: --out foreign-bench, 120 s x 256 receivers, SNR -6:10 dB, 6 events per minute,
# seeds 101 (tune) and 202 (test), /usr/bin/python3 (numpy and h5py). Several tuning seeds (e.g.
# 101,111,121,131) make one tuning record each, and detect --tune-on scores them together.
# Every file (records, events/picks CSVs, evaluate JSON, logs) stays in DIR.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}
die() {
  echo "detect_foreign.sh: $*" >&2
  exit 2
}
fail() {
  echo "detect_foreign.sh: $*" >&2
  exit 1
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin=""
weights=""
out="foreign-bench"
duration=120
receivers=256
snr="-6:10"
rate=6
tune_seed=101
test_seed=202
py=/usr/bin/python3
seisseg_pair=1

need_value() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seisseg) need_value "$@"; bin="$2"; shift 2 ;;
    --weights) need_value "$@"; weights="$2"; shift 2 ;;
    --out) need_value "$@"; out="$2"; shift 2 ;;
    --duration) need_value "$@"; duration="$2"; shift 2 ;;
    --receivers) need_value "$@"; receivers="$2"; shift 2 ;;
    --snr-db) need_value "$@"; snr="$2"; shift 2 ;;
    --events-per-minute) need_value "$@"; rate="$2"; shift 2 ;;
    --tune-seed) need_value "$@"; tune_seed="$2"; shift 2 ;;
    --test-seed) need_value "$@"; test_seed="$2"; shift 2 ;;
    --python) need_value "$@"; py="$2"; shift 2 ;;
    --no-seisseg-pair) seisseg_pair=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

num='^[0-9]+([.][0-9]+)?$'
[[ -n "$bin" ]] || die "--seisseg BIN is required (the seisseg binary to test)"
[[ -f "$bin" && -x "$bin" ]] || die "--seisseg $bin: not an executable file"
[[ "$duration" =~ $num ]] || die "--duration $duration: expected a positive number of seconds"
[[ "$receivers" =~ ^[0-9]+$ && "$receivers" -ge 2 ]] || die "--receivers $receivers: expected an integer >= 2"
[[ "$snr" =~ ^-?[0-9]+([.][0-9]+)?:-?[0-9]+([.][0-9]+)?$ ]] || die "--snr-db $snr: expected LO:HI in dB, e.g. -6:10"
[[ "$rate" =~ $num ]] || die "--events-per-minute $rate: expected a number >= 0"
[[ "$tune_seed" =~ ^[0-9]+(,[0-9]+)*$ && "$test_seed" =~ ^[0-9]+$ ]] ||
  die "--tune-seed must be integers >= 0 (comma-separated) and --test-seed one integer >= 0"
IFS=, read -r -a tune_seeds <<<"$tune_seed"
for k in "${!tune_seeds[@]}"; do
  s=$((10#${tune_seeds[$k]}))  # 0202 is seed 202 to foreign_record.py
  [[ "$s" != "$((10#$test_seed))" ]] ||
    die "--tune-seed and --test-seed must differ (tuning on the test record is no test)"
  for t in "${tune_seeds[@]:0:$k}"; do
    [[ "$s" != "$t" ]] || die "--tune-seed $tune_seed: seed $s twice (its record would count double)"
  done
  tune_seeds[$k]=$s
done
[[ -z "$weights" || -f "$weights" ]] || die "--weights $weights: no such file"
"$py" -c "import numpy, h5py" 2>/dev/null || die "--python $py: needs numpy and h5py"
# The network's thresholds must be tuned too: a binary whose --tune-on is STA/LTA-only would run
# the network at its defaults against a tuned STA/LTA.
"$bin" detect --help | tr -s ' \n' ' ' | grep -q "unet: --threshold and --min-traces" ||
  fail "$bin: its detect --tune-on does not tune the network's --threshold and --min-traces (binary too old)"
if [[ ${#tune_seeds[@]} -gt 1 ]]; then
  "$bin" detect --help | tr -s ' \n' ' ' | grep -q "scored together" ||
    fail "$bin: its detect --tune-on takes one file, not the ${#tune_seeds[@]} of --tune-seed (binary too old)"
fi

mkdir -p "$out" || fail "cannot create $out"
out="$(cd "$out" && pwd)"
[[ ${#tune_seeds[@]} == 1 || "$out" != *,* ]] || die "--out $out: a comma in the folder would split --tune-on's list"
log="$out/log.txt"
: >"$log"
run() {  # run CMD...: logged, its output appended to the log; fails loudly
  echo "+ $*" >>"$log"
  "$@" >>"$log" 2>&1 || fail "failed (exit $?): $* (see $log)"
}

if [[ -z "$weights" ]]; then
  echo "detect_foreign.sh: no --weights: training the demo's network (seisseg demo --out $out/demo)" >&2
  run "$bin" demo --out "$out/demo" --record-seconds 0
  weights="$out/demo/weights.safetensors"
  [[ -f "$weights" ]] || fail "seisseg demo wrote no $weights"
fi

echo "detect_foreign.sh: synthesising the records in $out" >&2
# One tuning seed: PAIR-tune.h5; several: PAIR-tune-SEED.h5 each.
kinds=()
if [[ ${#tune_seeds[@]} == 1 ]]; then
  kinds+=("tune:${tune_seeds[0]}")
else
  for s in "${tune_seeds[@]}"; do kinds+=("tune-$s:$s"); done
fi
for kind_seed in "${kinds[@]}" "test:$test_seed"; do
  k="${kind_seed%%:*}" s="${kind_seed##*:}"
  run "$py" "$here/foreign_record.py" --out "$out/foreign-$k.h5" --duration "$duration" --receivers "$receivers" \
    --dt 0.002 --dx 10 --events-per-minute "$rate" --snr-db="$snr" --seed "$s"
  if [[ "$seisseg_pair" == 1 ]]; then
    run "$bin" synth --out "$out/seisseg-$k.h5" --continuous --duration "$duration" --receivers "$receivers" \
      --events-per-minute "$rate" --snr-db="$snr" --seed "$s"
  fi
done

pairs=(foreign)
[[ "$seisseg_pair" == 1 ]] && pairs+=(seisseg)
for pair in "${pairs[@]}"; do
  test="$out/$pair-test.h5"
  tune="$out/$pair-tune.h5"
  if [[ ${#tune_seeds[@]} -gt 1 ]]; then
    tune=""
    for s in "${tune_seeds[@]}"; do tune+="${tune:+,}$out/$pair-tune-$s.h5"; done
  fi
  for method in unet sta-lta; do
    base="$out/$pair-$method"
    args=(detect --method "$method" --tune-on "$tune" --in "$test" --out "$base-events.csv" --picks "$base-picks.csv")
    [[ "$method" == unet ]] && args+=(--weights "$weights")
    echo "detect_foreign.sh: $pair records, $method" >&2
    t0=$(date +%s.%N)
    echo "+ $bin ${args[*]}" >>"$log"
    "$bin" "${args[@]}" >"$base-detect.log" 2>&1 || fail "seisseg ${args[*]} failed (see $base-detect.log)"
    t1=$(date +%s.%N)
    echo "+ $bin evaluate --truth $test --events $base-events.csv --picks $base-picks.csv --json" >>"$log"
    "$bin" evaluate --truth "$test" --events "$base-events.csv" --picks "$base-picks.csv" --json >"$base-eval.json" ||
      fail "seisseg evaluate on $test failed"
    "$py" - "$pair" "$method" "$base-eval.json" "$base-detect.log" "$t0" "$t1" <<'EOF'
import json, re, sys
pair, method, path, detect_log, t0, t1 = sys.argv[1:]
j = json.load(open(path))
e, p = j["events"], j["picks"]
text = open(detect_log, errors="replace").read()
line = {"record": pair, "method": method, "event_f1": round(e["f1"], 4), "precision": round(e["precision"], 4),
        "recall": round(e["recall"], 4), "false_per_hour": round(e["false_per_hour"], 1), "events": e["events"],
        "detections": e["detections"], "p_hit10": round(p["p_hit10"], 4), "hit10": round(p["hit10"], 4),
        "pick_mae_ms": None if p["mae_ms"] is None else round(p["mae_ms"], 2), "picks": p["picks"],
        "detect_s": round(float(t1) - float(t0), 1)}
m = re.search(r"--threshold (\S+) --min-traces (\d+)(?: --pick-threshold (\S+))?", text)
if m:
    line["tuned"] = {"threshold": float(m.group(1)), "min_traces": int(m.group(2))}
    if m.group(3):
        line["tuned"]["pick_threshold"] = float(m.group(3))
m = re.search(r"trigger on (\S+) off (\S+), coincidence (\S+) traces", text)
if m:
    line["tuned"] = {"trigger_on": float(m.group(1)), "trigger_off": float(m.group(2)),
                     "coincidence": float(m.group(3))}
print(json.dumps(line))
EOF
  done
done | tee "$out/results.jsonl"

"$py" - "$out/results.jsonl" <<'EOF'
import json, sys
rows = {(r["record"], r["method"]): r for r in map(json.loads, open(sys.argv[1]))}
u, s = rows[("foreign", "unet")], rows[("foreign", "sta-lta")]
margin = u["event_f1"] - s["event_f1"]
print(json.dumps({"target": "foreign records: unet event F1 >= sta-lta + 0.10 and unet P hit10 >= 0.60",
                  "f1_margin": round(margin, 4), "p_hit10": u["p_hit10"],
                  "holds": bool(margin >= 0.10 and u["p_hit10"] >= 0.60)}))
EOF
