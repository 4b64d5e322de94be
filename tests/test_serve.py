"""The online service on a real local Ray Serve: each route on generated media answers what the batch pipeline
writes for the same file and config (avs extract's shard rows, avs predict's rows), every bad input gets its 4xx,
and concurrent clients lose no request."""

from __future__ import annotations

import io
import json
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.ray


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def service(ray_local, tmp_path_factory):
    """Demo TAU clips -> avs extract (dcase2021-t1b log-mel) -> avs train (tiny timm CNN, 1 epoch) -> avs predict;
    then one Serve application with the preset's log-mel and the run."""
    from ray import serve

    from avs.cli import main
    from avs.serve.cli import start
    from avs.serve.config import ServeConfig

    root = tmp_path_factory.mktemp("serve")
    assert main(["demo-data", str(root), "--dataset", "tau", "--seconds", "4"]) == 0
    feats = root / "feats"
    assert main(["extract", str(root / "tau"), "--preset", "dcase2021-t1b", "--features", "logmel",
                 "--out", str(feats)]) == 0  # fmt: skip
    run = root / "run"
    assert main(["train", str(feats), "--model", "timm-cnn", "--features", "logmel", "--epochs", "1",
                 "--batch-size", "16", "--set", "model_params.backbone=test_efficientnet",
                 "--set", "model_params.random_init=true", "--out", str(run)]) == 0  # fmt: skip
    preds = root / "preds"
    assert main(["predict", str(run), "--split", "all", "--out", str(preds)]) == 0
    cfg = ServeConfig(
        preset="dcase2021-t1b", features=("logmel",), runs=(f"scene={run}",), port=_free_port(),
        max_upload_mb=3.0, batch_wait_timeout_s=0.2, max_batch_size=8, json_max_values=300_000,
        plugins=("avs.testing.faulty",), audio_backend="faulty", decode_timeout_s=2.5,  # crash.wav, hang.wav
    )  # fmt: skip
    url = start(cfg)
    yield {"url": url, "root": root, "feats": feats, "preds": preds}
    serve.shutdown()


