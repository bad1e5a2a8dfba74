"""HTTP and WebSocket routes, one router per resource. Routes only translate; services decide."""
