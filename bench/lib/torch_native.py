"""Native reference rows for the benchmark tables: PyTorch (CPU, float32) in its own process.

Not a peer in the same runtime: PyTorch calls native BLAS/oneDNN kernels compiled for this CPU (AVX2/AVX-512 FMA,
256/512-bit registers), where WebAssembly has 128-bit SIMD and JavaScript none. The row shows how far a browser
runtime sits from native code on the same core, with the same thread count.

    /usr/bin/python3 bench/lib/torch_native.py '<json spec>'

spec: {"threads": 1, "matmul": [256, 512, 1024], "dense": {"T":..,"d":..,"F":..},
       "topk": {"T":..,"d":..,"F":..,"k":..}, "seconds": 1.0}
Prints one JSON object: what ran (bench/lib/torch_env.py: "torch", "threads", "blas" {kind, library, build,
threads}, "env"), "matmul": [{"n", "median_s", "min_s", "cpu_s", "samples"}] and
"layers": [{"layer", "median_s", "min_s", "cpu_s", "samples"}]. Timing: one warm-up call, then calls until `seconds`
have passed (at least 3); the median and the fastest wall seconds per call, and the least process CPU seconds.
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
import torch_env  # noqa: E402


def timeit(fn, seconds):
    fn()  # warm-up (allocator, oneDNN primitive cache)
    times, cpu = [], []
    start = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < seconds:
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)  # one thread: CPU time is compute time (the machine may be shared)
        if len(times) >= 200:
            break
    times.sort()
    return times[len(times) // 2], times[0], min(cpu), len(times)


def main():
    spec = json.loads(sys.argv[1])
    torch_env.set_threads(int(spec.get("threads", 1)))
    torch.manual_seed(0)
    seconds = float(spec.get("seconds", 1.0))
    out = {**torch_env.environment(), "matmul": [], "layers": []}

    for n in spec.get("matmul", []):
        a = torch.rand(n, n) - 0.5
        b = torch.rand(n, n) - 0.5
        c = torch.empty(n, n)
        med, best, cpu, k = timeit(lambda: torch.mm(a, b, out=c), seconds)
        out["matmul"].append({"n": n, "median_s": med, "min_s": best, "cpu_s": cpu, "samples": k})

    dense = spec.get("dense")
    if dense:
        T, d, F = dense["T"], dense["d"], dense["F"]
        x = torch.randn(T, d, requires_grad=True)
        dy = torch.randn(T, d)
        wg = (torch.randn(F, d) / d ** 0.5).requires_grad_()
        wu = (torch.randn(F, d) / d ** 0.5).requires_grad_()
        wd = (torch.randn(d, F) / F ** 0.5).requires_grad_()

        def step():
            # forward + backward of a SwiGLU FFN, parameter gradients included (as bench/lib/layer-steps.ts)
            y = torch.nn.functional.linear(torch.nn.functional.silu(x @ wg.t()) * (x @ wu.t()), wd)
            y.backward(dy)

        med, best, cpu, k = timeit(step, seconds)
        out["layers"].append({"layer": "dense-ffn", "median_s": med, "min_s": best, "cpu_s": cpu, "samples": k})

    topk = spec.get("topk")
    if topk:
        T, d, F, kk = topk["T"], topk["d"], topk["F"], topk["k"]
        x = torch.randn(T, d, requires_grad=True)
        dy = torch.randn(T, d)
        wu = (torch.randn(F, d) / d ** 0.5).requires_grad_()
        wd = (torch.randn(d, F) / F ** 0.5).requires_grad_()

        def step():
            # TopK FFN with ReLU, alpha = 0: keep each row's k largest activations (ties kept), zero the rest
            z = torch.relu(x @ wu.t())
            thr = torch.topk(z, kk, dim=1).values[:, -1:]
            h = z * (z >= thr)
            y = h @ wd.t()
            y.backward(dy)

        med, best, cpu, k = timeit(step, seconds)
        out["layers"].append({"layer": "topk-ffn", "median_s": med, "min_s": best, "cpu_s": cpu, "samples": k})

    print(json.dumps(out))


if __name__ == "__main__":
    main()
