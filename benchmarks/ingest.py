"""Benchmark: loading a whole-body PET and CT DICOM series, immunopet against SimpleITK.

Writes a synthetic ⁸⁹Zr whole-body PET series and its CT once into a cache
folder (one file per slice, int16 with per-slice rescale, written by
``immunopet.io.dicom``), then loads each series with immunopet's
``read_dicom_series`` and with SimpleITK's ``ImageSeriesReader``, each load in a
fresh subprocess, and prints the times, their ratio and the peak memory.

Fairness:

* both start from the folder: file discovery and slice sorting are timed for
  both (``find_dicom_files`` + header parse for immunopet,
  ``GetGDCMSeriesFileNames`` for SimpleITK);
* both deliver float32 values with the per-slice Rescale Slope/Intercept
  applied (SimpleITK is asked for ``sitkFloat32`` output);
* every load runs in its own fresh process, so peak memory is attributable and
  no load profits from another's allocations; the tools alternate;
* the page cache is warm for both: the parent reads every file of the series
  just before each load;
* SimpleITK runs with its default number of threads (reported).

Peak memory is the process's resident-set high-water mark during the load minus
its resident set after the imports (Linux ``/proc/self/status``), in MiB and
as a multiple of the float32 volume's bytes.

This is a measurement, not a test: the exit status is 0 whether or not the
targets are met, and 1 only when the two tools disagree about the values or
the geometry of a series.

Usage::

    python benchmarks/ingest.py                      # full size, 3 repeats
    python benchmarks/ingest.py --pet-shape 40,64,64 --ct-shape 40,128,128 --repeats 1
    python benchmarks/ingest.py --profile            # also cProfile one immunopet load
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = HERE / "_cache"
#: Bump when the phantom or the written headers change, to invalidate old caches.
GENERATOR_VERSION = 1
SEED = 20260306
MIB = 1024.0 * 1024.0

#: Targets from the issue.
TARGET_TIME_RATIO = 1.0
TARGET_PEAK_MULTIPLE = 2.0

#: Grid of each series: in-plane pixel spacing and slice spacing, mm.
PET_PIXEL_MM = 4.0
CT_PIXEL_MM = 0.98
SLICE_MM = 2.0
PET_SLICES_PER_BED = 50
PET_BED_DURATION_S = 300.0

INJECTION = datetime(2026, 3, 2, 9, 0, 0)
PET_START = datetime(2026, 3, 6, 10, 0, 0)  # day 4 after injection: a typical ⁸⁹Zr-antibody scan
CT_START = PET_START - timedelta(minutes=3)
PATIENT_ID = "IMMUNOPET-BENCH"

# Phantom labels.
AIR, SOFT, LUNG, LIVER, BONE, BLOOD, SPLEEN, LESION = range(8)
#: Mean activity concentration of each label, Bq/mL (⁸⁹Zr antibody, day 4, 37 MBq).
PET_BQML = np.array([0.0, 1500.0, 400.0, 9000.0, 2500.0, 4500.0, 6000.0, 0.0], dtype=np.float32)
#: Mean Hounsfield units of each label.
CT_HU = np.array([-1000.0, 40.0, -820.0, 55.0, 700.0, 45.0, 50.0, 60.0], dtype=np.float32)
#: Bq/mL per Poisson count: sets the PET noise level (about 5-15 % per voxel).
PET_BQML_PER_COUNT = 40.0
CT_NOISE_HU = 15.0


# --------------------------------------------------------------------------------------
# Phantom
# --------------------------------------------------------------------------------------
def _ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, ax: float, ay: float) -> Any:
    return ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 <= 1.0


def _lesions(rng: np.random.Generator) -> list[tuple[float, float, float, float, float]]:
    """Hot spots (x, y, z, radius mm, Bq/mL): lymph nodes and tumours in the trunk."""
    spots = []
    for _ in range(14):
        x = float(rng.uniform(-120.0, 120.0))
        y = float(rng.uniform(-60.0, 50.0))
        z = float(rng.uniform(-640.0, -250.0))
        radius = float(rng.uniform(5.0, 16.0))
        spots.append((x, y, z, radius, float(rng.uniform(15000.0, 60000.0))))
    return spots


def _labels(z: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Tissue labels of one axial plane at height ``z`` (LPS mm; 0 = top of the head).

    ``x`` (patient left +) and ``y`` (posterior +) are broadcastable grids.
    """
    labels = np.zeros(np.broadcast_shapes(x.shape, y.shape), dtype=np.int8)
    if -190.0 <= z <= -5.0:  # head
        half = np.sqrt(max(0.0, 1.0 - ((z + 100.0) / 98.0) ** 2))
        labels[_ellipse(x, y, 0.0, 0.0, 75.0 * half + 1.0, 95.0 * half + 1.0)] = SOFT
        labels[
            _ellipse(x, y, 0.0, 0.0, 70.0 * half, 90.0 * half)
            & ~_ellipse(x, y, 0, 0, 64 * half, 84 * half)
        ] = BONE
    elif -235.0 <= z < -190.0:  # neck
        labels[_ellipse(x, y, 0.0, 5.0, 55.0, 55.0)] = SOFT
        labels[_ellipse(x, y, 0.0, 30.0, 12.0, 12.0)] = BONE
    elif -650.0 <= z < -235.0:  # trunk
        width = 175.0 if z > -300.0 else 160.0
        labels[_ellipse(x, y, 0.0, 0.0, width, 110.0)] = SOFT
        if -470.0 <= z <= -260.0:
            labels[_ellipse(x, y, -80.0, -5.0, 60.0, 75.0)] = LUNG
            labels[_ellipse(x, y, 80.0, -5.0, 60.0, 75.0)] = LUNG
        if -420.0 <= z <= -330.0:
            labels[_ellipse(x, y, 25.0, -35.0, 45.0, 40.0)] = BLOOD  # heart
        if -550.0 <= z <= -430.0:
            labels[_ellipse(x, y, -75.0, 0.0, 85.0, 65.0)] = LIVER
            labels[_ellipse(x, y, 95.0, 40.0, 30.0, 40.0)] = SPLEEN
        labels[_ellipse(x, y, 0.0, 75.0, 16.0, 16.0)] = BONE  # spine
        labels[_ellipse(x, y, 0.0, 25.0, 11.0, 11.0)] = BLOOD  # aorta
    elif z < -650.0:  # thighs
        for side in (-1.0, 1.0):
            labels[_ellipse(x, y, side * 95.0, 0.0, 78.0, 78.0)] = SOFT
            labels[_ellipse(x, y, side * 95.0, 5.0, 14.0, 14.0)] = BONE
    return labels


