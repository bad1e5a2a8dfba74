"""Persistence, one module per concept: each holds that concept's row models and its repositories.

Repositories run queries over one AsyncSession; they flush when they need generated ids and never
commit (the calling service owns the transaction). `schema` gathers every model for the Alembic
migrations, which own the schema.
"""
