#!/usr/bin/env python3
"""The per-method box settings of `src/boxes.rs` from `feedbacknet tune --json` files.

    python3 scripts/tuned_defaults.py rust  tune_squeezenet1.1.json tune_mobilenet_v2_1.0_224.json ...
    python3 scripts/tuned_defaults.py table tune_*.json
    python3 scripts/tuned_defaults.py refine tune_*.json
    python3 scripts/tuned_defaults.py stable 0,0.6,0.8,0.95 tune_*_stable.json
    python3 scripts/tuned_defaults.py rust-stable 0.95 tune_*_stable.json
    python3 scripts/tuned_defaults.py refine-stable 0,0.95 ab_*.json

Each file is one net's run of `feedbacknet::TUNE_COMMAND` or `FEEDBACK_TUNE_COMMAND` (several
methods, a list). A method's setting is the grid point (fusion, refinement, blur, map scale,
threshold) with the best GT-known localization over all the images: the two halves' grids are
the same points, so a point's accuracy on all images is the count-weighted mean of its two
halves (the halves' sizes are those of the folds' reported halves). Ties go to the more stable
point where the grid has box stability, then to the first point of the grid, as `tune` breaks
them. `rust` prints the rows of `TABLE`; `table` a markdown table of each method's setting,
its GT-known on all images (in-sample: chosen there) and its held-out GT-known (tuned on one
half, read on the other: the honest figure). For a file of `tune --stable-boxes`, `table`'s
held-out GT-known is the grid's without a floor (and its MaxBoxAccV2 is not shown). `refine`
prints, per method and refinement, the held-out GT-known with the grid restricted to that
refinement (GT-known only: the grid holds no other metric for points not chosen). `stable` reads files of `tune --stable-boxes` at other
floors: per method and floor, each half chooses as `tune` would at that floor (the best point at
least that stable on itself, else the most stable), and the other half's GT-known and box
stability at that point are averaged over the two folds (0: no floor). `refine-stable FLOORS`
reads the same files per refinement: the mean GT-known and box stability over all images of
each refinement's grid points (a paired comparison: the grid is the same but for the
refinement) and, per floor, the held-out figures with each half choosing among that
refinement's points. `rust-stable FLOOR`
prints the rows of `STABLE` from files of `feedbacknet::STABLE_TUNE_COMMAND` (or
`FEEDBACK_TUNE_COMMAND`): each method's
point with the best GT-known over all the images among those whose boxes are stable on at least
FLOOR of all the images (else the most stable point).

Standard library only.
"""

import sys

# The same directory's table script reads the tune files the same way.
from results_table import net_name, tune_results as results

NETS = {
    "squeezenet1.1": "SQ",
    "mobilenet_v1_0.25_128": "V1",
    "mobilenet_v2_1.0_224": "V2",
    "efficientnet_lite0": "EF",
}
METHODS = {
    "feedback": "Feedback",
    "feedback-cam": "FeedbackCam",
    "feedback-hard": "FeedbackHard",
    "gradient": "Gradient",
    "deconvnet": "Deconvnet",
    "guided": "Guided",
    "gradcam": "GradCam",
}

REFINES = {"none": "Plain", "colour": "Colour", "colour-trilinear": "ColourTrilinear"}


def key(p):
    return (p.get("cam_weight"), p.get("feedback_blur"), p.get("feedback_map"), p["refine"],
            p["blur"], scale(p), p["threshold"])


def scale(p):
    """The point's map scale (`max`, or a percentile such as `p99`); files written before
    `--map-scales` have none and mean the maximum."""
    return p.get("scale", "max")


def whole_set_points(r):
    """Every grid point with its GT-known and box stability over all images (`None` where the
    tune did not score stability), in the grid's order."""
    halves = dict((name, points) for name, points in r["grid"])
    # Fold 0 is tuned on the even half and reported on the odd one.
    sizes = {f["reported_on"]: f["reported"]["images"] for f in r["folds"]}
    n_even, n_odd = sizes["even"], sizes["odd"]
    odd = {key(p): p for p in halves["odd"]}

    def mean(a, b):
        if a is None or b is None:
            return None
        return (a * n_even + b * n_odd) / (n_even + n_odd)

    for p in halves["even"]:
        q = odd[key(p)]
        yield (p, mean(p["gt_known_loc"], q["gt_known_loc"]),
               mean(p.get("box_stability"), q.get("box_stability")))


