from vigil.server.db import hashlist_models, minors_models, safety_models  # noqa: F401
from vigil.server.db.models import Base

metadata = Base.metadata
