"""The ``study.yaml`` a clinical site would write for a simulated patient.

Only facts a site knows go in: the patient ID and species, the CAR T-cell product, target and
infusion date-time, the tracers used (agent, target, vector format, nuclide), the lesion tracer
and the body weight at each visit. Ground truth (activities, cell counts, antigen densities,
lesions) stays in ``truth.json`` and never reaches the analysis through the manifest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from immunopet.io.discovery import is_fdg
from immunopet.io.manifest import FDG_KEY

__all__ = ["manifest_for_simulated_patient"]


def manifest_for_simulated_patient(truth: dict[str, Any]) -> dict[str, Any]:
    """Return the manifest content (schema ``docs/study_manifest.md``) of a simulated patient.

    Parameters
    ----------
    truth : dict
        The content of the simulator's ``truth.json`` (DICOM or PET-BIDS export):
        ``truth["patient"]`` gives the patient ID, species, weight and infusion date-time and
        the CAR target (``car_t_target``; the product name from ``car_t_product`` when the
        simulator records it); ``truth["scans"]`` the tracers and the scan date-times.

    Returns
    -------
    dict
        JSON- and YAML-ready (date-times as ISO 8601 strings): ``patient_id``, ``species``,
        ``car_t`` (``product`` if known, ``target``, ``infusion_datetime``), ``tracers``
        (one per tracer key, in order of first use), ``lesion_tracer`` (``"fdg"`` when an
        FDG scan exists) and ``body_weight_kg`` (the patient's weight on each scan date; the
        simulator keeps one weight for the whole course). Write it with
        :func:`immunopet.io.manifest.write_manifest`.

    Examples
    --------
    >>> truth = {
    ...     "patient": {"patient_id": "P0001", "species": "adult", "weight_kg": 70.0,
    ...                 "infusion_datetime": "2024-05-06T09:30:00", "car_t_target": "CD19"},
    ...     "scans": [{"tracer": "fdg", "agent": "[18F]FDG", "target": "glucose metabolism",
    ...                "vector_format": "small_molecule", "nuclide": "F-18",
    ...                "scan_datetime": "2024-06-03T10:30:00"}],
    ... }
    >>> manifest = manifest_for_simulated_patient(truth)
    >>> manifest["lesion_tracer"], manifest["body_weight_kg"]
    ('fdg', [{'date': '2024-06-03', 'weight_kg': 70.0}])

    """
    patient = truth["patient"]
    car_t: dict[str, Any] = {}
    if patient.get("car_t_product"):
        car_t["product"] = patient["car_t_product"]
    car_t["target"] = patient["car_t_target"]
    car_t["infusion_datetime"] = datetime.fromisoformat(patient["infusion_datetime"]).isoformat()
    if patient.get("infused_cells") is not None:
        car_t["infused_cells"] = float(patient["infused_cells"])
    tracers: dict[str, dict[str, Any]] = {}
    dates: dict[str, None] = {}
    for scan in sorted(truth["scans"], key=lambda item: str(item["scan_datetime"])):
        key = str(scan["tracer"])
        tracers.setdefault(
            key,
            {
                "key": key,
                "agent": scan["agent"],
                "target": scan["target"],
                "vector_format": scan["vector_format"],
                "nuclide": scan["nuclide"],
            },
        )
        # A cell label and its calibration are what the site knows of its own product.
        if scan.get("cell_label"):
            tracers[key]["cell_label"] = scan["cell_label"]
            if scan.get("reporter_uptake_bq_per_cell") is not None:
                uptake = float(scan["reporter_uptake_bq_per_cell"])
                tracers[key]["reporter_uptake_bq_per_cell"] = uptake
        dates[datetime.fromisoformat(scan["scan_datetime"]).date().isoformat()] = None
    manifest: dict[str, Any] = {
        "patient_id": patient["patient_id"],
        "species": patient["species"],
        "car_t": car_t,
    }
    fdg = [key for key, tracer in tracers.items() if is_fdg(str(tracer["agent"]))]
    if fdg:
        manifest["lesion_tracer"] = FDG_KEY if FDG_KEY in fdg else fdg[0]
    manifest["tracers"] = list(tracers.values())
    # The scanner's spatial resolution is a fact a site knows (acceptance testing, NEMA NU 2);
    # written only when every scan shares it.
    resolutions = {scan.get("resolution_fwhm_mm") for scan in truth["scans"]}
    if len(resolutions) == 1 and (fwhm := resolutions.pop()) is not None:
        manifest["psf_fwhm_mm"] = float(fwhm)
    manifest["body_weight_kg"] = [
        {"date": day, "weight_kg": float(patient["weight_kg"])} for day in dates
    ]
    return manifest
