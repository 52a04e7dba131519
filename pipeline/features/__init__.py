"""Item features, one float32 matrix per modality (row i = item i).

    sentences.py   MMRec's sentence recipe (title + brand + first category path + description, HTML stripped)
    text.py        the local sentence-transformers encoder (all-MiniLM-L6-v2 by default), empty-text fallback
    image.py       Amazon 2014 CNN vectors from image_features_<Cat>.b, matched by ASIN, mean fallback
    image_files.py a folder of item images encoded with EfficientNet-Lite0 (packaged weights), zero-vector fallback
    mmrec.py       MMRec's image_feat.npy / text_feat.npy, passed through
    build.py       which modalities a dataset gets; writes <modality>.npy and the report
    device.py      the auto / cpu / cuda parameter
"""
