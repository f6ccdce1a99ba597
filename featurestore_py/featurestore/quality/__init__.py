"""Feature quality: statistics and their history (`stats.py`), drift (`drift.py`), duplicate
features (`duplicates.py`), and the training/serving audits with one rule of equality (`audit.py`)."""

from .audit import audit_online, audit_served, same_value, serving_mismatches
from .drift import FeatureDrift, drift_against_saved, load_saved_stats, measure_drift, parse_window, psi, tvd, view_drift
from .duplicates import DuplicatePair, duplicate_features, duplicate_names, duplicate_values
from .stats import HISTORY_TABLE, STATS_METADATA_KEY, compute_stats, frame_stats, load_history, save_history, view_stats

__all__ = ["DuplicatePair", "FeatureDrift", "HISTORY_TABLE", "STATS_METADATA_KEY", "audit_online", "audit_served",
           "compute_stats", "drift_against_saved", "duplicate_features", "duplicate_names",
           "duplicate_values", "frame_stats", "load_history", "load_saved_stats", "measure_drift", "parse_window", "psi",
           "same_value", "save_history", "serving_mismatches", "tvd", "view_drift", "view_stats"]
