"""What a run shows: terminal status lines, report extras, run logs."""
