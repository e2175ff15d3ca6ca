#!/usr/bin/env python3
"""The peer for `npm run bench`: sentence-transformers' `mine_hard_negatives` with faiss
(`use_faiss=True`, an IndexFlatIP over the corpus) on the same embeddings and the same rule.

The synthetic pairs are `query i` -> `positive i`, every text unique, so the corpus is every
positive in row order (as in hardneg and the numpy baseline). The model is a stand-in that
returns the stored embeddings (L2-normalised in float32) for those texts: the peer's own
code does everything else (dataset handling, faiss search, the margin rule, selection).
UniME's rule, a candidate above pos + threshold is a false negative, is the peer's
`absolute_margin = -threshold` (it removes candidates with score + margin > pos). The
peer looks only at its `range_max` nearest candidates (by default range_min +
10 * num_negatives + 1 with a margin: 81 for k = 8), so its false-negative counts cover
those only; it does not report them per row.

Writes <out>/result.json (timings, versions, peak RSS), <out>/top.npy (int32 [rows, k]
pool indices, -1 where the peer found fewer or dropped the row), <out>/scores.npy (float32
[rows, k]), <out>/fn.npy (int32 [rows], -1: not counted) and <out>/pos.npy (float32,
NaN), the layout bench/_compare.ts reads for the numpy baseline.

Usage: python bench/peer.py --queries Q.npy --positives P.npy --out DIR [--k 8]
       [--threshold 0.1] [--faiss-batch 16384]
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np


class StoredEmbeddings:
    """The part of SentenceTransformer that mine_hard_negatives calls, answered from arrays."""

    def __init__(self, queries: np.ndarray, positives: np.ndarray):
        import torch

        self.device = torch.device('cpu')
        self._queries = queries
        self._positives = positives

    @staticmethod
    def _rows(texts, prefix: str) -> list:
        return [int(t[len(prefix):]) for t in texts]

    def encode_query(self, texts, **_kw) -> np.ndarray:
        return self._queries[self._rows(texts, 'query ')]

    def encode_document(self, texts, **_kw) -> np.ndarray:
        return self._positives[self._rows(texts, 'positive ')]

    def get_embedding_dimension(self) -> int:
        return self._queries.shape[1]

    def similarity_pairwise(self, a, b):
        import torch

        return (torch.as_tensor(a) * torch.as_tensor(b)).sum(dim=1)


def load_normalised(path: str) -> np.ndarray:
    x = np.load(path).astype(np.float32)
    norms = np.sqrt((x.astype(np.float64) ** 2).sum(axis=1))
    return (x / norms[:, None]).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    ap.add_argument('--queries', required=True)
    ap.add_argument('--positives', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--k', type=int, default=8)
    ap.add_argument('--threshold', type=float, default=0.1)
    ap.add_argument('--faiss-batch', type=int, default=16384)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    t0 = time.perf_counter()
    import datasets
    import faiss
    import sentence_transformers
    import torch
    from sentence_transformers.util import mine_hard_negatives

    q = load_normalised(args.queries)
    p = load_normalised(args.positives)
    if q.shape != p.shape:
        sys.exit(f'peer.py: {args.positives}: shape {p.shape}, expected {q.shape} (from {args.queries})')
    rows = q.shape[0]
    dataset = datasets.Dataset.from_dict({'anchor': [f'query {i}' for i in range(rows)], 'positive': [f'positive {i}' for i in range(rows)]})
    t_load = time.perf_counter() - t0

    t1 = time.perf_counter()
    mined = mine_hard_negatives(
        dataset,
        StoredEmbeddings(q, p),
        absolute_margin=-args.threshold,
        num_negatives=args.k,
        sampling_strategy='top',
        output_format='n-tuple',
        output_scores=True,
        use_faiss=True,
        faiss_batch_size=args.faiss_batch,
        verbose=True,
    )
    t_mine = time.perf_counter() - t1

    top = np.full((rows, args.k), -1, dtype=np.int32)
    scores = np.full((rows, args.k), -np.inf, dtype=np.float32)
    negative_columns = [c for c in mined.column_names if c.startswith('negative')]
    for row in mined:
        r = int(row['anchor'][len('query '):])
        # scores: the positive's, then each negative's.
        for j, c in enumerate(negative_columns[: args.k]):
            top[r, j] = int(row[c][len('positive '):])
            scores[r, j] = row['scores'][j + 1]
    np.save(os.path.join(args.out, 'top.npy'), top)
    np.save(os.path.join(args.out, 'scores.npy'), scores)
    np.save(os.path.join(args.out, 'fn.npy'), np.full(rows, -1, dtype=np.int32))
    np.save(os.path.join(args.out, 'pos.npy'), np.full(rows, np.nan, dtype=np.float32))
    t_total = time.perf_counter() - t0
    result = {
        'label': 'sentence-transformers mine_hard_negatives + faiss IndexFlatIP',
        'queries': os.path.abspath(args.queries),
        'rows': rows,
        'dim': q.shape[1],
        'k': args.k,
        'threshold': args.threshold,
        'rows_out': len(mined),
        'seconds': {'load': t_load, 'mine': t_mine, 'total': t_total},
        'versions': {'sentence_transformers': sentence_transformers.__version__, 'faiss': faiss.__version__, 'torch': torch.__version__, 'numpy': np.__version__, 'datasets': datasets.__version__},
        'torch_threads': torch.get_num_threads(),
        'faiss_threads': faiss.omp_get_max_threads(),
        'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    with open(os.path.join(args.out, 'result.json'), 'w') as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result['seconds']))


if __name__ == '__main__':
    main()
