"""`hearth models describe`: the models: entry from a GGUF header or a config.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from hearth.cli import main
from hearth.inventory.model import ArchSpec
from hearth.planner.catalogue import entries
from hearth.planner.describe import describe


def tiny_gguf(path: Path) -> int:
    """A 2-layer llama-shaped GGUF written with the gguf writer; returns its parameter count."""
    from gguf import GGUFWriter

    hidden, heads, kv_heads, inter, vocab = 64, 4, 2, 128, 100
    writer = GGUFWriter(str(path), "llama")
    writer.add_name("tiny-test-llama")
    writer.add_block_count(2)
    writer.add_embedding_length(hidden)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_feed_forward_length(inter)
    writer.add_context_length(2048)
    head_dim = hidden // heads
    shapes = {"token_embd.weight": (vocab, hidden), "output.weight": (vocab, hidden), "output_norm.weight": (hidden,)}
    for layer in range(2):
        shapes |= {
            f"blk.{layer}.attn_q.weight": (heads * head_dim, hidden),
            f"blk.{layer}.attn_k.weight": (kv_heads * head_dim, hidden),
            f"blk.{layer}.attn_v.weight": (kv_heads * head_dim, hidden),
            f"blk.{layer}.attn_output.weight": (hidden, heads * head_dim),
            f"blk.{layer}.ffn_gate.weight": (inter, hidden),
            f"blk.{layer}.ffn_up.weight": (inter, hidden),
            f"blk.{layer}.ffn_down.weight": (hidden, inter),
            f"blk.{layer}.attn_norm.weight": (hidden,),
            f"blk.{layer}.ffn_norm.weight": (hidden,),
        }
    for name, shape in shapes.items():
        writer.add_tensor(name, np.zeros(shape, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return sum(int(np.prod(s)) for s in shapes.values())


def test_gguf_header_gives_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    params = tiny_gguf(path)
    found = describe(path)
    assert found.name == "tiny-test-llama"
    assert found.fields["params_b"] == pytest.approx(params / 1e9, rel=1e-3)
    assert (found.fields["layers"], found.fields["kv_heads"], found.fields["head_dim"]) == (2, 2, 16)
    assert found.fields["embed_params_b"] == pytest.approx(2 * 100 * 64 / 1e9, rel=1e-3)
    ArchSpec(**{k: v for k, v in found.fields.items()})  # pastes as a valid models: entry


def test_config_json_gives_the_catalogue_numbers(tmp_path: Path) -> None:
    # Llama-3.2-3B-Instruct's config.json, the numbers the catalogue cites
    config = {"_name_or_path": "meta-llama/Llama-3.2-3B-Instruct", "model_type": "llama", "hidden_size": 3072,
              "num_hidden_layers": 28, "num_attention_heads": 24, "num_key_value_heads": 8, "head_dim": 128,
              "intermediate_size": 8192, "vocab_size": 128256, "tie_word_embeddings": True}
    (tmp_path / "config.json").write_text(json.dumps(config))
    found = describe(tmp_path)
    known = entries()["llama-3.2-3b"].arch
    assert found.fields["params_b"] == pytest.approx(known.params_b, rel=0.01)
    assert (found.fields["layers"], found.fields["kv_heads"], found.fields["head_dim"]) == (28, 8, 128)
    assert found.fields["embed_params_b"] == pytest.approx(known.embed_params_b, rel=0.01)


def test_cli_prints_an_entry_that_pastes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tiny.gguf"
    tiny_gguf(path)
    assert main(["models", "describe", str(path)]) == 0
    out = capsys.readouterr().out
    pasted = yaml.safe_load("\n".join(line for line in out.splitlines() if not line.startswith("#")))
    spec = pasted["models"]["tiny-test-llama"]
    assert ArchSpec(**spec).layers == 2
    assert "arch: tiny-test-llama" in out


def test_unknown_model_error_points_at_describe(tmp_path: Path) -> None:
    from hearth.inventory.model import Gpu, Host, Serve
    from hearth.planner.vram import plan_host

    host = Host(address="10.0.0.2", overlay_ip="10.9.0.2", gpus=[Gpu(model="x", vram_gb=24)],
                serves=[Serve(name="m", engine="ollama", model="someones-finetune:7b")])
    _, problems = plan_host("h", host, {})
    assert problems and "hearth models describe" in problems[0][1]
