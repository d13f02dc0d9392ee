#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora under fuzz/corpus/<target>/ (not committed).

Seeds are small real inputs: the committed fixture nets (tests/fixtures/modern), a real ImageNet
validation photo from the shared data folder shrunk and saved in every format the library
decodes, and the first lines of the real annotation files (boxes.csv, wsolevaluation metadata,
an ILSVRC XML annotation written in the PASCAL VOC layout of the originals).

    python3 fuzz/make_corpus.py [--shared ../shared]

Needs Pillow for the images.
"""

import argparse
import io
import random
import shutil
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"

ONNX_SEEDS = [
    "shufflenet_v2_op13.onnx",
    "efficientnet_op13.onnx",
    "swin_op17_sim.onnx",
    "mobilenet_v3_op13.onnx",
    "maxvit_op17_sim.onnx",
]


def target(name):
    d = CORPUS / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def onnx_seeds():
    d = target("onnx_load")
    for name in ONNX_SEEDS:
        shutil.copy(ROOT / "tests" / "fixtures" / "modern" / name, d / name)


def image_seeds(shared):
    from PIL import Image

    d = target("image_decode")
    photo = sorted((shared / "data" / "imagenet-val" / "images").iterdir())[0]
    small = Image.open(photo).convert("RGB").resize((40, 30))
    saves = {
        "photo.jpg": dict(format="JPEG", quality=70),
        "photo_progressive.jpg": dict(format="JPEG", quality=60, progressive=True),
        "photo.png": dict(format="PNG"),
        "photo.bmp": dict(format="BMP"),
        "photo.gif": dict(format="GIF"),
        "photo.tiff": dict(format="TIFF"),
        "photo.webp": dict(format="WEBP", quality=60),
        "photo_lossless.webp": dict(format="WEBP", lossless=True),
    }
    for name, options in saves.items():
        small.save(d / name, **options)
    small.convert("L").save(d / "gray.png")
    small.convert("RGBA").save(d / "rgba.png")
    small.convert("L").resize((8, 6)).save(d / "gray_tiny.jpg", quality=50)
    small.convert("P").save(d / "palette.png")
    small.convert("I;16").save(d / "gray16.png")
    # An odd-sized one (odd length picks the other resize mode in the harness).
    png = (d / "photo.png").read_bytes()
    (d / "photo_other_mode.png").write_bytes(png + (b"\0" if len(png) % 2 == 0 else b""))


def annotation_seeds(shared):
    d = target("annotations")
    val = shared / "data" / "imagenet-val"
    csv_lines = (val / "boxes.csv").read_text().splitlines()[:6]
    (d / "boxes_csv").write_bytes(b"\x00" + "\n".join(csv_lines).encode() + b"\n")
    meta = shared / "data" / "imagenet-val-metadata"
    names = ["image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt"]
    parts = []
    for name in names:
        lines = (meta / name).read_text().splitlines()
        keep = [l for l in lines if l.split(",")[0].endswith(("00001.JPEG", "00002.JPEG", "00003.JPEG"))]
        parts.append("\n".join(keep) + "\n")
    (d / "wsol").write_bytes(b"\x01" + "\x00".join(parts).encode())
    rows = [r.split(",") for r in csv_lines[1:3]]
    all_synsets = (val / "synset_words.txt").read_text().splitlines()
    synsets = all_synsets[:2] + [s for s in all_synsets if s.split()[0] in {r[2] for r in rows}]
    xmls = []
    for i, row in enumerate(rows):
        wnid, w, h = row[2], row[9], row[10]
        x0, y0, x1, y1 = (str(int(float(v))) for v in row[11:15])
        xmls.append(
            "<annotation>\n\t<folder>val</folder>\n\t<filename>ILSVRC2012_val_0000000{i}</filename>\n"
            "\t<size>\n\t\t<width>{w}</width>\n\t\t<height>{h}</height>\n\t\t<depth>3</depth>\n\t</size>\n"
            "\t<object>\n\t\t<name>{wnid}</name>\n\t\t<bndbox>\n\t\t\t<xmin>{x0}</xmin>\n"
            "\t\t\t<ymin>{y0}</ymin>\n\t\t\t<xmax>{x1}</xmax>\n\t\t\t<ymax>{y1}</ymax>\n"
            "\t\t</bndbox>\n\t</object>\n</annotation>\n".format(
                i=i + 1, w=w, h=h, wnid=wnid, x0=x0, y0=y0, x1=x1, y1=y1
            )
        )
    text = "\n".join(synsets) + "\n"
    (d / "ilsvrc").write_bytes(b"\x02" + "\x00".join([text] + xmls).encode())


def box_seeds():
    d = target("boxes")
    rng = random.Random(23)
    for k in range(8):
        (d / f"random_{k}").write_bytes(bytes(rng.randrange(256) for _ in range(64 + 96 * k)))
    # A blob on a 16x16 map: width, height, then f32 values (arbitrary reads a length first).
    blob = struct.pack("<BB", 15, 15) + b"".join(
        struct.pack("<f", 1.0 if 4 <= (i % 16) < 10 and 3 <= (i // 16) < 9 else 0.0)
        for i in range(256)
    )
    (d / "blob").write_bytes(blob)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = parser.parse_args()
    onnx_seeds()
    image_seeds(args.shared)
    annotation_seeds(args.shared)
    box_seeds()
    for d in sorted(CORPUS.iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} seeds")


if __name__ == "__main__":
    main()
