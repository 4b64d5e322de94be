"""Paper 001's reports: Tables 1-2 and Fig. 3 from an `avs evaluate --labels VOC2007/` folder (both APs kept apart
and labelled), and Fig. 2's filter activations (the maximum of a conv3 map, the top images per filter)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avs.eval.multilabel import evaluate_multilabel, write_multilabel_report

CLASSES = ("car", "dog", "person")


def _report(root: Path, systems: dict[str, int]) -> Path:
    """An evaluate folder whose systems score 8 images: the truth of every class, seed-scrambled scores."""
    truth = np.array(
        [[1, -1, 1], [-1, 1, -1], [1, 0, -1], [-1, -1, 1], [1, 1, -1], [-1, -1, 1], [-1, 1, 1], [1, -1, 0]]
    )
    for name, seed in systems.items():
        scores = np.random.default_rng(seed).random(truth.shape) + 0.3 * (truth > 0)
        write_multilabel_report(root / name, evaluate_multilabel(truth, scores, CLASSES), name)
    (root / "metrics.json").write_text(json.dumps({"systems": {n: {} for n in systems}}))
    return root


def test_tables_1_and_2_keep_both_aps_apart(tmp_path):
    from avs.eval.transfer import read_systems, table1_rows, table2_matrix, write_transfer_report

    report = _report(tmp_path / "r", {"TEXTURE-HEAD": 0, "TEXTURE-ALL": 1, "RANDOM-HEAD": 2})
    systems = read_systems(report)
    rows = {r["start"]: r for r in table1_rows(systems)}
    assert set(rows) == {"TEXTURE", "RANDOM"}
    assert rows["TEXTURE"]["head_voc07"] == systems["TEXTURE-HEAD"]["map_voc07"]
    assert rows["TEXTURE"]["all_sklearn"] == systems["TEXTURE-ALL"]["map"]
    assert rows["RANDOM"]["all_voc07"] is None  # not run: shown as '-', not 0
    names, classes, ap = table2_matrix(systems, "voc07")
    assert classes == list(CLASSES) and ap.shape == (3, 3)
    for i, n in enumerate(names):  # the mean of a row is that system's mAP (every class has a positive)
        assert np.isclose(ap[i].mean(), systems[n]["map_voc07"])
    _, _, ap_sk = table2_matrix(systems, "sklearn")
    assert not np.allclose(ap, ap_sk)  # two different APs, kept apart

    text = write_transfer_report(report, tmp_path / "out")
    assert "VOC07 11-pt" in text and "sklearn AP" in text
    assert f"{100 * systems['TEXTURE-HEAD']['map_voc07']:.1f}" in text
    for f in ("table1.md", "table1.csv", "table2.md", "table2.csv", "table2.png"):
        assert (tmp_path / "out" / f).stat().st_size > 0
    csv_rows = (tmp_path / "out" / "table2.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 2 * 3  # header + (voc07, sklearn) per system


def test_fig3_sweep_and_name_errors(tmp_path):
    from avs.eval.transfer import read_systems, split_name, sweep_rows, write_transfer_report

    report = _report(tmp_path / "r", {"alexnet-k8-head": 0, "alexnet-k2-head": 1, "resnet18-k2-head": 2})
    rows = sweep_rows(read_systems(report))
    assert [(r["arch"], r["k"]) for r in rows] == [("alexnet", 2), ("alexnet", 8), ("resnet18", 2)]
    text = write_transfer_report(report, tmp_path / "out", sweep=True)
    assert "| alexnet | head | 8 |" in text and (tmp_path / "out" / "fig3.png").stat().st_size > 0
    with pytest.raises(ValueError, match="<START>-head"):
        split_name("TEXTURE")
    with pytest.raises(ValueError, match="<ARCH>-k<K>"):
        sweep_rows({"TEXTURE-HEAD": {}})


def test_transfer_report_cli_exit_codes(tmp_path, capsys):
    from avs.cli import main

    report = _report(tmp_path / "r", {"PRETEXT-HEAD": 0, "RANDOM-HEAD": 1})
    assert main(["transfer-report", str(report), "--out", str(tmp_path / "o")]) == 0
    assert "Table 1" in capsys.readouterr().out
    assert main(["transfer-report", str(tmp_path / "nothing")]) == 2
    assert "not an `avs evaluate` report folder" in capsys.readouterr().err


@pytest.mark.parametrize("arch", ["alexnet", "resnet18"])
def test_conv3_activations_are_the_map_maximum(arch):
    """Fig. 2's score of an image for a filter: the maximum over positions of that filter's conv3 map, the same
    as running torchvision's layers up to conv3 by hand."""
    from avs.models import create_model
    from avs.train.filters import choose_filters, layer_activations, top_images

    torch.manual_seed(0)
    model = create_model(f"frame-{arch}", num_classes=4, input_size=None).eval()
    x = torch.randn(5, 3, 64, 64)
    acts = layer_activations(model, "conv3", x.numpy())
    stop = {"alexnet": 7, "resnet18": 5}[arch]  # AlexNet: conv3 (features[6]) + its ReLU; ResNet-18: conv3_x
    with torch.no_grad():
        ref = x
        for layer in list(model.features)[: stop + 1]:
            ref = layer(ref)
    assert acts.shape == (5, ref.shape[1])
    np.testing.assert_allclose(acts, ref.amax(dim=(2, 3)).numpy(), rtol=1e-5, atol=1e-6)

    chosen = choose_filters(acts, None, 3)
    assert len(chosen) == 3 and acts[:, chosen[0]].std() == acts.std(axis=0).max()
    best = top_images(acts, chosen, 2)
    for f, rows in best.items():
        assert acts[rows[0], f] == acts[:, f].max() and acts[rows[0], f] >= acts[rows[1], f]
    with pytest.raises(ValueError, match="out of range"):
        choose_filters(acts, [acts.shape[1]], 3)
    with pytest.raises(ValueError, match="conv"):
        model.conv_layer("conv6")
