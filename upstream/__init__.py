"""For upstream services that start payments: not part of any Lambda package."""
