#!/usr/bin/env python3
"""Hostile inputs against the feedbacknet CLI (issue 23, reliability).

Crafts about a hundred hostile inputs in a temporary folder (never in the repository)
from the shared data (`../shared/models`, `../shared/data`) and the committed
fixtures under `tests/fixtures/modern/`, runs the CLI on each (`infer` for models,
images and classes, `eval` on a tiny data set for annotation files) under a
timeout and an address-space cap, and prints a Markdown table:

    input | command | expected | outcome | seconds | peak MiB | message

Outcomes: `typed error` (exit 1 with an `error:` line), `accepted` (exit 0),
`accepted, warned`, `accepted, N failed (listed)` (eval), `PANIC` (a Rust
panic), `killed (SIG...)`, `out of memory (cap)`, `timeout`.

Each input says what it expects: `refuse` (must be a typed error), `accept`
(a valid if unusual input: must work) or `either` (damage a decoder cannot
always see, such as a flipped bit in weight data: a typed error or a result
are both fine). The script exits 1 when any input panics, is killed, runs out
of the memory cap, times out, is accepted where it must be refused, or is
refused where it must be accepted.

Python 3 standard library only; the ONNX graph-surgery inputs need the `onnx`
and `numpy` packages and are skipped (listed as such) without them.

    python3 scripts/hostile_inputs.py                      # all inputs
    python3 scripts/hostile_inputs.py --only image/        # a subset
    python3 scripts/hostile_inputs.py --binary target/debug/feedbacknet --keep
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "modern" / "shufflenet_v2_op13.onnx"
BASE_IMAGE = "ILSVRC2012_val_00000361.JPEG"

try:  # optional: ONNX graph surgery
    import numpy as np
    import onnx
    from onnx import numpy_helper

    HAVE_ONNX = True
except ImportError:  # pragma: no cover - depends on the machine
    HAVE_ONNX = False


# ----------------------------------------------------------------------------
# cases


@dataclass
class Case:
    """One hostile input: how to make it, how to run the CLI on it."""

    name: str
    expect: str  # refuse | accept | either
    make: Callable[["Ctx"], list[str]]  # writes files, returns the CLI arguments
    needs_onnx: bool = False
    note: str = ""


@dataclass
class Ctx:
    """Where the inputs go and where the shared data is."""

    tmp: Path
    shared: Path
    models: Path = field(init=False)
    data: Path = field(init=False)

    def __post_init__(self) -> None:
        self.models = self.shared / "models"
        self.data = self.shared / "data" / "imagenet-val"

    @property
    def squeezenet(self) -> Path:
        return self.models / "squeezenet1.1.onnx"

    @property
    def image(self) -> Path:
        return self.data / "images" / BASE_IMAGE

    def path(self, name: str) -> Path:
        p = self.tmp / "inputs" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write(self, name: str, data: bytes) -> Path:
        p = self.path(name)
        p.write_bytes(data)
        return p

    def out(self) -> str:
        return str(self.tmp / "out")

    def infer(self, model: Path | None = None, image: Path | None = None, *extra: str) -> list[str]:
        args = ["infer", "--models-dir", str(self.models), "--method", "gradient"]
        if model is not None:
            args += ["--model", str(model)]
        args += ["--image", str(image or self.image), "--out", self.out(), *extra]
        return args

    def eval(self, data: Path, *extra: str) -> list[str]:
        return [
            "eval", "--models-dir", str(self.models), "--method", "gradient",
            "--data", str(data), "--results", str(self.tmp / "out" / "eval.jsonl"),
            "--overwrite", "--workers", "1", "--sweep", "0", *extra,
        ]


def flip_bits(data: bytes, seed: int, count: int, lo: int = 0, hi: int | None = None) -> bytes:
    """`count` random bits of `data[lo:hi]` flipped, from `seed`."""
    rng = random.Random(seed)
    buf = bytearray(data)
    hi = len(buf) if hi is None else min(hi, len(buf))
    for _ in range(count):
        i = rng.randrange(lo, hi)
        buf[i] ^= 1 << rng.randrange(8)
    return bytes(buf)


def cut(data: bytes, fraction: float) -> bytes:
    return data[: int(len(data) * fraction)]


# --- PNG writing (zlib, stdlib) ------------------------------------------------


def png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png(width: int, height: int, rows: Callable[[int], bytes], colour: int = 2, depth: int = 8,
        level: int = 6) -> bytes:
    """A PNG whose row `y` (filter byte excluded) is `rows(y)`; streamed through zlib."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    z = zlib.compressobj(level)
    parts = []
    for y in range(height):
        parts.append(z.compress(b"\x00" + rows(y)))
    parts.append(z.flush())
    idat = b"".join(parts)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def noise_png(width: int = 227, height: int = 227, colour: int = 2, depth: int = 8) -> bytes:
    """A PNG of seeded noise over a gradient (so it compresses little and cutting it hurts)."""
    rng = random.Random(7)
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    row_bytes = width * channels * depth // 8
    return png(width, height, lambda y: bytes(rng.randrange(256) for _ in range(row_bytes)), colour, depth)


