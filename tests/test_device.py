"""The `device` setting (auto | cpu | cuda, SPANQA_DEVICE): how it resolves, what precision it implies, and how it
refuses. These machines have no GPU, so the CUDA side is exercised by telling the resolver that torch sees one;
the models themselves are only ever loaded on the CPU here."""

from __future__ import annotations

import pytest
from spanqa.plugin.engine.reader import Reader
from spanqa.plugin.engine.router import IntentClassifier
from spanqa.retriever.embedding import Embedder

import spanqa.settings as settings_module
from spanqa.errors import InputError
from spanqa.settings import Settings, resolve_device, resolve_precision, torch_dtype


def test_auto_is_the_cpu_where_torch_sees_no_gpu(monkeypatch):
    monkeypatch.setattr(settings_module, "_cuda_available", lambda: False)
    assert Settings().device == "auto"
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cpu") == "cpu"


def test_cuda_asked_without_a_gpu_is_a_clear_error_at_every_model(monkeypatch):
    monkeypatch.setattr(settings_module, "_cuda_available", lambda: False)
    with pytest.raises(InputError, match="device 'cuda' was asked for, but torch sees no CUDA GPU"):
        resolve_device("cuda")
    # Refused when the model object is made, before any weights are read.
    for make in (lambda: Embedder(device="cuda"), lambda: Reader(device="cuda"),
                 lambda: IntentClassifier("unused", device="cuda")):
        with pytest.raises(InputError, match="SPANQA_DEVICE"):
            make()


def test_the_setting_comes_from_the_environment_and_refuses_unknown_devices(monkeypatch):
    monkeypatch.setenv("SPANQA_DEVICE", "cpu")
    assert Settings.from_env().device == "cpu"
    assert Settings.from_env(device="auto").device == "auto"  # given explicitly beats the environment
    monkeypatch.setenv("SPANQA_DEVICE", "gpu")
    with pytest.raises(InputError, match="device must be one of auto, cpu, cuda; got 'gpu'"):
        Settings.from_env()
    with pytest.raises(InputError, match="device must be one of"):
        resolve_device("tpu")


@pytest.mark.parametrize(("bf16_capable", "expected"), [(True, "bf16"), (False, "fp16")])
def test_on_a_gpu_auto_precision_is_bf16_where_it_has_it_else_fp16(monkeypatch, bf16_capable, expected):
    import torch

    monkeypatch.setattr(settings_module, "_cuda_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_capable)
    assert resolve_device("auto") == "cuda"
    assert resolve_precision("auto", "cuda") == expected
    assert torch_dtype("auto", "cuda") == {"bf16": torch.bfloat16, "fp16": torch.float16}[expected]
    assert resolve_precision("fp32", "cuda") == "fp32"  # asked for explicitly, honoured
    with pytest.raises(InputError, match="int8.*CPUs"):
        resolve_precision("int8", "cuda")


def test_the_cpu_precision_rule_is_unchanged_by_the_device_setting(monkeypatch):
    monkeypatch.setattr(settings_module, "_cuda_available", lambda: False)
    for native in (True, False):
        monkeypatch.setattr(settings_module, "native_bf16", lambda native=native: native)
        assert resolve_precision("auto", resolve_device("auto")) == ("bf16" if native else "fp32")
        assert Reader(device="auto").precision == ("bf16" if native else "fp32")


def test_a_door_refuses_cuda_without_a_gpu_with_the_reason(monkeypatch, capsys, tmp_path):
    from spanqa.plugin.doors.cli import main

    monkeypatch.setattr(settings_module, "_cuda_available", lambda: False)
    monkeypatch.setenv("SPANQA_DEVICE", "cuda")
    (tmp_path / "a.txt").write_text("The default port is 8765.")
    assert main(["ingest", str(tmp_path / "a.txt"), "--collection", str(tmp_path / "c"), "--json"]) == 2
    assert "torch sees no CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()  # nothing was created by a run that could not embed
