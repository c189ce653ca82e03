"""The candidate files of a SQLite store written from nothing, in one process (rank/candidate_files.py,
`CandidateFiles._bring_up_to_date` into an empty folder, no model): wall seconds and peak RSS. Run it
with PYTHONPATH set to the code to measure (the baseline's src, then this one's), one after the other.

    PYTHONPATH=src python benchmarks/write_candidate_files.py S150K.db /tmp/folder [profile]
"""

import cProfile
import pstats
import resource
import shutil
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine

from academichub.rank.candidate_files import CandidateFiles
from academichub.rank.ranker import LexicalIndex

db, folder = sys.argv[1], Path(sys.argv[2])
shutil.rmtree(folder, ignore_errors=True)
engine = create_engine(f"sqlite:///{db}")
lexical = LexicalIndex()
files = CandidateFiles(folder, "benchmark", lexical.vectorizer.n_features)
profile = len(sys.argv) > 3
start = time.perf_counter()
with engine.connect() as conn:
    if profile:
        cProfile.run("files._bring_up_to_date(conn, None, None, lexical)", str(folder) + ".prof")
    else:
        files._bring_up_to_date(conn, None, None, lexical)
print(f"{time.perf_counter() - start:.1f} s, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
if profile:
    pstats.Stats(str(folder) + ".prof").sort_stats("cumulative").print_stats(30)
