"""The vectorised candidate generation against a straightforward per-option reference.

The reference is the estimation step written the plain way: per stage, every variant x hardware x
batch x timeout, each replica count scanned with the scalar model (latency.StageQueue.scan, the
one the re-check uses), the same stopping rule, then the quadratic dominance filter on the path
term l_o = mean + w_s (p99 - mean) (planner.estimate.paths, the end-to-end path rule). On seeded
random specs (chains and DAGs, fan-outs, unit caps, engine overhead, several arrival CVs and
timeout quantiles) both must give the same options, in the same order, with every number equal
to 1e-9 relative.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from planner.estimate import flow
from planner.estimate import latency as lat
from planner.estimate.candidates import Sources, build_candidates, stage_rows, timeouts_for
from planner.estimate.paths import path_latency_ms, stage_tail_weights
from planner.spec import HardwareCatalog, PipelineSpec
from profiler.schema import ProfileRow, ProfileTable

_HARDWARE = [("cpu-2", 0.085, 1.0, 1.0), ("cpu-8", 0.34, 0.3, 1.0), ("gpu-t4", 0.526, 0.04, 0.55)]
_REL = 1e-9
_MAX_EXTRA = 64  # candidates._MAX_EXTRA_REPLICAS, restated: the reference must not read the code under test


def _random_inputs(seed: int) -> tuple[PipelineSpec, HardwareCatalog, ProfileTable]:
    rng = np.random.default_rng(seed)
    hws = _HARDWARE[:int(rng.integers(1, 4))]
    catalog = HardwareCatalog.model_validate({"schema_version": 1, "hardware": [
        {"name": n, "kind": "gpu" if "gpu" in n else "cpu", "cores": 4, "gpus": int("gpu" in n), "usd_per_hour": p,
         **({"max_units": int(rng.integers(2, 30))} if rng.random() < 0.4 else {})}
        for n, p, _, _ in hws]})
    batches = [1, 2, 4, 8, 16] if rng.random() < 0.5 else [1, 4, 8, 32]
    rows, stages = [], []
    for s in range(int(rng.integers(1, 5))):
        for v in range(int(rng.integers(1, 4))):
            gflops, accuracy = rng.uniform(0.3, 8.0), float(rng.uniform(0.7, 0.99))
            for name, _, ms_per_gflop, exponent in hws:
                for b in batches:
                    p50 = float((1.0 + ms_per_gflop * 10 * gflops * b ** exponent) * rng.uniform(0.97, 1.03))
                    rows.append(ProfileRow(f"m{s}", f"v{v}", name, b, p50, p50 * float(rng.uniform(1.0, 1.6)),
                                           1000.0 * b / p50 * float(rng.uniform(0.8, 1.05)), accuracy))
        after = sorted({f"s{int(rng.integers(0, s))}" for _ in range(int(rng.integers(1, 3)))}) if s else []
        stage = {"name": f"s{s}", "model": f"m{s}", "after": after, "fanout": float(rng.choice([0.5, 1.0, 2.0, 3.0]))}
        if rng.random() < 0.3:
            stage["max_replicas"] = int(rng.integers(2, 20))
        stages.append(stage)
    spec = PipelineSpec.model_validate({
        "schema_version": 1, "name": f"random-{seed}", "stages": stages, "slo_ms": float(rng.uniform(30, 600)),
        "arrival_rps": float(rng.choice([2, 10, 50, 200, 1000])), "arrival_cv": float(rng.choice([0.0, 0.5, 1.0, 2.0])),
        "batch_sizes": batches, "max_replicas": int(rng.integers(4, 80)),
        "engine_overhead_ms": float(rng.choice([0.0, 1.5])), "max_utilization": float(rng.choice([0.7, 0.9])),
        "batch_timeout_quantiles": sorted(float(q) for q in rng.choice([0.5, 0.9, 0.99], size=2, replace=False)),
    })
    return spec, catalog, ProfileTable(tuple(rows))


def _reference(spec: PipelineSpec, catalog: HardwareCatalog, profiles: ProfileTable):
    """Per stage: (options as (key, numbers) pairs in pruning order, fastest latency, max capacity, the
    arrival scv, least path term)."""
    hardware = catalog.by_name()
    capped = {h.name for h in catalog.hardware if h.max_units is not None}
    parents = {p for s in spec.stages for p in s.after}
    weights = stage_tail_weights(spec)
    out: dict[str, tuple[list, float, float, float, float]] = {}
    for name in spec.topological_order():
        stage = spec.stage(name)
        load = spec.arrival_rps * stage.fanout * stage.champion_share
        r_in = max((max((o[1]["request_scv_out"] for o in out[p][0]), default=out[p][3]) for p in stage.after),
                   default=flow.source_scv(spec))
        batches = stage.batch_sizes or spec.batch_sizes
        max_replicas = stage.max_replicas or spec.max_replicas
        raws, fastest, fastest_path, max_capacity = [], math.inf, math.inf, 0.0
        for (variant, hw_name), by_batch in sorted(stage_rows(spec, stage, catalog, profiles, Sources()).items()):
            hw = hardware[hw_name]
            for batch in [b for b in batches if b in by_batch]:
                row, service = by_batch[batch], flow.batch_service(by_batch, batches, batch)
                max_capacity = max(max_capacity, min(max_replicas, hw.max_units or max_replicas)
                                   * 1000.0 * batch / service.mean_ms[-1])
                first = lat.first_useful_replicas(service, load, spec.max_utilization)
                if not first <= max_replicas:
                    continue
                for tau in timeouts_for(batch, load, spec.batch_timeout_quantiles):
                    queue = lat.StageQueue(service, load, tau, flow.item_scv(r_in, stage.fanout), stage.fanout,
                                           overhead_ms=spec.engine_overhead_ms)
                    for est in queue.scan(int(first), min(max_replicas, int(first) + _MAX_EXTRA)):
                        total = est.latency.total_ms
                        fastest = min(fastest, total)
                        path = path_latency_ms(est.mean_ms, total, weights[name])
                        fastest_path = min(fastest_path, path)
                        if total <= spec.slo_ms and (hw.max_units is None or est.replicas <= hw.max_units):
                            dep = est.departure_scv if name in parents else 0.0
                            raws.append(((est.replicas * hw.usd_per_hour, path, -row.accuracy, dep, total,
                                          variant, hw_name, batch, tau, est.replicas), est, row, service))
                        if est.latency.wait_ms == 0.0 and est.latency.fill_ms <= tau:
                            break
        raws.sort(key=lambda r: r[0])
        kept: list = []
        for raw in raws:
            (cost, path, neg_acc, dep, _, _, hw_name, *_rest) = raw[0]
            group = hw_name if hw_name in capped else "*"
            if not any((k[0][6] if k[0][6] in capped else "*") == group and k[0][0] <= cost and k[0][1] <= path
                       and k[0][2] <= neg_acc and k[0][3] <= dep for k in kept):
                kept.append(raw)
        options = []
        for key, est, row, service in kept:
            dep = key[3]
            options.append((key[5:], {
                "usd_per_hour": key[0], "latency_ms": key[4], "accuracy": row.accuracy,
                "mean_ms": est.mean_ms, "path_latency_ms": key[1],
                "capacity_items_per_s": est.replicas * 1000.0 * row.batch_size / service.mean_ms[-1],
                "utilization": est.utilization, "mean_batch": est.mean_batch, "fill_ms": est.latency.fill_ms,
                "wait_ms": est.latency.wait_ms, "service_ms": est.latency.service_ms,
                "request_scv_out": flow.request_scv_out(r_in, dep, stage.fanout),
            }))
        out[name] = (options, fastest, max_capacity * spec.max_utilization, r_in, fastest_path)
    return out


def _close(a: float, b: float) -> bool:
    return a == b or math.isclose(a, b, rel_tol=_REL)


@pytest.mark.parametrize("seed", range(12))
def test_vectorised_candidates_equal_the_per_option_reference(seed: int):
    spec, catalog, profiles = _random_inputs(seed)
    reference = _reference(spec, catalog, profiles)
    candidates = build_candidates(spec, catalog, profiles)
    assert sum(len(reference[s.stage][0]) for s in candidates.stages) > 0, "a seed with no options tests nothing"
    for stage in candidates.stages:
        options, fastest, max_capacity, r_in, fastest_path = reference[stage.stage]
        assert _close(stage.best_latency_ms, fastest) and _close(stage.max_capacity_items_per_s, max_capacity)
        assert _close(stage.best_path_latency_ms, fastest_path)
        assert _close(stage.request_scv_in, r_in)
        assert [(o.variant, o.hardware, o.batch_size, o.batch_timeout_ms, o.replicas) for o in stage.options] \
            == [key for key, _ in options], f"stage {stage.stage}: a different option set"
        for option, (_, numbers) in zip(stage.options, options):
            ours = {**{k: getattr(option, k) for k in numbers if hasattr(option, k)},
                    "fill_ms": option.latency.fill_ms, "wait_ms": option.latency.wait_ms,
                    "service_ms": option.latency.service_ms}
            for field, value in numbers.items():
                assert _close(ours[field], value), f"stage {stage.stage} {option}: {field} {ours[field]} != {value}"
