"""Benchmark: voxelwise Patlak on a whole-body volume, 4 timepoints, against a per-voxel peer.

What is timed: ``Patlak1983(plasma).fit_voxels(times, tissue)`` on a float32 array of shape
(4, 400, 192, 192) (236 MB): K_i, intercept and both standard errors for every voxel. The input
(⁸⁹Zr-IgG plasma curve of ``TwoTissueVectorModel``, a 1-h plasma sample plus blood-pool values
on days 1, 3, 5, 7; voxel K_i and V₀ drawn at random, 5 % noise) is built before the clock
starts.

Peer: ``scipy.stats.linregress`` on the same Patlak coordinates, one voxel at a time (the
unweighted least-squares line with the standard errors of slope and intercept, i.e. the same
estimator), on a subset of voxels; its voxels/s are extrapolated. Both results are compared on
that subset (PASS when they agree to 1e-4 relative to the K_i range).

Memory: the peak of NumPy allocations during one fit (``tracemalloc``; NumPy reports its
buffers to it) and the process's ``ru_maxrss``. Bandwidth bound: the fit must read the input
once and write four maps, ``(T + 4) × voxels × 4`` bytes; a ``numpy.copyto`` of the input
measures what the machine moves per second (read + write), and ``bytes / copy bandwidth`` is the
fastest the fit could be.

This is a measurement, not a test: the exit status is 1 only when the cross-check fails.

Recovery studies (accuracy, not speed; ``--stein`` and ``--patlak`` run them instead of the
timing):

* ``--stein``: Stein 2019 fits (:func:`~immunopet.kinetics.fit_stein2019`) to 6 (or 7) noisy
  blood samples of patients drawn from the Table 1 population (all six parameters lognormal
  with the Table 1 ω²), lognormal assay noise of 5-25 % CV, three sampling schedules, the
  population terminal phase (default) against FB and β held. Prints the median |relative
  error| of Tmax and Cmax and the share of patients within 10 %.
* ``--patlak``: Patlak K_i of the simulator's ⁸⁹Zr-IgG tumour
  (:class:`~immunopet.tracers.TwoTissueVectorModel`, label loss T½ 300 h) from 3 scans with a
  blood-pool input and a 1-h plasma sample, 10 % tissue and 5 % blood noise: bias and 95 %
  interval coverage with the label-loss correction (rate known, or misstated by ±33 %) and
  with the classic 1983 plot.

Usage::

    python benchmarks/kinetics.py                       # full size, 3 repeats
    python benchmarks/kinetics.py --shape 40,64,64      # smoke run
    python benchmarks/kinetics.py --stein               # recovery study, 1000 patients
    python benchmarks/kinetics.py --patlak              # Monte Carlo, 4000 realisations
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
import tracemalloc

import numpy as np
from scipy import stats

from immunopet.errors import InputError
from immunopet.kinetics import (
    Patlak1983,
    PlasmaInput,
    Stein2019CellularKinetics,
    fit_stein2019,
    ki_from_unit,
)
from immunopet.tracers import TwoTissueVectorModel, vector_pharmacokinetics
from immunopet.units import S_PER_DAY, S_PER_HOUR

SEED = 0
MIB = 1024.0 * 1024.0
#: Target from the issue: 192 x 192 x 400 voxels, 4 timepoints, on 2 cores.
TARGET_SECONDS = 5.0
SCAN_DAYS = (1.0, 3.0, 5.0, 7.0)
SAMPLE_HOURS = (1.0,)
#: Relative noise of the synthetic voxel values.
NOISE = 0.05
#: Voxel K_i range, µL/g/h (Jauw 2019 organ values 0.2-1.1; tumour a few µL/g/h).
KI_RANGE_UL_PER_G_PER_H = (0.0, 8.0)
INTERCEPT_RANGE_ML_PER_G = (0.02, 0.4)


def build_input() -> tuple[np.ndarray, PlasmaInput]:
    model = TwoTissueVectorModel(vector_pharmacokinetics("igg"))
    scans_s = np.array(SCAN_DAYS) * S_PER_DAY
    samples_s = np.array(SAMPLE_HOURS) * S_PER_HOUR
    plasma = PlasmaInput.from_image_and_samples(
        scans_s,
        model.blood_percent_id_per_g(scans_s),
        model.body.haematocrit,
        sample_times_s=samples_s,
        sample_plasma_bq_per_ml=model.plasma_percent_id_per_ml(samples_s),
    )
    return scans_s, plasma


def build_tissue(
    shape: tuple[int, int, int], times_s: np.ndarray, plasma: PlasmaInput
) -> np.ndarray:
    """(T, *shape) float32 tissue values on Patlak lines with random K_i, V0 and noise."""
    rng = np.random.default_rng(SEED)
    x, _ = Patlak1983(plasma).coordinates(times_s, np.ones(times_s.size))
    cp = plasma.concentration(times_s)
    tissue = np.empty((times_s.size, *shape), dtype=np.float32)
    low, high = (float(ki_from_unit(v, "uL/g/h")) for v in KI_RANGE_UL_PER_G_PER_H)
    for s in range(shape[0]):  # slab by slab: little memory beyond the result
        ki = rng.uniform(low, high, shape[1:])
        v0 = rng.uniform(*INTERCEPT_RANGE_ML_PER_G, shape[1:])
        for t in range(times_s.size):
            clean = (ki * x[t] + v0) * cp[t]
            tissue[t, s] = clean * (1.0 + NOISE * rng.standard_normal(shape[1:]))
    return tissue


def copy_bandwidth_gb_per_s(array: np.ndarray, repeats: int) -> float:
    """Bytes read + written per second by numpy.copyto of ``array`` (best of ``repeats``)."""
    target = np.empty_like(array)
    np.copyto(target, array)  # first touch outside the clock
    best = min(_timed(lambda: np.copyto(target, array)) for _ in range(repeats))
    return 2.0 * array.nbytes / best / 1e9


def _timed(call: object) -> float:
    start = time.perf_counter()
    call()  # type: ignore[operator]
    return time.perf_counter() - start


def peer_linregress(
    times_s: np.ndarray, plasma: PlasmaInput, tissue: np.ndarray, n_voxels: int
) -> tuple[float, np.ndarray, np.ndarray]:
    """scipy.stats.linregress per voxel on the first ``n_voxels``: (seconds, slopes, SE)."""
    flat = tissue.reshape(times_s.size, -1)[:, :n_voxels].astype(np.float64)
    x, _ = Patlak1983(plasma).coordinates(times_s, np.ones(times_s.size))
    inverse_cp = 1.0 / plasma.concentration(times_s)
    slopes = np.empty(n_voxels)
    errors = np.empty(n_voxels)
    start = time.perf_counter()
    for voxel in range(n_voxels):
        result = stats.linregress(x, flat[:, voxel] * inverse_cp)
        slopes[voxel] = result.slope
        errors[voxel] = result.stderr
    return time.perf_counter() - start, slopes, errors


#: Stein 2019 Table 1 inter-individual variances ω² of the log parameters (car_t_fit.toml).
STEIN_OMEGA2 = {
    "fold_expansion": 2.4,
    "tmax_d": 0.38,
    "cmax_copies_per_ug": 0.65,
    "alpha_per_day": 0.91,
    "beta_per_day": 0.86,
    "fb": 0.8,
}
STEIN_SCHEDULES = {
    "days 1,4,7,10,14,28": (1.0, 4.0, 7.0, 10.0, 14.0, 28.0),
    "days 2,5,8,11,14,21": (2.0, 5.0, 8.0, 11.0, 14.0, 21.0),
    "days 1,4,7,10,14,21,28 (7)": (1.0, 4.0, 7.0, 10.0, 14.0, 21.0, 28.0),
}
STEIN_CVS = (0.05, 0.10, 0.15, 0.20, 0.25)


def stein_patients(rng: np.random.Generator, n: int) -> list[Stein2019CellularKinetics]:
    """Patients of the Stein 2019 population (redrawn until the parameters are valid)."""
    typical = Stein2019CellularKinetics.published()
    patients: list[Stein2019CellularKinetics] = []
    while len(patients) < n:
        values = {
            name: getattr(typical, name) * np.exp(np.sqrt(omega2) * rng.standard_normal())
            for name, omega2 in STEIN_OMEGA2.items()
        }
        try:
            patients.append(Stein2019CellularKinetics(**values))
        except InputError:
            continue
    return patients


def stein_study(n_patients: int) -> None:
    """Median |error| of Tmax and Cmax over the population, per schedule, noise and estimator."""
    print(
        f"Stein 2019 recovery: {n_patients} patients of the Table 1 population per row, "
        "lognormal assay noise, prior stein2019 (MAP), no bootstrap"
    )
    print(
        f"{'schedule':28s} {'CV':>4s} {'terminal':>10s} | {'Tmax med':>8s} {'<=10%':>5s} | "
        f"{'Cmax med':>8s} {'<=10%':>5s}"
    )
    for label, days in STEIN_SCHEDULES.items():
        times = np.array(days)
        for cv in STEIN_CVS:
            rng = np.random.default_rng(SEED)
            patients = stein_patients(rng, n_patients)
            sigma = np.sqrt(np.log1p(cv**2))
            data = [
                p.concentration(times) * np.exp(sigma * rng.standard_normal(times.size))
                for p in patients
            ]
            for phase in ("population", "fixed"):
                fits = [
                    fit_stein2019(times, y, relative_sd=cv, n_bootstrap=0, terminal_phase=phase)  # type: ignore[arg-type]
                    for y in data
                ]
                tmax = np.array(
                    [
                        abs(f.tmax_d.value / p.tmax_d - 1)
                        for f, p in zip(fits, patients, strict=True)
                    ]
                )
                cmax = np.array(
                    [
                        abs(f.cmax.value / p.cmax_copies_per_ug - 1)
                        for f, p in zip(fits, patients, strict=True)
                    ]
                )
                print(
                    f"{label:28s} {100 * cv:3.0f}% {phase:>10s} | {100 * np.median(tmax):7.1f}% "
                    f"{100 * np.mean(tmax <= 0.1):4.0f}% | {100 * np.median(cmax):7.1f}% "
                    f"{100 * np.mean(cmax <= 0.1):4.0f}%"
                )


def stein_information(n_patients: int, replicates: int = 100) -> None:
    """Posterior spread of ln Cmax against the fit's error: how much six samples can tell.

    The fit is the MAP estimate with the population prior the patients are drawn from; its
    randomised-MAP bootstrap gives the posterior SD of ln Cmax. An ideal estimator's median
    |error| is about 0.674 x that SD (Gaussian posterior): the floor no estimator beats.
    """
    times = np.array(STEIN_SCHEDULES["days 1,4,7,10,14,28"])
    print(
        f"Stein 2019 information limit: {n_patients} patients, days 1,4,7,10,14,28, "
        f"{replicates} bootstrap replicates each"
    )
    for cv in (0.10, 0.20):
        rng = np.random.default_rng(SEED)
        patients = stein_patients(rng, n_patients)
        sigma = np.sqrt(np.log1p(cv**2))
        errors, spreads = [], []
        for patient in patients:
            y = patient.concentration(times) * np.exp(sigma * rng.standard_normal(times.size))
            fit = fit_stein2019(times, y, relative_sd=cv, n_bootstrap=replicates)
            errors.append(np.log(fit.cmax.value / patient.cmax_copies_per_ug))
            spreads.append(np.log(fit.cmax.ci_high / fit.cmax.ci_low) / (2 * 1.96))
        error, spread = np.array(errors), np.array(spreads)
        print(
            f"  CV {100 * cv:.0f} %: fit median |Cmax error| "
            f"{100 * np.median(np.abs(np.expm1(error))):.1f} %, median posterior SD of ln Cmax "
            f"{np.median(spread):.3f} -> ideal median |error| ~ {100 * 0.674 * np.median(spread):.1f} %"
        )


def patlak_study(realisations: int) -> None:
    """Bias and coverage of K_i from 3 scans of the simulator's 89Zr-IgG tumour."""
    tissue_noise, blood_noise = 0.10, 0.05
    model = TwoTissueVectorModel(vector_pharmacokinetics("igg"), antigen_density=1.0)
    pk = model.parameters
    truth = pk.ki_ml_per_g_per_s["tumour"] + pk.tumour_specific_ki_ml_per_g_per_s
    loss = model.label_loss_rate_per_s
    print(
        f"Patlak K_i of the 89Zr-IgG tumour (truth {float(truth) * 3.6e6:.2f} uL/g/h), "
        f"{realisations} realisations, tissue noise {100 * tissue_noise:.0f} %, blood "
        f"{100 * blood_noise:.0f} %, blood-pool input + 1-h plasma sample"
    )
    print(f"{'scan days':12s} {'label loss':>22s} | {'bias':>7s} {'MC SE':>6s} {'coverage':>8s}")
    for days in ((3.0, 5.0, 7.0), (1.0, 3.0, 6.0), (2.0, 4.0, 7.0)):
        scans = np.array(days) * S_PER_DAY
        sample = np.array([1.0 * S_PER_HOUR])
        rng = np.random.default_rng(SEED)
        shape = (realisations, scans.size)
        blood = model.blood_percent_id_per_g(scans) * (1 + blood_noise * rng.standard_normal(shape))
        early = model.plasma_percent_id_per_ml(sample) * (
            1 + blood_noise * rng.standard_normal((realisations, 1))
        )
        tissue = model.tissue_percent_id_per_g("tumour", scans) * (
            1 + tissue_noise * rng.standard_normal(shape)
        )
        plasma = PlasmaInput.from_image_and_samples(
            scans,
            blood,
            model.body.haematocrit,
            blood_noise * blood,
            sample_times_s=sample,
            sample_plasma_bq_per_ml=early,
            sample_sd_bq_per_ml=blood_noise * early,
        )
        for label, rate in (
            ("known (T1/2 300 h)", loss),
            ("stated T1/2 200 h", loss * 1.5),
            ("stated T1/2 450 h", loss / 1.5),
            ("none (1983 plot)", 0.0),
        ):
            fit = Patlak1983(plasma, loss_rate_per_s=rate).fit(scans, tissue, tissue_noise * tissue)
            ki = fit.ki_ml_per_g_per_s
            low, high = fit.ki_interval(0.95)
            bias = float(np.mean(ki)) / truth - 1.0
            mc_se = float(np.std(ki)) / np.sqrt(realisations) / truth
            coverage = float(np.mean((low <= truth) & (truth <= high)))
            print(
                f"{','.join(f'{d:g}' for d in days):12s} {label:>22s} | {100 * bias:+6.1f}% "
                f"{100 * mc_se:5.1f}% {100 * coverage:7.1f}%"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="400,192,192", help="slices,rows,columns")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peer-voxels", type=int, default=20000)
    parser.add_argument("--stein", action="store_true", help="Stein 2019 recovery study")
    parser.add_argument("--patlak", action="store_true", help="Patlak bias/coverage study")
    parser.add_argument(
        "--stein-information", action="store_true", help="Stein Cmax posterior spread study"
    )
    parser.add_argument("--patients", type=int, default=1000, help="patients per --stein row")
    parser.add_argument("--realisations", type=int, default=4000, help="--patlak realisations")
    args = parser.parse_args(argv)
    if args.stein_information:
        stein_information(150)
        return 0
    if args.stein or args.patlak:
        if args.stein:
            stein_study(args.patients)
        if args.patlak:
            patlak_study(args.realisations)
        return 0
    shape = tuple(int(v) for v in args.shape.split(","))
    if len(shape) != 3:
        parser.error("--shape takes slices,rows,columns")

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}"
    )
    times_s, plasma = build_input()
    build_start = time.perf_counter()
    tissue = build_tissue(shape, times_s, plasma)  # type: ignore[arg-type]
    voxels = int(np.prod(shape))
    print(
        f"input: {tissue.shape} float32, {tissue.nbytes / MIB:.0f} MiB, built in "
        f"{time.perf_counter() - build_start:.1f} s"
    )
    patlak = Patlak1983(plasma)

    # Warm-up on one slab (first-call costs: lazy SciPy import, page faults of small buffers).
    patlak.fit_voxels(times_s, tissue[:, :1])

    durations = []
    maps = None
    for repeat in range(args.repeats):
        maps = None  # free the previous maps so each repeat allocates the same
        if repeat == 0:
            tracemalloc.start()
        start = time.perf_counter()
        maps = patlak.fit_voxels(times_s, tissue)
        durations.append(time.perf_counter() - start)
        if repeat == 0:
            _, traced_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    assert maps is not None
    best, median = min(durations), statistics.median(durations)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    bandwidth = copy_bandwidth_gb_per_s(tissue, args.repeats)
    bytes_needed = (times_s.size + 4) * voxels * tissue.itemsize
    bound_s = bytes_needed / (bandwidth * 1e9)

    n_peer = min(args.peer_voxels, voxels)
    peer_s, peer_slopes, peer_errors = peer_linregress(times_s, plasma, tissue, n_peer)
    peer_rate = n_peer / peer_s
    ours_rate = voxels / median
    ki_flat = maps.ki_ml_per_g_per_s.reshape(-1)[:n_peer].astype(np.float64)
    se_flat = maps.ki_se_ml_per_g_per_s.reshape(-1)[:n_peer].astype(np.float64)
    ki_span = float(np.ptp(peer_slopes))
    ki_diff = float(np.max(np.abs(ki_flat - peer_slopes))) / ki_span
    se_diff = float(np.max(np.abs(se_flat - peer_errors) / peer_errors))
    passed = ki_diff <= 1e-4 and se_diff <= 1e-3

    print()
    print(
        f"immunopet fit_voxels: best {best:.3f} s, median {median:.3f} s "
        f"({args.repeats} runs); {ours_rate / 1e6:.1f} M voxels/s"
    )
    print(
        f"  peak NumPy allocations during a fit (tracemalloc): {traced_peak / MIB:.0f} MiB "
        f"= {traced_peak / tissue.nbytes:.2f} x input (the four float32 maps are "
        f"{4 * voxels * 4 / MIB:.0f} MiB); process ru_maxrss {rss_mib:.0f} MiB"
    )
    print(
        f"  bandwidth: numpy copy {bandwidth:.1f} GB/s (read + write); the fit must move "
        f"{bytes_needed / 1e9:.2f} GB (input once + 4 maps) -> bound {bound_s:.3f} s; "
        f"achieved {bytes_needed / median / 1e9:.2f} GB/s = {100 * bound_s / median:.0f} % "
        "of the bound"
    )
    print(
        f"peer scipy.stats.linregress per voxel: {n_peer} voxels in {peer_s:.2f} s = "
        f"{peer_rate / 1e3:.1f} k voxels/s -> {voxels / peer_rate / 60:.1f} min for the volume"
    )
    print(f"ratio (immunopet / peer voxels per second): {ours_rate / peer_rate:.0f} x")
    print(
        f"cross-check on {n_peer} voxels: max |dK_i| / K_i range {ki_diff:.1e}, "
        f"max relative dSE {se_diff:.1e}: {'PASS' if passed else 'FAIL'}"
    )
    print(
        f"target <= {TARGET_SECONDS:.0f} s (median): {'yes' if median <= TARGET_SECONDS else 'no'}"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
