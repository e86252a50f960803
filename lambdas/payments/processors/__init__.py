"""Card processor adapters. Elavon Converge is the one we speak."""
