"""PDQ perceptual hashing, hash banks and exact matching, and signed transparent hash lists.

Pure and synchronous: bytes in, typed results out. No file, network or clock access; callers pass
those in. Modules: `pdq` (hashing), `index` (radius search), `banks` (bank model, parsers, Matcher),
`hashlist` (signed versioned lists: manifest format, verifier, transparency log, authority).
"""
