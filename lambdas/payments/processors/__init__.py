"""Card processors: the port (`port.Processor`), the registry keyed by ProcessorID, and one package per adapter."""
