"""`eiq wizard` and `eiq models`, called in-process."""

from __future__ import annotations

import json

from eiq_lab.cli.main import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_wizard_prints_the_choice_and_why(capsys):
    code, out, _ = run(capsys, "wizard", "--task", "classification", "--priority", "balanced", "--target", "npu")
    assert code == 0
    assert "mobilenet_v2, input 128x128x3 (H x W x C), alpha 0.5" in out
    assert "int8 per-tensor" in out and "why: " in out and "flash" not in out
    code, out, _ = run(capsys, "wizard", "--target", "npu", "--json")
    rec = json.loads(out)
    assert rec["model"] == "mobilenet_v2" and rec["input_size"] == [128, 128, 3] and rec["reason"]


def test_wizard_for_an_mcu_gives_memory(capsys):
    code, out, _ = run(capsys, "wizard", "--priority", "performance", "--target", "MCU")
    assert code == 0
    assert "mobilenet_v1" in out and "memory (int8 estimate): flash " in out and "KiB, RAM " in out
    code, out, _ = run(capsys, "wizard", "--priority", "performance", "--target", "mcu", "--json")
    rec = json.loads(out)
    assert rec["flash_bytes"] > 100_000 and rec["ram_bytes"] > 10_000


def test_wizard_detection_and_table(capsys):
    code, out, _ = run(capsys, "wizard", "--task", "detection", "--target", "cpu")
    assert code == 0 and "ssd_mobilenet_v2" in out and "not available:" not in out
    code, out, _ = run(capsys, "wizard", "--table", "--json")
    assert code == 0 and len(json.loads(out)) == 24
    code, out, _ = run(capsys, "wizard", "--table")
    assert code == 0 and len(out.strip().splitlines()) == 25 and "(model not registered)" not in out


def test_wizard_refuses_unknown_values(capsys):
    code, _, err = run(capsys, "wizard", "--target", "tpu")
    assert code == 2 and "invalid choice: 'tpu'" in err and "'mcu'" in err


def test_models_lists_plugins_and_broken_ones(capsys, plugin_folder, monkeypatch):
    plugin_folder(
        "classification/image/Mine/mine.py",
        """
        from eiq_lab.models import ImageClassificationInterface

        class MyNet(ImageClassificationInterface):
            def get_exposed_parameters(self):
                return [{"name": "depth", "type": "int", "default": 3}]
        """,
    )
    plugin_folder("classification/image/Mine/broken.py", "raise ImportError('needs a GPU driver')\n")
    monkeypatch.setenv("EIQ_PLUGINS_USER", str(plugin_folder.root))
    code, out, _ = run(capsys, "models")
    assert code == 0
    assert "mobilenet_v2" in out and "my_net" in out and "depth" in out
    assert "1 plugin(s) could not be loaded:" in out and "broken.py: ImportError: needs a GPU driver" in out
    code, out, _ = run(capsys, "models", "--json")
    report = json.loads(out)
    mine = next(m for m in report["models"] if m["name"] == "my_net")
    assert mine["kind"] == "user" and mine["origin"] == "user" and mine["source"].endswith("mine.py")
    assert mine["parameters"][0]["name"] == "depth"
    assert report["problems"][0]["source"].endswith("broken.py")
    assert report["folders"] == [{"origin": "user", "folder": str(plugin_folder.root), "variable": "EIQ_PLUGINS_USER"}]
    code, out, _ = run(capsys, "models", "list", "--task", "detection", "--json")
    assert code == 0 and [m["name"] for m in json.loads(out)["models"]] == ["ssd_mobilenet_v2"]


def test_models_show(capsys):
    code, out, _ = run(capsys, "models", "show", "MobileNet-V1")
    assert code == 0
    assert out.startswith("mobilenet_v1 (classification, base model")
    assert "alpha (choice, default 0.5; one of 0.25, 0.5, 0.75, 1.0)" in out
    assert "pretrained: 128x128x3 imagenet (alpha 0.25, 0.5, 0.75, 1.0)" in out
    assert "optimizers: adam, " in out and "normalization=signed" in out
    code, out, _ = run(capsys, "models", "show", "mobilenet_v3_large", "--json")
    details = json.loads(out)
    assert details["pretrained_dimensions"][0]["shape"] == [224, 224, 3]
    assert [p["name"] for p in details["parameters"]] == ["alpha", "dropout", "minimalistic"]
    code, _, err = run(capsys, "models", "show", "resnet")
    assert code == 1 and "no model named 'resnet'; valid: mobilenet_v1" in err and "Traceback" not in err
