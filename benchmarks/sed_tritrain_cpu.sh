#!/usr/bin/env bash
# Paper 004's six Table 1 rows on the generated DESED-style set, on CPU, equally trained (one command per seed set):
#   bash benchmarks/sed_tritrain_cpu.sh 0          # seed 0  (about 40 minutes on 2 cores)
#   bash benchmarks/sed_tritrain_cpu.sh 0 1 2      # more seeds (runs already done are reused)
# CPU budget (not the paper's): a narrower trunk (filters 8-64, GRU 64 instead of 16-128 / 128), PyTorch's default
# init (avs/models/crnn.py), 2 synthetic + 2 weak (+ 2 unlabeled) clips per step instead of 16 + 16 + 32 so every
# system takes the same 30 optimizer steps per epoch; 10 epochs, phase 1 = epochs 1-6; alpha 0.3 (Ganin schedule).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
AVS=${AVS:-.venv/bin/avs}
DEMO=${DEMO:-demo}
[ -d "$DEMO/sed" ] || $AVS demo-data "$DEMO" --dataset sed
[ -f "$DEMO/sed_features_2019/run.json" ] || $AVS extract "$DEMO/sed" --preset dcase2019-tritrain --out "$DEMO/sed_features_2019"
NARROW="model_params.filters=[8,16,32,64,64,64,64];model_params.rnn_hidden=64;model_params.init=pytorch"
COMMON="task_params.strong_batch=2;task_params.weak_batch=2"
TRI="task_params.phase1_epochs=6;task_params.unlabeled_batch=2;task_params.alpha=0.3"
$PY benchmarks/bench_sed.py --feats "$DEMO/sed_features_2019" --data "$DEMO/sed" --name sed_tritrain \
  --work "${WORK:-$DEMO/bench_sed}" --epochs 10 --threads "$(nproc)" --seeds "$@" --note "${NOTE:-}" \
  --systems "BASE=dcase2019-tritrain-baseline;$NARROW;$COMMON;task_params.phase1_epochs=6" \
            "ADV-WHOLE=dcase2019-tritrain-adv-whole;$NARROW;$COMMON;$TRI" \
            "ADV-TIME=dcase2019-tritrain-adv-time;$NARROW;$COMMON;$TRI" \
            "TRI=dcase2019-tritrain-tri;$NARROW;$COMMON;$TRI" \
            "ADV-WHOLE+TRI=dcase2019-tritrain-adv-whole-tri;$NARROW;$COMMON;$TRI" \
            "ADV-TIME+TRI=dcase2019-tritrain-adv-time-tri;$NARROW;$COMMON;$TRI"