def declared_png(width: int, height: int) -> bytes:
    """A valid PNG header declaring `width x height` RGB, with one tiny IDAT (a lie)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def bomb_png(side: int) -> bytes:
    """A real `side x side` all-black RGB PNG (small file, huge decoded size)."""
    row = bytes(side * 3)
    return png(side, side, lambda _y: row, 2, 8, level=9)


# --- ONNX surgery ----------------------------------------------------------------


def fixture_model():
    return onnx.load(str(FIXTURE))


def first_weight(model):
    """The first float initializer with at least two dimensions (a Conv weight)."""
    for init in model.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT and len(init.dims) >= 2:
            return init
    raise RuntimeError("fixture has no float weight")


def set_weight(model, fill: float):
    init = first_weight(model)
    arr = numpy_helper.to_array(init).copy()
    arr.flat[: max(1, arr.size // 10)] = fill
    init.CopyFrom(numpy_helper.from_array(arr.astype(np.float32), init.name))
    return model


def save(ctx: Ctx, name: str, model) -> Path:
    p = ctx.path(name)
    p.write_bytes(model.SerializeToString())
    return p


def onnx_nan(ctx: Ctx) -> list[str]:
    return ctx.infer(save(ctx, "nan.onnx", set_weight(fixture_model(), float("nan"))))


def onnx_inf(ctx: Ctx) -> list[str]:
    return ctx.infer(save(ctx, "inf.onnx", set_weight(fixture_model(), float("inf"))))


def onnx_wrong_size(ctx: Ctx) -> list[str]:
    model = fixture_model()
    init = first_weight(model)
    arr = numpy_helper.to_array(init)
    init.ClearField("float_data")
    init.raw_data = arr.astype(np.float32).tobytes()[:-4]  # one element short
    return ctx.infer(save(ctx, "wrong_size.onnx", model))


def onnx_wrong_dims(ctx: Ctx) -> list[str]:
    model = fixture_model()
    init = first_weight(model)
    init.dims[0] = init.dims[0] * 2  # declares twice the output channels, data unchanged
    return ctx.infer(save(ctx, "wrong_dims.onnx", model))


def onnx_cycle(ctx: Ctx) -> list[str]:
    model = fixture_model()
    nodes = model.graph.node
    # the second node now reads the output of the last one, which depends on it
    nodes[1].input[0] = nodes[len(nodes) - 1].output[0]
    return ctx.infer(save(ctx, "cycle.onnx", model))


def onnx_self_loop(ctx: Ctx) -> list[str]:
    model = fixture_model()
    node = model.graph.node[1]
    node.input[0] = node.output[0]
    return ctx.infer(save(ctx, "self_loop.onnx", model))


def onnx_unsupported(ctx: Ctx) -> list[str]:
    model = fixture_model()
    model.graph.node[1].op_type = "FeedbacknetNoSuchOp"
    return ctx.infer(save(ctx, "unsupported_op.onnx", model))


def onnx_dangling(ctx: Ctx) -> list[str]:
    model = fixture_model()
    model.graph.node[1].input[0] = "no_such_tensor"
    return ctx.infer(save(ctx, "dangling_input.onnx", model))


def onnx_no_output(ctx: Ctx) -> list[str]:
    model = fixture_model()
    del model.graph.output[:]
    return ctx.infer(save(ctx, "no_output.onnx", model))


def onnx_no_nodes(ctx: Ctx) -> list[str]:
    model = fixture_model()
    del model.graph.node[:]
    return ctx.infer(save(ctx, "no_nodes.onnx", model))


def input_dims(model):
    return model.graph.input[0].type.tensor_type.shape.dim


def onnx_rank(ctx: Ctx) -> list[str]:
    model = fixture_model()
    del input_dims(model)[3]  # 1x3x32
    return ctx.infer(save(ctx, "rank3_input.onnx", model))


def onnx_huge_dims(ctx: Ctx) -> list[str]:
    model = fixture_model()
    dims = input_dims(model)
    dims[2].dim_value = 100_000
    dims[3].dim_value = 100_000
    return ctx.infer(save(ctx, "huge_dims.onnx", model))


def onnx_zero_dims(ctx: Ctx) -> list[str]:
    model = fixture_model()
    dims = input_dims(model)
    dims[2].dim_value = 0
    dims[3].dim_value = 0
    return ctx.infer(save(ctx, "zero_dims.onnx", model))


def onnx_cases() -> list[Case]:
    sq = lambda ctx: ctx.squeezenet.read_bytes()  # noqa: E731
    cases = [
        Case("model/control (squeezenet, valid)", "accept", lambda c: c.infer(c.squeezenet)),
        Case("model/control (fixture, valid)", "accept", lambda c: c.infer(FIXTURE)),
        Case("model/empty file", "refuse", lambda c: c.infer(c.write("empty.onnx", b""))),
        Case("model/10 random bytes", "refuse",
             lambda c: c.infer(c.write("random.onnx", random.Random(10).randbytes(10)))),
        Case("model/a JPEG named .onnx", "refuse",
             lambda c: c.infer(c.write("photo.onnx", c.image.read_bytes()))),
        Case("model/truncated at 1/3", "refuse",
             lambda c: c.infer(c.write("trunc13.onnx", cut(sq(c), 1 / 3)))),
        Case("model/truncated at 2/3", "refuse",
             lambda c: c.infer(c.write("trunc23.onnx", cut(sq(c), 2 / 3)))),
        Case("model/truncated by 1 byte", "refuse",
             lambda c: c.infer(c.write("trunc1.onnx", sq(c)[:-1]))),
    ]
    for seed in (1, 2, 3):
        cases.append(Case(f"model/16 bit flips anywhere (seed {seed})", "either",
                          lambda c, s=seed: c.infer(c.write(f"flip{s}.onnx", flip_bits(sq(c), s, 16)))))
    for seed in (4, 5, 6):
        cases.append(Case(f"model/4 bit flips in the first 4 KiB (seed {seed})", "either",
                          lambda c, s=seed: c.infer(c.write(f"flip_head{s}.onnx",
                                                            flip_bits(sq(c), s, 4, 0, 4096)))))
    surgery = [
        ("model/NaN weights", "refuse", onnx_nan),
        ("model/Inf weights", "refuse", onnx_inf),
        ("model/initializer one element short", "refuse", onnx_wrong_size),
        ("model/initializer dims twice its data", "refuse", onnx_wrong_dims),
        ("model/graph cycle", "refuse", onnx_cycle),
        ("model/node reads its own output", "refuse", onnx_self_loop),
        ("model/unsupported operator", "refuse", onnx_unsupported),
        ("model/input from no node", "refuse", onnx_dangling),
        ("model/no graph output", "refuse", onnx_no_output),
        ("model/no nodes", "refuse", onnx_no_nodes),
        ("model/input of rank 3", "refuse", onnx_rank),
        ("model/input declared 100000x100000", "refuse", onnx_huge_dims),
        ("model/input declared 0x0", "refuse", onnx_zero_dims),
    ]
    cases += [Case(n, e, f, needs_onnx=True) for n, e, f in surgery]
    cases += [
        Case("model/--input-size 1 (1x1 input)", "refuse",
             lambda c: c.infer(c.squeezenet, None, "--input-size", "1")),
        Case("model/--input-size 100000", "refuse",
             lambda c: c.infer(c.squeezenet, None, "--input-size", "100000")),
        Case("model/a directory", "refuse", lambda c: c.infer(c.path("adir.onnx/x").parent)),
        Case("model/missing path", "refuse", lambda c: c.infer(c.tmp / "no_such_model.onnx")),
    ]
    return cases


def image_cases() -> list[Case]:
    jpg = lambda ctx: ctx.image.read_bytes()  # noqa: E731

    def img(name: str, data: Callable[[Ctx], bytes]) -> Callable[[Ctx], list[str]]:
        return lambda c: c.infer(c.squeezenet, c.write(name, data(c)))

    def mkdir(c: Ctx) -> list[str]:
        d = c.path("adir.jpg")
        d.mkdir(exist_ok=True)
        return c.infer(c.squeezenet, d)

    return [
        Case("image/control (JPEG, valid)", "accept", lambda c: c.infer(c.squeezenet)),
        Case("image/control (PNG, valid)", "accept", img("noise.png", lambda c: noise_png())),
        Case("image/empty file", "refuse", img("empty.jpg", lambda c: b"")),
        Case("image/not an image (text)", "refuse", img("text.jpg", lambda c: b"hello, world\n" * 20)),
        Case("image/JPEG header only (first 600 bytes)", "refuse", img("head.jpg", lambda c: jpg(c)[:600])),
        Case("image/JPEG cut at 1/3", "refuse", img("cut13.jpg", lambda c: cut(jpg(c), 1 / 3))),
        Case("image/JPEG cut at 2/3", "refuse", img("cut23.jpg", lambda c: cut(jpg(c), 2 / 3))),
        Case("image/PNG cut at 1/2", "refuse", img("cut12.png", lambda c: cut(noise_png(), 1 / 2))),
        Case("image/PNG without IEND (last 12 bytes cut)", "either",
             img("noiend.png", lambda c: noise_png()[:-12])),
        Case("image/JPEG 8 bit flips (seed 1)", "either",
             img("flip1.jpg", lambda c: flip_bits(jpg(c), 1, 8, 1024))),
        Case("image/JPEG 8 bit flips (seed 2)", "either",
             img("flip2.jpg", lambda c: flip_bits(jpg(c), 2, 8, 1024))),
        Case("image/JPEG 4 bit flips in the header (seed 3)", "either",
             img("flip3.jpg", lambda c: flip_bits(jpg(c), 3, 4, 2, 600))),
        Case("image/1x1 PNG", "accept", img("one.png", lambda c: png(1, 1, lambda y: b"\x80\x40\x20"))),
        Case("image/grayscale PNG", "accept", img("gray.png", lambda c: noise_png(colour=0))),
        Case("image/16-bit RGB PNG", "accept", img("rgb16.png", lambda c: noise_png(depth=16))),
        Case("image/RGBA PNG", "accept", img("rgba.png", lambda c: noise_png(colour=6))),
        Case("image/grayscale+alpha PNG", "accept", img("graya.png", lambda c: noise_png(colour=4))),
        Case("image/PNG header declaring 60000x60000", "refuse",
             img("huge_header.png", lambda c: declared_png(60000, 60000))),
        Case("image/PNG declaring 0x0", "refuse", img("zero.png", lambda c: declared_png(0, 0))),
        Case("image/20000x20000 black PNG (1.2 GB decoded)", "refuse",
             img("bomb.png", lambda c: bomb_png(20000))),
        Case("image/a directory", "refuse", mkdir),
        Case("image/missing path", "refuse", lambda c: c.infer(c.squeezenet, c.tmp / "no_such.jpg")),
    ]


def class_cases() -> list[Case]:
    def cls(*extra: str) -> Callable[[Ctx], list[str]]:
        return lambda c: c.infer(c.squeezenet, None, *extra)

    return [
        Case("class/--class 999 (last, valid)", "accept", cls("--class", "999")),
        Case("class/--class \"tiger cat\" (label, valid)", "accept", cls("--class", "tiger cat")),
        Case("class/--class 1000", "refuse", cls("--class", "1000")),
        Case("class/--class 99999", "refuse", cls("--class", "99999")),
        Case("class/--class -1", "refuse", cls("--class=-1")),
        Case("class/--class 18446744073709551616", "refuse", cls("--class", "18446744073709551616")),
        Case("class/--class \"no such label\"", "refuse", cls("--class", "no such label")),
        Case("class/--class \"\" (empty)", "refuse", cls("--class=")),
        Case("class/--top-k 0", "refuse", cls("--top-k", "0")),
        Case("class/--top-k 100 (valid, batched by 16)", "accept", cls("--top-k", "100")),
        Case("class/--top-k 1001", "refuse", cls("--top-k", "1001")),
        Case("class/--top-k 2000", "refuse", cls("--top-k", "2000")),
    ]


# --- annotations (eval) ---------------------------------------------------------


def csv_lines(ctx: Ctx, n: int = 2) -> list[str]:
    """The header and the first `n` rows of the shared boxes.csv."""
    return (ctx.data / "boxes.csv").read_text().splitlines()[: n + 1]


def csv_case(name: str, expect: str, edit: Callable[[list[str]], str]) -> Case:
    def make(c: Ctx) -> list[str]:
        path = c.write(f"{re.sub(r'[^a-z0-9]+', '_', name.lower())}/boxes.csv",
                       edit(csv_lines(c)).encode())
        return c.eval(path, "--images", str(c.data))

    return Case(name, expect, make)


def set_field(line: str, column: int, value: str) -> str:
    fields = line.split(",")
    fields[column] = value
    return ",".join(fields)


def drop_column(lines: list[str], column: int) -> str:
    return "\n".join(",".join(f for i, f in enumerate(l.split(",")) if i != column) for l in lines) + "\n"


def wsol_files(ctx: Ctx) -> dict[str, list[str]]:
    """wsolevaluation metadata for the first two rows of the shared boxes.csv."""
    files: dict[str, list[str]] = {k: [] for k in ("image_ids", "class_labels", "image_sizes", "localization")}
    seen = set()
    for line in csv_lines(ctx)[1:]:
        f = line.split(",")
        image, cls, w, h, box = f[0], f[1], f[3], f[4], f[5:9]
        if image not in seen:
            seen.add(image)
            files["image_ids"].append(image)
            files["class_labels"].append(f"{image},{cls}")
            files["image_sizes"].append(f"{image},{w},{h}")
        files["localization"].append(",".join([image, *(str(round(float(v))) for v in box)]))
    return files


def wsol_case(name: str, expect: str, edit: Callable[[dict[str, list[str]]], None]) -> Case:
    def make(c: Ctx) -> list[str]:
        files = wsol_files(c)
        edit(files)
        folder = c.path(re.sub(r"[^a-z0-9]+", "_", name.lower()) + "/x").parent
        folder.mkdir(parents=True, exist_ok=True)
        for stem, lines in files.items():
            (folder / f"{stem}.txt").write_text("\n".join(lines) + "\n")
        return c.eval(folder, "--images", str(c.data))

    return Case(name, expect, make)


XML = """<annotation>
  <folder>val</folder>
  <filename>{stem}</filename>
  <size><width>227</width><height>227</height><depth>3</depth></size>
  <object>
    <name>{wnid}</name>
    <bndbox><xmin>38</xmin><ymin>53</ymin><xmax>190</xmax><ymax>202</ymax></bndbox>
  </object>