def _post(url: str, data: bytes, accept: str | None = None) -> tuple[int, bytes, str]:
    headers = {"Content-Type": "application/octet-stream", **({"Accept": accept} if accept else {})}
    req = urllib.request.Request(url, data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read(), r.headers.get("content-type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("content-type", "")


def _clip(service, i: int = 0) -> tuple[str, bytes]:
    manifest = pq.read_table(service["feats"] / "manifest.parquet").sort_by("clip_id")
    cid, path = manifest.column("clip_id")[i].as_py(), manifest.column("path")[i].as_py()
    return cid, Path(path).read_bytes()


def test_features_equal_the_batch_shards_in_every_format(service):
    cid, wav = _clip(service)
    shard = pq.read_table(service["feats"] / "logmel", filters=[("clip_id", "=", cid)]).sort_by("segment")
    shape = json.loads(shard.schema.metadata[b"avs.shape"])
    want = np.asarray(shard.column("logmel").combine_chunks().flatten()).reshape(-1, *shape)
    stored = json.loads((service["feats"] / "logmel" / "_feature_set.json").read_text())["hash"]

    status, body, ctype = _post(service["url"] + "/features?filename=clip.wav", wav, "application/x-npz")
    assert status == 200 and ctype.startswith("application/x-npz")
    npz = np.load(io.BytesIO(body))
    answer = json.loads(npz["response.json"].tobytes())
    assert answer["feature_sets"]["logmel"]["hash"] == stored  # the same config as the shards
    np.testing.assert_allclose(npz["logmel"], want, atol=1e-4)
    assert npz["logmel.start_s"].tolist() == shard.column("start_s").to_pylist()

    status, body, _ = _post(service["url"] + "/features", wav, "application/vnd.apache.arrow.stream")
    table = pa.ipc.open_stream(body).read_all()
    assert status == 200 and table.num_rows == len(want)
    got = np.asarray(table.column("values").combine_chunks().flatten()).reshape(want.shape)
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert json.loads(table.schema.metadata[b"avs.response"])["feature_sets"]["logmel"]["shape"] == shape

    status, body, _ = _post(service["url"] + "/features", wav)  # JSON by default
    doc = json.loads(body)
    assert status == 200 and doc["feature_sets"]["logmel"]["rows"] == len(want)
    np.testing.assert_allclose(np.asarray(doc["feature_sets"]["logmel"]["values"], np.float32), want, atol=1e-4)


def test_predict_equals_avs_predict(service):
    cid, wav = _clip(service, 3)
    status, body, _ = _post(service["url"] + "/predict/scene?filename=x.wav", wav)
    assert status == 200
    doc = json.loads(body)
    table = pq.read_table(service["preds"] / "predictions.parquet").filter(pa.compute.field("clip_id") == cid)
    classes = json.loads(table.schema.metadata[b"avs.classes"])
    assert doc["classes"] == classes and doc["kind"] == "class_probabilities"
    want = np.stack([table.column(c).to_numpy() for c in classes], axis=1)
    got = np.asarray([[r["scores"][c] for c in classes] for r in doc["rows"]])
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(list(doc["clip"]["scores"].values()), want.mean(axis=0), atol=1e-5)
    assert doc["model"]["task"] == "scene" and doc["feature_sets"]["logmel"]["hash"]


def _long_wav(root: Path) -> bytes:
    """8 s at 48 kHz: 8 log-mel segments, 577,536 values (over the fixture's json_max_values, 300,000)."""
    from avs.testing import media, signals

    path = media.write_wav(root / "long.wav", signals.tone(440.0, 8.0, 48_000), 48_000)
    return Path(path).read_bytes()


def test_health_and_every_bad_input(service):
    url = service["url"]
    health = json.loads(urllib.request.urlopen(url + "/healthz", timeout=30).read())
    assert health["status"] == "ok" and set(health["runs"]) == {"scene"} and "logmel" in health["feature_sets"]
    _, wav = _clip(service)
    cases = {
        "corrupt": (url + "/features", b"\x00not media\x01" * 500, None, 422, "corrupt"),
        "truncated header": (url + "/features?filename=t.wav", wav[:40], None, 422, ""),
        "too short to segment": (url + "/features?filename=s.wav", wav[: 44 + 2000], None, 422, ""),
        "empty": (url + "/features", b"", None, 400, "empty body"),
        "oversized": (url + "/features", b"\x00" * 3_200_000, None, 413, "over the limit"),
        "unknown run": (url + "/predict/nope", wav, None, 404, "unknown run"),
        "unknown feature set": (url + "/features?features=mfcc", wav, None, 400, "unknown feature set"),
        "unacceptable": (url + "/features", wav, "text/html", 406, "Accept"),
        "too big for JSON": (url + "/features?filename=l.wav", _long_wav(service["root"]), None, 406, "too many"),
        # the fixture's decoder plugin crashes its process on "crash" in the file's name, hangs on "hang"
        "decoder crash": (url + "/features?filename=crash.wav", wav, None, 422, "decoder_crashed"),
        "decoder hang": (url + "/predict/scene?filename=my%20hang.wav", wav, None, 422, "decode_timeout"),
    }
    for name, (u, data, accept, code, text) in cases.items():
        status, body, _ = _post(u, data, accept)
        assert status == code, (name, status, body[:300])
        assert text in json.loads(body)["error"], (name, body[:300])
        assert b"/tmp/" not in body  # the server's temporary paths stay inside
    status, _, _ = _post(url + "/nothing-here", wav)
    assert status == 404
    # the service still answers after all of that
    assert _post(url + "/predict/scene", wav)[0] == 200


def test_concurrent_clients_lose_nothing_and_predictions_batch(service):
    url = service["url"]
    clips = [_clip(service, i) for i in range(4)]
    single = {cid: json.loads(_post(url + "/predict/scene", wav)[1])["clip"]["scores"] for cid, wav in clips}

    def call(i: int):
        cid, wav = clips[i % len(clips)]
        route = "/predict/scene" if i % 3 else "/features?features=logmel"
        status, body, _ = _post(url + route, wav, "application/x-npz" if i % 3 == 0 else None)
        return i, cid, status, body

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, range(24)))
    assert sorted(i for i, *_ in results) == list(range(24)) and all(r[2] == 200 for r in results)
    batched = []
    for i, cid, _, body in results:
        if i % 3:
            doc = json.loads(body)
            np.testing.assert_allclose(list(doc["clip"]["scores"].values()), list(single[cid].values()), atol=1e-5)
            batched.append(doc["batched_with"])
        else:
            assert np.load(io.BytesIO(body))["logmel"].shape[0] > 0
    assert max(batched) > 1  # Serve gathered requests into one model call


