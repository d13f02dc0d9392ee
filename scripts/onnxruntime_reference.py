#!/usr/bin/env python3
"""Reference logits for feedbacknet's ONNX interpreter tests, computed with onnxruntime.

Each shared model runs on two shared images. To compare the networks and nothing else, the
preprocessing avoids resampling: the RGB image is centre-cropped to the model's input size
(offset floor((W - w) / 2)) and normalized as in ../shared/models/README.md. The pixels come from
the Rust `image` crate (`cargo run --example decode_crop`), because JPEG decoders differ
slightly (libjpeg-turbo, as in PIL and OpenCV, and zune-jpeg disagree by a grey level here and
there), and the test compares networks, not decoders.

Usage (from the repository root):
    pip install onnxruntime numpy pillow
    python3 scripts/onnxruntime_reference.py > tests/fixtures/onnxruntime_reference.json
"""
import json
import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image

SHARED = os.environ.get("FEEDBACKNET_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
MODELS = {
    # file: (input size, mean, std) on the [0, 1] scale
    "squeezenet1.1.onnx": (224, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    "mobilenet_v1_0.25_128.onnx": (128, [0.5] * 3, [0.5] * 3),
    "mobilenet_v2_1.0_224.onnx": (224, [0.5] * 3, [0.5] * 3),
    "efficientnet_lite0.onnx": (224, [127 / 255] * 3, [128 / 255] * 3),
}
IMAGES = [
    "data/demo/gradcam_both.png",
    "data/imagenet-val/images/ILSVRC2012_val_00000361.JPEG",
]


def rust_crop(path, size):
    raw = subprocess.run(
        ["cargo", "run", "-q", "--example", "decode_crop", "--", path, str(size)],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(size, size, 3)


def load(path, size, mean, std):
    crop = rust_crop(path, size)
    # Cross-check against PIL: the two decoders agree exactly on PNG and to a grey level on JPEG.
    rgb = np.asarray(Image.open(path).convert("RGB"))
    top, left = (rgb.shape[0] - size) // 2, (rgb.shape[1] - size) // 2
    assert np.abs(rgb[top : top + size, left : left + size].astype(int) - crop).max() <= 8
    x = (crop.astype(np.float32) / 255.0 - np.array(mean, np.float32)) / np.array(std, np.float32)
    return x.transpose(2, 0, 1)[None].astype(np.float32), int(crop.astype(np.int64).sum())


def main():
    cases = []
    for model, (size, mean, std) in MODELS.items():
        session = ort.InferenceSession(os.path.join(SHARED, "models", model), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        for image in IMAGES:
            x, pixel_sum = load(os.path.join(SHARED, image), size, mean, std)
            logits = session.run(None, {name: x})[0].reshape(-1)
            top5 = np.argsort(-logits)[:5]
            cases.append(
                {
                    "model": model,
                    "image": image,
                    "input_size": size,
                    "crop_pixel_sum": pixel_sum,
                    "top5_indices": [int(i) for i in top5],
                    "top5_logits": [float(logits[i]) for i in top5],
                }
            )
    json.dump({"generator": "scripts/onnxruntime_reference.py", "onnxruntime": ort.__version__, "cases": cases}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
