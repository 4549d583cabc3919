"""Models: tiny offline test models, and the exact import of Qwen-1 checkpoints into native Qwen2."""
