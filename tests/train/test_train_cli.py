"""`eiq train` and `eiq runs` in-process: new, continued and restored runs, listings, and errors that
exit non-zero with the valid choices named."""

from __future__ import annotations

import json

from eiq_lab.cli.main import main
from eiq_lab.project import open_project
from eiq_lab.train import Trainer

from .conftest import tiny_settings

TINY = ["--model", "tiny_cnn", "--input-size", "32,32,3", "--weights", "random", "--lr", "3e-3",
        "--augmentation", "none", "--seed", "3"]  # fmt: skip


def test_train_then_list_and_show_runs(digits_path, tiny_plugin, capsys):
    assert main(["train", str(digits_path), *TINY, "--epochs", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["run"], result["state"], result["epoch"]) == (1, "finished", 2)
    assert 0 <= result["metrics"]["test_accuracy"] <= 1

    assert main(["train", str(digits_path), "--restore", "1:1", "--epochs", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "run 2 finished at epoch 1" in out and "best:" in out

    assert main(["runs", str(digits_path)]) == 0
    listing = capsys.readouterr().out
    assert "run 1: finished tiny_cnn" in listing and "run 2: finished" in listing and "(from 1:1)" in listing
    assert main(["runs", str(digits_path), "1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [c["epoch"] for c in shown["checkpoints"]] == [1, 2]
    assert shown["settings"]["input_size"] == [32, 32, 3] and shown["labels"] == ["0", "1", "7"]


def test_continue_a_stopped_run_from_the_command_line(digits_path, tiny_plugin, capsys):
    with open_project(digits_path) as project:
        trainer = Trainer(project, tiny_settings(epochs=2))
        trainer.fit(callbacks=[lambda e: trainer.stop() if e.kind == "epoch" else None])
        assert project.run(1).state == "stopped"
    assert main(["train", str(digits_path), "--continue", "--quiet"]) == 0
    assert "run 1 finished at epoch 2" in capsys.readouterr().out
    assert main(["train", str(digits_path), "--continue"]) == 1
    assert "finished; nothing to continue" in capsys.readouterr().err


def test_bad_flags_exit_non_zero_and_record_nothing(digits_path, tiny_plugin, capsys):
    cases = [
        (["--optimizer", "lion"], "valid: sgd, adagrad, adadelta, rmsprop, adam, adamax, nadam"),
        (["--model", "nope"], "mobilenet_v2"),
        (["--prune", "after", "--prune-begin", "10", "--prune-end", "5"], "end step (5) must be after"),
        (["--input-size", "32,32"], "(H, W, C)"),
        (["--epochs", "none"], "needs a stop condition"),
        (["--restore", "9:1"], "no training runs yet"),
    ]
    for flags, message in cases:
        args = [*TINY, *flags] if flags[0] != "--restore" else flags
        assert main(["train", str(digits_path), *args, "--quiet"]) == 1, flags
        assert message in capsys.readouterr().err, flags
    with open_project(digits_path) as project:
        assert project.runs() == []