def _grid(shape: tuple[int, int, int], pixel_mm: float) -> tuple[np.ndarray, np.ndarray, Any]:
    """In-plane x (columns) and y (rows) coordinates and the head-first affine."""
    _, rows, columns = shape
    x0 = -(columns - 1) / 2.0 * pixel_mm
    y0 = -(rows - 1) / 2.0 * pixel_mm
    x = (x0 + pixel_mm * np.arange(columns, dtype=np.float32))[None, :]
    y = (y0 + pixel_mm * np.arange(rows, dtype=np.float32))[:, None]
    # Slice 0 is at the top of the head and slices go down (−z), as scanners often
    # write whole-body series: both readers have to sort.
    affine = np.array(
        [
            [0.0, 0.0, pixel_mm, x0],
            [0.0, pixel_mm, 0.0, y0],
            [-SLICE_MM, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    return x, y, affine


def _plane_z(affine: np.ndarray, index: int) -> float:
    return float(affine[2, 3] + affine[2, 0] * index)


def make_pet(shape: tuple[int, int, int]) -> Any:
    from scipy.ndimage import gaussian_filter

    from immunopet.image import Quantity, Volume

    rng = np.random.default_rng(SEED)
    x, y, affine = _grid(shape, PET_PIXEL_MM)
    spots = _lesions(rng)
    array = np.empty(shape, dtype=np.float32)
    for index in range(shape[0]):
        z = _plane_z(affine, index)
        plane = PET_BQML[_labels(z, x, y)]
        for sx, sy, sz, radius, bqml in spots:
            if abs(z - sz) < radius:
                r = np.sqrt(radius**2 - (z - sz) ** 2)
                plane[_ellipse(x, y, sx, sy, r, r)] = bqml
        counts = rng.poisson(plane / PET_BQML_PER_COUNT)
        array[index] = counts * PET_BQML_PER_COUNT
    # Reconstruction-like smoothing (about 7 mm FWHM in plane).
    gaussian_filter(array, sigma=(0.7, 0.9, 0.9), output=array)
    np.maximum(array, 0.0, out=array)
    return Volume(array, affine, Quantity.ACTIVITY_CONCENTRATION)


def make_ct(shape: tuple[int, int, int]) -> Any:
    from immunopet.image import Quantity, Volume

    rng = np.random.default_rng(SEED + 1)
    x, y, affine = _grid(shape, CT_PIXEL_MM)
    array = np.empty(shape, dtype=np.float32)
    for index in range(shape[0]):
        labels = _labels(_plane_z(affine, index), x, y)
        plane = CT_HU[labels]
        noise = rng.standard_normal(plane.shape, dtype=np.float32)
        noise *= CT_NOISE_HU
        noise[labels == AIR] *= 0.2
        plane += noise
        np.rint(plane, out=plane)
        array[index] = plane
    return Volume(array, affine, Quantity.HOUNSFIELD)


# --------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------
def _marker(kind: str, shape: tuple[int, int, int]) -> dict[str, Any]:
    return {
        "generator_version": GENERATOR_VERSION,
        "kind": kind,
        "shape": list(shape),
        "seed": SEED,
        "n_files": shape[0],
    }


def _clear_series(folder: Path) -> None:
    """Remove a cached series folder written by this script (IMG*.dcm files only)."""
    if not folder.exists():
        return
    foreign = [p for p in folder.iterdir() if not p.name.startswith("IMG")]
    if foreign:
        raise SystemExit(
            f"{folder} holds files this script did not write ({foreign[0].name}); remove it by hand"
        )
    shutil.rmtree(folder)


def ensure_series(cache: Path, kind: str, shape: tuple[int, int, int], regenerate: bool) -> Path:
    """Write the series once; reuse it while its marker matches."""
    from immunopet.io.dicom import (
        PetSeriesSpec,
        ct_series_datasets,
        pet_series_datasets,
        write_datasets,
    )

    folder = cache / kind
    marker_path = cache / f"{kind}.json"
    wanted = _marker(kind, shape)
    if not regenerate and marker_path.exists() and folder.is_dir():
        try:
            stated = json.loads(marker_path.read_text())
        except ValueError:
            stated = None
        if stated == wanted and len(list(folder.glob("IMG*.dcm"))) == shape[0]:
            print(f"  {kind}: cached in {folder}")
            return folder
    marker_path.unlink(missing_ok=True)
    _clear_series(folder)
    started = time.perf_counter()
    if kind == "pet":
        volume = make_pet(shape)
        spec = PetSeriesSpec(
            nuclide="Zr-89",
            injected_activity_bq=37.0e6,
            injection_datetime=INJECTION,
            series_datetime=PET_START,
            frame_duration_s=PET_BED_DURATION_S,
            weight_kg=72.0,
            height_cm=176.0,
            sex="M",
            radiopharmaceutical="89Zr-DFO-antiCD8 minibody",
            slices_per_bed=PET_SLICES_PER_BED,
            patient_id=PATIENT_ID,
        )
        datasets = pet_series_datasets(volume, spec)
    else:
        volume = make_ct(shape)
        datasets = ct_series_datasets(volume, when=CT_START, patient_id=PATIENT_ID)
    del volume
    write_datasets(datasets, folder)
    del datasets
    marker_path.write_text(json.dumps(wanted, indent=2) + "\n")
    size = sum(p.stat().st_size for p in folder.iterdir()) / MIB
    print(
        f"  {kind}: wrote {shape[0]} files ({size:.0f} MiB) to {folder} "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return folder


def warm_page_cache(folder: Path) -> None:
    """Read every file once so that both tools read from the page cache."""
    for path in sorted(folder.iterdir()):
        with path.open("rb") as stream:
            while stream.read(1 << 22):
                pass


# --------------------------------------------------------------------------------------
# Workers (run in a fresh subprocess each)
# --------------------------------------------------------------------------------------
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as stream:
        for line in stream:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> bool:
    """Reset the resident-set high-water mark (Linux ≥ 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as stream:
            stream.write("5")
    except OSError:
        return False
    return True


def _load_immunopet(folder: str) -> tuple[np.ndarray, np.ndarray]:
    from immunopet.io.dicom import read_dicom_series

    volume = read_dicom_series(folder).volume
    return volume.array, volume.affine


def _sitk_reader(folder: str) -> Any:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    names = reader.GetGDCMSeriesFileNames(folder)
    reader.SetFileNames(names)
    reader.SetOutputPixelType(sitk.sitkFloat32)
    return reader.Execute()


def _sitk_affine(image: Any) -> np.ndarray:
    """The (slice, row, column) → LPS affine of a SimpleITK image (index order x, y, z)."""
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    spacing = image.GetSpacing()
    affine = np.eye(4)
    affine[:3, 0] = direction[:, 2] * spacing[2]
    affine[:3, 1] = direction[:, 1] * spacing[1]
    affine[:3, 2] = direction[:, 0] * spacing[0]
    affine[:3, 3] = image.GetOrigin()
    return affine


def worker_time(tool: str, folder: str) -> dict[str, Any]:
    """Import the tool, then time one load from the folder and record the memory."""
    extra: dict[str, Any] = {}
    if tool == "immunopet":
        import immunopet.io.dicom  # noqa: F401  (import cost is not timed)

        def load() -> Any:
            return _load_immunopet(folder)[0]
    else:
        import SimpleITK as sitk

        extra["threads"] = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
        extra["version"] = sitk.Version.VersionString()

        def load() -> Any:
            image = _sitk_reader(folder)
            return image, sitk.GetArrayViewFromImage(image)

    gc.collect()
    baseline_kib = _status_kib("VmRSS")
    reset = _reset_peak()
    started = time.perf_counter()
    result = load()
    seconds = time.perf_counter() - started
    # ru_maxrss is in kB on Linux; it cannot be reset, so it includes the imports' peak.
    peak_kib = _status_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    array = result if tool == "immunopet" else result[1]
    return {
        "tool": tool,
        "seconds": seconds,
        "baseline_mib": baseline_kib / 1024.0,
        "peak_mib": peak_kib / 1024.0,
        "peak_method": "VmHWM after reset" if reset else "ru_maxrss",
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        **extra,
    }


def worker_check(folder: str) -> dict[str, Any]:
    """Load with both tools and compare values and geometry (not timed)."""
    import SimpleITK as sitk

    ours, ours_affine = _load_immunopet(folder)
    image = _sitk_reader(folder)
    theirs = sitk.GetArrayViewFromImage(image)
    theirs_affine = _sitk_affine(image)
    flipped = False
    if float(ours_affine[:3, 0] @ theirs_affine[:3, 0]) < 0.0:
        # Opposite slice order: reverse SimpleITK's slices and move its origin to the other end.
        flipped = True
        theirs = theirs[::-1]
        theirs_affine = theirs_affine.copy()
        theirs_affine[:3, 3] += (theirs.shape[0] - 1) * theirs_affine[:3, 0]
        theirs_affine[:3, 0] *= -1.0
    result: dict[str, Any] = {
        "shape_ours": list(ours.shape),
        "shape_sitk": list(theirs.shape),
        "flipped": flipped,
    }
    if ours.shape != theirs.shape:
        return {**result, "pass": False, "reason": "shapes differ"}
    spacing_ours = np.linalg.norm(ours_affine[:3, :3], axis=0)
    spacing_theirs = np.linalg.norm(theirs_affine[:3, :3], axis=0)
    origin_diff = float(np.max(np.abs(ours_affine[:3, 3] - theirs_affine[:3, 3])))
    spacing_diff = float(np.max(np.abs(spacing_ours - spacing_theirs)))
    direction_diff = float(
        np.max(np.abs(ours_affine[:3, :3] / spacing_ours - theirs_affine[:3, :3] / spacing_theirs))
    )
    max_diff = 0.0
    peak = 0.0
    for start in range(0, ours.shape[0], 16):
        a = ours[start : start + 16]
        b = np.asarray(theirs[start : start + 16], dtype=np.float32)
        max_diff = max(max_diff, float(np.max(np.abs(a - b))))
        peak = max(peak, float(np.max(np.abs(a))))
    value_ok = max_diff <= 1.0e-3 * peak
    geometry_ok = origin_diff <= 1.0e-2 and spacing_diff <= 1.0e-3 and direction_diff <= 1.0e-4
    return {
        **result,
        "pass": bool(value_ok and geometry_ok),
        "max_abs_diff": max_diff,
        "max_abs_value": peak,
        "origin_diff_mm": origin_diff,
        "spacing_diff_mm": spacing_diff,
        "direction_diff": direction_diff,
        "spacing_mm": spacing_ours.tolist(),
    }


def worker_profile(folder: str, top: int) -> None:
    import cProfile
    import pstats

    import immunopet.io.dicom  # noqa: F401

    profiler = cProfile.Profile()
    profiler.enable()
    _load_immunopet(folder)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------
def _run_worker(*arguments: str) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), *arguments]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(
            f"worker {' '.join(arguments)} failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    if done.stderr.strip():
        result["stderr"] = done.stderr.strip().splitlines()[-1][:200]
    return result


def _shape(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in text.replace("x", ",").split(",")]
    if len(parts) != 3 or min(parts) < 2:
        raise argparse.ArgumentTypeError(f"want SLICES,ROWS,COLUMNS (each ≥ 2), got {text!r}")
    return parts[0], parts[1], parts[2]


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as stream:
            for line in stream:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    with contextlib.suppress(ValueError, OSError):
        memory = (
            f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1024**3:.0f} GiB RAM"
        )
    return f"{cpu}, {os.cpu_count()} CPUs{memory}, {platform.system()} {platform.release()}"


def _fmt_row(cells: list[str], widths: list[int]) -> str:
    return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE,
        help="where the series are written (default: %(default)s)",
    )
    parser.add_argument(
        "--pet-shape",
        type=_shape,
        default=(400, 192, 192),
        help="SLICES,ROWS,COLUMNS (default: 400,192,192)",
    )
    parser.add_argument(
        "--ct-shape",
        type=_shape,
        default=(400, 512, 512),
        help="SLICES,ROWS,COLUMNS (default: 400,512,512)",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="loads per tool and series (default: %(default)s)"
    )
    parser.add_argument(
        "--regenerate", action="store_true", help="rewrite the series even when cached"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile one immunopet load per series"
    )
    parser.add_argument(
        "--worker", choices=("immunopet", "sitk", "check", "profile"), help=argparse.SUPPRESS
    )
    parser.add_argument("--series", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker is not None:
        if args.worker == "check":
            print(json.dumps(worker_check(args.series)))
        elif args.worker == "profile":
            worker_profile(args.series, 15)
        else:
            print(json.dumps(worker_time(args.worker, args.series)))
        return 0
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    started = time.perf_counter()
    print(f"immunopet ingest benchmark, {datetime.now():%Y-%m-%d %H:%M}")
    print(f"machine: {_machine()}; Python {platform.python_version()}")
    print("series:")
    cache = args.cache.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    series = {
        "pet": (ensure_series(cache, "pet", args.pet_shape, args.regenerate), args.pet_shape),
        "ct": (ensure_series(cache, "ct", args.ct_shape, args.regenerate), args.ct_shape),
    }

    rows: list[dict[str, Any]] = []
    all_pass = True
    sitk_info: dict[str, Any] = {}
    for kind, (folder, shape) in series.items():
        print(f"{kind}: timing {args.repeats} load(s) per tool, each in a fresh process ...")
        results: dict[str, list[dict[str, Any]]] = {"immunopet": [], "sitk": []}
        for _ in range(args.repeats):
            for tool in ("immunopet", "sitk"):
                warm_page_cache(folder)
                result = _run_worker("--worker", tool, "--series", str(folder))
                if list(result["shape"]) != list(shape) or result["dtype"] != "float32":
                    raise SystemExit(
                        f"{tool} returned {result['dtype']} {result['shape']} for {kind}"
                    )
                results[tool].append(result)
                if tool == "sitk":
                    sitk_info = {k: result[k] for k in ("threads", "version")}
        check = _run_worker("--worker", "check", "--series", str(folder))
        all_pass &= bool(check["pass"])
        volume_mib = float(np.prod(shape)) * 4 / MIB
        row: dict[str, Any] = {
            "kind": kind,
            "shape": shape,
            "volume_mib": volume_mib,
            "check": check,
        }
        for tool, runs in results.items():
            times = [r["seconds"] for r in runs]
            peaks = [r["peak_mib"] - r["baseline_mib"] for r in runs]
            row[tool] = {
                "best": min(times),
                "median": statistics.median(times),
                "peak": max(peaks),
                "baseline": statistics.median(r["baseline_mib"] for r in runs),
                "method": runs[0]["peak_method"],
                "times": times,
            }
        rows.append(row)
        if args.profile:
            warm_page_cache(folder)
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker",
                "profile",
                "--series",
                str(folder),
            ]
            print(f"--- cProfile of one immunopet load of the {kind} series ---")
            sys.stdout.flush()
            subprocess.run(command, check=True)

    print()
    print(
        f"SimpleITK {sitk_info.get('version', '?')} ImageSeriesReader, GetGDCMSeriesFileNames + "
        f"SetOutputPixelType(sitkFloat32), {sitk_info.get('threads', '?')} threads (its default); "
        "immunopet read_dicom_series (float32). Both from the folder, warm page cache, "
        "fresh process per load; times in s (best / median of "
        f"{args.repeats}); peak = resident-set high-water mark during the load minus RSS after imports."
    )
    header = [
        "series",
        "shape",
        "volume MiB",
        "immunopet s (best/med)",
        "SimpleITK s (best/med)",
        "ratio best (med)",
        "immunopet peak MiB (×vol)",
        "SimpleITK peak MiB (×vol)",
        "time ≤1.0×",
        "peak ≤2×vol",
    ]
    table = []
    for row in rows:
        ours, theirs = row["immunopet"], row["sitk"]
        ratio_best = ours["best"] / theirs["best"]
        ratio_median = ours["median"] / theirs["median"]
        multiple_ours = ours["peak"] / row["volume_mib"]
        multiple_theirs = theirs["peak"] / row["volume_mib"]
        table.append(
            [
                row["kind"].upper(),
                "×".join(str(n) for n in row["shape"]),
                f"{row['volume_mib']:.0f}",
                f"{ours['best']:.2f} / {ours['median']:.2f}",
                f"{theirs['best']:.2f} / {theirs['median']:.2f}",
                f"{ratio_best:.2f} ({ratio_median:.2f})",
                f"{ours['peak']:.0f} ({multiple_ours:.2f}×)",
                f"{theirs['peak']:.0f} ({multiple_theirs:.2f}×)",
                "yes" if ratio_median <= TARGET_TIME_RATIO else "NO",
                "yes" if multiple_ours <= TARGET_PEAK_MULTIPLE else "NO",
            ]
        )
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)]
    print(_fmt_row(header, widths))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for cells in table:
        print(_fmt_row(cells, widths))
    print(
        "(the time target is judged on the median ratio; the peak target on immunopet's worst run)"
    )
    print()
    for row in rows:
        check = row["check"]
        verdict = "PASS" if check["pass"] else "FAIL"
        if "max_abs_diff" in check:
            detail = (
                f"max |immunopet − SimpleITK| = {check['max_abs_diff']:.3g} "
                f"(max |value| {check['max_abs_value']:.4g}, tolerance 1e-3×), "
                f"origin Δ {check['origin_diff_mm']:.2g} mm, spacing Δ {check['spacing_diff_mm']:.2g} mm, "
                f"direction Δ {check['direction_diff']:.2g}"
                f"{', SimpleITK slice order reversed to compare' if check['flipped'] else ''}"
            )
        else:
            detail = f"{check.get('reason')}: {check['shape_ours']} vs {check['shape_sitk']}"
        print(f"cross-check {row['kind'].upper()}: {verdict}: {detail}")
    for row in rows:
        listing = "; ".join(
            f"{tool} " + ", ".join(f"{t:.2f}" for t in row[tool]["times"])
            for tool in ("immunopet", "sitk")
        )
        print(f"{row['kind'].upper()} load times, s, in run order: {listing}")
    print(
        f"import baseline RSS: immunopet {rows[0]['immunopet']['baseline']:.0f} MiB, "
        f"SimpleITK {rows[0]['sitk']['baseline']:.0f} MiB (not counted in the peaks; "
        f"{rows[0]['immunopet']['method']})"
    )
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0 if all_pass else 1


if __name__ == "__main__":
    sys.exit(main())