</annotation>
"""


def xml_case(name: str, expect: str, body: Callable[[str], str]) -> Case:
    def make(c: Ctx) -> list[str]:
        folder = c.path(re.sub(r"[^a-z0-9]+", "_", name.lower()) + "/xml/x").parent
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(c.data / "synset_words.txt", folder.parent / "synset_words.txt")
        stem = Path(BASE_IMAGE).stem
        (folder / f"{stem}.xml").write_text(body(XML.format(stem=stem, wnid="n02165105")))
        return c.eval(folder, "--images", str(c.data / "images"))

    return Case(name, expect, make)


def annotation_cases() -> list[Case]:
    j = lambda lines: "\n".join(lines) + "\n"  # noqa: E731
    return [
        csv_case("boxes.csv/control (2 rows, valid)", "accept", j),
        csv_case("boxes.csv/empty file", "refuse", lambda l: ""),
        csv_case("boxes.csv/header only", "refuse", lambda l: j(l[:1])),
        csv_case("boxes.csv/missing column x1", "refuse", lambda l: drop_column(l, 7)),
        csv_case("boxes.csv/row one field short (x0 left out)", "refuse",
                 lambda l: j([l[0], ",".join(f for i, f in enumerate(l[1].split(",")) if i != 5), *l[2:]])),
        csv_case("boxes.csv/non-numeric box", "refuse", lambda l: j([l[0], set_field(l[1], 5, "abc"), *l[2:]])),
        csv_case("boxes.csv/NaN box", "refuse", lambda l: j([l[0], set_field(l[1], 5, "NaN"), *l[2:]])),
        csv_case("boxes.csv/box outside the image", "refuse",
                 lambda l: j([l[0], set_field(set_field(l[1], 7, "5000"), 8, "5000"), *l[2:]])),
        csv_case("boxes.csv/negative box", "refuse",
                 lambda l: j([l[0], set_field(set_field(l[1], 5, "-500"), 6, "-500"), *l[2:]])),
        csv_case("boxes.csv/inverted box (x0 > x1)", "refuse",
                 lambda l: j([l[0], set_field(set_field(l[1], 5, "190"), 7, "37"), *l[2:]])),
        csv_case("boxes.csv/class 1000", "refuse", lambda l: j([l[0], set_field(l[1], 1, "1000"), *l[2:]])),
        csv_case("boxes.csv/class -1", "refuse", lambda l: j([l[0], set_field(l[1], 1, "-1"), *l[2:]])),
        csv_case("boxes.csv/image size 0x0", "refuse",
                 lambda l: j([l[0], set_field(set_field(l[1], 3, "0"), 4, "0"), *l[2:]])),
        csv_case("boxes.csv/UTF-8 BOM", "accept", lambda l: "\ufeff" + j(l)),
        csv_case("boxes.csv/CRLF line ends", "accept", lambda l: "\r\n".join(l) + "\r\n"),
        csv_case("boxes.csv/header repeated as a row", "refuse", lambda l: j([l[0], l[1], l[0], *l[2:]])),
        csv_case("boxes.csv/image file missing", "either",
                 lambda l: j([l[0], set_field(l[1], 0, "images/no_such.JPEG"), *l[2:]])),
        csv_case("boxes.csv/image path escaping (../)", "either",
                 lambda l: j([l[0], set_field(l[1], 0, "../../../../etc/passwd"), *l[2:]])),
        csv_case("boxes.csv/binary garbage", "refuse", lambda l: random.Random(3).randbytes(4096).decode("latin-1")),
        wsol_case("wsol/control (valid)", "accept", lambda f: None),
        wsol_case("wsol/localization.txt missing", "refuse", lambda f: f.pop("localization")),
        wsol_case("wsol/image_sizes.txt missing", "refuse", lambda f: f.pop("image_sizes")),
        wsol_case("wsol/a line with too many fields", "refuse",
                  lambda f: f["localization"].__setitem__(0, f["localization"][0] + ",7,8")),
        wsol_case("wsol/a line with too few fields", "refuse",
                  lambda f: f["image_sizes"].__setitem__(0, f["image_sizes"][0].rsplit(",", 1)[0])),
        wsol_case("wsol/image without a class", "refuse", lambda f: f["class_labels"].pop(0)),
        wsol_case("wsol/box outside the image", "refuse",
                  lambda f: f["localization"].__setitem__(0, f["localization"][0].rsplit(",", 2)[0] + ",5000,5000")),
        xml_case("xml/control (valid)", "accept", lambda x: x),
        xml_case("xml/malformed (unclosed tag)", "refuse", lambda x: x.replace("</annotation>", "")),
        xml_case("xml/empty file", "refuse", lambda x: ""),
        xml_case("xml/unknown wnid", "refuse", lambda x: x.replace("n02165105", "n99999999")),
        xml_case("xml/non-numeric xmin", "refuse", lambda x: x.replace("<xmin>38", "<xmin>abc")),
        xml_case("xml/box outside the image", "refuse", lambda x: x.replace("<xmax>190", "<xmax>5000")),
        xml_case("xml/no object", "refuse", lambda x: re.sub(r"<object>.*</object>", "", x, flags=re.S)),
        xml_case("xml/billion laughs entities", "refuse", lambda x: LAUGHS + x.replace("val", "&lol9;", 1)),
    ]


LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE annotation [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
"""


