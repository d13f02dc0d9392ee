#!/usr/bin/env python3
"""Markdown tables from `feedbacknet eval --json` and `feedbacknet tune --json` files.

    python3 scripts/results_table.py eval out/dev/squeezenet_*.json
    python3 scripts/results_table.py tune out/dev/tune_squeezenet_*.json

Standard library only. The eval table has one row per summary file (method, every metric, the
median time per image); the tune table one row per tune file (the setting chosen on each half
and the other half's metrics at it).
"""

import json
import sys


def pct(v):
    return f"{100.0 * v:.1f}"


def eval_table(paths):
    print("| net | method | top-1 cls | GT-known loc | top-1 loc | top-5 loc err | MaxBoxAccV2 "
          "| mean IoU | pointing | ms / image |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for path in paths:
        with open(path) as f:
            d = json.load(f)
        s, c, t = d["summary"], d["config"], d["timings"]
        net = c["model"].rsplit("/", 1)[-1].removesuffix(".onnx")
        print(f"| {net} | {c['method']} | {pct(s['top1_cls'])} | {pct(s['gt_known_loc'])} "
              f"| {pct(s['top1_loc'])} | {pct(s['top5_loc_error'])} | {pct(s['maxbox_acc_v2'])} "
              f"| {s['mean_iou']:.3f} | {pct(s['pointing_game'])} | {t['median_ms']:.0f} |")


def tune_table(paths):
    print("| net | method | tuned on even: blur, thr -> odd GT-known / MaxBoxAccV2 "
          "| tuned on odd: blur, thr -> even GT-known / MaxBoxAccV2 | held-out GT-known "
          "| held-out MaxBoxAccV2 |")
    print("|---|---|---|---|---|---|")
    for path in paths:
        with open(path) as f:
            d = json.load(f)
        net = d["model"].rsplit("/", 1)[-1].removesuffix(".onnx")
        cells = []
        for fold in d["folds"]:
            r = fold["reported"]
            cells.append(f"{fold['blur']:g}, {fold['threshold']:.2f} -> "
                         f"{pct(r['gt_known_loc'])} / {pct(r['maxbox_acc_v2'])}")
        print(f"| {net} | {d['method']} | {cells[0]} | {cells[1]} "
              f"| **{pct(d['held_out_gt_known_loc'])}** | {pct(d['held_out_maxbox_acc_v2'])} |")


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("eval", "tune"):
        sys.exit(__doc__)
    (eval_table if sys.argv[1] == "eval" else tune_table)(sys.argv[2:])


if __name__ == "__main__":
    main()
