"""Self-diffusion from an MD trajectory: unwrapped positions, the mean squared displacement (MSD) and the
diffusion coefficient from its slope (Einstein relation MSD(τ) → 6 D τ in 3D), with an error from
independent blocks of the trajectory.

Positions are (n_frames, n_atoms, 3) arrays in Å at equally spaced times; ASE's integrators do not wrap
positions, but :func:`unwrap` undoes any wrapping (frame-to-frame moves shorter than half a cell).
Units: Å, fs in, Å²/ps out (1 Å²/ps = 10⁻⁴ cm²/s = 10⁻⁸ m²/s).
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["A2_PER_PS_TO_CM2_PER_S", "Diffusion", "diffusion_coefficient", "mean_squared_displacement", "unwrap"]

#: 1 Å²/ps in cm²/s
A2_PER_PS_TO_CM2_PER_S = 1e-4


def _trajectory(positions) -> np.ndarray:
    x = np.asarray(positions, dtype=float)
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"positions must be (n_frames, n_atoms, 3), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("positions contain NaN or inf")
    return x


def unwrap(positions, cell) -> np.ndarray:
    """Continuous trajectories from positions wrapped into a periodic cell: each frame-to-frame move is
    replaced by its minimum image (valid while atoms move less than half a cell between frames).

    Parameters
    ----------
    positions : array-like
        (n_frames, n_atoms, 3), Å.
    cell : array-like
        (3, 3) cell vectors as rows, Å.

    Returns
    -------
    numpy.ndarray
        (n_frames, n_atoms, 3), starting at ``positions[0]``.
    """
    x = _trajectory(positions)
    cell = np.asarray(cell, dtype=float)
    steps = np.diff(x, axis=0)
    fractional = steps @ np.linalg.inv(cell)
    steps = (fractional - np.round(fractional)) @ cell
    return np.concatenate([x[:1], x[:1] + np.cumsum(steps, axis=0)])


def mean_squared_displacement(positions, max_lag: int | None = None) -> np.ndarray:
    """MSD(τ) = ⟨|r(t + τ) − r(t)|²⟩ over every time origin t and every atom, for lags 0 … ``max_lag``.

    Parameters
    ----------
    positions : array-like
        (n_frames, n_atoms, 3) unwrapped positions, Å.
    max_lag : int, optional
        Largest lag in frames (default: half the frames).

    Returns
    -------
    numpy.ndarray
        (max_lag + 1,) Å².
    """
    x = _trajectory(positions)
    n = x.shape[0]
    max_lag = n // 2 if max_lag is None else int(max_lag)
    if not 0 <= max_lag < n:
        raise ValueError(f"max_lag must be in [0, {n - 1}] for {n} frames, got {max_lag}")
    return np.array([np.mean(np.sum((x[lag:] - x[:n - lag]) ** 2, axis=2)) for lag in range(max_lag + 1)])


@dataclasses.dataclass(frozen=True)
class Diffusion:
    """Result of :func:`diffusion_coefficient`.

    Attributes
    ----------
    coefficient : float
        D, Å²/ps: the mean over the blocks.
    error : float
        Standard error of the mean over the blocks, Å²/ps (NaN for one block).
    blocks : numpy.ndarray
        D of each block, Å²/ps.
    fit_fs : tuple of float
        The lags fitted, fs.
    """

    coefficient: float
    error: float
    blocks: np.ndarray
    fit_fs: tuple[float, float]


def diffusion_coefficient(positions, timestep_fs: float, atoms=None, masses=None, n_blocks: int = 4,
                          fit: tuple[float, float] = (0.2, 0.5)) -> Diffusion:
    """Self-diffusion coefficient D from the slope of the MSD, MSD(τ) ≈ 6 D τ + b, fitted per block.

    The trajectory is cut into ``n_blocks`` consecutive blocks; in each the MSD is fitted by a straight
    line over lags between ``fit[0]`` and ``fit[1]`` of the block's length (past the ballistic start,
    before the noisy end), and D is the mean of the blocks' slopes / 6 with their standard error.

    Parameters
    ----------
    positions : array-like
        (n_frames, n_atoms, 3) unwrapped positions (:func:`unwrap`), Å, every ``timestep_fs``.
    timestep_fs : float
        Time between frames, fs.
    atoms : array-like of bool or int, optional
        The atoms whose D is wanted (a mask or indices; default all).
    masses : array-like, optional
        (n_atoms,) masses of every atom: the centre-of-mass drift of the whole system is removed first.
    n_blocks : int
        Independent blocks (≥ 1).
    fit : tuple of float
        Fitted lags, as fractions of a block's length (0 < fit[0] < fit[1] ≤ 1).

    Returns
    -------
    Diffusion
    """
    x = _trajectory(positions)
    if not timestep_fs > 0:
        raise ValueError(f"timestep_fs must be positive, got {timestep_fs}")
    if not 0 < fit[0] < fit[1] <= 1:
        raise ValueError(f"fit must be fractions 0 < start < end ≤ 1 of a block, got {fit}")
    n_blocks = int(n_blocks)
    length = x.shape[0] // max(n_blocks, 1)
    lags = np.arange(int(np.ceil(fit[0] * (length - 1))), int(fit[1] * (length - 1)) + 1)
    if n_blocks < 1 or len(lags) < 2:
        raise ValueError(f"{x.shape[0]} frames in {n_blocks} blocks leave fewer than 2 lags to fit in {fit}; "
                         "use fewer blocks or a longer trajectory")
    if masses is not None:
        m = np.asarray(masses, dtype=float)
        if m.shape != (x.shape[1],):
            raise ValueError(f"masses must have one entry per atom ({x.shape[1]}), got shape {m.shape}")
        x = x - ((m[None, :, None] * x).sum(axis=1) / m.sum())[:, None, :]
    if atoms is not None:
        x = x[:, np.asarray(atoms)]
    slopes = []
    for b in range(n_blocks):
        msd = mean_squared_displacement(x[b * length:(b + 1) * length], lags[-1])
        slopes.append(np.polyfit(lags * timestep_fs, msd[lags], 1)[0])
    blocks = np.array(slopes) / 6.0 * 1e3  # Å²/fs → Å²/ps
    error = float(blocks.std(ddof=1) / np.sqrt(n_blocks)) if n_blocks > 1 else float("nan")
    return Diffusion(float(blocks.mean()), error, blocks, (float(lags[0] * timestep_fs), float(lags[-1] * timestep_fs)))
