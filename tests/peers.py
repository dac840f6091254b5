"""Reference codes that cannot share the project's venv, run in their own: ``.venv-peers`` (``make peers``).

DADApy 0.3.4, the newest release, requires numpy<2 and its compiled parts do not import under NumPy 2,
while ``.venv`` has NumPy 2 (GPAW and others are built against it). DADApy therefore lives in
``.venv-peers`` with its own numpy 1.26, jax, ...; nothing of it is installed in ``.venv``. This module
runs Python snippets there, in one long-lived process per session (importing DADApy takes seconds), and
passes arrays both ways as .npy files in a temporary directory (bit-exact float64).

Used by tests/test_transferability.py (pytest puts tests/ on sys.path) and benchmarks/transferability.py
(which adds tests/ itself).

If ``.venv-peers`` is missing or incomplete, :func:`run` raises :class:`PeersMissing` ("run `make peers`"):
the tests that need DADApy fail, they are not skipped silently. Explicit opt-out: with
``MLIPLIB_SKIP_PEERS=1`` in the environment they are skipped instead (``pytest.skip``), e.g. on a machine
without network access to install DADApy.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-peers"
PYTHON = VENV / "bin" / "python"
SKIP_ENV = "MLIPLIB_SKIP_PEERS"


class PeersMissing(RuntimeError):
    """.venv-peers does not exist or was not completed by ``make peers``."""


class PeerError(RuntimeError):
    """A snippet raised in the peer process, or the process died."""


# The peer process: one JSON request per line on stdin ({"dir", "code", "inputs", "params"}), the snippet
# is executed with the inputs (loaded from dir/<name>.npy), the params, np and time as globals, and must
# set `result`, a dict of arrays/numbers/strings, saved to dir/result.npz; one JSON reply per line on
# stdout. The snippets' own output goes to stderr.
_SERVER = r"""
import json, os, sys, time, traceback
import numpy as np
replies, sys.stdout = sys.stdout, sys.stderr
for line in sys.stdin:
    ns = {}
    try:
        request = json.loads(line)
        ns = {"np": np, "time": time, **request["params"]}
        for name in request["inputs"]:
            ns[name] = np.load(os.path.join(request["dir"], name + ".npy"))
        exec(compile(request["code"], "<peer snippet>", "exec"), ns)
        np.savez(os.path.join(request["dir"], "result.npz"), **{k: np.asarray(v) for k, v in ns["result"].items()})
        reply = {"ok": True}
    except Exception:
        reply = {"ok": False, "error": traceback.format_exc()}
    del ns
    replies.write(json.dumps(reply) + "\n")
    replies.flush()
"""

_process: subprocess.Popen | None = None


def available() -> bool:
    """``make peers`` has completed (it writes the stamp file last)."""
    return PYTHON.exists() and any(VENV.glob(".installed-*"))


def _ensure_process() -> subprocess.Popen:
    global _process
    if _process is not None and _process.poll() is None:
        return _process
    if not available():
        message = (f"{VENV} is missing or incomplete: DADApy (the reference for these results) needs numpy<2 and "
                   f"runs in that separate venv. Create it once with `make peers` (from {ROOT}).")
        if os.environ.get(SKIP_ENV):
            import pytest

            pytest.skip(f"{SKIP_ENV} is set and {message}")
        raise PeersMissing(message)
    # -I: isolated mode, nothing from .venv, PYTHONPATH or the current directory leaks in
    _process = subprocess.Popen([str(PYTHON), "-I", "-c", _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True, cwd=ROOT)
    atexit.register(_stop, _process)
    return _process


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def run(code: str, arrays: dict | None = None, **params) -> dict:
    """Execute ``code`` in .venv-peers' Python and return its ``result`` dict (0-d arrays as NumPy scalars).

    ``arrays`` become globals of the snippet as NumPy arrays (through .npy files), ``params`` as they are
    (JSON: numbers, strings, lists); ``np`` and ``time`` are imported. Globals do not persist between
    calls; imported modules do.
    """
    process = _ensure_process()
    with tempfile.TemporaryDirectory(prefix="mliplib-peers-") as tmp:
        for name, a in (arrays or {}).items():
            np.save(os.path.join(tmp, name + ".npy"), np.asarray(a))
        request = {"dir": tmp, "code": code, "inputs": list(arrays or {}), "params": params}
        try:
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
            line = process.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            raise PeerError(f"the peer process ({PYTHON}) died, exit code {process.wait()}; see its stderr above")
        reply = json.loads(line)
        if not reply["ok"]:
            raise PeerError(f"in {PYTHON}:\n{reply['error']}")
        with np.load(os.path.join(tmp, "result.npz")) as f:
            return {k: f[k][()] if f[k].ndim == 0 else f[k] for k in f.files}


# --------------------------------------------------------------------------------------------------
# DADApy


_VERSIONS = """
from importlib.metadata import version
result = {name: version(name) for name in ("dadapy", "numpy", "scikit-learn")}
"""


def dadapy_versions() -> dict[str, str]:
    """Versions of dadapy, numpy and scikit-learn in .venv-peers."""
    return {k: str(v) for k, v in run(_VERSIONS).items()}


_IMBALANCE = """
import warnings
import dadapy
N, da, db = len(A), A.shape[1], B.shape[1]
seconds = []
for _ in range(repeats):
    t = time.perf_counter()
    if api == "return_inf_imb_two_selected_coords":
        mc = dadapy.MetricComparisons(coordinates=np.hstack([A, B]), maxk=N - 1, verbose=False)
        imbalance = mc.return_inf_imb_two_selected_coords(list(range(da)), list(range(da, da + db)), k=k)
    elif api == "return_information_imbalace":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "subset size greater than the dataset size": intended here
            mc = dadapy.MetricComparisons(coordinates=A, maxk=N - 1, verbose=False)
            ab, ba = mc.return_information_imbalace(B, k=k, subset_size=N)  # (value, error) each
        imbalance = ab[0], ba[0]
    else:
        raise ValueError(api)
    seconds.append(time.perf_counter() - t)
    del mc
