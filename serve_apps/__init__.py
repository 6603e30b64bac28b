"""Online serving: an OpenAI-compatible Ray Serve LLM application built from a model catalog."""
