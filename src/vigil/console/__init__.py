"""The trust & safety review console: server-rendered pages over `vigil.server.services.cases`."""
