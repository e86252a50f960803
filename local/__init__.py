"""The embedded local stack (DESIGN §6): moto runs the real ASL and routes Lambda to our real handlers."""
