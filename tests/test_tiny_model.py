from transformers import AutoModelForCausalLM, AutoTokenizer


def test_tiny_model_loads_offline_with_chatml_tokens(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert tok.convert_tokens_to_ids("<|im_end|>") == 2
    assert tok.convert_tokens_to_ids("<|im_start|>") == 1
    text = "def add(a, b):\n    return a + b  # ünïcode\n"
    assert tok.decode(tok.encode(text)) == text
    assert model.config.model_type == "qwen2"
    assert model.generation_config.eos_token_id == 2