def test_replicas_asking_for_a_missing_gpu_fail_fast(ray_local):
    from avs.ray_start import MissingResources
    from avs.serve.cli import start
    from avs.serve.config import ServeConfig

    more = int(ray_local.cluster_resources().get("GPU", 0)) + 1  # one replica more than there are GPUs
    cfg = ServeConfig(
        preset="dcase2021-t1b", features=("logmel",), num_gpus=1, num_cpus=0, num_replicas=more, gpu_wait_s=2,
        port=_free_port(),
    )  # fmt: skip
    with pytest.raises(MissingResources, match="GPU"):
        start(cfg)


def test_run_names_and_accept_header():
    from avs.serve.config import ARROW, JSON, NPZ, ServeConfig, run_names
    from avs.serve.encode import NotAcceptable, choose_format

    assert run_names(("a01=runs/x", "runs/sed/")) == {"a01": "runs/x", "sed": "runs/sed/"}
    with pytest.raises(ValueError, match="two runs"):
        run_names(("runs/a", "other/a"))
    with pytest.raises(ValueError, match="URL part"):
        run_names(("a b=runs/x",))
    with pytest.raises(ValueError, match="--preset"):
        ServeConfig()
    assert choose_format(None) == JSON and choose_format("*/*") == JSON
    assert choose_format(f"text/html, {ARROW};q=0.9") == ARROW and choose_format(NPZ) == NPZ
    with pytest.raises(NotAcceptable):
        choose_format("text/html")


def test_tables_batch_joins_feature_sets_on_shared_segments():
    """Two feature sets of one uploaded clip -> x as batch prediction joins them: the rows both have (an inner
    join on segment, as read_joined_part), vectors concatenated in the run's feature order."""
    from avs.train.data import DataSpec, tables_batch

    def table(name: str, segments: list[int], dims: int) -> pa.Table:
        values = np.asarray([[s * 10 + d for d in range(dims)] for s in segments], np.float32)
        return pa.table({
            "clip_id": ["upload"] * len(segments), "segment": pa.array(segments, pa.int32()),
            "start_s": [float(s) for s in segments], "end_s": [s + 1.0 for s in segments],
            "labels": pa.nulls(len(segments), pa.list_(pa.string())),
            name: pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), dims),
        })  # fmt: skip

    spec = DataSpec(shards="s", family="clip", features=("a", "b"), columns=("a", "b"), shapes=((2,), (3,)),
                    classes=("x", "y"), label_table="not/read.parquet")  # fmt: skip
    got = tables_batch(spec, {"a": table("a", [0, 1, 2], 2), "b": table("b", [2, 0], 3)})
    assert got["x"].tolist() == [[0, 1, 0, 1, 2], [20, 21, 20, 21, 22]]
    assert list(got["segment"]) == [0, 2]
    with pytest.raises(ValueError, match="share no segment"):
        tables_batch(spec, {"a": table("a", [0], 2), "b": table("b", [1], 3)})


def test_serve_cli_refuses_bad_settings_before_starting(tmp_path, capsys):
    from avs.cli import main

    assert main(["serve"]) == 2
    assert "--preset" in capsys.readouterr().err
    assert main(["serve", "--run", f"A={tmp_path / 'missing'}"]) == 2
    assert "model not found" in capsys.readouterr().err
    assert main(["serve", "--preset", "no-such-preset"]) == 2
    assert "unknown preset" in capsys.readouterr().err
    assert main(["serve", "--preset", "dcase2021-t1b", "--audio-backend", "nope"]) == 2
    assert "audio decoder 'nope' is not registered" in capsys.readouterr().err
    assert main(["serve", "--preset", "dcase2021-t1b", "--video-backend", "dali"]) == 2  # serve decodes on CPU
    assert "video decoder 'dali' is not registered" in capsys.readouterr().err
    assert main(["serve", "--preset", "dcase2021-t1b", "--plugins", "no_such_module"]) == 2
    assert "decoder plugin 'no_such_module' cannot be imported" in capsys.readouterr().err
