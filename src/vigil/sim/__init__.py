"""Population simulator and evaluation for the behavioural safety layer (fast mode; ground truth)."""
