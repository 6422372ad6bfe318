"""Lesion matching across timepoints and lesion tracks with stable tracking IDs.

Lesions of each follow-up are matched to the *tracks* built so far (every lesion seen at an
earlier timepoint) by an optimal one-to-one assignment (Hungarian algorithm,
:func:`scipy.optimize.linear_sum_assignment`) on the distance between centroids after
registration to the baseline frame. A pair can match only when the distance is at most the
gate ``max(gate_mm, radius_a + radius_b)`` (radius of the sphere of the lesion's volume), so
a lesion that moved a little or grew is kept, and a new lesion near an old one is not
swallowed. The cost adds a small overlap term (1 − Dice of the two equivalent spheres) so that
between equally near candidates the one of similar size wins. Unmatched lesions start new
tracks; tracks without a lesion at a later timepoint are *vanished* from then on. The
candidate of a track is its most recent observation.

Tracking IDs (``L001``, ``L002``…) are given in order of first appearance, then from head
to feet (decreasing S coordinate) within a timepoint, so the same study always gets the same
IDs.

References: Kuhn HW, The Hungarian method for the assignment problem, Naval Res Logist Q
1955;2:83-97.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["LesionObservation", "LesionTrack", "track_lesions"]

#: Default matching gate, mm (a lesion may move this much between scans after registration).
DEFAULT_GATE_MM = 20.0
_OVERLAP_WEIGHT_MM = 5.0


@dataclass(frozen=True)
class LesionObservation:
    """One detected lesion at one timepoint, in baseline coordinates.

    Parameters
    ----------
    timepoint_id : str
        The timepoint it was found at.
    index : int
        Its index among that timepoint's detections.
    centroid_mm : tuple of float
        Centroid after registration to the baseline, LPS mm.
    volume_ml : float
        Its volume, mL.

    """

    timepoint_id: str
    index: int
    centroid_mm: tuple[float, float, float]
    volume_ml: float

    @property
    def radius_mm(self) -> float:
        """Radius of the sphere of the same volume, mm."""
        return float((3.0 * self.volume_ml * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0))


@dataclass
class LesionTrack:
    """A lesion followed across timepoints.

    ``observations`` maps timepoint ID → observation (absent where not detected);
    ``tracking_id`` is set by :func:`track_lesions`.
    """

    observations: dict[str, LesionObservation] = field(default_factory=dict)
    tracking_id: str = ""

    @property
    def first_timepoint(self) -> str:
        """The timepoint it was first seen at."""
        return next(iter(self.observations))

    @property
    def last(self) -> LesionObservation:
        """Its most recent observation."""
        return list(self.observations.values())[-1]

    def status(self, timepoint_ids: Sequence[str]) -> str:
        """The track's state at the last timepoint.

        ``"persistent"`` (seen at baseline and at the last timepoint), ``"new"`` (first seen
        after the baseline and present at the last) or ``"vanished"`` (absent at the last).
        """
        if timepoint_ids[-1] not in self.observations:
            return "vanished"
        return "persistent" if self.first_timepoint == timepoint_ids[0] else "new"


def _sphere_dice(a: LesionObservation, b: LesionObservation) -> float:
    """Dice overlap of two spheres of the observations' volumes at their centroids."""
    r1, r2 = a.radius_mm, b.radius_mm
    d = float(np.linalg.norm(np.subtract(a.centroid_mm, b.centroid_mm)))
    v1, v2 = 4.0 / 3.0 * math.pi * r1**3, 4.0 / 3.0 * math.pi * r2**3
    if d >= r1 + r2:
        return 0.0
    if d <= abs(r1 - r2):
        return 2.0 * min(v1, v2) / (v1 + v2)
    lens = (
        math.pi * (r1 + r2 - d) ** 2 * (d**2 + 2 * d * (r1 + r2) - 3 * (r1 - r2) ** 2) / (12.0 * d)
    )
    return 2.0 * lens / (v1 + v2)


def _cost_matrix(
    tracks: Sequence[LesionTrack], found: Sequence[LesionObservation], gate_mm: float
) -> npt.NDArray[np.float64]:
    cost = np.full((len(tracks), len(found)), np.inf)
    for i, track in enumerate(tracks):
        previous = track.last
        for j, lesion in enumerate(found):
            distance = float(np.linalg.norm(np.subtract(previous.centroid_mm, lesion.centroid_mm)))
            if distance <= max(gate_mm, previous.radius_mm + lesion.radius_mm):
                overlap = 1.0 - _sphere_dice(previous, lesion)
                cost[i, j] = distance + _OVERLAP_WEIGHT_MM * overlap
    return cost


def track_lesions(
    detections: Mapping[str, Sequence[LesionObservation]], *, gate_mm: float = DEFAULT_GATE_MM
) -> list[LesionTrack]:
    """Link the detections of each timepoint (in time order) into tracks with IDs.

    Parameters
    ----------
    detections : mapping of str to sequence of LesionObservation
        Timepoint ID → its lesions, in time order (the first is the baseline).
    gate_mm : float
        Largest centroid distance of a match (widened to the sum of radii for large lesions).

    Returns
    -------
    list of LesionTrack
        In tracking-ID order.

    Examples
    --------
    >>> a = LesionObservation("TP01", 0, (0.0, 0.0, 0.0), 4.0)
    >>> b = LesionObservation("TP02", 0, (3.0, 0.0, 0.0), 3.0)
    >>> c = LesionObservation("TP02", 1, (0.0, 0.0, 300.0), 1.0)
    >>> [(t.tracking_id, sorted(t.observations)) for t in track_lesions({"TP01": [a], "TP02": [b, c]})]
    [('L001', ['TP01', 'TP02']), ('L002', ['TP02'])]

    """
    from scipy.optimize import linear_sum_assignment

    tracks: list[LesionTrack] = []
    for lesions in detections.values():
        found = sorted(lesions, key=lambda item: -item.centroid_mm[2])
        matched: set[int] = set()
        if tracks and found:
            cost = _cost_matrix(tracks, found, gate_mm)
            finite = np.where(np.isfinite(cost), cost, 1e12)
            rows, columns = linear_sum_assignment(finite)
            for i, j in zip(rows, columns, strict=True):
                if np.isfinite(cost[i, j]):
                    tracks[i].observations[found[j].timepoint_id] = found[j]
                    matched.add(j)
        new = [
            LesionTrack({lesion.timepoint_id: lesion})
            for j, lesion in enumerate(found)
            if j not in matched
        ]
        tracks.extend(new)
    for number, track in enumerate(tracks, start=1):
        track.tracking_id = f"L{number:03d}"
    return tracks
