"""Classic image noise with a fixed pattern per seed (numpy only).

A :class:`NoiseSource` draws its random fields once for an image shape and a
seed; :meth:`NoiseSource.apply` then only scales them. Moving a strength slider
therefore changes how strong the noise is, never which pixels it hits, and costs
a few element-wise passes over the image (no new random numbers).
"""

from __future__ import annotations

import math
import threading

import numpy as np

NOISE_KINDS = ("gaussian", "uniform", "salt-and-pepper", "poisson")

# Independent random streams, one per field, so fields drawn lazily do not
# depend on the order in which kinds are first used.
_GAUSSIAN, _UNIFORM, _WHICH_PIXELS, _SALT, _SALT_AT, _PEPPER_AT = range(6)

# apply() works on bands of about this many values, small enough to stay in cache.
_BAND_VALUES = 49152


def poisson_peak(strength: float) -> float:
    """Photons a full-bright pixel collects at a Poisson ``strength`` in (0, 1].

    peak = 1 / strength²: strength 1 is a single photon, 0.1 a hundred, and the
    noise amplitude grows in proportion to strength, like the other kinds.
    """
    return math.inf if strength == 0 else 1.0 / strength**2


class NoiseSource:
    """Fixed random fields for one (shape, seed); ``apply`` scales them.

    Parameters
    ----------
    shape
        Image shape, H×W or H×W×C.
    seed
        Seed of the fields: the same seed gives the same pattern.

    Notes
    -----
    Fields (float32, drawn on first use of a kind):

    - gaussian: z ~ N(0, 1) per value; noisy = clean + σ·z.
    - uniform: u ~ U(−1, 1) per value; noisy = clean + a·u (a = half-width).
    - salt-and-pepper: w ~ U(0, 1) and a coin per pixel (H×W, shared by the
      channels); a pixel is hit when w < amount, then set to white (salt, coin
      heads) or black (pepper).
    - poisson: the Gaussian approximation of Poisson (shot) noise,
      noisy = clean + √(clean / peak)·z with the gaussian field z and
      peak = :func:`poisson_peak` (strength): variance equals the mean photon
      count, as for Poisson counts, while the pattern stays fixed.
    """

    def __init__(self, shape: tuple[int, ...], seed: int):
        if len(shape) not in (2, 3):
            raise ValueError(f"shape must be H×W or H×W×C, got {shape}")
        self.shape = tuple(int(n) for n in shape)
        self.seed = int(seed)
        self._fields: dict[int, np.ndarray] = {}
        self._lock = threading.RLock()  # re-entrant: a field may be drawn from others

    def _field(self, which: int) -> np.ndarray:
        field = self._fields.get(which)
        if field is None:
            with self._lock:  # apply() may run on several bands at once, from several threads
                field = self._fields.get(which)
                if field is None:
                    field = self._draw(which)
                    field.flags.writeable = False
                    self._fields[which] = field
        return field

    def _draw(self, which: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, which])
        if which == _GAUSSIAN:
            return rng.standard_normal(self.shape, dtype=np.float32)
        if which == _UNIFORM:
            field = rng.random(self.shape, dtype=np.float32)
            field *= np.float32(2.0)
            field -= np.float32(1.0)  # U(0, 1) → U(−1, 1)
            return field
        if which == _WHICH_PIXELS:
            return rng.random(self.shape[:2], dtype=np.float32)
        if which == _SALT:
            return rng.random(self.shape[:2], dtype=np.float32) < 0.5
        # Per value (channels repeated): the pixel's w where its coin says salt
        # (resp. pepper), else 2.0, which no amount ≤ 1 reaches. Then
        # "salt here" is just `salt_at < amount`, with no masks to combine.
        coin = self._field(_SALT) if which == _SALT_AT else ~self._field(_SALT)
        at = np.where(coin, self._field(_WHICH_PIXELS), np.float32(2.0))
        if len(self.shape) == 3:
            at = np.repeat(at[:, :, None], self.shape[2], axis=2)
        return at.astype(np.float32)

    def field(self, kind: str) -> np.ndarray:
        """The fixed random field behind ``kind`` (read-only; for display).

        gaussian and poisson: z; uniform: u; salt-and-pepper: w (H×W).
        """
        _check_kind(kind)
        which = {"gaussian": _GAUSSIAN, "poisson": _GAUSSIAN, "uniform": _UNIFORM}
        return self._field(which.get(kind, _WHICH_PIXELS))

    def apply(
        self,
        clean: np.ndarray,
        kind: str,
        strength: float,
        out: np.ndarray | None = None,
        rows: slice | None = None,
    ) -> np.ndarray:
        """Return ``clean`` with ``kind`` noise of ``strength`` added, clipped to [0, 1].

        Parameters
        ----------
        clean
            float32 image in [0, 1] of this source's shape (or its ``rows``).
        kind
            One of :data:`NOISE_KINDS`.
        strength
            In [0, 1]: σ (gaussian), half-width (uniform), fraction of pixels hit
            (salt-and-pepper), 1 / √peak photons (poisson). 0 returns ``clean``.
        out
            Optional float32 buffer of the same shape (may not be ``clean``).
        rows
            Optional band of image rows (a slice with step 1): ``clean`` and ``out``
            then hold only these rows, and get exactly the values that applying to the
            whole image gives them. Lets a caller process an image band by band while
            each band is in cache.

        Returns
        -------
        np.ndarray
            The noisy image (or band), float32 (``out`` when given).
        """
        _check_kind(kind)
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"noise strength must be between 0 and 1, got {strength}")
        rows = _check_rows(rows, self.shape[0])
        shape = (rows.stop - rows.start, *self.shape[1:])
        if clean.shape != shape:
            raise ValueError(f"image shape {clean.shape} does not match the noise {shape}")
        if out is None:
            out = np.empty(shape, dtype=np.float32)
        if strength == 0:
            np.copyto(out, clean)
            return out
        if kind == "salt-and-pepper":
            fields = (self._field(_SALT_AT)[rows], self._field(_PEPPER_AT)[rows])
        else:
            fields = (self._field(_UNIFORM if kind == "uniform" else _GAUSSIAN)[rows],)
        band_fn = _BANDS[kind]
        s = np.float32(strength)
        band_rows = max(1, _BAND_VALUES // max(1, clean[0].size))
        scratch = np.empty((min(band_rows, shape[0]), *shape[1:]), dtype=np.float32)
        for top in range(0, shape[0], band_rows):
            band = slice(top, top + band_rows)
            o = out[band]
            band_fn(clean[band], s, [f[band] for f in fields], o, scratch[: o.shape[0]])
            np.clip(o, 0.0, 1.0, out=o)
        return out


# One band of rows per call: (clean, strength, fields, out, scratch) -> None, out unclipped.


def _additive_band(clean, s, fields, out, scratch) -> None:
    # gaussian: clean + σ·z;  uniform: clean + a·u
    np.multiply(fields[0], s, out=out)
    np.add(out, clean, out=out)


def _poisson_band(clean, s, fields, out, scratch) -> None:
    # clean + √(clean / peak)·z  with  1/√peak = strength
    np.sqrt(clean, out=out)
    np.multiply(out, fields[0], out=out)
    np.multiply(out, s, out=out)
    np.add(out, clean, out=out)


def _salt_and_pepper_band(clean, amount, fields, out, scratch) -> None:
    salt_at, pepper_at = fields
    # Salt: max(clean, 1 where hit-and-salt else 0).
    np.less(salt_at, amount, out=scratch, casting="unsafe")
    np.maximum(clean, scratch, out=out)
    # Pepper: min(·, 0 where hit-and-pepper else 1).
    np.greater_equal(pepper_at, amount, out=scratch, casting="unsafe")
    np.minimum(out, scratch, out=out)


_BANDS = {
    "gaussian": _additive_band,
    "uniform": _additive_band,
    "poisson": _poisson_band,
    "salt-and-pepper": _salt_and_pepper_band,
}


def _check_rows(rows: slice | None, height: int) -> slice:
    """``rows`` as a slice with explicit start and stop inside ``height`` rows (all by default)."""
    if rows is None:
        return slice(0, height)
    start, stop, step = rows.indices(height)
    if step != 1 or stop <= start:
        raise ValueError(f"rows must be a non-empty band of rows with step 1, got {rows}")
    return slice(start, stop)


def _check_kind(kind: str) -> None:
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r} (choose from: {', '.join(NOISE_KINDS)})")


def psnr(clean: np.ndarray, noisy: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB: 10·log10(range² / MSE); inf when equal."""
    if clean.shape != noisy.shape:
        raise ValueError(f"images differ in shape: {clean.shape} and {noisy.shape}")
    dtype = np.result_type(clean, noisy, np.float32)  # float32 unless given float64
    a, b = clean.reshape(-1), noisy.reshape(-1)
    scratch = np.empty(min(a.size, _BAND_VALUES), dtype=dtype)
    total = 0.0
    # Band by band (cache-sized, no full-size temporary), summed in float64.
    for start in range(0, a.size, _BAND_VALUES):
        band = slice(start, start + _BAND_VALUES)
        diff = scratch[: a[band].size]
        np.subtract(a[band], b[band], out=diff, dtype=dtype)  # dtype: no uint8 wrap-around
        total += float(np.dot(diff, diff))
    mse = total / max(1, a.size)
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)
