"""gallery.png: one row per sound cluster, the frames whose sound is nearest its centre (paper 001, Figure 1
left: "frames grouped by sound clusters").

With a frames shard folder (``OUT/frames/part-*.parquet``: clip_id, segment, image = JPEG bytes) the tiles are
the frames that join the nearest feature rows on (clip_id, segment). Without one, each row shows the cluster's
mean feature vector and its nearest rows' vectors as small heat-map tiles (z-scores, clipped to +-3), so the
PNG still tells the clusters apart.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image, ImageDraw, ImageFont, ImageOps

from avs.cluster.kmeans import feature_parts

_SEP = "\x1f"
_BG = (24, 24, 24)
_FG = (235, 235, 235)
_LABEL_PX = 170
_PAD = 4


def _font(size: int = 14) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType / older than 10.1
        return ImageFont.load_default()


def read_frames(folder: str, wanted: Sequence[tuple[str, int]]) -> dict[tuple[str, int], bytes]:
    """JPEG bytes of the frames keyed (clip_id, segment) in ``wanted``, read part by part from a frames
    shard folder (only the image cells of wanted rows are kept). Keys without a frame are absent."""
    storage, parts = feature_parts(folder)
    want = pa.array(sorted({f"{c}{_SEP}{int(s)}" for c, s in wanted}), pa.string())
    found: dict[tuple[str, int], bytes] = {}
    for name in parts:
        path = storage.path(name)
        schema = pq.read_schema(path, filesystem=storage.fs)
        missing = [c for c in ("clip_id", "segment", "image") if c not in schema.names]
        if missing:
            raise ValueError(
                f"{storage.uri}/{name}: frames shard without column(s) {missing}; columns are {schema.names}"
            )
        keys = pq.read_table(path, filesystem=storage.fs, columns=["clip_id", "segment"])
        joined = pc.binary_join_element_wise(
            keys.column("clip_id").cast(pa.string()), keys.column("segment").cast(pa.string()), _SEP
        )
        rows = np.flatnonzero(pc.is_in(joined, value_set=want).to_numpy(zero_copy_only=False))
        if len(rows) == 0:
            continue
        images = pq.read_table(path, filesystem=storage.fs, columns=["image"]).column("image").take(pa.array(rows))
        ids = keys.column("clip_id").take(pa.array(rows)).to_pylist()
        segs = keys.column("segment").take(pa.array(rows)).to_pylist()
        for cid, seg, img in zip(ids, segs, images.to_pylist(), strict=True):
            if img is not None:
                found.setdefault((str(cid), int(seg)), img)
    return found


def _placeholder(px: int, text: str) -> Image.Image:
    tile = Image.new("RGB", (px, px), (60, 60, 60))
    ImageDraw.Draw(tile).text((6, px // 2 - 7), text, fill=_FG, font=_font(12))
    return tile


def frame_tile(jpeg: bytes | None, px: int) -> Image.Image:
    """A frame fitted (aspect kept) into a ``px`` x ``px`` tile; a placeholder when missing / undecodable."""
    if jpeg is None:
        return _placeholder(px, "no frame")
    try:
        img = Image.open(io.BytesIO(jpeg)).convert("RGB")
    except Exception:  # noqa: BLE001 - a bad frame must not lose the gallery
        return _placeholder(px, "bad frame")
    img = ImageOps.contain(img, (px, px))  # scaled up or down, aspect kept
    tile = Image.new("RGB", (px, px), _BG)
    tile.paste(img, ((px - img.width) // 2, (px - img.height) // 2))
    return tile


def _lut() -> np.ndarray:
    try:
        import matplotlib

        return (matplotlib.colormaps["viridis"](np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)
    except Exception:  # noqa: BLE001 - grey ramp without matplotlib
        ramp = np.arange(256, dtype=np.uint8)
        return np.stack([ramp, ramp, ramp], axis=1)


def feature_tile(z: np.ndarray, shape: Sequence[int], px: int, lut: np.ndarray) -> Image.Image:
    """A feature vector of z-scores as a heat map: in its own 2-D shape (e.g. MFCC 20 x 155) when it has one,
    else wrapped row by row into a near-square grid (texture 502 -> 23 x 22); +-3 maps to the colour ends."""
    z = np.asarray(z, dtype=np.float32).reshape(-1)
    if len(shape) >= 2:
        grid = z.reshape(int(np.prod(shape[:-1])), int(shape[-1]))
    else:
        w = max(1, math.ceil(math.sqrt(len(z))))
        h = math.ceil(len(z) / w)
        grid = np.full(h * w, np.nan, np.float32)
        grid[: len(z)] = z
        grid = grid.reshape(h, w)
    idx = np.clip((np.nan_to_num(grid, nan=0.0) + 3.0) / 6.0 * 255.0, 0, 255).astype(np.uint8)
    rgb = lut[idx]
    rgb[np.isnan(grid)] = _BG
    return Image.fromarray(rgb, "RGB").resize((px, px), Image.Resampling.NEAREST)


def render(rows: Sequence[tuple[str, Sequence[Image.Image]]], tile_px: int, title: str, first_gap: int = 0) -> bytes:
    """PNG bytes of a grid: per row a label then its tiles (``first_gap`` extra pixels after the first tile)."""
    ncols = max([len(t) for _, t in rows] + [1])
    head = 28
    width = _LABEL_PX + ncols * (tile_px + _PAD) + _PAD + first_gap
    height = head + len(rows) * (tile_px + _PAD) + _PAD
    canvas = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(canvas)
    draw.text((_PAD * 2, 6), title, fill=_FG, font=_font(14))
    for r, (label, tiles) in enumerate(rows):
        y = head + r * (tile_px + _PAD)
        draw.text((_PAD * 2, y + tile_px // 2 - 8), label, fill=_FG, font=_font(14))
        for c, tile in enumerate(tiles):
            canvas.paste(tile, (_LABEL_PX + c * (tile_px + _PAD) + (first_gap if c > 0 else 0), y))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


def make_gallery(
    keys: pa.Table,
    nearest: Sequence[np.ndarray],
    sizes: np.ndarray,
    per_cluster: int,
    tile_px: int = 96,
    frames: str | None = None,
    x: np.ndarray | None = None,
    assignments: np.ndarray | None = None,
    shape: Sequence[int] | None = None,
    center: np.ndarray | None = None,
    scale: np.ndarray | None = None,
    title: str = "",
) -> tuple[bytes, dict]:
    """Gallery PNG bytes and a small info dict.

    ``nearest[c]`` are the row indices of cluster c nearest its centroid (``kmeans.nearest_rows``). With
    ``frames`` the tiles are frames; otherwise ``x`` (n, D) gives feature tiles: the cluster mean (needs
    ``assignments``) then the nearest rows, z-scored with ``center`` / ``scale`` when given (pass them when
    ``x`` is not standardised already).
    """
    ids = keys.column("clip_id").to_pylist() if frames is not None else None
    segs = keys.column("segment").to_numpy() if frames is not None else None
    rows: list[tuple[str, list[Image.Image]]] = []
    info: dict = {"kind": "frames" if frames is not None else "features", "tiles": 0, "missing_frames": 0}
    if frames is not None:
        wanted = [(ids[i], int(segs[i])) for sel in nearest for i in sel[:per_cluster]]
        jpegs = read_frames(frames, wanted)
        for c, sel in enumerate(nearest):
            tiles = []
            for i in sel[:per_cluster]:
                jpeg = jpegs.get((ids[i], int(segs[i])))
                info["missing_frames"] += jpeg is None
                tiles.append(frame_tile(jpeg, tile_px))
            rows.append((f"cluster {c} (n={int(sizes[c])})", tiles))
    else:
        if x is None:
            raise ValueError("a gallery without frames needs the feature matrix x")
        lut = _lut()
        shape = list(shape) if shape is not None else [x.shape[1]]
        if int(np.prod(shape)) != x.shape[1]:
            shape = [x.shape[1]]

        def z(v: np.ndarray) -> np.ndarray:
            v = np.asarray(v, dtype=np.float32)
            return v if center is None else (v - center) / scale

        for c, sel in enumerate(nearest):
            tiles = []
            if assignments is not None and sizes[c] > 0:
                members = np.flatnonzero(assignments == c)
                tiles.append(feature_tile(z(x[members].mean(axis=0)), shape, tile_px, lut))
            tiles.extend(feature_tile(z(x[i]), shape, tile_px, lut) for i in sel[:per_cluster])
            rows.append((f"cluster {c} (n={int(sizes[c])})", tiles))
    info["tiles"] = sum(len(t) for _, t in rows)
    gap = tile_px // 4 if frames is None and assignments is not None else 0  # sets the mean tile apart
    return render(rows, tile_px, title, first_gap=gap), info
