"""Item neighbours from the feature matrices: kNN lists and APFI candidate lists.

    similarity.py  cosine as inner product of L2-normalised rows (zero rows stay zero); fused S^f blocks (eq. 16)
    topk.py        row-wise top-k with a deterministic tie-break (score, then item id)
    knn.py         per-modality kNN lists: FAISS (IndexFlatIP, or its GPU copy) or the exact torch search
    groups.py      training degree and the tail / popular split (eq. 15)
    candidates.py  by S^f (eq. 16): top-K tail and bottom-K popular items, exact blocked search
    exact.py       float64 brute force on a sample: the recall reference
    build.py       the stage's work: all lists, the report, the timings
"""
