"""Raw data to the ingest contract (interactions / users / items parquet + stats.json).

Modules, in pipeline order:

    textio         open plain or gzip files, iterate lines / blocks with line numbers
    records        the raw interaction frame every reader returns, the bad-line policy
    jsonlines      streaming JSON / Python-literal lines -> polars frames (reviews, metadata)
    csvfile        streaming delimited text -> the raw interaction frame
    amazon2014     ratings CSV, reviews JSON lines, Python-literal metadata
    amazon2018     strict-JSON reviews and metadata
    mmrec          MMRec ``<name>.inter`` files (ids and split kept exactly)
    generic        the user's own CSV/TSV/parquet + optional item table
    detect         format auto-detection from content
    clean          missing values, rating range, repeated (user, item) pairs
    kcore          iterated user/item k-core (pure numpy)
    reindex        contiguous ids in first-seen order
    split          MMRec's per-user random rule (seeded) and the global temporal 8:1:1 split
    image_features the Amazon 2014 ``.b`` image-feature file
    image_files    a folder of item images: which file is which item's (names only, no decoding)
    download       official file names / URLs, synthetic generation, manifest.json
    dataset        orchestration used by the ingest stage and ``simgr ingest``
"""
