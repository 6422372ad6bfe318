"""Lesion tracks: one-to-one matching within a gate, new and vanished lesions, stable IDs."""

from __future__ import annotations

from immunopet.lesions._match import LesionObservation, track_lesions


def obs(tp: str, index: int, xyz: tuple[float, float, float], ml: float) -> LesionObservation:
    return LesionObservation(tp, index, xyz, ml)


def test_moved_lesions_match_and_a_new_one_starts_a_track() -> None:
    tp1 = [obs("TP1", 0, (0, 0, 100), 5.0), obs("TP1", 1, (80, 0, 0), 2.0)]
    # Both moved 8 mm; a new small lesion 35 mm from the first one.
    tp2 = [
        obs("TP2", 0, (8, 0, 100), 4.0),
        obs("TP2", 1, (80, 8, 0), 2.0),
        obs("TP2", 2, (0, 35, 100), 0.5),
    ]
    tracks = track_lesions({"TP1": tp1, "TP2": tp2})
    assert [t.tracking_id for t in tracks] == ["L001", "L002", "L003"]
    by_id = {t.tracking_id: t for t in tracks}
    # Head-to-feet order at baseline: the lesion at S = 100 mm is L001.
    assert by_id["L001"].observations["TP2"].index == 0
    assert by_id["L002"].observations["TP2"].index == 1
    assert list(by_id["L003"].observations) == ["TP2"]
    assert [t.status(["TP1", "TP2"]) for t in tracks] == ["persistent", "persistent", "new"]


def test_assignment_is_one_to_one_and_prefers_the_nearest() -> None:
    # Two follow-up lesions near one baseline lesion: the nearer takes the track.
    tp1 = [obs("A", 0, (0, 0, 0), 1.0)]
    tp2 = [obs("B", 0, (15, 0, 0), 1.0), obs("B", 1, (5, 0, 0), 1.0)]
    tracks = track_lesions({"A": tp1, "B": tp2})
    assert tracks[0].observations["B"].index == 1
    assert list(tracks[1].observations) == ["B"]


def test_vanished_then_reappearing_lesion_keeps_its_id() -> None:
    tp1 = [obs("T1", 0, (0, 0, 0), 3.0)]
    tracks = track_lesions({"T1": tp1, "T2": [], "T3": [obs("T3", 0, (4, 0, 0), 3.0)]})
    assert len(tracks) == 1
    assert sorted(tracks[0].observations) == ["T1", "T3"]
    assert tracks[0].status(["T1", "T2"]) == "vanished"


def test_far_lesion_is_not_matched_but_large_lesions_widen_the_gate() -> None:
    far = track_lesions({"A": [obs("A", 0, (0, 0, 0), 1.0)], "B": [obs("B", 0, (30, 0, 0), 1.0)]})
    assert len(far) == 2  # 30 mm > 20 mm gate and > sum of radii (2 x 6.2 mm)
    # 100 mL lesions (radius 28.8 mm): 30 mm apart still match (gate = sum of radii).
    big = track_lesions(
        {"A": [obs("A", 0, (0, 0, 0), 100.0)], "B": [obs("B", 0, (30, 0, 0), 100.0)]}
    )
    assert len(big) == 1