def all_cases() -> list[Case]:
    return onnx_cases() + image_cases() + class_cases() + annotation_cases()


# ----------------------------------------------------------------------------
# running


@dataclass
class Result:
    case: Case
    command: str
    outcome: str
    seconds: float
    peak_mib: float
    message: str
    problem: str  # empty when the outcome is what the case expects


def run_one(binary: Path, args: list[str], cwd: Path, timeout: float, mem_bytes: int):
    """Runs the CLI; returns (status or None on timeout, seconds, peak RSS MiB, stdout, stderr)."""

    def limit() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen([str(binary), *args], cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, preexec_fn=limit,
                                env={**os.environ, "NO_COLOR": "1", "RUST_BACKTRACE": "0"})
        status, rusage = None, None
        while True:
            pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                status, rusage = st, ru
                break
            if time.monotonic() - start > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                _, st, ru = os.wait4(proc.pid, 0)
                rusage = ru
                break
            time.sleep(0.01)
        seconds = time.monotonic() - start
        proc.returncode = -1 if status is None else os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (status, seconds, rusage.ru_maxrss / 1024, out.read().decode("utf-8", "replace"),
                err.read().decode("utf-8", "replace"))


def first_message(stderr: str, stdout: str) -> str:
    lines = [l.strip() for l in stderr.splitlines() if l.strip()]
    for i, l in enumerate(lines):  # eval: the first failed image it lists
        if re.match(r"\d+ of \d+ images failed", l) and i + 1 < len(lines):
            return f"{l} {lines[i + 1]}"
    for prefix in ("thread '", "memory allocation", "error", "warning"):
        for i, l in enumerate(lines):
            if l.startswith(prefix):
                if prefix == "thread '" and i + 1 < len(lines):
                    return l + " " + lines[i + 1]  # panic location + message
                return l
    out = [l.strip() for l in stdout.splitlines() if l.strip()]
    for l in out:  # an accepted run: its first result line
        if re.match(r"\d+ \S", l) and ("logit" in l or "images evaluated" in l):
            return re.sub(r"\s+", " ", l)
    lines = [l for l in lines if not l.startswith("model ")]
    return (lines or out or [""])[-1]


