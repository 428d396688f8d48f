"""What PyTorch is really running on: its version, its thread counts, and the BLAS library loaded in this process.

    python3 bench/lib/torch_env.py      # prints the report as JSON

Shared by the PyTorch sides of the benchmarks (bench/train_step_torch.py, bench/lib/torch_native.py).

Why not torch.__config__: Debian's python3-torch is built against the generic `libblas.so.3` (BLAS_INFO=generic)
and calls whichever library the system's libblas.so.3 alternative points to: netlib's reference BLAS (unoptimised
Fortran, ~8 GFLOP/s) when only libblas3 is installed, OpenBLAS when libopenblas0-pthread is. So the library is read
from this process's memory map (/proc/self/maps) after a matrix product has run, not from the build flags.

Threads: torch.set_num_threads sets PyTorch's own (OpenMP) threads; OpenBLAS behind the generic interface keeps its
own pool, sized by OPENBLAS_NUM_THREADS when it loads (the caller sets it with OMP_NUM_THREADS, see
bench/lib/torch.ts). Both counts are reported; OpenBLAS's is asked from the library itself.
"""

import ctypes
import json
import os
import re

import torch


def set_threads(n):
    """PyTorch's intra-op threads; OpenBLAS's come from the environment (OPENBLAS_NUM_THREADS) at load time."""
    if n > 0:
        torch.set_num_threads(n)


def _blas_paths():
    """Shared libraries in this process whose name says BLAS (libblas, libopenblas, libmkl, libblis)."""
    paths = set()
    with open('/proc/self/maps') as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and re.search(r'lib(open)?blas|libmkl|libblis', os.path.basename(parts[5])):
                paths.add(parts[5])
    return sorted(paths)


def _kind(path):
    real = os.path.realpath(path)
    if 'openblas' in real:
        return 'OpenBLAS'
    if 'mkl' in real:
        return 'MKL'
    if 'blis' in real:
        return 'BLIS'
    if re.search(r'/blas/libblas\.so', real):
        return 'netlib reference BLAS'
    return 'unknown BLAS'


def blas_report():
    """{'kind', 'library', 'build', 'threads', 'core'}: the BLAS this process has loaded (after one product has run)
    and, for OpenBLAS, the CPU kernels it picked (openblas_get_corename)."""
    a = torch.rand(64, 64)
    (a @ a).sum().item()  # make sure the BLAS is loaded (lazy binding)
    m = re.search(r'BLAS_INFO=([^,\s]+)', torch.__config__.show())
    build = m.group(1) if m else 'unknown'
    paths = _blas_paths()
    real = [os.path.realpath(p) for p in paths]
    kinds = sorted({_kind(p) for p in paths})
    blas_threads = None
    core = None
    for p in real:
        try:
            lib = ctypes.CDLL(p)
            blas_threads = int(lib.openblas_get_num_threads())
            lib.openblas_get_corename.restype = ctypes.c_char_p
            core = lib.openblas_get_corename().decode()  # the kernels OpenBLAS picked for this CPU
            break
        except (OSError, AttributeError):
            continue
    if not paths:
        kind = 'built in (' + build + ')'
    elif 'OpenBLAS' in kinds:
        kind = 'OpenBLAS'  # libblas.so.3 is then the OpenBLAS alternative itself
    else:
        kind = ', '.join(kinds)
    return {'kind': kind, 'library': ', '.join(real) or '-', 'build': build, 'threads': blas_threads, 'core': core}


def environment():
    """Everything a benchmark row needs to say which PyTorch it timed."""
    return {
        'torch': torch.__version__,
        'threads': torch.get_num_threads(),
        'blas': blas_report(),
        'env': {k: os.environ.get(k) for k in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS')},
    }


if __name__ == '__main__':
    print(json.dumps(environment(), indent=1))
