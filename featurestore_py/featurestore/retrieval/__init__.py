"""Point-in-time training sets, computed inside the warehouse: the job (`job.py`), its Parquet
exports (`parquet.py`), the time spine (`spine.py`), what an export records (`manifest.py`) and
its replay (`replay.py`)."""

from .job import RetrievalJob, RetrievalPlan, RetrievalSummary
from .manifest import MANIFEST_FILE, MANIFEST_KEY
from .spine import MAX_SPINE_ROWS, time_spine_source

__all__ = ["MANIFEST_FILE", "MANIFEST_KEY", "MAX_SPINE_ROWS", "RetrievalJob", "RetrievalPlan", "RetrievalSummary", "time_spine_source"]
