"""Detection and reporting logic: pure where possible, no HTTP (DESIGN.md §2)."""