def classify(status, stdout: str, stderr: str) -> str:
    if status is None:
        return "timeout"
    if "panicked at" in stderr:
        return "PANIC"
    if "memory allocation of" in stderr:
        return "out of memory (cap)"
    if os.WIFSIGNALED(status):
        return f"killed ({signal.Signals(os.WTERMSIG(status)).name})"
    code = os.WEXITSTATUS(status)
    if code != 0:
        return "typed error" if re.search(r"^error", stderr, re.M) else f"exit {code}, no error line"
    failed = re.search(r"\((\d+) failed\)", stdout)
    if failed and int(failed.group(1)) > 0:
        listed = "listed" if "images failed" in stderr else "NOT listed"
        return f"accepted, {failed.group(1)} failed ({listed})"
    if re.search(r"^warning", stderr, re.M | re.I):
        return "accepted, warned"
    return "accepted"


def judge(case: Case, outcome: str) -> str:
    if outcome in ("PANIC", "timeout", "out of memory (cap)") or outcome.startswith(("killed", "exit ")):
        return outcome
    if case.expect == "refuse" and outcome == "accepted":
        return "accepted silently, must be refused"
    if case.expect == "accept" and not outcome.startswith("accepted"):
        return "refused, must be accepted"
    if "NOT listed" in outcome:
        return "failed images not listed"
    return ""


