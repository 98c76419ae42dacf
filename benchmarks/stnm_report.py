"""The verdicts and the printed tables of benchmarks/stnm.py (kept apart from the timing code)."""
import math

# The targets, defined for an H200: speed-ups over the eager reference, and the op's
# forward+backward time over the memory floor at the largest case.
TARGETS = [((64, 3, 32, 32), "speedup", 8.0), ((1024, 3, 64, 64), "speedup", 5.0)]
FLOOR_TARGET = 2.0


def evaluate_targets(cases):
    by_shape = {tuple(c["shape"]): c for c in cases}
    verdicts = []
    for shape, _, threshold in TARGETS:
        case = by_shape.get(shape)
        value = case.get("speedup_ext_vs_ref_eager") if case else None
        verdicts.append({"target": f"ext >= {threshold:g}x faster than eager ref at {'x'.join(map(str, shape))}",
                         "value": value, "met": value is not None and value >= threshold})
    largest = max(cases, key=lambda c: math.prod(c["shape"]), default=None)
    value = largest.get("ext_eager_over_floor") if largest else None
    verdicts.append({"target": f"ext within {FLOOR_TARGET:g}x of the memory floor at the largest case "
                               f"({'x'.join(map(str, largest['shape'])) if largest else '-'})",
                     "value": value, "met": value is not None and value <= FLOOR_TARGET})
    return verdicts


def fmt(ms):
    if ms is None:
        return "-"
    return f"{ms * 1e3:.0f} us" if ms < 1 else f"{ms:.2f} ms"


def print_table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    for row in [header] + rows:
        print("  ".join(str(v).rjust(w) for v, w in zip(row, widths)))


def print_summary(report):
    meta = report["meta"]
    print(f"\nSTNM forward+backward on {meta['device_name']} (torch {meta['torch']}); "
          f"floor basis: {meta['floor_basis'] or 'n/a'}; ext = variant {meta['variants'][0]!r}")
    rows = []
    for case in report["cases"]:
        t, err = case["timings_ms"], case["errors"]
        cell = lambda k: fmt(t.get(k)) if k in t else ("failed" if k in err else "-")  # noqa: E731
        rows.append(["x".join(map(str, case["shape"])), fmt(case["floor_ms"]), cell("ref_eager"),
                     cell("ref_compiled"), cell("ext_eager"), cell("ext_compiled"),
                     f"{case['speedup_ext_vs_ref_eager']:.1f}x" if "speedup_ext_vs_ref_eager" in case else "-",
                     f"{case['ext_eager_over_floor']:.2f}" if "ext_eager_over_floor" in case else "-"])
    print_table(["case", "floor", "ref eager", "ref compiled", "ext eager", "ext compiled",
                 "ext vs ref", "ext/floor"], rows)
    rows = []
    for case in report["cases"]:
        for label, v in case["variants"].items():
            rows.append(["x".join(map(str, case["shape"])), label, fmt(v["fwd_bwd_ms"]), fmt(v["fwd_ms"]),
                         fmt(v["bwd_ms"]), fmt(v.get("fwd_device_ms")), fmt(v.get("bwd_device_ms")),
                         f"{v['speedup_vs_ref_eager']:.1f}x" if "speedup_vs_ref_eager" in v else "-",
                         f"{v['over_floor']:.2f}" if "over_floor" in v else "-",
                         f"{v['max_rel_error_vs_ref']:.0e}"])
    if rows:
        print("\nKernel variants (fwd and bwd alone; device = CUDA-graph replay, no host share):")
        print_table(["case", "variant", "fwd+bwd", "fwd", "bwd", "fwd device", "bwd device",
                     "vs ref", "/floor", "max err"], rows)
    for case in report["cases"]:
        for name, message in case["errors"].items():
            print(f"  {'x'.join(map(str, case['shape']))} {name}: {message}")
    print("Targets (defined for an H200):")
    for verdict in report["targets"]:
        value = "-" if verdict["value"] is None else f"{verdict['value']:.2f}"
        print(f"  [{'met' if verdict['met'] else 'NOT met'}] {verdict['target']}: {value}")