result = {"imbalance": imbalance, "seconds": seconds}
"""


def dadapy_imbalance(A, B, k: int = 1, api: str = "return_inf_imb_two_selected_coords", repeats: int = 1):
    """DADApy's exact information imbalances (Δ(A→B), Δ(B→A)) of the same N points in spaces A and B.

    ``api="return_inf_imb_two_selected_coords"``: ``MetricComparisons(np.hstack([A, B]), maxk=N - 1)
    .return_inf_imb_two_selected_coords(A's columns, B's columns, k)``; ``"return_information_imbalace"``
    (sic): ``MetricComparisons(A, maxk=N - 1).return_information_imbalace(B, k, subset_size=N)``, values
    without their error estimates. ``maxk = N − 1`` is DADApy's exact setting (with a smaller maxk it
    replaces the ranks it did not store by random numbers).

    Returns ``((Δ(A→B), Δ(B→A)), seconds)``, ``seconds`` the wall time of each of ``repeats`` runs of the
    DADApy computation (constructor + call) measured inside the peer process: no start-up, import or I/O.
    """
    out = run(_IMBALANCE, {"A": A, "B": B}, k=int(k), api=api, repeats=int(repeats))
    ab, ba = out["imbalance"]
    return (float(ab), float(ba)), [float(t) for t in out["seconds"]]


_TWO_NN = """
import dadapy
dimension, error, scale = dadapy.Data(X, maxk=maxk, verbose=False).compute_id_2NN(
    algorithm=algorithm, mu_fraction=mu_fraction)
result = {"dimension": dimension}
"""


def dadapy_two_nn(X, algorithm: str = "base", mu_fraction: float = 0.9, maxk: int = 5) -> float:
    """``Data(X, maxk).compute_id_2NN(algorithm, mu_fraction)``'s intrinsic dimension."""
    out = run(_TWO_NN, {"X": X}, algorithm=algorithm, mu_fraction=float(mu_fraction), maxk=int(maxk))
    return float(out["dimension"])


_KNN_DENSITY = """
import dadapy
data = dadapy.Data(X, maxk=maxk, verbose=False)
data.compute_distances()
data.set_id(dimension)
log_density, error = data.compute_density_kNN(k=k)
result = {"log_density": log_density}
"""


def dadapy_knn_density(X, k: int, dimension: float, maxk: int = 20) -> np.ndarray:
    """``Data(X, maxk)`` with ``compute_distances()``, ``set_id(dimension)``, then ``compute_density_kNN(k)``'s
    log densities (DADApy normalises by N)."""
    return run(_KNN_DENSITY, {"X": X}, k=int(k), dimension=dimension, maxk=int(maxk))["log_density"]


if __name__ == "__main__":  # smoke test: .venv/bin/python tests/peers.py
    print(dadapy_versions())
