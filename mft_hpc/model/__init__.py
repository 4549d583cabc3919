"""Model helpers shared by stages: building a tiny offline Qwen2 + ChatML model."""
