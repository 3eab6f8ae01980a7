"""A MER-Caption-style annotation engine for one's own footage: clues per modality → an instruct LLM's description
→ OV labels → low- and high-level filters → human review → the MER-Caption(+) layout the trainer reads.

    python -m train.annotate --videos DIR --out DATASET [--llm PATH] [--shard i/n] [--subtitles FILE]
    python -m train.annotate --review DATASET --serve [HOST:]PORT
"""
