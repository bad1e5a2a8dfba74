"""The local web messenger (`vigil app`): a process on 127.0.0.1 that holds one device's client SDK and
encrypted store and serves pages to the browser, which never holds key material (DESIGN.md §2)."""
