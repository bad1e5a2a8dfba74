"""A stand-in for NCMEC's CyberTipline reporting API, for tests, the demo and operators rehearsing.

It validates documents on its own schema tables (`schema`), never with `vigil.safety.ncmec`'s builder,
so tests of the builder against it are not circular; it imports nothing of Vigil's but `vigil.errors`
(an import contract in pyproject.toml).
"""

from __future__ import annotations

from vigil.ncmec_standin.app import StandinState, create_standin_app
from vigil.ncmec_standin.schema import SchemaOptions

__all__ = ["SchemaOptions", "StandinState", "create_standin_app"]
