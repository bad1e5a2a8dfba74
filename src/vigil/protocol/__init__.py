"""Protocol layer shared by client and server: no I/O, pure, typed, synchronous. Imports nothing of ours
except `vigil.errors`."""
