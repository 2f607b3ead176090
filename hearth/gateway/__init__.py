"""The gateway: one OpenAI-compatible endpoint in front of the lab (see docs/gateway.md)."""
