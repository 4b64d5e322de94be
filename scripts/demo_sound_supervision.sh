#!/usr/bin/env bash
# Paper 001 end to end on generated data, on CPU: the demo TAU clips -> 3.75-s sound windows described by texture
# statistics + the frame at each window's centre -> k-means sound clusters -> an AlexNet learns to predict its
# frame's cluster (the pretext task) -> transfer to a generated Pascal VOC 2007 layout, training the FC layers
# only ("Head") or the whole network ("All"), from the pretext run and from random weights -> per-class AP
# (VOC 2007 devkit 11-point and scikit-learn) and mAP side by side (paper 001 Tables 1-2).
#
#   bash scripts/demo_sound_supervision.sh          # everything under demo/ (DEMO=/some/folder to move it)
#   K=6 EPOCHS=20 bash scripts/demo_sound_supervision.sh
#
# Steps (each one an `avs` command; `ray job submit -- python jobs/<command>.py ...` runs the same):
#   1. avs demo-data --dataset tau + avs extract --preset owens-texture      (skipped when already there)
#   2. avs cluster texture -> assignments.parquet (the pretext labels) + gallery.png
#   3. avs train --preset owens-pretext-alexnet --label-table assignments.parquet
#   4. avs demo-data --dataset voc + avs extract --preset voc07
#   5. avs train --preset voc07-transfer-{head,all}, from the pretext run (--init-from) and from random weights
#   6. avs predict (test split) x 4 -> avs evaluate --labels VOC2007/: demo/voc_report/
#   7. avs transfer-report (Tables 1-2) and avs filters (Fig. 2: the frames that excite conv3 filters most)
#
# Demo settings, not the paper's (AlexNet at 224 x 224 on a video dataset for 200 epochs, k = 15): the 20 demo
# clips give 40 windows, so K clusters (default 4), EPOCHS epochs (default 10) of each training at 96 x 96, batch
# 8; the presets' AdamW + OneCycle otherwise. With 40 frames of 10 generated scenes, the pretext learns little:
# the demo shows the pipeline, not the paper's numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
AVS=${AVS:-.venv/bin/avs}
DEMO=${DEMO:-demo}
K=${K:-4}
EPOCHS=${EPOCHS:-10}
THREADS=${THREADS:-$(nproc)}
FEATS=$DEMO/owens_features
CLUSTERS=$DEMO/owens_clusters
VOC=$DEMO/voc/VOC2007
VOCF=$DEMO/voc_features
RUNS=$DEMO/owens_runs
PREDS=$DEMO/voc_predictions
start=$(date +%s)
step() { echo; echo "=== [$(( $(date +%s) - start )) s] $*"; }

if [ ! -f "$FEATS/run.json" ]; then
  step "demo TAU clips -> 3.75-s windows: texture statistics + centre frames"
  [ -d "$DEMO/tau" ] || $AVS demo-data "$DEMO" --dataset tau > /dev/null
  $AVS extract "$DEMO/tau" --preset owens-texture --out "$FEATS"
fi
if [ ! -f "$VOCF/run.json" ]; then
  step "a generated Pascal VOC 2007 layout -> frames"
  [ -d "$VOC" ] || $AVS demo-data "$DEMO" --dataset voc > /dev/null
  $AVS extract "$VOC" --preset voc07 --out "$VOCF"
fi
rm -rf "$CLUSTERS" "$RUNS" "$PREDS" "$DEMO/voc_report" "$DEMO/owens_filters"

step "k-means (k = $K) of the texture statistics: the pretext labels"
$AVS cluster "$FEATS/texture" --k "$K" --frames "$FEATS/frames" --out "$CLUSTERS" > /dev/null
CLASSES=$(seq -s, 0 $(( K - 1 )))
small=(--torch-threads "$THREADS" --cache-rows 100000 --epochs "$EPOCHS" --batch-size 8
  --set "schedule.total_epochs=$EPOCHS" --set "task_params.image_size=[96,96]" --set model_params.input_size=null)
step "pretext: AlexNet predicts its frame's sound cluster, $EPOCHS epochs"
$AVS train "$FEATS" --preset owens-pretext-alexnet --label-table "$CLUSTERS/assignments.parquet" --classes "$CLASSES" \
  --set "model_params.num_classes=$K" "${small[@]}" --out "$RUNS/pretext"

for mode in head all; do
  step "transfer ($mode) from the pretext run"
  $AVS train "$VOCF" --preset "voc07-transfer-$mode" --init-from "$RUNS/pretext" "${small[@]}" --out "$RUNS/pretext-$mode"
  step "transfer ($mode) from random weights"
  $AVS train "$VOCF" --preset "voc07-transfer-$mode" --set init_drop=[] "${small[@]}" --out "$RUNS/random-$mode"
done
for run in pretext-head pretext-all random-head random-all; do
  $AVS predict "$RUNS/$run" --split test --out "$PREDS/$run" > /dev/null
done

step "evaluate: per-class AP (VOC 2007 11-point and scikit-learn), mAP"
$AVS evaluate --labels "$VOC" --classes aeroplane,boat,car,person,pottedplant,tvmonitor \
  "PRETEXT-HEAD=$PREDS/pretext-head" "PRETEXT-ALL=$PREDS/pretext-all" \
  "RANDOM-HEAD=$PREDS/random-head" "RANDOM-ALL=$PREDS/random-all" --out "$DEMO/voc_report" > /dev/null

step "paper 001 Tables 1-2 and Fig. 2"
$AVS transfer-report "$DEMO/voc_report" --out "$DEMO/voc_report/paper001"
$AVS filters "$RUNS/pretext" "$FEATS/frames" --layer conv3 --n-filters 4 --out "$DEMO/owens_filters"

echo
echo "=== done in $(( $(date +%s) - start )) s."
echo "Tables 1-2: $DEMO/voc_report/paper001/ (table1.md, table2.md, table2.png); per system: $DEMO/voc_report/<system>/"
echo "Fig. 2: $DEMO/owens_filters/fig2.png; sound clusters: $CLUSTERS/gallery.png"
