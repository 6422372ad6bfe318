"""What the readers return: a volume with the file's PET facts and what the reader noticed."""

from __future__ import annotations

from dataclasses import dataclass, field

from immunopet.image import PetAcquisition, Volume

__all__ = ["Scan"]


@dataclass(frozen=True)
class Scan:
    """One image series as read from disk.

    Parameters
    ----------
    volume : Volume
        The image (Bq/mL, SUV, HU or counts, as :attr:`Volume.quantity` says).
    modality : str
        ``"PT"``, ``"NM"`` or ``"CT"``.
    acquisition : PetAcquisition or None
        Administration and patient facts for PT/NM, as stated in the file.
    series_uid : str or None
        DICOM Series Instance UID (or the file name for NIfTI).
    files : tuple of str
        The files the scan was read from.
    warnings : tuple of str
        What the reader noticed or did (vendor fixes, splits, skipped files).

    """

    volume: Volume
    modality: str
    acquisition: PetAcquisition | None = None
    series_uid: str | None = None
    files: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())
