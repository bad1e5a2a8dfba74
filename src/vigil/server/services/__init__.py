"""Business logic. Each public function owns its transaction: repositories query, services commit."""
