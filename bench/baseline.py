#!/usr/bin/env python3
"""numpy baseline for `npm run bench`: the same exact search as `mine-negatives --search exact`.

For every query i (row i of the query embeddings) against a pool of all positives (the
synthetic texts are unique, so the pool is every positive, in row order):
  - rows are L2-normalised (norm in float64, quotient rounded to float32);
  - pos_i = float32(float64 dot(q_i, p_i)); ceiling_i = float32(pos_i + threshold);
  - S = Q_block @ P_block.T in float32 (BLAS sgemm), blocked over queries and pool so
    memory stays at one block pair;
  - the query's own positive (column i) is left out; candidates with S > ceiling_i are
    false negatives: counted, then set to -inf;
  - the top k remaining by score (ties to the lower pool index) via np.argpartition per
    pool block and a merge of the running top k.

Writes <out>/result.json (timings, GFLOP/s, peak RSS, BLAS in use), <out>/top.npy
(int32 [rows, k] pool indices, -1 where fewer than k remain), <out>/scores.npy (float32
[rows, k], -inf past the last), <out>/fn.npy (int32 [rows] false-negative counts),
<out>/pos.npy (float32 [rows] positive scores) and <out>/sample.json (every
--sample-stride-th row: indices, scores, fn, pos, for a reader without numpy), for
cross-checking against hardneg's shards.

With --ranges A:B,C:D,... each contiguous row range is its own pool (hardneg's groups,
e.g. MMEB-train's subsets); indices in top.npy stay global rows.

Usage: python3 bench/baseline.py --queries Q.npy --positives P.npy --out DIR [--k 8]
       [--threshold 0.1] [--query-block 1024] [--pool-block 16384] [--sample-stride 997]
       [--ranges A:B,C:D,...]
"""
import argparse
import ctypes
import json
import os
import resource
import sys
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    ap.add_argument('--queries', required=True)
    ap.add_argument('--positives', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--k', type=int, default=8)
    ap.add_argument('--threshold', type=float, default=0.1)
    ap.add_argument('--query-block', type=int, default=1024)
    ap.add_argument('--pool-block', type=int, default=16384)
    ap.add_argument('--sample-stride', type=int, default=997)
    ap.add_argument('--label', default='numpy')
    ap.add_argument('--ranges', default=None)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    t0 = time.perf_counter()
    q = load_normalised(args.queries)
    p = load_normalised(args.positives)
    if q.shape != p.shape:
        sys.exit(f'baseline.py: {args.positives}: shape {p.shape}, expected {q.shape} (from {args.queries})')
    rows, dim = q.shape
    pos = row_dots(q, p)
    ceiling = (pos.astype(np.float64) + args.threshold).astype(np.float32)
    t_load = time.perf_counter() - t0

    if args.ranges is None:
        ranges = [(0, rows)]
    else:
        ranges = [tuple(int(x) for x in r.split(':')) for r in args.ranges.split(',')]
    top = np.full((rows, args.k), -1, dtype=np.int32)
    scores = np.full((rows, args.k), -np.inf, dtype=np.float32)
    fn = np.zeros(rows, dtype=np.int32)
    t_gemm = t_search = 0.0
    for a, b in ranges:
        t_r, s_r, f_r, g, t_s = search(q[a:b], p[a:b], ceiling[a:b], args.k, args.query_block, args.pool_block)
        top[a:b] = np.where(t_r >= 0, t_r + a, -1)
        scores[a:b] = s_r
        fn[a:b] = f_r
        t_gemm += g
        t_search += t_s
    t_total = time.perf_counter() - t0

    np.save(os.path.join(args.out, 'top.npy'), top)
    np.save(os.path.join(args.out, 'scores.npy'), scores)
    np.save(os.path.join(args.out, 'fn.npy'), fn)
    np.save(os.path.join(args.out, 'pos.npy'), pos)
    stride = max(1, args.sample_stride)
    sample = [
        {'row': int(i), 'top': top[i].tolist(), 'scores': [float(s) for s in scores[i]], 'fn': int(fn[i]), 'pos': float(pos[i])}
        for i in range(0, rows, stride)
    ]
    with open(os.path.join(args.out, 'sample.json'), 'w') as f:
        json.dump({'stride': stride, 'rows': sample}, f)

    flop = sum(2.0 * (b - a) * (b - a) * dim for a, b in ranges)
    result = {
        'label': args.label,
        'inputs': {'queries': args.queries, 'positives': args.positives},
        'numpy': np.__version__,
        'python': sys.version.split()[0],
        'blas': blas_info(),
        'env': {k: os.environ.get(k) for k in ('OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE', 'OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS')},
        'rows': rows,
        'dim': dim,
        'pool': rows if args.ranges is None else 'per range',
        'ranges': len(ranges),
        'k': args.k,
        'threshold': args.threshold,
        'query_block': args.query_block,
        'pool_block': args.pool_block,
        'seconds': {'load': t_load, 'search': t_search, 'gemm': t_gemm, 'select': t_search - t_gemm, 'total': t_total},
        'gflop': flop / 1e9,
        'gflops': flop / 1e9 / t_search,
        'gflops_gemm_only': flop / 1e9 / t_gemm,
        'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        'false_negatives': int(fn.sum()),
        'queries_with_false_negatives': int((fn > 0).sum()),
        'short_rows': int((top[:, -1] < 0).sum()),
    }
    with open(os.path.join(args.out, 'result.json'), 'w') as f:
        json.dump(result, f, indent=2)
    print(
        f"{args.label}: {rows} x {rows} x {dim}: search {t_search:.1f} s "
        f"(sgemm {t_gemm:.1f} s, select {t_search - t_gemm:.1f} s), {result['gflops']:.1f} GFLOP/s "
        f"({result['gflops_gemm_only']:.1f} sgemm only), total {t_total:.1f} s, "
        f"peak RSS {result['peak_rss_bytes'] / 2**30:.2f} GiB, BLAS {result['blas'].get('summary')}",
        file=sys.stderr,
    )


def load_normalised(file: str, chunk: int = 8192) -> np.ndarray:
    """float16/float32 .npy -> L2-normalised float32 rows, converted a chunk at a time."""
    src = np.load(file, mmap_mode='r')
    if src.ndim != 2:
        sys.exit(f'baseline.py: {file}: {src.ndim}-D array, expected 2-D [rows, dim]')
    out = np.empty(src.shape, dtype=np.float32)
    for s in range(0, src.shape[0], chunk):
        x = np.asarray(src[s:s + chunk], dtype=np.float32).astype(np.float64)
        norms = np.sqrt(np.einsum('ij,ij->i', x, x))
        if not np.all(np.isfinite(norms)) or np.any(norms == 0):
            sys.exit(f'baseline.py: {file}: a row in {s}..{s + len(x) - 1} is zero or not finite')
        out[s:s + chunk] = x / norms[:, None]
    return out


def row_dots(a: np.ndarray, b: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """float32(float64 sum of float32 products), row by row."""
    out = np.empty(a.shape[0], dtype=np.float32)
    for s in range(0, a.shape[0], chunk):
        out[s:s + chunk] = np.einsum('ij,ij->i', a[s:s + chunk].astype(np.float64), b[s:s + chunk].astype(np.float64))
    return out


def search(q, p, ceiling, k, query_block, pool_block):
    rows = q.shape[0]
    pool = p.shape[0]
    top = np.full((rows, k), -1, dtype=np.int32)
    top_scores = np.full((rows, k), -np.inf, dtype=np.float32)
    fn = np.zeros(rows, dtype=np.int32)
    buf = np.empty((query_block, min(pool_block, pool)), dtype=np.float32)
    mask = np.empty(buf.shape, dtype=bool)
    t_gemm = 0.0
    t0 = time.perf_counter()
    for qs in range(0, rows, query_block):
        qe = min(rows, qs + query_block)
        b = qe - qs
        qb = q[qs:qe]
        cap = ceiling[qs:qe, None]
        best_s = np.full((b, k), -np.inf, dtype=np.float32)
        best_i = np.full((b, k), -1, dtype=np.int64)
        counts = np.zeros(b, dtype=np.int64)
        for ps in range(0, pool, pool_block):
            pe = min(pool, ps + pool_block)
            n = pe - ps
            s = buf[:b, :n]
            m = mask[:b, :n]
            tg = time.perf_counter()
            np.matmul(qb, p[ps:pe].T, out=s)
            t_gemm += time.perf_counter() - tg
            # The query's own positive is not a candidate.
            own = np.arange(max(qs, ps), min(qe, pe))
            s[own - qs, own - ps] = -np.inf
            np.greater(s, cap, out=m)
            counts += m.sum(axis=1)
            np.copyto(s, -np.inf, where=m)
            kk = min(k, n)
            part = np.argpartition(s, n - kk, axis=1)[:, n - kk:]
            cand_s = np.concatenate([best_s, np.take_along_axis(s, part, axis=1)], axis=1)
            cand_i = np.concatenate([best_i, part + ps], axis=1)
            # Best first, ties to the lower pool index; unfilled slots (-1) sort last.
            order = np.lexsort((np.where(cand_i < 0, pool, cand_i), -cand_s), axis=1)[:, :k]
            best_s = np.take_along_axis(cand_s, order, axis=1)
            best_i = np.take_along_axis(cand_i, order, axis=1)
        best_i[~np.isfinite(best_s)] = -1
        top[qs:qe] = best_i
        top_scores[qs:qe] = best_s
        fn[qs:qe] = counts
    return top, top_scores, fn, t_gemm, time.perf_counter() - t0


def blas_info() -> dict:
    """Which BLAS numpy runs, and the OpenBLAS kernel (core type) it picked."""
    info: dict = {}
    try:
        cfg = np.show_config(mode='dicts')
        blas = cfg.get('Build Dependencies', {}).get('blas', {})
        info['build'] = {k: blas.get(k) for k in ('name', 'version', 'openblas configuration')}
    except Exception as err:  # numpy < 2 or a build without the dict
        info['build_error'] = repr(err)
    try:
        import threadpoolctl
        pools = threadpoolctl.threadpool_info()
        info['threadpoolctl'] = pools
        blas_pools = [x for x in pools if x.get('user_api') == 'blas']
        if blas_pools:
            x = blas_pools[0]
            info['summary'] = f"{x.get('internal_api')} {x.get('version')} {x.get('architecture')} threads={x.get('num_threads')}"
            return info
    except ImportError:
        info['threadpoolctl'] = 'not installed'
    # Without threadpoolctl: ask the loaded OpenBLAS itself.
    libs = []
    try:
        with open('/proc/self/maps') as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ''
                if 'blas' in os.path.basename(path).lower() and path not in libs:
                    libs.append(path)
    except OSError:
        pass
    info['loaded'] = libs
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        found = {}
        for what in ('get_corename', 'get_config', 'get_num_threads'):
            for name in (f'scipy_openblas_{what}64_', f'openblas_{what}64_', f'openblas_{what}', f'scipy_openblas_{what}'):
                fn = getattr(lib, name, None)
                if fn is None:
                    continue
                fn.restype = ctypes.c_int if what == 'get_num_threads' else ctypes.c_char_p
                value = fn()
                found[what] = value.decode() if isinstance(value, bytes) else value
                break
        if found:
            info['openblas'] = found
            info['summary'] = f"OpenBLAS core={found.get('get_corename')} threads={found.get('get_num_threads')} ({found.get('get_config')})"
            return info
    info['summary'] = (info.get('build') or {}).get('name') or 'unknown'
    return info


if __name__ == '__main__':
    main()
