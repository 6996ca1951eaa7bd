"""Best-epoch selection on hand-written Trainer log histories (training/best.py): the best dev score wins, ties keep
the earliest, and the test scores reported are the ones logged at that evaluation's step."""

from training.best import best_entry, best_results, improves


def history(*rows):
    """rows of (epoch, step, dev_f1, {test metrics or {}}) -> a log_history as HF Trainer writes it."""
    out = [{"loss": 1.0, "epoch": 0.5, "step": 2}]
    for epoch, step, dev, tests in rows:
        out.append(
            {"eval_f1": dev, "eval_loss": 1 - dev, "eval_runtime": 3.0, "epoch": float(epoch), "step": step}
        )
        if tests:
            out.append({**tests, "test_runtime": 4.0, "epoch": float(epoch), "step": step})
    return out


def test_the_best_epoch_in_the_middle_wins_and_brings_its_own_test_score():
    log = history(
        (1, 10, 0.50, {"test_f1": 0.40}),
        (2, 20, 0.70, {"test_f1": 0.61}),
        (3, 30, 0.65, {"test_f1": 0.90}),  # a better test score at a worse dev epoch is NOT reported
    )
    assert best_results(log, "f1") == {
        "best_epoch": 1,  # 0-based, as the original
        "best_eval_f1": 0.70,
        "best_eval_loss": 0.30000000000000004,
        "best_test_f1": 0.61,
    }


def test_ties_keep_the_earliest_epoch():
    log = history(
        (1, 10, 0.5, {"test_f1": 0.1}), (2, 20, 0.7, {"test_f1": 0.2}), (3, 30, 0.7, {"test_f1": 0.3})
    )
    assert best_results(log, "f1")["best_epoch"] == 1 and best_results(log, "f1")["best_test_f1"] == 0.2
    assert best_entry(log, "f1")["step"] == 20


def test_two_test_splits_are_paired_by_step():
    log = history(
        (1, 10, 0.8, {"test_wsj_f1": 0.7, "test_brown_f1": 0.6}),
        (2, 20, 0.6, {}),
    )
    log.append({"test_wsj_f1": 0.99, "epoch": 2.0, "step": 20})  # logged at another step: not the best's
    assert best_results(log, "f1") == {
        "best_epoch": 0,
        "best_eval_f1": 0.8,
        "best_eval_loss": 1 - 0.8,
        "best_test_wsj_f1": 0.7,
        "best_test_brown_f1": 0.6,
    }


def test_improves_is_strict():
    log = history((1, 10, 0.5, {}), (2, 20, 0.7, {}))
    assert improves(log, "f1", 0.71) and not improves(log, "f1", 0.7) and not improves(log, "f1", 0.2)
    assert improves([], "f1", 0.0)  # the first evaluation is always a new best


def test_no_dev_score_means_no_best():
    assert best_results([{"loss": 1.0, "step": 5}], "f1") == {} and best_entry([], "f1") is None
