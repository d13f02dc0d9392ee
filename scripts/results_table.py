#!/usr/bin/env python3
"""Markdown tables from `feedbacknet eval --json` and `feedbacknet tune --json` files.

    python3 scripts/results_table.py eval out/dev/squeezenet_*.json
    python3 scripts/results_table.py tune out/dev/tune_squeezenet_*.json
    python3 scripts/results_table.py given out/dev/tune_squeezenet_*.json
    python3 scripts/results_table.py grid out/grid/*.json

Standard library only. The eval table has one row per summary file (method, every metric, the
median time per image); the tune table one row per tune file (the setting chosen on each half
and the other half's metrics at it); the given table, from tune files, every image at the
settings given on the command line (what `eval` reports with them); the grid table, from
`feedbacknet grid --json` files, one row per method (the grid pointing game's metrics).
"""

import json
import sys


def pct(v):
    return f"{100.0 * v:.1f}"


HEADER = ("| net | method | images | top-1 cls | GT-known loc | top-1 loc | top-5 loc err "
          "| MaxBoxAccV2 | mean IoU | pointing | ms / image |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")


def metrics_row(net, method, s, ms):
    return (f"| {net} | {method} | {s['images']} | {pct(s['top1_cls'])} | {pct(s['gt_known_loc'])} "
            f"| {pct(s['top1_loc'])} | {pct(s['top5_loc_error'])} | {pct(s['maxbox_acc_v2'])} "
            f"| {s['mean_iou']:.3f} | {pct(s['pointing_game'])} | {ms:.0f} |")


def net_name(model):
    return model.rsplit("/", 1)[-1].removesuffix(".onnx")


def eval_table(paths):
    print(HEADER)
    for path in paths:
        with open(path) as f:
            d = json.load(f)
        c = d["config"]
        print(metrics_row(net_name(c["model"]), c["method"], d["summary"],
                          d["timings"]["median_ms"]))


def tune_results(paths):
    """Every method's result of the tune files (a file of a several-method run holds a list)."""
    for path in paths:
        with open(path) as f:
            d = json.load(f)
        yield from (d if isinstance(d, list) else [d])


def given_table(paths):
    print(HEADER)
    for d in tune_results(paths):
        print(metrics_row(net_name(d["model"]), d["method"], d["at_given_settings"]["reported"],
                          d["median_ms"]))


DEFAULTS = {"iterations": 30, "lambda": 0.01, "objective": "Logit", "gates": "Neuron",
            "schedule": "AllAtOnce", "crops": "Single"}


def settings_note(d):
    """The solver settings of a tune result that differ from the defaults ("" for none)."""
    s = d.get("settings") or {}
    def differs(k, v):
        return isinstance(v, float) and abs(s[k] - v) > 1e-6 or not isinstance(v, float) and s[k] != v

    notes = [f"{k} {s[k]:.4g}" if isinstance(s[k], float) else f"{k} {s[k]}"
             for k, v in DEFAULTS.items() if k in s and differs(k, v)]
    if s.get("schedule") == "TopFirst":
        notes.append(f"top {s['top_sites']} sites x {s['top_iterations']} it")
    return ", ".join(notes)


def chosen(fold):
    """The setting a fold chose: variant (map, fusion, refinement), blur and threshold."""
    parts = []
    if fold.get("feedback_map", "gradient") != "gradient":
        parts.append(fold["feedback_map"])
    if "cam_weight" in fold:
        parts.append(f"w {fold['cam_weight']:g}, fb {fold['feedback_blur']:g}")
    if fold.get("refine") == "colour":
        parts.append("colour")
    parts.append(f"{fold['blur']:g}, {fold['threshold']:.2f}")
    return ", ".join(parts)


def tune_table(paths):
    print("| net | method | settings | images | tuned on even -> odd GT-known / MaxBoxAccV2 "
          "| tuned on odd -> even GT-known / MaxBoxAccV2 | held-out GT-known "
          "| held-out MaxBoxAccV2 |")
    print("|---|---|---|---|---|---|---|---|")
    for d in tune_results(paths):
        net = net_name(d["model"])
        cells = []
        for fold in d["folds"]:
            r = fold["reported"]
            cells.append(f"{chosen(fold)} -> {pct(r['gt_known_loc'])} / {pct(r['maxbox_acc_v2'])}")
        print(f"| {net} | {d['method']} | {settings_note(d)} | {d['images']} | {cells[0]} "
              f"| {cells[1]} | **{pct(d['held_out_gt_known_loc'])}** "
              f"| {pct(d['held_out_maxbox_acc_v2'])} |")


def grid_table(paths):
    print("| net | n | scale | method | objective | mosaics | mass in cell | peak in cell "
          "| GT-known loc | mean IoU | chance |\n|---|---|---|---|---|---|---|---|---|---|---|")
    for path in paths:
        with open(path) as f:
            d = json.load(f)
        if "methods" not in d:  # a manifest (--manifest) beside the summaries
            continue
        c = d["config"]
        for r in d["methods"]:
            s = r["summary"]
            objective = "-"
            if r["method"] in ("feedback", "feedback-cam"):
                objective = f"{c['objective']} λ {c['lambda']:.3g}" if "lambda" in c else c["objective"]
            elif r["method"] == "feedback-hard":
                objective = "hard"
            print(f"| {net_name(c['model'])} | {s['n']} | {c['scale']} | {r['method']} "
                  f"| {objective} | {s['mosaics']} | {pct(s['mass_share'])} "
                  f"| {pct(s['peak_in_cell'])} | {pct(s['gt_known_loc'])} | {s['mean_iou']:.3f} "
                  f"| {pct(s['chance'])} |")


def main():
    tables = {"eval": eval_table, "tune": tune_table, "given": given_table, "grid": grid_table}
    if len(sys.argv) < 3 or sys.argv[1] not in tables:
        sys.exit(__doc__)
    tables[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