def shorten(args: list[str], ctx: Ctx) -> str:
    text = " ".join(a if re.fullmatch(r"[\w./=:-]+", a) else repr(a) for a in args)
    text = text.replace(str(ctx.tmp / "inputs") + "/", "").replace(str(ctx.tmp) + "/", "")
    text = text.replace(str(ctx.shared) + "/", "shared/").replace(str(REPO) + "/", "")
    for noise in (" --models-dir shared/models", " --method gradient", " --out out",
                  " --results out/eval.jsonl --overwrite --workers 1 --sweep 0"):
        text = text.replace(noise, "")
    return text


def cell(text: str, width: int = 160) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_bin = REPO / "target" / "release" / "feedbacknet"
    if not default_bin.exists():
        default_bin = REPO / "target" / "debug" / "feedbacknet"
    parser.add_argument("--binary", type=Path, default=default_bin, help="the CLI (default: %(default)s)")
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("FEEDBACKNET_SHARED", REPO.parent / "shared")),
                        help="shared data folder with models/ and data/ (default: %(default)s)")
    parser.add_argument("--only", default="", help="run only the inputs whose name contains this")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per run (default: %(default)s)")
    parser.add_argument("--mem-gib", type=float, default=8.0, help="address-space cap per run, GiB (default: %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder of inputs")
    args = parser.parse_args()

    binary = args.binary.resolve()
    if not binary.is_file():
        print(f"no binary at {binary}", file=sys.stderr)
        return 2
    if not (args.shared / "models" / "squeezenet1.1.onnx").is_file():
        print(f"no shared data at {args.shared} (want models/squeezenet1.1.onnx)", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="feedbacknet-hostile-"))
    ctx = Ctx(tmp=tmp, shared=args.shared.resolve())
    (tmp / "out").mkdir()
    cases = [c for c in all_cases() if args.only in c.name]
    results: list[Result] = []
    skipped: list[str] = []
    try:
        for case in cases:
            if case.needs_onnx and not HAVE_ONNX:
                skipped.append(case.name)
                continue
            argv = case.make(ctx)
            status, seconds, peak, stdout, stderr = run_one(binary, argv, tmp, args.timeout,
                                                            int(args.mem_gib * 2**30))
            outcome = classify(status, stdout, stderr)
            problem = judge(case, outcome)
            message = first_message(stderr, stdout).replace(str(tmp / "inputs") + "/", "")
            message = message.replace(str(ctx.shared) + "/", "shared/")
            results.append(Result(case, shorten(argv, ctx), outcome, seconds, peak, message, problem))
            mark = "  <-- " + problem if problem else ""
            print(f"{case.name}: {outcome} in {seconds:.2f} s, {peak:.0f} MiB{mark}", file=sys.stderr)
    finally:
        if args.keep:
            print(f"inputs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"binary: `{binary}`\n")
    print("| input | command | expected | outcome | s | peak MiB | message |")
    print("|---|---|---|---|---:|---:|---|")
    for r in results:
        outcome = f"**{r.outcome}**" if r.problem else r.outcome
        print(f"| {cell(r.case.name)} | `{cell(r.command, 120)}` | {r.case.expect} | {outcome} "
              f"| {r.seconds:.2f} | {r.peak_mib:.0f} | {cell(r.message)} |")
    tally: dict[str, int] = {}
    for r in results:
        key = re.sub(r"\d+ failed", "N failed", r.outcome)
        tally[key] = tally.get(key, 0) + 1
    problems = [r for r in results if r.problem]
    print()
    print(f"{len(results)} inputs: " + ", ".join(f"{n} {k}" for k, n in sorted(tally.items(), key=lambda kv: -kv[1]))
          + f"; {len(problems)} problem(s)" + (f"; {len(skipped)} skipped (no onnx/numpy)" if skipped else ""))
    for r in problems:
        print(f"- problem: {r.case.name}: {r.problem} ({cell(r.message, 300)})")
    for name in skipped:
        print(f"- skipped (needs the onnx and numpy packages): {name}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
