"""Language models: one streaming client for OpenAI-compatible servers, the model registry, and
the embedded CPU server. No Django models; importable without a database."""