def whole_set_best(r, floor=None):
    """The point with the best GT-known over all images, and that accuracy; with a floor, the
    best among the points whose boxes are stable on at least `floor` of all images (else the
    most stable point)."""
    p, acc, _ = whole_set_choice(r, floor)
    return p, acc


def whole_set_choice(r, floor=None):
    """`whole_set_best` with the point's box stability over all images."""
    points = list(whole_set_points(r))
    if floor is not None:
        if any(t[2] is None for t in points):
            sys.exit(f"{r['model']} {r['method']}: no box stability (tune without --stable-boxes)")
        stable = [t for t in points if t[2] >= floor]
        if not stable:
            return max(points, key=lambda t: (t[2], t[1]))  # first of ties
        points = stable
    # The more stable of equally accurate points, then the first (as `tune`'s best_point).
    return max(points, key=lambda t: (t[1], -1 if t[2] is None else t[2]))


def rust_row(net, method, p):
    fusion = "None"
    if method == "feedback-cam":
        fusion = f"Some(({p['cam_weight']:.1f}, {p['feedback_blur']:.1f}))"
    refine = REFINES[p["refine"]]
    percentile = ""
    if scale(p) != "max":
        percentile = f".at_percentile({float(scale(p)[1:]):.1f})"
    return (f"    row({NETS[net]}, {METHODS[method]}, ({p['blur']:.1f}, {p['threshold']:g}), "
            f"{refine}, {fusion}){percentile},")


def setting_text(p):
    parts = []
    if p.get("cam_weight") is not None:
        parts.append(f"w {p['cam_weight']:g}, fb {p['feedback_blur']:g}")
    if p["refine"] != "none":
        parts.append(p["refine"])
    if scale(p) != "max":
        parts.append(f"scale {scale(p)}")
    parts.append(f"blur {p['blur']:g}, thr {p['threshold']:g}")
    return ", ".join(parts)


def held_out_by_refinement(r):
    """Held-out GT-known per refinement: each half tuned among that refinement's points, the
    other half read at the chosen point."""
    halves = dict((name, points) for name, points in r["grid"])
    sizes = {f["reported_on"]: f["reported"]["images"] for f in r["folds"]}
    out = {}
    for refine in sorted({p["refine"] for p in halves["even"]}):
        total = 0.0
        for tuned, reported in (("even", "odd"), ("odd", "even")):
            points = [p for p in halves[tuned] if p["refine"] == refine]
            best = max(points, key=lambda p: p["gt_known_loc"])  # first of ties
            other = {key(p): p["gt_known_loc"] for p in halves[reported]}
            total += other[key(best)]
        out[refine] = total / 2
    return out


def best_at_floor(points, floor):
    """`tune`'s choice at a stability floor (`best_point` in crates/eval/src/tune/grid.rs)."""
    qualifies = [p for p in points if p["box_stability"] >= floor]
    if qualifies:
        # The more stable of equally accurate points, then the first.
        return max(qualifies, key=lambda p: (p["gt_known_loc"], p["box_stability"]))
    return max(points, key=lambda p: (p["box_stability"], p["gt_known_loc"]))


def held_out_at_floor(r, floor, keep=lambda p: True):
    """Held-out (GT-known, box stability), each mean of the two folds, at a stability floor;
    each half chooses among the points `keep` accepts."""
    halves = dict((name, points) for name, points in r["grid"])
    acc = stable = 0.0
    for tuned, reported in (("even", "odd"), ("odd", "even")):
        best = best_at_floor([p for p in halves[tuned] if keep(p)], floor)
        other = {key(p): p for p in halves[reported]}[key(best)]
        acc += other["gt_known_loc"] / 2
        stable += other["box_stability"] / 2
    return acc, stable


