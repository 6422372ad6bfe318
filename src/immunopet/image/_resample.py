"""Resampling a volume onto another volume's grid."""

from __future__ import annotations

import numpy as np

from immunopet.image._volume import Quantity, Volume

__all__ = ["resample_to"]

#: A resampled mask voxel is inside when the linearly interpolated mask is at least this.
_MASK_INSIDE_FRACTION = 0.5


def resample_to(
    volume: Volume, target: Volume, *, order: int | None = None, fill_value: float = 0.0
) -> Volume:
    """Resample ``volume`` onto the grid of ``target``.

    Both grids live in the same LPS patient space; the mapping is
    ``inv(volume.affine) @ target.affine``, so any rotation, flip, spacing or
    offset between the grids is handled.

    Parameters
    ----------
    volume : Volume
        The volume to resample.
    target : Volume
        Supplies the output shape and affine; its values are not used.
    order : int, optional
        Spline order: 0 nearest, 1 (default for images) trilinear, 3 cubic. Masks
        are interpolated linearly and thresholded at one half, so a resampled
        mask keeps its volume on average whether the grid is finer or coarser.
    fill_value : float, optional
        Value outside ``volume``'s field of view (``False`` for masks).

    Returns
    -------
    Volume
        Shape ``target.shape``, affine ``target.affine``, same quantity and
        timing as ``volume``. Float images come back as float32 or float64
        (their own dtype), masks as bool.

    Examples
    --------
    >>> import numpy as np
    >>> fine = Volume(np.arange(8.0).reshape(2, 2, 2), np.eye(4), Quantity.UNITLESS)
    >>> coarse = Volume(np.zeros((1, 1, 1)), np.diag([2.0, 2.0, 2.0, 1.0]), Quantity.UNITLESS)
    >>> float(fine.resample_to(coarse).array[0, 0, 0])
    0.0

    """
    from scipy import ndimage  # imported on first use: keeps `import immunopet` light

    if volume.same_grid(target):
        return volume.with_array(volume.array.copy())
    mapping = np.linalg.inv(volume.affine) @ target.affine
    is_mask = volume.quantity is Quantity.MASK
    if is_mask:
        source = volume.array.astype(np.float32)
        spline_order = 1
        cval = 0.0
    else:
        dtype = volume.array.dtype if volume.array.dtype.kind == "f" else np.dtype(np.float32)
        source = volume.array.astype(dtype, copy=False)
        spline_order = 1 if order is None else order
        cval = fill_value
    resampled = ndimage.affine_transform(
        source,
        mapping[:3, :3],
        offset=mapping[:3, 3],
        output_shape=target.shape,
        order=spline_order,
        mode="constant",
        cval=cval,
        prefilter=spline_order > 1,
    )
    if is_mask:
        resampled = resampled >= _MASK_INSIDE_FRACTION
    return Volume(
        resampled,
        target.affine,
        volume.quantity,
        timing=volume.timing,
        source=volume.source,
        metadata=volume.metadata,
    )