def stable_table(floors, paths):
    print("| net | method | floor | held-out GT-known | held-out boxes stable |")
    print("|---|---|---|---|---|")
    for r in results(paths):
        for floor in floors:
            acc, stable = held_out_at_floor(r, floor)
            print(f"| {net_name(r['model'])} | {r['method']} | {floor:g} | {100 * acc:.1f} "
                  f"| {100 * stable:.1f} |")


def refine_stable_table(floors, paths):
    """Per method and refinement: the mean GT-known and box stability of that refinement's
    grid points over all images (the same points but for the refinement: a paired comparison),
    and the held-out figures at each floor with each half choosing among them."""
    print("| net | method | refinement | mean over its points | "
          + " | ".join(f"held out, floor {f:g}" for f in floors) + " |")
    print("|---|---|---|---|" + "---|" * len(floors))
    for r in results(paths):
        points = list(whole_set_points(r))
        for refine in sorted({p["refine"] for p, _, _ in points}):
            mine = [(a, st) for p, a, st in points if p["refine"] == refine]
            acc = sum(a for a, _ in mine) / len(mine)
            stable = sum(st for _, st in mine) / len(mine)
            held = [held_out_at_floor(r, f, lambda p: p["refine"] == refine) for f in floors]
            print(f"| {net_name(r['model'])} | {r['method']} | {refine} "
                  f"| {100 * acc:.1f} / {100 * stable:.1f} | "
                  + " | ".join(f"{100 * a:.1f} / {100 * st:.1f}" for a, st in held) + " |")


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("rust", "rust-stable", "table", "refine",
                                                 "stable", "refine-stable"):
        sys.exit(__doc__)
    if sys.argv[1] in ("stable", "refine-stable"):
        table = stable_table if sys.argv[1] == "stable" else refine_stable_table
        table([float(f) for f in sys.argv[2].split(",")], sys.argv[3:])
        return
    if sys.argv[1] == "rust-stable":
        floor = float(sys.argv[2])
        for r in results(sys.argv[3:]):
            p, acc, stable = whole_set_choice(r, floor)
            print(rust_row(net_name(r["model"]), r["method"], p)
                  + f" // {100 * acc:.1f} / {100 * stable:.1f}")
        return
    rows = [(net_name(r["model"]), r["method"], r) for r in results(sys.argv[2:])]
    if sys.argv[1] == "rust":
        for net, method, r in rows:
            print(rust_row(net, method, whole_set_best(r)[0]))
        return
    if sys.argv[1] == "refine":
        by = [held_out_by_refinement(r) for _, _, r in rows]
        refines = [f for f in REFINES if any(f in b for b in by)]
        print("| net | method | " + " | ".join(f"held-out GT-known, {f}" for f in refines) + " |")
        print("|---|---|" + "---|" * len(refines))
        for (net, method, _), b in zip(rows, by):
            print(f"| {net} | {method} | "
                  + " | ".join(f"{100 * b.get(f, float('nan')):.1f}" for f in refines) + " |")
        return
    print("| net | method | setting (all 403 images) | GT-known there (in-sample) "
          "| held-out GT-known | held-out MaxBoxAccV2 | ms / image |")
    print("|---|---|---|---|---|---|---|")
    for net, method, r in rows:
        p, acc = whole_set_best(r)
        held, maxbox = r["held_out_gt_known_loc"], f"{100 * r['held_out_maxbox_acc_v2']:.1f}"
        if floor_of(r) is not None:
            # The folds chose under a floor: the held-out figure without one comes from the
            # grid, which holds no MaxBoxAccV2.
            held, maxbox = held_out_at_floor(r, 0)[0], "-"
        print(f"| {net} | {method} | {setting_text(p)} | {100 * acc:.1f} "
              f"| **{100 * held:.1f}** | {maxbox} | {r['median_ms']:.0f} |")


def floor_of(r):
    """The stability floor a tune's folds chose under (`--stable-boxes`), or None."""
    return (r.get("settings", {}).get("stable_boxes") or {}).get("floor")


if __name__ == "__main__":
    main()
